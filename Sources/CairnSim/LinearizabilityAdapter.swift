import CairnCheck

extension Simulation {
    /// Runs the linearizability check on the client history: a violation fails the run; a search that
    /// hit the checker's limits is noted in the report (it proves nothing either way).
    func checkLinearizability() {
        switch LinearizabilityAdapter.check(history) {
        case .linearizable(let summary):
            linearizability = summary
        case .inconclusive(let summary):
            linearizability = summary
            isLinearizabilityInconclusive = true
        case .violation(let detail):
            linearizability = "not linearizable"
            checker.report(.linearizability, timeMs: nowMs, detail)
        }
    }
}

/// Hands the simulator's client history to `CairnCheck.LinearizabilityChecker`, field for field.
///
/// `ClientOperation` mirrors `RegisterOperation`: a client number, a key, what was asked (with the
/// reply's content for reads and compare-and-sets), the invocation time and the outcome. Simulated
/// milliseconds become the checker's timestamps. An operation still pending when the run ended counts
/// as unknown: it may or may not have taken effect.
enum LinearizabilityAdapter {
    enum Verdict: Equatable {
        case linearizable(String)
        case inconclusive(String)
        case violation(String)
    }

    static func check(_ history: [ClientOperation]) -> Verdict {
        let operations = history.map(registerOperation)
        let report: LinearizabilityReport
        do {
            report = try LinearizabilityChecker().check(operations)
        } catch {
            return .violation("the history is malformed: \(error)")
        }
        switch report.verdict {
        case .linearizable: return .linearizable(report.description)
        case .inconclusive: return .inconclusive(report.description)
        case .notLinearizable: return .violation(report.description)
        }
    }

    static func registerOperation(_ operation: ClientOperation) -> RegisterOperation {
        let kind: RegisterOperation.Kind
        switch operation.kind {
        case .read(let observed):
            kind = .read(observed: observed.map(RegisterValue.init))
        case .write(let value):
            kind = .write(RegisterValue(value))
        case .compareAndSet(let expected, let new, let succeeded):
            kind = .compareAndSet(
                expected: expected.map(RegisterValue.init), new: RegisterValue(new), succeeded: succeeded)
        case .delete:
            kind = .delete
        }
        let outcome: RegisterOperation.Outcome
        switch operation.outcome {
        case .ok(let time): outcome = .ok(at: Timestamp(ticks: time))
        case .failed(let time): outcome = .failed(at: Timestamp(ticks: time))
        case .unknown, nil: outcome = .unknown
        }
        return RegisterOperation(
            client: ClientID(UInt64(operation.client)), key: RegisterKey(operation.key), kind: kind,
            invocation: Timestamp(ticks: operation.invocationMs), outcome: outcome)
    }
}
