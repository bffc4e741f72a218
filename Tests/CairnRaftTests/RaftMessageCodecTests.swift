import CairnCore
import Testing

@testable import CairnRaft

/// Sample messages for the codec tests: every kind, every entry kind, and the edge values of each field.
enum MessageSamples {
    static let metadata = SnapshotMetadata(
        index: 40, term: 6, configuration: ConfigurationState(voters: [1, 2, 3], learners: [9]))
    static let jointConfiguration = ConfigurationState(
        voters: [1, 2, 4], learners: [7, 8], outgoingVoters: [1, 2, 3])
    static let allEntryKinds: [Entry] = [
        Entry(term: 3, index: 6, kind: .empty),
        Entry(term: 3, index: 7, kind: .command([])),
        Entry(term: 3, index: 8, kind: .command(Array("SET k v".utf8))),
        Entry(term: 3, index: 9, kind: .command((0...255).map { UInt8($0) })),
        Entry(term: 4, index: 10, kind: .configuration(ConfigurationState(voters: [1, 2, 3]))),
        Entry(term: 4, index: 11, kind: .configuration(jointConfiguration)),
        Entry(term: 4, index: 12, kind: .configuration(.empty)),
        Entry(term: Term(UInt64.max), index: LogIndex(UInt64.max), kind: .command([0])),
    ]

    static func message(_ kind: RaftMessage.Kind, group: GroupID = 1, term: Term = 5) -> RaftMessage {
        RaftMessage(group: group, term: term, kind: kind)
    }

    /// Messages small enough to cut at every prefix.
    static let small: [RaftMessage] = [
        message(.requestVote(lastLogIndex: 0, lastLogTerm: 0, isPreVote: false, isTransfer: false), group: 0, term: 0),
        message(.requestVote(lastLogIndex: 12, lastLogTerm: 4, isPreVote: true, isTransfer: false)),
        message(
            .requestVote(
                lastLogIndex: LogIndex(UInt64.max), lastLogTerm: Term(UInt64.max), isPreVote: true,
                isTransfer: true), group: GroupID(UInt64.max), term: Term(UInt64.max)),
        message(.requestVoteResponse(granted: false, isPreVote: false)),
        message(.requestVoteResponse(granted: true, isPreVote: false)),
        message(.requestVoteResponse(granted: false, isPreVote: true)),
        message(.requestVoteResponse(granted: true, isPreVote: true), term: Term(UInt64.max)),
        message(.appendEntries(AppendEntries(previousIndex: 0, previousTerm: 0, entries: [], commit: 0, sequence: 0))),
        message(
            .appendEntries(
                AppendEntries(
                    previousIndex: LogIndex(UInt64.max), previousTerm: Term(UInt64.max), entries: [],
                    commit: LogIndex(UInt64.max), sequence: UInt64.max))),
        message(
            .appendEntries(
                AppendEntries(previousIndex: 5, previousTerm: 2, entries: allEntryKinds, commit: 4, sequence: 1))),
        message(.appendEntriesResponse(AppendEntriesResponse(success: true, matchIndex: 12, sequence: 3))),
        message(
            .appendEntriesResponse(
                AppendEntriesResponse(
                    success: false, matchIndex: 0, rejectedIndex: 20, conflictIndex: 14, conflictTerm: 3, sequence: 4))),
        message(
            .appendEntriesResponse(
                AppendEntriesResponse(
                    success: false, matchIndex: LogIndex(UInt64.max), rejectedIndex: LogIndex(UInt64.max),
                    conflictIndex: LogIndex(UInt64.max), conflictTerm: Term(UInt64.max), sequence: UInt64.max))),
        message(
            .installSnapshot(
                SnapshotChunk(
                    metadata: SnapshotMetadata(index: 0, term: 0, configuration: .empty), totalBytes: 0, offset: 0,
                    data: [], isLast: true))),
        message(
            .installSnapshot(
                SnapshotChunk(metadata: metadata, totalBytes: 10, offset: 4, data: [1, 2, 3], isLast: false))),
        message(
            .installSnapshot(
                SnapshotChunk(
                    metadata: SnapshotMetadata(
                        index: LogIndex(UInt64.max), term: Term(UInt64.max), configuration: jointConfiguration),
                    totalBytes: Int.max, offset: Int.max - 2, data: [7, 8], isLast: true))),
        message(.installSnapshotResponse(snapshotIndex: 0, receivedBytes: 0, isComplete: false)),
        message(.installSnapshotResponse(snapshotIndex: 40, receivedBytes: 4096, isComplete: true)),
        message(
            .installSnapshotResponse(snapshotIndex: LogIndex(UInt64.max), receivedBytes: Int.max, isComplete: true)),
        message(.timeoutNow),
        message(.timeoutNow, group: GroupID(UInt64.max), term: Term(UInt64.max)),
    ]

