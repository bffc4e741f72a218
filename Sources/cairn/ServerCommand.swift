import CairnNode
import CairnServer
import Glibc

/// `cairn server`: parses flags into a `ServerConfig` and runs the node in the foreground.
enum ServerCommand {
    static let help = """
        Usage: cairn server [flags]

        Runs one Cairn node in the foreground. It serves the Redis protocol (RESP2 and RESP3) to clients,
        keeps its data in RocksDB under --data-dir, and serves /metrics, /health, /ready, /v1/cluster and
        /v1/status (the table 'cairn ctl status' prints) over HTTP. SIGTERM or SIGINT stops it cleanly:
        in-flight commands finish, writes are fsync'd.

        Clusters: a node started on an empty data directory without --join founds a new cluster (it
        becomes node 1 and holds every partition). A node started on an empty data directory with
        --join asks those peers to admit it; the cluster gives it the next node ID, and moves replicas
        to it. A node restarted on its data directory rejoins its cluster and ignores --join. The
        addresses a node listens on are the ones the cluster advertises to peers and to clients
        (CLUSTER SLOTS), so give each node addresses the others can reach (not 0.0.0.0).

        Flags:
          --port P              Client (RESP) port; the peer port is P+10000 and HTTP is P+20000. Default 7379.
          --bind HOST           IPv4 address to listen on. Default 127.0.0.1.
          --client-addr H:P     Client address, overriding --bind and --port.
          --peer-addr H:P       Peer address, overriding --bind and --port+10000.
          --http-addr H:P       HTTP address, overriding --bind and --port+20000.
          --data-dir DIR        Data directory (created if missing, locked while running). Default ./cairn-data.
          --fsync MODE          always: acknowledge a write only after it is fsync'd (default).
                                everysec: fsync about once a second (a crash may lose up to a second).
                                none: never fsync; the OS decides (a crash may lose recent writes).
          --cache-bytes N       Size of the read cache in bytes; suffixes K, M, G allowed. Default 64M.
          --log-level LEVEL     debug, info, warn or error. Default info.
          --seed N              Seed for the node's random choices (logged at start; random if not given).
          --join H:P[,H:P...]   Peer addresses of cluster members to join through (empty data directory only).
          --partitions N        Partitions of a new cluster, 1 to 16384. Default 128. Fixed once founded.
          --replicas N          Replicas per partition of a new cluster, 1 to 7. Default 3 (fewer while
                                the cluster has fewer nodes).
          --snapshot-entries N  Compact a group's log once N applied entries (an entry that batches
                                writes counts as each) follow its last snapshot, or fewer when the node
                                hosts many groups: all logs together keep about 262144 entries (at
                                least 1000 per group). Each group scales these counts by its own factor
                                of 0.75 to 1.25, so that groups do not all compact at once. A partition's
                                records are its snapshot: compaction copies nothing. A follower that fell
                                behind the log is sent the partition, read on a snapshot thread.
                                0 to 100000000; 0 never compacts. Default 10000.
          --dead-node-timeout T After T without hearing from a node, the meta leader marks it dead and
                                rebuilds its replicas on live nodes; a dead node that comes back is placed
                                again. T in ms, s or m (e.g. 500ms, 60s, 5m; a bare number is seconds),
                                at least 1s; 0 never marks a node dead. Default 60s.
          --max-pipeline N      Commands one connection may have without replies; past it the node stops
                                reading from it until half are answered (backpressure). 1 to 1000000.
                                Default 1024.
          --max-inflight N      Commands without replies over all connections; past it a command that
                                must wait for the cluster is refused at once with -TRYAGAIN (admission
                                control). 1 to 10000000. Default 50000.
          --overload-latency T  Admission by queueing delay: while even the fastest reads (or writes) of the
                                last 100 ms took longer than T, new ones are admitted only at the rate they
                                complete, scaled down by how far over T; the rest are refused at once with
                                -TRYAGAIN. T in ms or s (e.g. 250ms; a bare number is seconds), 50ms to
                                60s; 0 turns it off.
                                Default 250ms.
          --client-rate-limit R Commands per second that all connections from one client address may send
                                this node together (bursts of one second's worth); past it a command that
                                must wait for the cluster is refused at once with -TRYAGAIN. 0 to
                                100000000; 0 (the default) limits nothing.
          --max-moves N         A leader here starts moving a partition (join, decommission, dead-node
                                rebuild) only while fewer than N partitions this node holds are
                                moving; the rest wait. 1 to 1024. Default 1 (more finish a
                                rebalance sooner, at a cost to client latency meanwhile).
          --move-rate R         Catch-up bytes per second: snapshot chunks this node sends (partition
                                moves and lagging followers, R in all), and, separately, the log
                                backlog a leader here sends each new replica (R / --max-moves each).
                                E.g. 64M; suffixes K, M, G; 0 for no limit, at most 1024G. Default 4M
                                (more finishes moves of large partitions sooner, at a cost to client
                                latency meanwhile).
          -h, --help            Print this help.

        """

