/// The replicated state machine of the simulation: a map from keys to values, changed only by
/// committed entries, in log order (Raft §5.3: "apply … in log order").
///
/// `digest` summarizes the whole map in O(1) per change (an XOR of one hash per key and value), so
/// the simulator can compare every node's state with the first one to apply the same index, after every
/// entry, without iterating a dictionary (whose order changes per process).
struct KVStateMachine: Sendable, Equatable {
    private(set) var values: [[UInt8]: [UInt8]] = [:]
    private(set) var digest: UInt64 = 0

    /// What a command did, as its client sees it.
    enum Result: Sendable, Equatable {
        case done
        /// A compare-and-set: whether it swapped.
        case swapped(Bool)
    }

    init() {}

    /// Rebuilds the map from a snapshot made by `snapshotData()`.
    /// - Precondition: `data` came from `snapshotData()` (the simulator is the only writer).
    init(snapshot data: [UInt8]) {
        var position = 0
        func field() -> [UInt8] {
            precondition(position < data.count, "KV snapshot truncated at \(position)")
            let length = Int(data[position])
            precondition(position + 1 + length <= data.count, "KV snapshot truncated at \(position)")
            defer { position += 1 + length }
            return Array(data[(position + 1)..<(position + 1 + length)])
        }
        while position < data.count {
            let key = field()
            let value = field()
            set(key, value)
        }
    }

    func read(_ key: [UInt8]) -> [UInt8]? { values[key] }

    mutating func apply(_ command: KVCommand) -> Result {
        switch command {
        case .write(let key, let value):
            set(key, value)
            return .done
        case .compareAndSet(let key, let expected, let new):
            guard values[key] == expected else { return .swapped(false) }
            set(key, new)
            return .swapped(true)
        case .delete(let key):
            set(key, nil)
            return .done
        }
    }

    /// The whole map, keys sorted so equal maps give equal bytes on every run.
    func snapshotData() -> [UInt8] {
        var data: [UInt8] = []
        for key in values.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            guard let value = values[key] else { continue }
            data.append(UInt8(key.count))
            data.append(contentsOf: key)
            data.append(UInt8(value.count))
            data.append(contentsOf: value)
        }
        return data
    }

    private mutating func set(_ key: [UInt8], _ value: [UInt8]?) {
        if let old = values[key] { digest ^= Self.hash(key, old) }
        values[key] = value
        if let value { digest ^= Self.hash(key, value) }
    }

    /// FNV-1a over key, a separator and value: fixed across processes, unlike `Hasher`.
    static func hash(_ key: [UInt8], _ value: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01B3
        for byte in value { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}
