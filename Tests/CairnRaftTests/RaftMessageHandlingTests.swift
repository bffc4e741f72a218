import CairnCore
import Testing

@testable import CairnRaft

@Suite("Raft message handling: terms, stale and malformed messages, flow control")
struct RaftMessageHandlingTests {
    static let heartbeat = AppendEntries(previousIndex: 0, previousTerm: 0, entries: [], commit: 0, sequence: 1)

    @Test("§5.1: an append from an older term is refused with the newer term, so a stale leader steps down")
    func olderTermAppendAnswered() throws {
        var core = try Fixture.core(2, hardState: HardState(term: 5))
        let output = core.step(.received(Fixture.message(3, .appendEntries(Self.heartbeat)), from: 1))
        let refusal = AppendEntriesResponse(success: false, matchIndex: 0, sequence: 0)
        #expect(output.messages.map(\.message) == [Fixture.message(5, .appendEntriesResponse(refusal))])
        #expect(core.term == 5)
        #expect(core.leader == nil)
        #expect(core.counters.staleMessages == 1)
    }

    @Test("§5.1: other messages from an older term are dropped without an answer")
    func olderTermVoteDropped() throws {
        var core = try Fixture.core(2, hardState: HardState(term: 5))
        let output = core.step(.received(Fixture.vote(3, lastIndex: 9, lastTerm: 3), from: 1))
        #expect(output.messages.isEmpty)
        #expect(core.vote == nil)
    }

