import CairnCore
import CairnRaft

extension Simulation {
    // MARK: Stepping a core

    /// Feeds one input to a live node's core, checks what changed, and hands the output to the disk.
    func step(_ node: SimNode, _ input: RaftInput) {
        guard node.core != nil else { return }
        steps += 1
        let roleBefore = node.core?.role
        let termBefore = node.core?.term
        let commitBefore = node.core?.commitIndex ?? 0
        guard let output = node.core?.step(input), let core = node.core else { return }
        if core.role != roleBefore || core.term != termBefore {
            trace.record(nowMs, "n\(node.id) \(roleBefore.map(\.description) ?? "-") -> \(core.role) term=\(core.term)")
            if core.role == .leader && roleBefore != .leader {
                checker.noteNewLeader(core, timeMs: nowMs)
                scheduleCrashAfterVote(node)
            }
        }
        if !output.writes.entries.isEmpty { checker.noteWritten(output.writes.entries, by: core, timeMs: nowMs) }
        if core.commitIndex > commitBefore { checker.noteCommitted(by: core, from: commitBefore, timeMs: nowMs) }
        if let snapshot = output.writes.snapshot {
            trace.record(nowMs, "n\(node.id) save \(snapshot)")
        }
        handle(output, of: node)
    }

    /// Sends an output to the disk, or carries it out now if it writes nothing and nothing is ahead of it.
    ///
    /// With `ackBeforeFsync` injected, the output is carried out at once and only its writes wait for
    /// the disk: acknowledgements leave before the entries they promise are durable.
    private func handle(_ output: RaftOutput, of node: SimNode) {
        if bug == .ackBeforeFsync {
            if !output.writes.isEmpty { enqueue(output.writes, output: nil, at: node) }
            carryOut(output, of: node)
            return
        }
        if node.pendingDiskCount == 0 && output.writes.isEmpty {
            carryOut(output, of: node)
            return
        }
        let latency = output.writes.isEmpty ? 0 : diskPrng.within(0...options.diskLatencyMsMax)
        if latency == 0 && node.pendingDiskCount == 0 {
            node.durable.apply(output.writes)
            carryOut(output, of: node)
            return
        }
        enqueue(output.writes, output: output, at: node, latencyMs: latency)
    }

    private func enqueue(_ writes: DurableWrites, output: RaftOutput?, at node: SimNode, latencyMs: UInt64? = nil) {
        let latency = latencyMs ?? diskPrng.within(0...options.diskLatencyMsMax)
        let ready = max(node.diskReadyMs, nowMs + latency)
        node.diskReadyMs = ready
        node.disk.append(SimNode.DiskItem(readyMs: ready, writes: writes, output: output))
        queue.push(.diskDone(node: node.position, incarnation: node.incarnation), at: ready)
    }

    /// Batches whose fsync completed: make them durable, then carry out the outputs that waited for them.
    func diskDone(_ node: SimNode, incarnation: Int) {
        guard node.isUp, node.incarnation == incarnation else { return }
        while let item = node.popDurable(nowMs: nowMs) {
            node.durable.apply(item.writes)
            if let output = item.output { carryOut(output, of: node) }
            guard node.isUp, node.incarnation == incarnation else { return }
        }
    }

    /// Carries out lanes 2 to 5 of an output whose writes are durable (lane 1), in lane order, then
    /// reports durability to the core and takes a snapshot if one is due.
    private func carryOut(_ output: RaftOutput, of node: SimNode) {
        for outbound in output.messages {
            send(outbound.message, from: node.position, to: Int(outbound.to.rawValue) - 1)
            if case .requestVoteResponse(true, false) = outbound.message.kind { scheduleCrashAfterVote(node) }
        }
        // Remember proposals before applying, so that one committed in this same output is answered.
        for reply in output.replies {
            if case .appended(let index, let term) = reply.outcome {
                node.proposals[index] = SimNode.Proposal(request: reply.request, term: term)
            }
        }
        if let snapshot = output.snapshotToRestore { restore(snapshot, at: node) }
        for entry in output.committed { apply(entry, at: node) }
        for read in output.reads {
            let floor = node.clientRecords[read.request]?.readFloor ?? 0
            if checksReadFreshness {
                checker.noteRead(index: read.index, floor: floor, node: node.id, request: read.request, timeMs: nowMs)
            }
            node.waitingReads.append(read)
        }
        serveReads(at: node)
        for reply in output.replies {
            switch reply.outcome {
            case .notLeader(let hint):
                answer(reply.request, at: node, .failed(leaderHint: hint))
            case .rejected:
                answer(reply.request, at: node, .failed(leaderHint: nil))
            case .appended, .transferStarted:
                break
            }
        }
        if let last = output.writes.entries.last {
            step(node, .persisted(through: last.index, term: last.term))
        }
        if node.isUp && node.appliedIndex.rawValue >= node.snapshotIndex.rawValue + UInt64(options.snapshotEntriesMin) {
            node.snapshotIndex = node.appliedIndex
            step(node, .snapshotCreated(index: node.appliedIndex, data: node.machine.snapshotData()))
        }
    }

