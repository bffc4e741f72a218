import CairnCore
import CairnRaft

/// A deterministic in-test cluster: cores, their storage, their state machines and a network between
/// them. Every output is carried out in lane order, as a shell would, and rendered as text for golden
/// files. After every step it checks Raft's safety properties (Figure 3): Election Safety, Log Matching,
/// Leader Completeness and State Machine Safety, recording any violation in `violations`.
struct RaftCluster {
    /// A message in the network.
    struct Envelope {
        var from: NodeID
        var to: NodeID
        var message: RaftMessage
    }

    var cores: [NodeID: RaftCore] = [:]
    var storages: [NodeID: MemoryRaftLog] = [:]
    /// Each node's state machine: the commands it applied, in order.
    var machines: [NodeID: [String]] = [:]
    var appliedIndex: [NodeID: LogIndex] = [:]
    var network: [Envelope] = []
    var crashed: Set<NodeID> = []
    /// Links that drop everything: `[a, b]` sorted.
    var cutLinks: Set<[NodeID]> = []
    var transcript: [String] = []
    var stepCount = 0
    var isRendering = true
    var violations: [String] = []
    var replies: [NodeID: [RaftReply]] = [:]
    var reads: [NodeID: [ReadResult]] = [:]
    /// How many times each node asked for a snapshot to send (`RaftOutput.isSnapshotWanted`), and whether
    /// it still waits for one (`prepareSnapshots` answers).
    var snapshotRequests: [NodeID: Int] = [:]
    var snapshotWanted: Set<NodeID> = []
    /// Snapshots restored by any node.
    var restores = 0
    let makeConfig: @Sendable (NodeID) -> RaftConfig

    /// The leader of each term ever seen (Election Safety).
    private var leaders: [Term: NodeID] = [:]
    /// The first entry applied at each index anywhere, and the term of the node that applied it.
    private var committed: [LogIndex: (entry: Entry, term: Term)] = [:]
    /// Every entry ever written to any log, by index and term: one leader creates at most one entry per
    /// index in its term, so equal index and term must mean equal entries (the base of Log Matching).
    private var written: [LogIndex: [Term: Entry]] = [:]
    /// For each read request, the highest index applied anywhere when it was asked: a linearizable read
    /// must be served at or after it (thesis §6.4).
    private var readFloors: [RequestID: LogIndex] = [:]

    /// Every node ever added, crashed ones included, sorted.
    private(set) var nodes: [NodeID] = []

    init(size: Int, configure: @escaping @Sendable (inout RaftConfig) -> Void = { _ in }) {
        makeConfig = { id in
            var config = RaftConfig(id: id, electionTicksMin: 10, heartbeatTicks: 1, seed: id.rawValue &* 7919)
            configure(&config)
            return config
        }
        let voters = (1...UInt64(size)).map { NodeID($0) }
        for id in voters { addNode(id, configuration: ConfigurationState(voters: voters)) }
    }

    /// Starts a node with fresh storage holding `configuration` (empty for a node that will be added).
    mutating func addNode(_ id: NodeID, configuration: ConfigurationState = .empty) {
        storages[id] = MemoryRaftLog(bootstrap: configuration)
        if !nodes.contains(id) { nodes = (nodes + [id]).sorted() }
        machines[id] = []
        appliedIndex[id] = 0
        start(id)
    }

    private mutating func start(_ id: NodeID) {
        guard let storage = storages[id] else { return }
        let config = makeConfig(id)
        do {
            // With snapshots on demand the state machine is durable (applied with the writes it follows,
            // as a partition's records are), so a restart passes how far it got.
            cores[id] = try RaftCore(
                config: config, storage: storage, appliedIndex: config.snapshotsOnDemand ? appliedIndex[id] ?? 0 : nil)
        } catch {
            violations.append("node \(id) failed to start: \(error)")
        }
    }

    // MARK: Driving

    /// Feeds one input to one node and carries out its output in lane order.
    mutating func step(_ id: NodeID, _ input: RaftInput) {
        // Taken out of the dictionary while it steps, so that its log is not copied on write.
        guard !crashed.contains(id), var core = cores.removeValue(forKey: id) else { return }
        stepCount += 1
        if case .readIndex(let request) = input { readFloors[request] = committed.keys.max() ?? 0 }
        let roleBefore = core.role
        let output = core.step(input)
        cores[id] = core
        if core.role != roleBefore {
            render("\(id) \(roleBefore) -> \(core.role) term=\(core.term)")
        }
        carryOut(output, of: id)
        checkSafety(after: id, isNewLeader: core.role == .leader && roleBefore != .leader)
    }

