import CairnCore
import CairnRaft

/// Quiet groups and node-level heartbeats.
///
/// A node hosts a member of every partition placed on it (128 by default), and a Raft leader sends a
/// heartbeat every 2 ticks; most groups are idle most of the time. So, as CockroachDB does, a leader
/// whose group has been idle for an election timeout (commit index unchanged, every member caught up,
/// nothing pending) stops ticking it and tells the members (`quiesce`); they stop ticking too. An idle
/// group then costs nothing: no heartbeats, no timers.
///
/// Failure detection moves to the node: each node sends every peer an envelope at least every
/// `heartbeatTicks` (an empty one when it has nothing else to say: one heartbeat per pair of nodes,
/// whatever the number of groups). A quiet follower whose leader's node has been silent for an
/// election timeout wakes up and is given an election timeout's worth of the ticks it missed, so it
/// campaigns as it would have. Any
/// input other than a tick (a message, a proposal, a read, a membership change) wakes a quiet group.
///
/// Safety does not depend on any of this: a quiet leader that was cut off still believes it leads,
/// but it cannot commit or confirm a read without a quorum, and the first request wakes it.
extension NodeCore {
    /// Ticks every group that is not quiet, quiets the idle ones it leads, and wakes followers whose
    /// leader's node went silent.
    mutating func tickGroups(into output: inout NodeOutput) {
        if groupOrder.count != groups.count { groupOrder = groups.keys.sorted() }
        let idleTicks = UInt64(config.electionTicks)
        for group in groupOrder {
            guard groups.contains(group) else { continue }
            if groups[existing: group].isQuiet {
                // Not ticked, but still applying what a bounded step left over (`applyBytesMax`).
                if groups[existing: group].raft.hasUnappliedEntries { stepGroup(group, .applyCommitted, into: &output) }
                // One election timeout of silence from the leader's node, as an active follower would
                // wait. If only this member missed the heartbeats it wakes for nothing, and its PreVote
                // round cannot win while the other members still hear the leader. If the leader's node
                // itself stalled that long, its groups elect new leaders, as active groups would: keep
                // the loop's turns short (`cairn_loop_turn_seconds`).
                guard let leader = groups[existing: group].raft.leader, leader != identity,
                    ticks > (peerLastHeard[leader] ?? 0) + idleTicks
                else { continue }
                // The leader's node went silent: catch up on the ticks this member missed while quiet,
                // so that it campaigns when an active member would have (after its randomized timeout).
                wake(group)
                stats.quietWakeups += 1
                for _ in 0..<config.electionTicks { stepGroup(group, .tick, into: &output) }
                continue
            }
            stepGroup(group, .tick, into: &output)
            guard groups.contains(group) else { continue }
            let commit = groups[existing: group].raft.commitIndex
            if commit != groups[existing: group].lastCommit {
                groups[existing: group].lastCommit = commit
                groups[existing: group].activeTick = ticks
            } else if ticks >= groups[existing: group].activeTick + idleTicks, isIdleLeader(group) {
                quiesce(group)
            }
        }
    }

    /// Whether this node leads `group` and the group has nothing to do: every member holds and has
    /// applied every entry, no request waits, no membership change or transfer is on.
    func isIdleLeader(_ group: GroupID) -> Bool {
        guard let hosted = groups[group] else { return false }
        let raft = hosted.raft
        // Messages held for durability would arrive after the quiesce message.
        let holdsMessages = raftWriteGates[group].map { $0 > keyspace.durableThrough } ?? false
        guard raft.role == .leader, !holdsMessages, raft.transferTarget == nil, raft.isConfigurationCommitted,
            !raft.configuration.isJoint, raft.commitIndex == raft.lastIndex,
            raft.lastAppliedIndex == raft.commitIndex, hosted.unproposed.isEmpty, hosted.proposals.isEmpty,
            hosted.appended.isEmpty,
            hosted.reads.isEmpty, hosted.readyReads.isEmpty, hosted.expiring.isEmpty
        else { return false }
        for member in raft.configuration.members where member != identity {
            guard let progress = raft.progress(of: member), progress.match == raft.lastIndex, isAlive(member) else {
                return false
            }
        }
        return true
    }

    /// Stops ticking a group this node leads and tells its members to stop too.
    mutating func quiesce(_ group: GroupID) {
        groups[existing: group].isQuiet = true
        let term = groups[existing: group].raft.term
        for member in groups[existing: group].raft.configuration.members where member != identity {
            enqueue(.quiesce(group, term: term), to: member)
        }
    }

    /// A member hears that its leader quieted the group: it stops ticking it if it agrees on the leader
    /// and the term and holds every entry it knows to be committed.
    mutating func receiveQuiesce(_ group: GroupID, term: Term, from sender: NodeID) {
        guard let raft = groups[group]?.raft,
            raft.role == .follower, raft.term == term, raft.leader == sender, raft.commitIndex == raft.lastIndex
        else { return }
        groups[existing: group].isQuiet = true
    }

    /// Whether `input` wakes a quiet group: anything but a tick, a storage report, a compaction, or a
    /// follower's answer to a heartbeat sent before the group went quiet (it reports what the leader
    /// already knows).
    static func wakes(_ input: RaftInput, _ raft: RaftCore) -> Bool {
        switch input {
        case .tick, .persisted, .snapshotCreated, .applyCommitted:
            // Its own storage reports and compactions: nothing a member needs to act on.
            return false
        case .received(let message, _):
            guard case .appendEntriesResponse(let response) = message.kind else { return true }
            return !(response.success && message.term == raft.term && response.matchIndex == raft.lastIndex)
        default:
            return true
        }
    }

    /// Makes a quiet group tick again.
    mutating func wake(_ group: GroupID) {
        guard groups.contains(group), groups[existing: group].isQuiet else { return }
        groups[existing: group].isQuiet = false
        groups[existing: group].activeTick = ticks
    }

    /// Adds an empty envelope for every peer this node has sent nothing to for `heartbeatTicks`: the
    /// node-level heartbeat that quiet groups rely on.
    mutating func addNodeHeartbeats() {
        guard let map, let me = identity, !isRemoved else { return }
        for node in map.memberNodes where node.id != me {
            let target = PeerTarget.node(node.id)
            if outbox[target] == nil, ticks >= (lastSentTick[node.id] ?? 0) + UInt64(config.heartbeatTicks) {
                outbox[target] = []
            }
        }
    }
}
