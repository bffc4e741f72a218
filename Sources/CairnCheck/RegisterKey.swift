/// The key an operation in a history acted on. Each key is an independent register.
///
/// Keys order by their bytes (lexicographically), so the checker visits keys, and reports the first
/// violation, in the same order on every run.
public struct RegisterKey: Sendable, Hashable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The UTF-8 bytes of `text`; convenient in tests and simulators whose keys are text.
    public init(stringLiteral text: String) {
        self.bytes = Array(text.utf8)
    }

    public static func < (lhs: RegisterKey, rhs: RegisterKey) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    public var description: String { PrintableBytes.quoted(bytes) }
}