    static func run(_ arguments: [String]) -> Int32 {
        let config: ServerConfig
        switch parse(arguments) {
        case .help:
            print(help, terminator: "")
            return 0
        case .failure(let message):
            CairnCommand.fail("server: \(message) (see 'cairn server --help')")
        case .config(let parsed):
            config = parsed
        }
        let logger = Logger(minimumLevel: config.logLevel)
        do {
            let server = try Server(config: config, logger: logger)
            return server.run()
        } catch {
            let line = "cairn: server: \(error.description)\n"
            _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
            return 1
        }
    }

    enum Parsed {
        case help
        case config(ServerConfig)
        case failure(String)
    }

    /// A duration in milliseconds from `500ms`, `60s`, `5m` or a bare number of seconds; nil if it is
    /// not one or above a day.
    static func parseDuration(_ text: String) -> Int? {
        let units: [(suffix: String, milliseconds: Int)] = [("ms", 1), ("s", 1000), ("m", 60_000)]
        let unit = units.first { text.hasSuffix($0.suffix) } ?? ("", 1000)
        guard let number = Double(text.dropLast(unit.suffix.count)), number.isFinite, number >= 0 else { return nil }
        let milliseconds = number * Double(unit.milliseconds)
        guard milliseconds <= 86_400_000 else { return nil }
        return Int(milliseconds.rounded())
    }

