import CairnCore

extension RaftCore {
    // MARK: Proposals

    /// Appends a client command if this node leads and is not handing leadership over (thesis §3.10).
    /// Many proposals that arrive while a follower's window is full go out together in one append.
    mutating func propose(_ command: [UInt8], request: RequestID, into output: inout RaftOutput) {
        guard let state = leaderState else {
            output.replies.append(RaftReply(request: request, outcome: .notLeader(leaderHint: leader)))
            return
        }
        if let transfer = state.transfer {
            reject(request, .transferInProgress(to: transfer.target), &output)
            return
        }
        guard command.count <= Limits.raftEntryBytesMax else {
            reject(request, .entryTooLarge(bytes: command.count, limit: Limits.raftEntryBytesMax), &output)
            return
        }
        for entry in appendLocally([.command(command)], into: &output) {
            output.replies.append(RaftReply(request: request, outcome: .appended(index: entry.index, term: entry.term)))
        }
        broadcastAppends(into: &output)
    }

    private func reject(_ request: RequestID, _ reason: RaftRejection, _ output: inout RaftOutput) {
        output.replies.append(RaftReply(request: request, outcome: .rejected(reason)))
    }

    // MARK: Reads

    /// ReadIndex (thesis §6.4): remember the commit index, confirm leadership with a round of heartbeats
    /// acknowledged by a quorum, then let the read proceed at that index. A leader that has not yet
    /// committed an entry of its own term does not know the latest commit index, so the read waits.
    mutating func readIndex(request: RequestID, into output: inout RaftOutput) {
        guard let state = leaderState else {
            output.replies.append(RaftReply(request: request, outcome: .notLeader(leaderHint: leader)))
            return
        }
        guard state.pendingReads.count + state.readsAwaitingCommit.count < config.pendingReadsMax else {
            reject(request, .tooManyPendingReads(limit: config.pendingReadsMax), &output)
            return
        }
        if commitIndex < state.termStartIndex {
            leaderState?.readsAwaitingCommit.append(request)
            return
        }
        queueRead(request, into: &output)
    }

    /// Serves a read on the lease, or queues it behind the next confirmation round. At most one round
    /// is out at a time; reads that arrive meanwhile share the next one (batching).
    mutating func queueRead(_ request: RequestID, into output: inout RaftOutput) {
        guard let state = leaderState else { return }
        if isLeaseValid() || config._injectedBug == .readWithoutReadIndex {
            output.reads.append(ReadResult(request: request, index: commitIndex))
            return
        }
        leaderState?.pendingReads.append(
            PendingRead(request: request, index: commitIndex, sequence: state.sequence + 1))
        if state.readRoundSequence == nil {
            leaderState?.readRoundSequence = state.sequence + 1
            broadcastHeartbeats(isScheduled: false, into: &output)
        }
        releaseConfirmedReads(into: &output)
    }

    /// Lets every read through whose round a quorum acknowledged, and starts the next round if reads
    /// that arrived later are still waiting.
    mutating func releaseConfirmedReads(into output: inout RaftOutput) {
        guard let state = leaderState, !state.pendingReads.isEmpty else { return }
        let confirmed = confirmedSequence(state)
        var waiting: [PendingRead] = []
        for read in state.pendingReads {
            if read.sequence <= confirmed {
                output.reads.append(ReadResult(request: read.request, index: read.index))
            } else {
                waiting.append(read)
            }
        }
        leaderState?.pendingReads = waiting
        if let round = state.readRoundSequence, round <= confirmed { leaderState?.readRoundSequence = nil }
        if leaderState?.readRoundSequence == nil, let first = waiting.first {
            leaderState?.readRoundSequence = first.sequence
            broadcastHeartbeats(isScheduled: false, into: &output)
        }
    }

    /// The index a read may be served at right now, with no confirmation round and no lease: the
    /// commit index, when this node leads, has committed an entry of its own term, transfers no
    /// leadership, and is the only voter of every configuration in force, so no other node can be
    /// elected. Nil otherwise: the read goes through `readIndex`. (Exactly what `readIndex` would
    /// release at once; a query, so the application can skip the request when it holds.)
    public var immediateReadIndex: LogIndex? {
        // Field by field, not `guard let state = leaderState` and `voters == [config.id]`: a copy of the
        // leader state and two arrays per read were most of a one-node GET's cost here (perf).
        guard let termStart = leaderState?.termStartIndex, leaderState?.transfer == nil, commitIndex >= termStart,
            config._injectedBug != .readWithoutReadIndex, configuration.isOnlyVoter(config.id)
        else { return nil }
        return commitIndex
    }

    /// The highest append sequence a quorum has acknowledged (this node counts as having seen them all).
    private func confirmedSequence(_ state: LeaderState) -> UInt64 {
        let me = config.id
        return configuration.quorumValue { node in
            node == me ? UInt64.max : state.progress[node]?.acknowledgedSequence ?? 0
        }
    }

    /// Whether the leader lease holds (thesis §6.4.1): a quorum acknowledged heartbeats sent less than
    /// `electionTicksMin − leaseClockDriftTicks − 1` ticks ago (one more tick for tick rounding), so with
    /// CheckQuorum's stickiness no other leader can have been elected since.
    func isLeaseValid() -> Bool {
        guard config.leaseReads, let state = leaderState, state.transfer == nil, !state.isLeaseForfeited else {
            return false
        }
        let confirmed = confirmedSequence(state)
        if confirmed == UInt64.max { return true }  // Alone in the group: nobody else can be elected.
        guard let sent = state.sequenceTicks.last(where: { $0.sequence <= confirmed }) else { return false }
        let leaseTicks = UInt64(config.electionTicksMin - config.leaseClockDriftTicks - 1)
        return ticks < sent.tick + leaseTicks
    }

