import CairnCore
import CairnRaft

/// Builders for single-core tests: a core over bootstrap storage, messages from peers, and storage with a
/// given log already on it.
enum Fixture {
    static func config(_ id: NodeID, _ configure: (inout RaftConfig) -> Void = { _ in }) -> RaftConfig {
        var config = RaftConfig(id: id, electionTicksMin: 10, heartbeatTicks: 1, seed: id.rawValue)
        configure(&config)
        return config
    }

    /// Storage holding entries with the given terms from index 1, and the given hard state.
    static func storage(voters: [NodeID], terms: [UInt64] = [], hardState: HardState? = nil) -> MemoryRaftLog {
        var storage = MemoryRaftLog(bootstrap: ConfigurationState(voters: voters))
        var writes = DurableWrites()
        writes.entries = terms.enumerated().map { offset, term in
            Entry(term: Term(term), index: LogIndex(UInt64(offset + 1)), kind: .command(Array("e\(offset + 1)".utf8)))
        }
        writes.hardState = hardState ?? HardState(term: Term(terms.last ?? 0))
        storage.apply(writes)
        return storage
    }

    static func core(
        _ id: NodeID = 1, voters: [NodeID] = [1, 2, 3], terms: [UInt64] = [], hardState: HardState? = nil,
        _ configure: (inout RaftConfig) -> Void = { _ in }
    ) throws -> RaftCore {
        try RaftCore(
            config: config(id, configure), storage: storage(voters: voters, terms: terms, hardState: hardState))
    }

    static func message(_ term: UInt64, _ kind: RaftMessage.Kind) -> RaftMessage {
        RaftMessage(group: 1, term: Term(term), kind: kind)
    }

    static func vote(_ term: UInt64, lastIndex: UInt64 = 0, lastTerm: UInt64 = 0, preVote: Bool = false) -> RaftMessage
    {
        message(
            term,
            .requestVote(
                lastLogIndex: LogIndex(lastIndex), lastLogTerm: Term(lastTerm), isPreVote: preVote, isTransfer: false))
    }

    static func granted(_ term: UInt64, preVote: Bool = false) -> RaftMessage {
        message(term, .requestVoteResponse(granted: true, isPreVote: preVote))
    }

    static func appendSuccess(_ term: UInt64, match: UInt64, sequence: UInt64 = 0) -> RaftMessage {
        message(
            term,
            .appendEntriesResponse(
                AppendEntriesResponse(success: true, matchIndex: LogIndex(match), sequence: sequence)))
    }

    /// Ticks `core` until its role changes (bounded), returning the outputs.
    static func tickUntilRoleChanges(_ core: inout RaftCore, ticksMax: Int = 100) -> [RaftOutput] {
        let role = core.role
        var outputs: [RaftOutput] = []
        while core.role == role && outputs.count < ticksMax { outputs.append(core.step(.tick)) }
        return outputs
    }

    /// Makes a three-node leader out of node 1 without PreVote: campaign, then votes from 2 and 3.
    static func leader(
        voters: [NodeID] = [1, 2, 3], terms: [UInt64] = [], _ configure: (inout RaftConfig) -> Void = { _ in }
    ) throws -> RaftCore {
        var core = try core(1, voters: voters, terms: terms) {
            $0.preVote = false
            configure(&$0)
        }
        _ = tickUntilRoleChanges(&core)
        for voter in voters where voter != 1 {
            _ = core.step(.received(granted(core.term.rawValue), from: voter))
        }
        return core
    }
}

extension RaftOutput {
    /// The messages to `node`.
    func messages(to node: NodeID) -> [RaftMessage] { messages.filter { $0.to == node }.map(\.message) }

    /// The appends in `messages`.
    var appends: [(to: NodeID, append: AppendEntries)] {
        messages.compactMap { outbound in
            if case .appendEntries(let append) = outbound.message.kind { return (outbound.to, append) }
            return nil
        }
    }
}
