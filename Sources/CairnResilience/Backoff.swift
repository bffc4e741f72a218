import CairnCore

/// Exponential backoff with full jitter: how long to wait before retry number `attempt`.
///
/// The delay before retry `attempt` (0 for the first retry) is drawn uniformly from
/// `0...min(cap, base × 2^attempt)`. This is "Full Jitter" from Marc Brooker's AWS Architecture Blog
/// post "Exponential Backoff And Jitter" (2015). Its simulation of contending clients showed that
/// plain exponential backoff keeps clients in lock step (they all retry at the same instants, so every
/// retry collides again), while full jitter spreads them over the whole interval and gave the least
/// total work and nearly the fastest completion of the variants tried ("Equal Jitter" and
/// "Decorrelated Jitter" were close; none was close to "no jitter").
///
/// Deviations and choices:
/// - The jitter comes from an injected `SplitMix64`, never a global source, so a seed reproduces every
///   delay (house rule; etcd's Raft needed a test hook because its jitter was global).
/// - The exponential saturates at `cap` before it can overflow, so any `attempt` is safe.
/// - The draw uses the high half of a 64×64-bit multiply (Lemire's method without the rejection step).
///   Its bias is below `(cap + 1) / 2^64`, under 10⁻⁸ for caps up to five minutes, and it spends exactly
///   one generator step per delay, which keeps simulations that interleave draws reproducible.
///
/// Backoff spreads retries in time; it does not limit how many there are. Pair it with a `RetryBudget`
/// (how many retries the client may spend overall) and a `Deadline` (when the caller stops caring).
public struct Backoff: Sendable, Equatable {
    /// The upper bound of the first retry's delay.
    public let base: TimeSpan
    /// The largest upper bound any retry's delay can have.
    public let cap: TimeSpan

    /// - Precondition: `base > 0` and `cap >= base`. These come from code or validated flags, so a
    ///   violation is a programmer error.
    public init(base: TimeSpan, cap: TimeSpan) {
        precondition(base > .zero, "Backoff base must be positive, got \(base)")
        precondition(cap >= base, "Backoff cap (\(cap)) must be at least its base (\(base))")
        self.base = base
        self.cap = cap
    }

    /// The default for retries between nodes and from `cairn bench`: 10 ms base, 1 s cap.
    ///
    /// Why: a forwarded request usually fails because a leader moved, which Raft settles within an
    /// election timeout (hundreds of milliseconds), so the first retries should come fast; a peer that
    /// stays down for longer is the circuit breaker's job, so waiting more than a second buys nothing.
    public static let standard = Backoff(base: .milliseconds(10), cap: .seconds(1))

    /// The upper bound of the delay before retry `attempt`: `min(cap, base × 2^attempt)`.
    /// - Precondition: `attempt >= 0`.
    public func ceiling(attempt: Int) -> TimeSpan {
        precondition(attempt >= 0, "Backoff attempt must be non-negative, got \(attempt)")
        // 2^64 exceeds any UInt64 and so any cap; shifting further is undefined, so stop there.
        guard attempt < 64 else { return cap }
        let (product, overflow) = base.nanoseconds.multipliedReportingOverflow(by: 1 << UInt64(attempt))
        if overflow { return cap }
        return Swift.min(cap, TimeSpan(nanoseconds: product))
    }

    /// A delay drawn uniformly from `0...ceiling(attempt:)`, using one step of `generator`.
    /// - Precondition: `attempt >= 0`.
    public func delay(attempt: Int, using generator: inout SplitMix64) -> TimeSpan {
        let bound = ceiling(attempt: attempt).nanoseconds
        let random = generator.next()
        // Inclusive upper end: `bound + 1` outcomes; `bound == .max` takes the whole 64-bit draw.
        guard bound < .max else { return TimeSpan(nanoseconds: random) }
        let delay = random.multipliedFullWidth(by: bound + 1).high
        assert(delay <= bound, "Backoff drew \(delay) above its bound \(bound)")
        return TimeSpan(nanoseconds: delay)
    }
}