    // MARK: Storage completions

    /// Records that entries through `index` are durable. The leader may now count itself for them.
    mutating func persisted(through index: LogIndex, term entryTerm: Term, into output: inout RaftOutput) {
        guard index > durableIndex, log.term(at: index) == entryTerm else { return }
        durableIndex = index
        maybeCommit(into: &output)
    }

    /// Adopts the application's snapshot (Raft §7): save it, drop the entries it covers.
    mutating func snapshotCreated(index: LogIndex, data: [UInt8], into output: inout RaftOutput) {
        guard index > snapshot.metadata.index else { return }  // An older snapshot than ours: nothing to gain.
        precondition(
            index <= appliedIndex,
            "node \(config.id): the application snapshotted \(index) beyond what it was given to apply (\(appliedIndex))"
        )
        guard let entryTerm = log.term(at: index) else {
            preconditionFailure("node \(config.id): snapshot index \(index) is not in the log")
        }
        let configurationThere = log.configuration(atOrBefore: index) ?? snapshot.metadata.configuration
        let created = Snapshot(
            metadata: SnapshotMetadata(index: index, term: entryTerm, configuration: configurationThere), data: data)
        log.compact(through: index, term: entryTerm)
        snapshot = created
        output.writes.snapshot = created
    }

    // MARK: Membership

    /// Appends a configuration entry for `change` (thesis §4.1, §4.3). Refused while another change is
    /// uncommitted or before the leader commits an entry of its own term: the single-server change
    /// algorithm is only safe with both rules (Ongaro, raft-dev, 2015).
    mutating func changeMembership(_ change: MembershipChange, request: RequestID, into output: inout RaftOutput) {
        guard let state = leaderState else {
            output.replies.append(RaftReply(request: request, outcome: .notLeader(leaderHint: leader)))
            return
        }
        if let transfer = state.transfer {
            reject(request, .transferInProgress(to: transfer.target), &output)
            return
        }
        guard commitIndex >= state.termStartIndex else {
            reject(request, .noEntryCommittedInTerm, &output)
            return
        }
        guard configurationIndex <= commitIndex, !configuration.isJoint else {
            reject(request, .configurationChangePending(index: configurationIndex), &output)
            return
        }
        let next: ConfigurationState
        do {
            next = try configuration.applying(change)
        } catch {
            reject(request, error, &output)
            return
        }
        for entry in appendLocally([.configuration(next)], into: &output) {
            output.replies.append(RaftReply(request: request, outcome: .appended(index: entry.index, term: entry.term)))
        }
        broadcastAppends(into: &output)
    }

    // MARK: Leadership transfer

    /// Starts handing leadership to `target` (thesis §3.10): stop taking proposals, bring the target's
    /// log up to date, then send it TimeoutNow. Aborts after an election timeout (see `tickLeader`).
    mutating func transferLeadership(to target: NodeID, request: RequestID, into output: inout RaftOutput) {
        guard let state = leaderState else {
            output.replies.append(RaftReply(request: request, outcome: .notLeader(leaderHint: leader)))
            return
        }
        guard target != config.id, configuration.isVoter(target), state.progress[target] != nil else {
            reject(request, .invalidTransferTarget(target), &output)
            return
        }
        if state.transfer?.target != target {
            leaderState?.transfer = Transfer(target: target, elapsedTicks: 0, isTimeoutSent: false)
        }
        output.replies.append(RaftReply(request: request, outcome: .transferStarted))
        continueTransfer(to: target, into: &output)
        sendAppends(to: target, into: &output)
    }
}

extension ConfigurationState {
    /// The configuration after `change`, or why the change is not allowed.
    func applying(_ change: MembershipChange) throws(RaftRejection) -> ConfigurationState {
        let result: ConfigurationState
        switch change {
        case .addLearner(let node):
            guard !isMember(node) else { throw .invalidMembershipChange("node \(node) is already a member") }
            result = ConfigurationState(voters: voters, learners: learners + [node])
        case .promoteLearner(let node):
            guard learners.contains(node) else { throw .invalidMembershipChange("node \(node) is not a learner") }
            result = ConfigurationState(voters: voters + [node], learners: learners.filter { $0 != node })
        case .remove(let node):
            guard isMember(node) else { throw .invalidMembershipChange("node \(node) is not a member") }
            result = ConfigurationState(voters: voters.filter { $0 != node }, learners: learners.filter { $0 != node })
        case .replaceVoters(let newVoters):
            guard Set(newVoters) != Set(voters) else {
                throw .invalidMembershipChange("voters are already \(Render.nodes(voters))")
            }
            result = ConfigurationState(
                voters: newVoters, learners: learners.filter { !newVoters.contains($0) }, outgoingVoters: voters)
        }
        guard !result.voters.isEmpty else { throw .invalidMembershipChange("a group needs at least one voter") }
        guard result.members.count <= Limits.raftMembersMax else {
            throw .invalidMembershipChange("more than \(Limits.raftMembersMax) members")
        }
        return result
    }
}
