import Testing

@testable import CairnCore

@Suite("peer frames")
struct PeerFrameTests {
    static let frames: [PeerFrame] = [
        PeerFrame(kind: 0, payload: []),
        PeerFrame(kind: 1, payload: Array("hello, peer".utf8)),
        PeerFrame(kind: 255, payload: (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7) }),
    ]

    /// Every frame the decoder gives for `bytes`, fed in pieces of the given sizes (cycled).
    static func decode(_ bytes: [UInt8], pieces: [Int] = [Int.max]) throws(PeerFrameError) -> [PeerFrame] {
        var decoder = PeerFrameDecoder()
        var frames: [PeerFrame] = []
        var start = 0
        var piece = 0
        while start < bytes.count {
            let end = start + min(pieces[piece % pieces.count], bytes.count - start)
            decoder.append(bytes[start..<end])
            start = end
            piece += 1
            while let frame = try decoder.next() { frames.append(frame) }
        }
        return frames
    }

    static func error(_ bytes: [UInt8]) -> PeerFrameError? {
        var decoder = PeerFrameDecoder()
        decoder.append(bytes)
        do {
            while try decoder.next() != nil {}
            return nil
        } catch {
            return error
        }
    }

    /// A frame's bytes with the header field at `position` replaced.
    static func patched(_ frame: PeerFrame, at position: Int, with bytes: [UInt8]) -> [UInt8] {
        var encoded = frame.encoded()
        encoded.replaceSubrange(position..<(position + bytes.count), with: bytes)
        return encoded
    }

    @Test("golden bytes pin the header layout")
    func goldenHeader() {
        let encoded = PeerFrame(kind: 3, payload: Array("123456789".utf8)).encoded()
        // "CRNP", version 1, kind 3, flags 0, length 9, CRC32C("123456789") = 0xE3069283.
        let header: [UInt8] = [0x43, 0x52, 0x4E, 0x50, 1, 3, 0, 0, 0, 0, 0, 9, 0xE3, 0x06, 0x92, 0x83]
        #expect(encoded == header + Array("123456789".utf8))
        #expect(PeerFrame.headerBytes == header.count)
    }

    @Test("frames round-trip", arguments: frames)
    func roundTrip(frame: PeerFrame) throws {
        #expect(try Self.decode(frame.encoded()) == [frame])
        var writer = ByteWriter()
        frame.encode(into: &writer)
        #expect(writer.bytes == frame.encoded())
    }

    @Test("several frames in one buffer come out in order, however the reads split them")
    func severalFramesAnySplit() throws {
        let stream = Self.frames.flatMap { $0.encoded() }
        #expect(try Self.decode(stream) == Self.frames)
        #expect(try Self.decode(stream, pieces: [1]) == Self.frames, "byte at a time")
        for seed in 0..<20 as Range<UInt64> {
            var prng = SplitMix64(seed: seed)
            let pieces = (0..<16).map { _ in 1 + prng.below(64) }
            #expect(try Self.decode(stream, pieces: pieces) == Self.frames, "seed \(seed)")
        }
    }

    @Test("an incomplete frame asks for more bytes, and the decoder holds only the unread bytes")
    func incompleteFrame() throws {
        let encoded = Self.frames[1].encoded()
        var decoder = PeerFrameDecoder()
        decoder.append(encoded.prefix(PeerFrame.headerBytes + 3))
        #expect(try decoder.next() == nil)
        #expect(try decoder.next() == nil, "asking again without new bytes is harmless")
        decoder.append(encoded.dropFirst(PeerFrame.headerBytes + 3))
        #expect(try decoder.next() == Self.frames[1])
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedBytes == 0)
    }

    @Test("text on the peer port is called out as the wrong protocol, as soon as it differs")
    func textIsWrongProtocol() {
        let error = Self.error(Array("PING\r\n".utf8))
        #expect(error == .badMagic(found: Array("PING".utf8), streamOffset: 0))
        #expect(error?.description.contains("this port speaks Cairn's peer protocol, not RESP/HTTP") == true)
        #expect(
            Self.error(Array("*1\r\n$4\r\nPING\r\n".utf8)) == .badMagic(found: Array("*1\r\n".utf8), streamOffset: 0))
        #expect(Self.error(Array("CRN".utf8)) == nil, "a prefix of the magic waits for more bytes")
        #expect(Self.error(Array("X".utf8)) == .badMagic(found: Array("X".utf8), streamOffset: 0), "refused at once")
        let http = Self.error(Array("GET / HTTP/1.1\r\n".utf8))
        #expect(http == .badMagic(found: Array("GET ".utf8), streamOffset: 0))
        #expect(http?.description.contains("not RESP/HTTP") == true)
    }

    @Test("binary bad magic names what was found and where, without blaming a text protocol")
    func binaryBadMagic() {
        let stream = Self.frames[1].encoded() + [0x00, 0xFF, 0x10, 0x01]
        let error = Self.error(stream)
        #expect(error == .badMagic(found: [0x00, 0xFF, 0x10, 0x01], streamOffset: Self.frames[1].encoded().count))
        #expect(
            error?.description
                == "expected a peer frame starting with \"CRNP\" at stream byte 27, found 0x00 0xFF 0x10 0x01")
    }

    @Test("an unsupported version is refused")
    func unsupportedVersion() {
        let error = Self.error(Self.patched(Self.frames[1], at: 4, with: [2]))
        #expect(error == .unsupportedVersion(found: 2, supported: 1))
        #expect(error?.description.contains("this node reads version 1") == true)
    }

    @Test("nonzero flags are refused")
    func nonzeroFlags() {
        let error = Self.error(Self.patched(Self.frames[1], at: 6, with: [0x80, 0x01]))
        #expect(error == .nonzeroFlags(found: 0x8001))
        #expect(error?.description == "peer frame flags are 0x8001, expected 0: the peer uses a newer frame format")
    }

    @Test("a corrupted payload fails its checksum")
    func checksumMismatch() {
        var encoded = Self.frames[1].encoded()
        encoded[PeerFrame.headerBytes] ^= 0x01
        let computed = CRC32C.checksum(encoded[PeerFrame.headerBytes...])
        let expected = CRC32C.checksum(Self.frames[1].payload)
        let error = Self.error(encoded)
        #expect(error == .checksumMismatch(kind: 1, payloadBytes: 11, expected: expected, computed: computed))
        #expect(error?.description.contains("failed its checksum") == true)
    }

    @Test("after an error the decoder stays failed and ignores new bytes")
    func staysFailed() {
        var decoder = PeerFrameDecoder()
        decoder.append(Array("GET /".utf8))
        let failure = PeerFrameError.badMagic(found: Array("GET ".utf8), streamOffset: 0)
        #expect(throws: failure) { try decoder.next() }
        #expect(decoder.hasFailed)
        decoder.append(Self.frames[1].encoded())
        #expect(throws: failure) { try decoder.next() }
        #expect(decoder.bufferedBytes == 5, "bytes after the failure are dropped")
    }

    @Test("a payload one byte over the limit is refused from its header alone")
    func oneByteOverLimit() {
        var decoder = PeerFrameDecoder()
        // Only the first 12 header bytes: the length is known, the payload is not there (nor allocated).
        let length = UInt32(Limits.peerFrameBytesMax + 1)
        decoder.append(
            PeerFrame.magic + [1, 1, 0, 0]
                + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: length >> UInt32($0)) })
        #expect(throws: PeerFrameError.frameTooLarge(payloadBytes: Int(length), limit: Limits.peerFrameBytesMax)) {
            try decoder.next()
        }
        #expect(decoder.bufferedBytes == 12)
        let largest = PeerFrameError.frameTooLarge(payloadBytes: Int(UInt32.max), limit: Limits.peerFrameBytesMax)
        #expect(Self.error(PeerFrame.magic + [1, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]) == largest)
    }

    @Test("a payload of exactly the limit passes")
    func exactlyAtLimit() throws {
        let frame = PeerFrame(kind: 9, payload: [UInt8](repeating: 0xA5, count: Limits.peerFrameBytesMax))
        var decoder = PeerFrameDecoder()
        let encoded = frame.encoded()
        decoder.append(encoded.prefix(PeerFrame.headerBytes))
        #expect(try decoder.next() == nil, "the header alone is accepted and waits for the payload")
        decoder.append(encoded.dropFirst(PeerFrame.headerBytes))
        #expect(try decoder.next() == frame)
    }

    @Test("random bytes never crash the decoder", arguments: 0..<8 as Range<UInt64>)
    func randomGarbage(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let valid = Self.frames.flatMap { $0.encoded() }
        for _ in 0..<500 {
            var bytes: [UInt8]
            switch prng.below(3) {
            case 0:
                bytes = (0..<prng.below(64)).map { _ in UInt8(truncatingIfNeeded: prng.next()) }
            case 1:
                // A valid header start, then noise: reaches the length and checksum checks.
                bytes = PeerFrame.magic + [1] + (0..<prng.below(64)).map { _ in UInt8(truncatingIfNeeded: prng.next()) }
            default:
                bytes = valid
                for _ in 0...prng.below(4) { bytes[prng.below(bytes.count)] = UInt8(truncatingIfNeeded: prng.next()) }
            }
            var decoder = PeerFrameDecoder()
            var start = 0
            while start < bytes.count, !decoder.hasFailed {
                let end = min(bytes.count, start + 1 + prng.below(32))
                decoder.append(bytes[start..<end])
                start = end
                while (try? decoder.next()) != nil {}
            }
        }
    }
}
