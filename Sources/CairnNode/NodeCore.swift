import CairnCore
import CairnRESP
import CairnStorage

/// Something that happened to a node. The core never asks "what time is it?": each input comes with
/// an `Instant` from the shell.
public enum NodeInput: Sendable {
    /// A client connected. The shell allocated its ID.
    case connected(ClientID, address: String, localAddress: String, fileDescriptor: Int32)
    /// The shell refused a connection because `Limits.clientsMax` clients are connected.
    case connectionRejected
    /// A client's connection closed (either side). Its held replies are dropped; its writes are not.
    case disconnected(ClientID)
    /// A client sent a whole command (`arguments` is never empty) that took `wireBytes` bytes.
    case command(ClientID, arguments: [[UInt8]], wireBytes: Int)
    /// A client's bytes are not valid RESP. The core replies with the error and closes the connection.
    case protocolError(ClientID, RESPError)
    /// One tick of logical time passed (`NodeConfig.tickMilliseconds` of wall time).
    case tick
    /// The shell finished a loop turn: the core closes the turn's storage batch (group commit).
    case turnEnded
    /// Every batch through `through` is applied (and fsync'd if the policy says so). The numbers are
    /// for metrics: how long the write took, and how many batches and mutations it merged.
    case persisted(through: BatchSequence, durationNanoseconds: UInt64, batches: Int, mutations: Int)
    /// The shell sampled the process's memory and CPU use (for INFO).
    case processSampled(ProcessSample)
    /// The storage thread could not make a batch durable. The node stops (see `NodeOutput.fatal`).
    case persistFailed(BatchSequence, StorageError)
}

/// A line for the node's log, emitted by the core and written by the shell.
public struct NodeLog: Sendable, Equatable {
    public enum Level: String, Sendable, Comparable, CaseIterable {
        case debug, info, warn, error
        public static func < (lhs: Level, rhs: Level) -> Bool {
            Level.allCases.firstIndex(of: lhs)! < Level.allCases.firstIndex(of: rhs)!
        }
    }
    public let level: Level
    public let message: String
    public let fields: [(String, String)]

    public init(_ level: Level, _ message: String, _ fields: [(String, String)] = []) {
        self.level = level
        self.message = message
        self.fields = fields
    }

    public static func == (lhs: NodeLog, rhs: NodeLog) -> Bool {
        lhs.level == rhs.level && lhs.message == rhs.message
            && lhs.fields.map { "\($0)=\($1)" } == rhs.fields.map { "\($0)=\($1)" }
    }
}

/// What one `step` asks the shell to do, in this order.
public struct NodeOutput: Sendable {
    /// 1. Hand these to the storage thread, in order. Batch N must be durable before N+1 is reported
    ///    durable; the thread may merge queued batches into one write and one fsync.
    public var writes: [StorageBatch] = []
    /// 2. Queue these on their connections, in order, and flush at the end of the loop turn. A reply
    ///    that depends on a write is only here once the write is durable (under `--fsync always`).
    public var replies: [ClientReply] = []
    /// 3. Write these to the log.
    public var logs: [NodeLog] = []
    /// 4. If set, the node cannot go on safely (a write could not be made durable): the shell logs
    ///    this, stops without sending anything more, and exits non-zero.
    public var fatal: String?

    public init() {}
}

/// A whole single node as one deterministic state machine: sessions, command execution, the
/// keyspace view over storage, durability gating of replies, TTL expiry, the read cache and metrics.
///
/// Shell duties (MUST): feed every input of a loop turn, then `.turnEnded`; carry out each output's
/// lanes in the documented order; turn wall time into `.tick`s; report durability with `.persisted`
/// in sequence order. The shell MUST NOT reply to clients itself or decide anything about commands.
///
/// The core reads the store synchronously (it is the I/O boundary) and never writes to it.
public struct NodeCore: Sendable {
    public let config: NodeConfig
    public internal(set) var keyspace: Keyspace
    var sessions: [ClientID: ClientSession] = [:]
    var prng: SplitMix64
    var metrics = MetricsRegistry()
    let startedAt: Instant
    var now: Instant
    var ticks: UInt64 = 0

    /// Replies waiting for their batch to become durable, by that batch.
    var heldReplies: [BatchSequence: [HeldReply]] = [:]
    var scanCursors = ScanCursors()
    var stats = NodeStats()
    var processSample = ProcessSample(residentBytes: 0, cpuUserSeconds: 0, cpuSystemSeconds: 0)

