import CairnCore
import CairnPlacement

/// Where a node listens, as the other nodes and clients should reach it.
public struct NodeAddresses: Sendable, Equatable {
    /// RESP, as `host:port`.
    public var client: String
    /// The peer protocol, as `host:port`.
    public var peer: String
    /// Admin HTTP, as `host:port`.
    public var http: String

    public init(client: String, peer: String, http: String) {
        self.client = client
        self.peer = peer
        self.http = http
    }
}

/// One node as the cluster map records it.
public struct NodeRecord: Sendable, Equatable {
    public enum State: UInt8, Sendable {
        /// Serves and holds replicas.
        case active = 1
        /// Removed for good: holds nothing and is never placed again.
        case removed = 2
        /// Not heard from for longer than the dead-node timeout: placed nowhere, so its replicas are
        /// rebuilt on live nodes; active again (and placed again) once it is heard from.
        case dead = 3
        /// Being decommissioned: placed nowhere, so every replica it holds moves to other nodes; it
        /// still serves and forwards meanwhile. Once it hosts nothing it asks to be `removed`.
        case leaving = 4

        public var name: String {
            switch self {
            case .active: "active"
            case .removed: "removed"
            case .dead: "dead"
            case .leaving: "leaving"
            }
        }
    }

    public var id: NodeID
    public var addresses: NodeAddresses
    public var state: State

    public init(id: NodeID, addresses: NodeAddresses, state: State = .active) {
        self.id = id
        self.addresses = addresses
        self.state = state
    }
}

/// The cluster map: nodes with their addresses and states, the replicas each partition should have
/// (first = preferred leader), and the meta group's voters, with an epoch that grows on every change.
///
/// It is the state machine of the meta group: every change is a `MetaCommand` applied in log order on
/// every meta replica, and placement is recomputed inside `apply`, so all replicas agree without
/// sending placements around. Other nodes hold a copy, corrected whenever a peer shows a newer epoch.
public struct ClusterMap: Sendable, Equatable {
    public var clusterID: UInt64
    public var epoch: UInt64
    public var partitionCount: Int
    public var replicas: Int
    public var nodes: [NodeRecord]
    /// Target replicas of each partition, by partition number; the first is the preferred leader.
    public var placement: [[NodeID]]
    /// Target voters of the meta group.
    public var metaVoters: [NodeID]
    public var nextNodeID: UInt64
    /// The slot ranges of the partitions (derived from `partitionCount`, not stored).
    public let table: PartitionTable

    /// - Precondition: `partitionCount` is a valid partition count (callers validate input first).
    public init(
        clusterID: UInt64, epoch: UInt64, partitionCount: Int, replicas: Int, nodes: [NodeRecord],
        placement: [[NodeID]], metaVoters: [NodeID], nextNodeID: UInt64
    ) {
        self.clusterID = clusterID
        self.epoch = epoch
        self.partitionCount = partitionCount
        self.replicas = replicas
        self.nodes = nodes
        self.placement = placement
        self.metaVoters = metaVoters
        self.nextNodeID = nextNodeID
        do {
            self.table = try PartitionTable(count: partitionCount)
        } catch {
            preconditionFailure("invalid partition count \(partitionCount): \(error)")
        }
    }

    /// The partition (by number) that holds `key`.
    public func partition(ofKey key: [UInt8]) -> Int { table.partition(ofSlot: HashSlot.of(key)).index }

    /// The hash slots of partition number `partition`.
    public func slots(of partition: Int) -> ClosedRange<UInt16> { table.slots(of: PartitionID(UInt16(partition))) }

    /// The map a new cluster starts with: `founder` alone, holding every partition.
    public static func founding(
        clusterID: UInt64, founder: NodeID, addresses: NodeAddresses, partitionCount: Int, replicas: Int
    ) -> ClusterMap {
        var map = ClusterMap(
            clusterID: clusterID, epoch: 1, partitionCount: partitionCount, replicas: replicas,
            nodes: [NodeRecord(id: founder, addresses: addresses)], placement: [], metaVoters: [],
            nextNodeID: founder.rawValue + 1)
        map.place()
        return map
    }

    /// The nodes placement uses.
    public var activeNodes: [NodeID] { nodes.filter { $0.state == .active }.map(\.id) }

    /// The nodes peers keep talking to: every one not removed (a dead node that comes back must hear
    /// that it was marked dead, and be heard; a leaving one still holds replicas until it is drained).
    public var memberNodes: [NodeRecord] { nodes.filter { $0.state != .removed } }

    /// The nodes the cluster means to keep: active and dead ones (a dead node may come back). The meta
    /// group is sized by these, so a leaving node does not make it larger for the time it drains.
    public var keptNodes: [NodeID] { nodes.filter { $0.state == .active || $0.state == .dead }.map(\.id) }

    public func node(_ id: NodeID) -> NodeRecord? { nodes.first { $0.id == id } }

