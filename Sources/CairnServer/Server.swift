import CLinux
import CairnCore
import CairnNode
import CairnRESP
import CairnRocks
import CairnStorage
import Glibc
import Synchronization

/// Why the server could not start: a message for the operator, then a non-zero exit.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
}

/// Completions from the storage thread waiting for the loop (the only cross-thread hand-off).
final class Inbox: Sendable {
    private let items = Mutex<[StorageCompletion]>([])
    /// A wake is already signalled and not yet consumed: further posts need not signal again.
    private let wakePending = Atomic<Bool>(false)
    let wakeDescriptor: Int32

    init() {
        wakeDescriptor = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(wakeDescriptor >= 0, "eventfd failed: \(System.errorText())")
    }

    func post(_ completion: StorageCompletion) {
        items.withLock { $0.append(completion) }
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            var one: UInt64 = 1
            _ = Glibc.write(wakeDescriptor, &one, 8)
        }
    }

    func take() -> [StorageCompletion] {
        var counter: UInt64 = 0
        _ = Glibc.read(wakeDescriptor, &counter, 8)
        wakePending.store(false, ordering: .releasing)
        return items.withLock { items in
            defer { items.removeAll(keepingCapacity: true) }
            return items
        }
    }
}

/// The runtime shell of one node: an epoll loop on the calling thread that owns the sockets and the
/// node core, plus the storage thread. It carries out the core's outputs in their documented order
/// and makes no protocol decisions of its own.
public final class Server {
    enum State { case running, draining }

    let config: ServerConfig
    let logger: Logger
    let directory: DataDirectory
    let store: RocksKVStore
    let worker: StorageWorker
    let snapshotWorker: SnapshotWorker
    let inbox = Inbox()
    var core: NodeCore
    /// The output every step writes into, emptied before each (`NodeOutput.recycle`).
    var stepOutput = NodeOutput()
    let epoll: Int32
    let signalDescriptor: Int32
    var registrations: [Int32: Registration] = [:]
    var listeners: [Int32] = []
    var clients: [ClientID: ClientConnection] = [:]
    /// Data API requests (`/v1/kv/`) the core is running, by their sessions' IDs.
    var httpSessions: [ClientID: HTTPConnection] = [:]
    /// Sessions of data requests answered in this step, ended once its replies are handed out.
    var finishedSessions: [ClientID] = []
    var nextClientID: UInt64 = 1
    var pendingFlush: [ClientConnection] = []
    /// Connections not read while they have `--max-pipeline` commands without replies.
    var awaitingReplies: [ClientConnection] = []
    /// Connections with whole commands read but not run yet: the turn's budget for client commands
    /// ran out. They run first in the next turn (their sockets may have nothing new to report).
    var deferredInput: [ClientConnection] = []
    /// Time this turn spent running client commands so far, and when the run in progress started:
    /// the client-work budget counts only that, not peer messages or storage completions.
    var clientWorkNanoseconds: UInt64 = 0
    var clientWorkStartedAt: UInt64?
    var shellMetrics = MetricsRegistry()
    /// When the last slow-turn warning was logged (monotonic nanoseconds), to log at most one per 10 s.
    var lastSlowTurnLogAt: UInt64 = 0
    var state = State.running
    var batchesInFlight = 0
    /// The next loop turn must not wait for events: a batch written on the loop completed during this one.
    var turnAgain = false
    let tickNanoseconds: UInt64
    var nextTickAt: UInt64 = 0
    var nextSampleAt: UInt64 = 0
    var scratch = [UInt8](repeating: 0, count: 64 * 1024)
    static let ticksPerTurnMax = 2
    var peerLinks: [PeerTarget: PeerLink] = [:]
    var peerAddresses: [NodeID: String] = [:]
    var pendingPeerFlush: [PeerLink] = []
    /// Draws reconnect backoff jitter (shell-only randomness, seeded from the node's seed).
    var jitter: SplitMix64