    struct HeldReply: Sendable {
        let reply: ClientReply
        let command: Int
        let isError: Bool
        let startedAt: UInt64
    }

    /// Opens a node over `store`.
    /// - Throws: `StorageError` if the store cannot be read or holds an unknown format.
    public init(config: NodeConfig, store: any KVStore, now: Instant) throws(StorageError) {
        self.config = config
        self.keyspace = try Keyspace(store: store, cacheBytes: config.cacheBytes)
        self.prng = SplitMix64(seed: config.seed)
        self.startedAt = now
        self.now = now
        for family in NodeMetrics.all { metrics.register(family) }
    }

    /// Advances the node by one input. Same state plus same input gives the same output.
    public mutating func step(_ input: NodeInput, now: Instant) -> NodeOutput {
        var output = NodeOutput()
        self.now = now
        switch input {
        case .connected(let id, let address, let localAddress, let fileDescriptor):
            precondition(sessions[id] == nil, "\(id) connected twice")
            let identity = ClientIdentity(
                address: address, localAddress: localAddress, fileDescriptor: fileDescriptor, connectedAt: now)
            sessions[id] = ClientSession(id: id, identity: identity, lastCommandAt: now)
            stats.connectionsReceived += 1
        case .connectionRejected:
            stats.connectionsRejected += 1
        case .disconnected(let id):
            sessions.removeValue(forKey: id)
        case .command(let id, let arguments, let wireBytes):
            stats.inputBytes += UInt64(wireBytes)
            handleCommand(id, arguments, into: &output)
        case .protocolError(let id, let error):
            stats.protocolErrors += 1
            if var session = sessions[id], !session.isClosing {
                session.isClosing = true
                sessions[id] = session
                keyspace.readGate = BatchSequence(0)
                let reply = RESPValue.error("ERR \(error)")
                release(
                    id, reply, command: CommandTable.protocolErrorIndex, closeAfter: true,
                    startedAt: now.monotonicNanoseconds,
                    into: &output)
            }
        case .tick:
            ticks += 1
            if ticks % UInt64(max(1, config.expiryCycleTicks)) == 0 { expiryCycle(into: &output) }
        case .turnEnded:
            if let batch = keyspace.closeBatch() { output.writes.append(batch) }
        case .persisted(let through, let duration, let batches, let mutations):
            metrics.observe(NodeMetrics.fsyncDuration, [], Double(duration) / 1e9)
            metrics.observe(NodeMetrics.groupCommitWrites, [], Double(mutations))
            metrics.observe(NodeMetrics.groupCommitTurns, [], Double(batches))
            persisted(through: through, into: &output)
        case .processSampled(let sample):
            processSample = sample
        case .persistFailed(let sequence, let error):
            output.fatal =
                "could not make \(sequence) durable: \(error); stopping so that no unsaved write is acknowledged"
        }
        checkInvariants()
        return output
    }

    // MARK: Commands

    mutating func handleCommand(_ id: ClientID, _ arguments: [[UInt8]], into output: inout NodeOutput) {
        precondition(!arguments.isEmpty, "empty command from \(id); the shell must skip no-op input")
        // Sessions are updated in place through their index: copying a session out and back costs
        // more than most commands (measured with callgrind).
        guard let position = sessions.index(forKey: id), !sessions.values[position].isClosing else { return }
        keyspace.readGate = BatchSequence(0)
        var closeAfter = false
        let name = Self.lowercased(arguments[0])
        let spec = CommandTable.topLevel[name]
        // CLIENT LIST shows the command being run, with its subcommand, as Redis does.
        var label = spec.map { CommandTable.labelIndex[$0.name]! } ?? CommandTable.labelIndex["unknown"]!
        if let spec, !spec.subcommands.isEmpty, arguments.count > 1 {
            let full = name + "|" + Self.lowercased(arguments[1])
            if let index = CommandTable.labelIndex[full] { label = index }
        }
        sessions.values[position].lastCommand = label
        sessions.values[position].lastCommandAt = now
        let reply: RESPValue
        do {
            reply = try execute(spec, arguments, client: id, closeAfter: &closeAfter)
        } catch {
            reply = .error(error.description)
        }
        if closeAfter, let position = sessions.index(forKey: id) { sessions.values[position].isClosing = true }
        release(
            id, reply, command: spec?.index ?? CommandTable.unknownIndex, closeAfter: closeAfter,
            startedAt: now.monotonicNanoseconds,
            into: &output)
    }

