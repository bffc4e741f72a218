import CairnRaft

/// A deliberately wrong behaviour, turned on for a whole run with `--inject-bug NAME`, to prove that the
/// simulator's checks can fail. Three live in the core (`_RaftInjectedBug`), two in the simulated shell.
public enum InjectedBug: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case none
    /// A node grants two votes in one term (core).
    case voteTwice = "vote-twice"
    /// A leader commits without a quorum (core).
    case commitWithoutQuorum = "commit-without-quorum"
    /// A leader serves reads without confirming leadership (core).
    case readWithoutReadIndex = "read-without-readindex"
    /// The shell sends messages, reports `.persisted` and applies committed entries before its writes
    /// are durable; a crash then loses entries it acknowledged.
    case ackBeforeFsync = "ack-before-fsync"
    /// The simulated disk loses the vote (keeps the term) when a node restarts.
    case forgetVoteOnRestart = "forget-vote-on-restart"

    /// The bugs a run can inject, without `none`.
    public static var injectable: [InjectedBug] { allCases.filter { $0 != .none } }

    /// The core's own switch for the bugs that live in the core.
    var coreBug: _RaftInjectedBug? {
        switch self {
        case .voteTwice: .voteTwice
        case .commitWithoutQuorum: .commitWithoutQuorum
        case .readWithoutReadIndex: .readWithoutReadIndex
        case .none, .ackBeforeFsync, .forgetVoteOnRestart: nil
        }
    }

    public var description: String { rawValue }
}
