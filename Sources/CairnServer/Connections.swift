import CLinux
import CairnCore
import CairnNode

/// A client connection, owned by the loop. Bytes in are parsed into commands; replies are appended to
/// `output` and flushed once per loop turn.
final class ClientConnection {
    let descriptor: Int32
    let id: ClientID
    var input: [UInt8] = []
    /// Bytes of `input` already parsed.
    var inputOffset = 0
    var output: [UInt8] = []
    var outputOffset = 0
    /// The core asked to close once `output` is written (QUIT, protocol error).
    var closeAfterFlush = false
    /// Reading is paused because too many reply bytes wait for the client to read them.
    var readingPaused = false
    /// Registered for EPOLLOUT because a write could not finish.
    var waitingForWritable = false
    /// Reading is paused because the client has `--max-pipeline` commands without replies yet.
    var waitingForReplies = false
    /// It has commands read but not run: the turn's budget ran out (`Server.deferredInput`).
    var isDeferred = false

    /// The epoll events the connection needs now.
    var interest: UInt32 {
        (readingPaused || waitingForReplies ? 0 : EPOLLIN.rawValue) | (waitingForWritable ? EPOLLOUT.rawValue : 0)
    }

    init(descriptor: Int32, id: ClientID) {
        self.descriptor = descriptor
        self.id = id
    }

    var pendingOutputBytes: Int { output.count - outputOffset }
}

/// An admin HTTP connection: one request, one response, then close.
final class HTTPConnection {
    let descriptor: Int32
    var input: [UInt8] = []
    var output: [UInt8] = []
    var outputOffset = 0
    var responded = false
    /// A data API request (`/v1/kv/`) running in the core as this session, until its reply comes.
    var session: ClientID?
    var request: HTTPDataRequest?
    /// When it connected (monotonic nanoseconds): its request must be whole within
    /// `Limits.httpRequestSecondsMax`.
    let connectedAt = System.monotonicNanoseconds()

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }
}

/// An inbound connection on the peer port: frames in, checked (DESIGN.md §7), envelopes to the core.
final class PeerConnection {
    let descriptor: Int32
    var decoder = PeerFrameDecoder()

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }
}

/// What a file descriptor registered with epoll is.
enum Registration {
    case clientListener
    case peerListener
    case httpListener
    case client(ClientConnection)
    case http(HTTPConnection)
    case peer(PeerConnection)
    case peerLink(PeerLink)
    case wake
    case signal
}
