import CairnSim
import Testing

/// A seed plus a commit replays a run exactly (STYLE.md §2.7): same trace, same report.
@Suite("determinism")
struct DeterminismTests {
    @Test(
        "the same seed gives the same trace hash and the same history", arguments: [(7, 3), (8, 5)] as [(UInt64, Int)])
    func sameSeedSameTrace(seed: UInt64, nodeCount: Int) {
        let first = Simulation(seed: seed, nodeCount: nodeCount, safetyTicks: 300, trace: true).run()
        let second = Simulation(seed: seed, nodeCount: nodeCount, safetyTicks: 300, trace: true).run()
        #expect(first.traceLines > 1000)
        #expect(first.traceHash == second.traceHash, "seed \(seed)")
        #expect(first.traceLines == second.traceLines)
        #expect(first.history == second.history)
        #expect(first.faults == second.faults)
    }

    @Test("different seeds give different runs")
    func differentSeedsDiffer() {
        let first = Simulation(seed: 1, nodeCount: 3, safetyTicks: 200, trace: true).run()
        let second = Simulation(seed: 2, nodeCount: 3, safetyTicks: 200, trace: true).run()
        #expect(first.traceHash != second.traceHash)
        #expect(first.options != second.options)
    }

    @Test("the trace opens with the seed and the swarm options drawn from it")
    func traceLogsOptionsUnderSeed() throws {
        let simulation = Simulation(seed: 42, nodeCount: 5, safetyTicks: 50, trace: true)
        _ = simulation.run()
        let first = try #require(simulation.traceLines.first)
        #expect(first.contains("SEED=42 bug=none"))
        #expect(first.contains("nodes=5"))
        #expect(first.contains("network: delay="))
        #expect(first.contains("disk: latency="))
    }

    @Test("a trace streamed to a sink is the trace kept in memory")
    func streamedTraceMatches() {
        let kept = Simulation(seed: 3, nodeCount: 3, safetyTicks: 100, trace: true).run()
        let streamed = Simulation(seed: 3, nodeCount: 3, safetyTicks: 100, traceSink: { _ in }).run()
        #expect(kept.traceHash == streamed.traceHash)
    }
}
