import CairnCore
import CairnRESP
import CairnStorage

/// A client connection's identity as the core knows it. Allocated by the shell, unique per process,
/// never reused (CLIENT ID).
public struct ClientID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public static func < (lhs: ClientID, rhs: ClientID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "client#\(rawValue)" }
}

/// The parts of a session that rarely change, behind one reference, so copying a session (which
/// Swift's dictionary does on every read) costs one retain instead of one per string and array.
/// Immutable: CLIENT SETNAME and SETINFO replace it.
final class ClientIdentity: Sendable {
    let address: String
    let localAddress: String
    let fileDescriptor: Int32
    let connectedAt: Instant
    let name: [UInt8]
    let libraryName: [UInt8]
    let libraryVersion: [UInt8]

    init(
        address: String, localAddress: String, fileDescriptor: Int32, connectedAt: Instant, name: [UInt8] = [],
        libraryName: [UInt8] = [], libraryVersion: [UInt8] = []
    ) {
        self.address = address
        self.localAddress = localAddress
        self.fileDescriptor = fileDescriptor
        self.connectedAt = connectedAt
        self.name = name
        self.libraryName = libraryName
        self.libraryVersion = libraryVersion
    }

    func with(name: [UInt8]? = nil, libraryName: [UInt8]? = nil, libraryVersion: [UInt8]? = nil) -> ClientIdentity {
        ClientIdentity(
            address: address, localAddress: localAddress, fileDescriptor: fileDescriptor, connectedAt: connectedAt,
            name: name ?? self.name, libraryName: libraryName ?? self.libraryName,
            libraryVersion: libraryVersion ?? self.libraryVersion)
    }
}

/// What the core remembers about one connected client.
struct ClientSession: Sendable {
    let id: ClientID
    var identity: ClientIdentity
    var lastCommandAt: Instant
    /// The command being run or last run, as an index into `CommandTable.labels` (CLIENT LIST `cmd=`).
    var lastCommand = CommandTable.labelIndex["NULL"]!
    var protocolVersion = RESPVersion.resp2
    /// Set once QUIT or a protocol error asked for the connection to close: later commands are ignored.
    var isClosing = false
    /// Commands are numbered as they arrive; replies leave in that order (`NodeCore.deliver`).
    var nextSequence: UInt64 = 0
    var nextReply: UInt64 = 0
    /// Replies that finished before an earlier command's reply, by sequence.
    var waitingReplies: [UInt64: HeldReply] = [:]
    /// Deadlines (Unix ms) of the routed commands not answered yet, by sequence, for the watchdog.
    var deadlines: [UInt64: Int64] = [:]
    /// After READONLY: reads are served by the local replica, possibly stale.
    var isReadOnly = false
}

/// A reply waiting for the replies to earlier commands of its connection.
struct HeldReply: Sendable {
    let reply: ClientReply
    let command: Int
    let isError: Bool
    let startedAt: UInt64
}

/// One reply for the shell to queue on a connection, in the order given.
public struct ClientReply: Sendable, Equatable {
    public let client: ClientID
    public let bytes: [UInt8]
    /// Close the connection once these bytes are written (QUIT, protocol errors).
    public let closeAfter: Bool

    public init(client: ClientID, bytes: [UInt8], closeAfter: Bool = false) {
        self.client = client
        self.bytes = bytes
        self.closeAfter = closeAfter
    }
}
