import CairnStorage

/// Why a command was refused: its error reply. Each case renders Redis's exact text, so clients that
/// match on error strings keep working; cases Redis does not have say what was wrong and what to do.
public enum CommandError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownCommand(name: [UInt8], arguments: [[UInt8]])
    case wrongArity(command: String)
    case unknownSubcommand(command: String, subcommand: [UInt8])
    case syntax
    case notInteger
    case notFloat
    case overflow
    case incrementNaN
    case noSuchKey
    case invalidExpireTime(command: String)
    case dbIndexOutOfRange
    case sameObject
    case stringTooLong
    case offsetOutOfRange
    case invalidCursor
    /// Any other error, already in Redis form: the code word, a space, the message.
    case other(String)
    /// The storage engine failed a read; the node keeps running, the command is refused.
    case storage(StorageError)

    public var description: String {
        switch self {
        case .unknownCommand(let name, let arguments):
            // As Redis: arguments are added while their text is under 128 bytes, each cut to what is left.
            var listed: [UInt8] = []
            for argument in arguments where listed.count < 128 {
                listed += [UInt8(ascii: "'")] + argument.prefix(128 - listed.count) + Array("' ".utf8)
            }
            return "ERR unknown command '\(Self.clip(name))', with args beginning with: "
                + String(decoding: listed, as: UTF8.self)
        case .wrongArity(let command):
            return "ERR wrong number of arguments for '\(command)' command"
        case .unknownSubcommand(let command, let subcommand):
            return "ERR unknown subcommand '\(Self.clip(subcommand))'. Try \(command.uppercased()) HELP."
        case .syntax: return "ERR syntax error"
        case .notInteger: return "ERR value is not an integer or out of range"
        case .notFloat: return "ERR value is not a valid float"
        case .overflow: return "ERR increment or decrement would overflow"
        case .incrementNaN: return "ERR increment would produce NaN or Infinity"
        case .noSuchKey: return "ERR no such key"
        case .invalidExpireTime(let command): return "ERR invalid expire time in '\(command)' command"
        case .dbIndexOutOfRange: return "ERR DB index is out of range"
        case .sameObject: return "ERR source and destination objects are the same"
        case .stringTooLong: return "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        case .offsetOutOfRange: return "ERR offset is out of range"
        case .invalidCursor: return "ERR invalid cursor"
        case .other(let text): return text
        case .storage(let error): return "ERR storage failure: \(error)"
        }
    }

    /// Shows at most 128 bytes of client input inside an error, as Redis does.
    static func clip(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(128), as: UTF8.self)
    }
}
