import CairnCore
import CairnRaft

/// An operator's request to change the cluster's membership (`cairn ctl decommission|remove`, over the
/// admin HTTP API of any node).
public enum AdminRequest: Sendable, Equatable {
    /// Move every replica of the node to other nodes, then remove it.
    case decommission(NodeID)
    /// Remove a node that is gone for good (dead or leaving; an active one only with `force`).
    case remove(NodeID, force: Bool)
}

/// The answer to an `AdminRequest`: an HTTP status and a JSON body.
public struct AdminReply: Sendable, Equatable {
    public var status: Int
    public var body: String

    init(_ status: Int, _ body: String) {
        self.status = status
        self.body = body
    }

    /// What the shell answers if the core gave no reply (it always does for `.admin`).
    public static let unavailable = AdminReply.error(503, "no answer from the node")

    static func error(_ status: Int, _ message: String) -> AdminReply {
        AdminReply(status, "{\"error\":\"\(NodeCore.jsonEscape(message))\"}\n")
    }
}

/// Where a partition its leader sees stands in a rebalance.
enum MoveState: String, Sendable {
    /// Its voters are the map's target replicas.
    case placed
    /// Its replicas are changing (a learner added, or a voter to remove).
    case moving
    /// The map wants other replicas, and no step was taken yet (waiting for a move slot).
    case waiting
}

/// Which snapshot chunk waits for the move rate: one per group and receiver.
struct ThrottleKey: Hashable, Sendable {
    var group: GroupID
    var to: NodeID
}

/// Elastic membership: decommission and removal, the throttle on partition moves and snapshot bytes,
/// and rebalance progress.
///
/// A decommissioned node becomes `leaving`: placement leaves it out, so each partition's leader moves
/// its replica to another node (add learner, snapshot, promote, remove) and hands off leadership. The
/// node drops each copy once the partition's committed configuration leaves it out; when it hosts no
/// group at all it asks the meta leader to mark it `removed`. Every step is a Raft membership change
/// or a meta command, so a crash at any point resumes from the map.
extension NodeCore {
    // MARK: Operator requests

    /// Checks an operator's request against this node's map and passes it to the meta leader.
    /// Answers 202 once it is on its way (the change shows in the map when it applies), 4xx for a
    /// request that cannot be done, 503 when no meta leader is known.
    mutating func admin(_ request: AdminRequest, into output: inout NodeOutput) -> AdminReply {
        guard let map, identity != nil else { return .error(503, "this node has not joined a cluster yet") }
        let id: NodeID
        let command: MetaCommand
        switch request {
        case .decommission(let node):
            id = node
            command = .decommission(node)
        case .remove(let node, let force):
            id = node
            command = force ? .removeNode(node) : .removeUnlessActive(node)
        }
        guard let record = map.node(id) else {
            let known = map.nodes.filter { $0.state != .removed }.map { "\($0.id)" }.joined(separator: ", ")
            return .error(404, "no node \(id) in the cluster; its nodes are \(known)")
        }
        switch (request, record.state) {
        case (_, .removed):
            return .error(409, "node \(id) was removed already")
        case (.decommission, .leaving):
            return AdminReply(200, Self.adminJSON(id, "decommission", state: record.state, via: nil))
        case (.decommission, _):
            let remaining = map.activeNodes.filter { $0 != id }.count
            if remaining < map.replicas {
                return .error(
                    409,
                    "decommissioning node \(id) would leave \(remaining) active nodes, fewer than the \(map.replicas) "
                        + "replicas each partition keeps; add a node first (or, if node \(id) is gone for good, "
                        + "remove it with --force)")
            }
        case (.remove(_, let force), .active) where !force:
            return .error(
                409,
                "node \(id) is active: 'cairn ctl decommission \(id)' moves its replicas away first; "
                    + "remove it with --force only if it is gone for good")
        case (.remove, _):
            break
        }
        guard let via = submitMeta(command, into: &output) else {
            return .error(503, "the meta group has no leader this node knows of; retry shortly")
        }
        let action = if case .decommission = request { "decommission" } else { "remove" }
        return AdminReply(202, Self.adminJSON(id, action, state: record.state, via: via))
    }

