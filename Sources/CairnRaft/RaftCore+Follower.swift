import CairnCore

extension RaftCore {
    // MARK: Appends

    /// The receiver side of AppendEntries (§5.3, Figure 2): check that the logs agree at the entry before
    /// the new ones, drop any conflicting suffix, append what is new, and learn the commit index.
    mutating func handleAppendEntries(_ received: AppendEntries, from sender: NodeID, into output: inout RaftOutput) {
        guard isWellFormed(received) else {
            counters.staleMessages += 1
            return
        }
        guard let append = trimmedToCommit(received) else {
            counters.staleMessages += 1
            return
        }
        let previous = append.previousIndex
        guard let localTerm = log.term(at: previous), localTerm == append.previousTerm else {
            let (hintIndex, hintTerm) = log.lastIndex(
                atOrBelow: min(previous, log.lastIndex), withTermAtMost: append.previousTerm)
            let response = AppendEntriesResponse(
                success: false, matchIndex: 0, rejectedIndex: previous, conflictIndex: hintIndex,
                conflictTerm: hintTerm ?? 0, sequence: append.sequence)
            respond(response, to: sender, &output)
            return
        }
        var firstNew = append.entries.count
        for (offset, entry) in append.entries.enumerated() {
            guard let existing = log.term(at: entry.index) else {
                firstNew = offset
                break
            }
            if existing != entry.term {
                guard entry.index > commitIndex else {
                    // Only a broken leader asks to replace a committed entry. With an injected bug that is
                    // expected, and the simulator's checkers report it; otherwise it is a crash.
                    precondition(
                        config._injectedBug != nil,
                        "node \(config.id) term \(term): leader \(sender) conflicts with committed entry \(entry.index)"
                    )
                    counters.staleMessages += 1
                    return
                }
                truncateLog(from: entry.index, into: &output)
                firstNew = offset
                break
            }
        }
        appendFromLeader(Array(append.entries[firstNew...]), into: &output)
        let lastNew = previous.advanced(by: append.entries.count)
        commitIndex = max(commitIndex, min(append.commit, lastNew))
        respond(
            AppendEntriesResponse(success: true, matchIndex: lastNew, sequence: append.sequence), to: sender, &output)
    }

    /// The append without the entries at or below our commit index, which are known to match any
    /// leader's log (Leader Completeness, §5.4.3). A reordered or duplicated append that starts below the
    /// commit index then still delivers the entries after it, instead of being refused. Nil if the
    /// entries after the commit index are older than the committed entry, which no leader would send.
    private func trimmedToCommit(_ append: AppendEntries) -> AppendEntries? {
        guard append.previousIndex < commitIndex, let commitTerm = log.term(at: commitIndex) else { return append }
        let entries = append.entries.filter { $0.index > commitIndex }
        if let first = entries.first, first.term < commitTerm { return nil }
        return AppendEntries(
            previousIndex: commitIndex, previousTerm: commitTerm, entries: entries, commit: append.commit,
            sequence: append.sequence)
    }

    /// Whether an append from a peer makes sense: contiguous entries after `previousIndex`, terms that do
    /// not decrease and are not from the future. A malformed message is bad input: dropped, not a crash.
    private func isWellFormed(_ append: AppendEntries) -> Bool {
        // Indexes near the top of the range would overflow below; no real log gets there.
        guard append.previousIndex.rawValue < UInt64.max / 2, append.commit.rawValue < UInt64.max / 2 else {
            return false
        }
        var expected = append.previousIndex.next
        var lastTerm = append.previousTerm
        for entry in append.entries {
            guard entry.index == expected, entry.term >= lastTerm, entry.term <= term else { return false }
            expected = expected.next
            lastTerm = entry.term
        }
        return true
    }

    private mutating func appendFromLeader(_ entries: [Entry], into output: inout RaftOutput) {
        guard !entries.isEmpty else { return }
        log.append(entries)
        output.writes.entries.append(contentsOf: entries)
        for entry in entries {
            if case .configuration(let configuration) = entry.kind {
                adoptConfiguration(configuration, at: entry.index)
            }
        }
    }

