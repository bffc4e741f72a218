import CairnSim
import Testing

@Test("one seed runs")
func oneSeedRuns() {
    let report = Simulation(seed: 1, nodeCount: 3).run()
    #expect(report.violation == nil, "\(report.summaryLine)")
}
