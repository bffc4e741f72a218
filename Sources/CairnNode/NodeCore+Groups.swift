import CairnCore
import CairnPlacement
import CairnRESP
import CairnRaft
import CairnStorage

/// Who is waiting for the outcome of a command this node proposed, read or forwarded.
enum Origin: Sendable, Equatable {
    /// A client of this node; `sequence` orders its replies.
    case client(ClientID, sequence: UInt64)
    /// A coordinator on another node that forwarded the command.
    case peer(NodeID, id: UInt64)
    /// One part of a command split over partitions (`Split`).
    case part(split: UInt64, index: Int)
    /// A node asking to join, answered at its peer address.
    case joiner(NodeAddresses)
    /// The node itself (expiry); nobody hears the outcome.
    case none
    /// A write of a batch entry whose client was already answered (its deadline passed): it keeps its
    /// place, so the entry's other writes get their own replies, but is never sent again.
    case answered
}

/// A command on its way: where its reply goes and how to encode it.
struct Waiter: Sendable {
    var origin: Origin
    var arguments: [[UInt8]]
    var command: Int
    var protocolVersion: RESPVersion
    var startedAt: UInt64
    /// Unix milliseconds after which nobody waits for the outcome.
    var deadline: Int64
    /// A read waits until its group applied at least this index: the last entry proposed when the
    /// read arrived, so a read pipelined after a write on the same connection sees that write.
    var minimumIndex = LogIndex(rawValue: 0)
}

/// One Raft group this node is a member of: the meta group or one partition's group.
struct HostedGroup: Sendable {
    var raft: RaftCore
    /// The partition it replicates; nil for the meta group.
    let partition: Int?
    /// The leader's clock reading of the newest applied entry: apply time never goes back, so every
    /// replica decides expiry the same way even when leaders' clocks disagree.
    var appliedTime: Int64
    /// Writes this leader accepted in the current loop turn, proposed together as one entry when the
    /// turn ends (`flushProposals`), or before a read of the group so that it sees them.
    var unproposed: [Waiter] = []
    var unproposedBytes = 0
    /// Proposals waiting for `.appended`, then entries waiting to apply, by index with their term; an
    /// entry's waiters in the order of its commands.
    var proposals: [RequestID: [Waiter]] = [:]
    var appended: [LogIndex: (term: Term, waiters: [Waiter])] = [:]
    /// Reads waiting for the leader's confirmation, then for the state machine to reach their index.
    var reads: [RequestID: Waiter] = [:]
    var readyReads: [(index: LogIndex, waiter: Waiter)] = []
    /// Keys whose expiry this node proposed and has not yet seen applied.
    var expiring: Set<ByteKey> = []
    /// Tick of the last membership step the reconciler took, so it waits for one to settle.
    var lastReconfiguredTick: UInt64 = 0
    /// Not ticked: the group is idle (`NodeCore+Quiescence`).
    var isQuiet = false
    /// The commit index at the last tick, and the tick it last changed (or the group woke).
    var lastCommit = LogIndex(rawValue: 0)
    var activeTick: UInt64 = 0
    /// Entries applied since this node opened the group, each counted as its number of writes (a batch
    /// entry holds up to 256), and that count at the last compaction: a log of few large entries is
    /// compacted as often as one of many small ones.
    var appliedWrites: UInt64 = 0
    var compactedWrites: UInt64 = 0
    /// The applied index and time the store held when the group opened: what its bucket record must
    /// keep saying while a snapshot restore is still pending (`RaftCore.isRestorePending`).
    var openedApplied: (index: LogIndex, time: Int64) = (LogIndex(rawValue: 0), 0)
    /// The snapshot read asked for (a leader's snapshot to send) and not answered yet (`SnapshotRead.id`).
    var snapshotReadID: UInt64?
    /// The tick before which no snapshot is read again: the last one was too large to send, and reading
    /// it again at every heartbeat would only repeat that.
    var snapshotReadAfterTick: UInt64 = 0

