/// Calls and failures over the last `window` of time, kept in a fixed ring of time buckets.
///
/// Hystrix's "rolling statistical window": time is cut into buckets of `window / bucketCount`; a call
/// is counted in the bucket of its time, and the totals add up the buckets that are not older than
/// `bucketCount - 1` buckets before the current one. So the totals cover between `window - width` and
/// `window` of history, and the oldest bucket leaves as a whole. Memory and the cost of `totals` are
/// `bucketCount`, whatever the traffic; nothing needs a timer, because a stale bucket is recognized
/// by the bucket number it holds and reset when its slot is reused.
struct FailureWindow: Sendable, Equatable {
    /// Calls and failures counted in the window.
    struct Totals: Sendable, Equatable {
        var calls: UInt64
        var failures: UInt64
    }

    /// Nanoseconds per bucket.
    let bucketWidth: UInt64
    /// Bucket number (`now / bucketWidth`) each slot counts for.
    private var bucketNumbers: [UInt64]
    /// Calls counted per slot.
    private var calls: [UInt64]
    /// Failures counted per slot; never more than `calls` of the same slot.
    private var failures: [UInt64]

    /// - Precondition: `bucketCount >= 1` and `window` at least one nanosecond per bucket.
    init(window: TimeSpan, bucketCount: Int) {
        precondition(bucketCount >= 1, "FailureWindow needs at least one bucket, got \(bucketCount)")
        precondition(
            window.nanoseconds >= UInt64(bucketCount),
            "FailureWindow window \(window) is shorter than one nanosecond per bucket (\(bucketCount) buckets)")
        self.bucketWidth = window.nanoseconds / UInt64(bucketCount)
        self.bucketNumbers = Array(repeating: 0, count: bucketCount)
        self.calls = Array(repeating: 0, count: bucketCount)
        self.failures = Array(repeating: 0, count: bucketCount)
    }

    /// Counts one call at `now`, a failure or not.
    mutating func record(isFailure: Bool, now: MonotonicTime) {
        let number = now.nanoseconds / bucketWidth
        let slot = Int(number % UInt64(bucketNumbers.count))
        if bucketNumbers[slot] != number {
            bucketNumbers[slot] = number
            calls[slot] = 0
            failures[slot] = 0
        }
        calls[slot] += 1
        if isFailure { failures[slot] += 1 }
        assert(failures[slot] <= calls[slot], "FailureWindow slot \(slot) has more failures than calls")
    }

    /// Calls and failures in the buckets still inside the window at `now`.
    func totals(now: MonotonicTime) -> Totals {
        let current = now.nanoseconds / bucketWidth
        var totals = Totals(calls: 0, failures: 0)
        for slot in bucketNumbers.indices {
            let number = bucketNumbers[slot]
            // A bucket numbered after `current` was recorded at a later reading than `now`; count it
            // rather than lose it (the shell's clock is monotonic; only a confused caller gets here).
            guard number > current || current - number < UInt64(bucketNumbers.count) else { continue }
            totals.calls += calls[slot]
            totals.failures += failures[slot]
        }
        return totals
    }

    /// Forgets everything, as when the breaker closes after a successful probe.
    mutating func reset() {
        for slot in bucketNumbers.indices {
            calls[slot] = 0
            failures[slot] = 0
        }
    }
}
