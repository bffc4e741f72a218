/// One key's part of a check: turns the key's operations into search steps, runs the search, and
/// turns a failed search back into a `Violation` a person can read.
struct KeyCheck {
    let key: RegisterKey
    /// The key's relevant operations in history order; the search refers to them by position here.
    let operations: [IndexedOperation]
    private let searchOperations: [SearchOperation]
    private let values: ValueTable
    private let initialValue: RegisterValue?
    private let initialState: ValueID

    init(key: RegisterKey, operations: [IndexedOperation], initialValue: RegisterValue?) {
        self.key = key
        self.operations = operations
        let values = ValueTable(tested: operations.flatMap { Self.testedValues($0.operation) })
        self.initialValue = initialValue
        self.initialState = values.id(of: initialValue)
        self.searchOperations = operations.map { Self.searchOperation($0.operation, values: values) }
        self.values = values
    }

    func run(statesMax: Int) -> SearchResult {
        var search = KeySearch(operations: searchOperations, initial: initialState, statesMax: statesMax)
        return search.run()
    }

    /// Explains a failed search: replays `prefix` through the model and lists what would have to come
    /// next and why it cannot.
    ///
    /// - Precondition: `prefix` is the deepest prefix of a search that found no linearization. Then
    ///   every completed operation that could come next is impossible from the value after it;
    ///   otherwise the search would have gone one deeper.
    func violation(prefix: [Int], statesExplored: Int) -> Violation {
        // Replay the prefix twice, paired: with the search's value IDs, and with the real values (an
        // ID may stand for many untested values, and the report should name the actual one).
        var state = initialState
        var value = initialValue
        var isPlaced = Array(repeating: false, count: operations.count)
        for position in prefix {
            guard let after = searchOperations[position].step.apply(to: state) else {
                preconditionFailure("key \(key): prefix operation \(operations[position]) does not replay")
            }
            state = after
            value = Self.replay(operations[position].operation, step: searchOperations[position].step, on: value)
            precondition(values.id(of: value) == state, "key \(key): replaying real values diverged from value IDs")
            isPlaced[position] = true
        }
        let unplacedCompleted: [(position: Int, response: Timestamp)] = operations.indices.compactMap { position in
            guard !isPlaced[position], let response = searchOperations[position].response else { return nil }
            return (position, response)
        }
        // Stable: the earliest response, and among equal responses the earliest in the history.
        guard let deadline = unplacedCompleted.min(by: { ($0.response, $0.position) < ($1.response, $1.position) })
        else {
            preconditionFailure("key \(key): no completed operation is left after the prefix, yet the search failed")
        }
        var blocked: [BlockedOperation] = []
        for (position, _) in unplacedCompleted where searchOperations[position].invocation <= deadline.response {
            let step = searchOperations[position].step
            precondition(
                step.apply(to: state) == nil, "key \(key): \(operations[position]) fits after the deepest prefix")
            let kind = operations[position].operation.kind
            blocked.append(BlockedOperation(operation: operations[position], reason: Self.reason(kind, holding: value)))
        }
        let unknownOutcome = operations.indices.filter { position in
            !isPlaced[position] && searchOperations[position].response == nil
                && searchOperations[position].invocation <= deadline.response
        }
        return Violation(
            key: key, operationsOnKey: operations.count, prefix: prefix.map { operations[$0] },
            valueAfterPrefix: value, deadline: operations[deadline.position], blocked: blocked,
            unknownOutcome: unknownOutcome.map { operations[$0] },
            statesExplored: statesExplored)
    }

    /// Why `step`'s reply is impossible when the register holds `value`.
    private static func reason(_ step: RegisterOperation.Kind, holding value: RegisterValue?) -> String {
        let holds = RegisterValue.describe(value)
        switch step {
        case .read(let observed):
            return "it saw \(RegisterValue.describe(observed)), but the register holds \(holds)"
        case .compareAndSet(let expected, _, true):
            return "it swapped from \(RegisterValue.describe(expected)), but the register holds \(holds)"
        case .compareAndSet(_, _, false):
            return "it reported a mismatch, but the register holds \(holds), the value it expected"
        case .write, .delete:
            preconditionFailure("a write is never impossible")
        }
    }

    /// The register's real value after `operation`, placed as `step`.
    private static func replay(_ operation: RegisterOperation, step: RegisterStep, on value: RegisterValue?)
        -> RegisterValue?
    {
        switch (operation.kind, step) {
        case (.write(let written), _): written
        case (.delete, _): nil
        case (.compareAndSet(_, let new, _), .compareAndSet): new
        case (.compareAndSet, _), (.read, _): value
        }
    }

    /// The values an operation reads or compares against, which must keep their own value IDs.
    private static func testedValues(_ operation: RegisterOperation) -> [RegisterValue] {
        switch operation.kind {
        case .read(let observed): observed.map { [$0] } ?? []
        case .compareAndSet(let expected, _, _): expected.map { [$0] } ?? []
        case .write, .delete: []
        }
    }

    /// The model step for a relevant operation, interning its values.
    private static func searchOperation(_ operation: RegisterOperation, values: ValueTable) -> SearchOperation {
        let step: RegisterStep
        switch operation.kind {
        case .read(let observed):
            step = .read(observed: values.id(of: observed))
        case .write(let value):
            step = .write(values.id(of: value))
        case .delete:
            step = .write(.absent)
        case .compareAndSet(let expected, let new, let succeeded):
            // An unknown compare-and-set is searched as one that swapped; see `RegisterStep`.
            let swapped = if case .ok = operation.outcome { succeeded } else { true }
            step =
                swapped
                ? .compareAndSet(expected: values.id(of: expected), new: values.id(of: new))
                : .compareMismatch(expected: values.id(of: expected))
        }
        let response: Timestamp?
        switch operation.outcome {
        case .ok(let time): response = time
        case .failed: preconditionFailure("failed operations are filtered out before the search")
        case .unknown: response = nil
        }
        return SearchOperation(step: step, invocation: operation.invocation, response: response)
    }
}