    var isLeader: Bool { raft.role == .leader }

    /// Whether a linearizable read may run now, skipping the ReadIndex round: this node's leadership
    /// needs no confirmation (`RaftCore.immediateReadIndex`: it is the only voter), every entry it
    /// holds is applied (the read sees each write proposed before it, as `Waiter.minimumIndex` would
    /// make it wait for), and no earlier read still waits, so none is overtaken. An active one-node
    /// cluster answers most reads this way.
    ///
    /// `mutating` though it changes nothing: called on `groups[existing: g]`, a getter got a copy of the
    /// whole group (every reference in it retained and released) in the release build, as the compiler
    /// cannot prove the slot unchanged during a borrowed call; an exclusive access needs no copy.
    mutating func canReadNow() -> Bool {
        guard readyReads.isEmpty, reads.isEmpty, let index = raft.immediateReadIndex else { return false }
        return raft.lastAppliedIndex >= max(index, raft.lastIndex)
    }
}

extension NodeCore {
    static let metaGroup = GroupID(rawValue: 1)

    static func group(ofPartition partition: Int) -> GroupID { GroupID(rawValue: UInt64(partition) + 2) }

    static func appliedKey(_ group: GroupID) -> [UInt8] {
        var writer = ByteWriter(capacity: 16)
        writer.write(StorageLayout.metaPrefix)
        writer.writeRest(Array("applied/".utf8))
        writer.write(group.rawValue)
        return writer.bytes
    }

    func raftConfig(_ group: GroupID) -> RaftConfig {
        var raft = RaftConfig(
            id: identity!, group: group, electionTicksMin: config.electionTicks, heartbeatTicks: config.heartbeatTicks,
            seed: config.seed &+ group.rawValue &* 0x9E37_79B9_7F4A_7C15)
        // A partition's records in the store are its snapshot: compaction copies nothing, and a snapshot
        // is read only to send it (`compactLogs`). The meta group's map is kept in its snapshot.
        raft.snapshotsOnDemand = group != Self.metaGroup
        // ReadIndex, not leases: a lease is only as safe as the tick rates of all nodes, and a starved
        // loop (see `Server.endTurn`) may skip ticks.
        raft.leaseReads = false
        // A new replica's log backlog is paced by `--move-rate` too (snapshot chunks have their own
        // bucket of the same rate): each of the node's `maxMoves` moves gets an equal part, at least
        // a byte a tick (0 = no limit). Divided before multiplied: no overflow for any rate.
        if config.moveBytesPerSecond > 0 {
            let perMove = config.moveBytesPerSecond / max(1, config.maxMoves)
            let tick = config.tickMilliseconds
            raft.learnerBytesPerTick = max(1, perMove / 1000 * tick + perMove % 1000 * tick / 1000)
        }
        return raft
    }

    /// The groups whose applied indexes share one record (`appliedBucketKey`).
    static let appliedBucketGroups: UInt64 = 64

