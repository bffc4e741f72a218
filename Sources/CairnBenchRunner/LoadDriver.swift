import CLinux
import CairnBench
import CairnCore
import CairnPlacement
import CairnResilience
import Glibc

/// Where the operations of a phase come from.
enum OperationSource {
    /// The load phase: insert records `next..<total` in order.
    case load(next: Int, total: Int)
    /// The run phase: draw from the workload.
    case workload
}

/// The load generator's event loop: many non-blocking connections on one epoll descriptor,
/// pipelining up to `pipeline` commands per connection, closed loop (keep `clients × pipeline`
/// operations outstanding) or open loop (send what an `OpenLoopSchedule` says is due).
///
/// Every wait has a deadline: connecting, each reply (`timeout`), and draining at the end. A
/// connection that fails or times out fails its in-flight operations (counted by kind) and
/// reconnects with backoff; in cluster mode `-MOVED` updates the slot map (and triggers a refresh
/// from `CLUSTER SLOTS`), `-ASK` sends the command once to the named node after `ASKING`.
final class LoadDriver {
    static let redirectsMax: UInt8 = 5
    static let loadPipeline = 32
    static let maintenanceIntervalNanoseconds: UInt64 = 10_000_000

    let settings: BenchSettings
    let encoder: CommandEncoder
    let epoll: Int32
    var endpoints: [EndpointState] = []
    var byDescriptor: [LoadConnection?] = []
    /// The cluster's slot map (cluster mode); every change rebuilds `routes`.
    var slotMap: SlotMap? {
        didSet { rebuildRoutes() }
    }
    /// For each slot, the index in `endpoints` of its owner (cluster mode).
    var routes: [Int] = []
    var lastSlotRefresh: UInt64 = 0
    var recorder = PhaseRecorder()
    var phaseStart: UInt64 = 0
    /// Operations generated and not finished (waiting or in flight).
    var outstanding = 0
    var waitingTotal = 0
    var source = OperationSource.load(next: 0, total: 0)
    /// The run phase's generator (kept outside `source` so drawing does not copy it).
    var generator: WorkloadGenerator?
    var schedule: OpenLoopSchedule?
    var dirty: [LoadConnection] = []
    var roundRobin = 0
    var scratch = [UInt8](repeating: 0, count: 256 * 1024)
    var keyScratch: [UInt8] = []
    var isStopping = false
    /// Whether epoll_pwait2 works here (false after the first ENOSYS).
    var hasPreciseWait = true
    /// A signalfd for SIGINT and SIGTERM: the first one ends the phase early, with a report.
    var signalDescriptor: Int32 = -1
    var isInterrupted = false
    /// Called once a second with a progress line (nil: quiet).
    var progress: ((String) -> Void)?

    /// Reconnects back off exponentially with full jitter (the node's peer links do the same), so
    /// that many connections to a node that comes back do not all return at once.
    static let reconnectBackoff = Backoff(base: .milliseconds(50), cap: .seconds(1))
    var jitter: SplitMix64
    /// Retries of failed operations: at most 10% of operations (plus a floor), each after a backoff
    /// with full jitter (the node's forwards use the same primitives).
    var retryBudget: RetryBudget
    static let retryBackoff = Backoff.standard
    /// The node's breaker settings (`.standard`) over a 2 s window, open 1 s: a benchmark runs for
    /// seconds at thousands of operations per second, so a 10 s window would hide a node that stopped
    /// answering behind its earlier successes for most of the run. Probes wait one `--timeout`.
    var breakerConfiguration: CircuitBreaker.Configuration {
        var configuration = CircuitBreaker.Configuration.standard
        configuration.window = .seconds(2)
        configuration.openDuration = .seconds(1)
        configuration.halfOpenTimeout = TimeSpan(nanoseconds: settings.timeout)
        return configuration
    }
    var delayed: [DelayedRetry] = []

    init(settings: BenchSettings, encoder: CommandEncoder) {
        self.settings = settings
        self.encoder = encoder
        jitter = SplitMix64(seed: (settings.seed ?? 0) ^ 0xB4C0)
        retryBudget = RetryBudget(now: MonotonicTime(nanoseconds: BenchSystem.monotonicNanoseconds()))
        pipelineLimit = settings.pipeline
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed: \(BenchSystem.errorText())")
    }

