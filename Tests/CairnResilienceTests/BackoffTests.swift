import CairnCore
import Testing

@testable import CairnResilience

@Suite("backoff")
struct BackoffTests {
    @Test("the ceiling doubles from the base and stops at the cap")
    func ceilingDoublesThenCaps() {
        let backoff = Backoff(base: .milliseconds(10), cap: .seconds(1))
        #expect(backoff.ceiling(attempt: 0) == .milliseconds(10))
        #expect(backoff.ceiling(attempt: 1) == .milliseconds(20))
        #expect(backoff.ceiling(attempt: 6) == .milliseconds(640))
        #expect(backoff.ceiling(attempt: 7) == .seconds(1), "1280 ms is capped at 1 s")
        #expect(backoff.ceiling(attempt: 63) == .seconds(1))
        #expect(backoff.ceiling(attempt: 10_000) == .seconds(1), "large attempts must not overflow")
    }

    @Test("the ceiling saturates instead of overflowing for huge bases")
    func ceilingSaturates() {
        let huge = Backoff(base: TimeSpan(nanoseconds: 1 << 62), cap: TimeSpan(nanoseconds: .max))
        #expect(huge.ceiling(attempt: 1) == TimeSpan(nanoseconds: 1 << 63))
        #expect(huge.ceiling(attempt: 2) == TimeSpan(nanoseconds: .max))
        var prng = SplitMix64(seed: 1)
        _ = huge.delay(attempt: 5, using: &prng)  // The whole 64-bit range: must not trap.
    }

    @Test("every delay lies within 0...min(cap, base × 2^attempt)", arguments: 0..<40 as Range<UInt64>)
    func delaysWithinBounds(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let base = TimeSpan(nanoseconds: 1 + UInt64(prng.below(50_000_000)))
        let cap = base + TimeSpan(nanoseconds: UInt64(prng.below(5_000_000_000)))
        let backoff = Backoff(base: base, cap: cap)
        for attempt in 0..<30 {
            let delay = backoff.delay(attempt: attempt, using: &prng)
            #expect(delay <= backoff.ceiling(attempt: attempt), "seed \(seed) attempt \(attempt): \(delay)")
            #expect(delay <= cap, "seed \(seed) attempt \(attempt)")
        }
    }

    /// Method: many seeds, one draw each per attempt. A uniform draw on 0...c has mean c/2 and standard
    /// deviation c/√12 ≈ 0.29c, so the mean of 20,000 draws is within 0.002c of c/2 one time in three;
    /// the 1% tolerance is five standard deviations. The quarter counts check the spread too, which a
    /// constant c/2 (the mean right, the jitter gone) would fail.
    @Test("delays are uniform: mean half the ceiling, each quarter of the range equally likely", arguments: [0, 3, 12])
    func delaysAreUniform(attempt: Int) {
        let backoff = Backoff(base: .milliseconds(10), cap: .seconds(30))
        let ceiling = Double(backoff.ceiling(attempt: attempt).nanoseconds)
        let draws = 20_000
        var sum = 0.0
        var quarters = [0, 0, 0, 0]
        for seed in 0..<UInt64(draws) {
            var prng = SplitMix64(seed: seed &* 0x9E37_79B9)
            let delay = Double(backoff.delay(attempt: attempt, using: &prng).nanoseconds)
            sum += delay
            quarters[Swift.min(3, Int(delay / ceiling * 4))] += 1
        }
        let mean = sum / Double(draws)
        #expect(abs(mean - ceiling / 2) < 0.01 * ceiling, "mean \(mean) vs half ceiling \(ceiling / 2)")
        for (index, count) in quarters.enumerated() {
            // Binomial(20000, 0.25): standard deviation ≈ 61; 400 is more than six of them.
            #expect(abs(count - draws / 4) < 400, "quarter \(index) got \(count) of \(draws)")
        }
    }

    @Test("the same seed gives the same delays; another seed gives others")
    func deterministicPerSeed() {
        let backoff = Backoff.standard
        func delays(seed: UInt64) -> [TimeSpan] {
            var prng = SplitMix64(seed: seed)
            return (0..<20).map { backoff.delay(attempt: $0, using: &prng) }
        }
        #expect(delays(seed: 7) == delays(seed: 7))
        #expect(delays(seed: 7) != delays(seed: 8))
    }

    @Test("each delay spends exactly one step of the generator")
    func oneStepPerDelay() {
        var drawn = SplitMix64(seed: 99)
        var stepped = SplitMix64(seed: 99)
        _ = Backoff.standard.delay(attempt: 4, using: &drawn)
        _ = stepped.next()
        #expect(drawn == stepped)
        #expect(drawn.next() == stepped.next())
    }

    @Test("the upper bound is inclusive: a 1 ns ceiling gives both 0 and 1 ns")
    func inclusiveUpperBound() {
        let backoff = Backoff(base: TimeSpan(nanoseconds: 1), cap: TimeSpan(nanoseconds: 1))
        var prng = SplitMix64(seed: 3)
        let seen = Set((0..<200).map { _ in backoff.delay(attempt: 0, using: &prng).nanoseconds })
        #expect(seen == [0, 1])
    }
}
