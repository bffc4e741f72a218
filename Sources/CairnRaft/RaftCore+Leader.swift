import CairnCore

extension RaftCore {
    // MARK: Leader time

    /// A leader's tick: abort a transfer that took too long, check the quorum, send heartbeats.
    mutating func tickLeader(into output: inout RaftOutput) {
        heartbeatElapsed += 1
        electionElapsed += 1
        if var transfer = leaderState?.transfer {
            transfer.elapsedTicks += 1
            // Thesis §3.10: abort once an election timeout passes, so proposals are not refused forever.
            leaderState?.transfer = transfer.elapsedTicks >= config.electionTicksMin ? nil : transfer
        }
        if electionElapsed >= config.electionTicksMin {
            electionElapsed = 0
            // CheckQuorum (thesis §6.2): a leader cut off from a quorum steps down, so clients go elsewhere.
            if config.checkQuorum && !isQuorumRecentlyActive() {
                counters.quorumLossStepDowns += 1
                becomeFollower(term: term, leader: nil, into: &output)
                return
            }
            for node in leaderState?.progress.keys.sorted() ?? [] {
                leaderState?.progress[node]?.isRecentlyActive = false
            }
        }
        if heartbeatElapsed >= config.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeats(isScheduled: true, into: &output)
        }
        if config.learnerBytesPerTick > 0 {
            // Each tick pays off one allowance of every learner's bytes and sends what it then allows.
            for node in configuration.learners {
                guard let unpaid = leaderState?.progress[node]?.unpaidBytes else { continue }
                leaderState?.progress[node]?.unpaidBytes = max(0, unpaid - config.learnerBytesPerTick)
                sendAppends(to: node, into: &output)
            }
        }
    }

    /// Whether appends to `node` from `progress.next` are held to `RaftConfig.learnerBytesPerTick`: a
    /// learner's backlog (`Progress.pacedThrough`) is.
    private func isPaced(_ node: NodeID, _ progress: Progress) -> Bool {
        config.learnerBytesPerTick > 0 && progress.next <= progress.pacedThrough
            && configuration.learners.contains(node)
    }

    private func isQuorumRecentlyActive() -> Bool {
        var active: Set<NodeID> = [config.id]
        for (node, progress) in leaderState?.progress ?? [:] where progress.isRecentlyActive { active.insert(node) }
        return configuration.isQuorum(active)
    }

    // MARK: Appending

    /// Appends entries of the leader's term to its own log (lane 1) and adopts any configuration among
    /// them at once (thesis §4.1). Returns the new entries.
    @discardableResult
    mutating func appendLocally(_ kinds: [Entry.Kind], into output: inout RaftOutput) -> [Entry] {
        precondition(role == .leader, "node \(config.id) term \(term): only a leader appends its own entries")
        var appended: [Entry] = []
        for kind in kinds {
            let entry = Entry(term: term, index: log.lastIndex.next, kind: kind)
            log.append([entry])
            appended.append(entry)
            if case .configuration(let configuration) = kind { adoptConfiguration(configuration, at: entry.index) }
        }
        output.writes.entries.append(contentsOf: appended)
        return appended
    }

    /// Makes `newConfiguration` the one in force; a leader starts or stops tracking members.
    mutating func adoptConfiguration(_ newConfiguration: ConfigurationState, at index: LogIndex) {
        configuration = newConfiguration
        configurationIndex = index
        guard var state = leaderState else { return }
        let members = Set(newConfiguration.members)
        for node in state.progress.keys.sorted() where !members.contains(node) {
            state.progress[node] = nil
        }
        for node in newConfiguration.members where node != config.id && state.progress[node] == nil {
            state.progress[node] = Progress(match: 0, next: log.lastIndex.next, pacedThrough: log.lastIndex)
        }
        if let target = state.transfer?.target, !members.contains(target) { state.transfer = nil }
        leaderState = state
    }

    // MARK: Sending

    /// Sends whatever each follower can take now, in node order.
    mutating func broadcastAppends(into output: inout RaftOutput) {
        for node in leaderState?.progress.keys.sorted() ?? [] {
            sendAppends(to: node, into: &output)
        }
    }

    /// Sends appends to one follower as its flow-control state allows: one probe at a time, or a window
    /// of up to `inflightAppendsMax` pipelined appends, each at most `appendBytesMax` bytes of entries;
    /// to a learner, no more than `learnerBytesPerTick` allows.
    mutating func sendAppends(to node: NodeID, into output: inout RaftOutput) {
        guard var progress = leaderState?.progress[node] else { return }
        switch progress.state {
        case .snapshot, .snapshotWanted:
            break
        case .probe:
            if !progress.isProbeSent { sendAppend(&progress, to: node, into: &output) }
        case .replicate:
            while progress.state == .replicate && progress.inflight.count < config.inflightAppendsMax
                && progress.next <= log.lastIndex
                && (!isPaced(node, progress) || progress.unpaidBytes < config.learnerBytesPerTick)
            {
                sendAppend(&progress, to: node, into: &output)
            }
        }
        leaderState?.progress[node] = progress
    }

    /// Sends one append starting at `progress.next`, or switches to sending a snapshot if the entry
    /// before it was compacted away (Raft §7).
    private mutating func sendAppend(_ progress: inout Progress, to node: NodeID, into output: inout RaftOutput) {
        let previous = progress.next.previous
        guard let previousTerm = log.term(at: previous) else {
            progress.inflight.removeAll()
            startSnapshot(&progress, to: node, into: &output)
            return
        }
        let isPaced = isPaced(node, progress)
        let bytesMax =
            isPaced
            ? min(config.appendBytesMax, max(1, config.learnerBytesPerTick - progress.unpaidBytes))
            : config.appendBytesMax
        let entries = log.entries(from: progress.next, bytesMax: bytesMax)
        if isPaced, progress.state == .replicate {
            // A larger entry than the allowance goes alone; the debt is at most one append's worth.
            let bytes = entries.reduce(0) { $0 + $1.sizeBytes }
            progress.unpaidBytes = min(
                progress.unpaidBytes + bytes, max(config.learnerBytesPerTick, config.appendBytesMax, bytes))
        }
        let append = AppendEntries(
            previousIndex: previous, previousTerm: previousTerm, entries: entries, commit: commitIndex,
            sequence: nextSequence())
        send(.appendEntries(append), to: node, into: &output)
        switch progress.state {
        case .probe:
            progress.isProbeSent = true
        case .replicate:
            if let last = entries.last {
                progress.next = last.index.next
                progress.inflight.append(last.index)
            }
        case .snapshot, .snapshotWanted:
            break
        }
    }

    /// A probe's entries are sent again after this many heartbeats without an answer (100 ms at the
    /// default 2-tick heartbeat); heartbeats in between carry an empty probe.
    static let probeResendHeartbeats = 5
    /// An unanswered snapshot chunk is sent again after this many heartbeats (60 ms by default: less
    /// than the shortest election timeout, so a voter receiving a snapshot hears from its leader).
    static let snapshotResendHeartbeats = 3

    /// Heartbeats to every follower (§5.2). They also retry probes and snapshot chunks, notice pipelined
    /// appends that were lost, and confirm leadership for reads.
    mutating func broadcastHeartbeats(isScheduled: Bool, into output: inout RaftOutput) {
        for node in leaderState?.progress.keys.sorted() ?? [] {
            guard var progress = leaderState?.progress[node] else { continue }
            switch progress.state {
            case .probe:
                if progress.isProbeSent, progress.probeHeartbeats < Self.probeResendHeartbeats,
                    let previousTerm = log.term(at: progress.next.previous)
                {
                    // The probe is out and not answered yet: ask again where the logs agree, without its
                    // entries (the answer moves the follower on, and an empty probe costs nothing).
                    progress.probeHeartbeats += 1
                    let probe = AppendEntries(
                        previousIndex: progress.next.previous, previousTerm: previousTerm, entries: [],
                        commit: commitIndex, sequence: nextSequence())
                    send(.appendEntries(probe), to: node, into: &output)
                } else {
                    progress.probeHeartbeats = 0
                    progress.isProbeSent = false
                    sendAppend(&progress, to: node, into: &output)
                }
            case .snapshot:
                // The chunk out is sent again only every few heartbeats without an answer (each answer
                // sends the next chunk at once): often enough to keep the follower from campaigning,
                // rarely enough not to send a slow follower the same 256 KiB every 20 ms.
                if isScheduled {
                    progress.probeHeartbeats += 1
                    // Never so rarely that the gap reaches the shortest election timeout.
                    let limit = max(
                        1, min(Self.snapshotResendHeartbeats, (config.electionTicksMin - 1) / config.heartbeatTicks))
                    if progress.probeHeartbeats >= limit {
                        progress.probeHeartbeats = 0
                        sendSnapshotChunk(&progress, to: node, into: &output)
                    }
                }
            case .snapshotWanted:
                startSnapshot(&progress, to: node, into: &output)
            case .replicate:
                if isScheduled { noticeStall(&progress) }
                if progress.state == .replicate, let matchTerm = log.term(at: progress.match) {
                    let heartbeat = AppendEntries(
                        previousIndex: progress.match, previousTerm: matchTerm, entries: [], commit: commitIndex,
                        sequence: nextSequence())
                    send(.appendEntries(heartbeat), to: node, into: &output)
                } else {
                    progress.becomeProbe(next: progress.match.next)
                    sendAppend(&progress, to: node, into: &output)
                }
            }
            leaderState?.progress[node] = progress
        }
        releaseOutgoingSnapshotIfUnused()
    }

    /// Two heartbeats in a row with appends in flight and no progress mean they were lost: probe again.
    private func noticeStall(_ progress: inout Progress) {
        if progress.inflight.isEmpty || progress.match != progress.matchAtHeartbeat {
            progress.stalledHeartbeats = 0
        } else {
            progress.stalledHeartbeats += 1
        }
        progress.matchAtHeartbeat = progress.match
        if progress.stalledHeartbeats >= 2 { progress.becomeProbe(next: progress.match.next) }
    }

    /// The next append sequence number, remembering the tick of the first one sent in each tick (leases).
    private mutating func nextSequence() -> UInt64 {
        guard var state = leaderState else { return 0 }
        state.sequence += 1
        if state.sequenceTicks.last?.tick != ticks {
            state.sequenceTicks.append((state.sequence, ticks))
            let horizon = ticks > UInt64(2 * config.electionTicksMin) ? ticks - UInt64(2 * config.electionTicksMin) : 0
            state.sequenceTicks.removeAll { $0.tick < horizon }
        }
        leaderState = state
        return state.sequence
    }

    // MARK: Responses

    /// Updates a follower's progress from its answer (§5.3), then commits, confirms reads, continues a
    /// transfer and sends more, as the answer allows.
    mutating func handleAppendResponse(
        _ response: AppendEntriesResponse, from node: NodeID, into output: inout RaftOutput
    ) {
        guard var progress = leaderState?.progress[node] else {
            counters.staleMessages += 1
            return
        }
        progress.isRecentlyActive = true
        progress.probeHeartbeats = 0
        progress.acknowledgedSequence = max(progress.acknowledgedSequence, response.sequence)
        var isAdvanced = false
        if response.success {
            isAdvanced = response.matchIndex > progress.match
            progress.match = max(progress.match, min(response.matchIndex, log.lastIndex))
            progress.next = max(progress.next, progress.match.next)
            progress.inflight.removeAll { $0 <= progress.match }
            switch progress.state {
            case .probe:
                progress.state = .replicate
                progress.isProbeSent = false
                progress.inflight.removeAll()
            case .snapshot(let index, _) where progress.match >= index:
                progress.becomeProbe(next: progress.match.next)
            case .snapshotWanted where progress.match >= log.snapshotIndex:
                // It had the entry the log starts after (a keep-alive matched): appends can go on.
                progress.becomeProbe(next: progress.match.next)
            default:
                break
            }
        } else {
            backtrack(&progress, response)
        }
        leaderState?.progress[node] = progress
        if isAdvanced { maybeCommit(into: &output) }
        releaseConfirmedReads(into: &output)
        continueTransfer(to: node, into: &output)
        sendAppends(to: node, into: &output)
    }

    /// Moves `next` back after a rejection, using the follower's conflict hint to skip a whole diverging
    /// suffix at once (§5.3 optimization). Stale rejections (already superseded) change nothing.
    private func backtrack(_ progress: inout Progress, _ response: AppendEntriesResponse) {
        switch progress.state {
        case .replicate:
            // The logs agreed through `match`; an optimistic append was lost or reordered.
            guard response.rejectedIndex > progress.match else { return }
            progress.becomeProbe(next: progress.match.next)
        case .probe:
            guard response.rejectedIndex == progress.next.previous else { return }
            let (hint, _) = log.lastIndex(atOrBelow: response.conflictIndex, withTermAtMost: response.conflictTerm)
            progress.becomeProbe(next: min(response.rejectedIndex, hint.next))
        case .snapshot, .snapshotWanted:
            break
        }
    }

    /// Commits the largest index a quorum has stored, but only by counting entries of the current term
    /// (§5.4.2, Figure 8): older entries commit indirectly when a current-term entry after them does.
    mutating func maybeCommit(into output: inout RaftOutput) {
        guard let state = leaderState else { return }
        let me = config.id
        let durable = durableIndex.rawValue
        let quorumMatch = configuration.quorumValue { node in
            node == me ? durable : state.progress[node]?.match.rawValue ?? 0
        }
        var quorumIndex = LogIndex(min(quorumMatch, log.lastIndex.rawValue))
        if config._injectedBug == .commitWithoutQuorum { quorumIndex = max(quorumIndex, durableIndex) }
        guard quorumIndex > commitIndex, log.term(at: quorumIndex) == term else { return }
        commitIndex = quorumIndex
        afterCommit(into: &output)
    }

    /// What a leader does when its commit index moves: serve reads that waited for the term's first
    /// commit, leave joint consensus (thesis §4.3), or step down once its own removal commits (§4.2.2).
    private mutating func afterCommit(into output: inout RaftOutput) {
        guard let state = leaderState else { return }
        if commitIndex >= state.termStartIndex && !state.readsAwaitingCommit.isEmpty {
            leaderState?.readsAwaitingCommit = []
            for request in state.readsAwaitingCommit { queueRead(request, into: &output) }
        }
        guard configurationIndex <= commitIndex else { return }
        if configuration.isJoint {
            let final = ConfigurationState(voters: configuration.voters, learners: configuration.learners)
            appendLocally([.configuration(final)], into: &output)
            broadcastAppends(into: &output)
        } else if !configuration.isVoter(config.id) {
            becomeFollower(term: term, leader: nil, into: &output)
        }
    }

    // MARK: Snapshots

    /// The snapshot a follower whose next entry is compacted away can be sent now: the log's own
    /// (compaction point) snapshot, or with `snapshotsOnDemand` the one the application prepared, as long
    /// as the log still holds its index (the follower goes on from the entry after it). Nil: ask for one.
    var snapshotToSend: Snapshot? {
        guard config.snapshotsOnDemand else { return snapshot }
        guard let prepared = leaderState?.outgoingSnapshot, prepared.metadata.index >= log.snapshotIndex else {
            return nil
        }
        return prepared
    }

    /// Starts sending a snapshot to a follower whose next entry is compacted away (Raft §7): at once if
    /// one is at hand, else once the application has prepared one (`snapshotsOnDemand`), meanwhile
    /// keeping the follower from campaigning with an empty append from the log's start, which it
    /// refuses (or accepts, if it has that entry after all: then appends go on from there).
    mutating func startSnapshot(_ progress: inout Progress, to node: NodeID, into output: inout RaftOutput) {
        if let sendable = snapshotToSend {
            progress.state = .snapshot(index: sendable.metadata.index, offset: 0)
            sendSnapshotChunk(&progress, to: node, into: &output)
            return
        }
        progress.state = .snapshotWanted
        output.isSnapshotWanted = true
        let keepAlive = AppendEntries(
            previousIndex: log.snapshotIndex, previousTerm: log.snapshotTerm, entries: [], commit: commitIndex,
            sequence: nextSequence())
        send(.appendEntries(keepAlive), to: node, into: &output)
    }

    /// Sends the chunk of the snapshot to send at the follower's offset (Raft §7), restarting from zero
    /// if a newer snapshot replaced the one it was receiving.
    mutating func sendSnapshotChunk(_ progress: inout Progress, to node: NodeID, into output: inout RaftOutput) {
        guard case .snapshot(let index, let offset) = progress.state else { return }
        guard let sending = snapshotToSend else {
            // The prepared snapshot fell behind the log's compaction point: a newer one is needed.
            startSnapshot(&progress, to: node, into: &output)
            return
        }
        let data = sending.data
        let start = index == sending.metadata.index ? min(offset, data.count) : 0
        progress.state = .snapshot(index: sending.metadata.index, offset: start)
        let end = min(start + config.snapshotChunkBytesMax, data.count)
        let chunk = SnapshotChunk(
            metadata: sending.metadata, totalBytes: data.count, offset: start, data: Array(data[start..<end]),
            isLast: end == data.count)
        send(.installSnapshot(chunk), to: node, into: &output)
    }

    /// Takes the snapshot the application prepared (`snapshotsOnDemand`) and starts sending it to every
    /// follower waiting for one. One the log no longer holds is dropped; heartbeats ask for a newer one.
    mutating func snapshotPrepared(index: LogIndex, data: [UInt8], into output: inout RaftOutput) {
        // Prepared while leader, for this leadership or an earlier one: only a leader sends snapshots.
        guard config.snapshotsOnDemand, leaderState != nil, index <= appliedIndex, index >= log.snapshotIndex,
            let entryTerm = log.term(at: index)
        else { return }
        let configurationThere = log.configuration(atOrBefore: index) ?? snapshot.metadata.configuration
        leaderState?.outgoingSnapshot = Snapshot(
            metadata: SnapshotMetadata(index: index, term: entryTerm, configuration: configurationThere), data: data)
        for node in leaderState?.progress.keys.sorted() ?? [] {
            guard var progress = leaderState?.progress[node], progress.state == .snapshotWanted else { continue }
            startSnapshot(&progress, to: node, into: &output)
            leaderState?.progress[node] = progress
        }
    }

    /// Drops the prepared snapshot once no follower receives or waits for one: it holds a partition's
    /// whole state in memory.
    mutating func releaseOutgoingSnapshotIfUnused() {
        guard leaderState?.outgoingSnapshot != nil else { return }
        let isInUse =
            leaderState?.progress.values.contains { progress in
                switch progress.state {
                case .snapshot, .snapshotWanted: true
                case .probe, .replicate: false
                }
            } ?? false
        if !isInUse { leaderState?.outgoingSnapshot = nil }
    }

    /// Advances a snapshot transfer from the follower's answer; when complete, resumes appends after it.
    mutating func handleSnapshotResponse(
        index: LogIndex, receivedBytes: Int, isComplete: Bool, from node: NodeID, into output: inout RaftOutput
    ) {
        guard var progress = leaderState?.progress[node] else {
            counters.staleMessages += 1
            return
        }
        progress.isRecentlyActive = true
        progress.probeHeartbeats = 0
        guard case .snapshot(let sending, _) = progress.state, sending == index else {
            counters.staleMessages += 1
            leaderState?.progress[node] = progress
            return
        }
        if isComplete {
            progress.match = max(progress.match, min(index, log.lastIndex))
            progress.becomeProbe(next: progress.match.next)
            leaderState?.progress[node] = progress
            maybeCommit(into: &output)
            continueTransfer(to: node, into: &output)
            sendAppends(to: node, into: &output)
            releaseOutgoingSnapshotIfUnused()
        } else {
            // Stop-and-wait: the answer names the offset the follower wants next (the same one again if
            // the chunk was refused), so a lost or corrupt chunk is simply sent again.
            progress.state = .snapshot(index: index, offset: receivedBytes)
            sendSnapshotChunk(&progress, to: node, into: &output)
            leaderState?.progress[node] = progress
        }
    }

    // MARK: Transfer

    /// Sends TimeoutNow once the transfer target's log matches ours (thesis §3.10).
    mutating func continueTransfer(to node: NodeID, into output: inout RaftOutput) {
        guard var transfer = leaderState?.transfer, transfer.target == node, !transfer.isTimeoutSent,
            let progress = leaderState?.progress[node], progress.match == log.lastIndex
        else { return }
        transfer.isTimeoutSent = true
        leaderState?.transfer = transfer
        leaderState?.isLeaseForfeited = true
        send(.timeoutNow, to: node, into: &output)
    }
}
