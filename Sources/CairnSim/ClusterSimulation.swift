import CairnCore
import CairnNode
import CairnStorage

/// A deterministic simulation of a whole Cairn cluster: N `NodeCore`s (the same code the server runs),
/// their disks, the network between them, and clients sending RESP commands through any node
/// (`cairn sim cluster`, issue 4).
///
/// ## What is simulated, and how faithfully
/// - **Nodes**: each is a `NodeCore` over a `MemoryKVStore`, driven as the server's shell drives it: one
///   input, then `.turnEnded`, and the output carried out in its documented order (storage batches to
///   the disk, envelopes to peers, replies to clients). Every node ticks every 10 ms, out of phase.
/// - **Disks**: a batch reaches the store only when its simulated fsync completes, in issue order; then
///   the node hears `.persisted`. A crash throws away the batches still in flight, and a restart opens a
///   new `NodeCore` on the same store (it reads its identity, map and Raft state from there).
/// - **Network**: peer links are TCP connections, so envelopes on one link arrive in order and are never
///   duplicated; an envelope may be lost (its connection broke; the next one goes on a new connection),
///   and a partition (symmetric or one-way) loses everything sent across it while it lasts. Different
///   links have independent delays, so messages on different links overtake each other. A connection
///   to a node that crashed loses what was in flight to it.
/// - **Clients**: each sends one command at a time (`GET`, `SET`, `SET … IFEQ old` or `SET … NX`, `DEL`)
///   through a connection to some node, and records it in a history. An error reply to a write, a
///   timeout or a crash of its node makes the outcome unknown (it may or may not have taken effect);
///   the client then reconnects to another node.
///
/// ## Phases
/// 1. **Forming** (no faults): node 1 founds the cluster, the others join through it; the phase ends
///    when every node is ready (`NodeCore.isReady`).
/// 2. **Safety** (`safetyTicks`): clients run while the network loses envelopes, partitions come and go,
///    and nodes crash (losing unsynced batches) and restart.
/// 3. **Liveness** (at most `livenessTicksMax`): faults stop, links heal, crashed nodes restart, and
///    clients stop. Every node must become ready (every partition it holds has a leader it knows), and
///    a final reader must read every key through some node.
/// 4. **Linearizability**: the whole history, final reads included, goes to `CairnCheck`.
///
/// ## Determinism
/// One thread, one simulated clock, one event queue ordered by (time, sequence); the simulator's own
/// random choices come from `SplitMix64` streams derived from the seed, and it puts each output's
/// envelopes and replies in a fixed order before drawing delays for them. `NodeCore` iterates some
/// dictionaries, whose order depends on Swift's per-process hash seed: a seed replays exactly only with
/// `SWIFT_DETERMINISTIC_HASHING=1` (which `cairn sim cluster` sets for itself).
public final class ClusterSimulation {
    /// Default length of the safety phase (20 simulated seconds).
    public static let safetyTicksDefault = 2000
    /// Default bound on the liveness phase (30 simulated seconds: node timeouts, then elections in every
    /// partition, then the final reads).
    public static let livenessTicksMaxDefault = 3000
    /// How long the cluster may take to form before the run fails (30 simulated seconds).
    static let formingTicksMax = 3000
    /// Events pending at once stay in the hundreds; far more means something schedules without bound.
    static let pendingEventsMax = 200_000
    /// The first simulated instant: 2023-11-14, so that wall-clock times look like real ones.
    static let epochMicroseconds: Int64 = 1_700_000_000_000_000

    enum Event {
        case tick(node: Int, incarnation: Int)
        case deliver(from: Int, to: Int, incarnation: Int, payload: [UInt8])
        case diskDone(node: Int, incarnation: Int)
        /// A partition snapshot read finished on the node's snapshot thread.
        case snapshotBuilt(node: Int, incarnation: Int, NodeInput)
        case command(node: Int, incarnation: Int, connection: ClientID, arguments: [[UInt8]])
        case reply(client: Int, connection: ClientID, bytes: [UInt8])
        case clientNext(client: Int)
        case clientRetry(client: Int)
        case clientTimeout(client: Int, operation: Int)
        case crash
        case restart(node: Int)
        case partition
        case heal
        case formingCheck
        case livenessStart
        case livenessCheck
        case decommission
    }

