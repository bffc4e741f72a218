/// A moment as the shell saw it, passed into a core with each input. Cores never read a clock.
///
/// It carries two clocks because they answer two questions: `unixMicroseconds` (wall time) decides
/// whether a key's absolute expiry time has passed and is what TIME reports; `monotonicNanoseconds`
/// measures durations (command latency) and never goes backwards when the wall clock is adjusted.
public struct Instant: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var unixMicroseconds: Int64
    public var monotonicNanoseconds: UInt64

    public init(unixMicroseconds: Int64, monotonicNanoseconds: UInt64) {
        self.unixMicroseconds = unixMicroseconds
        self.monotonicNanoseconds = monotonicNanoseconds
    }

    /// Wall time in whole milliseconds, the unit of key expiry times.
    public var unixMilliseconds: Int64 { unixMicroseconds / 1000 }

    public var description: String { "t=\(unixMicroseconds)us" }
}
