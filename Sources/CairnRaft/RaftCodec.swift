import CairnCore

/// Binary encodings of what Raft stores and sends: entries, hard state, snapshots and messages (format
/// version 1).
///
/// ```
/// entry:      [1][kind: 0 empty | 1 command | 2 configuration][term u64][index u64][payload]
/// config:     [voters u32][u64...][learners u32][u64...][outgoing u32][u64...]
/// hard state: [1][term u64][has vote u8][vote u64][commit u64]
/// snapshot:   [1][index u64][term u64][config (length-prefixed)][data (rest)]
/// message:    [1][kind u8][group u64][term u64][body]
///   1 requestVote:             [last index u64][last term u64][pre-vote u8][transfer u8]
///   2 requestVoteResponse:     [granted u8][pre-vote u8]
///   3 appendEntries:           [previous index u64][previous term u64][commit u64][sequence u64]
///                              [count u32] then count × [entry length u32][entry]
///   4 appendEntriesResponse:   [success u8][match u64][rejected u64][conflict index u64]
///                              [conflict term u64][sequence u64]
///   5 installSnapshot:         [index u64][term u64][config (length-prefixed)][total bytes u64]
///                              [offset u64][last u8][checksum u32][data (length-prefixed)]
///   6 installSnapshotResponse: [index u64][received bytes u64][complete u8]
///   7 timeoutNow:              (no body)
/// ```
/// All integers are big-endian; flags (`u8` booleans) are 0 or 1. Decoding checks every length and value
/// against the bytes left and against `Limits`, so corrupt or hostile bytes give a `DecodeError`, never a
/// crash or an allocation larger than the input.
public enum RaftCodec {
    static let version: UInt8 = 1

    /// Bytes of an entry's encoding before its payload: version, kind, term and index.
    static let entryHeaderBytes = 18

    /// Encodes an entry for storage (the payload runs to the end of the record).
    public static func encode(_ entry: Entry) -> [UInt8] {
        var writer = ByteWriter(capacity: encodedBytes(entry))
        encode(entry, into: &writer)
        return writer.bytes
    }

    static func encode(_ entry: Entry, into writer: inout ByteWriter) {
        writer.write(version)
        switch entry.kind {
        case .empty: writer.write(UInt8(0))
        case .command: writer.write(UInt8(1))
        case .configuration: writer.write(UInt8(2))
        }
        writer.write(entry.term.rawValue)
        writer.write(entry.index.rawValue)
        switch entry.kind {
        case .empty: break
        case .command(let bytes): writer.writeRest(bytes)
        case .configuration(let configuration): encode(configuration, into: &writer)
        }
    }

    /// The length of `encode(entry)`, known before encoding so a message can prefix each entry with it.
    static func encodedBytes(_ entry: Entry) -> Int {
        switch entry.kind {
        case .empty: entryHeaderBytes
        case .command(let bytes): entryHeaderBytes + bytes.count
        case .configuration(let configuration): entryHeaderBytes + 12 + 8 * configuration.memberCount
        }
    }

    /// Decodes an entry that `encode(_:)` wrote.
    public static func decodeEntry(_ bytes: [UInt8]) throws(DecodeError) -> Entry {
        var reader = ByteReader(bytes)
        return try decodeEntry(&reader, bytes: bytes.count)
    }

