/// A value stored in a register, as a client wrote it or saw it. An absent key is `nil`, never an
/// empty value: Cairn distinguishes `GET` of a missing key from `GET` of an empty string.
public struct RegisterValue: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The UTF-8 bytes of `text`; convenient in tests and simulators whose values are text.
    public init(stringLiteral text: String) {
        self.bytes = Array(text.utf8)
    }

    public var description: String { PrintableBytes.quoted(bytes) }

    /// How a possibly absent value reads in a report: quoted bytes, or `nil` for an absent key.
    static func describe(_ value: RegisterValue?) -> String {
        value.map(\.description) ?? "nil"
    }
}
