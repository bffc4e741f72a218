/// A deliberately wrong behaviour of the core, for the simulator only: it proves that the simulator's
/// checks can fail (`cairn sim raft --inject-bug NAME`). TEST-ONLY: nothing outside `CairnSim` and its
/// tests may set `RaftConfig.deliberateBug`, and `cairn server` never does (it has no flag for it).
///
/// Each case is one `if` at the place in the core where the correct rule is applied, so that turning it
/// off leaves the core exactly as written. Bugs that live in the shell (acknowledging before fsync,
/// forgetting the vote on restart) are the simulator's own and do not appear here.
public enum DeliberateBug: String, Sendable, Equatable, CaseIterable {
    /// The core is correct.
    case none
    /// A node grants its vote to every up-to-date candidate of its term, not just the first (breaks the
    /// one-vote-per-term rule of Raft §5.2, so two leaders can win one term).
    case voteTwice = "vote-twice"
    /// A leader commits whatever it has made durable itself, without waiting for a quorum (breaks §5.3,
    /// §5.4.2, so a committed entry can be lost).
    case commitWithoutQuorum = "commit-without-quorum"
    /// A leader serves every read at once at its commit index, without confirming that it still leads
    /// (breaks thesis §6.4, so a deposed leader serves stale reads).
    case readWithoutReadIndex = "read-without-readindex"
}