    /// Decodes one entry that occupies exactly the next `bytes` bytes of `reader`.
    static func decodeEntry(_ reader: inout ByteReader, bytes: Int) throws(DecodeError) -> Entry {
        guard bytes <= reader.remaining else {
            throw .truncated(field: "entry", needed: bytes, available: reader.remaining)
        }
        guard bytes >= entryHeaderBytes else {
            throw .truncated(field: "entry header", needed: entryHeaderBytes, available: bytes)
        }
        try checkVersion(&reader, "entry")
        let kind = try reader.readUInt8("entry kind")
        let term = Term(rawValue: try reader.readUInt64("entry term"))
        let index = LogIndex(rawValue: try reader.readUInt64("entry index"))
        let payloadBytes = bytes - entryHeaderBytes
        switch kind {
        case 0:
            guard payloadBytes == 0 else {
                throw .invalid(field: "empty entry trailing bytes", value: UInt64(payloadBytes))
            }
            return Entry(term: term, index: index, kind: .empty)
        case 1:
            return Entry(term: term, index: index, kind: .command(try reader.readBytes(payloadBytes, "entry command")))
        case 2:
            var configurationReader = ByteReader(try reader.readBytes(payloadBytes, "configuration entry"))
            let configuration = try decodeConfiguration(&configurationReader)
            try configurationReader.expectEnd("configuration entry")
            return Entry(term: term, index: index, kind: .configuration(configuration))
        default:
            throw .invalid(field: "entry kind", value: UInt64(kind))
        }
    }

    public static func encode(_ state: HardState) -> [UInt8] {
        var writer = ByteWriter(capacity: 26)
        writer.write(version)
        writer.write(state.term.rawValue)
        writer.write(UInt8(state.vote == nil ? 0 : 1))
        writer.write(state.vote?.rawValue ?? 0)
        writer.write(state.commit.rawValue)
        return writer.bytes
    }

    public static func decodeHardState(_ bytes: [UInt8]) throws(DecodeError) -> HardState {
        var reader = ByteReader(bytes)
        try checkVersion(&reader, "hard state")
        let term = Term(rawValue: try reader.readUInt64("hard state term"))
        let hasVote = try reader.readUInt8("hard state vote flag")
        let vote = try reader.readUInt64("hard state vote")
        let commit = LogIndex(rawValue: try reader.readUInt64("hard state commit"))
        guard hasVote <= 1 else { throw .invalid(field: "hard state vote flag", value: UInt64(hasVote)) }
        try reader.expectEnd("hard state")
        return HardState(term: term, vote: hasVote == 1 ? NodeID(rawValue: vote) : nil, commit: commit)
    }

    public static func encode(_ snapshot: Snapshot) -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + snapshot.data.count)
        writer.write(version)
        writer.write(snapshot.metadata.index.rawValue)
        writer.write(snapshot.metadata.term.rawValue)
        var configuration = ByteWriter()
        encode(snapshot.metadata.configuration, into: &configuration)
        writer.writeLengthPrefixed(configuration.bytes)
        writer.writeRest(snapshot.data)
        return writer.bytes
    }

    public static func decodeSnapshot(_ bytes: [UInt8]) throws(DecodeError) -> Snapshot {
        var reader = ByteReader(bytes)
        try checkVersion(&reader, "snapshot")
        let index = LogIndex(rawValue: try reader.readUInt64("snapshot index"))
        let term = Term(rawValue: try reader.readUInt64("snapshot term"))
        var configurationReader = ByteReader(try reader.readLengthPrefixed("snapshot configuration"))
        let configuration = try decodeConfiguration(&configurationReader)
        try configurationReader.expectEnd("snapshot configuration")
        let metadata = SnapshotMetadata(index: index, term: term, configuration: configuration)
        return Snapshot(metadata: metadata, data: reader.readRest())
    }

    static func encode(_ configuration: ConfigurationState, into writer: inout ByteWriter) {
        for nodes in [configuration.voters, configuration.learners, configuration.outgoingVoters] {
            writer.write(UInt32(nodes.count))
            for node in nodes { writer.write(node.rawValue) }
        }
    }

    static func decodeConfiguration(_ reader: inout ByteReader) throws(DecodeError) -> ConfigurationState {
        var lists: [[NodeID]] = []
        for name in ["voters", "learners", "outgoing voters"] {
            let count = try reader.readUInt32("configuration \(name) count")
            guard Int(count) * 8 <= reader.remaining else {
                throw .truncated(field: "configuration \(name)", needed: Int(count) * 8, available: reader.remaining)
            }
            var nodes: [NodeID] = []
            for _ in 0..<count { nodes.append(NodeID(rawValue: try reader.readUInt64("configuration node"))) }
            lists.append(nodes)
        }
        guard Set(lists[0]).isDisjoint(with: lists[1]) else {
            throw .invalid(field: "configuration: a node is both voter and learner", value: 0)
        }
        return ConfigurationState(voters: lists[0], learners: lists[1], outgoingVoters: lists[2])
    }

    static func checkVersion(_ reader: inout ByteReader, _ field: String) throws(DecodeError) {
        let found = try reader.readUInt8("\(field) format")
        guard found == version else { throw .invalid(field: "\(field) format", value: UInt64(found)) }
    }
}