    static let pipelinePauses = MetricFamily(
        "cairn_client_pipeline_pauses_total",
        help: "Times reading from a client paused because it had --max-pipeline commands without replies.",
        kind: .counter)
    static let httpRequests = MetricFamily(
        "cairn_http_requests_total", help: "Admin HTTP requests, by path and status code.", kind: .counter)
    static let peerRejected = MetricFamily(
        "cairn_peer_connections_rejected_total", help: "Peer-port connections closed, by reason.", kind: .counter)
    static let loopTurn = MetricFamily(
        "cairn_loop_turn_seconds",
        help:
            "Work in one turn of the event loop, from epoll returning events to the turn's replies being flushed. Nothing else runs on the loop meanwhile: a long turn delays every reply, heartbeat and tick (event-loop lag).",
        kind: .histogram(buckets: MetricFamily.latencyBucketsSeconds))

    /// Opens the data directory and storage, binds every port, and starts the storage thread.
    public init(config: ServerConfig, logger: Logger) throws(StartupError) {
        self.config = config
        self.logger = logger
        // Signals arrive through a signalfd in the loop; block them before any thread starts.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)
        signalDescriptor = signalfd(-1, &signals, Int32(SFD_NONBLOCK | SFD_CLOEXEC))
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        RocksKVStore.disablePerformanceCountersOnThisThread()
        do {
            directory = try DataDirectory(path: config.dataDirectory)
            store = try RocksKVStore(path: directory.databasePath)
        } catch {
            throw StartupError(description: "cannot open storage: \(error)")
        }
        let seed =
            config.seed ?? (UInt64(System.monotonicNanoseconds()) ^ UInt64(bitPattern: System.unixMicroseconds()))
        var nodeConfig = NodeConfig()
        nodeConfig.fsync = config.fsync
        nodeConfig.cacheBytes = config.cacheBytes
        nodeConfig.seed = seed
        nodeConfig.bindAddress = config.clientAddress.host
        nodeConfig.clientPort = config.clientAddress.port
        nodeConfig.peerPort = config.peerAddress.port
        nodeConfig.httpPort = config.httpAddress.port
        nodeConfig.dataDirectory = config.dataDirectory
        nodeConfig.processID = Int(getpid())
        nodeConfig.runID = Self.runID(seed: seed)
        nodeConfig.operatingSystem = System.operatingSystem()
        nodeConfig.executablePath = CommandLine.arguments.first ?? "cairn"
        nodeConfig.addresses = NodeAddresses(
            client: config.clientAddress.description, peer: config.peerAddress.description,
            http: config.httpAddress.description)
        nodeConfig.join = config.join.map(\.description)
        nodeConfig.partitionCount = config.partitions
        nodeConfig.replicas = config.replicas
        nodeConfig.snapshotEntries = config.snapshotEntries
        nodeConfig.maxMoves = config.maxMoves
        nodeConfig.maxCommandsInFlight = config.maxInflight
        nodeConfig.clientCommandsPerSecond = config.clientRateLimit
        nodeConfig.overloadLatencyMilliseconds = config.overloadLatencyMilliseconds
        nodeConfig.moveBytesPerSecond = config.moveBytesPerSecond
        nodeConfig.deadNodeTicks = config.deadNodeTimeoutMilliseconds / nodeConfig.tickMilliseconds
        jitter = SplitMix64(seed: seed ^ 0x5EED)
        tickNanoseconds = UInt64(nodeConfig.tickMilliseconds) * 1_000_000
        do {
            core = try NodeCore(config: nodeConfig, store: store, now: Self.now())
        } catch {
            throw StartupError(description: "cannot read storage: \(error)")
        }
        let inbox = self.inbox
        worker = StorageWorker(store: store, policy: config.fsync) { inbox.post($0) }
        snapshotWorker = SnapshotWorker { inbox.post($0) }
        shellMetrics.register(Self.httpRequests)
        shellMetrics.register(Self.pipelinePauses)
        shellMetrics.register(Self.peerRejected)
        shellMetrics.register(Self.loopTurn)
        for family in [
            Self.peerFramesSent, Self.peerFramesReceived, Self.peerBytesSent, Self.peerFramesDropped,
            Self.peerConnects, Self.peerLinkUp,
        ] {
            shellMetrics.register(family)
        }
        try listen(config.clientAddress, as: .clientListener, purpose: "clients")
        try listen(config.peerAddress, as: .peerListener, purpose: "peers")
        try listen(config.httpAddress, as: .httpListener, purpose: "HTTP")
        register(inbox.wakeDescriptor, as: .wake)
        register(signalDescriptor, as: .signal)
        worker.start()
        snapshotWorker.start()
        logger.log(
            .info, "cairn server started",
            [
                ("version", CairnVersion.cairn), ("client_addr", config.clientAddress.description),
                ("peer_addr", config.peerAddress.description), ("http_addr", config.httpAddress.description),
                ("data_dir", config.dataDirectory), ("fsync", config.fsync.rawValue),
                ("cache_bytes", String(config.cacheBytes)), ("log_level", config.logLevel.rawValue),
                ("seed", String(seed)), ("pid", String(getpid())), ("keys", String(core.keyspace.keyCount)),
            ])
    }

