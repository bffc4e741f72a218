import CairnCore
import CairnRaft
import CairnStorage

/// A read of a partition's whole state off the event loop: to encode it as a snapshot, or to count
/// the keys of a copy dropped here before removing them (`PartitionRemoval`).
///
/// Reading a partition into a snapshot costs about 2 µs a key: 100,000 keys held the loop for
/// 150 to 250 ms, long enough for the followers of every group this node leads to start elections.
/// So the core does not read it: it asks the shell for a `SnapshotRead`, which carries
/// what the store does not hold yet (the partition's writes and idempotency records that are not
/// durable: the overlay), and the shell takes a `KVReadView` of the store *while handling that
/// output*, before any later batch reaches the store. View and overlay together are the partition
/// exactly as of the request: every write the view lacks is in the overlay (it is not durable), and
/// no later write is in either. The shell runs `build(from:)` (pure) on another thread and hands the
/// result back as a `NodeInput` (`.snapshotBuilt` or `.partitionCounted`); only then does the core act
/// on it. The simulator and the test harnesses do the same synchronously.
public struct SnapshotRead: Sendable {
    /// Matches the answer to the request: a group dropped and hosted again meanwhile asked nothing.
    public let id: UInt64
    let slots: ClosedRange<Int>
    let records: [ByteKey: ValueRecord?]
    let purpose: Purpose

    enum Purpose: Sendable {
        /// Encode `group`'s snapshot as of its entry `index`, for its leader to send.
        case snapshot(
            group: GroupID, index: LogIndex, appliedTime: Int64, idempotencyRange: (start: [UInt8], end: [UInt8]),
            idempotencyRecords: [ByteKey: [UInt8]?])
        /// Count the keys of `partition`'s copy, which this node dropped, so one range deletion can
        /// remove them with the key counters kept right.
        case removal(partition: Int)
    }

    /// Reads the partition through `view` with the overlay on top, and encodes the snapshot or counts
    /// the keys. Pure, and safe on any thread: it touches nothing but its arguments.
    public func build(from view: any KVReadView) -> NodeInput {
        switch purpose {
        case .snapshot(let group, let index, let appliedTime, let idempotencyRange, let idempotencyRecords):
            do {
                let records = try Keyspace.records(inSlots: slots, store: view, overlay: records)
                let idempotency = try Self.merged(
                    view, from: idempotencyRange.start, to: idempotencyRange.end, overlay: idempotencyRecords
                ).compactMap(NodeCore.idempotencyEntry)
                let data = GroupSnapshot.partition(appliedTime: appliedTime, records: records, idempotency: idempotency)
                return .snapshotBuilt(
                    SnapshotBuilt(
                        id: id, group: group, index: index, outcome: .success(data.encoded())))
            } catch {
                return .snapshotBuilt(
                    SnapshotBuilt(id: id, group: group, index: index, outcome: .failure(error)))
            }
        case .removal(let partition):
            do {
                let records = try Keyspace.records(inSlots: slots, store: view, overlay: records)
                let expiring = records.compactMap { entry in entry.record.expiresAt.map { (entry.key, $0) } }
                return .partitionCounted(
                    PartitionCount(
                        id: id, partition: partition,
                        outcome: .success(RemovalCount(keys: Int64(records.count), expiring: expiring))))
            } catch {
                return .partitionCounted(PartitionCount(id: id, partition: partition, outcome: .failure(error)))
            }
        }
    }

    /// Every pair in `start..<end` of `view` with `overlay` laid over it, in key order.
    static func merged(
        _ view: any KVReadView, from start: [UInt8], to end: [UInt8], overlay: [ByteKey: [UInt8]?]
    ) throws(StorageError) -> [(key: [UInt8], value: [UInt8])] {
        var found: [(key: [UInt8], value: [UInt8])] = []
        var from = start
        while true {
            let page = try view.scan(from: from, to: end, limit: 4096)
            for (key, value) in page where overlay.isEmpty || overlay[ByteKey(key)] == nil {
                found.append((key, value))
            }
            guard page.count == 4096, let last = page.last else { break }
            from = last.key + [0]
        }
        let added = overlay.compactMap { key, value in value.map { (key: key.bytes, value: $0) } }
        if !added.isEmpty {
            found += added
            found.sort { $0.key.lexicographicallyPrecedes($1.key) }
        }
        return found
    }
}