    public let options: ClusterOptions
    public let bug: ClusterBug
    let safetyTicks: Int
    let livenessTicksMax: Int

    var nowMs: UInt64 = 0
    var queue = EventQueue<Event>()
    var nodes: [ClusterNode] = []
    var clients: [ClusterClient] = []
    var history: [ClientOperation] = []
    var trace: SimTrace
    var faults = FaultCounts()
    var violation: SimViolation?
    var networkPrng: SplitMix64
    var diskPrng: SplitMix64
    var faultPrng: SplitMix64
    var clientPrng: SplitMix64
    /// `blocked[from * nodeCount + to]`: envelopes on that one-way link are lost.
    var blocked: [Bool]
    /// `linkClearMs[from * nodeCount + to]`: when the last envelope sent on that link arrives; the next
    /// one arrives no earlier (a TCP connection delivers in order).
    var linkClearMs: [UInt64]
    var isPartitioned = false
    var isFaulty = false
    var formedMs: UInt64?
    var livenessStartMs: UInt64?
    var convergedMs: UInt64?
    /// Strictly increasing history time (simulated microseconds, bumped so that no two client events
    /// share an instant: the order the simulator ran them in is the real order).
    var historyClockUs: UInt64 = 0
    var nextConnection: UInt64 = 1
    /// Which client owns each connection ID.
    var connectionOwners: [UInt64: Int] = [:]
    var steps = 0
    /// The node being decommissioned (its ID, known once the cluster formed).
    var decommissionID: NodeID?
    var membershipPrng: SplitMix64
    /// Which writes carry a token (a stream of its own: runs without tokens draw nothing from it).
    var idempotencyPrng: SplitMix64
    var linearizability = "not checked"
    var isLinearizabilityInconclusive = false

    /// - Parameters:
    ///   - seed: everything about the run derives from it.
    ///   - nodeCount: 3 or 5.
    ///   - bug: a deliberately wrong behaviour to turn on, or `.none`.
    ///   - safetyTicks: length of the fault phase, in ticks of 10 ms.
    ///   - livenessTicksMax: how long the healed cluster has to converge.
    ///   - trace: whether to record the readable trace (and its hash).
    ///   - traceSink: receives each trace line as it is recorded, instead of keeping them.
    public convenience init(
        seed: UInt64, nodeCount: Int, bug: ClusterBug = .none, safetyTicks: Int = safetyTicksDefault,
        livenessTicksMax: Int = livenessTicksMaxDefault, trace: Bool = false,
        traceSink: (@Sendable (String) -> Void)? = nil
    ) {
        self.init(
            options: ClusterOptions(seed: seed, nodeCount: nodeCount), bug: bug, safetyTicks: safetyTicks,
            livenessTicksMax: livenessTicksMax, trace: trace, traceSink: traceSink)
    }