// MARK: Messages

extension RaftCodec {
    /// The kind byte of each `RaftMessage.Kind`. Zero is never used, so a zeroed buffer does not decode.
    enum MessageKind: UInt8 {
        case requestVote = 1
        case requestVoteResponse = 2
        case appendEntries = 3
        case appendEntriesResponse = 4
        case installSnapshot = 5
        case installSnapshotResponse = 6
        case timeoutNow = 7
    }

    /// Bytes of a message before its body: version, kind, group and term.
    static let messageHeaderBytes = 18

    /// Bytes that every entry of an AppendEntries takes at least: its length and an entry header.
    static let appendedEntryBytesMin = 4 + entryHeaderBytes

    /// Encodes a message for a peer, appending it to `writer`.
    ///
    /// - Precondition: the message is one a core can send: at most `Limits.raftAppendEntriesMax` entries,
    ///   commands of at most `Limits.raftEntryBytesMax` bytes, snapshot chunks of at most
    ///   `Limits.raftSnapshotChunkBytesMax` bytes and no negative byte counts. The decoder refuses
    ///   anything else, so sending it would only get the connection closed.
    public static func encode(_ message: RaftMessage, into writer: inout ByteWriter) {
        writer.write(version)
        writer.write(messageKind(message.kind).rawValue)
        writer.write(message.group.rawValue)
        writer.write(message.term.rawValue)
        switch message.kind {
        case .requestVote(let lastLogIndex, let lastLogTerm, let isPreVote, let isTransfer):
            writer.write(lastLogIndex.rawValue)
            writer.write(lastLogTerm.rawValue)
            writer.write(flag(isPreVote))
            writer.write(flag(isTransfer))
        case .requestVoteResponse(let granted, let isPreVote):
            writer.write(flag(granted))
            writer.write(flag(isPreVote))
        case .appendEntries(let append):
            encode(append, into: &writer)
        case .appendEntriesResponse(let response):
            writer.write(flag(response.success))
            writer.write(response.matchIndex.rawValue)
            writer.write(response.rejectedIndex.rawValue)
            writer.write(response.conflictIndex.rawValue)
            writer.write(response.conflictTerm.rawValue)
            writer.write(response.sequence)
        case .installSnapshot(let chunk):
            encode(chunk, into: &writer)
        case .installSnapshotResponse(let snapshotIndex, let receivedBytes, let isComplete):
            precondition(receivedBytes >= 0, "InstallSnapshotResponse with receivedBytes \(receivedBytes)")
            writer.write(snapshotIndex.rawValue)
            writer.write(UInt64(receivedBytes))
            writer.write(flag(isComplete))
        case .timeoutNow:
            break
        }
    }

    /// Encodes a message for a peer.
    ///
    /// - Precondition: see `encode(_:into:)`.
    public static func encode(_ message: RaftMessage) -> [UInt8] {
        var writer = ByteWriter(capacity: encodedBytesEstimate(message))
        encode(message, into: &writer)
        return writer.bytes
    }

