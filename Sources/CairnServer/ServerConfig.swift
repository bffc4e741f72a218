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

    /// Parses `HOST:PORT` with an IPv4 host (`localhost` means 127.0.0.1) and a port from 1 to 65535.
    public static func parse(_ text: String) -> ListenAddress? {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
            let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        let host = String(text[..<colon])
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if host == "localhost" { return ListenAddress(host: "127.0.0.1", port: port) }
        guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) else { return nil }
        return ListenAddress(host: host, port: port)
    }
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
    /// Peer addresses to ask for admission when the data directory is empty (`--join`).
    public var join: [ListenAddress] = []
    /// Partitions and replicas of a cluster this node founds.
    public var partitions = 128
    public var replicas = 3
    /// Applied entries after which a group compacts its log (`--snapshot-entries`).
    public var snapshotEntries = 10_000
    /// Silence after which the meta leader marks a node dead (`--dead-node-timeout`); 0 never does.
    public var deadNodeTimeoutMilliseconds = 60_000
    /// Commands one connection may have without replies before reading from it pauses (`--max-pipeline`).
    public var maxPipeline = 1024
    /// Commands without replies over all connections before new ones are refused (`--max-inflight`).
    public var maxInflight = 50_000
    /// Commands per second per client address (`--client-rate-limit`); 0 limits nothing.
    public var clientRateLimit = 0
    /// Target queueing delay of routed reads and writes in milliseconds (`--overload-latency`); 0 is off.
    public var overloadLatencyMilliseconds = 250
    /// Partition moves led by this node at once (`--max-moves`).
    public var maxMoves = 1
    /// Catch-up bytes per second this node sends: snapshot chunks and log entries to new replicas
    /// (`--move-rate`, `NodeConfig.moveBytesPerSecond`); 0 is unlimited.
    public var moveBytesPerSecond = 4 * 1024 * 1024

    public init() {}
}
