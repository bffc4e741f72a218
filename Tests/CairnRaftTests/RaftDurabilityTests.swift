import CairnCore
import Testing

@testable import CairnRaft

@Suite("Raft durability contract (Figure 2 persistent state)")
struct RaftDurabilityTests {
    @Test("Figure 2: a granted vote is in the durable-writes lane of the very output that sends it")
    func voteIsDurableBeforeResponse() throws {
        var core = try Fixture.core(2)
        let output = core.step(.received(Fixture.vote(4), from: 1))
        #expect(output.writes.hardState == HardState(term: 4, vote: 1, commit: 0))
        #expect(output.messages.map(\.message) == [Fixture.granted(4)])
    }

    @Test("Figure 2: a follower's new entries are in the durable-writes lane of the output that acknowledges them")
    func entriesDurableBeforeAck() throws {
        var core = try Fixture.core(2)
        let entries = [Entry(term: 1, index: 1, kind: .empty)]
        let append = AppendEntries(previousIndex: 0, previousTerm: 0, entries: entries, commit: 0, sequence: 1)
        let output = core.step(.received(Fixture.message(1, .appendEntries(append)), from: 1))
        #expect(output.writes.entries == entries)
        #expect(output.writes.hardState == HardState(term: 1, vote: nil, commit: 0))
        #expect(output.messages.count == 1)
    }

    /// Method: the messages that speak of a node's own durable state (votes, acknowledgements) must wait
    /// for the writes; the ones that do not (a leader's appends and heartbeats, snapshot chunks,
    /// TimeoutNow, pre-votes) may leave at once. And in practice: the output that acknowledges new
    /// entries carries them as writes and its one message requires durability.
    @Test("contract: which messages must wait for durable writes, and which may leave at once")
    func whichMessagesWait() throws {
        let append = AppendEntries(previousIndex: 0, previousTerm: 0, entries: [], commit: 0, sequence: 1)
        let waits: [(RaftMessage.Kind, Bool)] = [
            (.requestVote(lastLogIndex: 0, lastLogTerm: 0, isPreVote: false, isTransfer: false), true),
            (.requestVote(lastLogIndex: 0, lastLogTerm: 0, isPreVote: true, isTransfer: false), false),
            (.requestVoteResponse(granted: true, isPreVote: false), true),
            (.requestVoteResponse(granted: true, isPreVote: true), false),
            (.appendEntries(append), false),
            (.installSnapshotResponse(snapshotIndex: 1, receivedBytes: 0, isComplete: true), true),
            (.timeoutNow, false),
        ]
        for (kind, expected) in waits {
            #expect(RaftMessage(group: 1, term: 1, kind: kind).requiresDurability == expected, "\(kind)")
        }
        var core = try Fixture.core(2)
        let entries = [Entry(term: 1, index: 1, kind: .empty)]
        let output = core.step(
            .received(
                Fixture.message(
                    1,
                    .appendEntries(
                        AppendEntries(
                            previousIndex: 0, previousTerm: 0, entries: entries, commit: 0, sequence: 1))), from: 1))
        #expect(output.writes.entries == entries)
        #expect(output.messages.allSatisfy { $0.message.requiresDurability })
        var voter = try Fixture.core(2)
        let vote = voter.step(.received(Fixture.vote(4), from: 1))
        #expect(vote.messages.map { $0.message.requiresDurability } == [true])
    }

    @Test("thesis §10.2.1: a single-voter leader commits only once its entries are reported persisted")
    func leaderCountsItselfOnlyWhenDurable() throws {
        var core = try Fixture.core(1, voters: [1])
        _ = Fixture.tickUntilRoleChanges(&core)
        #expect(core.role == .leader)
        #expect(core.commitIndex == 0)
        let proposal = core.step(.propose(Array("x".utf8), request: 1))
        #expect(proposal.committed.isEmpty)
        let output = core.step(.persisted(through: 2, term: 1))
        #expect(core.commitIndex == 2)
        #expect(output.committed.map(\.index) == [1, 2])
        #expect(output.writes.hardState == nil, "a commit index change alone is not saved")
    }

    /// Method: a single-voter leader with `applyBytesMax` 10,000 commits ten 4,000-byte commands at once.
    /// Each step must hand over at most 10,000 bytes (at least one entry), in order, and `.applyCommitted`
    /// must hand over the rest; on a follower, `.applyCommitted` must never start an election.
    @Test("committed entries are handed over at most applyBytesMax per step; .applyCommitted gets the rest")
    func applyIsBoundedPerStep() throws {
        var core = try Fixture.core(1, voters: [1]) { $0.applyBytesMax = 10_000 }
        _ = Fixture.tickUntilRoleChanges(&core)
        #expect(core.role == .leader)
        for request in 1...10 {
            _ = core.step(.propose(Array(repeating: 7, count: 4000), request: RequestID(rawValue: UInt64(request))))
        }
        var applied: [LogIndex] = []
        var output = core.step(.persisted(through: 11, term: 1))
        #expect(core.commitIndex == 11)
        var steps = 0
        while true {
            #expect(!output.committed.isEmpty)
            let bytes = output.committed.reduce(0) { $0 + $1.sizeBytes }
            #expect(output.committed.count == 1 || bytes <= 10_000, "\(bytes) bytes in one step")
            applied += output.committed.map(\.index)
            steps += 1
            guard core.hasUnappliedEntries, steps < 20 else { break }
            output = core.step(.applyCommitted)
        }
        #expect(applied == (1...11).map { LogIndex(rawValue: $0) })
        #expect(steps >= 5, "ten 4,000-byte entries need at least five steps of 10,000 bytes")
        #expect(core.step(.applyCommitted).committed.isEmpty)

        var follower = try Fixture.core(2)
        for _ in 0..<100 { _ = follower.step(.applyCommitted) }
        #expect(follower.role == .follower && follower.term == 0, "applyCommitted moved a timer")
    }