    static func adminJSON(_ node: NodeID, _ action: String, state: NodeRecord.State, via: NodeID?) -> String {
        "{\"node\":\(node.rawValue),\"request\":\"\(action)\",\"state\":\"\(state.name)\","
            + "\"accepted\":\(via != nil),\"meta_leader\":\(via.map { "\($0.rawValue)" } ?? "null")}\n"
    }

    /// Proposes `command` if this node leads the meta group, or sends it to the leader it knows of.
    /// Returns the node that got it, nil if none is known.
    mutating func submitMeta(_ command: MetaCommand, from sender: NodeID? = nil, into output: inout NodeOutput)
        -> NodeID?
    {
        if let meta = groups[Self.metaGroup], meta.isLeader, metaState != nil {
            proposeMeta(command, origin: .none, into: &output)
            return identity
        }
        guard let leader = metaLeaderGuess(), leader != identity, leader != sender else { return nil }
        enqueue(.metaRequest(command), to: leader)
        return leader
    }

    /// Another member passes on a membership request (only decommission and removal travel this way).
    mutating func receiveMetaRequest(_ command: MetaCommand, from sender: NodeID, into output: inout NodeOutput) {
        switch command {
        case .decommission, .removeNode, .removeUnlessActive:
            _ = submitMeta(command, from: sender, into: &output)
        default:
            stats.peerMessagesRefused += 1
        }
    }

    // MARK: Draining and removal

    /// On a leaving node that hosts no group any more: asks the meta leader to remove it (every second
    /// until the map says so). On a removed node: logs once that it can be stopped.
    mutating func checkMembership(into output: inout NodeOutput) {
        guard ticks % 100 == 40, let map, let me = identity, let state = map.node(me)?.state else { return }
        switch state {
        case .leaving where groups.isEmpty:
            output.logs.append(NodeLog(.info, "drained: every replica moved away; asking to be removed", []))
            _ = submitMeta(.removeNode(me), into: &output)
        case .removed where !removalLogged:
            removalLogged = true
            output.logs.append(
                NodeLog(
                    .warn, "this node was removed from the cluster: it holds no replicas and can be stopped",
                    [("node", "\(me)"), ("epoch", "\(map.epoch)")]))
        default:
            break
        }
    }

    /// This node's ID, once it joined a cluster.
    public var nodeID: NodeID? { identity }

    /// The state this node's map gives node `id` (nil if the map does not list it).
    public func state(ofNode id: NodeID) -> NodeRecord.State? { map?.node(id)?.state }

    /// How many groups (partitions and the meta group) this node hosts a member of.
    public var hostedGroupCount: Int { groups.count }

    /// Whether the map says this node was removed.
    var isRemoved: Bool {
        guard let map, let me = identity else { return false }
        return map.node(me)?.state == .removed
    }

    // MARK: Throttling moves

    /// Whether the group at this leader is changing replicas: it has learners, or its voters are not
    /// the map's target yet and a step was taken (a learner was added or a voter removed).
    static func isMoving(_ hosted: HostedGroup, target: [NodeID]) -> Bool {
        let configuration = hosted.raft.configuration
        guard !hosted.isSettled(target: target) else { return false }
        return !configuration.learners.isEmpty || configuration.isJoint || configuration.voters.count != target.count
    }

    static func moveState(_ hosted: HostedGroup, in map: ClusterMap) -> MoveState {
        let target = Self.target(of: hosted, in: map)
        if hosted.isSettled(target: target) { return .placed }
        return isMoving(hosted, target: target) ? .moving : .waiting
    }

    /// Partitions this node holds a copy of (leading or not) that are changing replicas now. Counted
    /// over every copy, not only those it leads: a move whose leadership changed hands mid-way still
    /// takes its slot (counting led partitions only let leadership churn start 64 moves at once where
    /// 12 were allowed).
    /// A copy created for a partition placed here but not yet added to its group (an empty
    /// configuration) is waiting, not moving.
    func movesInProgress(in map: ClusterMap) -> Int {
        guard let me = identity else { return 0 }
        var count = 0
        for hosted in groups.allValues where hosted.partition != nil && hosted.raft.configuration.isMember(me) {
            if Self.isMoving(hosted, target: Self.target(of: hosted, in: map)) { count += 1 }
        }
        return count
    }