    /// Deletes a conflicting suffix (lane 1) and falls back to the configuration before it (thesis §4.1:
    /// a configuration entry that is removed from the log stops being in force).
    mutating func truncateLog(from index: LogIndex, into output: inout RaftOutput) {
        log.truncate(from: index)
        output.writes.entries.removeAll { $0.index >= index }
        output.writes.truncateFrom = min(output.writes.truncateFrom ?? index, index)
        durableIndex = min(durableIndex, index.previous)
        if configurationIndex >= index {
            let configured = log.lastConfiguration() ?? (snapshot.metadata.index, snapshot.metadata.configuration)
            configurationIndex = configured.0
            configuration = configured.1
        }
    }

    private mutating func respond(_ response: AppendEntriesResponse, to node: NodeID, _ output: inout RaftOutput) {
        send(.appendEntriesResponse(response), to: node, into: &output)
    }

    // MARK: Snapshots

    /// Receives one snapshot chunk (Raft §7): verify its checksum and position, keep it, and install the
    /// snapshot once the last chunk arrives. Every answer names the offset wanted next.
    mutating func handleSnapshotChunk(_ chunk: SnapshotChunk, from sender: NodeID, into output: inout RaftOutput) {
        let metadata = chunk.metadata
        if metadata.index <= commitIndex {
            // Already have everything it covers (§7: "If instead the follower receives a snapshot that
            // describes a prefix of its log… retain").
            incomingSnapshot = nil
            answerChunk(metadata.index, received: chunk.totalBytes, isComplete: true, to: sender, &output)
            return
        }
        let isValid =
            chunk.totalBytes <= Limits.raftSnapshotBytesMax && chunk.offset >= 0
            && chunk.offset + chunk.data.count <= chunk.totalBytes
            && chunk.isLast == (chunk.offset + chunk.data.count == chunk.totalBytes)
            && CRC32C.checksum(chunk.data) == chunk.checksum
        if incomingSnapshot?.metadata != metadata || incomingSnapshot?.totalBytes != chunk.totalBytes {
            incomingSnapshot = IncomingSnapshot(metadata: metadata, totalBytes: chunk.totalBytes, data: [])
        }
        guard var incoming = incomingSnapshot, isValid, chunk.offset == incoming.data.count else {
            counters.rejectedSnapshotChunks += 1
            answerChunk(
                metadata.index, received: incomingSnapshot?.data.count ?? 0, isComplete: false, to: sender, &output)
            return
        }
        incoming.data.append(contentsOf: chunk.data)
        guard chunk.isLast else {
            incomingSnapshot = incoming
            answerChunk(metadata.index, received: incoming.data.count, isComplete: false, to: sender, &output)
            return
        }
        incomingSnapshot = nil
        installSnapshot(Snapshot(metadata: metadata, data: incoming.data), into: &output)
        answerChunk(metadata.index, received: incoming.data.count, isComplete: true, to: sender, &output)
    }

    /// Replaces the log's prefix with a snapshot from the leader. Entries after it are kept only if the
    /// log has the snapshot's last entry with the same term (§7); otherwise the whole log goes.
    private mutating func installSnapshot(_ newSnapshot: Snapshot, into output: inout RaftOutput) {
        let metadata = newSnapshot.metadata
        precondition(
            metadata.index > commitIndex, "node \(config.id): installing snapshot \(metadata) at or below commit")
        let isSuffixKept = log.term(at: metadata.index) == metadata.term
        if !isSuffixKept { output.writes.truncateFrom = metadata.index.next }
        log.compact(through: metadata.index, term: metadata.term)
        // With `snapshotsOnDemand` the restored state machine is the snapshot: only its metadata is kept.
        let kept = config.snapshotsOnDemand ? Snapshot(metadata: metadata, data: []) : newSnapshot
        snapshot = kept
        output.writes.snapshot = kept
        commitIndex = metadata.index
        durableIndex = isSuffixKept ? max(durableIndex, metadata.index) : metadata.index
        appliedIndex = metadata.index
        isRestorePending = false
        output.snapshotToRestore = newSnapshot
        let configured = log.lastConfiguration() ?? (metadata.index, metadata.configuration)
        configurationIndex = configured.0
        configuration = configured.1
    }

    private mutating func answerChunk(
        _ index: LogIndex, received: Int, isComplete: Bool, to node: NodeID, _ output: inout RaftOutput
    ) {
        send(
            .installSnapshotResponse(snapshotIndex: index, receivedBytes: received, isComplete: isComplete), to: node,
            into: &output)
    }
}