    private mutating func carryOut(_ output: RaftOutput, of id: NodeID) {
        // 1. Durable writes first.
        storages[id]?.apply(output.writes)
        for entry in output.writes.entries {
            if let earlier = written[entry.index]?[entry.term], earlier != entry {
                violations.append("Log Matching: two different entries \(earlier) and \(entry)")
            }
            written[entry.index, default: [:]][entry.term] = entry
        }
        // 2. Then messages.
        for outbound in output.messages {
            render("\(id)->\(outbound.to) \(outbound.message)")
            network.append(Envelope(from: id, to: outbound.to, message: outbound.message))
        }
        // 3. Then the state machine.
        if let snapshot = output.snapshotToRestore {
            restores += 1
            render("\(id) restore \(snapshot)")
            machines[id] = Self.decode(snapshot.data)
            appliedIndex[id] = snapshot.metadata.index
        }
        for entry in output.committed { apply(entry, at: id) }
        // 4. Reads and 5. replies.
        for read in output.reads {
            if let floor = readFloors[read.request], read.index < floor {
                violations.append(
                    "Stale read: node \(id) served \(read) but \(floor) was committed before it was asked")
            }
            render("\(id) \(read)")
            reads[id, default: []].append(read)
        }
        for reply in output.replies {
            render("\(id) reply \(reply)")
            replies[id, default: []].append(reply)
        }
        if output.isSnapshotWanted {
            render("\(id) snapshot wanted")
            snapshotRequests[id, default: 0] += 1
            snapshotWanted.insert(id)
        }
        // Report durability, as a shell does once its fsync returns.
        if let last = output.writes.entries.last {
            step(id, .persisted(through: last.index, term: last.term))
        }
    }

    private mutating func apply(_ entry: Entry, at id: NodeID) {
        let expected = (appliedIndex[id] ?? 0).next
        if entry.index != expected { violations.append("node \(id) applied \(entry.index), expected \(expected)") }
        appliedIndex[id] = entry.index
        if case .command(let bytes) = entry.kind {
            machines[id, default: []].append(String(decoding: bytes, as: UTF8.self))
        }
        render("\(id) apply \(entry)")
        if let first = committed[entry.index] {
            if first.entry != entry {
                violations.append("State Machine Safety: node \(id) applied \(entry), another applied \(first.entry)")
            }
        } else {
            committed[entry.index] = (entry, cores[id]?.term ?? 0)
        }
    }

    /// Ticks `id` `count` times.
    mutating func tick(_ id: NodeID, count: Int = 1) {
        for _ in 0..<count { step(id, .tick) }
    }

    /// Ticks every live node once, in node order.
    mutating func tickAll(count: Int = 1) {
        for _ in 0..<count {
            for id in nodes { step(id, .tick) }
        }
    }

    /// Whether messages can pass between `a` and `b` now.
    func isConnected(_ a: NodeID, _ b: NodeID) -> Bool {
        !cutLinks.contains([min(a, b), max(a, b)]) && !crashed.contains(a) && !crashed.contains(b)
    }

    /// Delivers the messages queued now (not those sent in reply), in order, optionally only `from`→`to`.
    mutating func deliverQueued(from: NodeID? = nil, to: NodeID? = nil) {
        var batch: [Envelope] = []
        var kept: [Envelope] = []
        for envelope in network {
            if (from == nil || envelope.from == from) && (to == nil || envelope.to == to) {
                batch.append(envelope)
            } else {
                kept.append(envelope)
            }
        }
        network = kept
        for envelope in batch { deliver(envelope) }
    }

    /// Delivers one message, or drops it if its link is cut.
    mutating func deliver(_ envelope: Envelope) {
        guard isConnected(envelope.from, envelope.to) else {
            render("drop \(envelope.from)->\(envelope.to) \(envelope.message.kind)")
            return
        }
        step(envelope.to, .received(envelope.message, from: envelope.from))
    }

    /// Delivers until the network is quiet (bounded, so a livelock fails instead of hanging).
    mutating func deliverAll(roundsMax: Int = 1000) {
        var rounds = 0
        while !network.isEmpty && rounds < roundsMax {
            deliverQueued()
            rounds += 1
        }
        if !network.isEmpty { violations.append("network not quiet after \(roundsMax) rounds") }
    }

    /// Cuts every link between the groups.
    mutating func partition(_ groups: [[NodeID]]) {
        cutLinks = []
        for (index, group) in groups.enumerated() {
            for other in groups[(index + 1)...] {
                for a in group {
                    for b in other { cutLinks.insert([min(a, b), max(a, b)]) }
                }
            }
        }
    }

    mutating func heal() { cutLinks = [] }

    /// Stops a node: its core and unsent messages are lost; its storage survives.
    mutating func crash(_ id: NodeID) {
        crashed.insert(id)
        cores[id] = nil
        network.removeAll { $0.to == id || $0.from == id }
        render("\(id) crashed")
    }

