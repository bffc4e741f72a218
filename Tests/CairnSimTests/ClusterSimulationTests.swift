import Testing

@testable import CairnSim

/// Goal: a whole cluster of `NodeCore`s gives its clients a linearizable history through any node while
/// the network loses envelopes and partitions, disks lose unsynced batches and nodes crash; and the
/// cluster recovers once the faults stop (issue 4).
///
/// Method: each seed is a whole `ClusterSimulation` (forming, a fault phase, a liveness phase, the
/// linearizability check), with a fault phase of 5 simulated seconds so that the fixed seed list fits
/// CI's budget in a debug build; `cairn sim cluster --seeds A..B` runs the full length. A failure
/// message carries the seed, the check that failed and the command that replays it with a trace.
///
/// These runs use the process's own hash seed, so a run here may differ in detail from the CLI's replay
/// of the same seed (which sets `SWIFT_DETERMINISTIC_HASHING=1`); what must hold, holds for every order.
@Suite("cluster simulation")
struct ClusterSimulationTests {
    /// Length of the fault phase in CI: 5 simulated seconds.
    static let safetyTicks = 500

    @Test("3 nodes: linearizable through any node under faults, and recovers", arguments: 1...20 as ClosedRange<UInt64>)
    func threeNodes(seed: UInt64) {
        let report = ClusterSimulation(seed: seed, nodeCount: 3, safetyTicks: Self.safetyTicks).run()
        #expect(report.violation == nil, "\(report.summaryLine)")
        #expect(report.convergenceMs != nil, "seed \(seed) did not converge: \(report.summaryLine)")
        #expect(report.operationsOK > 0, "seed \(seed): no client operation succeeded")
    }

    @Test("5 nodes: linearizable through any node under faults, and recovers", arguments: 1...6 as ClosedRange<UInt64>)
    func fiveNodes(seed: UInt64) {
        let report = ClusterSimulation(seed: seed, nodeCount: 5, safetyTicks: Self.safetyTicks).run()
        #expect(report.violation == nil, "\(report.summaryLine)")
        #expect(report.convergenceMs != nil, "seed \(seed) did not converge: \(report.summaryLine)")
    }

    @Test("the seeds above inject every kind of cluster fault")
    func faultsAreInjected() {
        var total = FaultCounts()
        for seed in 1...6 as ClosedRange<UInt64> {
            let report = ClusterSimulation(seed: seed, nodeCount: 3, safetyTicks: Self.safetyTicks).run()
            for kind in FaultKind.allCases { total.add(kind, report.faults[kind]) }
        }
        for kind: FaultKind in [.drop, .partition, .crash, .lostWrites] {
            #expect(total[kind] > 0, "no \(kind) in seeds 1...6")
        }
    }

    @Test("a follower that serves default reads from its own copy is caught by the linearizability check")
    func followerReadIsCaught() throws {
        let report = try #require(
            Self.firstFailure(.followerServesLinearizableRead, seeds: 1...20),
            "no seed in 1...20 caught follower-serves-linearizable-read")
        #expect(report.violation?.check == .linearizability, "\(report.summaryLine)")
        #expect(
            report.summaryLine.contains(
                "cairn sim cluster --seed \(report.options.seed) --nodes 3"
                    + " --inject-bug follower-serves-linearizable-read --trace"))
    }

    /// Method: the simulated disk undoes, in a crash, what batches written without an fsync changed
    /// (batches of applied data only, as the server writes them). Runs that crash a node with such
    /// batches must still pass; a shell that writes the Raft log that way too must be caught.
    @Test("batches of applied data lost in a crash are rebuilt from the log; a log not fsync'd is caught")
    func unsyncedBatchesLostInCrashes() throws {
        var lostUnsynced = 0
        for seed in 1...6 as ClosedRange<UInt64> {
            let simulation = ClusterSimulation(
                seed: seed, nodeCount: 3, safetyTicks: Self.safetyTicks, trace: true)
            let report = simulation.run()
            #expect(report.violation == nil, "\(report.summaryLine)")
            lostUnsynced +=
                simulation.traceLines.filter {
                    $0.contains("CRASH") && !$0.contains(" and 0 written without fsync")
                }.count
        }
        #expect(lostUnsynced > 0, "no crash in seeds 1...6 lost a batch written without fsync")
        #expect(
            Self.firstFailure(.logWithoutFsync, seeds: 1...20) != nil, "no seed in 1...20 caught log-without-fsync")
    }

    /// Method: partition snapshots are prepared only when a follower needs one (snapshots on demand);
    /// a leader that sends one without its records leaves that follower's copy missing keys, which must
    /// show once the follower serves them.
    @Test("a leader that sends a snapshot without the partition's records is caught")
    func snapshotWithoutDataIsCaught() throws {
        let report = try #require(
            Self.firstFailure(.snapshotWithoutData, seeds: 1...40), "no seed in 1...40 caught snapshot-without-data")
        #expect(report.violation != nil, "\(report.summaryLine)")
    }

    /// The first run in `seeds` (3 nodes, the short fault phase) that fails with `bug` on, if any.
    static func firstFailure(_ bug: ClusterBug, seeds: ClosedRange<UInt64>) -> ClusterReport? {
        for seed in seeds {
            let report = ClusterSimulation(seed: seed, nodeCount: 3, bug: bug, safetyTicks: safetyTicks).run()
            if report.isFailure { return report }
        }
        return nil
    }

    /// Method: every write carries a token and is retried with it after an unknown outcome; nodes that
    /// ignore tokens apply such a retry a second time, which a later read shows out of order.
    @Test("nodes that ignore idempotency tokens are caught by the linearizability check")
    func ignoredTokensAreCaught() throws {
        var failure: ClusterReport?
        var retried = 0
        for seed in 1...40 as ClosedRange<UInt64> where failure == nil {
            var options = ClusterOptions(seed: seed, nodeCount: 3)
            options.idempotentPermille = 1000
            let simulation = ClusterSimulation(
                options: options, bug: .idempotencyIgnored, safetyTicks: Self.safetyTicks, trace: true)
            let report = simulation.run()
            retried += simulation.traceLines.filter { $0.contains("retrying with its token") }.count
            if report.isFailure { failure = report }
        }
        #expect(retried > 0, "no write was retried with its token")
        let report = try #require(failure, "no seed in 1...40 caught idempotency-ignored")
        #expect(report.violation?.check == .linearizability, "\(report.summaryLine)")
    }

    @Test(
        "with tokens honoured, writes retried with their token keep the history linearizable",
        arguments: 1...6 as ClosedRange<UInt64>)
    func retriedTokensAreLinearizable(seed: UInt64) {
        var options = ClusterOptions(seed: seed, nodeCount: 3)
        options.idempotentPermille = 1000
        let report = ClusterSimulation(options: options, safetyTicks: Self.safetyTicks).run()
        #expect(report.violation == nil, "\(report.summaryLine)")
    }

    @Test("the trace opens with the seed and the options drawn from it")
    func traceLogsOptionsUnderSeed() throws {
        let simulation = ClusterSimulation(seed: 42, nodeCount: 5, safetyTicks: 50, trace: true)
        _ = simulation.run()
        let first = try #require(simulation.traceLines.first)
        #expect(first.contains("SEED=42 bug=none"))
        #expect(first.contains("nodes=5 partitions=8"))
        #expect(first.contains("network: delay="))
        #expect(simulation.traceLines.contains { $0.contains("FORMED") })
    }
}