    /// A run with the given options instead of the ones its seed draws.
    public init(
        options: ClusterOptions, bug: ClusterBug = .none, safetyTicks: Int = safetyTicksDefault,
        livenessTicksMax: Int = livenessTicksMaxDefault, trace: Bool = false,
        traceSink: (@Sendable (String) -> Void)? = nil
    ) {
        precondition(safetyTicks > 0 && livenessTicksMax > 0, "phases must last at least one tick")
        self.options = options
        self.bug = bug
        self.safetyTicks = safetyTicks
        self.livenessTicksMax = livenessTicksMax
        self.trace = SimTrace(isRecording: trace || traceSink != nil, keepsLines: traceSink == nil)
        self.trace.sink = traceSink
        var streams = SplitMix64(seed: options.seed ^ 0x4E4F_4445_5300_0000)
        networkPrng = SplitMix64(seed: streams.next())
        diskPrng = SplitMix64(seed: streams.next())
        faultPrng = SplitMix64(seed: streams.next())
        clientPrng = SplitMix64(seed: streams.next())
        membershipPrng = SplitMix64(seed: options.seed ^ 0x4D45_4D42_4552_5301)
        idempotencyPrng = SplitMix64(seed: options.seed ^ 0x4944_454D_0000_0001)
        let count = options.nodeCount
        blocked = Array(repeating: false, count: count * count)
        linkClearMs = Array(repeating: 0, count: count * count)
        for position in 0..<count {
            var config = NodeConfig()
            config.seed = options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(position + 1)
            config.partitionCount = options.partitionCount
            config.addresses = Self.addresses(of: position)
            config.join = position == 0 ? [] : [Self.addresses(of: 0).peer]
            config.requestTimeoutMilliseconds = options.nodeRequestTimeoutMs
            config.cacheBytes = 1024 * 1024
            config.snapshotEntries = options.snapshotEntries
            config.moveBytesPerSecond = options.moveBytesPerSecond
            if bug == .followerServesLinearizableRead { config._injectedBug = .followerServesLinearizableRead }
            if bug == .idempotencyIgnored { config._injectedBug = .idempotencyIgnored }
            if bug == .snapshotWithoutData { config._injectedBug = .snapshotWithoutData }
            nodes.append(ClusterNode(position: position, config: config))
        }
        for id in 1...options.clientCount { clients.append(ClusterClient(id: id)) }
        // The final reader: in the liveness phase it reads every key once.
        clients.append(ClusterClient(id: options.clientCount + 1))
    }

    /// Where node `position` says it listens (names only: nothing is opened).
    static func addresses(of position: Int) -> NodeAddresses {
        NodeAddresses(
            client: "node\(position + 1):7379", peer: "node\(position + 1):17379", http: "node\(position + 1):27379")
    }

    /// The simulated instant `nowMs` as the nodes see it.
    var now: Instant {
        Instant(
            unixMicroseconds: Self.epochMicroseconds + Int64(nowMs) * 1000, monotonicNanoseconds: nowMs * 1_000_000)
    }

    /// Runs the simulation to the end (or the first violation) and reports.
    /// Node ticks since replicas were last compared (`replicaDisagreement`, about every 100 ms).
    var ticksSinceReplicaCheck = 0

    public func run() -> ClusterReport {
        trace.record(0, "SEED=\(options.seed) bug=\(bug)\n  \(options)")
        for node in nodes {
            // The founder starts at once; the others join a little later, one after another.
            let startMs = node.position == 0 ? 0 : UInt64(100 * node.position) + UInt64(faultPrng.below(100))
            queue.push(.restart(node: node.position), at: startMs)
        }
        queue.push(.formingCheck, at: 100)
        while violation == nil, convergedMs == nil, let (time, event) = queue.pop() {
            precondition(time >= nowMs, "event at \(time)ms scheduled in the past (now \(nowMs)ms)")
            nowMs = time
            handle(event)
            if queue.count > Self.pendingEventsMax {
                report(.liveness, "\(queue.count) events pending (more than \(Self.pendingEventsMax))")
            }
        }
        if violation == nil {
            switch LinearizabilityAdapter.check(history) {
            case .linearizable(let summary):
                linearizability = summary
            case .inconclusive(let summary):
                linearizability = summary
                isLinearizabilityInconclusive = true
            case .violation(let detail):
                linearizability = "not linearizable"
                report(.linearizability, detail)
            }
        }
        if let violation { trace.record(nowMs, "VIOLATION \(violation)") }
        return makeReport()
    }

