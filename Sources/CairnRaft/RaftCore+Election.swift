import CairnCore

extension RaftCore {
    // MARK: Time

    /// One tick: leaders send heartbeats and check their quorum; others count toward an election.
    mutating func tick(into output: inout RaftOutput) {
        ticks += 1
        if role == .leader {
            tickLeader(into: &output)
            return
        }
        electionElapsed += 1
        if electionElapsed >= randomizedElectionTicks && isPromotable {
            campaign(isPreVote: config.preVote, isTransfer: false, into: &output)
        }
    }

    /// Whether this node may stand for election: it is a voter in its latest configuration, or that
    /// configuration is not known to be committed and it was a voter in the one before.
    ///
    /// Why the second case: if a leader appends a configuration that removes itself and then fails, the
    /// nodes holding that entry would otherwise never campaign, while the voters that lack it can never
    /// win their votes (§5.4.1), and the group would be stuck. Counting votes by the latest configuration,
    /// as every server does (thesis §4.1), keeps such an election safe; the winner commits the entry and
    /// then steps down (§4.2.2).
    var isPromotable: Bool {
        if configuration.isVoter(config.id) { return true }
        guard configurationIndex > commitIndex else { return false }
        let previous = log.configuration(atOrBefore: configurationIndex.previous) ?? snapshot.metadata.configuration
        return previous.isVoter(config.id)
    }

    /// A fresh election timeout drawn uniformly from `[electionTicksMin, 2 × electionTicksMin)` (§5.2),
    /// so that split votes are rare and resolve quickly.
    mutating func drawElectionTimeout() -> Int {
        config.electionTicksMin + prng.below(config.electionTicksMin)
    }

    /// Changes role, crashing on a transition the protocol never makes (see the type comment).
    mutating func transition(to newRole: RaftRole) {
        let isLegal: Bool
        switch (role, newRole) {
        case (_, .follower): isLegal = true
        case (.follower, .preCandidate), (.preCandidate, .preCandidate), (.candidate, .preCandidate): isLegal = true
        case (.follower, .candidate), (.preCandidate, .candidate), (.candidate, .candidate): isLegal = true
        case (.candidate, .leader): isLegal = true
        default: isLegal = false
        }
        precondition(isLegal, "node \(config.id) term \(term): invalid transition \(role) -> \(newRole)")
        role = newRole
    }

    // MARK: Becoming

