import CairnCheck

// Shorthand for hand-made histories. Each function builds one completed (`ok`) operation whose window
// is `window`: invoked at its lower bound, answered at its upper bound. `.unknown()` and `.failed()`
// turn it into an operation without a reply or with a definite failure.

func read(_ key: RegisterKey, _ observed: RegisterValue?, client: ClientID, _ window: ClosedRange<UInt64>)
    -> RegisterOperation
{
    completed(key, .read(observed: observed), client, window)
}

func write(_ key: RegisterKey, _ value: RegisterValue, client: ClientID, _ window: ClosedRange<UInt64>)
    -> RegisterOperation
{
    completed(key, .write(value), client, window)
}

func compareAndSet(
    _ key: RegisterKey, from expected: RegisterValue?, to new: RegisterValue, succeeded: Bool, client: ClientID,
    _ window: ClosedRange<UInt64>
) -> RegisterOperation {
    completed(key, .compareAndSet(expected: expected, new: new, succeeded: succeeded), client, window)
}

func delete(_ key: RegisterKey, client: ClientID, _ window: ClosedRange<UInt64>) -> RegisterOperation {
    completed(key, .delete, client, window)
}

private func completed(
    _ key: RegisterKey, _ kind: RegisterOperation.Kind, _ client: ClientID, _ window: ClosedRange<UInt64>
) -> RegisterOperation {
    RegisterOperation(
        client: client, key: key, kind: kind, invocation: Timestamp(ticks: window.lowerBound),
        outcome: .ok(at: Timestamp(ticks: window.upperBound)))
}

extension RegisterOperation {
    /// The same request, but no reply ever came (a timeout): it may have taken effect, or not.
    func unknown() -> RegisterOperation {
        var copy = self
        copy.outcome = .unknown
        return copy
    }

    /// The same request, but the reply said it definitely did not take effect.
    func failed() -> RegisterOperation {
        var copy = self
        copy.outcome = .failed(at: response ?? invocation)
        return copy
    }
}

/// Checks `history` with the default limits; a malformed history fails the test.
func verdict(_ history: [RegisterOperation], checker: LinearizabilityChecker = LinearizabilityChecker())
    throws -> LinearizabilityReport.Verdict
{
    try checker.check(history).verdict
}

/// The violation in `verdict`, or `nil` if the verdict is anything else.
func violation(in verdict: LinearizabilityReport.Verdict) -> Violation? {
    if case .notLinearizable(let violation) = verdict { violation } else { nil }
}

/// The inconclusive key and its reason in `verdict`, or `nil` if the verdict is anything else.
func inconclusive(in verdict: LinearizabilityReport.Verdict) -> (key: RegisterKey, reason: Inconclusive.Reason)? {
    if case .inconclusive(let inconclusive) = verdict { (inconclusive.key, inconclusive.reason) } else { nil }
}
