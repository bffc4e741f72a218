/// One frame on the peer port (DESIGN.md §7): a kind byte and an opaque payload, such as an encoded Raft
/// message.
///
/// On the wire a frame is a 16-byte header and then the payload:
/// ```
/// ["CRNP" magic, 4 bytes][version u8 = 1][kind u8][flags u16 = 0][payload length u32][payload CRC32C u32]
/// ```
/// Integers are big-endian. The magic makes a client that dialled the wrong port fail at once with a clear
/// error instead of being read as a length; the length is checked against `Limits.peerFrameBytesMax`
/// before any payload is read; the CRC32C covers the payload, so corruption that TCP's weak checksum
/// misses is caught before the bytes reach a core. Flags are reserved and must be zero, so a later
/// version can give them a meaning without being misread by this one.
public struct PeerFrame: Sendable, Equatable {
    /// What the payload is; the peer connection's owner dispatches on it. The frame layer does not
    /// interpret it.
    public var kind: UInt8
    /// The frame's contents, at most `Limits.peerFrameBytesMax` bytes.
    public var payload: [UInt8]

    /// The four bytes every frame starts with: "CRNP".
    public static let magic: [UInt8] = Array("CRNP".utf8)
    /// The frame format this code writes and reads.
    public static let version: UInt8 = 1
    /// Bytes of the header before the payload.
    public static let headerBytes = 16

    /// A frame of `kind` carrying `payload`.
    public init(kind: UInt8, payload: [UInt8]) {
        self.kind = kind
        self.payload = payload
    }

    /// Appends the frame's header and payload to `writer`.
    /// - Precondition: the payload is at most `Limits.peerFrameBytesMax` bytes (the receiver would refuse
    ///   it and close the connection, so a larger one is a bug in the sender).
    public func encode(into writer: inout ByteWriter) {
        precondition(
            payload.count <= Limits.peerFrameBytesMax,
            "peer frame of kind \(kind) with \(payload.count) payload bytes, limit \(Limits.peerFrameBytesMax)")
        for byte in Self.magic { writer.write(byte) }
        writer.write(Self.version)
        writer.write(kind)
        writer.write(UInt16(0))
        writer.write(UInt32(payload.count))
        writer.write(CRC32C.checksum(payload))
        writer.writeRest(payload)
    }

    /// The frame's bytes on the wire.
    /// - Precondition: see `encode(into:)`.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.headerBytes + payload.count)
        encode(into: &writer)
        return writer.bytes
    }
}

/// Why bytes from a peer are not a valid frame. The connection is closed and the peer counted; each
/// description says what was wrong and what was expected, for the operator reading the log.
public enum PeerFrameError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A frame did not start with "CRNP". `found` holds the bytes where the magic should be (up to four;
    /// fewer when the mismatch showed early), and `streamOffset` where in the stream the frame started.
    case badMagic(found: [UInt8], streamOffset: Int)
    /// The frame's version is not one this node reads.
    case unsupportedVersion(found: UInt8, supported: UInt8)
    /// The reserved flags were not zero: the peer runs a format this node does not understand.
    case nonzeroFlags(found: UInt16)
    /// The header announced a payload larger than `limit` (`Limits.peerFrameBytesMax`).
    case frameTooLarge(payloadBytes: Int, limit: Int)
    /// The payload's CRC32C did not match the header's: the bytes were corrupted on the way.
    case checksumMismatch(kind: UInt8, payloadBytes: Int, expected: UInt32, computed: UInt32)

    /// What was wrong and what was expected, for the log line that reports the closed connection.
    public var description: String {
        switch self {
        case .badMagic(let found, let streamOffset):
            Self.badMagicDescription(found, streamOffset)
        case .unsupportedVersion(let found, let supported):
            "peer frame version \(found) is not supported: this node reads version \(supported); "
                + "run the same Cairn release on every node"
        case .nonzeroFlags(let found):
            "peer frame flags are \(Self.hex(found)), expected 0: the peer uses a newer frame format"
        case .frameTooLarge(let payloadBytes, let limit):
            "peer frame payload of \(payloadBytes) bytes exceeds the limit of \(limit) bytes"
        case .checksumMismatch(let kind, let payloadBytes, let expected, let computed):
            "peer frame of kind \(kind) with \(payloadBytes) payload bytes failed its checksum: the header says "
                + "CRC32C \(Self.hex(expected)), the payload's is \(Self.hex(computed)); the bytes were corrupted"
        }
    }

    private static func badMagicDescription(_ found: [UInt8], _ streamOffset: Int) -> String {
        let shown = found.map { Self.hex($0) }.joined(separator: " ")
        let text = "expected a peer frame starting with \"CRNP\" at stream byte \(streamOffset), found \(shown)"
        let looksLikeText = found.allSatisfy { (0x20..<0x7F).contains($0) || $0 == 0x0D || $0 == 0x0A || $0 == 0x09 }
        guard looksLikeText else { return text }
        return text + " (text): this port speaks Cairn's peer protocol, not RESP/HTTP; "
            + "clients connect to the client port"
    }

    private static func hex<Value: FixedWidthInteger>(_ value: Value) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, Value.bitWidth / 4 - digits.count)) + digits
    }
}

