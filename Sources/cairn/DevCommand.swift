import CairnNode
import Glibc

/// `cairn dev`: parses flags, then runs a local cluster of `cairn server` processes (`DevCluster`).
enum DevCommand {
    /// More nodes than this on one development machine is a mistake, not a cluster.
    static let nodesMax = 16
    static let readyTimeoutSecondsMax = 3600

    static let help = """
        Usage: cairn dev [flags]

        Runs a local Cairn cluster in the foreground: N 'cairn server' processes of this same executable,
        for development and for trying Cairn out. Node I listens for clients on port P+I-1 (its peer port
        is 10000 higher and its HTTP port 20000 higher), keeps its data in DIR/nodeI, its log in
        DIR/nodeI.log and its process ID in DIR/nodeI.pid.

        On a new DIR, node 1 starts first and founds the cluster; once its /ready answers 200, the other
        nodes start with --join 127.0.0.1:P+10000 and are admitted. On a DIR from an earlier run, the nodes
        restart on their data (node 1 first) and the cluster resumes with its data; a node that has no data
        yet (a larger --nodes than before) joins once the others are ready.

        When every node's /ready answers 200, it prints the endpoints and stays in the foreground. Any node
        answers any key, so 'redis-cli -c -p P' and plain 'redis-cli -p P' both work. Ctrl-C (SIGINT) or
        SIGTERM sends SIGTERM to every node, waits for them (SIGKILL after \(DevCluster.stopTimeoutSeconds) s), removes the pid
        files and exits 0; the data stays. If a node dies, it says which and where its log is, and keeps
        the others running.

        It refuses to start if a pid file in DIR names a running cairn process (another 'cairn dev' on the
        same DIR). A node that cannot start (for example because its port is in use) stops the whole
        start: the message names the node and shows the end of its log.

        Flags:
          --nodes N             Number of nodes, 1 to \(nodesMax). Default 3.
          --port P              Client (RESP) port of node 1; node I uses P+I-1. Default 7001
                                (nodes on 7001.., peers on 17001.., HTTP on 27001..).
          --data-dir DIR        Directory for the nodes' data, logs and pid files; created if missing.
                                Default ./cairn-dev.
          --fsync MODE          Passed to every node: always (the server's default), everysec or none.
          --log-level LEVEL     Passed to every node: debug, info (the server's default), warn or error.
          --partitions N        Passed to node 1 when it founds a new cluster: partitions, 1 to 16384 (the server's
                                default is 128). Ignored when the cluster resumes.
          --replicas N          Passed to node 1 when it founds a new cluster: replicas per partition, 1 to 7
                                (the server's default is 3). Ignored when the cluster resumes.
          --ready-timeout S     Seconds to wait for the nodes to become ready, 1 to \(readyTimeoutSecondsMax). Default 60.
          -h, --help            Print this help.

        Exit status: 0 after a stop by Ctrl-C or SIGTERM; 1 if the cluster could not start or every node
        died; 2 for bad flags.

        """

    struct Settings {
        var nodeCount = 3
        var basePort = 7001
        var dataDirectory = "./cairn-dev"
        /// Passed on to every node only when given, so the server's own defaults apply otherwise.
        var fsync: FsyncPolicy?
        var logLevel: NodeLog.Level?
        /// Passed on to node 1 only when given; they matter only to a node that founds a cluster.
        var partitions: Int?
        var replicas: Int?
        var readyTimeoutSeconds = 60
    }

    enum Parsed {
        case help
        case settings(Settings)
        case failure(String)
    }

    static func run(_ arguments: [String]) -> Int32 {
        switch parse(arguments) {
        case .help:
            print(help, terminator: "")
            return 0
        case .failure(let message):
            CairnCommand.fail("dev: \(message) (see 'cairn dev --help')")
        case .settings(let settings):
            return DevCluster(settings: settings).run()
        }
    }

    static func parse(_ arguments: [String]) -> Parsed {
        var settings = Settings()
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
                "--nodes", "--port", "--data-dir", "--fsync", "--log-level", "--partitions", "--replicas",
                "--ready-timeout",
            ]
            guard known.contains(flag) else { return .failure("unknown flag '\(flag)'") }
            if value == nil {
                guard index + 1 < arguments.count else { return .failure("\(flag) needs a value") }
                index += 1
                value = arguments[index]
            }
            let text = value!
            switch flag {
            case "--nodes":
                guard let count = Int(text), (1...nodesMax).contains(count) else {
                    return .failure("--nodes must be a number from 1 to \(nodesMax), got '\(text)'")
                }
                settings.nodeCount = count
            case "--port":
                guard let number = Int(text), (1...45535).contains(number) else {
                    return .failure("--port must be a number from 1 to 45535 (the HTTP port is P+20000), got '\(text)'")
                }
                settings.basePort = number
            case "--data-dir":
                guard !text.isEmpty else { return .failure("--data-dir must not be empty") }
                settings.dataDirectory = text
            case "--fsync":
                guard let policy = FsyncPolicy(rawValue: text) else {
                    return .failure("--fsync must be one of always, everysec, none; got '\(text)'")
                }
                settings.fsync = policy
            case "--log-level":
                guard let level = NodeLog.Level(rawValue: text) else {
                    return .failure("--log-level must be one of debug, info, warn, error; got '\(text)'")
                }
                settings.logLevel = level
            case "--partitions":
                guard let count = Int(text), (1...16384).contains(count) else {
                    return .failure("--partitions must be a number from 1 to 16384, got '\(text)'")
                }
                settings.partitions = count
            case "--replicas":
                guard let count = Int(text), (1...7).contains(count) else {
                    return .failure("--replicas must be a number from 1 to 7, got '\(text)'")
                }
                settings.replicas = count
            case "--ready-timeout":
                guard let seconds = Int(text), (1...readyTimeoutSecondsMax).contains(seconds) else {
                    return .failure(
                        "--ready-timeout must be a number of seconds from 1 to \(readyTimeoutSecondsMax), got '\(text)'"
                    )
                }
                settings.readyTimeoutSeconds = seconds
            default:
                preconditionFailure("flag \(flag) is known but not handled")
            }
            index += 1
        }
        let lastPort = settings.basePort + settings.nodeCount - 1
        guard lastPort <= 45535 else {
            return .failure(
                "--port \(settings.basePort) with --nodes \(settings.nodeCount) needs client ports up to \(lastPort), "
                    + "but the last must be at most 45535 (its HTTP port is 20000 higher)")
        }
        return .settings(settings)
    }
}
