import Testing

@testable import CairnSim

/// Goal: prove that each check can fail. For every deliberate bug, some seed in 1...1000 must fail, and
/// the check that catches it must be one that the bug actually breaks.
///
/// Method: scan seeds upward from 1 with the bug on (a short fault phase), and stop at the first
/// failure. The scan is deterministic, so each test always stops at the same seed; the bound keeps a
/// regression (a bug no longer caught) from running forever.
@Suite("injected bugs are caught")
struct InjectedBugTests {
    static let seedsMax: UInt64 = 1000
    static let safetyTicks = 500

    /// The checks each bug may trip first.
    static func expectedChecks(_ bug: InjectedBug) -> Set<SimCheck> {
        switch bug {
        case .voteTwice, .forgetVoteOnRestart: [.electionSafety]
        case .commitWithoutQuorum: [.leaderCompleteness, .stateMachineSafety]
        case .readWithoutReadIndex: [.readFreshness]
        // Acknowledging before fsync loses votes (two leaders), committed entries (a leader without
        // them), or entries a leader believes a follower holds (that follower never catches up).
        case .ackBeforeFsync: [.electionSafety, .leaderCompleteness, .stateMachineSafety, .liveness]
        case .none: []
        }
    }

    /// The first failing run in seeds 1...seedsMax, if any.
    static func firstFailure(
        _ bug: InjectedBug, nodeCount: Int, checksReadFreshness: Bool = true
    ) -> SimReport? {
        for seed in 1...seedsMax {
            let simulation = Simulation(seed: seed, nodeCount: nodeCount, bug: bug, safetyTicks: safetyTicks)
            simulation.checksReadFreshness = checksReadFreshness
            let report = simulation.run()
            if report.isFailure { return report }
        }
        return nil
    }

    @Test(
        "a seed in 1...1000 fails with the bug on, caught by a check the bug breaks", arguments: [3, 5],
        InjectedBug.injectable)
    func bugIsCaught(nodeCount: Int, bug: InjectedBug) throws {
        let report = try #require(
            Self.firstFailure(bug, nodeCount: nodeCount),
            "no seed in 1...\(Self.seedsMax) caught \(bug) with \(nodeCount) nodes")
        let violation = try #require(report.violation)
        #expect(Self.expectedChecks(bug).contains(violation.check), "\(report.summaryLine)")
    }

    @Test("the linearizability check alone catches stale reads from a leader that skips ReadIndex")
    func linearizabilityCatchesStaleReads() throws {
        let report = try #require(
            Self.firstFailure(.readWithoutReadIndex, nodeCount: 3, checksReadFreshness: false),
            "no seed in 1...\(Self.seedsMax) gave a non-linearizable history")
        #expect(report.violation?.check == .linearizability, "\(report.summaryLine)")
    }

    @Test("a failure names its seed, its check and the command that replays it")
    func failureMessageHasSeedAndReplayCommand() throws {
        let report = try #require(Self.firstFailure(.voteTwice, nodeCount: 3))
        let seed = report.options.seed
        #expect(report.summaryLine.hasPrefix("seed \(seed): FAILED Election Safety"))
        #expect(report.summaryLine.contains("cairn sim raft --seed \(seed) --nodes 3 --inject-bug vote-twice --trace"))
    }
}