/// Turns the bytes of one peer connection into frames, however the reads split them.
///
/// Feed it with `append(_:)` after every read, then call `next()` until it returns nil. Header fields are
/// checked as soon as their bytes arrive, so a client on the wrong port or an oversized frame is refused
/// before the rest is read, and no payload is allocated before it has fully arrived. The decoder keeps a
/// read offset into its buffer and compacts it only when the consumed part outweighs the unread part,
/// so a read carrying many frames costs one copy of each payload, not one copy of the buffer per frame.
///
/// Once `next()` throws, the decoder stays failed: every later call throws the same error and appended
/// bytes are dropped, because the stream has lost its framing and the connection MUST be closed.
public struct PeerFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var readOffset = 0
    /// Stream bytes consumed before `buffer[0]`, for error messages.
    private var compactedBytes = 0
    private var failure: PeerFrameError?

    /// Buffer capacity kept after the decoder drains; a larger one (left by a huge frame) is released.
    static let retainedCapacityBytesMax = 1024 * 1024

    /// A decoder at the start of a stream.
    public init() {}

    /// Bytes received but not yet returned as frames.
    public var bufferedBytes: Int { buffer.count - readOffset }

    /// Whether a malformed frame was seen; the connection must then be closed.
    public var hasFailed: Bool { failure != nil }

    /// Adds bytes read from the connection. Ignored once the decoder has failed. A slice, not any
    /// collection: a generic call across the module boundary ran unspecialized (perf).
    public mutating func append(_ bytes: ArraySlice<UInt8>) {
        guard failure == nil else { return }
        compact()
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) { append(bytes[...]) }

    /// The next complete frame, or nil if more bytes are needed.
    /// - Throws: `PeerFrameError` for a malformed frame, and the same error on every later call.
    public mutating func next() throws(PeerFrameError) -> PeerFrame? {
        if let failure { throw failure }
        do {
            return try decodeNext()
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func decodeNext() throws(PeerFrameError) -> PeerFrame? {
        let available = bufferedBytes
        try checkHeader(available: min(available, PeerFrame.headerBytes))
        guard available >= PeerFrame.headerBytes else { return nil }
        let payloadBytes = Int(readUInt32(at: readOffset + 8))
        guard available - PeerFrame.headerBytes >= payloadBytes else { return nil }
        let payloadStart = readOffset + PeerFrame.headerBytes
        let payload = Array(buffer[payloadStart..<(payloadStart + payloadBytes)])
        let expected = readUInt32(at: readOffset + 12)
        let computed = CRC32C.checksum(payload)
        let kind = buffer[readOffset + 5]
        guard computed == expected else {
            throw .checksumMismatch(kind: kind, payloadBytes: payloadBytes, expected: expected, computed: computed)
        }
        readOffset = payloadStart + payloadBytes
        return PeerFrame(kind: kind, payload: payload)
    }

    /// Checks the header fields that lie within the first `available` bytes of the unread data.
    private func checkHeader(available: Int) throws(PeerFrameError) {
        let magicBytes = min(available, PeerFrame.magic.count)
        let found = Array(buffer[readOffset..<(readOffset + magicBytes)])
        guard found.elementsEqual(PeerFrame.magic.prefix(magicBytes)) else {
            throw .badMagic(found: found, streamOffset: compactedBytes + readOffset)
        }
        if available > 4, buffer[readOffset + 4] != PeerFrame.version {
            throw .unsupportedVersion(found: buffer[readOffset + 4], supported: PeerFrame.version)
        }
        if available >= 8 {
            let flags = UInt16(buffer[readOffset + 6]) << 8 | UInt16(buffer[readOffset + 7])
            guard flags == 0 else { throw .nonzeroFlags(found: flags) }
        }
        if available >= 12 {
            let payloadBytes = Int(readUInt32(at: readOffset + 8))
            guard payloadBytes <= Limits.peerFrameBytesMax else {
                throw .frameTooLarge(payloadBytes: payloadBytes, limit: Limits.peerFrameBytesMax)
            }
        }
    }

    private func readUInt32(at position: Int) -> UInt32 {
        buffer[position..<(position + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Drops consumed bytes when that is cheap: all of them when nothing is unread, otherwise only once
    /// they are at least half the buffer, so each byte is moved at most about once on average.
    private mutating func compact() {
        guard readOffset > 0 else { return }
        if readOffset == buffer.count {
            compactedBytes += readOffset
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacityBytesMax)
            readOffset = 0
        } else if readOffset >= buffer.count / 2 {
            compactedBytes += readOffset
            buffer.removeFirst(readOffset)
            readOffset = 0
        }
    }
}