    /// Messages at the size limits: a maximal snapshot chunk and an append of many large entries.
    static var large: [RaftMessage] {
        var prng = SplitMix64(seed: 7)
        let chunkData = (0..<Limits.raftSnapshotChunkBytesMax).map { _ in UInt8(truncatingIfNeeded: prng.next()) }
        let chunk = SnapshotChunk(
            metadata: metadata, totalBytes: 3 * chunkData.count, offset: chunkData.count, data: chunkData,
            isLast: false)
        let entries = (1...8).map { index in
            Entry(
                term: 2, index: LogIndex(UInt64(index)),
                kind: .command([UInt8](repeating: UInt8(index), count: 1 << 20)))
        }
        return [
            message(.installSnapshot(chunk)),
            message(
                .appendEntries(
                    AppendEntries(previousIndex: 0, previousTerm: 0, entries: entries, commit: 0, sequence: 2))),
        ]
    }
}

@Suite("Raft message codec")
struct RaftMessageCodecTests {
    @Test("every kind of message round-trips, edge values included", arguments: MessageSamples.small)
    func smallRoundTrip(message: RaftMessage) throws {
        let bytes = RaftCodec.encode(message)
        #expect(try RaftCodec.decodeMessage(bytes) == message)
        var writer = ByteWriter()
        writer.write(UInt8(0xAB))
        RaftCodec.encode(message, into: &writer)
        writer.write(UInt8(0xCD))
        #expect(writer.bytes == [0xAB] + bytes + [0xCD], "encode(into:) appends exactly encode(_:)")
        var reader = ByteReader(writer.bytes)
        _ = try reader.readUInt8("leading byte")
        #expect(try RaftCodec.decodeMessage(&reader) == message)
        #expect(reader.remaining == 1, "the reader stops right after the message")
    }

    @Test("messages at the size limits round-trip")
    func largeRoundTrip() throws {
        for message in MessageSamples.large {
            #expect(try RaftCodec.decodeMessage(RaftCodec.encode(message)) == message)
        }
    }

    @Test("a command of exactly raftEntryBytesMax bytes round-trips")
    func entryAtLimit() throws {
        let command = [UInt8](repeating: 0x5A, count: Limits.raftEntryBytesMax)
        let entry = Entry(term: 1, index: 1, kind: .command(command))
        let message = MessageSamples.message(
            .appendEntries(AppendEntries(previousIndex: 0, previousTerm: 0, entries: [entry], commit: 0, sequence: 0)))
        let bytes = RaftCodec.encode(message)
        #expect(bytes.count == 76 + Limits.raftEntryBytesMax)
        #expect(bytes.count <= Limits.peerFrameBytesMax, "the largest entry fits in one peer frame")
        #expect(try RaftCodec.decodeMessage(bytes) == message)
    }

    /// The format is an agreement between nodes of different releases: changing it must be deliberate.
    @Test("golden bytes pin the format of an AppendEntries")
    func goldenBytes() throws {
        let message = RaftMessage(
            group: 7, term: 3,
            kind: .appendEntries(
                AppendEntries(
                    previousIndex: 5, previousTerm: 2,
                    entries: [
                        Entry(term: 3, index: 6, kind: .command(Array("hi".utf8))),
                        Entry(term: 3, index: 7, kind: .empty),
                    ], commit: 4, sequence: 9)))
        let golden = Self.bytes(
            """
            01 03 0000000000000007 0000000000000003
            0000000000000005 0000000000000002 0000000000000004 0000000000000009 00000002
            00000014 01 01 0000000000000003 0000000000000006 6869
            00000012 01 00 0000000000000003 0000000000000007
            """)
        #expect(RaftCodec.encode(message) == golden)
        #expect(try RaftCodec.decodeMessage(golden) == message)
    }

