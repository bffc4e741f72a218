/// Which check found a problem. The names are the ones the Raft paper uses (Figure 3) where it has one.
public enum SimCheck: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// At most one leader per term, ever (Raft §5.2).
    case electionSafety = "Election Safety"
    /// Two logs with an entry of the same index and term are identical up to it (Raft §5.3).
    case logMatching = "Log Matching"
    /// A leader's log holds every entry committed in an earlier term (Raft §5.4).
    case leaderCompleteness = "Leader Completeness"
    /// No two nodes commit or apply different entries at one index, and their states agree (Raft §5.4.3).
    case stateMachineSafety = "State Machine Safety"
    /// A read is served at an index at least as high as anything committed before it arrived (thesis §6.4).
    case readFreshness = "Read Freshness"
    /// The client history has a linearization (per key).
    case linearizability = "Linearizability"
    /// After healing, a leader exists and every acknowledged proposal is applied on every live node.
    case liveness = "Liveness"
    /// A node could not restart from its durable storage.
    case recovery = "Recovery"

    public var description: String { rawValue }
}

/// A failed check: which one, when, and what it saw.
public struct SimViolation: Sendable, Equatable, CustomStringConvertible {
    public var check: SimCheck
    public var timeMs: UInt64
    public var detail: String

    public var description: String { "\(check) at \(timeMs)ms: \(detail)" }
}

/// Kinds of fault the simulator injects, counted per run (a run that injected none proves little).
public enum FaultKind: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case drop, duplicate, reorder, partition
    case asymmetricPartition = "asymmetric-partition"
    case swizzle, crash
    case powerFailure = "power-failure"
    case crashAfterVote = "crash-after-vote"
    case lostWrites = "lost-writes"
    case decommission

    public var description: String { rawValue }
}

/// Counts of injected faults, by kind, in `FaultKind.allCases` order.
public struct FaultCounts: Sendable, Equatable, CustomStringConvertible {
    public private(set) var counts = Array(repeating: 0, count: FaultKind.allCases.count)

    public init() {}

    mutating func add(_ kind: FaultKind, _ count: Int = 1) {
        counts[FaultKind.allCases.firstIndex(of: kind) ?? 0] += count
    }

    public subscript(kind: FaultKind) -> Int { counts[FaultKind.allCases.firstIndex(of: kind) ?? 0] }

    public var total: Int { counts.reduce(0, +) }

    public var description: String {
        zip(FaultKind.allCases, counts).map { "\($0)=\($1)" }.joined(separator: " ")
    }
}

/// What one run found.
/// What a seed range run needs from one seed's report, whichever simulator made it.
public protocol SeedReport {
    var isFailure: Bool { get }
    /// One line: the seed, the verdict, and how to replay it.
    var summaryLine: String { get }
    var faults: FaultCounts { get }
    var linearizability: String { get }
    var isLinearizabilityInconclusive: Bool { get }
}

public struct SimReport: Sendable, SeedReport {
    public var options: SwarmOptions
    public var bug: InjectedBug
    /// The first check that failed, or nil.
    public var violation: SimViolation?
    public var faults: FaultCounts
    /// Simulated time at the end of the run.
    public var endMs: UInt64
    /// When the liveness phase began (faults stopped), and how long convergence took after it.
    public var livenessStartMs: UInt64?
    public var convergenceMs: UInt64?
    /// Entries committed (the highest index applied anywhere), client operations, and their outcomes.
    public var committedIndex: UInt64
    public var operations: Int
    public var operationsOK: Int
    public var operationsUnknown: Int
    public var elections: Int
    public var snapshotsInstalled: Int
    /// Core steps taken (ticks, messages, requests, completions), a measure of work done.
    public var steps: Int
    /// The most core steps taken in one simulated second.
    public var stepsPerSecondMax: Int
    /// The linearizability checker's summary, and whether it gave up on a key (proving nothing there).
    public var linearizability: String
    public var isLinearizabilityInconclusive: Bool
    public var history: [ClientOperation]
    public var traceHash: UInt64
    public var traceLines: Int

    public var isFailure: Bool { violation != nil }

    /// The command that replays this run with a trace.
    public var replayCommand: String {
        "cairn sim raft --seed \(options.seed) --nodes \(options.nodeCount)"
            + (bug == .none ? "" : " --inject-bug \(bug)") + " --trace"
    }

    /// One line: the seed, the verdict, and how to replay it.
    public var summaryLine: String {
        if let violation {
            return "seed \(options.seed): FAILED \(violation) (replay: \(replayCommand))"
        }
        return "seed \(options.seed): ok, \(committedIndex) entries, \(operations) operations"
            + " (\(operationsOK) ok, \(operationsUnknown) unknown), \(elections) elections,"
            + " \(snapshotsInstalled) snapshots installed, faults: \(faults.total)"
    }
}