    @Test("thesis §9.6: a pre-vote from an older term is refused with the newer term")
    func olderPreVoteRefused() throws {
        var core = try Fixture.core(2, hardState: HardState(term: 5))
        let output = core.step(.received(Fixture.vote(4, preVote: true), from: 1))
        #expect(
            output.messages.map(\.message) == [
                Fixture.message(5, .requestVoteResponse(granted: false, isPreVote: true))
            ])
    }

    @Test("§5.1: messages for another group, or claiming to come from this node, are dropped and counted")
    func wrongGroupDropped() throws {
        var core = try Fixture.core(2)
        let other = RaftMessage(group: 9, term: 4, kind: .appendEntries(Self.heartbeat))
        #expect(core.step(.received(other, from: 1)).messages.isEmpty)
        #expect(core.step(.received(Fixture.message(4, .appendEntries(Self.heartbeat)), from: 2)).messages.isEmpty)
        #expect(core.term == 0)
        #expect(core.counters.staleMessages == 2)
    }

    @Test("a malformed append (a gap, or an entry from a later term than the message) is dropped, not a crash")
    func malformedAppendDropped() throws {
        var core = try Fixture.core(2)
        let gap = AppendEntries(
            previousIndex: 0, previousTerm: 0, entries: [Entry(term: 1, index: 2, kind: .empty)], commit: 0, sequence: 1
        )
        #expect(core.step(.received(Fixture.message(1, .appendEntries(gap)), from: 1)).writes.entries.isEmpty)
        let future = AppendEntries(
            previousIndex: 0, previousTerm: 0, entries: [Entry(term: 7, index: 1, kind: .empty)], commit: 0, sequence: 1
        )
        #expect(core.step(.received(Fixture.message(1, .appendEntries(future)), from: 1)).writes.entries.isEmpty)
        #expect(core.lastIndex == 0)
        #expect(core.counters.staleMessages == 2)
    }

    @Test("thesis §3.10: voters honour a transfer election even though they heard from the leader recently")
    func transferBypassesStickiness() throws {
        var core = try Fixture.core(3)
        _ = core.step(.received(Fixture.message(1, .appendEntries(Self.heartbeat)), from: 1))
        let request = RaftMessage.Kind.requestVote(lastLogIndex: 0, lastLogTerm: 0, isPreVote: false, isTransfer: true)
        let output = core.step(.received(Fixture.message(2, request), from: 2))
        #expect(output.messages.map(\.message) == [Fixture.granted(2)])
        #expect(core.vote == 2)
    }

    @Test("thesis §3.10: TimeoutNow from the leader starts an election at once, skipping PreVote")
    func timeoutNowCampaigns() throws {
        var core = try Fixture.core(2)
        _ = core.step(.received(Fixture.message(1, .appendEntries(Self.heartbeat)), from: 1))
        let output = core.step(.received(Fixture.message(1, .timeoutNow), from: 1))
        #expect(core.role == .candidate)
        #expect(core.term == 2)
        let transfer = RaftMessage.Kind.requestVote(lastLogIndex: 0, lastLogTerm: 0, isPreVote: false, isTransfer: true)
        #expect(output.messages.map(\.message) == [Fixture.message(2, transfer), Fixture.message(2, transfer)])
    }

    @Test("§5.2: a candidate that hears from a leader of its own term returns to follower")
    func candidateYieldsToLeader() throws {
        var core = try Fixture.core { $0.preVote = false }
        _ = Fixture.tickUntilRoleChanges(&core)
        _ = core.step(.received(Fixture.message(1, .appendEntries(Self.heartbeat)), from: 3))
        #expect(core.role == .follower)
        #expect(core.leader == 3)
        #expect(core.vote == 1, "the vote of the term is kept")
    }

    @Test("§5.2: a repeated vote from the same voter is counted once")
    func duplicateVotesCountOnce() throws {
        var core = try Fixture.core(1, voters: [1, 2, 3, 4, 5]) { $0.preVote = false }
        _ = Fixture.tickUntilRoleChanges(&core)
        _ = core.step(.received(Fixture.granted(1), from: 2))
        _ = core.step(.received(Fixture.granted(1), from: 2))
        #expect(core.role == .candidate, "two votes of five, not three")
        _ = core.step(.received(Fixture.granted(1), from: 3))
        #expect(core.role == .leader)
    }

    @Test("§5.3: in probe state the leader sends one append at a time until it is answered")
    func probeSendsOneAtATime() throws {
        var core = try Fixture.leader()
        var appendsToTwo = 0
        for request in 0..<5 as Range<UInt64> {
            let output = core.step(.propose(Array("p".utf8), request: RequestID(rawValue: request)))
            appendsToTwo += output.appends.filter { $0.to == 2 }.count
        }
        #expect(appendsToTwo == 0, "the election's probe is still unanswered")
        #expect(core.progress(of: 2)?.state == .probe)
        let answered = core.step(.received(Fixture.appendSuccess(1, match: 1), from: 2))
        #expect(core.progress(of: 2)?.state == .replicate)
        #expect(answered.appends.filter { $0.to == 2 }.flatMap(\.append.entries).map(\.index) == [2, 3, 4, 5, 6])
    }

    @Test("§5.3: a probe rejection jumps back by the conflict hint; a stale rejection changes nothing")
    func probeUsesHint() throws {
        var core = try Fixture.leader(terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6])
        #expect(core.term == 7)
        // The follower holds 1 1 1 2 2 2 3 3 3 3 3: the largest index at or below 10 with a term at most 6
        // is 10, of term 3; the leader's largest index at or below 10 with a term at most 3 is 3.
        let rejection = AppendEntriesResponse(
            success: false, matchIndex: 0, rejectedIndex: 10, conflictIndex: 10, conflictTerm: 3, sequence: 1)
        let output = core.step(.received(Fixture.message(7, .appendEntriesResponse(rejection)), from: 2))
        #expect(output.appends.filter { $0.to == 2 }.map(\.append.previousIndex) == [3])
        #expect(core.progress(of: 2)?.next == 4)
        let stale = core.step(.received(Fixture.message(7, .appendEntriesResponse(rejection)), from: 2))
        #expect(stale.appends.isEmpty)
        #expect(core.progress(of: 2)?.next == 4)
    }

    @Test("§5.3: in replicate state a rejection at or below the match index is stale and ignored")
    func replicateIgnoresStaleRejection() throws {
        var core = try Fixture.leader()
        _ = core.step(.received(Fixture.appendSuccess(1, match: 1), from: 2))
        _ = core.step(.propose(Array("a".utf8), request: 1))
        _ = core.step(.received(Fixture.appendSuccess(1, match: 2), from: 2))
        let stale = AppendEntriesResponse(success: false, matchIndex: 0, rejectedIndex: 1, sequence: 0)
        _ = core.step(.received(Fixture.message(1, .appendEntriesResponse(stale)), from: 2))
        #expect(core.progress(of: 2)?.state == .replicate)
        #expect(core.progress(of: 2)?.match == 2)
    }

    @Test("thesis §9.6: a granted pre-vote from an earlier pre-election does not count in a later one")
    func stalePreVoteIgnored() throws {
        var core = try Fixture.core(1, hardState: HardState(term: 1))
        _ = Fixture.tickUntilRoleChanges(&core)
        #expect(core.role == .preCandidate)
        _ = core.step(.received(Fixture.granted(1, preVote: true), from: 2))
        #expect(core.role == .preCandidate, "granted for term 1, but this pre-election asks for term 2")
        _ = core.step(.received(Fixture.granted(2, preVote: true), from: 2))
        #expect(core.role == .candidate)
        #expect(core.term == 2)
    }
}