    func handle(_ event: Event) {
        switch event {
        case .tick(let position, let incarnation):
            if nodes[position].isUp, nodes[position].incarnation == incarnation {
                step(position, .tick)
                queue.push(.tick(node: position, incarnation: incarnation), at: nowMs + SwarmOptions.tickMs)
                ticksSinceReplicaCheck += 1
                if ticksSinceReplicaCheck >= 10 * nodes.count {
                    ticksSinceReplicaCheck = 0
                    if let disagreement = replicaDisagreement() { report(.stateMachineSafety, disagreement) }
                }
            }
        case .deliver(let from, let to, let incarnation, let payload):
            deliver(payload, from: from, to: to, incarnation: incarnation)
        case .diskDone(let position, let incarnation):
            diskDone(position, incarnation: incarnation)
        case .snapshotBuilt(let position, let incarnation, let input):
            guard nodes[position].isUp, nodes[position].incarnation == incarnation else { return }
            step(position, input)
        case .command(let position, let incarnation, let connection, let arguments):
            guard nodes[position].isUp, nodes[position].incarnation == incarnation else { return }
            step(
                position, .command(connection, arguments: arguments, wireBytes: arguments.reduce(16) { $0 + $1.count }))
        case .reply(let client, let connection, let bytes):
            receiveReply(client: client, connection: connection, bytes: bytes)
        case .clientNext(let client):
            issueOperation(client: client)
        case .clientRetry(let client):
            resendOperation(client: client)
        case .clientTimeout(let client, let operation):
            timeOut(client: client, operation: operation)
        case .crash:
            crashRandomNode()
        case .restart(let position):
            if !nodes[position].isUp { restart(position) }
        case .partition:
            startPartition()
        case .heal:
            healAll()
        case .formingCheck:
            checkForming()
        case .livenessStart:
            startLiveness()
        case .livenessCheck:
            checkLiveness()
        case .decommission:
            requestDecommission()
        }
    }

    /// Records the first violation; the run stops after the current event.
    func report(_ check: SimCheck, _ detail: String) {
        guard violation == nil else { return }
        violation = SimViolation(check: check, timeMs: nowMs, detail: detail)
    }

    /// The next history instant: simulated microseconds, strictly after the previous one.
    func historyInstant() -> UInt64 {
        historyClockUs = max(historyClockUs + 1, nowMs * 1000)
        return historyClockUs
    }

    private func makeReport() -> ClusterReport {
        var ok = 0
        var unknown = 0
        for operation in history {
            switch operation.outcome {
            case .ok: ok += 1
            case .unknown, nil: unknown += 1
            case .failed: break
            }
        }
        return ClusterReport(
            options: options, bug: bug, violation: violation, faults: faults, endMs: nowMs, formedMs: formedMs,
            livenessStartMs: livenessStartMs,
            convergenceMs: convergedMs.flatMap { end in
                livenessStartMs.map { end - $0 }
            }, operations: history.count, operationsOK: ok, operationsUnknown: unknown, steps: steps,
            linearizability: linearizability, isLinearizabilityInconclusive: isLinearizabilityInconclusive,
            history: history, traceHash: trace.hash, traceLines: trace.lineCount)
    }

    /// The trace lines kept so far (all of them unless streamed).
    public var traceLines: [String] { trace.lines }
}

/// What one whole-cluster run found.
public struct ClusterReport: Sendable, SeedReport {
    public var options: ClusterOptions
    public var bug: ClusterBug
    /// The first check that failed, or nil.
    public var violation: SimViolation?
    public var faults: FaultCounts
    /// Simulated time at the end of the run.
    public var endMs: UInt64
    /// When every node was ready for the first time (the fault phase starts then).
    public var formedMs: UInt64?
    /// When the liveness phase began, and how long convergence took after it.
    public var livenessStartMs: UInt64?
    public var convergenceMs: UInt64?
    /// Client operations and their outcomes (failed reads are neither ok nor unknown).
    public var operations: Int
    public var operationsOK: Int
    public var operationsUnknown: Int
    /// Node steps taken (ticks, envelopes, commands, completions), a measure of work done.
    public var steps: Int
    /// The linearizability checker's summary, and whether it gave up on a key (proving nothing there).
    public var linearizability: String
    public var isLinearizabilityInconclusive: Bool
    public var history: [ClientOperation]
    public var traceHash: UInt64
    public var traceLines: Int

    public var isFailure: Bool { violation != nil }

    /// The command that replays this run with a trace.
    public var replayCommand: String {
        "cairn sim cluster --seed \(options.seed) --nodes \(options.nodeCount)"
            + (bug == .none ? "" : " --inject-bug \(bug)") + " --trace"
    }

    /// One line: the seed, the verdict, and how to replay it.
    public var summaryLine: String {
        if let violation {
            return "seed \(options.seed): FAILED \(violation) (replay: \(replayCommand))"
        }
        return "seed \(options.seed): ok, \(operations) operations (\(operationsOK) ok, \(operationsUnknown) unknown),"
            + " faults: \(faults.total)"
    }
}
