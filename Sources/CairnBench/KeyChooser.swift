import CairnCore

/// How a workload picks the record an operation reads or updates (YCSB's `requestdistribution`).
public enum KeyDistribution: String, Sendable, Equatable, CaseIterable {
    /// Every record equally likely.
    case uniform
    /// A few records are hot: Zipf's law with θ = 0.99 over the records, scattered over the key
    /// space by a hash so the hot records are not neighbours (YCSB's scrambled zipfian).
    case zipfian
    /// The most recently inserted records are hot (YCSB's skewed latest).
    case latest
}

/// Zipf-distributed integers in `0..<items` with rank 0 the most likely, by Gray et al.'s method
/// ("Quickly generating billion-record synthetic databases", SIGMOD 1994), as YCSB's
/// `ZipfianGenerator` does. The item count may grow (inserts); ζ(n) is then extended incrementally.
public struct ZipfianGenerator: Sendable {
    public static let thetaDefault = 0.99
    public let theta: Double
    public private(set) var items: Int
    private var zetaN: Double
    private let zeta2: Double
    private let alpha: Double
    private var eta: Double

    public init(items: Int, theta: Double = thetaDefault) {
        precondition(items >= 1, "a zipfian generator needs at least one item, got \(items)")
        precondition(theta > 0 && theta < 1, "zipfian theta \(theta) outside (0, 1)")
        self.theta = theta
        self.items = items
        zeta2 = Self.zeta(from: 0, to: 2, theta: theta)
        alpha = 1 / (1 - theta)
        zetaN = Self.zeta(from: 0, to: items, theta: theta)
        eta = 0
        eta = computeEta()
    }

    /// Σ 1/i^θ for i in (from, to].
    static func zeta(from: Int, to: Int, theta: Double) -> Double {
        var sum = 0.0
        var index = from
        while index < to {
            index += 1
            sum += 1 / BenchMath.pow(Double(index), theta)
        }
        return sum
    }

    private func computeEta() -> Double {
        (1 - BenchMath.pow(2 / Double(items), 1 - theta)) / (1 - zeta2 / zetaN)
    }

    /// Extends the distribution to `count` items (never shrinks).
    public mutating func grow(to count: Int) {
        guard count > items else { return }
        zetaN += Self.zeta(from: items, to: count, theta: theta)
        items = count
        eta = computeEta()
    }

    /// The next rank: 0 is the most popular.
    public mutating func next(_ prng: inout SplitMix64) -> Int {
        let u = Double(prng.next() >> 11) * 0x1.0p-53
        let uz = u * zetaN
        if uz < 1 { return 0 }
        if uz < 1 + BenchMath.pow(0.5, theta) { return Swift.min(1, items - 1) }
        let rank = Int(Double(items) * BenchMath.pow(eta * u - eta + 1, alpha))
        return Swift.min(Swift.max(rank, 0), items - 1)
    }
}

/// Picks record numbers for reads and updates, by a `KeyDistribution`, from a seeded generator.
public struct KeyChooser: Sendable {
    public let distribution: KeyDistribution
    private var zipfian: ZipfianGenerator?

    /// - Parameter records: how many records exist when the run starts (at least 1).
    public init(_ distribution: KeyDistribution, records: Int) {
        precondition(records >= 1, "a key chooser needs at least one record, got \(records)")
        self.distribution = distribution
        zipfian = distribution == .uniform ? nil : ZipfianGenerator(items: records)
    }

    /// A record number in `0..<records`, where `records` is the count that exists now (inserts grow it).
    public mutating func next(records: Int, _ prng: inout SplitMix64) -> Int {
        precondition(records >= 1, "no records to choose from")
        switch distribution {
        case .uniform:
            return prng.below(records)
        case .zipfian:
            // The popularity ranks stay those of the initial records (as YCSB's scrambled zipfian);
            // a hash scatters the hot ranks over the whole key space.
            let rank = zipfian!.next(&prng)
            return Int(Self.fnv1a64(UInt64(rank)) % UInt64(records))
        case .latest:
            zipfian!.grow(to: records)
            let back = zipfian!.next(&prng)
            return records - 1 - back
        }
    }

    /// FNV-1a over the 8 little-endian bytes of `value` (YCSB's `fnvhash64`, a fixed hash, never `Hasher`).
    static func fnv1a64(_ value: UInt64) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var rest = value
        for _ in 0..<8 {
            hash ^= rest & 0xFF
            hash = hash &* 0x0000_0100_0000_01B3
            rest >>= 8
        }
        return hash
    }
}