    /// Decodes one message that `encode(_:into:)` wrote, leaving `reader` just after it.
    ///
    /// The bytes come from a peer and may be corrupt or hostile: every count and length is checked
    /// against the bytes left and against `Limits` before anything is allocated for it. A snapshot
    /// chunk keeps the checksum it was sent with; the follower's core verifies it.
    /// - Throws: `DecodeError` naming the field that was wrong.
    public static func decodeMessage(_ reader: inout ByteReader) throws(DecodeError) -> RaftMessage {
        try checkVersion(&reader, "message")
        let kindByte = try reader.readUInt8("message kind")
        guard let kind = MessageKind(rawValue: kindByte) else {
            throw .invalid(field: "message kind (expected 1...7)", value: UInt64(kindByte))
        }
        let group = GroupID(rawValue: try reader.readUInt64("message group"))
        let term = Term(rawValue: try reader.readUInt64("message term"))
        let body: RaftMessage.Kind
        switch kind {
        case .requestVote:
            let lastLogIndex = LogIndex(rawValue: try reader.readUInt64("RequestVote last log index"))
            let lastLogTerm = Term(rawValue: try reader.readUInt64("RequestVote last log term"))
            let isPreVote = try readFlag(&reader, "RequestVote pre-vote flag")
            let isTransfer = try readFlag(&reader, "RequestVote transfer flag")
            body = .requestVote(
                lastLogIndex: lastLogIndex, lastLogTerm: lastLogTerm, isPreVote: isPreVote, isTransfer: isTransfer)
        case .requestVoteResponse:
            let granted = try readFlag(&reader, "RequestVoteResponse granted flag")
            let isPreVote = try readFlag(&reader, "RequestVoteResponse pre-vote flag")
            body = .requestVoteResponse(granted: granted, isPreVote: isPreVote)
        case .appendEntries:
            body = .appendEntries(try decodeAppendEntries(&reader))
        case .appendEntriesResponse:
            body = .appendEntriesResponse(try decodeAppendEntriesResponse(&reader))
        case .installSnapshot:
            body = .installSnapshot(try decodeSnapshotChunk(&reader))
        case .installSnapshotResponse:
            let snapshotIndex = LogIndex(rawValue: try reader.readUInt64("InstallSnapshotResponse snapshot index"))
            let receivedBytes = try readByteCount(&reader, "InstallSnapshotResponse received bytes")
            let isComplete = try readFlag(&reader, "InstallSnapshotResponse complete flag")
            body = .installSnapshotResponse(
                snapshotIndex: snapshotIndex, receivedBytes: receivedBytes, isComplete: isComplete)
        case .timeoutNow:
            body = .timeoutNow
        }
        return RaftMessage(group: group, term: term, kind: body)
    }

    /// Decodes a message that fills `bytes` exactly (one peer frame's payload).
    /// - Throws: `DecodeError` naming the field that was wrong, including bytes left over after the message.
    public static func decodeMessage(_ bytes: [UInt8]) throws(DecodeError) -> RaftMessage {
        var reader = ByteReader(bytes)
        let message = try decodeMessage(&reader)
        try reader.expectEnd("message")
        return message
    }

    // MARK: Message bodies

    private static func encode(_ append: AppendEntries, into writer: inout ByteWriter) {
        precondition(
            append.entries.count <= Limits.raftAppendEntriesMax,
            "AppendEntries with \(append.entries.count) entries, limit \(Limits.raftAppendEntriesMax)")
        writer.write(append.previousIndex.rawValue)
        writer.write(append.previousTerm.rawValue)
        writer.write(append.commit.rawValue)
        writer.write(append.sequence)
        writer.write(UInt32(append.entries.count))
        for entry in append.entries {
            let entryBytes = encodedBytes(entry)
            precondition(
                entryBytes - entryHeaderBytes <= Limits.raftEntryBytesMax,
                "entry \(entry.index)@\(entry.term) of \(entryBytes) bytes, limit \(Limits.raftEntryBytesMax)")
            writer.write(UInt32(entryBytes))
            let start = writer.bytes.count
            encode(entry, into: &writer)
            precondition(writer.bytes.count - start == entryBytes, "entry \(entry.index) length was miscounted")
        }
    }

