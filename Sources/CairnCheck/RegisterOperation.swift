/// One client operation on one key, as a client saw it: what it asked, when it asked, and what
/// came back when.
///
/// A history is an array of these in any order. The checker needs, for each operation, the
/// invocation time (when the request was sent) and, if a reply arrived, the response time and the
/// reply. Three outcomes are possible:
/// - `ok`: the reply arrived. A read's `observed` value and a compare-and-set's `succeeded` flag are
///   what the reply said.
/// - `failed`: the reply said the operation definitely did not take effect (for example "not the
///   leader" before the command was proposed). The checker ignores it.
/// - `unknown`: no reply (a timeout, a lost leader, a crashed client). The operation may have taken
///   effect at any moment after its invocation, or never. The checker treats its response time as
///   +infinity and may leave it out of the linearization.
///
/// A read's `observed` value and a compare-and-set's `succeeded` flag mean something only when the
/// outcome is `ok`; for other outcomes no reply was seen and they are ignored.
public struct RegisterOperation: Sendable, Equatable, CustomStringConvertible {
    /// What the client asked for, with the reply's content for the kinds whose reply carries any.
    public enum Kind: Sendable, Equatable {
        /// `GET`: the value the reply carried, `nil` if the key was absent.
        case read(observed: RegisterValue?)
        /// `SET`: replaces the value.
        case write(RegisterValue)
        /// Compare-and-set: if the register holds `expected` (`nil`: the key is absent), it now holds
        /// `new`. `succeeded` is the reply: `true` if it swapped, `false` if the comparison failed.
        case compareAndSet(expected: RegisterValue?, new: RegisterValue, succeeded: Bool)
        /// `DEL`: the key becomes absent.
        case delete
    }

    /// How the operation ended, from the client's point of view.
    public enum Outcome: Sendable, Equatable {
        /// A reply arrived at the given time; the operation took effect between invocation and then.
        case ok(at: Timestamp)
        /// A reply at the given time said the operation definitely did not take effect.
        case failed(at: Timestamp)
        /// No reply: the operation may have taken effect at any time after its invocation, or never.
        case unknown
    }

    public var client: ClientID
    public var key: RegisterKey
    public var kind: Kind
    /// When the client sent the request.
    public var invocation: Timestamp
    public var outcome: Outcome

    public init(client: ClientID, key: RegisterKey, kind: Kind, invocation: Timestamp, outcome: Outcome) {
        self.client = client
        self.key = key
        self.kind = kind
        self.invocation = invocation
        self.outcome = outcome
    }

    /// When the reply arrived, or `nil` (+infinity) if it never did.
    public var response: Timestamp? {
        switch outcome {
        case .ok(let time), .failed(let time): time
        case .unknown: nil
        }
    }

    /// One line for a report, for example `client 2 [5, 7] ok: read "x" -> "a"`.
    public var description: String {
        let window: String
        switch outcome {
        case .ok(let time): window = "[\(invocation), \(time)] ok"
        case .failed(let time): window = "[\(invocation), \(time)] failed"
        case .unknown: window = "[\(invocation), -] unknown"
        }
        return "\(client) \(window): \(action)"
    }

    /// The request and, when the outcome is `ok`, its reply, for example `cas "x" from nil to "a": succeeded`.
    var action: String {
        let isOK = if case .ok = outcome { true } else { false }
        switch kind {
        case .read(let observed):
            return isOK ? "read \(key) -> \(RegisterValue.describe(observed))" : "read \(key)"
        case .write(let value):
            return "write \(key) = \(value)"
        case .compareAndSet(let expected, let new, let succeeded):
            let request = "cas \(key) from \(RegisterValue.describe(expected)) to \(new)"
            guard isOK else { return request }
            return request + (succeeded ? ": succeeded" : ": mismatch")
        case .delete:
            return "delete \(key)"
        }
    }
}
