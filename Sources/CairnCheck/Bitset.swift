/// A set of small non-negative integers in 64-bit words: which operations a search has placed.
struct Bitset: Sendable, Hashable {
    private(set) var words: [UInt64]

    /// An empty set that can hold `0..<capacity`.
    init(capacity: Int) {
        precondition(capacity >= 0, "Bitset capacity must not be negative, got \(capacity)")
        self.words = Array(repeating: 0, count: (capacity + 63) / 64)
    }

    func contains(_ member: Int) -> Bool {
        words[member / 64] & (UInt64(1) << UInt64(member % 64)) != 0
    }

    mutating func insert(_ member: Int) {
        precondition(!contains(member), "\(member) is already in the set")
        words[member / 64] |= UInt64(1) << UInt64(member % 64)
    }

    mutating func remove(_ member: Int) {
        precondition(contains(member), "\(member) is not in the set")
        words[member / 64] &= ~(UInt64(1) << UInt64(member % 64))
    }

    /// - Precondition: both sets have the same capacity.
    func isSubset(of other: Bitset) -> Bool {
        precondition(words.count == other.words.count, "comparing bitsets of different capacities")
        for index in words.indices where words[index] & ~other.words[index] != 0 { return false }
        return true
    }
}
