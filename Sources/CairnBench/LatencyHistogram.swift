/// A log-linear latency histogram in nanoseconds with at most 1/256 relative error, in the spirit of
/// HdrHistogram: every power of two is split into 128 equal buckets.
///
/// Why log-linear: latencies span six orders of magnitude (10 µs to 10 s) and a tail percentile
/// must be as precise as the median. With 128 buckets per power of two, a bucket is at most 1/128 of
/// its lower bound wide, and reporting its midpoint is off by at most 1/256 (0.4%), inside the 1%
/// the report promises. Values below 256 ns are exact. Values above `valueMax` (about 68 s) count in
/// the last bucket; `max` still holds the exact largest value seen.
///
/// Histograms merge by adding counts, so each connection, phase or second can keep its own.
public struct LatencyHistogram: Sendable, Equatable {
    /// Buckets per power of two, as a shift: 2^7 = 128.
    static let subBucketBits = 7
    static let subBucketCount = 1 << subBucketBits
    /// The largest value with its own bucket: 2^36 - 1 ns, about 68.7 seconds.
    public static let valueMax: UInt64 = (1 << 36) - 1
    static let bucketCount = index(of: valueMax) + 1

    private(set) var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    /// The smallest and largest values recorded, exactly (0 when empty).
    public private(set) var min: UInt64 = 0
    public private(set) var max: UInt64 = 0
    private(set) var sum: Double = 0
    /// The highest bucket index used, so percentile walks and merges stop early.
    private var highestIndex = 0

    public init() {
        counts = Array(repeating: 0, count: Self.bucketCount)
    }

    /// The bucket a value falls in. Values below 256 have their own bucket; above, the top 8 bits
    /// (the leading one and 7 more) pick the bucket.
    @inline(__always)
    static func index(of value: UInt64) -> Int {
        let clamped = value > valueMax ? valueMax : value
        if clamped < UInt64(2 * subBucketCount) { return Int(clamped) }
        let shift = (63 - clamped.leadingZeroBitCount) - subBucketBits
        let mantissa = Int(clamped >> UInt64(shift))
        return shift * subBucketCount + mantissa
    }

    /// The smallest value of bucket `index`, and its width.
    static func bounds(of index: Int) -> (lower: UInt64, width: UInt64) {
        if index < 2 * subBucketCount { return (UInt64(index), 1) }
        let shift = index / subBucketCount - 1
        let mantissa = index - shift * subBucketCount
        return (UInt64(mantissa) << UInt64(shift), UInt64(1) << UInt64(shift))
    }

    /// Counts one latency.
    @inline(__always)
    public mutating func record(_ nanoseconds: UInt64) {
        let index = Self.index(of: nanoseconds)
        counts[index] &+= 1
        if count == 0 || nanoseconds < min { min = nanoseconds }
        if nanoseconds > max { max = nanoseconds }
        if index > highestIndex { highestIndex = index }
        count += 1
        sum += Double(nanoseconds)
    }

    /// Adds every value of `other` to this histogram.
    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        for index in 0...other.highestIndex where other.counts[index] != 0 {
            counts[index] &+= other.counts[index]
        }
        if count == 0 || other.min < min { min = other.min }
        if other.max > max { max = other.max }
        highestIndex = Swift.max(highestIndex, other.highestIndex)
        count += other.count
        sum += other.sum
    }

    /// Forgets every value, keeping the storage.
    public mutating func reset() {
        guard count > 0 else { return }
        for index in 0...highestIndex { counts[index] = 0 }
        count = 0
        min = 0
        max = 0
        sum = 0
        highestIndex = 0
    }

    /// The mean latency in nanoseconds (0 when empty).
    public var mean: Double { count == 0 ? 0 : sum / Double(count) }

    /// The value at quantile `q` (0...1): the value of rank ceil(q × count) in sorted order, as the
    /// midpoint of its bucket and clamped to the exact min and max. 0 when empty.
    public func value(atQuantile q: Double) -> UInt64 {
        precondition(q >= 0 && q <= 1, "quantile \(q) outside 0...1")
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((q * Double(count)).rounded(.up)))
        if rank >= count { return max }
        var seen: UInt64 = 0
        for index in 0...highestIndex {
            seen += counts[index]
            if seen >= rank {
                let (lower, width) = Self.bounds(of: index)
                let middle = lower + (width - 1) / 2
                return Swift.min(Swift.max(middle, min), max)
            }
        }
        return max
    }

    /// The percentiles every report shows.
    public var summary: LatencySummary {
        LatencySummary(
            count: count, mean: mean, p50: value(atQuantile: 0.5), p90: value(atQuantile: 0.9),
            p99: value(atQuantile: 0.99), p999: value(atQuantile: 0.999), max: max)
    }
}

/// The percentiles of one histogram, in nanoseconds.
public struct LatencySummary: Sendable, Equatable {
    public var count: UInt64
    public var mean: Double
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var p999: UInt64
    public var max: UInt64

    public init(count: UInt64, mean: Double, p50: UInt64, p90: UInt64, p99: UInt64, p999: UInt64, max: UInt64) {
        self.count = count
        self.mean = mean
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.max = max
    }

    public static let empty = LatencySummary(count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0)
}