    /// Recomputes placement and meta voters from the active nodes, keeping what can be kept.
    mutating func place() {
        let active = activeNodes
        placement = Placement.assign(
            nodes: active, partitions: partitionCount, replicas: replicas,
            previous: placement.isEmpty ? nil : placement)
        metaVoters = Placement.metaVoters(
            nodes: active, previous: metaVoters, count: Placement.metaVotersCount(nodes: keptNodes.count))
    }

    /// Applies one committed meta command. Returns the reply for whoever proposed it.
    mutating func apply(_ command: MetaCommand) -> MetaReply {
        switch command {
        case .found:
            return .done
        case .addNode(let addresses):
            if let existing = nodes.first(where: { $0.addresses.peer == addresses.peer && $0.state == .active }) {
                // A retried join (the first reply was lost): the same node, not a new one.
                return .nodeAdded(existing.id)
            }
            let id = NodeID(rawValue: nextNodeID)
            nextNodeID += 1
            nodes.append(NodeRecord(id: id, addresses: addresses))
            epoch += 1
            place()
            return .nodeAdded(id)
        case .updateAddresses(let id, let addresses):
            guard let position = nodes.firstIndex(where: { $0.id == id }) else { return .unknownNode(id) }
            guard nodes[position].addresses != addresses else { return .done }
            nodes[position].addresses = addresses
            epoch += 1
            return .done
        case .removeNode(let id):
            return setState(of: id, to: .removed, from: [.active, .dead, .leaving])
        case .removeUnlessActive(let id):
            // `cairn ctl remove` without --force: the node was dead or leaving when the request was
            // checked; if it came back (marked active) since, it is not removed.
            guard node(id)?.state != .active else { return .refused }
            return setState(of: id, to: .removed, from: [.dead, .leaving])
        case .decommission(let id):
            // Checked again here, in log order: two requests checked against the same map (on two
            // nodes, or before the first applied) must not both pass and leave too few nodes.
            guard activeNodes.filter({ $0 != id }).count >= replicas else { return .refused }
            return setState(of: id, to: .leaving, from: [.active, .dead])
        case .markDead(let id):
            return setState(of: id, to: .dead, from: [.active])
        case .markAlive(let id):
            return setState(of: id, to: .active, from: [.dead])
        }
    }

    /// Moves node `id` to `state` if it is in one of `from` (a repeated command changes nothing), and
    /// places again.
    private mutating func setState(of id: NodeID, to state: NodeRecord.State, from: [NodeRecord.State]) -> MetaReply {
        guard let position = nodes.firstIndex(where: { $0.id == id }) else { return .unknownNode(id) }
        guard from.contains(nodes[position].state) else { return .done }
        nodes[position].state = state
        epoch += 1
        place()
        return .done
    }
}

/// A change to the cluster map, proposed to the meta group.
public enum MetaCommand: Sendable, Equatable {
    /// The first entry of a new cluster's meta group: the founding map. Every meta replica, including
    /// ones added later, starts its state machine from it (later `found` entries are ignored).
    case found(ClusterMap)
    case addNode(NodeAddresses)
    case updateAddresses(NodeID, NodeAddresses)
    /// The node leaves for good: `cairn ctl remove` (a node that is gone), or a leaving node drained.
    case removeNode(NodeID)
    /// `cairn ctl decommission`: the node's replicas move away, then it asks to be removed.
    case decommission(NodeID)
    /// `cairn ctl remove` without --force: as `removeNode`, unless the node is active by the time it
    /// applies.
    case removeUnlessActive(NodeID)
    /// The meta leader has not heard from the node for the dead-node timeout.
    case markDead(NodeID)
    /// The meta leader hears from a node marked dead again.
    case markAlive(NodeID)
}

/// What applying a `MetaCommand` answered.
public enum MetaReply: Sendable, Equatable {
    case nodeAdded(NodeID)
    case done
    case unknownNode(NodeID)
    /// Not applied: it would leave fewer active nodes than replicas.
    case refused
}

// MARK: Encoding

extension ClusterMap {
    static let version: UInt8 = 1