    @Test("every strict prefix of a message throws", arguments: MessageSamples.small)
    func truncationThrows(message: RaftMessage) {
        let bytes = RaftCodec.encode(message)
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self, "prefix of \(length) bytes of \(message)") {
                try RaftCodec.decodeMessage(Array(bytes.prefix(length)))
            }
        }
    }

    @Test("trailing bytes after a message throw")
    func trailingBytesThrow() {
        let bytes = RaftCodec.encode(MessageSamples.message(.timeoutNow)) + [0]
        #expect(throws: DecodeError.invalid(field: "message trailing bytes", value: 1)) {
            try RaftCodec.decodeMessage(bytes)
        }
    }

    @Test(
        "random bytes never crash the decoder, and whatever decodes re-encodes to itself",
        arguments: 0..<8 as Range<UInt64>)
    func randomGarbage(seed: UInt64) throws {
        var prng = SplitMix64(seed: seed)
        var decoded = 0
        // The sizes of the fixed-size messages, so that some random inputs are the right length to decode.
        let fixedSizes = [18, 20, 35, 36, 54, 59]
        for _ in 0..<1000 {
            let count = prng.below(2) == 0 ? fixedSizes[prng.below(fixedSizes.count)] : prng.below(96)
            // Half the bytes are 0 or 1, so that flags and small lengths are often valid.
            var bytes = (0..<count).map { _ in
                prng.below(2) == 0 ? UInt8(prng.below(2)) : UInt8(truncatingIfNeeded: prng.next())
            }
            // Most inputs get past the version and kind bytes, so the bodies are exercised too.
            if bytes.count >= 2, prng.below(8) != 0 {
                bytes[0] = 1
                bytes[1] = UInt8(1 + prng.below(7))
            }
            guard let message = try? RaftCodec.decodeMessage(bytes) else { continue }
            decoded += 1
            #expect(try RaftCodec.decodeMessage(RaftCodec.encode(message)) == message, "seed \(seed)")
        }
        #expect(decoded > 0, "seed \(seed): some random inputs should decode, or the re-encoding check is idle")
    }

    @Test("valid messages with random bytes changed never crash the decoder", arguments: 0..<8 as Range<UInt64>)
    func mutatedMessages(seed: UInt64) throws {
        var prng = SplitMix64(seed: seed)
        let encodings = MessageSamples.small.map { RaftCodec.encode($0) }
        var decoded = 0
        for _ in 0..<1000 {
            var bytes = encodings[prng.below(encodings.count)]
            for _ in 0...prng.below(3) {
                bytes[prng.below(bytes.count)] = UInt8(truncatingIfNeeded: prng.next())
            }
            if prng.below(4) == 0 { bytes = Array(bytes.prefix(prng.below(bytes.count + 1))) }
            guard let message = try? RaftCodec.decodeMessage(bytes) else { continue }
            decoded += 1
            #expect(try RaftCodec.decodeMessage(RaftCodec.encode(message)) == message, "seed \(seed)")
        }
        #expect(decoded > 0, "seed \(seed): some changed messages should still decode")
    }

    @Test("a chunk corrupted on the way keeps its sent checksum, and the follower refuses it")
    func corruptChunkKeepsChecksum() throws {
        let chunk = SnapshotChunk(
            metadata: MessageSamples.metadata, totalBytes: 8, offset: 0, data: [1, 2, 3, 4], isLast: false)
        var bytes = RaftCodec.encode(RaftMessage(group: 1, term: 1, kind: .installSnapshot(chunk)))
        bytes[bytes.count - 1] ^= 0xFF  // The last data byte, flipped in flight.
        let decoded = try RaftCodec.decodeMessage(bytes)
        guard case .installSnapshot(let received) = decoded.kind else {
            Issue.record("decoded \(decoded), not a snapshot chunk")
            return
        }
        #expect(received.data == [1, 2, 3, 0xFB])
        #expect(received.checksum == chunk.checksum, "the checksum is kept as sent")
        #expect(received.checksum != CRC32C.checksum(received.data))

        var core = try Fixture.core(2)
        _ = core.step(.received(decoded, from: 1))
        #expect(core.counters.rejectedSnapshotChunks == 1)
    }

    @Test("a wrong checksum round-trips unchanged")
    func wrongChecksumRoundTrips() throws {
        var chunk = SnapshotChunk(
            metadata: MessageSamples.metadata, totalBytes: 3, offset: 0, data: [1, 2, 3], isLast: true)
        chunk.checksum = 0xDEAD_BEEF
        let message = RaftMessage(group: 1, term: 1, kind: .installSnapshot(chunk))
        #expect(try RaftCodec.decodeMessage(RaftCodec.encode(message)) == message)
    }

    /// Bytes from hex digits; spaces and newlines are ignored.
    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.filter(\.isHexDigit))
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }
}

