/// The position of a batch in the order the shell must make batches durable. Batch N is durable only
/// after every batch before it, so "durable through N" names a prefix.
public struct BatchSequence: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    @inlinable public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    @inlinable public static func < (lhs: BatchSequence, rhs: BatchSequence) -> Bool { lhs.rawValue < rhs.rawValue }
    @inlinable public static func == (lhs: BatchSequence, rhs: BatchSequence) -> Bool { lhs.rawValue == rhs.rawValue }
    @inlinable public var next: BatchSequence { BatchSequence(rawValue + 1) }
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
    /// Whether the batch must be on stable storage before it is reported durable (under
    /// `--fsync always`): it holds Raft log entries, hard state, node metadata or the range deletion
    /// of a copy moved away. A batch without them
    /// holds only what applying committed entries wrote (data, applied indexes, counters). Those entries
    /// are in a synced log already, and a crash keeps a prefix of the batches, so losing such a batch is
    /// repaired by applying the entries again: it is written without an fsync and becomes durable with
    /// the next batch that has one.
    public var needsSync: Bool

    public init(sequence: BatchSequence, mutations: [StorageMutation] = [], needsSync: Bool = true) {
        self.sequence = sequence
        self.mutations = mutations
        self.needsSync = needsSync
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

/// Values that wait for batches to become durable, in batch order.
///
/// Why not a dictionary keyed by batch: values are added for the open batch (or one just before it)
/// on every write and leave in batch order once durable, so a short sorted array serves both without
/// hashing; perf showed the dictionary's hashing at an eighth of the loop thread's time under SET load.
/// Inlinable so that callers in other modules get it specialized for their value type: unspecialized,
/// every call looked up generic metadata at run time (perf: about 6 % of a cluster node's loop thread).
public struct PerBatch<Value>: Sendable where Value: Sendable {
    @usableFromInline var items: [(sequence: BatchSequence, value: Value)] = []

    @inlinable public init() {}

    @inlinable public var isEmpty: Bool { items.isEmpty }
    /// The oldest batch holding a value.
    @inlinable public var first: BatchSequence? { items.first?.sequence }

    /// The value of `sequence`, if any. Searches from the newest batch, where lookups usually land.
    @inlinable public subscript(sequence: BatchSequence) -> Value? {
        guard let position = items.lastIndex(where: { $0.sequence <= sequence }), items[position].sequence == sequence
        else { return nil }
        return items[position].value
    }

    /// Changes the value of `sequence`, starting from `initial` when it has none.
    @inlinable public mutating func modify<Result>(
        _ sequence: BatchSequence, default initial: @autoclosure () -> Value, _ body: (inout Value) -> Result
    ) -> Result {
        var position = items.endIndex
        while position > items.startIndex, items[position - 1].sequence > sequence { position -= 1 }
        if position == items.startIndex || items[position - 1].sequence != sequence {
            items.insert((sequence, initial()), at: position)
            position += 1
        }
        return body(&items[position - 1].value)
    }

    /// Removes and returns, oldest first, the values of every batch through `sequence`.
    @inlinable public mutating func removeThrough(_ sequence: BatchSequence) -> [(
        sequence: BatchSequence, value: Value
    )] {
        let end = items.firstIndex { $0.sequence > sequence } ?? items.endIndex
        guard end > items.startIndex else { return [] }
        let removed = Array(items[..<end])
        items.removeFirst(end)
        return removed
    }
}
