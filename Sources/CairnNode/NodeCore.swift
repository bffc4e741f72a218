import CairnCore
import CairnRESP
import CairnRaft
import CairnResilience
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
    /// Every batch through `through` is applied (and fsync'd if the policy says so and one of them
    /// `needsSync`). The numbers are for metrics: how long the write took, whether it was fsync'd, and
    /// how many batches and mutations it merged.
    case persisted(through: BatchSequence, durationNanoseconds: UInt64, synced: Bool, batches: Int, mutations: Int)
    /// The shell sampled the process's memory and CPU use (for INFO).
    case processSampled(ProcessSample)
    /// The storage thread could not make a batch durable. The node stops (see `NodeOutput.fatal`).
    case persistFailed(BatchSequence, StorageError)
    /// Another node sent an envelope (the shell checked the frame and decoded the envelope).
    case peer(PeerEnvelope)
    /// An operator asked for a membership change (admin HTTP API); the answer is `NodeOutput.adminReply`.
    case admin(AdminRequest)
    /// A partition snapshot the core asked for (`NodeOutput.snapshotReads`) was read and encoded.
    case snapshotBuilt(SnapshotBuilt)
    /// The keys of a copy this node dropped were counted off the loop (`SnapshotRead`, removal).
    case partitionCounted(PartitionCount)
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
    /// 2. Send these to peers (after `writes` are durable: the core holds back anything that must
    ///    wait, so the shell may send what is here once the writes handed over so far are queued).
    public var peerSends: [PeerSend] = []
    /// 3. Queue these on their connections, in order, and flush at the end of the loop turn. A write's
    ///    reply is only here once its entry is committed (durable on a majority of its group).
    public var replies: [ClientReply] = []
    /// 4. Where peers listen, when it changed: the shell connects to these addresses.
    public var peerAddresses: [NodeID: String]?
    /// 5. Write these to the log.
    public var logs: [NodeLog] = []
    /// 6. If set, the node cannot go on safely (a write could not be made durable): the shell logs
    ///    this, stops without sending anything more, and exits non-zero.
    public var fatal: String?
    /// 7. The answer to an `.admin` input, for the shell to send back over HTTP.
    public var adminReply: AdminReply?
    /// Partitions to read into snapshots off the loop: take a `KVReadView` of the store for each
    /// *before* writing any later batch, then step `read.build(from: view)` (`SnapshotRead`).
    public var snapshotReads: [SnapshotRead] = []

    public init() {}

    /// Empties this output for the next step, keeping the capacity of its reply list.
    public mutating func recycle() {
        var kept = replies
        replies = []
        kept.removeAll(keepingCapacity: true)
        self = NodeOutput()
        replies = kept
    }
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
    var sessions = SlotTable<ClientID, ClientSession>()
    var prng: SplitMix64
    var metrics = MetricsRegistry()
    let startedAt: Instant
    var now: Instant
    var ticks: UInt64 = 0

    var scanCursors = ScanCursors()
    var stats = NodeStats()
    var processSample = ProcessSample(residentBytes: 0, cpuUserSeconds: 0, cpuSystemSeconds: 0)

    // Cluster state (NodeCore+Cluster, +Groups, +Routing).
    /// This node's ID; nil while it waits to be admitted to a cluster.
    var identity: NodeID?
    /// The newest cluster map this node knows (routing).
    var map: ClusterMap?
    /// The meta group's state machine, on the meta group's members.
    var metaState: ClusterMap?
    var groups = SlotTable<GroupID, HostedGroup>()
    /// Per batch, the last entry of each group it carries, to report `.persisted` to the group.
    var raftPersists = PerBatch<[GroupID: (index: LogIndex, term: Term)]>()
    /// Per group, the newest batch holding its Raft writes: the group's messages wait for it to be
    /// durable (they may speak of those writes: a vote, a term, an acknowledged entry). Per group, not
    /// per node: a heartbeat response of an idle group must not wait for another group's batch (under
    /// load that wait made leaders miss their quorum's responses for an election timeout and step down).
    var raftWriteGates: [GroupID: BatchSequence] = [:]
    /// Per group, the newest batch that changes its term or vote, and that term and vote: until it is
    /// durable every message of the group waits, even a leader's append (a single voter elects itself
    /// and appends in one step; a term revealed before it is durable could be reused after a crash).
    var raftTermGates: [GroupID: (batch: BatchSequence, term: Term, vote: NodeID?)] = [:]
    var heldMessages = PerBatch<[OutboundMessage]>()
    /// Groups whose `unproposed` writes wait for the turn's end (`flushAllProposals`).
    var groupsWithUnproposed: [GroupID] = []
    /// Per group dropped here, the batch holding the dropping: a new member of the group is created
    /// only once it is durable (`syncHostedGroups`).
    var droppedGroupBatches: [GroupID: BatchSequence] = [:]
    /// Copies of partitions dropped here whose keys are not deleted yet, by partition
    /// (`NodeCore+PartitionRemoval`). The partition is not hosted here again until its removal is durable.
    var removals: [Int: PartitionRemoval] = [:]
    var outbox: [PeerTarget: [PeerMessage]] = [:]
    var forwards: [UInt64: PendingForward] = [:]
    var splits: [UInt64: Split] = [:]
    var parked: [(Int, Waiter)] = []
    var leaderHints: [Int: NodeID] = [:]
    /// Per node that moves are still going onto, seen from this node's copies: how many, and the tick
    /// that number last fell or first appeared (`nodesReceivingMoves`).
    var movesOnto: [NodeID: (pending: Int, since: UInt64)] = [:]
    var staleForwards: Set<UInt64> = []
    var mapSentAt: [NodeID: UInt64] = [:]
    /// The tick at which each peer last sent an envelope (liveness for leadership hand-offs).
    var peerLastHeard: [NodeID: UInt64] = [:]
    /// The tick at which this node last sent each peer an envelope (node-level heartbeats).
    var lastSentTick: [NodeID: UInt64] = [:]
    /// The tick this node last became the meta leader (the dead-node clock starts there).
    var metaLeaderSince: UInt64?
    var requestCounter: UInt64 = 0
    var hostedGroupsChanged = false
    var peerAddressesChanged = true
    /// The partition whose entry is being applied (FLUSHALL removes only its slots).
    var applyingPartition: Int?
    /// Nesting of `handle` calls that are applying committed entries, and the commands to re-send
    /// once the outermost one is done.
    var applyingDepth = 0
    var deferredRedispatches: [(Waiter, Int?)] = []
    /// Groups that applied entries this turn: their applied index is saved at the turn's end.
    var appliedGroups: Set<GroupID> = []
    /// Hosted groups in ID order, for ticking them in a fixed order without sorting every tick.
    var groupOrder: [GroupID] = []
    /// Snapshot chunks waiting for the move rate (`NodeConfig.moveBytesPerSecond`), one per group and
    /// receiver (a heartbeat re-sends the current chunk: the newer replaces the older), oldest first.
    var throttledChunks: [ThrottleKey: RaftMessage] = [:]
    var throttledOrder: [ThrottleKey] = []
    /// Bytes the move rate still allows this tick (may go below zero after a large chunk).
    var moveTokens = 0
    /// One circuit breaker per peer forwards go to (`NodeCore+PeerHealth`).
    var breakers: [NodeID: CircuitBreaker] = [:]
    /// Retries of forwards whose first attempt's outcome was lost: at most a tenth of forwards.
    var retryBudget: RetryBudget
    /// Client commands received and not yet answered, over every session (admission control).
    var commandsAwaitingReply = 0
    /// One token bucket per client address with a connection open (`--client-rate-limit`).
    var clientBuckets: [String: ClientBucket] = [:]
    /// Admission by queueing delay for routed reads and writes (`--overload-latency`); empty when off.
    var latencyAdmission: [LatencyAdmission] = []
    /// Whether this node logged that the cluster removed it.
    var removalLogged = false

    /// Opens a node over `store`.
    /// - Throws: `StorageError` if the store cannot be read or holds an unknown format.
    public init(config: NodeConfig, store: any KVStore, now: Instant) throws(StorageError) {
        self.config = config
        self.keyspace = try Keyspace(store: store, cacheBytes: config.cacheBytes)
        self.prng = SplitMix64(seed: config.seed)
        self.startedAt = now
        self.retryBudget = RetryBudget(now: MonotonicTime(now))
        if config.overloadLatencyMilliseconds > 0 {
            let target = TimeSpan.milliseconds(UInt64(config.overloadLatencyMilliseconds))
            latencyAdmission = Array(repeating: LatencyAdmission(target: target, now: MonotonicTime(now)), count: 2)
        }
        self.now = now
        // Request and forward IDs must not repeat across restarts: a peer may still answer a forward
        // this node sent before it restarted, and that answer must not match a new command.
        self.requestCounter = UInt64(max(0, now.unixMicroseconds)) &* 1024
        for family in NodeMetrics.all { metrics.register(family) }
        try startCluster()
    }

    /// Advances the node by one input. Same state plus same input gives the same output.
    public mutating func step(_ input: NodeInput, now: Instant) -> NodeOutput {
        var output = NodeOutput()
        step(input, now: now, into: &output)
        return output
    }

    /// `step`, into an output the shell keeps and empties with `NodeOutput.recycle()` between steps: the
    /// server steps the core once per command, and a new output's reply list was an allocation each.
    public mutating func step(_ input: NodeInput, now: Instant, into output: inout NodeOutput) {
        precondition(
            output.writes.isEmpty && output.replies.isEmpty && output.peerSends.isEmpty && output.logs.isEmpty
                && output.snapshotReads.isEmpty && output.fatal == nil && output.adminReply == nil
                && output.peerAddresses == nil,
            "a node output must be recycled before the next step")
        self.now = now
        switch input {
        case .connected(let id, let address, let localAddress, let fileDescriptor):
            precondition(sessions[id] == nil, "\(id) connected twice")
            let identity = ClientIdentity(
                address: address, localAddress: localAddress, fileDescriptor: fileDescriptor, connectedAt: now)
            sessions[id] = ClientSession(id: id, identity: identity, lastCommandAt: now)
            clientConnected(address: address)
            stats.connectionsReceived += 1
        case .connectionRejected:
            stats.connectionsRejected += 1
        case .disconnected(let id):
            if let session = sessions.removeValue(forKey: id) {
                commandsAwaitingReply -= Int(session.nextSequence - session.nextReply)
                clientDisconnected(address: session.identity.address)
            }
        case .peer(let envelope):
            receive(envelope, into: &output)
        case .admin(let request):
            output.adminReply = admin(request, into: &output)
        case .snapshotBuilt(let built):
            snapshotBuilt(built, into: &output)
        case .partitionCounted(let counted):
            partitionCounted(counted, into: &output)
        case .command(let id, let arguments, let wireBytes):
            stats.inputBytes += UInt64(wireBytes)
            handleCommand(id, arguments, into: &output)
        case .protocolError(let id, let error):
            stats.protocolErrors += 1
            if var session = sessions[id], !session.isClosing {
                session.isClosing = true
                let sequence = session.nextSequence
                session.nextSequence += 1
                commandsAwaitingReply += 1
                sessions[id] = session
                let reply = RESPValue.error("ERR \(error)")
                deliver(
                    id, sequence: sequence,
                    ClientReply(client: id, bytes: reply.encoded(session.protocolVersion), closeAfter: true),
                    command: CommandTable.protocolErrorIndex, isError: true, startedAt: now.monotonicNanoseconds,
                    into: &output)
            }
        case .tick:
            ticks += 1
            refillMoveTokens()
            tickGroups(into: &output)
            if ticks % UInt64(max(1, config.expiryCycleTicks)) == 0 { proposeExpiries(into: &output) }
            retryParked(into: &output)
            pruneClientBuckets()
            failForwardsToSilentPeers(into: &output)
            if ticks % 10 == 3 { answerOverdueCommands(into: &output) }
            joinIfNeeded()
            proposeFounding(into: &output)
            reconcile(into: &output)
            watchLiveness(into: &output)
            queryMovedAwayGroups()
            checkMembership(into: &output)
            // Every 100 ms: with at most 2 partition reads in flight, a once-a-second pass compacted at
            // most 2 partitions a second, too few under heavy writes (the logs, held in memory, grew
            // by hundreds of MB during the overload benchmark).
            if ticks % 10 == 5 { compactLogs(into: &output) }
            requestRemovalReads(into: &output)
        case .turnEnded:
            flushAllProposals(into: &output)
            syncHostedGroups(into: &output)
            recordAppliedIndexes()
            if let batch = keyspace.closeBatch() { output.writes.append(batch) }
            addNodeHeartbeats()
            flushOutbox(into: &output)
            if peerAddressesChanged, let map {
                peerAddressesChanged = false
                var addresses: [NodeID: String] = [:]
                for node in map.memberNodes where node.id != identity {
                    addresses[node.id] = node.addresses.peer
                }
                output.peerAddresses = addresses
            }
        case .persisted(let through, let duration, let synced, let batches, let mutations):
            if synced { metrics.observe(NodeMetrics.fsyncDuration, [], Double(duration) / 1e9) }
            metrics.add(NodeMetrics.groupCommits, [("fsync", synced ? "yes" : "no")])
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
    }

    // MARK: Commands

    mutating func handleCommand(_ id: ClientID, _ arguments: [[UInt8]], into output: inout NodeOutput) {
        precondition(!arguments.isEmpty, "empty command from \(id); the shell must skip no-op input")
        // Sessions are read and updated in place (`SlotTable`): copying a session out and back costs
        // more than most commands (measured with callgrind).
        guard sessions.contains(id), !sessions[existing: id].isClosing else { return }
        var closeAfter = false
        let spec = CommandTable.lookup(arguments[0])
        // CLIENT LIST shows the command being run, with its subcommand, as Redis does.
        var label = spec.map { CommandTable.labelOfCommand[$0.index] } ?? Self.unknownLabel
        if let spec, !spec.subcommands.isEmpty, arguments.count > 1 {
            let full = spec.name + "|" + Self.lowercased(arguments[1])
            if let index = CommandTable.labelIndex[full] { label = index }
        }
        let sequence = sessions[existing: id].nextSequence
        sessions[existing: id].nextSequence += 1
        commandsAwaitingReply += 1
        sessions[existing: id].lastCommand = label
        sessions[existing: id].lastCommandAt = now
        let startedAt = now.monotonicNanoseconds
        if let spec, Self.isRouted(spec), spec.accepts(argumentCount: arguments.count),
            let refusal = admissionRefusal(id, command: spec.index)
        {
            let reply = RESPValue.error(refusal)
            deliver(
                id, sequence: sequence,
                ClientReply(client: id, bytes: reply.encoded(sessions[existing: id].protocolVersion)),
                command: spec.index, isError: true, startedAt: startedAt, into: &output)
            return
        }
        if let spec, Self.isRouted(spec), spec.accepts(argumentCount: arguments.count) {
            let waiter = Waiter(
                origin: .client(id, sequence: sequence), arguments: arguments, command: spec.index,
                protocolVersion: sessions[existing: id].protocolVersion, startedAt: startedAt,
                deadline: now.unixMilliseconds + config.requestTimeoutMilliseconds)
            sessions[existing: id].deadlines[sequence] = waiter.deadline
            route(spec, arguments, waiter: waiter, into: &output)
            return
        }
        let reply: RESPValue
        do {
            reply = try execute(
                spec, arguments, client: id, nowMilliseconds: now.unixMilliseconds, closeAfter: &closeAfter)
        } catch {
            reply = .error(error.description)
        }
        guard sessions.contains(id) else { return }
        if closeAfter { sessions[existing: id].isClosing = true }
        let bytes = reply.encoded(sessions[existing: id].protocolVersion)
        deliver(
            id, sequence: sequence, ClientReply(client: id, bytes: bytes, closeAfter: closeAfter),
            command: spec?.index ?? CommandTable.unknownIndex, isError: reply.isError, startedAt: startedAt,
            into: &output)
    }

    /// Whether a command goes through the cluster (it names keys, or changes every partition).
    static func isRouted(_ spec: CommandSpec) -> Bool {
        spec.firstKey > 0 || spec.name == "flushall" || spec.name == "flushdb"
    }

    /// Hands a client its reply in command order: a reply that finished before an earlier one waits.
    mutating func deliver(
        _ id: ClientID, sequence: UInt64, _ reply: ClientReply, command: Int, isError: Bool, startedAt: UInt64,
        into output: inout NodeOutput
    ) {
        guard sessions.contains(id),
            // Already answered (by the watchdog): a late outcome is dropped.
            sequence >= sessions[existing: id].nextReply
        else { return }
        stats.outputBytes += UInt64(reply.bytes.count)
        if !sessions[existing: id].deadlines.isEmpty { sessions[existing: id].deadlines[sequence] = nil }
        if sequence != sessions[existing: id].nextReply {
            sessions[existing: id].waitingReplies[sequence] = HeldReply(
                reply: reply, command: command, isError: isError, startedAt: startedAt)
            return
        }
        recordCommand(command, isError: isError, startedAt: startedAt)
        output.replies.append(reply)
        sessions[existing: id].nextReply += 1
        commandsAwaitingReply -= 1
        while !sessions[existing: id].waitingReplies.isEmpty,
            let held = sessions[existing: id].waitingReplies.removeValue(forKey: sessions[existing: id].nextReply)
        {
            recordCommand(held.command, isError: held.isError, startedAt: held.startedAt)
            output.replies.append(held.reply)
            sessions[existing: id].nextReply += 1
            commandsAwaitingReply -= 1
        }
    }

    /// The watchdog: a routed command still unanswered a second after its deadline was lost inside
    /// the node (every path is meant to answer by the deadline). Its client gets a clear error rather
    /// than waiting forever, and the log says which command, so the path can be found and fixed.
    /// The warning the watchdog logs (the cluster simulator fails a run that shows it).
    public static let lostReplyMessage = "a command's outcome was lost inside the node; answering TRYAGAIN"

    mutating func answerOverdueCommands(into output: inout NodeOutput) {
        let limit = now.unixMilliseconds - 1000
        for id in sessions.keys {
            while sessions.contains(id),
                sessions[existing: id].nextReply < sessions[existing: id].nextSequence,
                let deadline = sessions[existing: id].deadlines[sessions[existing: id].nextReply],
                deadline <= limit
            {
                let sequence = sessions[existing: id].nextReply
                let command = CommandTable.label(ofIndex: sessions[existing: id].lastCommand)
                stats.lostReplies += 1
                output.logs.append(
                    NodeLog(
                        .warn, Self.lostReplyMessage,
                        [("client", "\(id)"), ("sequence", "\(sequence)"), ("last_command", command)]))
                let reply = RESPValue.error(
                    "TRYAGAIN the outcome of this command was lost inside the node; it may or may not have been applied"
                )
                deliver(
                    id, sequence: sequence,
                    ClientReply(client: id, bytes: reply.encoded(sessions[existing: id].protocolVersion)),
                    command: CommandTable.unknownIndex, isError: true, startedAt: now.monotonicNanoseconds,
                    into: &output)
            }
        }
    }

    mutating func persisted(through sequence: BatchSequence, into output: inout NodeOutput) {
        keyspace.persisted(through: sequence)
        raftPersisted(through: sequence, into: &output)
    }

    /// Counts a finished command. Kept in plain counters (no label strings) because it runs per command;
    /// `renderMetrics` turns them into series.
    mutating func recordCommand(_ command: Int, isError: Bool, startedAt: UInt64) {
        let seconds = Double(now.monotonicNanoseconds &- startedAt) / 1e9
        stats.record(command, isError: isError, seconds: seconds)
        noteCompletion(command, isError: isError, startedAt: startedAt)
    }

    // MARK: Expiry

    // MARK: Queries for the shell

    /// How many of a client's commands have not been answered yet.
    public func unansweredCount(_ id: ClientID) -> Int {
        sessions[id].map { Int($0.nextSequence - $0.nextReply) } ?? 0
    }

    /// Whether the node has no unanswered commands and no writes waiting for a batch (clean shutdown).
    /// Writes a leader has not proposed yet (`HostedGroup.unproposed`) are unanswered commands too;
    /// the shell asks after a turn's end, which proposes them.
    public var isQuiescent: Bool {
        sessions.allValues.allSatisfy { $0.nextSequence == $0.nextReply } && !keyspace.hasPendingWrites
            && heldMessages.isEmpty
    }

    /// Whether this node is in a cluster and every partition has a leader it knows of (`/ready`).
    /// Commands client `id` sent that have no reply yet (the shell stops reading a connection with too
    /// many: per-connection backpressure).
    /// `mutating` only so that the shell's call works on its core in place: a non-mutating call on a
    /// struct stored in a class copies the whole struct first (seen in perf, once per command).
    public mutating func commandsAwaitingReply(of id: ClientID) -> Int {
        guard sessions.contains(id) else { return 0 }
        return Int(sessions[existing: id].nextSequence - sessions[existing: id].nextReply)
    }

    /// What this node's replica of `partition` holds, with the index its group applied: every record in
    /// the partition's slots (expired ones too), in key order. For the simulator's check that replicas
    /// at the same index agree. Nil if the node does not host the partition or a restore is pending.
    public func replicaContents(ofPartition partition: Int) throws(StorageError) -> (
        applied: UInt64, records: [(key: [UInt8], record: ValueRecord)]
    )? {
        guard let map, let hosted = groups[Self.group(ofPartition: partition)], !hosted.raft.isRestorePending else {
            return nil
        }
        let slots = map.slots(of: partition)
        return (
            hosted.raft.lastAppliedIndex.rawValue,
            try keyspace.records(inSlots: Int(slots.lowerBound)...Int(slots.upperBound))
        )
    }

    public var isReady: Bool {
        guard let map, let me = identity, !isRemoved else { return false }
        for partition in 0..<map.partitionCount where map.placement[partition].contains(me) {
            let group = Self.group(ofPartition: partition)
            if groups[group]?.raft.leader == nil, leaderHints[partition] == nil { return false }
        }
        return groups[Self.metaGroup] == nil || groups[Self.metaGroup]?.raft.leader != nil
    }

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
        metrics.setHistogram(NodeMetrics.raftCommitDuration, [], stats.raftCommitLatency)
        metrics.set(NodeMetrics.uptime, [], Double(now.monotonicNanoseconds &- startedAt.monotonicNanoseconds) / 1e9)
        metrics.set(NodeMetrics.clusterEpoch, [], Double(map?.epoch ?? 0))
        metrics.set(NodeMetrics.clusterNodes, [], Double(map?.activeNodes.count ?? 0))
        var roles: [String: Int] = [:]
        for role in [RaftRole.leader, .follower, .candidate, .preCandidate] { roles[role.description] = 0 }
        var campaigns: UInt64 = 0
        var elections: UInt64 = 0
        var stepDowns: UInt64 = 0
        var termMax: UInt64 = 0
        var pending = 0
        var logEntries: UInt64 = 0
        var quiet = 0
        for hosted in groups.allValues {
            if hosted.isQuiet { quiet += 1 }
            logEntries += hosted.raft.lastIndex.rawValue - hosted.raft.snapshotMetadata.index.rawValue
            roles[hosted.raft.role.description, default: 0] += 1
            campaigns += hosted.raft.counters.campaigns
            elections += hosted.raft.counters.elections
            stepDowns += hosted.raft.counters.quorumLossStepDowns
            termMax = max(termMax, hosted.raft.term.rawValue)
            pending +=
                hosted.unproposed.count + hosted.proposals.values.reduce(0) { $0 + $1.count }
                + hosted.appended.values.reduce(0) { $0 + $1.waiters.count } + hosted.reads.count
                + hosted.readyReads.count
        }
        for (role, count) in roles { metrics.set(NodeMetrics.raftGroups, [("role", role)], Double(count)) }
        metrics.set(NodeMetrics.raftElections, [], Double(campaigns))
        metrics.set(NodeMetrics.raftRealElections, [], Double(elections))
        metrics.set(NodeMetrics.raftQuorumLossStepDowns, [], Double(stepDowns))
        metrics.set(NodeMetrics.raftTermMax, [], Double(termMax))
        metrics.set(NodeMetrics.raftPendingProposals, [], Double(pending))
        metrics.set(NodeMetrics.forwarded, [], Double(stats.forwarded))
        metrics.set(NodeMetrics.peerRefused, [], Double(stats.peerMessagesRefused))
        metrics.set(NodeMetrics.raftSnapshots, [("kind", "created")], Double(stats.snapshotsCreated))
        metrics.set(NodeMetrics.raftSnapshots, [("kind", "restored")], Double(stats.snapshotsRestored))
        metrics.set(NodeMetrics.raftSnapshots, [("kind", "prepared")], Double(stats.snapshotsPrepared))
        metrics.set(NodeMetrics.raftLogEntries, [], Double(logEntries))
        metrics.set(NodeMetrics.raftQuietGroups, [], Double(quiet))
        metrics.set(NodeMetrics.raftQuietWakeups, [], Double(stats.quietWakeups))
        metrics.set(NodeMetrics.lostReplies, [], Double(stats.lostReplies))
        metrics.set(NodeMetrics.raftProposals, [], Double(stats.proposals))
        var moves: [MoveState: Int] = [.placed: 0, .moving: 0, .waiting: 0]
        if let map {
            for hosted in groups.allValues where hosted.isLeader && hosted.partition != nil {
                moves[Self.moveState(hosted, in: map), default: 0] += 1
            }
        }
        for (state, count) in moves {
            metrics.set(NodeMetrics.rebalancePartitions, [("state", state.rawValue)], Double(count))
        }
        metrics.set(NodeMetrics.membershipSteps, [], Double(stats.membershipSteps))
        metrics.set(NodeMetrics.idempotentReplays, [], Double(stats.idempotentReplays))
        metrics.set(NodeMetrics.commandsInFlight, [], Double(commandsAwaitingReply))
        for (peer, breaker) in breakers {
            metrics.set(NodeMetrics.breakerState, [("peer", "\(peer)")], Double(breaker.state.rawValue))
        }
        metrics.set(NodeMetrics.breakerRejections, [], Double(stats.breakerRejections))
        metrics.set(NodeMetrics.forwardRetries, [], Double(stats.forwardRetries))
        metrics.set(NodeMetrics.commandsRefused, [("reason", "overloaded")], Double(stats.commandsRefused))
        metrics.set(NodeMetrics.commandsRefused, [("reason", "rate-limited")], Double(stats.commandsRateLimited))
        for (kind, admission) in latencyAdmission.enumerated() {
            let name = Self.admissionClassNames[kind]
            metrics.set(NodeMetrics.commandsRefused, [("reason", "slow-\(name)")], Double(admission.refusedCount))
            metrics.set(NodeMetrics.overloadedIntervals, [("class", name)], Double(admission.overloadedIntervals))
            metrics.set(
                NodeMetrics.fastestCompletion, [("class", name)], Double(admission.lastFastest?.nanoseconds ?? 0) / 1e9)
            metrics.set(NodeMetrics.admissionAllowance, [("class", name)], Double(admission.allowance ?? -1))
        }
        metrics.set(NodeMetrics.snapshotBytes, [("direction", "sent")], Double(stats.snapshotBytesSent))
        metrics.set(NodeMetrics.snapshotBytes, [("direction", "received")], Double(stats.snapshotBytesReceived))
        metrics.set(
            NodeMetrics.snapshotBytesThrottled, [],
            Double(throttledChunks.values.reduce(0) { $0 + Self.chunkBytes($1) }))
        return metrics.render()
    }

    /// The metrics registry (for tests).
    public var metricsRegistry: MetricsRegistry { metrics }

    func checkInvariants() {
        keyspace.checkInvariants()
        precondition(commandsAwaitingReply >= 0, "commands awaiting replies went negative: \(commandsAwaitingReply)")
        if let batch = heldMessages.first {
            precondition(
                batch > keyspace.durableThrough,
                "messages held for \(batch), already durable through \(keyspace.durableThrough)")
        }
    }

    static let unknownLabel = CommandTable.labelIndex["unknown"]!

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
    /// `NodeMetrics.raftCommitDuration`, kept here and copied into the registry when rendered: one
    /// observation per write, and the registry's lookups by name cost more than the write's reply.
    var raftCommitLatency = HistogramValue(bucketCount: MetricFamily.latencyBucketsSeconds.count)
    var connectionsReceived: UInt64 = 0
    var connectionsRejected: UInt64 = 0
    var protocolErrors: UInt64 = 0
    var inputBytes: UInt64 = 0
    var outputBytes: UInt64 = 0
    var commandsProcessed: UInt64 = 0
    var errorReplies: UInt64 = 0
    var keyspaceHits: UInt64 = 0
    var keyspaceMisses: UInt64 = 0
    var forwarded: UInt64 = 0
    var peerMessagesRefused: UInt64 = 0
    var snapshotsCreated: UInt64 = 0
    var snapshotsRestored: UInt64 = 0
    var snapshotsPrepared: UInt64 = 0
    var quietWakeups: UInt64 = 0
    var lostReplies: UInt64 = 0
    var proposals: UInt64 = 0
    var snapshotBytesSent: UInt64 = 0
    /// IDEMPOTENT commands answered with the reply recorded for their token (applied nothing again).
    var idempotentReplays: UInt64 = 0
    /// Commands refused because the node held `maxCommandsInFlight` without replies.
    var commandsRefused: UInt64 = 0
    var commandsRateLimited: UInt64 = 0
    /// Forwards refused because the target's circuit breaker was open.
    var breakerRejections: UInt64 = 0
    /// Forwards sent again after their target went silent (reads and idempotent writes).
    var forwardRetries: UInt64 = 0
    var snapshotBytesReceived: UInt64 = 0
    /// Membership changes this node started as a leader (add learner, promote, remove).
    var membershipSteps: UInt64 = 0
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
