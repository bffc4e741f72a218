/// A token bucket: admits a sustained `tokensPerSecond` with bursts of up to `burst` at once.
///
/// The classic token bucket (Turner, 1986; the shaping rule of RFC 2697 and of most API gateways): the
/// bucket holds at most `burst` tokens and gains `tokensPerSecond` of them continuously; an operation
/// that costs `n` tokens proceeds if `n` are present and takes them, and otherwise waits. Over any
/// interval of length `t` it admits at most `burst + tokensPerSecond × t` tokens' worth of work, which
/// is the property admission control and `cairn bench`'s open-loop pacing need.
///
/// Choices:
/// - **Exact integer arithmetic.** The level is kept in nano-tokens (one token = 10⁹ units), so
///   `elapsed nanoseconds × tokensPerSecond` is exactly the units gained, with no division and no
///   rounding drift: a limiter asked for 1000/s admits exactly 1000 per simulated second, forever,
///   and the wait it returns when denied is exactly long enough (never one nanosecond short, which
///   with floating point could make a caller spin). The price is integer rates only.
/// - **Lazy refill.** There is no timer: every call first credits the time since the last call.
///   Time that does not advance (or a reading earlier than the last) credits nothing.
/// - **Denied calls take nothing.** A caller told to wait `retryAfter` and coming back then will find
///   enough tokens, unless someone else took them first; there is no queue and no reservation.
///
/// The shell MUST pass readings of one monotonic clock, never wall time.
public struct RateLimiter: Sendable, Equatable {
    /// What `tryAcquire` decided.
    public enum Acquisition: Sendable, Equatable {
        /// The tokens were taken; go ahead.
        case acquired
        /// Not enough tokens. They will be there after `retryAfter` if nobody else takes them first.
        case denied(retryAfter: TimeSpan)
    }

    /// Units per token: nano-tokens, so refill is `nanoseconds × tokensPerSecond` exactly.
    static let unitsPerToken: UInt64 = 1_000_000_000
    /// The largest burst: keeps `burst × unitsPerToken + tokensPerSecond` inside a `UInt64`.
    public static let burstMax: UInt64 = 10_000_000_000
    /// The largest rate, for the same reason; a billion operations a second is beyond any node.
    public static let tokensPerSecondMax: UInt64 = 1_000_000_000

    /// Tokens gained per second of monotonic time.
    public let tokensPerSecond: UInt64
    /// The most tokens the bucket holds, so the largest burst admitted at once.
    public let burst: UInt64
    /// The level in nano-tokens, as of `refilledAt`.
    private var units: UInt64
    /// The last reading at which time was credited.
    private var refilledAt: MonotonicTime
    /// Calls that took their tokens.
    public private(set) var acquiredCount: UInt64 = 0
    /// Calls that were told to wait.
    public private(set) var deniedCount: UInt64 = 0

    /// A bucket that starts full (a fresh client may burst at once) or empty.
    /// - Precondition: `1 <= tokensPerSecond <= tokensPerSecondMax` and `1 <= burst <= burstMax`.
    public init(tokensPerSecond: UInt64, burst: UInt64, now: MonotonicTime, startsFull: Bool = true) {
        precondition(tokensPerSecond >= 1, "RateLimiter tokensPerSecond must be at least 1, got \(tokensPerSecond)")
        precondition(
            tokensPerSecond <= Self.tokensPerSecondMax,
            "RateLimiter tokensPerSecond (\(tokensPerSecond)) exceeds \(Self.tokensPerSecondMax)")
        precondition(burst >= 1, "RateLimiter burst must be at least 1, got \(burst)")
        precondition(burst <= Self.burstMax, "RateLimiter burst (\(burst)) exceeds \(Self.burstMax)")
        self.tokensPerSecond = tokensPerSecond
        self.burst = burst
        self.units = startsFull ? burst * Self.unitsPerToken : 0
        self.refilledAt = now
    }

    /// Whole tokens available at `now`, without taking any.
    public func availableTokens(now: MonotonicTime) -> UInt64 {
        var copy = self
        copy.refill(now: now)
        return copy.units / Self.unitsPerToken
    }

    /// Takes `tokens` if the bucket has them at `now`; otherwise takes nothing and says how long until it will.
    /// - Precondition: `1 <= tokens <= burst`; a request larger than the bucket could never proceed.
    public mutating func tryAcquire(_ tokens: UInt64 = 1, now: MonotonicTime) -> Acquisition {
        precondition(tokens >= 1, "RateLimiter.tryAcquire needs at least one token, got \(tokens)")
        precondition(tokens <= burst, "RateLimiter.tryAcquire asked for \(tokens) tokens, more than the burst \(burst)")
        refill(now: now)
        let needed = tokens * Self.unitsPerToken
        if units >= needed {
            units -= needed
            acquiredCount += 1
            return .acquired
        }
        deniedCount += 1
        let deficit = needed - units
        // Round up: after exactly this many nanoseconds the refill covers the deficit.
        let wait = (deficit + tokensPerSecond - 1) / tokensPerSecond
        return .denied(retryAfter: TimeSpan(nanoseconds: wait))
    }

    /// Credits the time since `refilledAt`, up to a full bucket.
    private mutating func refill(now: MonotonicTime) {
        guard now > refilledAt else { return }
        let elapsed = now.timeSpan(since: refilledAt).nanoseconds
        refilledAt = now
        let capacity = burst * Self.unitsPerToken
        let missing = capacity - units
        // Compare before multiplying, so a long idle period cannot overflow.
        if elapsed >= (missing + tokensPerSecond - 1) / tokensPerSecond {
            units = capacity
        } else {
            units += elapsed * tokensPerSecond
        }
        assert(units <= capacity, "RateLimiter level \(units) above capacity \(capacity)")
    }
}
