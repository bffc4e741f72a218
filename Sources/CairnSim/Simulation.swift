import CairnCore
import CairnRaft

/// A deterministic simulation of one Raft group, its clients, network and disks (STYLE.md §2.8 item 4),
/// in the manner of TigerBeetle's VOPR and FoundationDB's simulator.
///
/// ## Determinism
/// One thread; one simulated clock in milliseconds; one queue of events ordered by (time, sequence
/// number). Every random choice comes from `SplitMix64` streams derived from the seed: the swarm options
/// (`SwarmOptions`), the network, the disks, the faults and the clients each have their own stream, so
/// that a change in one does not reshuffle the others. Nothing iterates a hashed collection to decide
/// anything. A seed plus a git commit replays a run exactly; `SimReport.traceHash` proves it.
///
/// ## Phases
/// 1. **Safety** (`safetyTicks`): clients run their workload while the network drops, duplicates,
///    delays and reorders messages, partitions come and go (symmetric, one-way, swizzle-clogged), and
///    nodes crash (losing writes not yet fsync'd) and restart from their durable storage.
/// 2. **Liveness** (at most `livenessTicksMax`): faults stop, partitions heal, crashed nodes restart,
///    and every client must get one write acknowledged. A leader must exist, and every acknowledged
///    proposal must be applied on every node, within the bound.
/// 3. **Linearizability**: the client history is checked per key by `CairnCheck` (see
///    `LinearizabilityAdapter`).
///
/// `SafetyChecker` checks Election Safety, Log Matching, Leader Completeness, State Machine Safety and
/// Read Freshness after every step; the first violation ends the run.
public final class Simulation {
    /// Default length of the safety phase (20 simulated seconds).
    public static let safetyTicksDefault = 2000
    /// Default bound on the liveness phase (10 simulated seconds).
    public static let livenessTicksMaxDefault = 1000
    /// Events pending at once in a healthy run stay in the hundreds (a tick per node, messages in flight,
    /// disk completions, clients). Far more means a message storm: reported as a liveness failure.
    static let pendingEventsMax = 100_000
    /// Core steps per node per simulated second. A healthy group takes a few hundred (ticks, messages,
    /// requests); a message storm takes tens of thousands and is stopped as a liveness failure.
    static let stepsPerNodeSecondMax = 5_000

    enum Event {
        case tick(node: Int)
        case deliver(from: Int, to: Int, message: RaftMessage)
        case diskDone(node: Int, incarnation: Int)
        case request(node: Int, ClientRequest)
        case response(client: Int, request: RequestID, result: ClientResult)
        case clientNext(client: Int)
        case clientTimeout(client: Int, request: RequestID)
        case crash
        case crashNode(node: Int, downtimeMs: UInt64)
        case restart(node: Int)
        case partition
        case clog(from: Int, to: Int)
        case unclog(from: Int, to: Int)
        case heal
        case livenessStart
        case livenessCheck
    }

    public let options: SwarmOptions
    public let bug: InjectedBug
    let safetyTicks: Int
    let livenessTicksMax: Int

    var nowMs: UInt64 = 0
    var queue = EventQueue<Event>()
    var nodes: [SimNode]
    var clients: [SimClient] = []
    var history: [ClientOperation] = []
    var checker = SafetyChecker()
    var trace: SimTrace
    var faults = FaultCounts()
    var networkPrng: SplitMix64
    var diskPrng: SplitMix64
    var faultPrng: SplitMix64
    var clientPrng: SplitMix64
    /// `blocked[from * nodeCount + to]`: messages on that one-way link are lost.
    var blocked: [Bool]
    var isPartitioned = false
    var isFaulty = true
    var livenessStartMs: UInt64 = 0
    var convergedMs: UInt64?
    var nextRequest: UInt64 = 0
    var acknowledgedIndexMax: LogIndex = 0
    var steps = 0
    var windowStartMs: UInt64 = 0
    var windowStartSteps = 0
    var stepsPerSecondMax = 0
    var snapshotsInstalled = 0
    /// Tests turn this off to show that the linearizability check alone catches stale reads.
    var checksReadFreshness = true
    /// Benchmarks turn this off to measure the group, not the linearizability search.
    public var checksHistory = true
    /// Benchmarks turn this off: under a deliberately heavy load the step rate is no sign of a storm.
    public var checksMessageStorms = true
    var linearizability = "not checked"
    var isLinearizabilityInconclusive = false

