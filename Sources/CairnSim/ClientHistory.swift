/// One client operation as the client saw it: what it asked, when it asked, what came back and when.
///
/// This mirrors `CairnCheck.RegisterOperation` field for field (see `ClientHistory+Linearizability`),
/// so the history hands over to the linearizability checker without interpretation. Times are
/// simulated milliseconds, at the client: invocation when the request leaves, response when the reply
/// arrives.
public struct ClientOperation: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The value the reply carried (nil: the key was absent).
        case read(observed: [UInt8]?)
        case write([UInt8])
        /// `succeeded` is what the reply said; meaningful only when the outcome is `ok`.
        case compareAndSet(expected: [UInt8]?, new: [UInt8], succeeded: Bool)
        case delete
    }

    public enum Outcome: Sendable, Equatable {
        /// A reply arrived at this time; the operation took effect between invocation and then.
        case ok(atMs: UInt64)
        /// A reply at this time said the operation did not take effect (not the leader, or its entry
        /// was replaced by another leader's).
        case failed(atMs: UInt64)
        /// No reply (timeout, crashed node, lost leader): it may have taken effect, or not.
        case unknown
    }

    public var client: Int
    public var key: [UInt8]
    public var kind: Kind
    public var invocationMs: UInt64
    public var outcome: Outcome?

    /// Whether the client is still waiting.
    public var isPending: Bool { outcome == nil }

    public var description: String {
        let window: String
        switch outcome {
        case .ok(let time): window = "[\(invocationMs), \(time)] ok"
        case .failed(let time): window = "[\(invocationMs), \(time)] failed"
        case .unknown: window = "[\(invocationMs), -] unknown"
        case nil: window = "[\(invocationMs), …] pending"
        }
        let action: String
        switch kind {
        case .read(let observed): action = "read \(Text.bytes(key)) -> \(Text.value(observed))"
        case .write(let value): action = "write \(Text.bytes(key))=\(Text.bytes(value))"
        case .compareAndSet(let expected, let new, let succeeded):
            action =
                "cas \(Text.bytes(key)) \(Text.value(expected))->\(Text.bytes(new)) \(succeeded ? "swapped" : "mismatch")"
        case .delete: action = "delete \(Text.bytes(key))"
        }
        return "client \(client) \(window) \(action)"
    }
}