    /// Sends `reply` now, or holds it until the batch it depends on is durable.
    mutating func release(
        _ id: ClientID, _ reply: RESPValue, command: Int, closeAfter: Bool, startedAt: UInt64,
        into output: inout NodeOutput
    ) {
        guard let position = sessions.index(forKey: id) else { return }
        let bytes = reply.encoded(sessions.values[position].protocolVersion)
        stats.outputBytes += UInt64(bytes.count)
        let clientReply = ClientReply(client: id, bytes: bytes, closeAfter: closeAfter)
        var gate = sessions.values[position].replyGate
        if config.fsync.repliesWaitForDurability { gate = max(gate, keyspace.readGate) }
        if gate > keyspace.durableThrough {
            sessions.values[position].replyGate = gate
            sessions.values[position].heldReplies += 1
            heldReplies[gate, default: []].append(
                HeldReply(reply: clientReply, command: command, isError: reply.isError, startedAt: startedAt))
        } else {
            recordCommand(command, isError: reply.isError, startedAt: startedAt)
            output.replies.append(clientReply)
        }
    }

    mutating func persisted(through sequence: BatchSequence, into output: inout NodeOutput) {
        let previous = keyspace.durableThrough
        keyspace.persisted(through: sequence)
        guard sequence > previous else { return }
        var batch = previous.next
        while batch <= sequence {
            for held in heldReplies.removeValue(forKey: batch) ?? [] {
                recordCommand(held.command, isError: held.isError, startedAt: held.startedAt)
                guard var session = sessions[held.reply.client] else { continue }
                session.heldReplies -= 1
                sessions[held.reply.client] = session
                output.replies.append(held.reply)
            }
            batch = batch.next
        }
    }

    /// Counts a finished command. Kept in plain counters (no label strings) because it runs per command;
    /// `renderMetrics` turns them into series.
    mutating func recordCommand(_ command: Int, isError: Bool, startedAt: UInt64) {
        let seconds = Double(now.monotonicNanoseconds &- startedAt) / 1e9
        stats.record(command, isError: isError, seconds: seconds)
    }

    // MARK: Expiry

    /// Removes up to `Limits.expiryKeysPerTickMax` keys whose time passed, found through the expiry
    /// index: bounded work per tick, as Redis's active expiry cycle.
    mutating func expiryCycle(into output: inout NodeOutput) {
        let nowMilliseconds = now.unixMilliseconds
        do {
            for entry in try keyspace.expiredIndexEntries(now: nowMilliseconds, limit: Limits.expiryKeysPerTickMax) {
                try keyspace.expire(entry.key, indexedAt: entry.expiresAt, now: nowMilliseconds)
            }
        } catch {
            output.logs.append(NodeLog(.error, "expiry cycle failed", [("error", error.description)]))
        }
    }

    // MARK: Queries for the shell

    /// Whether a client's replies are being held for durability (the shell uses it for nothing but tests).
    public func heldReplyCount(_ id: ClientID) -> Int { sessions[id]?.heldReplies ?? 0 }

    /// Whether the node has no held replies and no writes waiting for a batch (for clean shutdown).
    public var isQuiescent: Bool { heldReplies.isEmpty && !keyspace.hasPendingWrites }