    private static func decodeAppendEntries(_ reader: inout ByteReader) throws(DecodeError) -> AppendEntries {
        let previousIndex = LogIndex(rawValue: try reader.readUInt64("AppendEntries previous index"))
        let previousTerm = Term(rawValue: try reader.readUInt64("AppendEntries previous term"))
        let commit = LogIndex(rawValue: try reader.readUInt64("AppendEntries commit"))
        let sequence = try reader.readUInt64("AppendEntries sequence")
        let count = Int(try reader.readUInt32("AppendEntries entry count"))
        guard count <= Limits.raftAppendEntriesMax else {
            throw .tooLarge(
                field: "AppendEntries entry count", value: UInt64(count), limit: Limits.raftAppendEntriesMax)
        }
        guard count * appendedEntryBytesMin <= reader.remaining else {
            throw .truncated(
                field: "AppendEntries entries", needed: count * appendedEntryBytesMin, available: reader.remaining)
        }
        var entries: [Entry] = []
        entries.reserveCapacity(count)  // Bounded by the bytes left, checked just above.
        for _ in 0..<count {
            let entryBytes = Int(try reader.readUInt32("AppendEntries entry length"))
            let entryBytesMax = entryHeaderBytes + Limits.raftEntryBytesMax
            guard entryBytes <= entryBytesMax else {
                throw .tooLarge(field: "AppendEntries entry length", value: UInt64(entryBytes), limit: entryBytesMax)
            }
            entries.append(try decodeEntry(&reader, bytes: entryBytes))
        }
        return AppendEntries(
            previousIndex: previousIndex, previousTerm: previousTerm, entries: entries, commit: commit,
            sequence: sequence)
    }

    private static func decodeAppendEntriesResponse(
        _ reader: inout ByteReader
    ) throws(DecodeError) -> AppendEntriesResponse {
        let success = try readFlag(&reader, "AppendEntriesResponse success flag")
        let matchIndex = LogIndex(rawValue: try reader.readUInt64("AppendEntriesResponse match index"))
        let rejectedIndex = LogIndex(rawValue: try reader.readUInt64("AppendEntriesResponse rejected index"))
        let conflictIndex = LogIndex(rawValue: try reader.readUInt64("AppendEntriesResponse conflict index"))
        let conflictTerm = Term(rawValue: try reader.readUInt64("AppendEntriesResponse conflict term"))
        let sequence = try reader.readUInt64("AppendEntriesResponse sequence")
        return AppendEntriesResponse(
            success: success, matchIndex: matchIndex, rejectedIndex: rejectedIndex, conflictIndex: conflictIndex,
            conflictTerm: conflictTerm, sequence: sequence)
    }

    private static func encode(_ chunk: SnapshotChunk, into writer: inout ByteWriter) {
        precondition(
            chunk.data.count <= Limits.raftSnapshotChunkBytesMax,
            "snapshot chunk of \(chunk.data.count) bytes, limit \(Limits.raftSnapshotChunkBytesMax)")
        precondition(chunk.offset >= 0, "snapshot chunk at offset \(chunk.offset)")
        precondition(chunk.totalBytes >= chunk.offset, "snapshot chunk at \(chunk.offset) of \(chunk.totalBytes)")
        precondition(
            chunk.data.count <= chunk.totalBytes - chunk.offset,
            "snapshot chunk at offset \(chunk.offset) of \(chunk.data.count) bytes, total \(chunk.totalBytes)")
        writer.write(chunk.metadata.index.rawValue)
        writer.write(chunk.metadata.term.rawValue)
        var configuration = ByteWriter()
        encode(chunk.metadata.configuration, into: &configuration)
        writer.writeLengthPrefixed(configuration.bytes)
        writer.write(UInt64(chunk.totalBytes))
        writer.write(UInt64(chunk.offset))
        writer.write(flag(chunk.isLast))
        writer.write(chunk.checksum)
        writer.writeLengthPrefixed(chunk.data)
    }

