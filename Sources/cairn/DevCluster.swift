import CairnServer
import Glibc

/// A problem that stops `cairn dev` from starting its cluster; the text is for the operator.
struct DevError: Error {
    let message: String
}

/// One node of a dev cluster: its ports and files, and its process once this run started it.
struct DevNode {
    let index: Int
    let clientPort: Int
    let directory: String
    let logPath: String
    let pidPath: String
    var process: ChildProcess?
    /// Size of the log when this run started the node: what it wrote since then is this run's.
    var logOffset = 0

    var peerPort: Int { clientPort + 10_000 }
    var httpPort: Int { clientPort + 20_000 }
    var name: String { "node \(index)" }

    /// A node has data once RocksDB created its database; it then rejoins its cluster on its own.
    var hasData: Bool { access(directory + "/db/CURRENT", F_OK) == 0 }
}

/// Runs N `cairn server` processes of this executable as one local cluster, in the foreground.
///
/// Single-threaded and without signal handlers: SIGINT, SIGTERM and SIGCHLD are blocked and taken
/// with `sigtimedwait`, which doubles as the pause between polls, so a Ctrl-C is seen within one
/// poll interval in every phase (starting, running, stopping).
final class DevCluster {
    static let host = "127.0.0.1"
    static let stopTimeoutSeconds = 30
    static let pollMilliseconds = 100
    static let probeTimeoutMilliseconds = 1000
    static let logTailLines = 12

    let settings: DevCommand.Settings
    var nodes: [DevNode] = []
    var directory = ""
    let startedAt = DevCluster.monotonicNanoseconds()
    /// Whether this run started any node (and so has something to report when it stops).
    var startedAny = false

    init(settings: DevCommand.Settings) {
        self.settings = settings
    }

    func run() -> Int32 {
        blockSignals()
        do {
            try prepareDirectory()
            try checkPidFiles()
            let phases = try plan()
            for phase in phases where !phase.isEmpty {
                try start(phase)
                // Every node started so far, not just this phase: all must answer 200 in the same round.
                if let signal = try waitReady(nodes.filter { $0.process != nil }.map(\.index)) {
                    say("\(Self.signalName(signal)) while starting; stopping the nodes")
                    stopAll()
                    return 0
                }
            }
            let clusterID = try checkOneCluster()
            printEndpoints(clusterID: clusterID)
        } catch {
            complain(error.message)
            stopAll()
            return 1
        }
        return foreground()
    }

    // MARK: Preparing

    func blockSignals() {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGCHLD] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Creates the data directory (and missing parents) and names every file by absolute path, so
    /// pid checks and messages do not depend on the working directory.
    func prepareDirectory() throws(DevError) {
        var path = settings.dataDirectory.hasPrefix("/") ? "" : "."
        for component in settings.dataDirectory.split(separator: "/") {
            path += "/" + component
            if component == "." || component == ".." { continue }
            if mkdir(path, 0o755) != 0, errno != EEXIST {
                throw DevError(message: "cannot create the data directory \(path): \(String(cString: strerror(errno)))")
            }
        }
        guard let resolved = realpath(settings.dataDirectory, nil) else {
            throw DevError(
                message: "cannot use --data-dir \(settings.dataDirectory): \(String(cString: strerror(errno)))")
        }
        directory = String(cString: resolved)
        free(resolved)
        nodes = (1...settings.nodeCount).map { index in
            DevNode(
                index: index, clientPort: settings.basePort + index - 1, directory: "\(directory)/node\(index)",
                logPath: "\(directory)/node\(index).log", pidPath: "\(directory)/node\(index).pid")
        }
    }

    /// Refuses if a pid file names a running cairn server on this directory; removes stale ones.
    func checkPidFiles() throws(DevError) {
        var running: [(node: DevNode, pid: pid_t)] = []
        for node in nodes {
            guard let text = Self.readFile(node.pidPath, from: 0) else { continue }
            let pid = pid_t(text.filter { !$0.isWhitespace }) ?? 0
            // A live PID whose command line does not name this node's directory was reused by an
            // unrelated process after an earlier run ended without cleaning up.
            let commandLine = ChildProcess.commandLine(of: pid)
            if ChildProcess.isAlive(pid), commandLine.map({ $0.contains(node.directory) }) ?? true {
                running.append((node, pid))
            } else {
                unlink(node.pidPath)
                say("removed the stale pid file \(node.pidPath) (pid \(pid) is not running there)")
            }
        }
        guard let first = running.first else { return }
        let pids = running.map { String($0.pid) }.joined(separator: " ")
        throw DevError(
            message: "\(first.node.pidPath) names a running cairn server (pid \(first.pid)): another 'cairn dev' is "
                + "using \(directory). Stop it (Ctrl-C in its terminal, or kill \(pids)) or choose another --data-dir")
    }