    /// The node's metrics in the Prometheus text format.
    public mutating func renderMetrics(now: Instant) -> String {
        metrics.set(NodeMetrics.connectedClients, [], Double(sessions.count))
        metrics.set(NodeMetrics.connectionsReceived, [], Double(stats.connectionsReceived))
        metrics.set(NodeMetrics.connectionsRejected, [], Double(stats.connectionsRejected))
        metrics.set(NodeMetrics.protocolErrors, [], Double(stats.protocolErrors))
        metrics.set(NodeMetrics.inputBytes, [], Double(stats.inputBytes))
        metrics.set(NodeMetrics.outputBytes, [], Double(stats.outputBytes))
        metrics.set(NodeMetrics.keys, [], Double(keyspace.keyCount))
        metrics.set(NodeMetrics.expiringKeys, [], Double(keyspace.expiringKeyCount))
        metrics.set(NodeMetrics.expiredKeys, [], Double(keyspace.expiredKeys))
        metrics.set(NodeMetrics.pendingWrites, [], Double(keyspace.pendingKeyCount))
        metrics.set(NodeMetrics.cacheHits, [], Double(keyspace.cache.hits))
        metrics.set(NodeMetrics.cacheMisses, [], Double(keyspace.cache.misses))
        metrics.set(NodeMetrics.cacheEvictions, [], Double(keyspace.cache.evictions))
        metrics.set(NodeMetrics.cacheBytes, [], Double(keyspace.cache.usedBytes))
        metrics.set(NodeMetrics.cacheCapacityBytes, [], Double(keyspace.cache.capacityBytes))
        for (index, stat) in stats.commands.enumerated() where stat.calls > 0 {
            let command = CommandTable.label(ofIndex: index)
            metrics.set(
                NodeMetrics.commands, [("command", command), ("result", "ok")], Double(stat.calls - stat.failedCalls))
            metrics.set(NodeMetrics.commands, [("command", command), ("result", "error")], Double(stat.failedCalls))
            metrics.setHistogram(NodeMetrics.commandDuration, [("command", command)], stat.latency)
        }
        metrics.set(NodeMetrics.uptime, [], Double(now.monotonicNanoseconds &- startedAt.monotonicNanoseconds) / 1e9)
        return metrics.render()
    }

    /// The metrics registry (for tests).
    public var metricsRegistry: MetricsRegistry { metrics }

    func checkInvariants() {
        keyspace.checkInvariants()
        for (batch, _) in heldReplies {
            precondition(
                batch > keyspace.durableThrough,
                "replies held for \(batch), already durable through \(keyspace.durableThrough)")
        }
    }

    static func lowercased(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}

/// Counters behind INFO (Redis's field names) and some metrics.
struct NodeStats: Sendable {
    struct CommandStat: Sendable {
        var calls: UInt64 = 0
        var microseconds: UInt64 = 0
        var failedCalls: UInt64 = 0
        var latency = HistogramValue(bucketCount: MetricFamily.latencyBucketsSeconds.count)
    }
    var connectionsReceived: UInt64 = 0
    var connectionsRejected: UInt64 = 0
    var protocolErrors: UInt64 = 0
    var inputBytes: UInt64 = 0
    var outputBytes: UInt64 = 0
    var commandsProcessed: UInt64 = 0
    var errorReplies: UInt64 = 0
    var keyspaceHits: UInt64 = 0
    var keyspaceMisses: UInt64 = 0
    /// Per command, indexed as `CommandTable` counter slots.
    var commands = [CommandStat](repeating: CommandStat(), count: CommandTable.counterSlots)

    mutating func record(_ command: Int, isError: Bool, seconds: Double) {
        commandsProcessed += 1
        if isError { errorReplies += 1 }
        commands[command].record(isError: isError, seconds: seconds)
    }
}

extension NodeStats.CommandStat {
    mutating func record(isError: Bool, seconds: Double) {
        calls += 1
        microseconds += UInt64(seconds * 1e6)
        if isError { failedCalls += 1 }
        latency.observe(seconds, buckets: MetricFamily.latencyBucketsSeconds)
    }
}

/// Unfinished SCAN iterations: cursor number → the key to continue from. Bounded; the oldest are
/// forgotten first (a forgotten cursor gets a clear error telling the client to start again).
struct ScanCursors: Sendable {
    private var positions: [UInt64: [UInt8]] = [:]
    private var order: [UInt64] = []
    private var orderStart = 0
    private var nextCursor: UInt64 = 1

    mutating func remember(_ position: [UInt8]) -> UInt64 {
        let cursor = nextCursor
        nextCursor += 1
        positions[cursor] = position
        order.append(cursor)
        while positions.count > Limits.scanCursorsMax, orderStart < order.count {
            positions.removeValue(forKey: order[orderStart])
            orderStart += 1
        }
        if orderStart > 4096 {
            order.removeFirst(orderStart)
            orderStart = 0
        }
        return cursor
    }

    /// The position of `cursor`. A cursor stays valid until it is among the oldest forgotten, so a
    /// client may retry a SCAN call whose reply it lost.
    func position(of cursor: UInt64) -> [UInt8]? {
        positions[cursor]
    }
}
