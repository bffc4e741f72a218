/// CRC-16/XMODEM (polynomial 0x1021, initial value 0, no reflection, no final xor): the checksum Redis
/// Cluster hashes keys with (`src/crc16.c`), so Cairn's slots are the slots every cluster-aware Redis
/// client computes on its own.
///
/// Why table-driven: the slot of every key of every command goes through here. One table lookup per
/// byte is about eight times cheaper than the bit-at-a-time loop. Golden vectors in `CRC16Tests` pin it
/// (the standard check value of "123456789" is 0x31C3).
public enum CRC16 {
    /// The 256-entry lookup table for one byte at a time, most significant bit first.
    static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 {
            crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }

    /// The checksum of the bytes in `buffer`, read in place.
    public static func checksum(_ buffer: UnsafeRawBufferPointer) -> UInt16 {
        table.withUnsafeBufferPointer { table in
            var crc: UInt16 = 0
            for byte in buffer {
                crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
            }
            return crc
        }
    }

    /// The checksum of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt16 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// The checksum of `bytes`, without copying them.
    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