    /// The start order as phases: each phase starts together, and must be ready before the next starts.
    func plan() throws(DevError) -> [[Int]] {
        let withData = nodes.filter(\.hasData).map(\.index)
        let others = nodes.filter { !$0.hasData }.map(\.index)
        defer { noteNodesLeftOut() }
        if withData.isEmpty {
            say("starting a new cluster of \(Self.count(nodes.count, "node")) in \(directory)")
            return [[1], Array(others.dropFirst())]
        }
        guard withData.first == 1 else {
            throw DevError(
                message: "\(nodes[0].directory) has no data but \(nodes[withData[0] - 1].directory) has: node 1 would "
                    + "found a new cluster that the other nodes are not part of. Remove \(directory) to start over")
        }
        say(
            "resuming the cluster in \(directory) (\(Self.nodesNamed(withData)) \(withData.count == 1 ? "has" : "have") data)"
        )
        return [withData, others]
    }

    /// Nodes of an earlier, larger run stay members of the cluster; say so, since they are not started.
    func noteNodesLeftOut() {
        guard let handle = opendir(directory) else { return }
        defer { closedir(handle) }
        var extra: [Int] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix("node"), let index = Int(name.dropFirst(4)), index > nodes.count else { continue }
            if access("\(directory)/\(name)/db/CURRENT", F_OK) == 0 { extra.append(index) }
        }
        guard !extra.isEmpty else { return }
        say(
            "note: \(directory) also holds \(Self.nodesNamed(extra.sorted())) from a run with more nodes; not started "
                + "now, they stay cluster members, so partitions they replicate may lack a majority")
    }

    // MARK: Starting

    func start(_ phase: [Int]) throws(DevError) {
        let executable = Self.executablePath()
        for index in phase {
            var node = nodes[index - 1]
            var arguments = [
                executable, "server", "--port", String(node.clientPort), "--data-dir", node.directory,
            ]
            if let fsync = settings.fsync { arguments += ["--fsync", fsync.rawValue] }
            if let level = settings.logLevel { arguments += ["--log-level", level.rawValue] }
            let joins = index != 1
            if !joins, !node.hasData {
                if let partitions = settings.partitions { arguments += ["--partitions", String(partitions)] }
                if let replicas = settings.replicas { arguments += ["--replicas", String(replicas)] }
            }
            if joins { arguments += ["--join", "\(Self.host):\(nodes[0].peerPort)"] }
            let role = node.hasData ? "restarts on its data" : (joins ? "joins through node 1" : "founds the cluster")
            say("starting \(node.name) on port \(node.clientPort) (\(role)); log: \(node.logPath)")
            node.logOffset = Self.fileSize(node.logPath)
            do {
                node.process = try ChildProcess.spawn(
                    executable: "/proc/self/exe", arguments: arguments, logPath: node.logPath)
            } catch {
                throw DevError(message: "cannot start \(node.name): \(error.description)")
            }
            nodes[index - 1] = node
            startedAny = true
            writePidFile(node)
        }
    }

    /// Waits until every node of `phase` answers 200 on /ready in one round of asking (a node can be
    /// ready and then not, while partitions elect leaders after replicas moved). Returns a signal if
    /// one asked to stop.
    func waitReady(_ phase: [Int]) throws(DevError) -> Int32? {
        let deadline = Self.monotonicNanoseconds() + UInt64(settings.readyTimeoutSeconds) * 1_000_000_000
        var lastAnswer: [Int: String] = [:]
        while true {
            for index in nodes.indices where nodes[index].process != nil {
                let status = nodes[index].process!.poll()
                guard status == .running else {
                    nodes[index].process = nil
                    unlink(nodes[index].pidPath)
                    let node = nodes[index]
                    throw DevError(
                        message: "\(node.name) \(status.description) while starting. The end of \(node.logPath):\n"
                            + tail(node))
                }
            }
            var notReady: [Int] = []
            for index in phase {
                let node = nodes[index - 1]
                let response = HTTPProbe.get(
                    host: Self.host, port: node.httpPort, path: "/ready",
                    timeoutMilliseconds: Self.probeTimeoutMilliseconds)
                if response?.status != 200 { notReady.append(index) }
                lastAnswer[index] =
                    response.map { "answers \($0.status): \($0.body.filter { $0 != "\n" })" } ?? "does not answer"
            }
            if notReady.isEmpty {
                say("\(Self.nodesNamed(phase)) ready")
                return nil
            }
            if Self.monotonicNanoseconds() >= deadline {
                let node = nodes[notReady[0] - 1]
                throw DevError(
                    message: "\(node.name) is not ready after \(settings.readyTimeoutSeconds) s "
                        + "(http://\(Self.host):\(node.httpPort)/ready \(lastAnswer[node.index] ?? "was not asked")). "
                        + "The end of \(node.logPath):\n" + tail(node))
            }
            if let signal = pause(milliseconds: Self.pollMilliseconds) { return signal }
        }
    }

    /// Every node must report the same cluster: nodes that founded separate clusters would each be
    /// ready on their own, and that must not pass for one cluster.
    func checkOneCluster() throws(DevError) -> String {
        var clusters: [(node: Int, cluster: String)] = []
        for node in nodes {
            let response = HTTPProbe.get(
                host: Self.host, port: node.httpPort, path: "/v1/cluster", timeoutMilliseconds: 5000)
            guard let response, response.status == 200, let cluster = Self.jsonString("cluster", in: response.body)
            else {
                throw DevError(
                    message: "\(node.name) does not describe its cluster at /v1/cluster; see \(node.logPath)")
            }
            clusters.append((node.index, cluster))
        }
        let distinct = Set(clusters.map(\.cluster))
        guard distinct.count == 1 else {
            let detail = clusters.map { "node \($0.node) in \($0.cluster)" }.joined(separator: ", ")
            throw DevError(
                message: "the nodes are in different clusters (\(detail)); \(directory) holds data from separate "
                    + "clusters. Remove it to start over")
        }
        return clusters[0].cluster
    }

    func printEndpoints(clusterID: String) {
        let seconds = Double(Self.monotonicNanoseconds() - startedAt) / 1e9
        var lines = [
            "cluster \(clusterID) is ready: \(Self.count(nodes.count, "node")) "
                + "(started in \((seconds * 10).rounded() / 10) s)"
        ]
        for node in nodes {
            lines.append(
                "  \(node.name)  client \(Self.host):\(node.clientPort)  http http://\(Self.host):\(node.httpPort)"
                    + "  pid \(node.process?.pid ?? 0)  log \(node.logPath)")
        }
        lines.append("data:     \(directory) (run the same command again to resume this cluster and its data)")
        lines.append(
            "connect:  redis-cli -c -p \(nodes[0].clientPort)   (any node answers any key, so "
                + "redis-cli -p \(nodes[nodes.count - 1].clientPort) works too)")
        lines.append("stop:     Ctrl-C stops every node")
        print(lines.joined(separator: "\n"))
        fflush(nil)
    }

    // MARK: Running

    /// Stays in the foreground until SIGINT or SIGTERM; reports nodes that die and keeps the rest.
    func foreground() -> Int32 {
        while true {
            let signal = pause(milliseconds: 1000)
            for index in nodes.indices where nodes[index].process != nil {
                let status = nodes[index].process!.poll()
                guard status != .running else { continue }
                let node = nodes[index]
                nodes[index].process = nil
                unlink(node.pidPath)
                let alive = nodes.filter { $0.process != nil }.count
                complain(
                    "\(node.name) (pid \(node.process!.pid)) \(status.description); its log is \(node.logPath). "
                        + (alive > 0
                            ? (alive == 1 ? "The other node keeps running" : "The other \(alive) nodes keep running")
                                + "; Ctrl-C stops \(alive == 1 ? "it" : "them")."
                            : "No node is left running."))
                if alive == 0 { return 1 }
            }
            if let signal {
                let count = nodes.filter { $0.process != nil }.count
                say(
                    "\(Self.signalName(signal)): stopping \(Self.count(count, "node")) (Ctrl-C again kills them at once)"
                )
                stopAll()
                return 0
            }
        }
    }

    // MARK: Stopping

    /// Sends SIGTERM to every node this run started, waits for them (SIGKILL after the deadline or a
    /// second Ctrl-C), and removes their pid files.
    func stopAll() {
        for node in nodes where node.process != nil { node.process!.send(SIGTERM) }
        var deadline = Self.monotonicNanoseconds() + UInt64(Self.stopTimeoutSeconds) * 1_000_000_000
        var killed = false
        var leftBehind = 0
        while true {
            for index in nodes.indices where nodes[index].process != nil {
                let status = nodes[index].process!.poll()
                guard status != .running else { continue }
                let node = nodes[index]
                if status != .exited(code: 0), !(killed && status == .killed(signal: SIGKILL)) {
                    complain("\(node.name) \(status.description) while stopping; see \(node.logPath)")
                }
                nodes[index].process = nil
                unlink(node.pidPath)
            }
            let running = nodes.filter { $0.process != nil }
            if running.isEmpty { break }
            let signal = pause(milliseconds: Self.pollMilliseconds)
            let now = Self.monotonicNanoseconds()
            if !killed, signal == SIGINT || signal == SIGTERM || now >= deadline {
                for node in running {
                    let pid = node.process!.pid
                    complain(
                        signal.map { "\(Self.signalName($0)) again: sending SIGKILL to \(node.name) (pid \(pid))" }
                            ?? "\(node.name) (pid \(pid)) has not stopped after \(Self.stopTimeoutSeconds) s; sending SIGKILL"
                    )
                    node.process!.send(SIGKILL)
                }
                killed = true
                deadline = now + 10_000_000_000
            } else if killed, now >= deadline {
                // Only a process stuck in the kernel survives SIGKILL this long; do not hang with it.
                for node in running {
                    complain("\(node.name) (pid \(node.process!.pid)) has not exited 10 s after SIGKILL; leaving it")
                }
                leftBehind = running.count
                break
            }
        }
        guard startedAny else { return }
        say(
            (leftBehind == 0 ? "all nodes stopped" : "stopped all but \(Self.count(leftBehind, "node"))")
                + "; the data stays in \(directory)")
    }

    // MARK: Helpers

    /// Waits up to `milliseconds` for SIGINT, SIGTERM or SIGCHLD; returns SIGINT or SIGTERM if one came.
    func pause(milliseconds: Int) -> Int32? {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGCHLD] { sigaddset(&signals, signal) }
        var timeout = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        let signal = sigtimedwait(&signals, nil, &timeout)
        return signal == SIGINT || signal == SIGTERM ? signal : nil
    }

    func writePidFile(_ node: DevNode) {
        guard let process = node.process else { return }
        let temporary = node.pidPath + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            complain("cannot write \(temporary): \(String(cString: strerror(errno)))")
            return
        }
        let text = Array("\(process.pid)\n".utf8)
        _ = write(fd, text, text.count)
        close(fd)
        rename(temporary, node.pidPath)
    }

    /// The last lines `node` wrote to its log during this run.
    func tail(_ node: DevNode) -> String {
        let size = Self.fileSize(node.logPath)
        let from = max(node.logOffset, size - 64 * 1024)
        let text = Self.readFile(node.logPath, from: from) ?? ""
        let lines = text.split(separator: "\n").suffix(Self.logTailLines)
        return lines.isEmpty ? "  (nothing)" : lines.map { "  " + $0 }.joined(separator: "\n")
    }

    func say(_ text: String) {
        print("cairn dev: " + text)
        fflush(nil)
    }

    func complain(_ text: String) {
        fflush(nil)
        let line = "cairn: dev: \(text)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }

    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    static func readFile(_ path: String, from offset: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var position = offset
        while bytes.count < 1 << 20 {
            let count = pread(fd, &buffer, buffer.count, off_t(position))
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[0..<count])
            position += count
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func fileSize(_ path: String) -> Int {
        var information = stat()
        return stat(path, &information) == 0 ? Int(information.st_size) : 0
    }

    /// The path of this executable for the children's `argv[0]` (they are started through
    /// /proc/self/exe, which stays right even if the file is rebuilt meanwhile).
    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "cairn" }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.hasSuffix(" (deleted)") ? String(path.dropLast(10)) : path
    }

    /// The string value of `"key":"..."` in a flat JSON text (cluster IDs are hex, never escaped).
    static func jsonString(_ key: String, in json: String) -> String? {
        guard let start = json.firstRange(of: "\"\(key)\":\"")?.upperBound else { return nil }
        guard let end = json[start...].firstIndex(of: "\"") else { return nil }
        return String(json[start..<end])
    }

    /// "1", "1 and 2", "1, 2 and 3".
    static func list(_ indexes: [Int]) -> String {
        guard indexes.count > 1 else { return indexes.map(String.init).joined() }
        return indexes.dropLast().map(String.init).joined(separator: ", ") + " and \(indexes.last!)"
    }

    /// "1 node" or "3 nodes".
    static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }

    /// "node 1" or "nodes 1, 2 and 3".
    static func nodesNamed(_ indexes: [Int]) -> String {
        (indexes.count == 1 ? "node " : "nodes ") + list(indexes)
    }

    static func signalName(_ signal: Int32) -> String {
        signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
    }
}