    /// Decodes a chunk, checking its position (`offset + data ≤ total`, which also keeps the follower's
    /// arithmetic from overflowing) but not its checksum, which is kept as sent.
    private static func decodeSnapshotChunk(_ reader: inout ByteReader) throws(DecodeError) -> SnapshotChunk {
        let index = LogIndex(rawValue: try reader.readUInt64("InstallSnapshot index"))
        let term = Term(rawValue: try reader.readUInt64("InstallSnapshot term"))
        var configurationReader = ByteReader(try reader.readLengthPrefixed("InstallSnapshot configuration"))
        let configuration = try decodeConfiguration(&configurationReader)
        try configurationReader.expectEnd("InstallSnapshot configuration")
        let totalBytes = try readByteCount(&reader, "InstallSnapshot total bytes")
        let offset = try readByteCount(&reader, "InstallSnapshot offset")
        let isLast = try readFlag(&reader, "InstallSnapshot last flag")
        let checksum = try reader.readUInt32("InstallSnapshot checksum")
        let dataBytes = Int(try reader.readUInt32("InstallSnapshot data length"))
        guard dataBytes <= Limits.raftSnapshotChunkBytesMax else {
            throw .tooLarge(
                field: "InstallSnapshot data length", value: UInt64(dataBytes), limit: Limits.raftSnapshotChunkBytesMax)
        }
        guard offset <= totalBytes else {
            throw .tooLarge(
                field: "InstallSnapshot offset (past the snapshot's total bytes)", value: UInt64(offset),
                limit: totalBytes)
        }
        guard dataBytes <= totalBytes - offset else {
            throw .tooLarge(
                field: "InstallSnapshot data length (past the snapshot's total bytes)", value: UInt64(dataBytes),
                limit: totalBytes - offset)
        }
        let data = try reader.readBytes(dataBytes, "InstallSnapshot data")
        return SnapshotChunk(
            metadata: SnapshotMetadata(index: index, term: term, configuration: configuration), totalBytes: totalBytes,
            offset: offset, data: data, checksum: checksum, isLast: isLast)
    }

    // MARK: Fields

    private static func messageKind(_ kind: RaftMessage.Kind) -> MessageKind {
        switch kind {
        case .requestVote: .requestVote
        case .requestVoteResponse: .requestVoteResponse
        case .appendEntries: .appendEntries
        case .appendEntriesResponse: .appendEntriesResponse
        case .installSnapshot: .installSnapshot
        case .installSnapshotResponse: .installSnapshotResponse
        case .timeoutNow: .timeoutNow
        }
    }

    /// Room to reserve for a message, so large appends and chunks do not regrow the buffer.
    private static func encodedBytesEstimate(_ message: RaftMessage) -> Int {
        switch message.kind {
        case .appendEntries(let append):
            messageHeaderBytes + 36 + append.entries.reduce(0) { $0 + 4 + encodedBytes($1) }
        case .installSnapshot(let chunk):
            messageHeaderBytes + 64 + 8 * chunk.metadata.configuration.memberCount + chunk.data.count
        default:
            messageHeaderBytes + 48
        }
    }

    private static func flag(_ value: Bool) -> UInt8 { value ? 1 : 0 }

    /// A boolean: 0 or 1, anything else is corruption.
    private static func readFlag(_ reader: inout ByteReader, _ field: String) throws(DecodeError) -> Bool {
        let byte = try reader.readUInt8(field)
        guard byte <= 1 else { throw .invalid(field: field + " (expected 0 or 1)", value: UInt64(byte)) }
        return byte == 1
    }

    /// A byte count or offset sent as u64, which must fit in a non-negative `Int`.
    private static func readByteCount(_ reader: inout ByteReader, _ field: String) throws(DecodeError) -> Int {
        let value = try reader.readUInt64(field)
        guard value <= UInt64(Int.max) else { throw .tooLarge(field: field, value: value, limit: Int.max) }
        return Int(value)
    }
}