    /// The BUGGIFY site for votes: a node that just granted a vote, or just won an election with its own,
    /// may crash at once and reboot within `rebootMsMax`, while requests of the same term are in flight.
    private func scheduleCrashAfterVote(_ node: SimNode) {
        guard isFaulty, faultPrng.chance(options.crashAfterVotePermille) else { return }
        let downtime = faultPrng.within(0...options.rebootMsMax)
        queue.push(.crashNode(node: node.position, downtimeMs: downtime), at: nowMs + faultPrng.within(0...3))
    }

    // MARK: The state machine

    private func restore(_ snapshot: Snapshot, at node: SimNode) {
        let index = snapshot.metadata.index
        node.machine = KVStateMachine(snapshot: snapshot.data)
        node.appliedIndex = index
        node.snapshotIndex = index
        if index > 0 { snapshotsInstalled += 1 }
        trace.record(nowMs, "n\(node.id) restore \(snapshot)")
        checker.noteRestored(index: index, node: node.id, digest: node.machine.digest, timeMs: nowMs)
        // Proposals the snapshot covers were applied elsewhere; this node cannot tell their results, so
        // their clients time out (outcome unknown).
        for index in node.proposals.keys.sorted() where index <= node.appliedIndex {
            if let proposal = node.proposals.removeValue(forKey: index) {
                node.clientRecords[proposal.request] = nil
            }
        }
    }

    private func apply(_ entry: Entry, at node: SimNode) {
        guard entry.index == node.appliedIndex.next else {
            checker.report(
                .stateMachineSafety, timeMs: nowMs, "node \(node.id) got \(entry) to apply after \(node.appliedIndex)")
            return
        }
        node.appliedIndex = entry.index
        var result = KVStateMachine.Result.done
        if case .command(let bytes) = entry.kind {
            guard let command = KVCommand(decoding: bytes) else {
                preconditionFailure("node \(node.id): entry \(entry) is not a command the simulator proposed")
            }
            result = node.machine.apply(command)
            trace.record(nowMs, "n\(node.id) apply \(entry.index)@\(entry.term) \(command) -> \(result)")
        }
        checker.noteApplied(entry, node: node.id, digest: node.machine.digest, timeMs: nowMs)
        guard let proposal = node.proposals.removeValue(forKey: entry.index) else { return }
        guard proposal.term == entry.term else {
            // Another leader's entry took this index: the proposal never will (Log Matching).
            answer(proposal.request, at: node, .failed(leaderHint: node.core?.leader))
            return
        }
        acknowledgedIndexMax = max(acknowledgedIndexMax, entry.index)
        switch result {
        case .done: answer(proposal.request, at: node, .done)
        case .swapped(let swapped): answer(proposal.request, at: node, .swapped(swapped))
        }
    }

    private func serveReads(at node: SimNode) {
        guard !node.waitingReads.isEmpty else { return }
        var waiting: [ReadResult] = []
        for read in node.waitingReads {
            guard read.index <= node.appliedIndex else {
                waiting.append(read)
                continue
            }
            guard let record = node.clientRecords[read.request] else { continue }
            answer(read.request, at: node, .value(node.machine.read(record.key)))
        }
        node.waitingReads = waiting
    }

    // MARK: Client requests at a node

    func receive(_ request: ClientRequest, at node: SimNode) {
        guard node.isUp else { return }
        let floor = checker.committedIndexMax
        node.clientRecords[request.request] = SimNode.ClientRecord(
            client: request.client, key: request.key, readFloor: floor)
        if let command = request.command {
            step(node, .propose(command.encoded(), request: request.request))
        } else {
            step(node, .readIndex(request: request.request))
        }
    }

    /// Sends a client its answer, over the network's delay (client links are not faulty).
    private func answer(_ request: RequestID, at node: SimNode, _ result: ClientResult) {
        guard let record = node.clientRecords.removeValue(forKey: request) else { return }
        let delay = networkPrng.within(options.messageDelayMsMin...options.messageDelayMsMax)
        queue.push(.response(client: record.client - 1, request: request, result: result), at: nowMs + delay)
    }

    // MARK: Crashes and restarts

    /// Starts (or restarts) a node from its durable storage alone; its state machine starts empty and
    /// the core hands it the snapshot and committed entries to rebuild from.
    func restart(_ node: SimNode) {
        if bug == .forgetVoteOnRestart && node.incarnation > 0 {
            var writes = DurableWrites()
            let saved = node.durable.hardState()
            writes.hardState = HardState(term: saved.term, vote: nil, commit: saved.commit)
            node.durable.apply(writes)
        }
        let config = options.raftConfig(id: node.id, incarnation: node.incarnation, bug: bug)
        do {
            node.core = try RaftCore(config: config, storage: node.durable)
        } catch {
            checker.report(.recovery, timeMs: nowMs, "node \(node.id) cannot restart: \(error)")
            return
        }
        node.snapshotIndex = node.durable.snapshot().metadata.index
        node.diskReadyMs = nowMs
        let core = node.core
        trace.record(
            nowMs,
            "n\(node.id) start term=\(core?.term ?? 0) vote=\(core?.vote.map(\.description) ?? "none")"
                + " last=\(core?.lastIndex ?? 0) commit=\(core?.commitIndex ?? 0)")
    }

    func crash(_ node: SimNode, kind: FaultKind = .crash) {
        let lost = node.crash(nowMs: nowMs)
        faults.add(kind)
        if lost > 0 { faults.add(.lostWrites, lost) }
        trace.record(nowMs, "n\(node.id) CRASH (\(lost) write batches lost)")
    }
}
