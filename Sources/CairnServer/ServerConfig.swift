import CairnNode

/// A listening address: IPv4 host and port.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// Everything `cairn server` was told by its flags.
public struct ServerConfig: Sendable {
    public var clientAddress = ListenAddress(host: "127.0.0.1", port: 7379)
    public var peerAddress = ListenAddress(host: "127.0.0.1", port: 17379)
    public var httpAddress = ListenAddress(host: "127.0.0.1", port: 27379)
    public var dataDirectory = "./cairn-data"
    public var fsync = FsyncPolicy.always
    public var cacheBytes = 64 * 1024 * 1024
    public var logLevel = NodeLog.Level.info
    /// Seed of the node's random choices; chosen at start when not given, and logged.
    public var seed: UInt64?

    public init() {}
}