    /// Restarts a crashed node from its storage; its state machine starts empty and is rebuilt (or, with
    /// snapshots on demand, is durable and kept).
    mutating func restart(_ id: NodeID) {
        crashed.remove(id)
        snapshotWanted.remove(id)
        if !makeConfig(id).snapshotsOnDemand {
            machines[id] = []
            appliedIndex[id] = 0
        }
        start(id)
        let line = "\(id) restarted term=\(cores[id]?.term ?? 0) last=\(cores[id]?.lastIndex ?? 0)"
        render(line)
    }

    /// Ticks `id` until it becomes leader, delivering everything each tick (bounded).
    mutating func elect(_ id: NodeID, ticksMax: Int = 100) {
        var ticks = 0
        while cores[id]?.role != .leader && ticks < ticksMax {
            tick(id)
            deliverAll()
            ticks += 1
        }
    }

    /// The one live node that is leader in the highest term, if any.
    var leader: NodeID? {
        nodes.filter { cores[$0]?.role == .leader }.max { (cores[$0]?.term ?? 0) < (cores[$1]?.term ?? 0) }
    }

    /// Creates a snapshot at `id` of everything it applied (with snapshots on demand, compacts: the state
    /// machine is the snapshot).
    mutating func snapshot(_ id: NodeID) {
        guard !makeConfig(id).snapshotsOnDemand else { return compact(id) }
        let data = Self.encode(machines[id] ?? [])
        step(id, .snapshotCreated(index: appliedIndex[id] ?? 0, data: data))
    }

    /// Compacts `id`'s log through everything it applied, keeping no data (`RaftConfig.snapshotsOnDemand`:
    /// the state machine is the snapshot).
    mutating func compact(_ id: NodeID) {
        step(id, .snapshotCreated(index: appliedIndex[id] ?? 0, data: []))
    }

    /// Answers every node that asked for a snapshot to send with its state machine as of now.
    mutating func prepareSnapshots() {
        let wanting = snapshotWanted.sorted()
        snapshotWanted = []
        for id in wanting where !crashed.contains(id) {
            step(id, .snapshotPrepared(index: appliedIndex[id] ?? 0, data: Self.encode(machines[id] ?? [])))
        }
    }

    static func encode(_ machine: [String]) -> [UInt8] { Array(machine.joined(separator: "\n").utf8) }

    static func decode(_ data: [UInt8]) -> [String] {
        data.isEmpty
            ? []
            : String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(
                String.init)
    }

    mutating func render(_ line: @autoclosure () -> String) {
        if isRendering { transcript.append(line()) }
    }

    // MARK: Safety (Raft Figure 3)

    private mutating func checkSafety(after id: NodeID, isNewLeader: Bool) {
        guard let core = cores[id] else { return }
        if core.role == .leader {
            if let other = leaders[core.term], other != id {
                violations.append("Election Safety: \(other) and \(id) both lead term \(core.term)")
            }
            leaders[core.term] = id
            // A leader's log only grows, and what commits later is in it by construction: checking at
            // election is enough.
            if isNewLeader { checkLeaderCompleteness(core) }
        }
        for other in nodes where other != id {
            if let peer = cores[other] { checkLogMatching(core, peer) }
        }
    }

    /// Leader Completeness (§5.4): a leader holds every entry committed in an earlier term.
    private mutating func checkLeaderCompleteness(_ leader: RaftCore) {
        for (index, record) in committed where record.term < leader.term && index > leader.snapshotMetadata.index {
            if leader.term(at: index) != record.entry.term {
                violations.append(
                    "Leader Completeness: leader \(leader.config.id) term \(leader.term) lacks \(record.entry)")
            }
        }
    }

    /// Log Matching (§5.3): if two logs have an entry with the same index and term, they are identical
    /// up to it. Entries with equal index and term are equal (checked as they are written), so comparing
    /// terms below the highest common one is enough.
    private mutating func checkLogMatching(_ a: RaftCore, _ b: RaftCore) {
        let first = max(a.snapshotMetadata.index, b.snapshotMetadata.index).next
        let last = min(a.lastIndex, b.lastIndex)
        guard first <= last else { return }
        // Positions in each in-memory log of `first` and `last`; compare terms from the top down.
        let entriesA = a.entries
        let entriesB = b.entries
        let offsetA = Int(a.snapshotMetadata.index.rawValue) + 1
        let offsetB = Int(b.snapshotMetadata.index.rawValue) + 1
        var position = Int(last.rawValue)
        let bottom = Int(first.rawValue)
        while position >= bottom && entriesA[position - offsetA].term != entriesB[position - offsetB].term {
            position -= 1
        }
        while position >= bottom {
            if entriesA[position - offsetA].term != entriesB[position - offsetB].term {
                violations.append("Log Matching: nodes \(a.config.id) and \(b.config.id) differ at \(position)")
                return
            }
            position -= 1
        }
    }
}
