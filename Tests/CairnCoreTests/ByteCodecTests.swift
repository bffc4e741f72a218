import Testing

@testable import CairnCore

@Suite("byte codec")
struct ByteCodecTests {
    @Test("integers are written big-endian, byte for byte")
    func integersAreBigEndian() {
        var writer = ByteWriter()
        writer.write(UInt8(0x01))
        writer.write(UInt16(0x0203))
        writer.write(UInt32(0x0405_0607))
        writer.write(UInt64(0x0809_0A0B_0C0D_0E0F))
        #expect(writer.bytes == Array(1...15))
    }

    @Test("what the writer wrote reads back, and a short input is named in the error")
    func roundTripAndTruncation() throws {
        var prng = SplitMix64(seed: 7)
        for _ in 0..<200 {
            let values = (prng.next(), UInt32(truncatingIfNeeded: prng.next()), UInt16(truncatingIfNeeded: prng.next()))
            var writer = ByteWriter()
            writer.write(values.0)
            writer.write(values.1)
            writer.write(values.2)
            var reader = ByteReader(writer.bytes)
            #expect(try reader.readUInt64("a") == values.0)
            #expect(try reader.readUInt32("b") == values.1)
            #expect(try reader.readUInt16("c") == values.2)
            try reader.expectEnd("record")
        }
        var short = ByteReader([1, 2, 3])
        #expect(throws: DecodeError.truncated(field: "counter", needed: 4, available: 3)) {
            try short.readUInt32("counter")
        }
        #expect(short.remaining == 3)
    }

    @Test("arrays load big-endian integers at any offset")
    func arrayLoadsAtOffsets() {
        var bytes: [UInt8] = [0xFF]
        bytes.appendBigEndian(UInt64(0x0102_0304_0506_0708))
        bytes.appendBigEndian(UInt16(0xABCD))
        #expect(bytes.count == 11)
        #expect(bytes.loadBigEndian(as: UInt64.self, at: 1) == 0x0102_0304_0506_0708)
        #expect(bytes.loadBigEndian(as: UInt16.self, at: 9) == 0xABCD)
        #expect(bytes.loadBigEndian(as: UInt32.self, at: 0) == 0xFF01_0203)
    }
}
