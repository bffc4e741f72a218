import CairnCore
import Testing

@testable import CairnPlacement

@Suite("CRC16")
struct CRC16Tests {
    @Test("golden vectors pin CRC-16/XMODEM, Redis Cluster's checksum")
    func goldenVectors() {
        #expect(CRC16.checksum(Array("123456789".utf8)) == 0x31C3, "the standard check value")
        #expect(CRC16.checksum([UInt8]()) == 0)
        #expect(CRC16.checksum([0x00]) == 0)
        #expect(CRC16.checksum([0xFF]) == 0x1EF0)
        #expect(CRC16.checksum(Array("A".utf8)) == 0x58E5)
    }

    @Test("the table agrees with the bit-at-a-time definition", arguments: 0..<50 as Range<UInt64>)
    func tableMatchesBitwiseModel(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let bytes = (0..<prng.below(100)).map { _ in UInt8(truncatingIfNeeded: prng.next()) }
        #expect(CRC16.checksum(bytes) == bitwiseCRC16(bytes), "seed \(seed)")
        #expect(CRC16.checksum(bytes[...]) == bitwiseCRC16(bytes), "seed \(seed)")
    }
}

@Suite("hash slots")
struct HashSlotTests {
    @Test("slots match Redis's CLUSTER KEYSLOT")
    func redisValues() {
        #expect(HashSlot.count == 16384)
        #expect(slot("somekey") == 11058)
        #expect(slot("foo") == 12182)
        #expect(slot("hello") == 866)
        #expect(slot("") == 0)
    }

    @Test("a non-empty hash tag is hashed alone; the first '{' and the first '}' after it count")
    func hashTags() {
        #expect(slot("{user1000}.following") == slot("{user1000}.followers"))
        #expect(slot("{user1000}.following") == slot("user1000"))
        #expect(slot("foo{}{bar}") == Int(CRC16.checksum(Array("foo{}{bar}".utf8)) % 16384), "empty tag: whole key")
        #expect(slot("foo{}{bar}") != slot("bar"))
        #expect(slot("foo{{bar}}zap") == slot("{bar"))
        #expect(slot("foo{bar}{zap}") == slot("bar"))
        #expect(slot("a}b{c}") == slot("c"), "a '}' before the first '{' does not count")
        #expect(slot("{") == Int(CRC16.checksum(Array("{".utf8)) % 16384))
        #expect(slot("abc{") == Int(CRC16.checksum(Array("abc{".utf8)) % 16384), "no '}': whole key")
        #expect(slot("}abc{") == Int(CRC16.checksum(Array("}abc{".utf8)) % 16384))
        #expect(slot("{x}") == slot("x"))
    }

    @Test("slots agree with a naive model of the hash tag rule", arguments: 0..<300 as Range<UInt64>)
    func matchesModel(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        // An alphabet heavy in braces, so tags, empty tags and unmatched braces all occur.
        let alphabet = Array("{}{}ab".utf8)
        let key = (0..<prng.below(12)).map { _ in alphabet[prng.below(alphabet.count)] }
        let expected = UInt16(bitwiseCRC16(modelHashedBytes(key)) % 16384)
        #expect(HashSlot.of(key) == expected, "seed \(seed) key \(String(decoding: key, as: UTF8.self))")
    }

    @Test("the array, slice and raw buffer forms agree", arguments: 0..<50 as Range<UInt64>)
    func formsAgree(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let buffer = (0..<(prng.below(40) + 2)).map { _ in UInt8(truncatingIfNeeded: prng.next() % 130) }
        let start = prng.below(buffer.count)
        let end = start + prng.below(buffer.count - start)
        let key = Array(buffer[start..<end])
        let fromSlice = HashSlot.of(buffer[start..<end])
        let fromBuffer = buffer.withUnsafeBytes { HashSlot.of(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
        #expect(HashSlot.of(key) == fromSlice, "seed \(seed)")
        #expect(HashSlot.of(key) == fromBuffer, "seed \(seed)")
        #expect(HashSlot.of(key) < 16384)
    }

    private func slot(_ key: String) -> Int { Int(HashSlot.of(Array(key.utf8))) }
}

/// CRC-16/XMODEM one bit at a time: the definition the table must agree with.
private func bitwiseCRC16(_ bytes: [UInt8]) -> UInt16 {
    var crc: UInt16 = 0
    for byte in bytes {
        crc ^= UInt16(byte) << 8
        for _ in 0..<8 {
            crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
    }
    return crc
}

/// Redis's `keyHashSlot` rule, written plainly over arrays.
private func modelHashedBytes(_ key: [UInt8]) -> [UInt8] {
    guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key }
    guard let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")) else { return key }
    return close == open + 1 ? key : Array(key[(open + 1)..<close])
}
