/// The hash slot of a key: `CRC16(key) mod 16384`, with Redis Cluster's `{hash tag}` rule, exactly as
/// `CLUSTER KEYSLOT` computes it (DESIGN.md §2, "slot").
///
/// The hash tag rule lets a client keep related keys in one slot, and so in one partition, where a
/// multi-key command or a transaction can touch them together: if the key contains a `{`, and a `}`
/// follows it with at least one byte between them, only the bytes between the *first* `{` and the first
/// `}` after it are hashed. Otherwise the whole key is hashed. So `{user1000}.following` and
/// `{user1000}.followers` share a slot; `foo{}{bar}` hashes the whole key (the first tag is empty);
/// `foo{{bar}}zap` hashes `{bar`; `foo{bar}{zap}` hashes `bar`.
///
/// Why 16384 slots: it is Redis Cluster's number, so cluster-aware clients route by themselves
/// (`CLUSTER SLOTS`, `CLUSTER SHARDS`), and it is fine-grained enough to cut into any practical number
/// of partitions (see `PartitionTable`).
public enum HashSlot {
    /// How many slots there are. Slots are numbered `0..<count`.
    public static let count = 16384

    /// The slot of the key in `buffer`, read in place (no copy). This is the one the others call.
    public static func of(_ buffer: UnsafeRawBufferPointer) -> UInt16 {
        let tagged = hashTag(in: buffer)
        let crc = CRC16.checksum(UnsafeRawBufferPointer(rebasing: buffer[tagged]))
        return crc & UInt16(count - 1)
    }

    /// The slot of `key`.
    public static func of(_ key: [UInt8]) -> UInt16 {
        key.withUnsafeBytes { of($0) }
    }

    /// The slot of `key`, without copying it (a key inside a larger command buffer).
    public static func of(_ key: ArraySlice<UInt8>) -> UInt16 {
        key.withUnsafeBytes { of($0) }
    }

    /// The byte range of `buffer` that is hashed: the hash tag's contents if there is a non-empty tag,
    /// else the whole buffer.
    static func hashTag(in buffer: UnsafeRawBufferPointer) -> Range<Int> {
        let openBrace = UInt8(ascii: "{")
        let closeBrace = UInt8(ascii: "}")
        guard let open = buffer.firstIndex(of: openBrace) else { return 0..<buffer.count }
        guard let close = buffer[(open + 1)...].firstIndex(of: closeBrace) else { return 0..<buffer.count }
        guard close > open + 1 else { return 0..<buffer.count }
        return (open + 1)..<close
    }
}
