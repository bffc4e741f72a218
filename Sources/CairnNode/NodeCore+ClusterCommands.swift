import CairnCore
import CairnPlacement
import CairnRESP
import CairnRaft
import CairnStorage

/// Redis Cluster's introspection commands, answered from this node's cluster map, so that cluster
/// clients (redis-cli -c, redis-py's RedisCluster) find the leader of each slot range.
///
/// Mapping: every Cairn node appears as a Redis "master"; a partition (a slot range) is listed with
/// the node leading its group first and its other replicas after, as Redis lists a shard's master
/// and replicas. Node IDs are 40 hex digits: the cluster ID, then the node number.
extension NodeCore {
    mutating func cluster(_ arguments: [[UInt8]]) throws(CommandError) -> RESPValue {
        let sub = try subcommand(arguments, of: "cluster")
        if sub == "keyslot" { return .integer(Int64(HashSlot.of(arguments[2]))) }
        guard let map, let me = identity else {
            throw .other("CLUSTERDOWN this node has not joined a cluster yet")
        }
        switch sub {
        case "myid":
            return .bulk(Self.redisID(me, map))
        case "slots":
            return .array(
                (0..<map.partitionCount).map { partition in
                    let slots = map.slots(of: partition)
                    return .array(
                        [.integer(Int64(slots.lowerBound)), .integer(Int64(slots.upperBound))]
                            + replicasLeaderFirst(partition).compactMap { node in
                                map.node(node).map { record in
                                    let (host, port) = Self.split(record.addresses.client)
                                    return RESPValue.array([
                                        .bulk(host), .integer(port), .bulk(Self.redisID(node, map)),
                                    ])
                                }
                            })
                })
        case "shards":
            return .array(
                (0..<map.partitionCount).map { partition in
                    let slots = map.slots(of: partition)
                    let leader = leader(ofPartition: partition)
                    let nodes: [RESPValue] = replicasLeaderFirst(partition).compactMap { node in
                        guard let record = map.node(node) else { return nil }
                        let (host, port) = Self.split(record.addresses.client)
                        return .map([
                            (.bulk("id"), .bulk(Self.redisID(node, map))),
                            (.bulk("port"), .integer(port)),
                            (.bulk("ip"), .bulk(host)),
                            (.bulk("endpoint"), .bulk(host)),
                            (.bulk("role"), .bulk(node == leader ? "master" : "replica")),
                            (.bulk("replication-offset"), .integer(0)),
                            (.bulk("health"), .bulk("online")),
                        ])
                    }
                    return .map([
                        (
                            .bulk("slots"),
                            .array([.integer(Int64(slots.lowerBound)), .integer(Int64(slots.upperBound))])
                        ),
                        (.bulk("nodes"), .array(nodes)),
                    ])
                })
        case "nodes":
            var lines = ""
            for record in map.nodes where record.state == .active {
                let led = (0..<map.partitionCount).filter { leader(ofPartition: $0) == record.id }
                let ranges = led.map { partition -> String in
                    let slots = map.slots(of: partition)
                    return "\(slots.lowerBound)-\(slots.upperBound)"
                }
                let (host, port) = Self.split(record.addresses.client)
                let peerPort = Self.split(record.addresses.peer).1
                let flags = record.id == me ? "myself,master" : "master"
                lines +=
                    "\(Self.redisID(record.id, map)) \(host):\(port)@\(peerPort) \(flags) - 0 0 \(map.epoch) connected"
                    + (ranges.isEmpty ? "" : " " + ranges.joined(separator: " ")) + "\n"
            }
            return .verbatim(format: "txt", text: lines)
        case "info":
            let leaders = Set((0..<map.partitionCount).compactMap { leader(ofPartition: $0) })
            let led = groups.allValues.filter { $0.isLeader && $0.partition != nil }.count
            let lines = [
                "cluster_state:\(isReady ? "ok" : "fail")",
                "cluster_slots_assigned:\(HashSlot.count)",
                "cluster_slots_ok:\(isReady ? HashSlot.count : 0)",
                "cluster_slots_pfail:0",
                "cluster_slots_fail:0",
                "cluster_known_nodes:\(map.activeNodes.count)",
                "cluster_size:\(leaders.count)",
                "cluster_current_epoch:\(map.epoch)",
                "cluster_my_epoch:\(map.epoch)",
                "cluster_partitions:\(map.partitionCount)",
                "cluster_replicas:\(map.replicas)",
                "cluster_partitions_led_here:\(led)",
                "cluster_partitions_hosted_here:\(groups.allValues.filter { $0.partition != nil }.count)",
                "cluster_forwarded_commands:\(stats.forwarded)",
            ]
            return .verbatim(format: "txt", text: lines.joined(separator: "\r\n") + "\r\n")
        case "countkeysinslot":
            guard let slot = Numbers.parseInt64(arguments[2]), (0..<Int64(HashSlot.count)).contains(slot) else {
                throw .other("ERR Invalid slot")
            }
            var count: Int64 = 0
            var position: [UInt8]? = StorageLayout.dataRange(partition: UInt16(slot)).start
            let end = StorageLayout.dataRange(partition: UInt16(slot)).end
            while let start = position, start.lexicographicallyPrecedes(end) {
                let (entries, next) = try keyspace.scan(from: start, limit: 1024, now: now.unixMilliseconds)
                for entry in entries where HashSlot.of(entry.key) == UInt16(slot) { count += 1 }
                position = next
            }
            return .integer(count)
        default:
            preconditionFailure("cluster subcommand '\(sub)' is in the table but has no handler")
        }
    }

