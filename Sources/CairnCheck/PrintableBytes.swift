/// Renders bytes for a person reading a checker report.
///
/// Why not `String(decoding:as:)`: keys and values are arbitrary bytes, and a report that silently
/// replaces a stray byte with U+FFFD would hide the very difference it is trying to show.
enum PrintableBytes {
    /// The bytes in double quotes: printable ASCII as is, `"` and `\` escaped, anything else as `\xNN`.
    static func quoted(_ bytes: [UInt8]) -> String {
        var text = "\""
        text.reserveCapacity(bytes.count + 2)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): text += "\\\""
            case UInt8(ascii: "\\"): text += "\\\\"
            case 0x20...0x7E: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "\\x" + hexDigits(byte)
            }
        }
        text += "\""
        return text
    }

    private static func hexDigits(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
    }
}