    /// - Parameters:
    ///   - seed: everything about the run derives from it.
    ///   - nodeCount: 3 or 5.
    ///   - bug: a deliberately wrong behaviour to turn on, or `.none`.
    ///   - safetyTicks: length of the safety phase, in ticks of `SwarmOptions.tickMs`.
    ///   - livenessTicksMax: how long the healed cluster has to converge.
    ///   - trace: whether to record the readable trace (and its hash).
    ///   - traceSink: receives each trace line as it is recorded, instead of keeping them.
    public convenience init(
        seed: UInt64, nodeCount: Int, bug: InjectedBug = .none, safetyTicks: Int = safetyTicksDefault,
        livenessTicksMax: Int = livenessTicksMaxDefault, trace: Bool = false,
        traceSink: (@Sendable (String) -> Void)? = nil
    ) {
        self.init(
            options: SwarmOptions(seed: seed, nodeCount: nodeCount), bug: bug, safetyTicks: safetyTicks,
            livenessTicksMax: livenessTicksMax, trace: trace, traceSink: traceSink)
    }

    /// A run with the given options instead of the ones its seed draws (`SwarmOptions.calm`, tests).
    public init(
        options: SwarmOptions, bug: InjectedBug = .none, safetyTicks: Int = safetyTicksDefault,
        livenessTicksMax: Int = livenessTicksMaxDefault, trace: Bool = false,
        traceSink: (@Sendable (String) -> Void)? = nil
    ) {
        precondition(safetyTicks > 0 && livenessTicksMax > 0, "phases must last at least one tick")
        let seed = options.seed
        let nodeCount = options.nodeCount
        self.options = options
        self.bug = bug
        self.safetyTicks = safetyTicks
        self.livenessTicksMax = livenessTicksMax
        self.trace = SimTrace(isRecording: trace || traceSink != nil, keepsLines: traceSink == nil)
        self.trace.sink = traceSink
        var streams = SplitMix64(seed: seed)
        networkPrng = SplitMix64(seed: streams.next())
        diskPrng = SplitMix64(seed: streams.next())
        faultPrng = SplitMix64(seed: streams.next())
        clientPrng = SplitMix64(seed: streams.next())
        let ids = (1...UInt64(nodeCount)).map { NodeID($0) }
        nodes = ids.map { SimNode(id: $0, configuration: ConfigurationState(voters: ids)) }
        blocked = Array(repeating: false, count: nodeCount * nodeCount)
    }

    /// Runs the simulation to the end (or the first violation) and reports.
    public func run() -> SimReport {
        start()
        while let (time, event) = queue.pop() {
            precondition(time >= nowMs, "event at \(time)ms scheduled in the past (now \(nowMs)ms)")
            nowMs = time
            handle(event)
            if checker.hasViolation || convergedMs != nil { break }
            if queue.count > Self.pendingEventsMax {
                checker.report(
                    .liveness, timeMs: nowMs,
                    "\(queue.count) events pending (more than \(Self.pendingEventsMax)): a message storm")
                break
            }
            if nowMs >= windowStartMs + 1000 {
                stepsPerSecondMax = max(stepsPerSecondMax, steps - windowStartSteps)
                windowStartMs = nowMs
                windowStartSteps = steps
            }
            if checksMessageStorms && steps - windowStartSteps > Self.stepsPerNodeSecondMax * nodes.count {
                checker.report(
                    .liveness, timeMs: nowMs,
                    "more than \(Self.stepsPerNodeSecondMax * nodes.count) core steps in one simulated second: "
                        + "a message storm")
                break
            }
        }
        if !checker.hasViolation && checksHistory {
            checkLinearizability()
        }
        if let violation = checker.violation {
            trace.record(nowMs, "VIOLATION \(violation)")
        }
        return report()
    }

