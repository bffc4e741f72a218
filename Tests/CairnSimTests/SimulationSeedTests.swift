import CairnSim
import Testing

/// Goal: the Raft core keeps its safety properties, recovers after faults, and gives clients a
/// linearizable history, for a fixed list of seeds (STYLE.md §2.8 item 4).
///
/// Method: each seed is a whole simulation (`Simulation`): a safety phase with faults, a liveness phase,
/// and the linearizability check. The fault phase is shorter than the CLI's default so that 500 seeds fit
/// in CI's budget in a debug build; `cairn sim raft --seeds A..B` runs the full length. A failure message
/// carries the seed, the check that failed and the command that replays it with a trace.
@Suite("simulation seeds")
struct SimulationSeedTests {
    /// Length of the fault phase in CI: 5 simulated seconds.
    static let safetyTicks = 500

    @Test("3-node group: safety, liveness and linearizability hold", arguments: 1...300 as ClosedRange<UInt64>)
    func threeNodes(seed: UInt64) {
        let report = Simulation(seed: seed, nodeCount: 3, safetyTicks: Self.safetyTicks).run()
        #expect(report.violation == nil, "\(report.summaryLine)")
        #expect(report.faults.total > 0, "seed \(seed) injected no faults: it proves nothing")
    }

    @Test("5-node group: safety, liveness and linearizability hold", arguments: 1...200 as ClosedRange<UInt64>)
    func fiveNodes(seed: UInt64) {
        let report = Simulation(seed: seed, nodeCount: 5, safetyTicks: Self.safetyTicks).run()
        #expect(report.violation == nil, "\(report.summaryLine)")
        #expect(report.faults.total > 0, "seed \(seed) injected no faults: it proves nothing")
    }
}