    @Test("a restart knows committed what its application applied, though the saved commit index is older")
    func restartCommitsWhatWasApplied() throws {
        // Saved: entries 1...4, commit 1 (commit advances are not saved); the application applied 3.
        let storage = Fixture.storage(
            voters: [1, 2, 3], terms: [1, 1, 1, 1], hardState: HardState(term: 1, commit: 1))
        let core = try RaftCore(config: Fixture.config(1), storage: storage, appliedIndex: 3)
        #expect(core.commitIndex == 3)
        #expect(core.lastAppliedIndex == 3, "nothing applied is applied again")
        let empty = try RaftCore(config: Fixture.config(1), storage: storage)
        #expect(empty.commitIndex == 1, "an application that keeps nothing re-applies only the saved commit")
        #expect(throws: RaftStartError.self) {
            try RaftCore(config: Fixture.config(1), storage: storage, appliedIndex: 5)
        }
    }

    @Test("thesis §10.2.1: a persisted report for an entry that was replaced since (other term) is ignored")
    func stalePersistedIgnored() throws {
        var core = try Fixture.core(1, voters: [1])
        _ = Fixture.tickUntilRoleChanges(&core)
        _ = core.step(.persisted(through: 1, term: 7))
        #expect(core.commitIndex == 0)
    }

    @Test("Figure 2, §5.1: a restarted core recovers term, vote, log and configuration from storage alone")
    func restartRecoversEverything() {
        var cluster = RaftCluster(size: 3)
        cluster.elect(1)
        for request in 0..<4 as Range<UInt64> {
            cluster.step(1, .propose(Array("k\(request)".utf8), request: RequestID(rawValue: request)))
        }
        cluster.deliverAll()
        cluster.tickAll()
        cluster.deliverAll()
        let before = cluster.cores[2]
        cluster.crash(2)
        cluster.restart(2)
        let after = cluster.cores[2]
        #expect(after?.term == before?.term)
        #expect(after?.vote == before?.vote)
        #expect(after?.entries == before?.entries)
        // The commit index is saved only with term and vote changes: a lower bound, relearned from
        // the leader.
        #expect((after?.commitIndex ?? 0) <= (before?.commitIndex ?? 0))
        #expect(after?.configuration == before?.configuration)
        #expect(after?.role == .follower)
        // Its empty state machine is rebuilt from the committed log once the leader's next append
        // says how far that is.
        cluster.tickAll()
        cluster.deliverAll()
        #expect(cluster.cores[2]?.commitIndex == before?.commitIndex)
        #expect(cluster.machines[2] == ["k0", "k1", "k2", "k3"])
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("§7: a restarted core that already applied entries durably is not asked to apply them again")
    func restartWithAppliedIndex() throws {
        var storage = Fixture.storage(
            voters: [1, 2, 3], terms: [1, 1, 1], hardState: HardState(term: 1, vote: 1, commit: 3))
        var core = try RaftCore(config: Fixture.config(1), storage: storage, appliedIndex: 2)
        let output = core.step(.tick)
        #expect(output.committed.map(\.index) == [3])
        #expect(output.snapshotToRestore == nil)
        var writes = DurableWrites()
        writes.hardState = HardState(term: 1, vote: 1, commit: 9)
        storage.apply(writes)
        #expect(throws: RaftStartError.self) { try RaftCore(config: Fixture.config(1), storage: storage) }
    }

    @Test("a corrupt log in storage is a typed start error, not a crash")
    func corruptStorage() {
        struct GappyStorage: RaftLogStorage {
            func hardState() -> HardState { HardState(term: 2) }
            func snapshot() -> Snapshot { .bootstrap(ConfigurationState(voters: [1])) }
            func lastIndex() -> LogIndex { 3 }
            func entries(from start: LogIndex, through end: LogIndex) -> [Entry] {
                [Entry(term: 1, index: 1, kind: .empty), Entry(term: 1, index: 3, kind: .empty)]
            }
        }
        #expect(throws: RaftStartError.self) { try RaftCore(config: Fixture.config(1), storage: GappyStorage()) }
    }
}

@Suite("Raft configuration validation")
struct RaftConfigTests {
    @Test("invalid settings are refused with a message naming the field, the value and the rule")
    func validationMessages() {
        let cases: [(RaftConfig, String)] = [
            (
                RaftConfig(id: 1, electionTicksMin: 5, heartbeatTicks: 5),
                "electionTicksMin (5) must be greater than heartbeatTicks (5); 10× is typical"
            ),
            (RaftConfig(id: 0), "id (0) must not be 0; node IDs start at 1"),
            (RaftConfig(id: 1, heartbeatTicks: 0), "heartbeatTicks (0) must be at least 1"),
            (RaftConfig(id: 1, inflightAppendsMax: 0), "inflightAppendsMax (0) must be in 1...256"),
            (
                RaftConfig(id: 1, checkQuorum: false, leaseReads: true),
                "leaseReads needs checkQuorum: without it, followers may elect a new leader during a lease"
            ),
        ]
        for (config, message) in cases {
            #expect(throws: RaftConfigError.invalid(message)) { try config.validate() }
        }
        #expect(throws: Never.self) { try RaftConfig(id: 1).validate() }
    }

    @Test("a core refuses to start with an invalid config")
    func coreRefusesInvalidConfig() {
        #expect(throws: RaftStartError.self) {
            try RaftCore(
                config: RaftConfig(id: 1, electionTicksMin: 1),
                storage: MemoryRaftLog(bootstrap: ConfigurationState(voters: [1])))
        }
    }
}