    static func now() -> Instant {
        Instant(unixMicroseconds: System.unixMicroseconds(), monotonicNanoseconds: System.monotonicNanoseconds())
    }

    static func runID(seed: UInt64) -> String {
        var prng = SplitMix64(seed: seed)
        let digits = Array("0123456789abcdef")
        return String((0..<40).map { _ in digits[prng.below(16)] })
    }

    // MARK: Sockets

    private func listen(_ address: ListenAddress, as registration: Registration, purpose: String) throws(StartupError) {
        let fd = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartupError(description: "cannot create a socket: \(System.errorText())") }
        System.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(address.port).bigEndian)
        guard inet_pton(AF_INET, address.host, &socketAddress.sin_addr) == 1 else {
            close(fd)
            throw StartupError(
                description: "cannot listen for \(purpose) on \(address): '\(address.host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 1024) == 0 else {
            let reason = System.errorText()
            close(fd)
            throw StartupError(description: "cannot listen for \(purpose) on \(address): \(reason)")
        }
        listeners.append(fd)
        register(fd, as: registration)
    }

    func register(_ fd: Int32, as registration: Registration, events: UInt32 = EPOLLIN.rawValue) {
        var event = epoll_event(events: events, data: epoll_data_t(fd: fd))
        let result = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
        precondition(result == 0, "epoll_ctl ADD \(fd) failed: \(System.errorText())")
        registrations[fd] = registration
    }

    func modify(_ fd: Int32, events: UInt32) {
        var event = epoll_event(events: events, data: epoll_data_t(fd: fd))
        _ = epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event)
    }

    func unregister(_ fd: Int32) {
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
        registrations.removeValue(forKey: fd)
        close(fd)
    }

    // MARK: The loop

    /// Runs until SIGTERM or SIGINT, then drains and stops. Returns the exit status.
    public func run() -> Int32 {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        nextTickAt = System.monotonicNanoseconds() + tickNanoseconds
        var drainDeadline: UInt64 = 0
        while true {
            let now = System.monotonicNanoseconds()
            var timeout = nextTickAt > now ? Int32((nextTickAt - now + 999_999) / 1_000_000) : 0
            if !deferredInput.isEmpty || turnAgain { timeout = 0 }
            turnAgain = false
            let count = epoll_wait(epoll, &events, Int32(events.count), timeout)
            let turnStarted = System.monotonicNanoseconds()
            clientWorkNanoseconds = 0
            runDeferredInput()
            for index in 0..<max(0, Int(count)) {
                handle(events[index].data.fd, events[index].events)
            }
            endTurn()
            noteTurn(events: max(0, Int(count)), nanoseconds: System.monotonicNanoseconds() - turnStarted)
            if state == .draining {
                if drainDeadline == 0 { drainDeadline = System.monotonicNanoseconds() + 10_000_000_000 }
                let drained =
                    core.isQuiescent && batchesInFlight == 0 && pendingFlush.isEmpty && deferredInput.isEmpty
                    && httpSessions.isEmpty && clients.values.allSatisfy { $0.pendingOutputBytes == 0 }
                    && !registrations.values.contains { registration in
                        if case .http(let connection) = registration { connection.responded } else { false }
                    }
                if drained || System.monotonicNanoseconds() > drainDeadline { break }
            }
        }
        return shutdown()
    }

    func handle(_ fd: Int32, _ events: UInt32) {
        guard let registration = registrations[fd] else { return }
        switch registration {
        case .clientListener: acceptClients(fd)
        case .peerListener: acceptOther(fd) { .peer(PeerConnection(descriptor: $0)) }
        case .httpListener: acceptOther(fd) { .http(HTTPConnection(descriptor: $0)) }
        case .client(let connection):
            if events & EPOLLOUT.rawValue != 0 { flush(connection) }
            guard clients[connection.id] != nil else { return }
            if events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0,
                connection.readingPaused || connection.waitingForReplies
            {
                // Gone while not being read: epoll reports a hang-up whatever the interest, so keeping
                // the connection would spin the loop until its next reply fails to write.
                closeClient(connection)
            } else if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                readClient(connection)
            }
        case .http(let connection): serviceHTTP(connection, events)
        case .peer(let connection): readPeer(connection)
        case .peerLink(let link): serviceLink(link, events)
        case .wake:
            for completion in inbox.take() { complete(completion) }
        case .signal:
            var info = signalfd_siginfo()
            while read(fd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
                beginDraining(signal: Int32(info.ssi_signo))
            }
        }
    }

    /// A turn longer than this delays heartbeats enough to matter: half the shortest election timeout
    /// (`NodeConfig.electionTicks` = 10 ticks of 10 ms).
    static let slowTurnNanoseconds: UInt64 = 50_000_000

    /// Records a turn's length, and warns (at most every 10 s) when one was long enough to make
    /// followers of this node's leaders start elections.
    func noteTurn(events: Int, nanoseconds: UInt64) {
        shellMetrics.observe(Self.loopTurn, [], Double(nanoseconds) / 1e9)
        let now = System.monotonicNanoseconds()
        guard nanoseconds > Self.slowTurnNanoseconds, now > lastSlowTurnLogAt + 10_000_000_000 else { return }
        lastSlowTurnLogAt = now
        logger.log(
            .warn, "slow event-loop turn: replies, heartbeats and ticks waited",
            [
                ("milliseconds", String(nanoseconds / 1_000_000)), ("events", String(events)),
                ("limit_milliseconds", String(Self.slowTurnNanoseconds / 1_000_000)),
            ])
    }

    /// Work done once per loop turn: ticks, process samples, closing the turn's batch, flushing.
    func endTurn() {
        let now = System.monotonicNanoseconds()
        var ticks = 0
        // At most a few ticks per turn: a loop that was starved of CPU must not see a burst of ticks
        // in which every election timer fires before any heartbeat could be read. Logical time then
        // runs slower than wall time, which Raft tolerates (reads use ReadIndex, not leases).
        while now >= nextTickAt, ticks < Self.ticksPerTurnMax {
            step(.tick)
            nextTickAt += tickNanoseconds
            ticks += 1
        }
        if now >= nextTickAt { nextTickAt = now + tickNanoseconds }
        if now >= nextSampleAt {
            let cpu = System.cpuSeconds()
            step(
                .processSampled(
                    ProcessSample(
                        residentBytes: System.residentBytes(), cpuUserSeconds: cpu.user, cpuSystemSeconds: cpu.system)))
            nextSampleAt = now + 1_000_000_000
            expireSlowHTTPRequests(now: now)
        }
        resumeConnectionsAwaitingReplies()
        step(.turnEnded)
        flushPeers()
        let connections = pendingFlush
        pendingFlush.removeAll(keepingCapacity: true)
        for connection in connections where clients[connection.id] != nil { flush(connection) }
    }

    /// Feeds one input to the core and carries out its output lanes in order.
    @discardableResult
    func step(_ input: NodeInput) -> NodeOutput {
        stepOutput.recycle()
        core.step(input, now: Self.now(), into: &stepOutput)
        let output = stepOutput
        // Views first: the step may have closed a batch after asking for a read, and that batch's
        // writes must not reach the store before the view is taken (`SnapshotRead`).
        for read in output.snapshotReads { snapshotWorker.enqueue(read, view: store.readView()) }
        // A batch that needs no fsync is written here when nothing is queued before it: no wake-ups of
        // the storage thread and back, and its completion is reported in this turn (under
        // `--fsync none`, a one-node write is answered in the turn that received it).
        var inlineCompletion: StorageCompletion?
        for batch in output.writes {
            batchesInFlight += 1
            if batchesInFlight == 1, let completion = worker.writeInline(batch) {
                inlineCompletion = completion
            } else {
                worker.enqueue(batch)
            }
        }
        if let addresses = output.peerAddresses { updatePeerAddresses(addresses) }
        if !output.peerSends.isEmpty { sendToPeers(output.peerSends) }
        for reply in output.replies {
            guard let connection = clients[reply.client] else {
                if let request = httpSessions[reply.client] { finishData(request, reply: reply.bytes) }
                continue
            }
            if connection.pendingOutputBytes == 0 { pendingFlush.append(connection) }
            connection.output.append(contentsOf: reply.bytes)
            if reply.closeAfter { connection.closeAfterFlush = true }
        }
        while let session = finishedSessions.popLast() { step(.disconnected(session)) }
        for entry in output.logs { logger.log(entry) }
        if let fatal = output.fatal {
            logger.log(.error, "stopping: storage failure", [("error", fatal)])
            exit(1)
        }
        // Reported only now, after this output's replies: replies it releases come after them. What it
        // releases besides (connections paused for replies, commands sent again, applied data) is
        // handled by the next turn, which starts at once, as a storage thread's completion would
        // start it.
        if let inlineCompletion {
            complete(inlineCompletion)
            turnAgain = true
        }
        // Backpressure on storage: if batches pile up, wait for the storage thread before going on.
        while batchesInFlight > Limits.storageQueuedBatchesMax {
            var descriptor = pollfd(fd: inbox.wakeDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
            for completion in inbox.take() { complete(completion) }
        }
        return output
    }

    func complete(_ completion: StorageCompletion) {
        switch completion {
        case .persisted(let through, let duration, let synced, let batches, let mutations, _):
            batchesInFlight -= batches
            step(
                .persisted(
                    through: through, durationNanoseconds: duration, synced: synced, batches: batches,
                    mutations: mutations))
        case .failed(let sequence, let error):
            step(.persistFailed(sequence, error))
        case .snapshot(let input):
            step(input)
        }
    }

    func beginDraining(signal: Int32) {
        guard state == .running else { return }
        state = .draining
        logger.log(
            .info, "shutting down: finishing in-flight commands", [("signal", signal == SIGTERM ? "SIGTERM" : "SIGINT")]
        )
        for fd in listeners { unregister(fd) }
        listeners.removeAll()
        for connection in clients.values where !connection.readingPaused {
            connection.readingPaused = true
            modify(connection.descriptor, events: connection.waitingForWritable ? EPOLLOUT.rawValue : 0)
        }
    }

    func shutdown() -> Int32 {
        snapshotWorker.stopAndWait()
        worker.stopAndWait()
        for connection in clients.values { closeClient(connection) }
        for fd in Array(registrations.keys) { unregister(fd) }
        store.close()
        logger.log(.info, "cairn server stopped", [("durable_batch", String(core.keyspace.durableThrough.rawValue))])
        return 0
    }
}