    private func start() {
        trace.record(0, "SEED=\(options.seed) bug=\(bug)\n  \(options)")
        let tickMs = SwarmOptions.tickMs
        for node in nodes {
            restart(node)
            // Nodes tick at the same rate but out of phase, as real clocks do.
            queue.push(.tick(node: node.position), at: UInt64(faultPrng.below(Int(tickMs))))
        }
        for id in 0..<options.clientCount {
            clients.append(SimClient(id: id + 1, target: clientPrng.below(nodes.count)))
            queue.push(.clientNext(client: id), at: UInt64(clientPrng.below(100)))
        }
        if let mean = options.partitionIntervalMsMean {
            queue.push(.partition, at: faultPrng.within(0...(2 * mean)))
        }
        if let mean = options.crashIntervalMsMean {
            queue.push(.crash, at: faultPrng.within(0...(2 * mean)))
        }
        queue.push(.livenessStart, at: UInt64(safetyTicks) * tickMs)
    }

    private func handle(_ event: Event) {
        switch event {
        case .tick(let position):
            let node = nodes[position]
            if node.isUp { step(node, .tick) }
            queue.push(.tick(node: position), at: nowMs + SwarmOptions.tickMs)
        case .deliver(let from, let to, let message):
            deliver(message, from: from, to: to)
        case .diskDone(let position, let incarnation):
            diskDone(nodes[position], incarnation: incarnation)
        case .request(let position, let request):
            receive(request, at: nodes[position])
        case .response(let client, let request, let result):
            receiveResponse(client: client, request: request, result: result)
        case .clientNext(let client):
            issueOperation(client: client)
        case .clientTimeout(let client, let request):
            timeOut(client: client, request: request)
        case .crash:
            crashRandomNode()
        case .crashNode(let position, let downtimeMs):
            crashAfterVote(nodes[position], downtimeMs: downtimeMs)
        case .restart(let position):
            if !nodes[position].isUp { restart(nodes[position]) }
        case .partition:
            startPartition()
        case .clog(let from, let to):
            if isFaulty { setBlocked(from, to, true) }
        case .unclog(let from, let to):
            setBlocked(from, to, false)
        case .heal:
            healAll()
        case .livenessStart:
            startLiveness()
        case .livenessCheck:
            checkLiveness()
        }
    }

    private func report() -> SimReport {
        stepsPerSecondMax = max(stepsPerSecondMax, steps - windowStartSteps)
        var ok = 0
        var unknown = 0
        for operation in history {
            switch operation.outcome {
            case .ok: ok += 1
            case .unknown, nil: unknown += 1
            case .failed: break
            }
        }
        return SimReport(
            options: options, bug: bug, violation: checker.violation, faults: faults, endMs: nowMs,
            livenessStartMs: isFaulty ? nil : livenessStartMs, convergenceMs: convergedMs.map { $0 - livenessStartMs },
            committedIndex: checker.committedIndexMax.rawValue, operations: history.count, operationsOK: ok,
            operationsUnknown: unknown, elections: checker.elections, snapshotsInstalled: snapshotsInstalled,
            steps: steps, stepsPerSecondMax: stepsPerSecondMax, linearizability: linearizability,
            isLinearizabilityInconclusive: isLinearizabilityInconclusive, history: history, traceHash: trace.hash,
            traceLines: trace.lineCount)
    }

    /// The trace lines kept so far (all of them unless streamed).
    public var traceLines: [String] { trace.lines }
}