    /// The record of the applied indexes and times of the hosted groups `bucket * 64 ..< (bucket + 1) * 64`:
    /// `(group u64, applied u64, time u64)` each, in group order.
    ///
    /// Why shared: a record per group was one store write per group per loop turn, a third of a
    /// node's memtable inserts under a cluster's write load. (Nodes written before keep `appliedKey`
    /// records; `openGroup` reads them and the next turn moves them here.)
    static func appliedBucketKey(_ bucket: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 24)
        writer.write(StorageLayout.metaPrefix)
        writer.writeRest(Array("applied-groups/".utf8))
        writer.write(bucket)
        return writer.bytes
    }

    /// `group`'s applied index and time as the store holds them (nil: never recorded), and whether
    /// they come from a record of the earlier layout (one per group).
    func storedApplied(_ group: GroupID) throws(StorageError) -> (index: LogIndex, time: Int64, isLegacy: Bool)? {
        let key = Self.appliedBucketKey(group.rawValue / Self.appliedBucketGroups)
        if let bytes = try keyspace.store.get(key) {
            // Guessing 0 would apply every entry a second time (INCR, APPEND): refuse to start instead.
            guard bytes.count % 24 == 0 else {
                throw .corruptRecord(key: key, reason: "\(bytes.count) bytes, expected a multiple of 24")
            }
            var reader = ByteReader(bytes)
            for _ in 0..<(bytes.count / 24) {
                let member = (try? reader.readUInt64("group")) ?? 0
                let index = (try? reader.readUInt64("applied")) ?? 0
                let time = (try? reader.readUInt64("applied time")) ?? 0
                if member == group.rawValue { return (LogIndex(rawValue: index), Int64(bitPattern: time), false) }
            }
        }
        guard let bytes = try keyspace.store.get(Self.appliedKey(group)) else { return nil }
        guard bytes.count == 16 else {
            throw .corruptRecord(key: Self.appliedKey(group), reason: "\(bytes.count) bytes, expected 16")
        }
        var reader = ByteReader(bytes)
        let index = (try? reader.readUInt64("applied")) ?? 0
        let time = (try? reader.readUInt64("applied time")) ?? 0
        return (LogIndex(rawValue: index), Int64(bitPattern: time), true)
    }

    /// Starts this node's member of `group` from storage; `isNew`: a member just created, which has
    /// applied nothing (whatever an earlier member's record, not yet rewritten, may still say).
    mutating func openGroup(_ group: GroupID, partition: Int?, isNew: Bool = false) throws(StorageError) {
        let storage = KVRaftLog(store: keyspace.store, group: group)
        var applied = LogIndex(rawValue: 0)
        var appliedTime: Int64 = 0
        var isLegacy = false
        if !isNew, let stored = try storedApplied(group) {
            applied = stored.index
            appliedTime = stored.time
            isLegacy = stored.isLegacy
            // An applied index never exceeds the durable log's end (entries are durable before they
            // apply, and compaction and truncation keep every applied one or its snapshot). One above
            // a log that is only a new member's bootstrap belongs to an earlier member of the group:
            // the bootstrap reaches the store at once, the old member's dropping (which rewrites the
            // record) in its batch, and a crash can fall between. The new member has applied nothing.
            // Over any other log it is refused below (`RaftCore.init`): guessing would apply entries
            // twice or skip them.
            if applied.rawValue > 0, (try? storage.lastIndex()) == LogIndex(rawValue: 0) {
                applied = LogIndex(rawValue: 0)
                appliedTime = 0
            }
        }
        let raft: RaftCore
        do {
            raft = try RaftCore(config: raftConfig(group), storage: storage, appliedIndex: applied)
        } catch {
            throw .corruptRecord(key: Self.appliedKey(group), reason: "cannot start group \(group): \(error)")
        }
        groups[group] = HostedGroup(raft: raft, partition: partition, appliedTime: appliedTime)
        groups[existing: group].openedApplied = (applied, appliedTime)
        if isNew || (isLegacy && !raft.isRestorePending) {
            // Recorded in this turn's batch, in its bucket (replacing a record of the earlier layout).
            appliedGroups.insert(group)
            keyspace.appendRaw([.delete(key: Self.appliedKey(group))])
        }
        groupOrder = []
    }

    /// Creates storage for a new member of `group` with `configuration` and opens it.
    mutating func createGroup(_ group: GroupID, partition: Int?, configuration: ConfigurationState) {
        // Any earlier copy of the group (dropped, its deletion maybe not durable yet) is wiped first, so
        // the new member starts from nothing: no old log, hard state or applied index.
        let range = KVRaftLog.range(of: group)
        let mutations: [StorageMutation] =
            [.deleteRange(start: range.start, end: range.end), .delete(key: Self.appliedKey(group))]
            + KVRaftLog.bootstrap(configuration, group: group)
        // The core reads its bootstrap from the store, so it must be there now: pending writes are not.
        // The dropping of an earlier copy here is durable by now (`syncHostedGroups` waits for it);
        // the bootstrap also goes in the open batch, so the batch that holds the group's first entries
        // holds it too.
        keyspace.appendRaw(mutations)
        do {
            try keyspace.store.apply([StorageBatch(sequence: BatchSequence(0), mutations: mutations)], sync: false)
            try openGroup(group, partition: partition, isNew: true)
        } catch {
            preconditionFailure("cannot create group \(group): \(error)")
        }
        hostedGroupsChanged = true
    }

    // MARK: Stepping

    mutating func stepGroup(_ group: GroupID, _ input: RaftInput, into output: inout NodeOutput) {
        guard groups.contains(group) else { return }
        if groups[existing: group].isQuiet, Self.wakes(input, groups[existing: group].raft) { wake(group) }
        let result = groups[existing: group].raft.step(input)
        handle(result, group: group, into: &output)
    }

    mutating func handle(_ result: RaftOutput, group: GroupID, into output: inout NodeOutput) {
        if !result.writes.isEmpty {
            keyspace.appendRaw(KVRaftLog.mutations(for: result.writes, group: group))
            let sequence = keyspace.openBatch.sequence
            if let last = result.writes.entries.last {
                raftPersists.modify(sequence, default: [:]) { $0[group] = (last.index, last.term) }
            } else if let snapshot = result.writes.snapshot, raftPersists[sequence]?[group] == nil {
                // A snapshot never replaces the report of entries written in the same batch: a
                // compaction's index is below them, and reporting it instead would leave the leader's
                // own copy of those entries uncounted. (Installing a snapshot sets the core's
                // durable index itself.)
                raftPersists.modify(sequence, default: [:]) {
                    $0[group] = (snapshot.metadata.index, snapshot.metadata.term)
                }
            }
            raftWriteGates[group] = sequence
            if let hard = result.writes.hardState,
                raftTermGates[group].map({ $0.term != hard.term || $0.vote != hard.vote }) ?? true
            {
                raftTermGates[group] = (sequence, hard.term, hard.vote)
            }
        }
        for message in result.messages { sendRaft(message, group: group) }
        if let snapshot = result.snapshotToRestore { restore(snapshot, group: group, into: &output) }
        applyingDepth += 1
        for entry in result.committed { apply(entry, group: group, into: &output) }
        applyingDepth -= 1
        // Commands re-sent while entries were being applied go out only now: dispatching one may step
        // this group again, and nothing may be read before every committed entry is applied.
        sendDeferredRedispatches(into: &output)
        for read in result.reads {
            if let waiter = groups[existing: group].reads.removeValue(forKey: read.request) {
                groups[existing: group].readyReads.append((max(read.index, waiter.minimumIndex), waiter))
            }
        }
        for reply in result.replies { handle(reply, group: group, into: &output) }
        if result.isSnapshotWanted { snapshotWanted(group, into: &output) }
        serveReadyReads(group, into: &output)
        sendDeferredRedispatches(into: &output)
    }

    /// Sends again the commands whose entries were replaced by another leader's, once no committed
    /// entry is being applied (dispatching one may step a group again).
    mutating func sendDeferredRedispatches(into output: inout NodeOutput) {
        guard applyingDepth == 0, !deferredRedispatches.isEmpty else { return }
        let waiting = deferredRedispatches
        deferredRedispatches = []
        for (waiter, partition) in waiting { redispatch(waiter, partition: partition, hint: nil, into: &output) }
    }

    mutating func handle(_ reply: RaftReply, group: GroupID, into output: inout NodeOutput) {
        if let waiters = groups[existing: group].proposals.removeValue(forKey: reply.request) {
            switch reply.outcome {
            case .appended(let index, let term):
                stats.proposals += UInt64(waiters.count)
                if let earlier = groups[existing: group].appended.updateValue((term, waiters), forKey: index),
                    earlier.term != term
                {
                    // This node proposed at `index` before, as leader of an earlier term, and that entry
                    // was replaced by another leader's (so it never committed: Leader Completeness);
                    // now it leads again and reuses the index. The earlier commands are sent again.
                    for waiter in earlier.waiters { deferredRedispatches.append((waiter, partition(ofGroup: group))) }
                }
            case .notLeader(let hint):
                for waiter in waiters {
                    redispatch(waiter, partition: partition(ofGroup: group), hint: hint, into: &output)
                }
            case .rejected(.transferInProgress), .rejected(.leadershipLost):
                // Not appended, so not applied: safe to send again once the new leader is known.
                for waiter in waiters {
                    redispatch(waiter, partition: partition(ofGroup: group), hint: nil, into: &output)
                }
            case .rejected(let reason):
                for waiter in waiters { finish(waiter, error: "TRYAGAIN \(reason)", into: &output) }
            case .transferStarted:
                break
            }
        } else if let waiter = groups[existing: group].reads.removeValue(forKey: reply.request) {
            switch reply.outcome {
            case .notLeader(let hint):
                redispatch(waiter, partition: partition(ofGroup: group), hint: hint, into: &output)
            case .rejected(.transferInProgress), .rejected(.leadershipLost):
                redispatch(waiter, partition: partition(ofGroup: group), hint: nil, into: &output)
            case .rejected(let reason):
                finish(waiter, error: "TRYAGAIN \(reason)", into: &output)
            case .appended, .transferStarted:
                break
            }
        }
    }

    /// Sends a group's raft message: once the group's term and vote are durable, and if it speaks of the
    /// node's durable state (a vote, an acknowledged entry or snapshot), once every Raft write the group
    /// made so far is durable (see `RaftCore`'s contract). Held messages are released batch by batch,
    /// oldest first.
    mutating func sendRaft(_ message: OutboundMessage, group: GroupID) {
        // A message waits for all the group's writes if it speaks of them, else only for its term and vote.
        let gate = message.message.requiresDurability ? raftWriteGates[group] : raftTermGates[group]?.batch
        if let gate, gate > keyspace.durableThrough {
            heldMessages.modify(gate, default: []) { $0.append(message) }
        } else {
            dispatchRaft(message)
        }
    }

    /// The shell made batches through `sequence` durable: tell the groups whose entries they carried,
    /// and release the messages that waited for them.
    mutating func raftPersisted(through sequence: BatchSequence, into output: inout NodeOutput) {
        // Older messages first: they were produced before whatever the groups send now.
        for (_, messages) in heldMessages.removeThrough(sequence) {
            for message in messages { dispatchRaft(message) }
        }
        for (_, persists) in raftPersists.removeThrough(sequence) {
            for (group, last) in persists {
                stepGroup(group, .persisted(through: last.index, term: last.term), into: &output)
            }
        }
    }

    // MARK: Applying

    mutating func apply(_ entry: Entry, group: GroupID, into output: inout NodeOutput) {
        var replies: [RESPValue] = []
        var metaReply: MetaReply?
        switch entry.kind {
        case .empty:
            break
        case .configuration:
            hostedGroupsChanged = true
        case .command(let bytes):
            if group == Self.metaGroup {
                metaReply = applyMeta(bytes, into: &output)
            } else {
                replies = applyData(bytes, group: group, into: &output)
            }
        }
        appliedGroups.insert(group)
        groups[existing: group].appliedWrites += UInt64(max(1, replies.count))
        guard let pending = groups[existing: group].appended.removeValue(forKey: entry.index) else { return }
        guard pending.term == entry.term else {
            // Another leader's entry took this index: ours was never applied and never will be (a
            // command is proposed once), so its commands are sent again.
            for waiter in pending.waiters { deferredRedispatches.append((waiter, partition(ofGroup: group))) }
            return
        }
        // A batch that could not be decoded has one reply, its error, for all its writes.
        let fallback: RESPValue = replies.count == 1 && replies[0].isError ? replies[0] : .ok
        for (position, waiter) in pending.waiters.enumerated() where waiter.origin != .answered {
            if case .joiner(let addresses) = waiter.origin, case .nodeAdded(let id) = metaReply {
                enqueue(.joined(id, metaState!), to: addresses.peer)
            } else if position < replies.count {
                stats.raftCommitLatency.observe(
                    Double(now.monotonicNanoseconds &- waiter.startedAt) / 1e9,
                    buckets: MetricFamily.latencyBucketsSeconds)
                finish(waiter, replies[position], into: &output)
            } else {
                finish(waiter, fallback, into: &output)
            }
        }
    }

    /// Applies a partition group's entry; the replies of its commands, in order.
    mutating func applyData(_ bytes: [UInt8], group: GroupID, into output: inout NodeOutput) -> [RESPValue] {
        let command: ReplicatedCommand
        do {
            command = try ReplicatedCommand.decode(bytes)
        } catch {
            output.logs.append(
                NodeLog(.error, "undecodable entry skipped", [("group", "\(group)"), ("error", "\(error)")]))
            return [.error("ERR undecodable entry: \(error)")]
        }
        keyspace.deletesExpired = true
        applyingPartition = partition(ofGroup: group)
        defer {
            keyspace.deletesExpired = false
            applyingPartition = nil
        }
        switch command {
        case .command(let time, let arguments):
            return [applyCommand(arguments, time: time, group: group, into: &output)]
        case .batch(let time, let commands):
            return commands.map { applyCommand($0, time: time, group: group, into: &output) }
        case .expire(let time, let key, let expiresAt):
            let now = max(time, groups[existing: group].appliedTime)
            groups[existing: group].appliedTime = now
            groups[existing: group].expiring.remove(ByteKey(key))
            do {
                try keyspace.expire(key, indexedAt: expiresAt, now: now)
            } catch {
                output.logs.append(NodeLog(.error, "expiry failed", [("error", error.description)]))
            }
            return [.ok]
        }
    }

    /// Applies one client command of a committed entry, at the entry's time (never before the group's
    /// last applied time).
    mutating func applyCommand(_ arguments: [[UInt8]], time: Int64, group: GroupID, into output: inout NodeOutput)
        -> RESPValue
    {
        let now = max(time, groups[existing: group].appliedTime)
        groups[existing: group].appliedTime = now
        guard let spec = CommandTable.lookup(arguments[0]) else { return .error("ERR unknown replicated command") }
        // Checked where the client sent it; a corrupt entry must not index past its words.
        guard spec.accepts(argumentCount: arguments.count) else {
            return .error(CommandError.wrongArity(command: spec.name).description)
        }
        var closeAfter = false
        do {
            if spec.name == "idempotent" { return try applyIdempotent(arguments, group: group, now: now) }
            return try execute(spec, arguments, client: nil, nowMilliseconds: now, closeAfter: &closeAfter)
        } catch .storage(let failure) {
            // Skipping a committed entry would leave this replica different from the others for good.
            output.fatal = "could not read storage while applying an entry of group \(group): \(failure)"
            return .error(CommandError.storage(failure).description)
        } catch {
            return .error(error.description)
        }
    }

    /// Proposes the writes `group` accepted since the last flush as one entry: one Raft step, log
    /// write and apply pass for all of them instead of one each (per-entry work was most of a SET's
    /// cost on the loop and storage threads, measured with callgrind). A single write keeps its own
    /// entry kind.
    mutating func flushProposals(_ group: GroupID, into output: inout NodeOutput) {
        guard groups.contains(group), !groups[existing: group].unproposed.isEmpty else { return }
        let waiters = groups[existing: group].unproposed
        groups[existing: group].unproposed = []
        groups[existing: group].unproposedBytes = 0
        let time = now.unixMilliseconds
        let entry =
            waiters.count == 1
            ? ReplicatedCommand.command(time: time, arguments: waiters[0].arguments)
            : ReplicatedCommand.batch(time: time, commands: waiters.map(\.arguments))
        let request = RequestID(rawValue: nextRequestID())
        groups[existing: group].proposals[request] = waiters
        stepGroup(group, .propose(entry.encoded(), request: request), into: &output)
    }

    /// Flushes every group's unproposed writes (at the end of a loop turn).
    mutating func flushAllProposals(into output: inout NodeOutput) {
        guard !groupsWithUnproposed.isEmpty else { return }
        let waiting = groupsWithUnproposed
        groupsWithUnproposed = []
        for group in waiting { flushProposals(group, into: &output) }
    }

    /// Serves the reads whose index the state machine has reached.
    mutating func serveReadyReads(_ group: GroupID, into output: inout NodeOutput) {
        guard groups.contains(group), !groups[existing: group].readyReads.isEmpty else { return }
        let applied = groups[existing: group].raft.lastAppliedIndex
        let reads = groups[existing: group].readyReads
        groups[existing: group].readyReads.removeAll(keepingCapacity: true)
        var waiting: [(index: LogIndex, waiter: Waiter)] = []
        for read in reads {
            if read.index <= applied {
                serveLocally(read.waiter, into: &output)
            } else {
                waiting.append(read)
            }
        }
        if !waiting.isEmpty, groups.contains(group) {
            groups[existing: group].readyReads.append(contentsOf: waiting)
        }
    }

    /// The partition a hosted group replicates (nil for the meta group or a group not hosted).
    func partition(ofGroup group: GroupID) -> Int? {
        groups.contains(group) ? groups[existing: group].partition : nil
    }

    /// Runs a read command against this node's state, as of now.
    mutating func serveLocally(_ waiter: Waiter, into output: inout NodeOutput) {
        // The waiter's command is the table entry of its first argument (a part of a split command
        // keeps its command's entry, and its first argument names the same command).
        let spec = CommandTable.commands[waiter.command]
        var closeAfter = false
        let reply: RESPValue
        do {
            reply = try execute(
                spec, waiter.arguments, client: nil, nowMilliseconds: now.unixMilliseconds, closeAfter: &closeAfter)
        } catch {
            reply = .error(error.description)
        }
        finish(waiter, reply, into: &output)
    }

    /// Writes the applied indexes and apply times of the buckets of changed (applied, opened or
    /// dropped) groups into the open batch, with the data those entries wrote: after a crash, each
    /// group re-applies exactly what the store does not hold.
    mutating func recordAppliedIndexes() {
        guard !appliedGroups.isEmpty else { return }
        let buckets = Set(appliedGroups.map { $0.rawValue / Self.appliedBucketGroups })
        for bucket in buckets.sorted() {
            var writer = ByteWriter(capacity: 24 * 8)
            let first = bucket * Self.appliedBucketGroups
            for raw in first..<(first + Self.appliedBucketGroups) {
                let group = GroupID(rawValue: raw)
                guard groups.contains(group) else { continue }
                // A neighbour in the bucket may not have restored its snapshot yet: its stored state
                // is still what it opened with.
                let applied: (index: LogIndex, time: Int64) =
                    groups[existing: group].raft.isRestorePending
                    ? groups[existing: group].openedApplied
                    : (groups[existing: group].raft.lastAppliedIndex, groups[existing: group].appliedTime)
                writer.write(raw)
                writer.write(applied.index.rawValue)
                writer.write(UInt64(bitPattern: applied.time))
            }
            let key = Self.appliedBucketKey(bucket)
            keyspace.appendRaw(
                [writer.bytes.isEmpty ? .delete(key: key) : .put(key: key, value: writer.bytes)], needsSync: false)
        }
        appliedGroups.removeAll(keepingCapacity: true)
    }
}
