import CairnCore
import CairnPlacement
import CairnRaft

/// A command forwarded by a coordinator to the node it believes leads the command's partition.
public struct ForwardRequest: Sendable, Equatable {
    /// Chosen by the coordinator; echoed in the reply.
    public var id: UInt64
    public var partition: Int
    /// Milliseconds the coordinator still waits, as of sending: work past it is wasted. A span, not an
    /// instant, so the receiver rebuilds the deadline on its own clock (two nodes' clocks may disagree;
    /// gRPC's `grpc-timeout` travels the same way). The time in flight is not subtracted.
    public var remainingMilliseconds: Int64
    /// The client's RESP version, so the leader encodes the reply the client expects.
    public var protocolVersion: UInt8
    /// Served by the local replica without a leader check (`READONLY` connections).
    public var isStaleReadAllowed: Bool
    public var arguments: [[UInt8]]
}

/// What became of a forwarded command.
public enum ForwardOutcome: Sendable, Equatable {
    /// The reply, encoded for the client.
    case reply([UInt8], isError: Bool)
    /// The receiver does not lead the partition; it names the leader it knows of, if any.
    case notLeader(hint: NodeID?)
}

/// One message between nodes. Many travel in one `PeerEnvelope`.
public enum PeerMessage: Sendable, Equatable {
    case raft(RaftMessage)
    case forward(ForwardRequest)
    case forwardReply(id: UInt64, ForwardOutcome)
    /// A node with an empty data directory asks to join; the reply goes to its peer address.
    case join(NodeAddresses)
    /// The join was admitted: the new node's ID and the map that includes it.
    case joined(NodeID, ClusterMap)
    /// The sender's cluster map, sent to a peer that showed an older epoch.
    case map(ClusterMap)
    /// Asks for the receiver's map: the sender saw a newer epoch on one of its envelopes.
    case mapRequest
    /// Asks the leader of a group for its members: the sender holds a copy the map moved away and
    /// deletes it once a committed configuration leaves it out.
    case membersQuery(GroupID)
    /// A leader's committed configuration of a group: every voter and learner, and the index of the
    /// entry that set it (a member that knows a later configuration ignores an answer this old).
    case members(GroupID, [NodeID], configurationIndex: LogIndex)
    /// The leader stopped ticking an idle group: members in `term` that hold every entry may stop too.
    case quiesce(GroupID, term: Term)
    /// Asks the meta leader to propose a change to the map: an operator's `decommission` or `remove`
    /// received by another node, or a drained node asking to be removed. Passed on to the leader by
    /// members that do not lead the meta group.
    case metaRequest(MetaCommand)
}

/// What goes in one peer frame: who sent it, its cluster and map epoch, and its messages.
///
/// The epoch on every envelope is the epoch check of DESIGN.md §4: a receiver with a newer map sends
/// it back, a receiver with an older one learns that it is behind. A node that has not joined yet
/// sends node 0 and cluster 0, and only `join` messages.
public struct PeerEnvelope: Sendable, Equatable {
    public var clusterID: UInt64
    public var from: NodeID
    public var epoch: UInt64
    public var messages: [PeerMessage]

    public init(clusterID: UInt64, from: NodeID, epoch: UInt64, messages: [PeerMessage]) {
        self.clusterID = clusterID
        self.from = from
        self.epoch = epoch
        self.messages = messages
    }

    static let version: UInt8 = 1
    /// The frame kind peer envelopes travel in (`PeerFrame.kind`).
    public static let frameKind: UInt8 = 1

    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 256)
        writer.write(Self.version)
        writer.write(clusterID)
        writer.write(from.rawValue)
        writer.write(epoch)
        writer.write(UInt32(messages.count))
        for message in messages { message.encode(into: &writer) }
        return writer.bytes
    }

    /// Decodes an envelope from untrusted bytes.
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> PeerEnvelope {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("envelope version")
        guard version == Self.version else { throw .invalid(field: "envelope version", value: UInt64(version)) }
        let clusterID = try reader.readUInt64("cluster id")
        let from = NodeID(rawValue: try reader.readUInt64("sender"))
        let epoch = try reader.readUInt64("epoch")
        let count = Int(try reader.readUInt32("message count"))
        guard count <= reader.remaining else { throw .invalid(field: "message count", value: UInt64(count)) }
        var messages: [PeerMessage] = []
        messages.reserveCapacity(count)
        for _ in 0..<count { messages.append(try PeerMessage.decode(&reader)) }
        try reader.expectEnd("envelope")
        return PeerEnvelope(clusterID: clusterID, from: from, epoch: epoch, messages: messages)
    }
}

