import CairnCore
import CairnRESP
import CairnStorage
import Testing

@testable import CairnNode

/// Several `NodeCore`s wired together in one thread, the way the shell wires one node to the world:
/// every loop turn each live node ticks and ends its turn, its storage batches are applied at once,
/// and its envelopes are encoded, decoded (so the codec is exercised) and delivered the next turn.
/// Deterministic: no clock, no threads, a fake time that advances one tick per turn.
struct ClusterHarness {
    struct Member {
        var core: NodeCore
        let store: MemoryKVStore
        let config: NodeConfig
        var isUp = true
        /// How far this node's wall clock is ahead of the others' (its monotonic clock is its own anyway).
        var clockSkewMicroseconds: Int64 = 0
    }

    /// The time as member `index` reads it.
    func clock(of index: Int) -> Instant {
        Instant(
            unixMicroseconds: now.unixMicroseconds + members[index].clockSkewMicroseconds,
            monotonicNanoseconds: now.monotonicNanoseconds)
    }

    var members: [Member] = []
    var now = Instant(unixMicroseconds: 1_700_000_000_000_000, monotonicNanoseconds: 1_000_000)
    /// Envelopes to deliver at the start of the next turn: (member index, bytes).
    var inFlight: [(Int, [UInt8])] = []
    /// Extra turns every peer message spends on the wire (0: delivered on the next turn).
    var messageDelayTurns = 0
    var delayed: [(due: Int, target: Int, bytes: [UInt8])] = []
    var turnCount = 0
    var replies: [Int: [ClientID: [String]]] = [:]
    var nextClient: UInt64 = 1
    /// Members whose reads for removing dropped copies are never answered (`PartitionRemoval`).
    var unansweredRemovalReads: Set<Int> = []

    /// Starts `count` nodes: the first founds the cluster, the others join through it.
    /// Settings every member gets on top of the harness's own (snapshot and dead-node thresholds).
    let tune: @Sendable (inout NodeConfig) -> Void

    init(count: Int, partitions: Int = 8, tune: @escaping @Sendable (inout NodeConfig) -> Void = { _ in }) throws {
        self.tune = tune
        for index in 0..<count { try addMember(joiningThrough: index == 0 ? nil : 0, partitions: partitions) }
    }

    /// Starts one more node on an empty store, joining through member `seed` (founding if nil).
    mutating func addMember(joiningThrough seed: Int?, partitions: Int = 8) throws {
        let index = members.count
        var config = NodeConfig()
        config.seed = UInt64(index + 1) * 7919
        config.partitionCount = partitions
        tune(&config)
        config.addresses = NodeAddresses(client: "n\(index):1", peer: "n\(index):2", http: "n\(index):3")
        config.join = seed.map { ["n\($0):2"] } ?? []
        let store = MemoryKVStore()
        members.append(Member(core: try NodeCore(config: config, store: store, now: now), store: store, config: config))
    }

    func index(ofPeerAddress address: String) -> Int? {
        members.firstIndex { $0.config.addresses.peer == address }
    }

    func index(of node: NodeID) -> Int? {
        members.firstIndex { $0.core.identity == node }
    }

    /// Carries out one node's output: storage first (applied at once), then envelopes and replies.
    mutating func carryOut(_ output: NodeOutput, of index: Int) {
        precondition(output.fatal == nil, "node \(index) stopped: \(output.fatal ?? "")")
        if let last = output.writes.last {
            do {
                try members[index].store.apply(output.writes, sync: true)
            } catch {
                preconditionFailure("the in-memory store cannot fail, but did: \(error)")
            }
            let mutations = output.writes.reduce(0) { $0 + $1.mutations.count }
            let next = members[index].core.step(
                .persisted(
                    through: last.sequence, durationNanoseconds: 1000, synced: true, batches: output.writes.count,
                    mutations: mutations),
                now: clock(of: index))
            carryOut(next, of: index)
        }
        for send in output.peerSends {
            let target: Int?
            switch send.to {
            case .node(let node): target = self.index(of: node)
            case .address(let address): target = self.index(ofPeerAddress: address)
            }
            if let target { inFlight.append((target, send.payload)) }
        }
        for reply in output.replies {
            replies[index, default: [:]][reply.client, default: []].append(String(decoding: reply.bytes, as: UTF8.self))
        }
        // As the server does, but at once: a view of the store now, the snapshot built from it.
        for read in output.snapshotReads {
            // Never answered, as if the node stopped before the read came back.
            if case .removal = read.purpose, unansweredRemovalReads.contains(index) { continue }
            let built = read.build(from: members[index].store.readView())
            carryOut(members[index].core.step(built, now: clock(of: index)), of: index)
        }
    }

    mutating func step(_ index: Int, _ input: NodeInput) {
        guard members[index].isUp else { return }
        let output = members[index].core.step(input, now: clock(of: index))
        carryOut(output, of: index)
    }

    /// An operator's request to node `index`, and its answer.
    mutating func admin(_ index: Int, _ request: AdminRequest) -> AdminReply? {
        guard members[index].isUp else { return nil }
        let output = members[index].core.step(.admin(request), now: clock(of: index))
        carryOut(output, of: index)
        return output.adminReply
    }