    /// Follows `leader` (if known) in `newTerm`. Adopting a larger term forgets the vote (§5.1). A leader
    /// stepping down answers everything it was holding, so no client waits forever.
    mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID?, into output: inout RaftOutput) {
        precondition(newTerm >= term, "node \(config.id): becoming follower in older term \(newTerm) < \(term)")
        if newTerm > term {
            term = newTerm
            vote = nil
        }
        if let leaderState {
            for read in leaderState.pendingReads {
                output.replies.append(RaftReply(request: read.request, outcome: .rejected(.leadershipLost)))
            }
            for request in leaderState.readsAwaitingCommit {
                output.replies.append(RaftReply(request: request, outcome: .rejected(.leadershipLost)))
            }
            self.leaderState = nil
        }
        transition(to: .follower)
        leader = newLeader
        votes = [:]
        electionElapsed = 0
        randomizedElectionTicks = drawElectionTimeout()
    }

    /// Starts a pre-election (thesis §9.6) or an election (§5.2). A pre-candidate asks for votes in the
    /// term it *would* use and changes nothing durable; a candidate increments its term and votes for itself.
    mutating func campaign(isPreVote: Bool, isTransfer: Bool, into output: inout RaftOutput) {
        precondition(isPromotable, "node \(config.id): a non-voter cannot campaign")
        counters.campaigns += 1
        if !isPreVote { counters.elections += 1 }
        let electionTerm: Term
        if isPreVote {
            transition(to: .preCandidate)
            electionTerm = term.next
        } else {
            transition(to: .candidate)
            term = term.next
            vote = config.id
            electionTerm = term
        }
        leader = nil
        votes = [config.id: true]
        electionElapsed = 0
        randomizedElectionTicks = drawElectionTimeout()
        if configuration.isQuorum([config.id]) {
            electionWon(into: &output)
            return
        }
        let request = RaftMessage.Kind.requestVote(
            lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm, isPreVote: isPreVote, isTransfer: isTransfer)
        for voter in configuration.allVoters where voter != config.id {
            send(request, to: voter, term: electionTerm, into: &output)
        }
    }

    /// A quorum granted this node's (pre-)votes.
    mutating func electionWon(into output: inout RaftOutput) {
        if role == .preCandidate {
            campaign(isPreVote: false, isTransfer: false, into: &output)
        } else {
            becomeLeader(into: &output)
        }
    }

    /// Takes leadership: starts tracking every follower, and appends an empty entry of its own term, which
    /// lets it commit earlier entries (§5.4.2, §8) and serve reads once committed (thesis §6.4).
    mutating func becomeLeader(into output: inout RaftOutput) {
        transition(to: .leader)
        leader = config.id
        votes = [:]
        electionElapsed = 0
        heartbeatElapsed = 0
        incomingSnapshot = nil
        let start = log.lastIndex.next
        var state = LeaderState(termStartIndex: start)
        for member in configuration.members where member != config.id {
            state.progress[member] = Progress(match: 0, next: start, pacedThrough: log.lastIndex)
        }
        leaderState = state
        appendLocally([.empty], into: &output)
        broadcastAppends(into: &output)
    }

    // MARK: Receiving

    /// Routes a message: term checks first (§5.1), then by kind and role.
    mutating func receive(_ message: RaftMessage, from sender: NodeID, into output: inout RaftOutput) {
        guard message.group == config.group, sender != config.id else {
            counters.staleMessages += 1
            return
        }
        if message.term > term {
            guard adoptNewerTerm(message, from: sender, into: &output) else { return }
        } else if message.term < term {
            answerOlderTerm(message, from: sender, into: &output)
            return
        }
        switch message.kind {
        case .requestVote(let index, let lastTerm, let isPreVote, _):
            handleVoteRequest(message.term, index, lastTerm, isPreVote: isPreVote, from: sender, into: &output)
        case .requestVoteResponse(let granted, let isPreVote):
            handleVoteResponse(message.term, granted: granted, isPreVote: isPreVote, from: sender, into: &output)
        case .appendEntries(let append):
            guard acceptLeader(sender, into: &output) else { return }
            handleAppendEntries(append, from: sender, into: &output)
        case .installSnapshot(let chunk):
            guard acceptLeader(sender, into: &output) else { return }
            handleSnapshotChunk(chunk, from: sender, into: &output)
        case .timeoutNow:
            guard acceptLeader(sender, into: &output) else { return }
            // Thesis §3.10: the target starts an election at once, skipping PreVote, marked as a transfer.
            if isPromotable { campaign(isPreVote: false, isTransfer: true, into: &output) }
        case .appendEntriesResponse(let response):
            handleAppendResponse(response, from: sender, into: &output)
        case .installSnapshotResponse(let index, let received, let isComplete):
            handleSnapshotResponse(
                index: index, receivedBytes: received, isComplete: isComplete, from: sender, into: &output)
        }
    }

    /// Handles a message from a later term. Returns false if the message is to be ignored.
    private mutating func adoptNewerTerm(_ message: RaftMessage, from sender: NodeID, into output: inout RaftOutput)
        -> Bool
    {
        switch message.kind {
        case .requestVote(_, _, let isPreVote, let isTransfer):
            // Leader stickiness (thesis §4.2.3, §9.6): a node that heard from a live leader within the
            // minimum election timeout will not help depose it, unless the leader itself asked (transfer).
            // With leases, a node that just started may have acknowledged a leader before it crashed: it
            // waits out one election timeout before helping elect anyone else (thesis §6.4.1).
            let isRecentlyStarted = config.leaseReads && ticks < UInt64(config.electionTicksMin)
            let isLeaseHeld =
                config.checkQuorum
                && ((leader != nil && electionElapsed < config.electionTicksMin) || isRecentlyStarted)
            if isLeaseHeld && !isTransfer {
                counters.ignoredVoteRequests += 1
                return false
            }
            // A pre-vote changes nobody's term (thesis §9.6).
            if !isPreVote { becomeFollower(term: message.term, leader: nil, into: &output) }
        case .requestVoteResponse(true, true):
            break  // A granted pre-vote carries the term we asked for; we adopt it only by winning.
        case .appendEntries, .installSnapshot, .timeoutNow:
            becomeFollower(term: message.term, leader: sender, into: &output)
        default:
            becomeFollower(term: message.term, leader: nil, into: &output)
        }
        return true
    }

    /// Handles a message from an earlier term: mostly stale, dropped (§5.1). Two kinds get an answer.
    private mutating func answerOlderTerm(_ message: RaftMessage, from sender: NodeID, into output: inout RaftOutput) {
        counters.staleMessages += 1
        switch message.kind {
        case .appendEntries, .installSnapshot:
            guard config.checkQuorum || config.preVote else { return }
            // A leader of an older term is stale, or this node raised its term while partitioned. Either way
            // the answer carries our term: a stale leader steps down, and the group moves on (etcd's rule;
            // with stickiness this node's vote requests alone would be ignored forever).
            let response = AppendEntriesResponse(success: false, matchIndex: 0, sequence: 0)
            send(.appendEntriesResponse(response), to: sender, into: &output)
        case .requestVote(_, _, true, _):
            send(.requestVoteResponse(granted: false, isPreVote: true), to: sender, into: &output)
        default:
            break
        }
    }

    /// A leader of the current term spoke: follow it. Returns false if this node is the leader itself,
    /// which would mean two leaders in one term (Election Safety, §5.2): the message is dropped.
    private mutating func acceptLeader(_ sender: NodeID, into output: inout RaftOutput) -> Bool {
        if role == .leader {
            counters.staleMessages += 1
            return false
        }
        if role != .follower || leader != sender {
            becomeFollower(term: term, leader: sender, into: &output)
        }
        electionElapsed = 0
        return true
    }

    /// Grants or refuses a (pre-)vote (§5.2, §5.4.1; thesis §9.6).
    private mutating func handleVoteRequest(
        _ requestTerm: Term, _ lastIndex: LogIndex, _ lastTerm: Term, isPreVote: Bool, from sender: NodeID,
        into output: inout RaftOutput
    ) {
        // One vote per term, first come first served (§5.2); a repeated request gets the same answer.
        // A pre-vote for a later term promises nothing, so it may be granted whatever our vote is.
        let canVote =
            vote == sender || (vote == nil && leader == nil) || (isPreVote && requestTerm > term)
            || config._injectedBug == .voteTwice
        let isGranted = canVote && log.isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
        if isGranted && !isPreVote {
            vote = sender
            electionElapsed = 0
        }
        let responseTerm = isGranted && isPreVote ? requestTerm : term
        send(
            .requestVoteResponse(granted: isGranted, isPreVote: isPreVote), to: sender, term: responseTerm,
            into: &output)
    }

    /// Counts a (pre-)vote; wins on a quorum, gives up once a quorum is impossible.
    private mutating func handleVoteResponse(
        _ responseTerm: Term, granted: Bool, isPreVote: Bool, from sender: NodeID, into output: inout RaftOutput
    ) {
        // A granted pre-vote names the term it was granted for: one from an earlier pre-election is stale.
        let isCurrent =
            isPreVote ? role == .preCandidate && (!granted || responseTerm == term.next) : role == .candidate
        guard isCurrent else {
            counters.staleMessages += 1
            return
        }
        votes[sender] = granted
        let grantedBy = Set(votes.filter { $0.value }.keys)
        let rejectedBy = Set(votes.filter { !$0.value }.keys)
        if configuration.isQuorum(grantedBy) {
            electionWon(into: &output)
        } else if configuration.isQuorumImpossible(rejectedBy) {
            becomeFollower(term: term, leader: nil, into: &output)
        }
    }

    /// Queues a message stamped with this group and `term` (our current term unless given).
    mutating func send(
        _ kind: RaftMessage.Kind, to node: NodeID, term messageTerm: Term? = nil, into output: inout RaftOutput
    ) {
        let message = RaftMessage(group: config.group, term: messageTerm ?? term, kind: kind)
        output.messages.append(OutboundMessage(to: node, message: message))
    }
}