extension PeerMessage {
    func encode(into writer: inout ByteWriter) {
        switch self {
        case .raft(let message):
            writer.write(UInt8(1))
            RaftCodec.encode(message, into: &writer)
        case .forward(let request):
            writer.write(UInt8(2))
            writer.write(request.id)
            writer.write(UInt32(request.partition))
            writer.write(UInt64(bitPattern: request.remainingMilliseconds))
            writer.write(request.protocolVersion)
            writer.write(UInt8(request.isStaleReadAllowed ? 1 : 0))
            ReplicatedCommand.encode(request.arguments, into: &writer)
        case .forwardReply(let id, let outcome):
            writer.write(UInt8(3))
            writer.write(id)
            switch outcome {
            case .reply(let bytes, let isError):
                writer.write(UInt8(isError ? 2 : 1))
                writer.writeLengthPrefixed(bytes)
            case .notLeader(let hint):
                writer.write(UInt8(3))
                writer.write(hint?.rawValue ?? 0)
            }
        case .join(let addresses):
            writer.write(UInt8(4))
            addresses.encode(into: &writer)
        case .joined(let id, let map):
            writer.write(UInt8(5))
            writer.write(id.rawValue)
            map.encode(into: &writer)
        case .map(let map):
            writer.write(UInt8(6))
            map.encode(into: &writer)
        case .mapRequest:
            writer.write(UInt8(7))
        case .membersQuery(let group):
            writer.write(UInt8(8))
            writer.write(group.rawValue)
        case .members(let group, let nodes, let configurationIndex):
            writer.write(UInt8(9))
            writer.write(group.rawValue)
            ClusterMap.encode(nodes, into: &writer)
            writer.write(configurationIndex.rawValue)
        case .quiesce(let group, let term):
            writer.write(UInt8(10))
            writer.write(group.rawValue)
            writer.write(term.rawValue)
        case .metaRequest(let command):
            writer.write(UInt8(11))
            writer.writeLengthPrefixed(command.encoded())
        }
    }

    static func decode(_ reader: inout ByteReader) throws(DecodeError) -> PeerMessage {
        let kind = try reader.readUInt8("peer message kind")
        switch kind {
        case 1:
            return .raft(try RaftCodec.decodeMessage(&reader))
        case 2:
            let id = try reader.readUInt64("forward id")
            let partition = Int(try reader.readUInt32("partition"))
            guard partition < HashSlot.count else { throw .invalid(field: "partition", value: UInt64(partition)) }
            let remaining = Int64(bitPattern: try reader.readUInt64("remaining milliseconds"))
            // At most a day: anything else is a broken or hostile peer (and would overflow below).
            guard (0...86_400_000).contains(remaining) else {
                throw .invalid(field: "remaining milliseconds", value: UInt64(bitPattern: remaining))
            }
            let version = try reader.readUInt8("protocol version")
            guard version == 2 || version == 3 else {
                throw .invalid(field: "protocol version", value: UInt64(version))
            }
            let stale = try reader.readUInt8("stale read flag")
            let arguments = try ReplicatedCommand.decodeArguments(&reader)
            return .forward(
                ForwardRequest(
                    id: id, partition: partition, remainingMilliseconds: remaining, protocolVersion: version,
                    isStaleReadAllowed: stale == 1, arguments: arguments))
        case 3:
            let id = try reader.readUInt64("forward reply id")
            let outcome = try reader.readUInt8("forward outcome")
            switch outcome {
            case 1, 2:
                let bytes = try reader.readLengthPrefixed("reply")
                return .forwardReply(id: id, .reply(bytes, isError: outcome == 2))
            case 3:
                let hint = try reader.readUInt64("leader hint")
                return .forwardReply(id: id, .notLeader(hint: hint == 0 ? nil : NodeID(rawValue: hint)))
            default:
                throw .invalid(field: "forward outcome", value: UInt64(outcome))
            }
        case 4:
            return .join(try NodeAddresses.decode(&reader))
        case 5:
            let id = NodeID(rawValue: try reader.readUInt64("joined node id"))
            return .joined(id, try ClusterMap.decode(&reader))
        case 6:
            return .map(try ClusterMap.decode(&reader))
        case 7:
            return .mapRequest
        case 8:
            return .membersQuery(GroupID(rawValue: try reader.readUInt64("group")))
        case 9:
            let group = GroupID(rawValue: try reader.readUInt64("group"))
            let nodes = try ClusterMap.decodeNodes(&reader, "member")
            return .members(
                group, nodes, configurationIndex: LogIndex(rawValue: try reader.readUInt64("configuration index")))
        case 10:
            let group = GroupID(rawValue: try reader.readUInt64("group"))
            return .quiesce(group, term: Term(rawValue: try reader.readUInt64("term")))
        case 11:
            return .metaRequest(try MetaCommand.decode(try reader.readLengthPrefixed("meta command")))
        default:
            throw .invalid(field: "peer message kind", value: UInt64(kind))
        }
    }
}