    func encode(into writer: inout ByteWriter) {
        writer.write(Self.version)
        writer.write(clusterID)
        writer.write(epoch)
        writer.write(UInt32(partitionCount))
        writer.write(UInt32(replicas))
        writer.write(nextNodeID)
        writer.write(UInt32(nodes.count))
        for node in nodes {
            writer.write(node.id.rawValue)
            writer.write(node.state.rawValue)
            node.addresses.encode(into: &writer)
        }
        writer.write(UInt32(placement.count))
        for replicas in placement { Self.encode(replicas, into: &writer) }
        Self.encode(metaVoters, into: &writer)
    }

    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 256 + placement.count * 32)
        encode(into: &writer)
        return writer.bytes
    }

    static func encode(_ nodes: [NodeID], into writer: inout ByteWriter) {
        writer.write(UInt8(nodes.count))
        for node in nodes { writer.write(node.rawValue) }
    }

    static func decodeNodes(_ reader: inout ByteReader, _ field: String) throws(DecodeError) -> [NodeID] {
        let count = Int(try reader.readUInt8(field + " count"))
        var nodes: [NodeID] = []
        for _ in 0..<count { nodes.append(NodeID(rawValue: try reader.readUInt64(field))) }
        return nodes
    }

    static func decode(_ reader: inout ByteReader) throws(DecodeError) -> ClusterMap {
        let version = try reader.readUInt8("cluster map version")
        guard version == Self.version else { throw .invalid(field: "cluster map version", value: UInt64(version)) }
        let clusterID = try reader.readUInt64("cluster id")
        let epoch = try reader.readUInt64("epoch")
        let partitionCount = Int(try reader.readUInt32("partition count"))
        guard (1...HashSlot.count).contains(partitionCount) else {
            throw .invalid(field: "partition count", value: UInt64(partitionCount))
        }
        let replicas = Int(try reader.readUInt32("replicas"))
        guard (1...Limits.raftMembersMax).contains(replicas) else {
            throw .invalid(field: "replicas", value: UInt64(replicas))
        }
        let nextNodeID = try reader.readUInt64("next node id")
        let nodeCount = Int(try reader.readUInt32("node count"))
        guard nodeCount <= Limits.clusterNodesMax else { throw .invalid(field: "node count", value: UInt64(nodeCount)) }
        var nodes: [NodeRecord] = []
        for _ in 0..<nodeCount {
            let id = NodeID(rawValue: try reader.readUInt64("node id"))
            let rawState = try reader.readUInt8("node state")
            guard let state = NodeRecord.State(rawValue: rawState) else {
                throw .invalid(field: "node state", value: UInt64(rawState))
            }
            nodes.append(NodeRecord(id: id, addresses: try NodeAddresses.decode(&reader), state: state))
        }
        let placementCount = Int(try reader.readUInt32("placement count"))
        guard placementCount == partitionCount else {
            throw .invalid(field: "placement count", value: UInt64(placementCount))
        }
        var placement: [[NodeID]] = []
        for _ in 0..<placementCount { placement.append(try decodeNodes(&reader, "replica")) }
        let metaVoters = try decodeNodes(&reader, "meta voter")
        return ClusterMap(
            clusterID: clusterID, epoch: epoch, partitionCount: partitionCount, replicas: replicas, nodes: nodes,
            placement: placement, metaVoters: metaVoters, nextNodeID: nextNodeID)
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> ClusterMap {
        var reader = ByteReader(bytes)
        let map = try decode(&reader)
        try reader.expectEnd("cluster map")
        return map
    }
}

extension NodeAddresses {
    func encode(into writer: inout ByteWriter) {
        writer.writeLengthPrefixed(Array(client.utf8))
        writer.writeLengthPrefixed(Array(peer.utf8))
        writer.writeLengthPrefixed(Array(http.utf8))
    }

    static func decode(_ reader: inout ByteReader) throws(DecodeError) -> NodeAddresses {
        func text(_ field: String) throws(DecodeError) -> String {
            let bytes = try reader.readLengthPrefixed(field)
            guard bytes.count <= 256 else { throw .invalid(field: field + " length", value: UInt64(bytes.count)) }
            return String(decoding: bytes, as: UTF8.self)
        }
        return NodeAddresses(
            client: try text("client address"), peer: try text("peer address"), http: try text("http address"))
    }
}

extension MetaCommand {
    func encoded() -> [UInt8] {
        var writer = ByteWriter()
        switch self {
        case .found(let map):
            writer.write(UInt8(4))
            map.encode(into: &writer)
        case .addNode(let addresses):
            writer.write(UInt8(1))
            addresses.encode(into: &writer)
        case .updateAddresses(let id, let addresses):
            writer.write(UInt8(2))
            writer.write(id.rawValue)
            addresses.encode(into: &writer)
        case .removeNode(let id):
            writer.write(UInt8(3))
            writer.write(id.rawValue)
        case .markDead(let id):
            writer.write(UInt8(5))
            writer.write(id.rawValue)
        case .markAlive(let id):
            writer.write(UInt8(6))
            writer.write(id.rawValue)
        case .decommission(let id):
            writer.write(UInt8(7))
            writer.write(id.rawValue)
        case .removeUnlessActive(let id):
            writer.write(UInt8(8))
            writer.write(id.rawValue)
        }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> MetaCommand {
        var reader = ByteReader(bytes)
        let kind = try reader.readUInt8("meta command kind")
        let command: MetaCommand
        switch kind {
        case 1: command = .addNode(try NodeAddresses.decode(&reader))
        case 2: command = .updateAddresses(NodeID(rawValue: try reader.readUInt64("node id")), try .decode(&reader))
        case 3: command = .removeNode(NodeID(rawValue: try reader.readUInt64("node id")))
        case 4: command = .found(try ClusterMap.decode(&reader))
        case 5: command = .markDead(NodeID(rawValue: try reader.readUInt64("node id")))
        case 6: command = .markAlive(NodeID(rawValue: try reader.readUInt64("node id")))
        case 7: command = .decommission(NodeID(rawValue: try reader.readUInt64("node id")))
        case 8: command = .removeUnlessActive(NodeID(rawValue: try reader.readUInt64("node id")))
        default: throw .invalid(field: "meta command kind", value: UInt64(kind))
        }
        try reader.expectEnd("meta command")
        return command
    }
}
