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

/// What the core remembers about one connected client.
struct ClientSession: Sendable {
    let id: ClientID
    let address: String
    let localAddress: String
    let fileDescriptor: Int32
    let connectedAt: Instant
    var lastCommandAt: Instant
    var lastCommand = "NULL"
    var name: [UInt8] = []
    var libraryName: [UInt8] = []
    var libraryVersion: [UInt8] = []
    var protocolVersion = RESPVersion.resp2
    /// Set once QUIT or a protocol error asked for the connection to close: later commands are ignored.
    var isClosing = false
    /// The newest batch an earlier reply to this client waits for; later replies wait for it too, so
    /// replies leave in command order.
    var replyGate = BatchSequence(0)
    /// Replies not yet released (waiting for durability).
    var heldReplies = 0
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
