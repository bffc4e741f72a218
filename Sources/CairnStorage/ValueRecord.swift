import CairnCore

/// A stored value with its header: what one key holds.
///
/// Encoding (version 1): `[format=1][flags][expiresAt u64 BE if flags & 1][value bytes]`. The format
/// byte lets later versions add fields (a hybrid-logical-clock version, a type tag for more data
/// types) without rewriting old data.
public struct ValueRecord: Sendable, Equatable {
    public var value: [UInt8]
    /// Absolute expiry time in Unix milliseconds, or nil for a key that never expires.
    public var expiresAt: Int64?

    public init(value: [UInt8], expiresAt: Int64? = nil) {
        self.value = value
        self.expiresAt = expiresAt
    }

    static let formatVersion: UInt8 = 1
    static let hasExpiryFlag: UInt8 = 1

    /// Whether the key is expired at `unixMilliseconds` (Redis: expired when the time is reached).
    public func isExpired(at unixMilliseconds: Int64) -> Bool {
        guard let expiresAt else { return false }
        return expiresAt <= unixMilliseconds
    }

    public func encoded() -> [UInt8] {
        // Reserved before the first byte: an array literal would be one allocation, and growing it a second.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(10 + value.count)
        bytes.append(Self.formatVersion)
        bytes.append(expiresAt == nil ? 0 : Self.hasExpiryFlag)
        if let expiresAt { bytes.appendBigEndian(UInt64(expiresAt)) }
        bytes.append(contentsOf: value)
        return bytes
    }

    /// Decodes a record; throws when the bytes are not a record Cairn wrote.
    public static func decode(_ bytes: [UInt8], key: [UInt8]) throws(StorageError) -> ValueRecord {
        guard bytes.count >= 2 else { throw .corruptRecord(key: key, reason: "record of \(bytes.count) bytes") }
        guard bytes[0] == formatVersion else {
            throw .corruptRecord(key: key, reason: "unknown record format \(bytes[0]), expected \(formatVersion)")
        }
        if bytes[1] & hasExpiryFlag != 0 {
            guard bytes.count >= 10 else { throw .corruptRecord(key: key, reason: "truncated expiry time") }
            let time = bytes.loadBigEndian(as: UInt64.self, at: 2)
            guard time <= UInt64(Int64.max) else { throw .corruptRecord(key: key, reason: "expiry time overflows") }
            return ValueRecord(value: Array(bytes[10...]), expiresAt: Int64(time))
        }
        return ValueRecord(value: Array(bytes[2...]), expiresAt: nil)
    }
}
