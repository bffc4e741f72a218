import CairnCore

/// Binary encodings of what Raft stores: entries, hard state and snapshots (format version 1).
///
/// ```
/// entry:      [1][kind: 0 empty | 1 command | 2 configuration][term u64][index u64][payload]
/// config:     [voters u32][u64...][learners u32][u64...][outgoing u32][u64...]
/// hard state: [1][term u64][has vote u8][vote u64][commit u64]
/// snapshot:   [1][index u64][term u64][config (length-prefixed)][data (rest)]
/// ```
/// Decoding checks every length and value, so corrupt bytes give a `DecodeError`, never a crash.
public enum RaftCodec {
    static let version: UInt8 = 1

    public static func encode(_ entry: Entry) -> [UInt8] {
        var writer = ByteWriter(capacity: 18 + entry.sizeBytes)
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
        return writer.bytes
    }

    public static func decodeEntry(_ bytes: [UInt8]) throws(DecodeError) -> Entry {
        var reader = ByteReader(bytes)
        try checkVersion(&reader, "entry")
        let kind = try reader.readUInt8("entry kind")
        let term = Term(rawValue: try reader.readUInt64("entry term"))
        let index = LogIndex(rawValue: try reader.readUInt64("entry index"))
        switch kind {
        case 0:
            try reader.expectEnd("empty entry")
            return Entry(term: term, index: index, kind: .empty)
        case 1:
            return Entry(term: term, index: index, kind: .command(reader.readRest()))
        case 2:
            let configuration = try decodeConfiguration(&reader)
            try reader.expectEnd("configuration entry")
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
