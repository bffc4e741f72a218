/// What `LinearizabilityChecker.check` found, with counts that show how much work it took.
public struct LinearizabilityReport: Sendable, Equatable, CustomStringConvertible {
    /// The answer. A violation on any key decides the whole history; otherwise one inconclusive key
    /// makes the whole answer inconclusive.
    public enum Verdict: Sendable, Equatable {
        /// Every key's history has a linearization.
        case linearizable
        /// The first key, in key order, whose history has no linearization, with an explanation.
        case notLinearizable(Violation)
        /// No key was found wrong, but the search gave up on this key (the first, in key order).
        case inconclusive(Inconclusive)
    }

    public let verdict: Verdict
    /// Distinct keys in the history.
    public let keysChecked: Int
    /// Operations the search had to place (completed) or could place (unknown outcome, not a read).
    /// Failed operations and reads with unknown outcome carry no information and are not counted.
    public let operationsChecked: Int
    /// Search states (placed operations and register value) entered, over all keys searched: the
    /// measure of the checker's work, and what `statesPerKeyMax` limits.
    public let statesExplored: Int

    public var isLinearizable: Bool { verdict == .linearizable }

    public var description: String {
        let keys = keysChecked == 1 ? "1 key" : "\(keysChecked) keys"
        let counts = "\(keys), \(operationsChecked) operations, \(statesExplored) states explored"
        switch verdict {
        case .linearizable: return "linearizable (\(counts))"
        case .notLinearizable(let violation): return "\(violation)\n(\(counts))"
        case .inconclusive(let inconclusive): return "\(inconclusive)\n(\(counts))"
        }
    }
}

/// An operation together with its position in the history given to the checker, so a report can
/// point back at the record it came from.
public struct IndexedOperation: Sendable, Equatable, CustomStringConvertible {
    /// The position in the `history` array passed to `check`.
    public let index: Int
    public let operation: RegisterOperation

    public var description: String { "#\(index) \(operation)" }
}

/// A completed operation that could not be linearized at the point where the search got stuck.
public struct BlockedOperation: Sendable, Equatable, CustomStringConvertible {
    public let operation: IndexedOperation
    /// Why its reply is impossible from the register's value at that point.
    public let reason: String

    public var description: String { "\(operation): \(reason)" }
}

/// Why a key's history has no linearization, told as the furthest the search got.
///
/// The search proves that no order works; it cannot point at one guilty operation, because any of
/// them might be the one that was recorded wrong. What it can show is a longest prefix that does
/// have a linearization, the register's value after it, and the operations that would have to come
/// next (the ones invoked before the earliest response among the rest) with the reason each one's
/// reply is impossible there. Usually the bug is in that neighbourhood.
public struct Violation: Sendable, Equatable, CustomStringConvertible {
    /// Prefix operations printed by `description`; the rest are summarized in one line.
    public static let prefixShownMax = 12

    public let key: RegisterKey
    /// Operations on this key that the search had to place or could place.
    public let operationsOnKey: Int
    /// A longest linearizable prefix the search found, in linearization order.
    public let prefix: [IndexedOperation]
    /// The register's value after `prefix`, `nil` if the key is absent.
    public let valueAfterPrefix: RegisterValue?
    /// The remaining completed operation that responded first: everything that must come next was
    /// invoked no later than its response.
    public let deadline: IndexedOperation
    /// The completed operations that would have to come next, each with why it cannot.
    public let blocked: [BlockedOperation]
    /// Operations with unknown outcome that were invoked in time to come next. None of them helps:
    /// the search also tried placing them first, and the operations in `blocked` stayed impossible.
    public let unknownOutcome: [IndexedOperation]
    /// Search states explored on this key before the search gave up every order.
    public let statesExplored: Int

    public var description: String {
        var lines = ["not linearizable: key \(key) (\(operationsOnKey) operations, \(statesExplored) states explored)"]
        lines.append("a longest linearizable prefix has \(prefix.count) operations:")
        if prefix.count > Self.prefixShownMax {
            lines.append("  ... \(prefix.count - Self.prefixShownMax) earlier operations not shown")
        }
        lines += prefix.suffix(Self.prefixShownMax).map { "  \($0)" }
        lines.append("after them the register holds \(RegisterValue.describe(valueAfterPrefix))")
        let deadlineTime = deadline.operation.response.map(String.init(describing:)) ?? "-"
        lines.append("#\(deadline.index) responded at \(deadlineTime), so one of these must come next, and none can:")
        lines += blocked.map { "  \($0)" }
        if !unknownOutcome.isEmpty {
            lines.append("taking effect first, these operations with unknown outcome would not change that:")
            lines += unknownOutcome.map { "  \($0)" }
        }
        return lines.joined(separator: "\n")
    }
}

/// A key the search gave up on, and which limit stopped it.
public struct Inconclusive: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// The search entered `limit` states without reaching a verdict.
        case statesLimit(limit: Int)
        /// The key has more operations than the checker will search.
        case operationsLimit(operations: Int, limit: Int)
    }

    public let key: RegisterKey
    public let reason: Reason

    public var description: String {
        switch reason {
        case .statesLimit(let limit):
            "inconclusive: key \(key): the search explored its limit of \(limit) states without a verdict; "
                + "raise statesPerKeyMax or record a shorter or less concurrent history"
        case .operationsLimit(let operations, let limit):
            "inconclusive: key \(key) has \(operations) operations, more than the limit of \(limit); "
                + "raise operationsPerKeyMax or spread the workload over more keys"
        }
    }
}
