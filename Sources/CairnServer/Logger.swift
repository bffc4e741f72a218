import CairnNode
import Glibc

/// Structured log lines on stderr in logfmt: `ts=… level=info msg="…" key=value …`.
public struct Logger: Sendable {
    public let minimumLevel: NodeLog.Level

    public init(minimumLevel: NodeLog.Level) {
        self.minimumLevel = minimumLevel
    }

    public func log(_ level: NodeLog.Level, _ message: String, _ fields: [(String, String)] = []) {
        guard level >= minimumLevel else { return }
        var line = "ts=\(Self.timestamp()) level=\(level.rawValue) msg=\(Self.quote(message))"
        for (key, value) in fields { line += " \(key)=\(Self.quote(value))" }
        line += "\n"
        let bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            guard written > 0 else { break }
            offset += written
        }
    }

    public func log(_ entry: NodeLog) { log(entry.level, entry.message, entry.fields) }

    /// Quotes a logfmt value when it holds spaces, quotes or `=`.
    static func quote(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" }
        guard needsQuotes else { return value }
        var escaped = "\""
        for character in value {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }

    /// RFC 3339 UTC time with milliseconds.
    static func timestamp() -> String {
        let micros = System.unixMicroseconds()
        var seconds = time_t(micros / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let millis = Int32((micros / 1000) % 1000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z"
    }
}