/// A removal read's result (`NodeInput.partitionCounted`).
public struct PartitionCount: Sendable {
    public let id: UInt64
    let partition: Int
    let outcome: Result<RemovalCount, StorageError>
}

/// What a dropped copy holds: how many keys (expired ones included), and the keys with an expiry time
/// with that time (their expiry-index entries are deleted with them).
struct RemovalCount: Sendable {
    let keys: Int64
    let expiring: [(key: [UInt8], expiresAt: Int64)]
}

/// A snapshot read's result (`NodeInput.snapshotBuilt`).
public struct SnapshotBuilt: Sendable {
    public let id: UInt64
    let group: GroupID
    let index: LogIndex
    let outcome: Result<[UInt8], StorageError>
}

extension NodeCore {
    /// Asks the shell to read `group`'s partition as of now, off the loop (see `SnapshotRead`).
    mutating func requestSnapshotRead(_ group: GroupID, partition: Int, into output: inout NodeOutput) {
        guard let map else { return }
        let slots = map.slots(of: partition)
        let range = Int(slots.lowerBound)...Int(slots.upperBound)
        let idempotency = Self.idempotencyRange(StorageLayout.idempotencyPrefix, group: group)
        let id = nextRequestID()
        groups[existing: group].snapshotReadID = id
        output.snapshotReads.append(
            SnapshotRead(
                id: id, slots: range, records: keyspace.pendingRecords(inSlots: range),
                purpose: .snapshot(
                    group: group, index: groups[existing: group].raft.lastAppliedIndex,
                    appliedTime: groups[existing: group].appliedTime, idempotencyRange: idempotency,
                    idempotencyRecords: keyspace.pendingAux(from: idempotency.start, to: idempotency.end))))
    }

    /// A leader's group needs a snapshot to send (`RaftOutput.isSnapshotWanted`): read its partition,
    /// unless a read of it is out already or `snapshotReadsMax` are (the core asks again on heartbeats).
    mutating func snapshotWanted(_ group: GroupID, into output: inout NodeOutput) {
        guard groups.contains(group), groups[existing: group].snapshotReadID == nil,
            groups[existing: group].snapshotReadAfterTick <= ticks, let partition = groups[existing: group].partition
        else { return }
        if groupOrder.count != groups.count { groupOrder = groups.keys.sorted() }
        let reading = groupOrder.count { groups.contains($0) && groups[existing: $0].snapshotReadID != nil }
        guard reading < Self.snapshotReadsMax else { return }
        requestSnapshotRead(group, partition: partition, into: &output)
    }

    /// Ticks (a minute at 10 ms) before a partition too large to send is read again.
    static let snapshotRetryTicks: UInt64 = 6000

    /// A snapshot read came back: the group's leader sends it to the followers that need it.
    mutating func snapshotBuilt(_ built: SnapshotBuilt, into output: inout NodeOutput) {
        guard groups.contains(built.group), groups[existing: built.group].snapshotReadID == built.id else { return }
        groups[existing: built.group].snapshotReadID = nil
        switch built.outcome {
        case .failure(let error):
            output.fatal = "could not read group \(built.group) to snapshot it: \(error)"
        case .success(let data):
            guard data.count <= Limits.raftSnapshotBytesMax else {
                groups[existing: built.group].snapshotReadAfterTick = ticks + Self.snapshotRetryTicks
                output.logs.append(
                    NodeLog(
                        .warn, "partition too large to send as a snapshot; followers behind its log cannot catch up",
                        [
                            ("group", "\(built.group)"), ("bytes", "\(data.count)"),
                            ("limit", "\(Limits.raftSnapshotBytesMax)"),
                        ]))
                return
            }
            stats.snapshotsPrepared += 1
            let sent =
                config._injectedBug == .snapshotWithoutData
                ? GroupSnapshot.partition(appliedTime: 0, records: [], idempotency: []).encoded() : data
            stepGroup(built.group, .snapshotPrepared(index: built.index, data: sent), into: &output)
        }
    }
}
