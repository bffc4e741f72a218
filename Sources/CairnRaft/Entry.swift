import CairnCore

/// One record of a Raft log (Raft §5.3): the term of the leader that created it, its position, and what
/// it asks the replicated state machine to do.
public struct Entry: Sendable, Equatable, CustomStringConvertible {
    /// What an entry carries.
    public enum Kind: Sendable, Equatable {
        /// A client command, opaque to Raft. The application applies it once the entry is committed.
        case command([UInt8])
        /// A new configuration (thesis §4.1). It takes effect as soon as it is in a log, committed or not.
        case configuration(ConfigurationState)
        /// The no-op a new leader appends so that it can commit entries from earlier terms (Raft §5.4.2,
        /// §8) and serve reads (thesis §6.4). The application skips it.
        case empty
    }

    public var term: Term
    public var index: LogIndex
    public var kind: Kind

    public init(term: Term, index: LogIndex, kind: Kind) {
        self.term = term
        self.index = index
        self.kind = kind
    }

    /// Bytes this entry counts for in flow control: its payload plus a fixed header allowance.
    public var sizeBytes: Int {
        switch kind {
        case .command(let bytes): bytes.count + 24
        case .configuration(let configuration): configuration.memberCount * 8 + 24
        case .empty: 24
        }
    }

    public var description: String {
        switch kind {
        case .command(let bytes): "\(index)@\(term) \"\(Render.bytes(bytes))\""
        case .configuration(let configuration): "\(index)@\(term) config \(configuration)"
        case .empty: "\(index)@\(term) empty"
        }
    }
}

/// Text helpers shared by the `description`s, so traces and golden files read the same everywhere.
enum Render {
    /// Printable ASCII as is, anything else as `\xNN`, at most 32 bytes then `…`.
    static func bytes(_ bytes: [UInt8]) -> String {
        var text = ""
        for byte in bytes.prefix(32) {
            if byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\"") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return bytes.count > 32 ? text + "…" : text
    }

    /// A sorted, comma-separated node list.
    static func nodes(_ nodes: [NodeID]) -> String {
        nodes.map(\.description).joined(separator: ",")
    }
}
