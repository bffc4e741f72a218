/// The position of a batch in the order the shell must make batches durable. Batch N is durable only
/// after every batch before it, so "durable through N" names a prefix.
public struct BatchSequence: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public static func < (lhs: BatchSequence, rhs: BatchSequence) -> Bool { lhs.rawValue < rhs.rawValue }
    public var next: BatchSequence { BatchSequence(rawValue + 1) }
    public var description: String { "batch#\(rawValue)" }
}

/// One change to the ordered byte store.
public enum StorageMutation: Sendable, Equatable {
    case put(key: [UInt8], value: [UInt8])
    case delete(key: [UInt8])
    /// Deletes every key in `start..<end`.
    case deleteRange(start: [UInt8], end: [UInt8])
}

/// The writes of one loop turn, applied atomically (one RocksDB WriteBatch) in sequence order.
public struct StorageBatch: Sendable, Equatable {
    public let sequence: BatchSequence
    public var mutations: [StorageMutation]

    public init(sequence: BatchSequence, mutations: [StorageMutation] = []) {
        self.sequence = sequence
        self.mutations = mutations
    }

    /// Bytes of keys and values in the batch (for metrics).
    public var byteCount: Int {
        mutations.reduce(0) { total, mutation in
            switch mutation {
            case .put(let key, let value): total + key.count + value.count
            case .delete(let key): total + key.count
            case .deleteRange(let start, let end): total + start.count + end.count
            }
        }
    }
}