@Suite("Raft message codec: refusals")
struct RaftMessageCodecRefusalTests {
    /// A message header (version 1, group 1, term 1) of the given kind.
    static func header(kind: UInt8, version: UInt8 = 1) -> ByteWriter {
        var writer = ByteWriter()
        writer.write(version)
        writer.write(kind)
        writer.write(UInt64(1))
        writer.write(UInt64(1))
        return writer
    }

    /// An AppendEntries up to and including its entry count.
    static func append(count: UInt32) -> ByteWriter {
        var writer = header(kind: 3)
        for _ in 0..<4 { writer.write(UInt64(0)) }
        writer.write(count)
        return writer
    }

    /// An InstallSnapshot up to and including its data length.
    static func chunk(totalBytes: UInt64, offset: UInt64, dataBytes: UInt32) -> ByteWriter {
        var writer = header(kind: 5)
        writer.write(UInt64(40))
        writer.write(UInt64(6))
        var configuration = ByteWriter()
        RaftCodec.encode(ConfigurationState(voters: [1]), into: &configuration)
        writer.writeLengthPrefixed(configuration.bytes)
        writer.write(totalBytes)
        writer.write(offset)
        writer.write(UInt8(0))
        writer.write(UInt32(0))
        writer.write(dataBytes)
        return writer
    }

    static func error(_ bytes: [UInt8]) -> DecodeError? {
        do {
            _ = try RaftCodec.decodeMessage(bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test("an unknown format version is refused, naming the field")
    func unknownVersion() {
        #expect(Self.error(Self.header(kind: 7, version: 2).bytes) == .invalid(field: "message format", value: 2))
        #expect(Self.error([]) == .truncated(field: "message format", needed: 1, available: 0))
    }

    @Test("an unknown message kind is refused, naming the field", arguments: [0, 8, 255] as [UInt8])
    func unknownKind(kind: UInt8) {
        let error = Self.error(Self.header(kind: kind).bytes)
        #expect(error == .invalid(field: "message kind (expected 1...7)", value: UInt64(kind)))
        #expect(error?.description == "invalid message kind (expected 1...7): \(kind)")
    }

    @Test("a flag other than 0 or 1 is refused")
    func badFlag() {
        var writer = Self.header(kind: 2)
        writer.write(UInt8(2))
        writer.write(UInt8(0))
        #expect(
            Self.error(writer.bytes) == .invalid(field: "RequestVoteResponse granted flag (expected 0 or 1)", value: 2))
    }

    @Test("an entry count over raftAppendEntriesMax is refused before any entry is read")
    func tooManyEntries() {
        let count = UInt32(Limits.raftAppendEntriesMax + 1)
        let error = Self.error(Self.append(count: count).bytes)
        #expect(
            error
                == .tooLarge(
                    field: "AppendEntries entry count", value: UInt64(count), limit: Limits.raftAppendEntriesMax))
        #expect(error?.description.hasPrefix("AppendEntries entry count is \(count), more than the limit of ") == true)
    }

    @Test("an entry count the remaining bytes cannot hold is refused before allocating")
    func entryCountPastEnd() {
        #expect(
            Self.error(Self.append(count: 1000).bytes)
                == .truncated(field: "AppendEntries entries", needed: 22_000, available: 0))
    }