    /// One loop turn of every live node.
    mutating func turn() {
        now.unixMicroseconds += 10_000
        now.monotonicNanoseconds += 10_000_000
        turnCount += 1
        var delivering = inFlight
        inFlight = []
        if messageDelayTurns > 0 || !delayed.isEmpty {
            delayed += delivering.map { (turnCount + messageDelayTurns, $0.0, $0.1) }
            delivering = delayed.filter { $0.due <= turnCount }.map { ($0.target, $0.bytes) }
            delayed.removeAll { $0.due <= turnCount }
        }
        for (target, bytes) in delivering where members[target].isUp {
            do {
                step(target, .peer(try PeerEnvelope.decode(bytes)))
            } catch {
                preconditionFailure("a node sent an envelope that does not decode: \(error)")
            }
        }
        for index in members.indices where members[index].isUp {
            step(index, .tick)
            step(index, .turnEnded)
        }
    }

    /// Runs turns until `condition` holds; false if it did not within `turns`.
    mutating func run(upTo turns: Int, until condition: (ClusterHarness) -> Bool) -> Bool {
        for _ in 0..<turns {
            if condition(self) { return true }
            turn()
        }
        return condition(self)
    }

    /// Whether every partition's group on every live node has all the map's replicas as voters.
    var isFullyReplicated: Bool {
        for member in members where member.isUp {
            guard let map = member.core.map, member.core.isReady else { return false }
            for partition in 0..<map.partitionCount {
                let group = NodeCore.group(ofPartition: partition)
                guard let hosted = member.core.groups[group] else {
                    if map.placement[partition].contains(member.core.identity!) { return false }
                    continue
                }
                if hosted.raft.configuration.voters != map.placement[partition].sorted() { return false }
            }
        }
        return true
    }

    mutating func connect(_ index: Int, from host: String = "c") -> ClientID {
        let id = ClientID(nextClient)
        nextClient += 1
        step(
            index, .connected(id, address: "\(host):\(id.rawValue)", localAddress: "n\(index):1", fileDescriptor: 3))
        return id
    }

    /// Sends a command to node `index` and runs turns until its reply arrives (nil if it did not).
    mutating func send(_ index: Int, _ client: ClientID, _ words: String..., turns: Int = 1000) -> String? {
        send(index, client, words: words, turns: turns)
    }

    mutating func send(_ index: Int, _ client: ClientID, words: [String], turns: Int = 1000) -> String? {
        let before = replies[index]?[client]?.count ?? 0
        submit(index, client, words: words)
        let arrived = run(upTo: turns) { ($0.replies[index]?[client]?.count ?? 0) > before }
        return arrived ? replies[index]![client]![before] : nil
    }

    /// Hands a command to node `index` without waiting for its reply (pipelining).
    mutating func submit(_ index: Int, _ client: ClientID, _ words: String...) {
        submit(index, client, words: words)
    }

    mutating func submit(_ index: Int, _ client: ClientID, words: [String]) {
        step(index, .command(client, arguments: words.map { Array($0.utf8) }, wireBytes: 10))
    }

    /// Stops a node as `kill -9` would: what it wrote is in its store (batches apply at once here).
    mutating func crash(_ index: Int) {
        members[index].isUp = false
    }

    /// Starts a crashed node again from its store.
    mutating func restart(_ index: Int) throws {
        members[index].core = try NodeCore(
            config: members[index].config, store: members[index].store, now: clock(of: index))
        members[index].isUp = true
    }

    /// Prints every member's view of every group, to diagnose a cluster that did not settle.
    func printGroups() {
        for (index, member) in members.enumerated() {
            guard let map = member.core.map else { continue }
            print(
                "member \(index) up \(member.isUp) node \(member.core.identity.map { "\($0)" } ?? "-") epoch \(map.epoch)"
            )
            for partition in 0..<map.partitionCount {
                let hosted = member.core.groups[NodeCore.group(ofPartition: partition)]
                print(
                    "  p\(partition) target \(map.placement[partition])",
                    "config \(hosted.map { "\($0.raft.configuration)" } ?? "-") role \(hosted.map { "\($0.raft.role)" } ?? "-")",
                    "leader \(hosted?.raft.leader.map { "\($0)" } ?? "-") applied \(hosted.map { "\($0.raft.lastAppliedIndex)" } ?? "-")"
                )
            }
        }
    }
}

/// Every truncation of `bytes` fails to decode with a `DecodeError`, and 2,000 random corruptions of
/// one to four bytes (drawn from `seed`) decode or fail, never crash.
func expectDecodingSurvivesDamage<Decoded>(
    _ bytes: [UInt8], seed: UInt64, _ decode: ([UInt8]) throws -> Decoded
) {
    for cut in 0..<bytes.count {
        #expect(throws: DecodeError.self) { try decode(Array(bytes[..<cut])) }
    }
    var prng = SplitMix64(seed: seed)
    for _ in 0..<2000 {
        var garbage = bytes
        for _ in 0..<(1 + prng.below(4)) { garbage[prng.below(garbage.count)] = UInt8(prng.below(256)) }
        _ = try? decode(garbage)
    }
}
