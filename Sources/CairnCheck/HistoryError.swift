/// Why a history cannot be checked at all. A history that can be checked but is wrong is not an
/// error: it is a `LinearizabilityReport` with a `notLinearizable` verdict.
public enum HistoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation at `index` got its reply before it was sent: the recorder's clock or bookkeeping
    /// is wrong, and no verdict drawn from such a history could be trusted.
    case responseBeforeInvocation(index: Int, invocation: Timestamp, response: Timestamp)

    public var description: String {
        switch self {
        case .responseBeforeInvocation(let index, let invocation, let response):
            "history operation #\(index) responded at \(response), before its invocation at \(invocation); "
                + "a response time must be at or after the invocation time"
        }
    }
}
