import CairnCore
import Testing

@testable import CairnRaft

@Suite("Raft log replication (§5.3, §5.4.2)")
struct RaftReplicationTests {
    @Test("§5.3: a proposal is replicated, committed once a majority stores it, and applied everywhere in order")
    func proposalCommitsEverywhere() {
        var cluster = RaftCluster(size: 3)
        cluster.elect(1)
        cluster.step(1, .propose(Array("x".utf8), request: 1))
        cluster.step(1, .propose(Array("y".utf8), request: 2))
        cluster.deliverAll()
        #expect(cluster.cores[1]?.commitIndex == 3)
        cluster.tickAll()
        cluster.deliverAll()
        for node in cluster.nodes {
            #expect(cluster.machines[node] == ["x", "y"], "node \(node)")
        }
        #expect(
            cluster.replies[1] == [
                RaftReply(request: 1, outcome: .appended(index: 2, term: 1)),
                RaftReply(request: 2, outcome: .appended(index: 3, term: 1)),
            ])
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("§5.3: a follower rejects a proposal with a leader hint")
    func followerRedirects() {
        var cluster = RaftCluster(size: 3)
        cluster.elect(1)
        cluster.step(2, .propose(Array("x".utf8), request: 9))
        #expect(cluster.replies[2] == [RaftReply(request: 9, outcome: .notLeader(leaderHint: 1))])
    }

    @Test("§5.4.2: a leader never commits an entry of an earlier term by counting replicas (Figure 8)")
    func noCommitOfOldTermByCounting() throws {
        // Node 1 holds 1@1 and 2@2 (2@2 was never committed) and wins term 3.
        var core = try Fixture.core(1, terms: [1, 2]) { $0.preVote = false }
        _ = Fixture.tickUntilRoleChanges(&core)
        _ = core.step(.received(Fixture.granted(3), from: 2))
        #expect(core.role == .leader)
        #expect(core.term == 3)
        _ = core.step(.persisted(through: 3, term: 3))
        // A majority stores 2@2, but that alone must not commit it.
        _ = core.step(.received(Fixture.appendSuccess(3, match: 2), from: 2))
        #expect(core.commitIndex == 0)
        // Once the leader's own empty entry 3@3 is on a majority, everything up to it commits.
        let output = core.step(.received(Fixture.appendSuccess(3, match: 3), from: 2))
        #expect(core.commitIndex == 3)
        #expect(output.committed.map(\.index) == [1, 2, 3])
    }

    @Test("§5.3: a follower rejects an append whose previous entry does not match, with a conflict hint")
    func followerRejectsMismatch() throws {
        var core = try Fixture.core(2, terms: [1, 1, 2, 2])
        let append = AppendEntries(previousIndex: 4, previousTerm: 3, entries: [], commit: 0, sequence: 7)
        let output = core.step(.received(Fixture.message(3, .appendEntries(append)), from: 1))
        let expected = AppendEntriesResponse(
            success: false, matchIndex: 0, rejectedIndex: 4, conflictIndex: 4, conflictTerm: 2, sequence: 7)
        #expect(output.messages(to: 1) == [Fixture.message(3, .appendEntriesResponse(expected))])
        #expect(output.writes.entries.isEmpty)
        // A log too short: the hint points at its end.
        let far = AppendEntries(previousIndex: 9, previousTerm: 3, entries: [], commit: 0, sequence: 8)
        let short = core.step(.received(Fixture.message(3, .appendEntries(far)), from: 1))
        guard case .appendEntriesResponse(let response) = short.messages.first?.message.kind else {
            Issue.record("expected a response")
            return
        }
        #expect(response.conflictIndex == 4)
        #expect(!response.success)
    }