    /// Sends a Raft message, holding snapshot chunks for the move rate.
    mutating func dispatchRaft(_ message: OutboundMessage) {
        guard case .installSnapshot(let chunk) = message.message.kind else {
            enqueue(.raft(message.message), to: message.to)
            return
        }
        guard config.moveBytesPerSecond > 0 else {
            stats.snapshotBytesSent += UInt64(chunk.data.count)
            enqueue(.raft(message.message), to: message.to)
            return
        }
        let key = ThrottleKey(group: message.message.group, to: message.to)
        if throttledChunks.updateValue(message.message, forKey: key) == nil { throttledOrder.append(key) }
        releaseThrottledChunks()
    }

    /// Refills the move-rate bucket by one tick's worth (at most a tenth of a second's, or one chunk).
    mutating func refillMoveTokens() {
        guard config.moveBytesPerSecond > 0 else { return }
        let perTick = max(1, config.moveBytesPerSecond * config.tickMilliseconds / 1000)
        let burst = max(config.moveBytesPerSecond / 10, Limits.raftSnapshotChunkBytesMax)
        moveTokens = min(moveTokens + perTick, burst)
        releaseThrottledChunks()
    }

    /// Sends held chunks, oldest first, while the bucket has tokens (it may go below zero by one chunk).
    mutating func releaseThrottledChunks() {
        while moveTokens > 0, !throttledOrder.isEmpty {
            let key = throttledOrder.removeFirst()
            guard let message = throttledChunks.removeValue(forKey: key) else { continue }
            if case .installSnapshot(let chunk) = message.kind {
                moveTokens -= chunk.data.count
                stats.snapshotBytesSent += UInt64(chunk.data.count)
            }
            enqueue(.raft(message), to: key.to)
        }
    }

    // MARK: Progress

    /// This node's part of the rebalance (`GET /v1/rebalance`): every partition it leads, with its
    /// target replicas, voters and learners and whether it is placed as planned, moving, or waiting
    /// for a move slot. `cairn ctl rebalance status` merges the answers of every node.
    public func rebalanceJSON() -> String {
        guard let map, let me = identity else { return "{\"joined\":false}\n" }
        func list(_ nodes: [NodeID]) -> String { "[" + nodes.map { "\($0.rawValue)" }.joined(separator: ",") + "]" }
        var rows: [String] = []
        var counts: [MoveState: Int] = [:]
        for partition in 0..<map.partitionCount {
            guard let hosted = groups[Self.group(ofPartition: partition)], hosted.isLeader else { continue }
            let configuration = hosted.raft.configuration
            let state = Self.moveState(hosted, in: map)
            counts[state, default: 0] += 1
            rows.append(
                "{\"partition\":\(partition),\"state\":\"\(state.rawValue)\",\"target\":\(list(map.placement[partition])),"
                    + "\"voters\":\(list(configuration.voters.sorted())),\"learners\":\(list(configuration.learners.sorted()))}"
            )
        }
        let leaving = map.nodes.filter { $0.state == .leaving }.map(\.id)
        return
            "{\"joined\":true,\"node\":\(me.rawValue),\"epoch\":\(map.epoch),\"partitions_total\":\(map.partitionCount),"
            + "\"led\":\(rows.count),\"placed\":\(counts[.placed] ?? 0),\"moving\":\(counts[.moving] ?? 0),"
            + "\"waiting\":\(counts[.waiting] ?? 0),"
            + "\"max_moves\":\(config.maxMoves),\"move_bytes_per_second\":\(config.moveBytesPerSecond),"
            + "\"snapshot_bytes_sent\":\(stats.snapshotBytesSent),\"snapshot_bytes_received\":\(stats.snapshotBytesReceived),"
            + "\"snapshot_bytes_throttled\":\(throttledChunks.values.reduce(0) { $0 + Self.chunkBytes($1) }),"
            + "\"membership_steps\":\(stats.membershipSteps),\"hosted_groups\":\(groups.count),"
            + "\"leaving\":\(list(leaving)),\"partitions\":[\(rows.joined(separator: ","))]}\n"
    }

    static func chunkBytes(_ message: RaftMessage) -> Int {
        if case .installSnapshot(let chunk) = message.kind { return chunk.data.count }
        return 0
    }
}

extension HostedGroup {
    /// Whether the group's voters are exactly `target` and it has no learners.
    func isSettled(target: [NodeID]) -> Bool {
        let configuration = raft.configuration
        return !configuration.isJoint && configuration.learners.isEmpty
            && Set(configuration.voters) == Set(target)
    }
}
