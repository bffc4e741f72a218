/// An operating error from a storage engine: expected, handled, and reported with the engine's words.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// RocksDB returned an error string from `operation`.
    case rocksDB(operation: String, message: String)
    /// A stored record could not be decoded: the bytes on disk are not what Cairn wrote.
    case corruptRecord(key: [UInt8], reason: String)
    /// The data directory cannot be used (missing, not writable, locked by another process).
    case dataDirectory(path: String, reason: String)

    public var description: String {
        switch self {
        case .rocksDB(let operation, let message):
            "RocksDB \(operation) failed: \(message)"
        case .corruptRecord(let key, let reason):
            "corrupt record for key '\(String(decoding: key.prefix(64), as: UTF8.self))': \(reason)"
        case .dataDirectory(let path, let reason):
            "data directory \(path): \(reason)"
        }
    }
}