    static func parse(_ arguments: [String]) -> Parsed {
        var config = ServerConfig()
        var port = 7379
        var bind = "127.0.0.1"
        var clientAddress: ListenAddress?
        var peerAddress: ListenAddress?
        var httpAddress: ListenAddress?
        var index = 0
        while index < arguments.count {
            var flag = arguments[index]
            var value: String?
            if let equals = flag.firstIndex(of: "="), flag.hasPrefix("--") {
                value = String(flag[flag.index(after: equals)...])
                flag = String(flag[..<equals])
            }
            if flag == "-h" || flag == "--help" { return .help }
            let known = [
                "--port", "--bind", "--client-addr", "--peer-addr", "--http-addr", "--data-dir", "--fsync", "--join",
                "--partitions", "--replicas", "--snapshot-entries", "--dead-node-timeout", "--max-moves", "--move-rate",
                "--max-pipeline", "--max-inflight", "--client-rate-limit", "--overload-latency",
                "--cache-bytes", "--log-level", "--seed",
            ]
            guard known.contains(flag) else { return .failure("unknown flag '\(flag)'") }
            if value == nil {
                guard index + 1 < arguments.count else { return .failure("\(flag) needs a value") }
                index += 1
                value = arguments[index]
            }
            let text = value!
            switch flag {
            case "--port":
                guard let number = Int(text), (1...45535).contains(number) else {
                    return .failure("--port must be a number from 1 to 45535 (the HTTP port is P+20000), got '\(text)'")
                }
                port = number
            case "--bind": bind = text
            case "--client-addr", "--peer-addr", "--http-addr":
                guard let address = parseAddress(text) else {
                    return .failure("\(flag) must be HOST:PORT with a port from 1 to 65535, got '\(text)'")
                }
                if flag == "--client-addr" { clientAddress = address }
                if flag == "--peer-addr" { peerAddress = address }
                if flag == "--http-addr" { httpAddress = address }
            case "--data-dir":
                guard !text.isEmpty else { return .failure("--data-dir must not be empty") }
                config.dataDirectory = text
            case "--fsync":
                guard let policy = FsyncPolicy(rawValue: text) else {
                    return .failure("--fsync must be one of always, everysec, none; got '\(text)'")
                }
                config.fsync = policy
            case "--cache-bytes":
                guard let bytes = parseBytes(text) else {
                    return .failure("--cache-bytes must be a byte count such as 67108864, 64M or 1G; got '\(text)'")
                }
                config.cacheBytes = bytes
            case "--log-level":
                guard let level = NodeLog.Level(rawValue: text) else {
                    return .failure("--log-level must be one of debug, info, warn, error; got '\(text)'")
                }
                config.logLevel = level
            case "--join":
                var seeds: [ListenAddress] = []
                for part in text.split(separator: ",") {
                    guard let address = ListenAddress.parse(String(part)) else {
                        return .failure(
                            "--join must be a comma-separated list of HOST:PORT peer addresses with IPv4 hosts, got '\(part)'"
                        )
                    }
                    seeds.append(address)
                }
                guard !seeds.isEmpty else { return .failure("--join needs at least one HOST:PORT") }
                config.join = seeds
            case "--partitions":
                guard let count = Int(text), (1...16384).contains(count) else {
                    return .failure("--partitions must be a number from 1 to 16384, got '\(text)'")
                }
                config.partitions = count
            case "--replicas":
                guard let count = Int(text), (1...7).contains(count) else {
                    return .failure("--replicas must be a number from 1 to 7, got '\(text)'")
                }
                config.replicas = count
            case "--snapshot-entries":
                guard let count = Int(text), (0...100_000_000).contains(count) else {
                    return .failure("--snapshot-entries must be a number from 0 to 100000000, got '\(text)'")
                }
                config.snapshotEntries = count
            case "--dead-node-timeout":
                guard let milliseconds = parseDuration(text), milliseconds == 0 || milliseconds >= 1000 else {
                    return .failure(
                        "--dead-node-timeout must be 0 or a duration of at least 1s like 500ms, 60s or 5m, got '\(text)'"
                    )
                }
                config.deadNodeTimeoutMilliseconds = milliseconds
            case "--max-pipeline":
                guard let count = Int(text), (1...1_000_000).contains(count) else {
                    return .failure("--max-pipeline must be a number from 1 to 1000000, got '\(text)'")
                }
                config.maxPipeline = count
            case "--max-inflight":
                guard let count = Int(text), (1...10_000_000).contains(count) else {
                    return .failure("--max-inflight must be a number from 1 to 10000000, got '\(text)'")
                }
                config.maxInflight = count
            case "--overload-latency":
                guard let milliseconds = parseDuration(text), milliseconds == 0 || milliseconds >= 50,
                    milliseconds <= 60_000
                else {
                    return .failure(
                        "--overload-latency must be 0 (off) or a duration from 50ms to 60s such as 250ms, got '\(text)'"
                    )
                }
                config.overloadLatencyMilliseconds = milliseconds
            case "--client-rate-limit":
                guard let rate = Int(text), (0...100_000_000).contains(rate) else {
                    return .failure(
                        "--client-rate-limit must be commands per second from 0 to 100000000 (0: no limit), got '\(text)'"
                    )
                }
                config.clientRateLimit = rate
            case "--max-moves":
                guard let count = Int(text), (1...1024).contains(count) else {
                    return .failure("--max-moves must be a number from 1 to 1024, got '\(text)'")
                }
                config.maxMoves = count
            case "--move-rate":
                guard let bytes = parseBytes(text), bytes <= 1 << 40 else {
                    return .failure(
                        "--move-rate must be bytes per second from 0 to 1024G, such as 8388608, 8M or 1G (0: no limit); got '\(text)'"
                    )
                }
                config.moveBytesPerSecond = bytes
            case "--seed":
                guard let seed = UInt64(text) else {
                    return .failure("--seed must be an unsigned 64-bit integer, got '\(text)'")
                }
                config.seed = seed
            default:
                preconditionFailure("flag \(flag) is known but not handled")
            }
            index += 1
        }
        config.clientAddress = clientAddress ?? ListenAddress(host: bind, port: port)
        config.peerAddress = peerAddress ?? ListenAddress(host: bind, port: port + 10_000)
        config.httpAddress = httpAddress ?? ListenAddress(host: bind, port: port + 20_000)
        return .config(config)
    }

    static func parseAddress(_ text: String) -> ListenAddress? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port), colon != text.startIndex
        else { return nil }
        return ListenAddress(host: String(text[..<colon]), port: port)
    }

    static func parseBytes(_ text: String) -> Int? {
        guard let last = text.last else { return nil }
        let multipliers: [Character: Int] = [
            "K": 1 << 10, "k": 1 << 10, "M": 1 << 20, "m": 1 << 20, "G": 1 << 30, "g": 1 << 30,
        ]
        if let multiplier = multipliers[last] {
            guard let number = Int(text.dropLast()), number >= 0, number <= Int.max / multiplier else { return nil }
            return number * multiplier
        }
        guard let number = Int(text), number >= 0 else { return nil }
        return number
    }
}
