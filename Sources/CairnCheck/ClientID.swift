/// The client that issued an operation. The checker does not use it to decide anything (real-time
/// order comes from timestamps alone); it is there so a report can say who did what.
public struct ClientID: Sendable, Hashable, Comparable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: UInt64

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(integerLiteral rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public static func < (lhs: ClientID, rhs: ClientID) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    public var description: String { "client \(rawValue)" }
}
