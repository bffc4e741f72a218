/// A logical time in a history, in ticks of whatever clock recorded it (the simulator's tick counter).
///
/// Only the order of timestamps matters. Two operations are ordered in real time only when one's
/// response is strictly earlier than the other's invocation; equal timestamps mean "concurrent",
/// which is the cautious reading when a clock is coarse.
public struct Timestamp: Sendable, Hashable, Comparable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var ticks: UInt64

    public init(ticks: UInt64) {
        self.ticks = ticks
    }

    public init(integerLiteral ticks: UInt64) {
        self.ticks = ticks
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.ticks < rhs.ticks
    }

    public var description: String { String(ticks) }
}