/// The payload of a partition group's log entry: a data command (or a batch of them) with the leader's
/// clock reading, so every replica applies it the same way (relative expiry times, expiry checks).
public enum ReplicatedCommand: Sendable, Equatable {
    /// A client's command, as its words.
    case command(time: Int64, arguments: [[UInt8]])
    /// Delete `key` if it still expires at `expiresAt` and that time has passed (the leader's expiry cycle).
    case expire(time: Int64, key: [UInt8], expiresAt: Int64)
    /// Clients' commands that reached the leader of one group in one loop turn, applied in order as
    /// if each were its own entry (`NodeCore.flushProposals`).
    case batch(time: Int64, commands: [[[UInt8]]])

    static let version: UInt8 = 1

    /// About the bytes `encoded()` writes (exact for commands and batches), so the writer is sized once:
    /// a batch of a turn's writes grew its buffer several times.
    var encodedBytesEstimate: Int {
        switch self {
        case .command(_, let arguments): 14 + arguments.reduce(0) { $0 + 4 + $1.count }
        case .batch(_, let commands): 14 + commands.reduce(0) { $0 + 4 + $1.reduce(0) { $0 + 4 + $1.count } }
        default: 64
        }
    }

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: encodedBytesEstimate)
        writer.write(Self.version)
        switch self {
        case .command(let time, let arguments):
            writer.write(UInt8(1))
            writer.write(UInt64(bitPattern: time))
            Self.encode(arguments, into: &writer)
        case .expire(let time, let key, let expiresAt):
            writer.write(UInt8(2))
            writer.write(UInt64(bitPattern: time))
            writer.writeLengthPrefixed(key)
            writer.write(UInt64(bitPattern: expiresAt))
        case .batch(let time, let commands):
            writer.write(UInt8(3))
            writer.write(UInt64(bitPattern: time))
            writer.write(UInt32(commands.count))
            for arguments in commands { Self.encode(arguments, into: &writer) }
        }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> ReplicatedCommand {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("replicated command version")
        guard version == Self.version else {
            throw .invalid(field: "replicated command version", value: UInt64(version))
        }
        let kind = try reader.readUInt8("replicated command kind")
        let time = Int64(bitPattern: try reader.readUInt64("time"))
        let command: ReplicatedCommand
        switch kind {
        case 1:
            command = .command(time: time, arguments: try decodeArguments(&reader))
        case 2:
            let key = try reader.readLengthPrefixed("key")
            command = .expire(time: time, key: key, expiresAt: Int64(bitPattern: try reader.readUInt64("expires at")))
        case 3:
            let count = Int(try reader.readUInt32("batch command count"))
            // Each command takes at least 8 bytes (an argument count and one length).
            guard count >= 1, count <= Limits.replicatedBatchCommandsMax, count * 8 <= reader.remaining else {
                throw .invalid(field: "batch command count", value: UInt64(count))
            }
            var commands: [[[UInt8]]] = []
            commands.reserveCapacity(count)
            for _ in 0..<count { commands.append(try decodeArguments(&reader)) }
            command = .batch(time: time, commands: commands)
        default:
            throw .invalid(field: "replicated command kind", value: UInt64(kind))
        }
        try reader.expectEnd("replicated command")
        return command
    }

    static func encode(_ arguments: [[UInt8]], into writer: inout ByteWriter) {
        writer.write(UInt32(arguments.count))
        for argument in arguments { writer.writeLengthPrefixed(argument) }
    }

    static func decodeArguments(_ reader: inout ByteReader) throws(DecodeError) -> [[UInt8]] {
        let count = Int(try reader.readUInt32("argument count"))
        guard count >= 1, count <= Limits.respArgumentsMax, count * 4 <= reader.remaining else {
            throw .invalid(field: "argument count", value: UInt64(count))
        }
        var arguments: [[UInt8]] = []
        arguments.reserveCapacity(count)
        for _ in 0..<count { arguments.append(try reader.readLengthPrefixed("argument")) }
        return arguments
    }
}