    /// The node leading `partition` as far as this node knows: its own group's view, the last hint a
    /// peer gave, or the map's preferred leader.
    func leader(ofPartition partition: Int) -> NodeID? {
        groups[Self.group(ofPartition: partition)]?.raft.leader ?? leaderHints[partition]
            ?? map?.placement[partition].first
    }

    func replicasLeaderFirst(_ partition: Int) -> [NodeID] {
        guard let map else { return [] }
        var replicas = map.placement[partition]
        if let leader = leader(ofPartition: partition), let position = replicas.firstIndex(of: leader) {
            replicas.remove(at: position)
            replicas.insert(leader, at: 0)
        }
        return replicas
    }

    /// A Redis-style 40-hex-digit node ID: the cluster ID (16 digits), zeros, the node number (16).
    static func redisID(_ node: NodeID, _ map: ClusterMap) -> String {
        hex(map.clusterID) + "00000000" + hex(node.rawValue)
    }

    static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    /// `host:port` split at the last colon.
    static func split(_ address: String) -> (String, Int64) {
        guard let colon = address.lastIndex(of: ":") else { return (address, 0) }
        return (String(address[..<colon]), Int64(address[address.index(after: colon)...]) ?? 0)
    }
}

extension NodeCore {
    /// The cluster as this node sees it, as JSON (`GET /v1/cluster`): nodes, and each partition's
    /// slots, replicas and leader.
    public func clusterJSON() -> String {
        guard let map, let me = identity else {
            return "{\"joined\":false,\"join\":["
                + config.join.map { "\"\(Self.jsonEscape($0))\"" }.joined(separator: ",")
                + "]}\n"
        }
        let nodes = map.nodes.map { node in
            "{\"id\":\(node.id.rawValue),\"state\":\"\(node.state.name)\",\"client\":\"\(Self.jsonEscape(node.addresses.client))\","
                + "\"peer\":\"\(Self.jsonEscape(node.addresses.peer))\",\"http\":\"\(Self.jsonEscape(node.addresses.http))\"}"
        }
        let partitions = (0..<map.partitionCount).map { partitionJSON($0, map: map, detailed: false) }
        return
            "{\"joined\":true,\"node\":\(me.rawValue),\"cluster\":\"\(Self.hex(map.clusterID))\",\"epoch\":\(map.epoch),"
            + "\"ready\":\(isReady),\"meta_voters\":[\(map.metaVoters.map { "\($0.rawValue)" }.joined(separator: ","))],"
            + "\"nodes\":[\(nodes.joined(separator: ","))],\"partitions\":[\(partitions.joined(separator: ","))]}\n"
    }

    /// Every partition as this node sees it, as JSON (`GET /v1/partitions`): what `/v1/cluster` shows,
    /// plus this node's copy of each group (role, learners, applied index, snapshot, log length).
    public func partitionsJSON() -> String {
        guard let map, let me = identity else { return "{\"joined\":false,\"partitions\":[]}\n" }
        let partitions = (0..<map.partitionCount).map { partitionJSON($0, map: map, detailed: true) }
        return "{\"joined\":true,\"node\":\(me.rawValue),\"epoch\":\(map.epoch),\"partitions\":["
            + partitions.joined(separator: ",") + "]}\n"
    }

