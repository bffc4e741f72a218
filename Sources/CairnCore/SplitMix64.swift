/// A small, fast, seeded pseudo-random generator (Steele, Lea and Flood, "Fast splittable
/// pseudorandom number generators", 2014). Every random choice in a pure module goes through one.
///
/// Why not `SystemRandomNumberGenerator`: a core must give the same outputs for the same inputs, so
/// the simulator can replay a seed. The shell picks a seed once at start and logs it.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    private var state: UInt64

    public init(seed: UInt64) {
        self.state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniformly chosen integer in `0..<bound`.
    /// - Precondition: `bound > 0`.
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "SplitMix64.below needs a positive bound, got \(bound)")
        return Int(next() % UInt64(bound))
    }
}
