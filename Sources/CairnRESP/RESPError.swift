import CairnCore

/// Why a client's bytes are not a valid command. Each case carries what was seen and what was expected.
///
/// The text (`description`) is sent to the client after `-ERR ` and the connection is then closed, as
/// Redis does: after a framing error nothing later in the stream can be trusted. The first words are
/// Redis's own ("Protocol error: invalid bulk length"), so tools that match them keep working.
public enum RESPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A `*` header that is not an integer in `0...limit`.
    case invalidMultibulkLength(found: String, limit: Int)
    /// A `*` header line with no line end within the header limit.
    case multibulkHeaderTooLong(limit: Int)
    /// Inside a multibulk, a byte other than `$` where a bulk string must start.
    case expectedBulk(found: UInt8)
    /// A `$` header that is not an integer in `0...limit`.
    case invalidBulkLength(found: String, limit: Int)
    /// A `$` header line with no line end within the header limit.
    case bulkHeaderTooLong(limit: Int)
    /// Bulk data not followed by CRLF.
    case missingBulkTerminator
    /// An inline command line longer than the limit.
    case inlineTooLong(limit: Int)
    /// An inline command whose quotes do not balance.
    case unbalancedQuotes
    /// A command still incomplete after this many bytes (too many or too large arguments in total).
    case commandTooLarge(limit: Int)

    public var description: String {
        switch self {
        case .invalidMultibulkLength(let found, let limit):
            "Protocol error: invalid multibulk length '\(found)', expected an integer from 0 to \(limit)"
        case .multibulkHeaderTooLong(let limit):
            "Protocol error: too big mbulk count string, expected CRLF within \(limit) bytes"
        case .expectedBulk(let found):
            "Protocol error: expected '$', got '\(Self.printable(found))'"
        case .invalidBulkLength(let found, let limit):
            "Protocol error: invalid bulk length '\(found)', expected an integer from 0 to \(limit)"
        case .bulkHeaderTooLong(let limit):
            "Protocol error: too big bulk count string, expected CRLF within \(limit) bytes"
        case .missingBulkTerminator:
            "Protocol error: expected CRLF after bulk string data"
        case .inlineTooLong(let limit):
            "Protocol error: too big inline request, the limit is \(limit) bytes"
        case .unbalancedQuotes:
            "Protocol error: unbalanced quotes in request"
        case .commandTooLarge(let limit):
            "Protocol error: command larger than \(limit) bytes in total"
        }
    }

    static func printable(_ byte: UInt8) -> String {
        (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }

    static func printable<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        bytes.prefix(24).map { printable($0) }.joined()
    }
}
