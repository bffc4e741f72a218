import CairnCore
import Testing

@testable import CairnBench

@Suite("latency histogram")
struct LatencyHistogramTests {
    /// The value of rank ceil(q × n) in sorted order: the definition the histogram approximates.
    static func exactQuantile(_ sorted: [UInt64], _ q: Double) -> UInt64 {
        let rank = max(1, Int((q * Double(sorted.count)).rounded(.up)))
        return sorted[min(rank, sorted.count) - 1]
    }

    /// Latency-like data: log-uniform from 1 µs to 10 s, plus a cluster of fast values and rare outliers.
    static func generated(seed: UInt64, count: Int) -> [UInt64] {
        var prng = SplitMix64(seed: seed)
        return (0..<count).map { index in
            let exponent = 3 + 7 * Double(prng.next() >> 11) * 0x1.0p-53
            var value = UInt64(BenchMath.exp(exponent * BenchMath.log(10)))
            if index % 10 == 0 { value = 50_000 + UInt64(prng.below(1000)) }
            if index % 997 == 0 { value = 30_000_000_000 + UInt64(prng.below(1_000_000)) }
            return value
        }
    }

    @Test(
        "percentiles are within 1% of the exact percentiles of generated data", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func percentilesWithinOnePercent(seed: UInt64) {
        let values = Self.generated(seed: seed, count: 50_000)
        var histogram = LatencyHistogram()
        for value in values { histogram.record(value) }
        let sorted = values.sorted()
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            let exact = Double(Self.exactQuantile(sorted, q))
            let estimate = Double(histogram.value(atQuantile: q))
            #expect(abs(estimate - exact) <= exact * 0.01, "q=\(q): exact \(exact), histogram \(estimate)")
        }
        #expect(histogram.max == sorted.last!)
        #expect(histogram.min == sorted.first!)
        #expect(histogram.count == UInt64(values.count))
    }

    @Test("small values are exact and every bucket is at most 1/128 of its lower bound wide")
    func bucketsAreNarrow() {
        for value: UInt64 in 0..<256 {
            #expect(LatencyHistogram.bounds(of: LatencyHistogram.index(of: value)) == (value, 1))
        }
        var previous = -1
        var values: Set<UInt64> = []
        for shift: UInt64 in 0..<36 {
            let low: UInt64 = 1 << shift
            values.insert(low)
            values.insert(low + 1)
            values.insert(low * 2 - 1)
        }
        do {
            for value in Set(values).sorted() {
                let index = LatencyHistogram.index(of: value)
                let (lower, width) = LatencyHistogram.bounds(of: index)
                #expect(value >= lower && value < lower + width, "value \(value) outside its bucket")
                #expect(width == 1 || Double(width) / Double(lower) <= 1.0 / 128)
                #expect(index >= previous)
                previous = index
            }
        }
        #expect(LatencyHistogram.index(of: .max) == LatencyHistogram.bucketCount - 1)
    }

    @Test("merging two histograms equals recording everything in one")
    func mergeEqualsUnion() {
        let values = Self.generated(seed: 9, count: 20_000)
        var left = LatencyHistogram()
        var right = LatencyHistogram()
        var whole = LatencyHistogram()
        for (index, value) in values.enumerated() {
            if index % 3 == 0 { left.record(value) } else { right.record(value) }
            whole.record(value)
        }
        left.merge(right)
        #expect(left.summary == whole.summary)
        #expect(left.count == whole.count)
    }

    @Test("an empty histogram reports zeros; reset forgets everything")
    func emptyAndReset() {
        var histogram = LatencyHistogram()
        #expect(histogram.summary == .empty)
        histogram.record(1_000_000)
        #expect(histogram.value(atQuantile: 0.5) == 1_000_000)
        histogram.reset()
        #expect(histogram.summary == .empty)
    }

    @Test("log and exp agree with known values")
    func mathIsAccurate() {
        #expect(abs(BenchMath.log(1) - 0) < 1e-15)
        #expect(abs(BenchMath.log(2.718281828459045) - 1) < 1e-14)
        #expect(abs(BenchMath.log(1e-6) + 13.815510557964274) < 1e-12)
        #expect(abs(BenchMath.exp(1) - 2.718281828459045) < 1e-14)
        #expect(abs(BenchMath.pow(10, 3) - 1000) < 1e-9)
        #expect(abs(BenchMath.pow(2, 0.5) - 1.4142135623730951) < 1e-15)
    }
}
