import CairnCore

/// The core's view of its log: the last snapshot's position, then the entries after it, in memory.
///
/// Why in memory: the core stays a plain value with no reference to storage, so the simulator can copy,
/// crash and rebuild it freely. The application bounds its size by taking snapshots (`snapshotCreated`).
/// Storage mirrors it exactly, because every change here is also emitted as a `DurableWrites`.
struct RaftLog: Sendable, Equatable {
    private(set) var snapshotIndex: LogIndex
    private(set) var snapshotTerm: Term
    /// `entries[i].index == snapshotIndex + 1 + i`.
    private(set) var entries: [Entry]

    init(snapshotIndex: LogIndex, snapshotTerm: Term, entries: [Entry]) {
        self.snapshotIndex = snapshotIndex
        self.snapshotTerm = snapshotTerm
        self.entries = entries
        checkContiguous()
    }

    var firstIndex: LogIndex { snapshotIndex.next }
    var lastIndex: LogIndex { entries.isEmpty ? snapshotIndex : entries[entries.count - 1].index }
    var lastTerm: Term { entries.isEmpty ? snapshotTerm : entries[entries.count - 1].term }

    /// The term of the entry at `index`, or nil if it was compacted away or does not exist yet.
    func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[position(of: index)].term
    }

    /// Entries from `start` through `end` inclusive.
    /// - Precondition: `start` is after the snapshot and `end` is in the log.
    func entries(from start: LogIndex, through end: LogIndex) -> ArraySlice<Entry> {
        guard start <= end else { return [] }
        precondition(start > snapshotIndex && end <= lastIndex, "entries \(start)...\(end) outside log \(self)")
        return entries[position(of: start)...position(of: end)]
    }

    /// Entries from `start` through `end` (default: the last), as many as fit in `bytesMax` but always
    /// at least one if any exist.
    func entries(from start: LogIndex, through end: LogIndex? = nil, bytesMax: Int) -> [Entry] {
        let end = min(end ?? lastIndex, lastIndex)
        guard start <= end else { return [] }
        var result: [Entry] = []
        var bytes = 0
        for entry in entries[position(of: start)...position(of: end)] {
            bytes += entry.sizeBytes
            if !result.isEmpty && bytes > bytesMax { break }
            result.append(entry)
        }
        return result
    }

    /// Whether a candidate's log ending at `(index, term)` is at least as up-to-date as this one (§5.4.1):
    /// the later last term wins; with equal last terms, the longer log wins.
    func isUpToDate(lastIndex index: LogIndex, lastTerm term: Term) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// The largest index at or below `index` whose term is at most `term`, with that term (the fast
    /// backtracking search of Raft §5.3, in etcd's form). Stops at the snapshot, which always matches.
    /// Below the snapshot the term is unknown (nil): the caller must send a snapshot.
    func lastIndex(atOrBelow index: LogIndex, withTermAtMost term: Term) -> (LogIndex, Term?) {
        if index <= snapshotIndex { return (index, index == snapshotIndex ? snapshotTerm : nil) }
        var candidate = min(index, lastIndex)
        while candidate > snapshotIndex {
            let entryTerm = entries[position(of: candidate)].term
            if entryTerm <= term { return (candidate, entryTerm) }
            candidate = candidate.previous
        }
        return (snapshotIndex, snapshotTerm)
    }

    /// The configuration in force at `index`: the latest configuration entry at or before it, if the
    /// log still holds one.
    func configuration(atOrBefore index: LogIndex) -> ConfigurationState? {
        for entry in entries.reversed() where entry.index <= index {
            if case .configuration(let configuration) = entry.kind { return configuration }
        }
        return nil
    }

    /// The latest configuration entry in the log, if any.
    func lastConfiguration() -> (LogIndex, ConfigurationState)? {
        for entry in entries.reversed() {
            if case .configuration(let configuration) = entry.kind { return (entry.index, configuration) }
        }
        return nil
    }

    /// Appends `newEntries`, which MUST follow the last entry and not lower the term.
    mutating func append(_ newEntries: [Entry]) {
        for entry in newEntries {
            precondition(entry.index == lastIndex.next, "appending \(entry.index) after \(lastIndex): gap or overlap")
            precondition(entry.term >= lastTerm, "appending \(entry) after term \(lastTerm): terms must not decrease")
            entries.append(entry)
        }
    }

    /// Deletes every entry at or after `index`.
    mutating func truncate(from index: LogIndex) {
        precondition(index > snapshotIndex, "truncating \(index) at or below snapshot \(snapshotIndex)")
        guard index <= lastIndex else { return }
        entries.removeSubrange(position(of: index)...)
    }

    /// Forgets entries through `index` because a snapshot now covers them.
    mutating func compact(through index: LogIndex, term: Term) {
        if let existing = self.term(at: index), existing == term, index <= lastIndex {
            entries.removeFirst(snapshotIndex.distance(to: index))
        } else {
            entries.removeAll()
        }
        snapshotIndex = index
        snapshotTerm = term
        checkContiguous()
    }

    private func position(of index: LogIndex) -> Int {
        snapshotIndex.next.distance(to: index)
    }

    private func checkContiguous() {
        if let first = entries.first {
            precondition(
                first.index == snapshotIndex.next, "log starts at \(first.index) after snapshot \(snapshotIndex)")
            precondition(first.term >= snapshotTerm, "first entry \(first) older than snapshot term \(snapshotTerm)")
        }
        if let last = entries.last {
            precondition(
                last.index == snapshotIndex.advanced(by: entries.count), "log of \(entries.count) ends at \(last.index)"
            )
        }
    }
}
