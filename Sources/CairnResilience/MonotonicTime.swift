import CairnCore

/// A reading of the shell's monotonic clock: nanoseconds since an arbitrary origin (boot, process
/// start, or zero in a simulation). Every primitive in this module takes one as `now`; none reads a clock.
///
/// Why a type of its own rather than a bare `UInt64`: a point in time and a length of time are both
/// nanoseconds, and mixing them up (passing a timeout where a deadline is expected) compiles silently
/// with raw integers. `MonotonicTime` is a point; `TimeSpan` is a length; only the meaningful
/// arithmetic between them exists. The shell builds one from `Instant.monotonicNanoseconds` (the
/// node) or from its own `clock_gettime(CLOCK_MONOTONIC)` reading (`cairn bench`).
///
/// Arithmetic saturates instead of trapping: a deadline "a year from now" or an origin at zero must
/// not crash a node, and no caller needs times beyond ~584 years.
public struct MonotonicTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: UInt64

    /// A reading of `nanoseconds` since the clock's origin.
    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    /// The monotonic half of a node's `Instant`, the time every `CairnNode` input carries.
    public init(_ instant: Instant) {
        self.nanoseconds = instant.monotonicNanoseconds
    }

    /// The clock's origin; the start of every simulated run.
    public static let zero = MonotonicTime(nanoseconds: 0)

    /// The far future: later than any reading a real clock returns. `Deadline.never` uses it.
    public static let distantFuture = MonotonicTime(nanoseconds: .max)

    /// The time from `earlier` to this reading, or zero if `earlier` is not earlier.
    ///
    /// Saturating at zero keeps a simulated clock that repeats a reading (or a caller that passes times
    /// slightly out of order) from producing a huge unsigned difference.
    public func timeSpan(since earlier: MonotonicTime) -> TimeSpan {
        TimeSpan(nanoseconds: nanoseconds >= earlier.nanoseconds ? nanoseconds - earlier.nanoseconds : 0)
    }

    /// The reading `span` later, saturating at `distantFuture`.
    public static func + (time: MonotonicTime, span: TimeSpan) -> MonotonicTime {
        let (sum, overflow) = time.nanoseconds.addingReportingOverflow(span.nanoseconds)
        return MonotonicTime(nanoseconds: overflow ? .max : sum)
    }

    public static func < (left: MonotonicTime, right: MonotonicTime) -> Bool {
        left.nanoseconds < right.nanoseconds
    }

    public var description: String { "t=\(nanoseconds)ns" }
}

/// A non-negative length of time in nanoseconds: a timeout, a delay, a window, a retry-after hint.
///
/// Named `TimeSpan` rather than `Duration` so it does not shadow the standard library's `Duration`,
/// which is a signed 128-bit pair and costs more than the `UInt64` the shells already carry.
public struct TimeSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The length in nanoseconds.
    public var nanoseconds: UInt64

    /// A span of `nanoseconds`.
    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    /// No time at all.
    public static let zero = TimeSpan(nanoseconds: 0)

    /// A span of whole milliseconds, saturating at the largest span.
    public static func milliseconds(_ count: UInt64) -> TimeSpan {
        let (product, overflow) = count.multipliedReportingOverflow(by: 1_000_000)
        return TimeSpan(nanoseconds: overflow ? .max : product)
    }

    /// A span of whole seconds, saturating at the largest span.
    public static func seconds(_ count: UInt64) -> TimeSpan {
        let (product, overflow) = count.multipliedReportingOverflow(by: 1_000_000_000)
        return TimeSpan(nanoseconds: overflow ? .max : product)
    }

    /// The sum, saturating at the largest span.
    public static func + (left: TimeSpan, right: TimeSpan) -> TimeSpan {
        let (sum, overflow) = left.nanoseconds.addingReportingOverflow(right.nanoseconds)
        return TimeSpan(nanoseconds: overflow ? .max : sum)
    }

    public static func < (left: TimeSpan, right: TimeSpan) -> Bool {
        left.nanoseconds < right.nanoseconds
    }

    /// The span in (fractional) seconds, for metrics and logs only; decisions use `nanoseconds`.
    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String { "\(nanoseconds)ns" }
}
