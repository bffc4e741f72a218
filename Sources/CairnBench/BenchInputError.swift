/// Why a `cairn bench` setting is not valid: the flag, what was given and what is expected.
public enum BenchInputError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(flag: String, value: String, expected: String)
    case missingValue(flag: String)
    case unknownFlag(String)
    case conflict(String)

    public var description: String {
        switch self {
        case .invalid(let flag, let value, let expected): "\(flag): expected \(expected), got '\(value)'"
        case .missingValue(let flag): "\(flag) needs a value"
        case .unknownFlag(let flag): "unknown flag '\(flag)'"
        case .conflict(let text): text
        }
    }
}