    /// One partition as a JSON object: slots, target replicas and leader, and this node's copy if any.
    func partitionJSON(_ partition: Int, map: ClusterMap, detailed: Bool) -> String {
        let slots = map.slots(of: partition)
        let hosted = groups[Self.group(ofPartition: partition)]
        // A copy's own view (null while it knows no leader); elsewhere the best guess routing uses.
        let known = hosted.map { $0.raft.leader } ?? leader(ofPartition: partition)
        let leader = known.map { "\($0.rawValue)" } ?? "null"
        func list(_ nodes: [NodeID]) -> String { "[" + nodes.map { "\($0.rawValue)" }.joined(separator: ",") + "]" }
        var json =
            "{\"partition\":\(partition),\"slots\":[\(slots.lowerBound),\(slots.upperBound)],"
            + "\"replicas\":\(list(map.placement[partition])),\"leader\":\(leader)"
        if let raft = hosted?.raft {
            json += ",\"voters\":\(list(raft.configuration.voters)),\"term\":\(raft.term.rawValue)"
            json += ",\"commit\":\(raft.commitIndex.rawValue)"
            if detailed {
                json += ",\"role\":\"\(raft.role)\",\"learners\":\(list(raft.configuration.learners.sorted()))"
                json += ",\"applied\":\(raft.lastAppliedIndex.rawValue),\"last_index\":\(raft.lastIndex.rawValue)"
                json += ",\"snapshot_index\":\(raft.snapshotMetadata.index.rawValue)"
            }
        }
        return json + "}"
    }

    static func jsonEscape(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x20:
                escaped += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}

extension NodeCore {
    /// The cluster as a readable table (`GET /v1/status`, `cairn ctl status`): nodes with the replicas
    /// and leaderships each holds, then partitions with their leader, replicas and health, as this
    /// node sees them. Health: `ok` when this node knows a leader and (if it holds a copy) the group's
    /// voters are the placement's replicas; `moving` while they differ; `no-leader` otherwise.
    public func statusText() -> String {
        guard let map, let me = identity else {
            return "not in a cluster yet (joining through: \(config.join.joined(separator: ", ")))\n"
        }
        var lines: [String] = []
        lines.append(
            "cluster \(Self.hex(map.clusterID))  epoch \(map.epoch)  seen from node \(me)  ready: \(isReady ? "yes" : "no")"
        )
        lines.append("")
        lines.append(
            Self.row(["NODE", "STATE", "CLIENT", "PEER", "HTTP", "REPLICAS", "LEADS"], widths: Self.nodeWidths))
        for node in map.nodes {
            let replicas = map.placement.filter { $0.contains(node.id) }.count
            let leads = (0..<map.partitionCount).filter { leader(ofPartition: $0) == node.id }.count
            lines.append(
                Self.row(
                    [
                        "\(node.id)" + (node.id == me ? "*" : ""), node.state.name, node.addresses.client,
                        node.addresses.peer, node.addresses.http, "\(replicas)", "\(leads)",
                    ], widths: Self.nodeWidths))
        }
        lines.append("")
        lines.append(Self.row(["PARTITION", "SLOTS", "LEADER", "REPLICAS", "HEALTH"], widths: Self.partitionWidths))
        for partition in 0..<map.partitionCount {
            let slots = map.slots(of: partition)
            let hosted = groups[Self.group(ofPartition: partition)]
            let leader = hosted?.raft.leader ?? leaderHints[partition]
            let health: String
            if leader == nil {
                health = "no-leader"
            } else if let hosted, hosted.raft.configuration.voters != map.placement[partition].sorted() {
                health = "moving"
            } else {
                health = "ok"
            }
            lines.append(
                Self.row(
                    [
                        "\(partition)", "\(slots.lowerBound)-\(slots.upperBound)", leader.map { "\($0)" } ?? "-",
                        map.placement[partition].map { "\($0)" }.joined(separator: ","), health,
                    ], widths: Self.partitionWidths))
        }
        let breakers = breakerSummary()
        lines.append(breakers.isEmpty ? "circuits to peers: all closed" : breakers)
        lines.append(resilienceSummary())
        return lines.joined(separator: "\n") + "\n"
    }

    static let nodeWidths = [6, 8, 22, 22, 22, 9, 6]
    static let partitionWidths = [10, 12, 7, 12, 10]

    static func row(_ cells: [String], widths: [Int]) -> String {
        var line = ""
        for (cell, width) in zip(cells, widths) {
            line += cell + String(repeating: " ", count: max(1, width - cell.count))
        }
        return String(line.reversed().drop { $0 == " " }.reversed())
    }
}
