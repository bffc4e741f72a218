import CairnCore
import Testing

@testable import CairnResilience

@Suite("rate limiter")
struct RateLimiterTests {
    static let start = MonotonicTime(nanoseconds: 5_000_000_000)

    @Test("a full bucket admits its burst at once, then says exactly how long to wait")
    func burstThenWait() {
        var limiter = RateLimiter(tokensPerSecond: 10, burst: 5, now: Self.start)
        for _ in 0..<5 {
            let inBurst = limiter.tryAcquire(now: Self.start)
            #expect(inBurst == .acquired)
        }
        let afterBurst = limiter.tryAcquire(now: Self.start)
        #expect(afterBurst == .denied(retryAfter: .milliseconds(100)))
        let tooEarly = limiter.tryAcquire(now: Self.start + .milliseconds(99))
        #expect(tooEarly == .denied(retryAfter: .milliseconds(1)))
        let onTime = limiter.tryAcquire(now: Self.start + .milliseconds(100))
        #expect(onTime == .acquired)
        #expect(limiter.acquiredCount == 6 && limiter.deniedCount == 2)
    }

    @Test(
        "the wait returned is exactly enough: one nanosecond less is still too early",
        arguments: 0..<30 as Range<UInt64>)
    func retryAfterIsExact(seed: UInt64) throws {
        var prng = SplitMix64(seed: seed)
        let rate = UInt64(1 + prng.below(100_000))
        let burst = UInt64(1 + prng.below(50))
        var limiter = RateLimiter(tokensPerSecond: rate, burst: burst, now: Self.start, startsFull: prng.below(2) == 0)
        var now = Self.start
        for _ in 0..<20 {
            let tokens = UInt64(1 + prng.below(Int(burst)))
            guard case .denied(let wait) = limiter.tryAcquire(tokens, now: now) else { continue }
            #expect(wait > .zero, "seed \(seed)")
            var early = limiter
            let earlyNow = MonotonicTime(nanoseconds: now.nanoseconds + wait.nanoseconds - 1)
            let earlyResult = early.tryAcquire(tokens, now: earlyNow)
            #expect(earlyResult != .acquired, "seed \(seed): \(wait) was too long")
            now = now + wait
            let onTimeResult = limiter.tryAcquire(tokens, now: now)
            #expect(onTimeResult == .acquired, "seed \(seed): \(wait) was too short")
        }
    }

    /// Method: a greedy client asks again exactly when told. Over T seconds it must get exactly
    /// burst + rate × T tokens: no drift from rounding, in either direction. With burst 1 and a period
    /// that is not a whole number of nanoseconds (3/s), the client comes back a fraction of a nanosecond
    /// after the bucket filled, and a full bucket overflows, so that fraction is lost each time; burst 1
    /// is therefore paired only with rates that divide a second evenly.
    @Test(
        "a greedy client gets exactly burst + rate × time",
        arguments: [(1, 1), (3, 2), (1000, 1), (1000, 50), (7, 3), (123_457, 10)] as [(UInt64, UInt64)])
    func sustainedRateIsExact(rate: UInt64, burst: UInt64) {
        var limiter = RateLimiter(tokensPerSecond: rate, burst: burst, now: Self.start)
        let end = Self.start + .seconds(10)
        var now = Self.start
        var acquired: UInt64 = 0
        var denials: UInt64 = 0
        // Bounded: a limiter that returned a zero wait would otherwise spin here forever.
        while now <= end && denials <= rate * 10 + 1 {
            switch limiter.tryAcquire(now: now) {
            case .acquired: acquired += 1
            case .denied(let wait):
                denials += 1
                now = now + wait
            }
        }
        #expect(acquired == burst + rate * 10, "rate \(rate) burst \(burst): got \(acquired)")
    }

    /// Method: seeded random arrival gaps and sizes; every admitted token is logged with its time, and
    /// every window [t, t + d] starting at an admission must hold at most burst + rate × d tokens.
    @Test("no window of time admits more than burst + rate × its length", arguments: 0..<20 as Range<UInt64>)
    func neverExceedsEnvelope(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let rate = UInt64(1 + prng.below(1000))
        let burst = UInt64(1 + prng.below(20))
        var limiter = RateLimiter(tokensPerSecond: rate, burst: burst, now: Self.start)
        var now = Self.start
        var admitted: [(time: UInt64, tokens: UInt64)] = []
        for _ in 0..<2000 {
            now = now + TimeSpan(nanoseconds: UInt64(prng.below(3_000_000)))
            let tokens = UInt64(1 + prng.below(Int(burst)))
            if limiter.tryAcquire(tokens, now: now) == .acquired { admitted.append((now.nanoseconds, tokens)) }
        }
        #expect(admitted.count > 100, "seed \(seed): the test admitted too little to prove anything")
        var violations: [String] = []
        for first in admitted.indices {
            var total: UInt64 = 0
            for later in admitted[first...] {
                total += later.tokens
                let span = later.time - admitted[first].time
                // tokens ≤ burst + rate × span / 10⁹, kept in integers.
                if total * 1_000_000_000 > burst * 1_000_000_000 + rate * span {
                    violations.append("\(total) tokens in \(span) ns from admission \(first)")
                }
            }
        }
        #expect(violations.isEmpty, "seed \(seed) rate \(rate) burst \(burst): \(violations.prefix(3))")
    }

    @Test("asking for several tokens waits for all of them; a denied call takes none")
    func multipleTokens() {
        var limiter = RateLimiter(tokensPerSecond: 4, burst: 10, now: Self.start)
        let seven = limiter.tryAcquire(7, now: Self.start)
        #expect(seven == .acquired)
        let sevenMore = limiter.tryAcquire(7, now: Self.start)
        #expect(sevenMore == .denied(retryAfter: .seconds(1)), "4 tokens short at 4/s")
        #expect(limiter.availableTokens(now: Self.start) == 3, "the denied call must not have taken the 3 left")
        let lastThree = limiter.tryAcquire(3, now: Self.start)
        #expect(lastThree == .acquired)
    }

    @Test("time standing still or going backwards credits nothing; a century idle just fills the bucket")
    func oddClocks() {
        var limiter = RateLimiter(tokensPerSecond: 1, burst: 2, now: Self.start, startsFull: false)
        #expect(limiter.availableTokens(now: Self.start) == 0)
        let empty = limiter.tryAcquire(now: Self.start)
        #expect(empty == .denied(retryAfter: .seconds(1)))
        let earlier = MonotonicTime(nanoseconds: 1)
        let backwards = limiter.tryAcquire(now: earlier)
        #expect(backwards == .denied(retryAfter: .seconds(1)))
        #expect(
            limiter.tryAcquire(now: Self.start + .milliseconds(999)) != .acquired, "the earlier reading credited time")
        let century = Self.start + .seconds(100 * 365 * 24 * 3600)
        #expect(limiter.availableTokens(now: century) == 2)
    }
}
