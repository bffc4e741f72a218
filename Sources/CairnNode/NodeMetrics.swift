import CairnCore

/// The metric families a node exports on `/metrics`. Names follow Prometheus conventions: a `cairn_`
/// prefix, base units (seconds, bytes), `_total` on counters.
public enum NodeMetrics {
    public static let commands = MetricFamily(
        "cairn_commands_total", help: "Commands executed, by command name and result (ok or error).", kind: .counter)
    public static let commandDuration = MetricFamily(
        "cairn_command_duration_seconds",
        help: "Time from reading a command to releasing its reply, durability wait included.",
        kind: .histogram(buckets: MetricFamily.latencyBucketsSeconds))
    public static let connectedClients = MetricFamily(
        "cairn_connected_clients", help: "Client connections open now.", kind: .gauge)
    public static let connectionsReceived = MetricFamily(
        "cairn_connections_received_total", help: "Client connections accepted.", kind: .counter)
    public static let connectionsRejected = MetricFamily(
        "cairn_connections_rejected_total", help: "Client connections refused because the client limit was reached.",
        kind: .counter)
    public static let protocolErrors = MetricFamily(
        "cairn_protocol_errors_total", help: "Connections closed because their bytes were not valid RESP.",
        kind: .counter)
    public static let inputBytes = MetricFamily(
        "cairn_net_input_bytes_total", help: "Bytes of client commands received.", kind: .counter)
    public static let outputBytes = MetricFamily(
        "cairn_net_output_bytes_total", help: "Bytes of replies produced for clients.", kind: .counter)
    public static let keys = MetricFamily(
        "cairn_keys", help: "Keys stored, including expired keys not yet removed.", kind: .gauge)
    public static let expiringKeys = MetricFamily(
        "cairn_expiring_keys", help: "Keys stored with an expiry time.", kind: .gauge)
    public static let expiredKeys = MetricFamily(
        "cairn_expired_keys_total", help: "Keys removed because their expiry time passed.", kind: .counter)
    public static let pendingWrites = MetricFamily(
        "cairn_pending_write_keys", help: "Keys whose newest write is not yet durable.", kind: .gauge)
    public static let cacheHits = MetricFamily(
        "cairn_cache_hits_total", help: "Reads answered by the read cache.", kind: .counter)
    public static let cacheMisses = MetricFamily(
        "cairn_cache_misses_total", help: "Reads the read cache could not answer.", kind: .counter)
    public static let cacheEvictions = MetricFamily(
        "cairn_cache_evictions_total", help: "Entries evicted from the read cache to stay within its size.",
        kind: .counter)
    public static let cacheBytes = MetricFamily(
        "cairn_cache_bytes", help: "Bytes held by the read cache (keys, values and overhead).", kind: .gauge)
    public static let cacheCapacityBytes = MetricFamily(
        "cairn_cache_capacity_bytes", help: "The read cache's size limit (--cache-bytes).", kind: .gauge)
    public static let fsyncDuration = MetricFamily(
        "cairn_fsync_duration_seconds", help: "Time to write and fsync one group commit (of those fsync'd).",
        kind: .histogram(buckets: MetricFamily.latencyBucketsSeconds))
    public static let groupCommits = MetricFamily(
        "cairn_group_commits_total",
        help:
            "Group commits written, by whether they were fsync'd (fsync=no: only applied data, which the synced Raft log rebuilds, or an fsync policy other than always).",
        kind: .counter)
    public static let groupCommitWrites = MetricFamily(
        "cairn_group_commit_batch_writes", help: "Storage writes (puts and deletes) per group commit.",
        kind: .histogram(buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384]))
    public static let groupCommitTurns = MetricFamily(
        "cairn_group_commit_batch_turns", help: "Loop turns' batches merged into one group commit.",
        kind: .histogram(buckets: [1, 2, 4, 8, 16, 32, 64]))
    public static let uptime = MetricFamily(
        "cairn_uptime_seconds", help: "Seconds since the node started.", kind: .gauge)

    /// Every family, so `/metrics` shows HELP and TYPE for each from the start.
    // Cluster and Raft.
    public static let clusterEpoch = MetricFamily(
        "cairn_cluster_epoch", help: "Epoch of the newest cluster map this node knows.", kind: .gauge)
    public static let clusterNodes = MetricFamily(
        "cairn_cluster_nodes", help: "Active nodes in this node's cluster map.", kind: .gauge)
    public static let raftGroups = MetricFamily(
        "cairn_raft_groups", help: "Raft groups this node is a member of, by role.", kind: .gauge)
    public static let raftElections = MetricFamily(
        "cairn_raft_campaigns_total", help: "Elections this node started, summed over its groups.", kind: .counter)
    public static let raftTermMax = MetricFamily(
        "cairn_raft_term_max", help: "The highest term among this node's groups.", kind: .gauge)
    public static let raftPendingProposals = MetricFamily(
        "cairn_raft_pending_requests", help: "Proposals and reads waiting inside this node's groups.", kind: .gauge)
    public static let forwarded = MetricFamily(
        "cairn_forwarded_commands_total", help: "Commands this node forwarded to another node's leader.",
        kind: .counter)
    public static let peerRefused = MetricFamily(
        "cairn_peer_messages_refused_total",
        help: "Peer messages ignored: wrong cluster, unknown group, or values out of range.", kind: .counter)
    public static let raftRealElections = MetricFamily(
        "cairn_raft_elections_total",
        help:
            "Elections started by this node's groups after a successful pre-election (each increments a term); campaigns_total counts pre-elections too.",
        kind: .counter)
    public static let raftQuorumLossStepDowns = MetricFamily(
        "cairn_raft_quorum_loss_stepdowns_total",
        help:
            "Times a leader here stepped down because it had not heard from a quorum for an election timeout (CheckQuorum).",
        kind: .counter)

    public static let raftSnapshots = MetricFamily(
        "cairn_raft_snapshots_total",
        help:
            "Snapshots of this node's groups: created (log compaction), prepared (read to send to a follower) and restored (sent by a leader).",
        kind: .counter)
    public static let raftLogEntries = MetricFamily(
        "cairn_raft_log_entries", help: "Log entries held after the snapshots, summed over this node's groups.",
        kind: .gauge)

    public static let raftQuietGroups = MetricFamily(
        "cairn_raft_groups_quiet", help: "Groups of this node that are idle and not ticked (quiesced).", kind: .gauge)
    public static let raftQuietWakeups = MetricFamily(
        "cairn_raft_quiet_wakeups_total",
        help: "Quiet groups woken because their leader's node went silent (a failure detected by node heartbeats).",
        kind: .counter)

    public static let lostReplies = MetricFamily(
        "cairn_lost_replies_total",
        help:
            "Commands whose outcome was lost inside the node, answered TRYAGAIN by the watchdog (a bug: should stay 0).",
        kind: .counter)

    public static let raftProposals = MetricFamily(
        "cairn_raft_proposals_total", help: "Commands this node's leaders appended to their logs.", kind: .counter)
    public static let raftCommitDuration = MetricFamily(
        "cairn_raft_commit_duration_seconds",
        help:
            "From a command reaching its partition's leader to the leader applying it: appended, fsync'd on a majority, committed and applied (applying is part of the commit's loop step).",
        kind: .histogram(buckets: MetricFamily.latencyBucketsSeconds))

    public static let rebalancePartitions = MetricFamily(
        "cairn_rebalance_partitions",
        help:
            "Partitions this node leads, by rebalance state: placed (replicas as the map wants), moving (replicas changing), waiting (a move not started: at most --max-moves at once).",
        kind: .gauge)
    public static let membershipSteps = MetricFamily(
        "cairn_rebalance_membership_steps_total",
        help: "Membership changes this node's leaders started (add learner, promote, remove).", kind: .counter)
    public static let snapshotBytes = MetricFamily(
        "cairn_rebalance_snapshot_bytes_total",
        help: "Snapshot bytes sent to and received from peers (partition moves and lagging followers).",
        kind: .counter)
    public static let snapshotBytesThrottled = MetricFamily(
        "cairn_rebalance_snapshot_bytes_throttled",
        help: "Snapshot bytes held back by the move rate (--move-rate) right now.", kind: .gauge)

    public static let idempotentReplays = MetricFamily(
        "cairn_idempotent_replays_total",
        help:
            "IDEMPOTENT writes whose token had applied within the window: answered with the recorded reply, applied nothing (counted on every replica).",
        kind: .counter)

    public static let commandsInFlight = MetricFamily(
        "cairn_commands_in_flight", help: "Client commands received and not answered yet, over all connections.",
        kind: .gauge)
    public static let commandsRefused = MetricFamily(
        "cairn_commands_refused_total",
        help:
            "Client commands refused at once with TRYAGAIN, by reason: overloaded (--max-inflight), slow-reads or slow-writes (--overload-latency), rate-limited (--client-rate-limit).",
        kind: .counter)

    public static let overloadedIntervals = MetricFamily(
        "cairn_overloaded_intervals_total",
        help:
            "100 ms intervals in which even the fastest routed read (or write) took longer than --overload-latency: the node then admitted new ones only at the rate it completes them.",
        kind: .counter)

    public static let fastestCompletion = MetricFamily(
        "cairn_admission_fastest_seconds",
        help:
            "The fastest routed read (or write) of the last 100 ms interval in which any completed, from arrival to reply: the queueing-delay signal of --overload-latency.",
        kind: .gauge)
    public static let admissionAllowance = MetricFamily(
        "cairn_admission_allowance",
        help:
            "New routed reads (or writes) the current 100 ms interval may still admit under --overload-latency; -1 while not limited.",
        kind: .gauge)

    public static let breakerState = MetricFamily(
        "cairn_peer_circuit_state",
        help: "State of the circuit breaker for forwards to each peer: 0 closed, 1 open, 2 half-open.", kind: .gauge)
    public static let breakerRejections = MetricFamily(
        "cairn_peer_circuit_rejections_total",
        help: "Forwards refused at once (TRYAGAIN) because the target's circuit breaker was open.", kind: .counter)
    public static let forwardRetries = MetricFamily(
        "cairn_forward_retries_total",
        help:
            "Forwards sent again after their target went silent (reads and idempotent writes, within the retry budget).",
        kind: .counter)

    public static let all: [MetricFamily] = [
        commands, commandDuration, connectedClients, connectionsReceived, connectionsRejected, protocolErrors,
        inputBytes, outputBytes, keys, expiringKeys, expiredKeys, pendingWrites, cacheHits, cacheMisses,
        cacheEvictions, cacheBytes, cacheCapacityBytes, fsyncDuration, groupCommits, groupCommitWrites,
        groupCommitTurns, uptime,
        clusterEpoch, clusterNodes, raftGroups, raftElections, raftTermMax, raftPendingProposals, forwarded,
        peerRefused, raftSnapshots, raftLogEntries, raftQuietGroups, raftQuietWakeups,
        lostReplies, raftProposals, raftCommitDuration, rebalancePartitions, membershipSteps, snapshotBytes,
        snapshotBytesThrottled, idempotentReplays, commandsInFlight, commandsRefused, overloadedIntervals,
        raftRealElections, raftQuorumLossStepDowns,
        fastestCompletion, admissionAllowance, breakerState,
        breakerRejections, forwardRetries,
    ]
}