    deinit {
        for endpoint in endpoints {
            for connection in endpoint.connections where connection.descriptor >= 0 { close(connection.descriptor) }
        }
        close(epoll)
        if signalDescriptor >= 0 { close(signalDescriptor) }
    }

    /// Turns Ctrl-C (SIGINT) and SIGTERM into an early, orderly end: the phase stops, drains and is
    /// reported. Until this is called (while probing) they end the process as usual.
    func catchInterrupts() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signalDescriptor = signalfd(-1, &signals, Int32(SFD_NONBLOCK | SFD_CLOEXEC))
        guard signalDescriptor >= 0 else { return }
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: signalDescriptor))
        _ = epoll_ctl(epoll, EPOLL_CTL_ADD, signalDescriptor, &event)
    }

    /// Requests in flight per connection: `--pipeline`, deeper in the load phase (which is not timed).
    var pipelineLimit = 1
    var budget: Int { settings.clients * pipelineLimit }

    // MARK: Endpoints and connections

    /// Adds an endpoint with its connections (opened on the next maintenance pass).
    @discardableResult
    func addEndpoint(_ endpoint: Endpoint, connections count: Int) throws(BenchFailure) -> Int {
        if let index = endpoints.firstIndex(where: { $0.endpoint == endpoint }) { return index }
        let address: sockaddr_in
        switch BenchSystem.resolve(endpoint) {
        case .success(let resolved): address = resolved
        case .failure(let failure): throw failure
        }
        let state = EndpointState(endpoint: endpoint, address: address, breaker: breakerConfiguration)
        for _ in 0..<count { state.connections.append(LoadConnection(endpointIndex: endpoints.count)) }
        endpoints.append(state)
        return endpoints.count - 1
    }

    func open(_ connection: LoadConnection, now: UInt64) {
        switch BenchSystem.startConnect(endpoints[connection.endpointIndex].address) {
        case .failed(let code):
            connectFailed(connection, code: code, now: now)
        case .started(let fd):
            connection.descriptor = fd
            connection.state = .connecting(deadline: now + settings.timeout)
            if Int(fd) >= byDescriptor.count {
                byDescriptor += Array(repeating: nil, count: Int(fd) + 64 - byDescriptor.count)
            }
            byDescriptor[Int(fd)] = connection
            var event = epoll_event(events: EPOLLIN.rawValue | EPOLLOUT.rawValue, data: epoll_data_t(fd: fd))
            let result = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
            precondition(result == 0, "epoll_ctl ADD \(fd) failed: \(BenchSystem.errorText())")
            connection.isWaitingForWritable = true
        }
    }

    func connected(_ connection: LoadConnection, now: UInt64) {
        let code = BenchSystem.socketError(connection.descriptor)
        guard code == 0 else {
            closeDescriptor(connection)
            connectFailed(connection, code: code, now: now)
            return
        }
        connection.state = .ready
        connection.failures = 0
        setWritableInterest(connection, false)
        if settings.resp == 3 {
            connection.output.append(contentsOf: CommandEncoder.command(["HELLO", "3"]))
            connection.inFlight.append(
                InFlight(
                    operation: Operation(kind: .read, record: 0), intended: 0, sent: now, command: nil, redirects: 0,
                    isReadOfReadModifyWrite: false))
            markDirty(connection)
        }
        markRoom(connection)
    }

    /// A connect attempt failed: retry later with backoff, and fail the oldest operation waiting for
    /// this endpoint, so an endpoint that is down shows up as errors (one per failed attempt).
    func connectFailed(_ connection: LoadConnection, code: Int32, now: UInt64) {
        connection.lastError = BenchSystem.errorText(code)
        connection.state = .idle(retryAt: now + reconnectDelay(connection))
        let endpoint = endpoints[connection.endpointIndex]
        if let waiting = endpoint.waiting.popFirst() {
            waitingTotal -= 1
            failed(waiting, kind: BenchSystem.errorKind(code), now: now)
        }
    }

    func reconnectDelay(_ connection: LoadConnection) -> UInt64 {
        connection.failures += 1
        return Self.reconnectBackoff.delay(attempt: connection.failures - 1, using: &jitter).nanoseconds
    }

    func closeDescriptor(_ connection: LoadConnection) {
        guard connection.descriptor >= 0 else { return }
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, connection.descriptor, nil)
        byDescriptor[Int(connection.descriptor)] = nil
        close(connection.descriptor)
        connection.descriptor = -1
        connection.isWaitingForWritable = false
    }

    /// The connection broke or timed out: fail what it had in flight and reconnect after a pause.
    func connectionLost(_ connection: LoadConnection, kind: String, now: UInt64) {
        closeDescriptor(connection)
        connection.output.removeAll(keepingCapacity: true)
        connection.outputOffset = 0
        connection.input.removeAll(keepingCapacity: true)
        let endpoint = endpoints[connection.endpointIndex]
        for entry in connection.inFlight.removeAll() where entry.command != nil {
            if let permit = entry.permit {
                endpoint.breaker.record(.failure, permit: permit, now: MonotonicTime(nanoseconds: now))
            }
            var waiting = WaitingOperation(operation: entry.operation, intended: entry.intended)
            waiting.attempt = entry.attempt
            failed(waiting, kind: kind, now: now)
        }
        connection.pipelined = 0
        connection.state = .idle(retryAt: now + reconnectDelay(connection))
    }

    func setWritableInterest(_ connection: LoadConnection, _ wanted: Bool) {
        guard connection.isWaitingForWritable != wanted, connection.descriptor >= 0 else { return }
        let events = EPOLLIN.rawValue | (wanted ? EPOLLOUT.rawValue : 0)
        var event = epoll_event(events: events, data: epoll_data_t(fd: connection.descriptor))
        _ = epoll_ctl(epoll, EPOLL_CTL_MOD, connection.descriptor, &event)
        connection.isWaitingForWritable = wanted
    }

    @inline(__always)
    func markRoom(_ connection: LoadConnection) {
        guard !connection.isInReadyList, connection.isReady, connection.pipelined < pipelineLimit else { return }
        connection.isInReadyList = true
        endpoints[connection.endpointIndex].readyList.append(connection)
    }

    @inline(__always)
    func markDirty(_ connection: LoadConnection) {
        guard !connection.isDirty else { return }
        connection.isDirty = true
        dirty.append(connection)
    }

    // MARK: Operations

    /// An operation failed: it is retried after a backoff if the failure is retryable, attempts remain
    /// and the budget allows (never while the phase drains); otherwise it ends as an error of `kind`.
    func failed(_ waiting: WaitingOperation, kind: String, now: UInt64) {
        // A retry that could not start before the operation's deadline would only fail as 'deadline':
        // the operation ends with the failure it had, and the budget is not spent on it.
        let delay = Self.retryBackoff.delay(attempt: Int(waiting.attempt), using: &jitter).nanoseconds
        let beforeDeadline = now + delay < phaseStart + waiting.intended + settings.timeout
        if !isStopping, beforeDeadline, Int(waiting.attempt) < settings.retries, Self.isRetryable(kind),
            retryBudget.spendRetry(now: MonotonicTime(nanoseconds: now))
        {
            var retry = WaitingOperation(operation: waiting.operation, intended: waiting.intended)
            retry.attempt = waiting.attempt + 1
            retry.lastFailure = kind
            delayed.append(DelayedRetry(waiting: retry, at: now + delay, kind: kind))
            recorder.countRetry()
            return
        }
        finishFailed(waiting.operation, kind: kind, now: now)
    }

    /// Failures worth another attempt: the node asked for one (TRYAGAIN: overloaded, rate limited,
    /// leader moving; CLUSTERDOWN: a partition between leaders; LOADING), or the transport failed.
    /// The workloads' writes are idempotent (a record's SET), so a retry cannot apply anything twice
    /// that matters to the report. Errors in the command (ERR, WRONGTYPE) and an open breaker are not.
    static func isRetryable(_ kind: String) -> Bool {
        switch kind {
        case "TRYAGAIN", "CLUSTERDOWN", "LOADING", "timeout", "connection-closed", "connection-reset",
            "connection-refused", "unreachable", "socket-error":
            true
        default:
            false
        }
    }

    /// Sends retries whose backoff has passed.
    func releaseDelayedRetries(now: UInt64) {
        guard !delayed.isEmpty else { return }
        var index = 0
        while index < delayed.count {
            guard delayed[index].at <= now else {
                index += 1
                continue
            }
            delayed.swapAt(index, delayed.count - 1)
            let retry = delayed.removeLast()
            enqueue(retry.waiting, at: route(retry.waiting.operation))
        }
    }

    @inline(__always)
    func finishFailed(_ operation: Operation, kind: String, now: UInt64) {
        outstanding -= 1
        recorder.failed(operation.kind, errorKind: kind, completed: now &- phaseStart)
    }

    /// The endpoint an operation goes to.
    func route(_ operation: Operation) -> Int {
        guard !routes.isEmpty else {
            if endpoints.count == 1 { return 0 }
            roundRobin &+= 1
            return roundRobin % endpoints.count
        }
        keyScratch.removeAll(keepingCapacity: true)
        CommandEncoder.appendKey(operation.record, to: &keyScratch)
        return routes[Int(HashSlot.of(keyScratch))]
    }

    /// Maps every slot to the index of its owner, adding endpoints the map names for the first time.
    /// A slot no range covers goes to the first endpoint, whose error reply is then counted.
    func rebuildRoutes() {
        guard let map = slotMap else { return }
        var indexes: [Int] = []
        for endpoint in map.endpoints {
            indexes.append((try? addEndpoint(endpoint, connections: settings.clients)) ?? 0)
        }
        routes = map.owners.map { $0 < 0 ? 0 : indexes[Int($0)] }
    }

    func nextOperation() -> Operation? {
        switch source {
        case .load(let next, let total):
            guard next < total else { return nil }
            source = .load(next: next + 1, total: total)
            return Operation(kind: .insert, record: next, valueBytes: settings.valueSize.maximum)
        case .workload:
            return generator?.next()
        }
    }

    func enqueue(_ waiting: WaitingOperation, at endpoint: Int) {
        endpoints[endpoint].waiting.append(waiting)
        waitingTotal += 1
    }

    /// Generates the operations that may start now.
    func issue(now: UInt64) {
        let elapsed = now - phaseStart
        if var open = schedule {
            while waitingTotal < budget, let intended = open.takeDue(now: elapsed) {
                guard let operation = nextOperation() else { break }
                if elapsed - intended > settings.timeout {
                    // Its deadline passed before the client could even send it: a user with a
                    // deadline would have given up, so it fails without loading the server.
                    recorder.failed(operation.kind, errorKind: "deadline", completed: elapsed)
                    continue
                }
                outstanding += 1
                retryBudget.recordRequest(now: MonotonicTime(nanoseconds: now))
                enqueue(WaitingOperation(operation: operation, intended: intended), at: route(operation))
            }
            schedule = open
        } else {
            while outstanding < budget, let operation = nextOperation() {
                outstanding += 1
                retryBudget.recordRequest(now: MonotonicTime(nanoseconds: now))
                enqueue(WaitingOperation(operation: operation, intended: elapsed), at: route(operation))
            }
        }
    }

    /// Moves waiting operations onto connections with room.
    func fill(now: UInt64) {
        for endpoint in endpoints where !endpoint.waiting.isEmpty {
            if settings.usesBreakers, endpoint.readyList.isEmpty, endpoint.breaker.state == .open {
                // No connection to probe with, and the node keeps failing: fail fast, not after a timeout.
                while let waiting = endpoint.waiting.popFirst() {
                    waitingTotal -= 1
                    finishFailed(waiting.operation, kind: "circuit-open", now: now)
                }
            }
            while !endpoint.waiting.isEmpty, let connection = endpoint.readyList.last {
                guard connection.isReady, connection.pipelined < pipelineLimit else {
                    connection.isInReadyList = false
                    endpoint.readyList.removeLast()
                    continue
                }
                let waiting = endpoint.waiting.popFirst()!
                waitingTotal -= 1
                if now - phaseStart > waiting.intended + settings.timeout {
                    finishFailed(waiting.operation, kind: "deadline", now: now)
                    continue
                }
                var permit: CircuitBreaker.Permit?
                if settings.usesBreakers {
                    switch endpoint.breaker.allow(now: MonotonicTime(nanoseconds: now)) {
                    case .allowed(let granted):
                        permit = granted
                    case .rejected:
                        finishFailed(waiting.operation, kind: "circuit-open", now: now)
                        continue
                    }
                }
                send(waiting, permit: permit, on: connection, now: now)
                if connection.pipelined >= pipelineLimit {
                    connection.isInReadyList = false
                    endpoint.readyList.removeLast()
                }
            }
        }
    }

    @inline(__always)
    func send(_ waiting: WaitingOperation, permit: CircuitBreaker.Permit?, on connection: LoadConnection, now: UInt64) {
        let operation = waiting.operation
        if waiting.isAsking {
            connection.output.append(contentsOf: CommandEncoder.command(["ASKING"]))
            connection.inFlight.append(
                InFlight(
                    operation: operation, intended: waiting.intended, sent: now, command: nil, redirects: 0,
                    isReadOfReadModifyWrite: false))
        }
        var command = SentCommand.set
        switch operation.kind {
        case .read, .readModifyWrite:
            encoder.appendGet(operation.record, to: &connection.output)
            command = .get
        case .update, .insert:
            encoder.appendSet(operation.record, valueBytes: operation.valueBytes, to: &connection.output)
        case .scan:
            encoder.appendMultiGet(operation.record, count: operation.scanLength, to: &connection.output)
            command = .mget
        }
        connection.inFlight.append(
            InFlight(
                operation: operation, intended: waiting.intended, sent: now, command: command,
                redirects: waiting.redirects, isReadOfReadModifyWrite: operation.kind == .readModifyWrite,
                attempt: waiting.attempt, permit: permit))
        connection.pipelined += 1
        markDirty(connection)
    }

    func flush() {
        for connection in dirty {
            connection.isDirty = false
            guard connection.descriptor >= 0, connection.isReady else { continue }
            write(connection)
        }
        dirty.removeAll(keepingCapacity: true)
    }

    func write(_ connection: LoadConnection) {
        while connection.outputOffset < connection.output.count {
            let written = connection.output.withUnsafeBytes { bytes in
                Glibc.write(
                    connection.descriptor, bytes.baseAddress! + connection.outputOffset,
                    bytes.count - connection.outputOffset)
            }
            if written > 0 {
                connection.outputOffset += written
                continue
            }
            if written < 0 && errno == EINTR { continue }
            if written < 0 && errno == EAGAIN {
                setWritableInterest(connection, true)
                return
            }
            connectionLost(connection, kind: BenchSystem.errorKind(errno), now: BenchSystem.monotonicNanoseconds())
            return
        }
        connection.output.removeAll(keepingCapacity: true)
        connection.outputOffset = 0
        setWritableInterest(connection, false)
    }

    // MARK: Replies

    func readable(_ connection: LoadConnection) {
        while connection.descriptor >= 0 {
            let count = scratch.withUnsafeMutableBytes { read(connection.descriptor, $0.baseAddress!, $0.count) }
            let now = BenchSystem.monotonicNanoseconds()
            if count == 0 {
                connectionLost(connection, kind: "connection-closed", now: now)
                return
            }
            if count < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN { connectionLost(connection, kind: BenchSystem.errorKind(errno), now: now) }
                return
            }
            if connection.input.isEmpty {
                let used = scratch.withUnsafeBufferPointer {
                    consume(UnsafeBufferPointer(rebasing: $0[0..<count]), connection, now)
                }
                if used < count, connection.descriptor >= 0 {
                    connection.input.append(contentsOf: scratch[used..<count])
                }
            } else {
                connection.input.append(contentsOf: scratch[0..<count])
                let used = connection.input.withUnsafeBufferPointer { consume($0, connection, now) }
                if connection.descriptor >= 0 { connection.input.removeFirst(used) }
            }
            if count < scratch.count { return }
        }
    }

    /// Handles every whole reply in `bytes`; returns how many bytes they used.
    func consume(_ bytes: UnsafeBufferPointer<UInt8>, _ connection: LoadConnection, _ now: UInt64) -> Int {
        var offset = 0
        while offset < bytes.count {
            switch ReplyScanner.scan(bytes, from: offset) {
            case .needMoreBytes:
                return offset
            case .invalid:
                connectionLost(connection, kind: "protocol-error", now: now)
                return bytes.count
            case .reply(let end, let error):
                offset = end
                guard let entry = connection.inFlight.popFirst() else {
                    connectionLost(connection, kind: "protocol-error", now: now)
                    return bytes.count
                }
                guard let command = entry.command else { continue }
                connection.pipelined -= 1
                recorder.countReply(command)
                if let permit = entry.permit {
                    // Any reply, an error too, shows the node alive and answering.
                    endpoints[connection.endpointIndex].breaker.record(
                        .success, permit: permit, now: MonotonicTime(nanoseconds: now))
                }
                if let error {
                    handleError(error, entry, connection, now)
                } else if entry.isReadOfReadModifyWrite {
                    // The read came back: now the write, timed from the same intended start.
                    encoder.appendSet(
                        entry.operation.record, valueBytes: entry.operation.valueBytes, to: &connection.output)
                    var write = entry
                    write.command = .set
                    write.isReadOfReadModifyWrite = false
                    write.permit = nil
                    connection.inFlight.append(write)
                    connection.pipelined += 1
                    markDirty(connection)
                } else {
                    outstanding -= 1
                    recorder.succeeded(entry.operation.kind, intended: entry.intended, completed: now - phaseStart)
                }
                markRoom(connection)
            }
        }
        return offset
    }

    func handleError(_ text: String, _ entry: InFlight, _ connection: LoadConnection, _ now: UInt64) {
        let kind = ReplyScanner.errorKind(text)
        if slotMap != nil, kind == "MOVED" || kind == "ASK",
            let redirection = Redirection.parse(text, asked: endpoints[connection.endpointIndex].endpoint)
        {
            guard entry.redirects < Self.redirectsMax else {
                finishFailed(entry.operation, kind: "redirect-limit", now: now)
                return
            }
            if !redirection.isAsk {
                slotMap?.move(slot: redirection.slot, to: redirection.endpoint)
                refreshSlots(now: now)
            }
            guard let target = try? addEndpoint(redirection.endpoint, connections: settings.clients) else {
                finishFailed(entry.operation, kind: kind, now: now)
                return
            }
            for other in endpoints[target].connections where other.descriptor < 0 {
                if case .idle = other.state { other.state = .idle(retryAt: 0) }
            }
            var waiting = WaitingOperation(operation: entry.operation, intended: entry.intended)
            waiting.redirects = entry.redirects + 1
            waiting.isAsking = redirection.isAsk
            waiting.attempt = entry.attempt
            enqueue(waiting, at: target)
            return
        }
        var waiting = WaitingOperation(operation: entry.operation, intended: entry.intended)
        waiting.attempt = entry.attempt
        failed(waiting, kind: kind, now: now)
    }

    /// Reloads the slot map from `CLUSTER SLOTS` of any reachable endpoint, at most every 100 ms.
    func refreshSlots(now: UInt64) {
        guard slotMap != nil, now - lastSlotRefresh > 100_000_000 else { return }
        lastSlotRefresh = now
        for state in endpoints {
            guard let connection = try? SyncConnection(state.endpoint, timeout: min(settings.timeout, 1_000_000_000)),
                let reply = try? connection.call(["CLUSTER", "SLOTS"]),
                case .success(let map) = SlotMap.parse(reply, asked: state.endpoint)
            else { continue }
            slotMap = map
            return
        }
    }
}