    @Test("§5.3: a follower deletes a conflicting suffix and appends the leader's entries, durably")
    func followerTruncatesConflict() throws {
        var core = try Fixture.core(2, terms: [1, 1, 2, 2])
        let entries = [
            Entry(term: 3, index: 3, kind: .command(Array("a".utf8))), Entry(term: 3, index: 4, kind: .empty),
        ]
        let append = AppendEntries(previousIndex: 2, previousTerm: 1, entries: entries, commit: 3, sequence: 1)
        let output = core.step(.received(Fixture.message(3, .appendEntries(append)), from: 1))
        #expect(output.writes.truncateFrom == 3)
        #expect(output.writes.entries == entries)
        #expect(core.entries.map(\.term) == [1, 1, 3, 3])
        #expect(core.commitIndex == 3)
        #expect(output.committed.map(\.index) == [1, 2, 3])
        #expect(
            output.messages(to: 1) == [
                Fixture.message(
                    3, .appendEntriesResponse(AppendEntriesResponse(success: true, matchIndex: 4, sequence: 1)))
            ])
    }

    @Test("§5.3: an append already contained in the log changes nothing (idempotent, reordered delivery)")
    func duplicateAppendIsIdempotent() throws {
        var core = try Fixture.core(2, terms: [1, 1, 1])
        let entries = [Entry(term: 1, index: 2, kind: .command(Array("e2".utf8)))]
        let append = AppendEntries(previousIndex: 1, previousTerm: 1, entries: entries, commit: 0, sequence: 1)
        let output = core.step(.received(Fixture.message(1, .appendEntries(append)), from: 1))
        #expect(output.writes.entries.isEmpty)
        #expect(output.writes.truncateFrom == nil)
        #expect(core.lastIndex == 3, "entries after a matching append are kept")
    }

    @Test("§5.3: fast backtracking: the leader skips a diverging suffix in a few round trips, not one per entry")
    func fastBacktracking() throws {
        // Figure 7 style: the follower has a long suffix of stale terms the leader never had.
        var cluster = RaftCluster(size: 3)
        cluster.storages[1] = Fixture.storage(voters: [1, 2, 3], terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6])
        cluster.storages[2] = Fixture.storage(voters: [1, 2, 3], terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6])
        cluster.storages[3] = Fixture.storage(voters: [1, 2, 3], terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3])
        cluster.crash(1)
        cluster.crash(2)
        cluster.crash(3)
        cluster.restart(1)
        cluster.restart(2)
        cluster.restart(3)
        cluster.transcript = []
        cluster.elect(1)
        cluster.tickAll()
        cluster.deliverAll()
        let rejections = cluster.transcript.filter { $0.hasPrefix("3->1 AppendEntriesResponse rejected") }
        #expect(rejections.count <= 2, "\(rejections)")
        #expect(cluster.cores[3]?.entries.map(\.term) == cluster.cores[1]?.entries.map(\.term))
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test(
        "thesis §10.2.2, pipelining: a leader keeps at most inflightAppendsMax appends in flight to a follower in replicate state"
    )
    func inflightWindowIsBounded() throws {
        var core = try Fixture.leader { $0.inflightAppendsMax = 3 }
        _ = core.step(.received(Fixture.appendSuccess(1, match: 1), from: 2))  // probe → replicate
        var sent = 0
        for request in 0..<10 as Range<UInt64> {
            let output = core.step(.propose(Array("c\(request)".utf8), request: RequestID(rawValue: request)))
            sent += output.appends.filter { $0.to == 2 }.count
        }
        #expect(sent == 3)
        #expect(core.progress(of: 2)?.state == .replicate)
    }

    @Test("thesis §10.2.2, batching: proposals that arrive while the window is full go out together in one append")
    func proposalsBatch() throws {
        var core = try Fixture.leader { $0.inflightAppendsMax = 1 }
        _ = core.step(.received(Fixture.appendSuccess(1, match: 1), from: 2))
        for request in 0..<6 as Range<UInt64> {
            _ = core.step(.propose(Array("c\(request)".utf8), request: RequestID(rawValue: request)))
        }
        let output = core.step(.received(Fixture.appendSuccess(1, match: 2), from: 2))
        let appends = output.appends.filter { $0.to == 2 }
        #expect(appends.count == 1)
        #expect(appends.first?.append.entries.map(\.index) == [3, 4, 5, 6, 7])
    }

    @Test(
        "thesis §10.2.2, flow control: an append carries at most appendBytesMax bytes of entries, but at least one entry"
    )
    func appendBytesBound() throws {
        var core = try Fixture.leader { $0.appendBytesMax = 100 }
        _ = core.step(.received(Fixture.appendSuccess(1, match: 1), from: 2))
        let big = [UInt8](repeating: 7, count: 150)
        let first = core.step(.propose(big, request: 1))
        #expect(first.appends.first { $0.to == 2 }?.append.entries.count == 1, "an entry over the limit goes alone")
        var core2 = try Fixture.leader {
            $0.appendBytesMax = 100
            $0.inflightAppendsMax = 1
        }
        _ = core2.step(.received(Fixture.appendSuccess(1, match: 1), from: 2))
        for request in 0..<8 as Range<UInt64> {
            _ = core2.step(.propose([UInt8](repeating: 1, count: 16), request: RequestID(rawValue: request)))
        }
        let output = core2.step(.received(Fixture.appendSuccess(1, match: 2), from: 2))
        let sizes = output.appends.filter { $0.to == 2 }.map { $0.append.entries.reduce(0) { $0 + $1.sizeBytes } }
        #expect(sizes.count == 1)
        #expect(sizes.allSatisfy { $0 <= 100 })
    }

    @Test("§5.3, lost appends: after two heartbeats without progress the leader probes again and repairs the follower")
    func lostAppendsAreRetried() {
        var cluster = RaftCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll()
        cluster.deliverAll()
        cluster.partition([[1, 2], [3]])
        for request in 0..<5 as Range<UInt64> {
            cluster.step(1, .propose(Array("p\(request)".utf8), request: RequestID(rawValue: request)))
        }
        cluster.deliverAll()  // the appends to 3 are lost
        cluster.heal()
        for _ in 0..<6 {
            cluster.tick(1)
            cluster.deliverAll()
        }
        #expect(cluster.cores[3]?.lastIndex == cluster.cores[1]?.lastIndex)
        #expect(cluster.machines[3] == ["p0", "p1", "p2", "p3", "p4"])
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test(
        "§5.5: a follower that crashes and restarts catches up; failover elects a leader holding every committed entry (§5.4.1)"
    )
    func failover() {
        var cluster = RaftCluster(size: 5)
        cluster.elect(1)
        for request in 0..<3 as Range<UInt64> {
            cluster.step(1, .propose(Array("v\(request)".utf8), request: RequestID(rawValue: request)))
        }
        cluster.deliverAll()
        cluster.crash(1)
        for _ in 0..<60 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        let newLeader = cluster.leader
        #expect(newLeader != nil && newLeader != 1)
        if let newLeader {
            cluster.step(newLeader, .propose(Array("after".utf8), request: 10))
        }
        cluster.deliverAll()
        cluster.restart(1)
        for _ in 0..<10 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        for node in cluster.nodes {
            #expect(cluster.machines[node] == ["v0", "v1", "v2", "after"], "node \(node)")
        }
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }
}