    @Test("an entry longer than raftEntryBytesMax plus its header is refused before it is read")
    func entryTooLong() {
        var writer = Self.append(count: 1)
        let length = RaftCodec.entryHeaderBytes + Limits.raftEntryBytesMax + 1
        writer.write(UInt32(length))
        writer.writeRest([UInt8](repeating: 0, count: 18))
        #expect(
            Self.error(writer.bytes)
                == .tooLarge(
                    field: "AppendEntries entry length", value: UInt64(length),
                    limit: RaftCodec.entryHeaderBytes + Limits.raftEntryBytesMax))
    }

    @Test("an entry length that disagrees with its contents is refused")
    func entryLengthMismatch() {
        let entry = RaftCodec.encode(Entry(term: 1, index: 1, kind: .empty))
        var short = Self.append(count: 1)
        short.write(UInt32(17))
        short.writeRest(entry)
        #expect(Self.error(short.bytes) == .truncated(field: "entry header", needed: 18, available: 17))
        var long = Self.append(count: 1)
        long.write(UInt32(19))
        long.writeRest(entry + [0])
        #expect(Self.error(long.bytes) == .invalid(field: "empty entry trailing bytes", value: 1))
    }

    @Test("a snapshot chunk over raftSnapshotChunkBytesMax is refused before it is read")
    func chunkTooLarge() {
        let dataBytes = UInt32(Limits.raftSnapshotChunkBytesMax + 1)
        let writer = Self.chunk(totalBytes: UInt64(dataBytes), offset: 0, dataBytes: dataBytes)
        #expect(
            Self.error(writer.bytes)
                == .tooLarge(
                    field: "InstallSnapshot data length", value: UInt64(dataBytes),
                    limit: Limits.raftSnapshotChunkBytesMax))
    }

    @Test("a snapshot chunk that ends past the snapshot's total bytes is refused")
    func chunkPastTotal() {
        #expect(
            Self.error(Self.chunk(totalBytes: 10, offset: 11, dataBytes: 0).bytes)
                == .tooLarge(field: "InstallSnapshot offset (past the snapshot's total bytes)", value: 11, limit: 10))
        // Near Int.max: the follower's `offset + data.count` must not be able to overflow.
        let total = UInt64(Int.max)
        #expect(
            Self.error(Self.chunk(totalBytes: total, offset: total - 1, dataBytes: 2).bytes)
                == .tooLarge(field: "InstallSnapshot data length (past the snapshot's total bytes)", value: 2, limit: 1)
        )
    }

    @Test("a byte count that does not fit in Int is refused")
    func byteCountOverflow() {
        var writer = Self.header(kind: 6)
        writer.write(UInt64(1))
        writer.write(UInt64(Int.max) + 1)
        writer.write(UInt8(0))
        #expect(
            Self.error(writer.bytes)
                == .tooLarge(
                    field: "InstallSnapshotResponse received bytes", value: UInt64(Int.max) + 1, limit: Int.max))
    }

    @Test("a configuration with a node both voter and learner is refused, not a crash")
    func overlappingConfiguration() {
        var writer = Self.append(count: 1)
        writer.write(UInt32(RaftCodec.entryHeaderBytes + 28))
        writer.writeRest(Array(RaftCodec.encode(Entry(term: 1, index: 1, kind: .configuration(.empty))).prefix(18)))
        for _ in 0..<2 {
            writer.write(UInt32(1))
            writer.write(UInt64(3))
        }
        writer.write(UInt32(0))
        #expect(
            Self.error(writer.bytes) == .invalid(field: "configuration: a node is both voter and learner", value: 0))
    }

    @Test("limits: a leader's append never has more entries than the decoder accepts, and fits in a frame")
    func limitsRelate() throws {
        let smallest = try #require(
            [
                Entry(term: 1, index: 1, kind: .empty), Entry(term: 1, index: 1, kind: .command([])),
                Entry(term: 1, index: 1, kind: .configuration(.empty)),
            ].map(\.sizeBytes).min())
        #expect(
            (Limits.raftAppendEntriesMax + 1) * smallest > Limits.raftAppendBytesMax,
            "one more entry than the limit cannot fit in the largest append")
        #expect(Limits.raftAppendBytesMax + 64 * 1024 <= Limits.peerFrameBytesMax)
        #expect(Limits.raftSnapshotChunkBytesMax + 64 * 1024 <= Limits.peerFrameBytesMax)
        #expect(RaftCodec.entryHeaderBytes + Limits.raftEntryBytesMax <= Int(UInt32.max))
    }
}
