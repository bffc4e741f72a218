import CairnCore
import CairnRaft
import CairnStorage

/// The state machine of one group as one byte string: what a Raft snapshot carries (Raft §7).
///
/// A partition's snapshot is every record in its slots (expired ones too: replicas delete a key only
/// when an expiry entry applies, so a snapshot must not either) with the group's apply time; the meta
/// group's is the cluster map. Encoding:
/// ```
/// partition: [version=2][kind=1][applied time i64][count u64] count × ([key len u32][key][record len u32][record])
///            [tokens u64] tokens × ([token len u32][token][applied time i64][reply len u32][reply])
/// meta:      [version=2][kind=2][map present u8][map (rest)]
/// ```
/// The records are `ValueRecord` encodings, so a snapshot restores exactly what the leader stored; the
/// tokens are the partition's idempotency table (`NodeCore+Idempotency`). Version 1 had no tokens.
enum GroupSnapshot: Sendable, Equatable {
    case partition(
        appliedTime: Int64, records: [(key: [UInt8], record: ValueRecord)], idempotency: [IdempotencyEntry])
    case meta(ClusterMap?)

    static let version: UInt8 = 2

    static func == (lhs: GroupSnapshot, rhs: GroupSnapshot) -> Bool {
        switch (lhs, rhs) {
        case (.partition(let leftTime, let left, let leftTokens), .partition(let rightTime, let right, let rightTokens)):
            leftTime == rightTime && left.count == right.count && leftTokens == rightTokens
                && zip(left, right).allSatisfy { $0.key == $1.key && $0.record == $1.record }
        case (.meta(let left), .meta(let right)):
            left == right
        default:
            false
        }
    }

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        writer.write(Self.version)
        switch self {
        case .partition(let appliedTime, let records, let idempotency):
            writer.write(UInt8(1))
            writer.write(UInt64(bitPattern: appliedTime))
            writer.write(UInt64(records.count))
            for (key, record) in records {
                writer.writeLengthPrefixed(key)
                writer.writeLengthPrefixed(record.encoded())
            }
            writer.write(UInt64(idempotency.count))
            for entry in idempotency {
                writer.writeLengthPrefixed(entry.token)
                writer.write(UInt64(bitPattern: entry.time))
                writer.writeLengthPrefixed(entry.reply)
            }
        case .meta(let map):
            writer.write(UInt8(2))
            writer.write(UInt8(map == nil ? 0 : 1))
            if let map { writer.writeRest(map.encoded()) }
        }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> GroupSnapshot {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("snapshot version")
        guard version == 1 || version == Self.version else {
            throw .invalid(field: "snapshot version (expected 1 or \(Self.version))", value: UInt64(version))
        }
        let kind = try reader.readUInt8("snapshot kind")
        switch kind {
        case 1:
            let appliedTime = Int64(bitPattern: try reader.readUInt64("snapshot applied time"))
            let count = try reader.readUInt64("snapshot record count")
            // Each record takes at least 8 bytes of lengths: a count the bytes cannot hold is corrupt.
            guard count <= UInt64(bytes.count / 8) else {
                throw .tooLarge(field: "snapshot record count", value: count, limit: bytes.count / 8)
            }
            var records: [(key: [UInt8], record: ValueRecord)] = []
            records.reserveCapacity(Int(count))
            for _ in 0..<count {
                let key = try reader.readLengthPrefixed("snapshot key")
                let encoded = try reader.readLengthPrefixed("snapshot record")
                do {
                    records.append((key, try ValueRecord.decode(encoded, key: key)))
                } catch {
                    throw .invalid(
                        field: "snapshot record of \(encoded.count) bytes (\(error))", value: UInt64(records.count))
                }
            }
            var idempotency: [IdempotencyEntry] = []
            if version >= 2 {
                let tokens = try reader.readUInt64("snapshot token count")
                guard tokens <= UInt64(bytes.count / 16) else {
                    throw .tooLarge(field: "snapshot token count", value: tokens, limit: bytes.count / 16)
                }
                for _ in 0..<tokens {
                    let token = try reader.readLengthPrefixed("snapshot token")
                    let time = Int64(bitPattern: try reader.readUInt64("snapshot token time"))
                    idempotency.append(
                        IdempotencyEntry(
                            token: token, time: time, reply: try reader.readLengthPrefixed("snapshot reply")))
                }
            }
            try reader.expectEnd("partition snapshot")
            return .partition(appliedTime: appliedTime, records: records, idempotency: idempotency)
        case 2:
            let present = try reader.readUInt8("snapshot map flag")
            guard present <= 1 else {
                throw .invalid(field: "snapshot map flag (expected 0 or 1)", value: UInt64(present))
            }
            return .meta(present == 1 ? try ClusterMap.decode(reader.readRest()) : nil)
        default:
            throw .invalid(field: "snapshot kind (expected 1, partition, or 2, meta)", value: UInt64(kind))
        }
    }
}

extension NodeCore {
    // MARK: Log compaction (Raft §7)

    /// Compacts the log of every group that applied more than `config.snapshotEntries` entries past its
    /// snapshot (or its share of the node's log budget, if less), so logs stop growing (Raft §7).
    ///
    /// A partition's state machine is its records in the store, and they are its snapshot
    /// (`RaftConfig.snapshotsOnDemand`): compaction saves only the index, term and configuration, and
    /// deletes the entries it covers, so it costs the same however large the partition is. Its writes
    /// go in a later batch than the applied data they depend on, and that batch is fsync'd, which makes
    /// every earlier write of the store durable with it. Data is read only when a follower needs a
    /// snapshot (`isSnapshotWanted`, `SnapshotRead`). The meta group's state is the cluster map, small
    /// and kept in memory: its snapshot carries the map.
    mutating func compactLogs(into output: inout NodeOutput) {
        guard config.snapshotEntries > 0 else { return }
        if groupOrder.count != groups.count { groupOrder = groups.keys.sorted() }
        // The logs live in memory: all groups together keep about `logEntriesPerNodeMax` entries at most
        // (each group's share, never under `snapshotEntriesMin`), however many groups the node hosts.
        let share = max(Self.snapshotEntriesMin, config.logEntriesPerNodeMax / max(1, groups.count))
        let baseInterval = min(config.snapshotEntries, share)
        for group in groupOrder {
            guard groups.contains(group) else { continue }
            let applied = groups[existing: group].raft.lastAppliedIndex
            let since = groups[existing: group].raft.snapshotMetadata.index
            let interval = Self.staggered(baseInterval, group: group)
            let writes = groups[existing: group].appliedWrites &- groups[existing: group].compactedWrites
            guard applied > since, applied.rawValue >= since.rawValue + UInt64(interval) || writes >= UInt64(interval)
            else { continue }
            groups[existing: group].compactedWrites = groups[existing: group].appliedWrites
            let data = groups[existing: group].partition == nil ? GroupSnapshot.meta(metaState).encoded() : []
            stats.snapshotsCreated += 1
            stepGroup(group, .snapshotCreated(index: applied, data: data), into: &output)
        }
    }

    /// The least entries between a group's snapshots when the node's log budget is shared out.
    static let snapshotEntriesMin = 1000

    /// `interval` scaled by a factor of the group's own, one of 64 steps in [0.75, 1.25) (averaging
    /// about 1) taken from the group ID, so the same on every node and run. Groups written at the same
    /// rate would otherwise reach their interval together and all snapshot at once: with 128
    /// partitions and uniform writes, about 300 snapshots within seconds over a 3-node cluster, which
    /// cost 15–20 % of its throughput while they lasted (docs/bench.md, session 13). With different
    /// intervals they drift apart and their snapshots spread out.
    static func staggered(_ interval: Int, group: GroupID) -> Int {
        let step = Int(truncatingIfNeeded: (group.rawValue &* 0x9E37_79B9_7F4A_7C15) >> 58)  // 0...63
        return max(1, interval * (96 + step) / 128)
    }

    /// Partition snapshot reads in flight at once (snapshots a leader prepares to send): each holds a
    /// whole partition in memory while it is built, and takes a core's worth of CPU from the loop on a
    /// small machine. Removal reads (`PartitionRemoval`) are not counted.
    static let snapshotReadsMax = 2

    /// Replaces the state machine of `group` with `snapshot` (a snapshot the leader sent, or one saved
    /// before a crash that the applied data does not cover yet). Everything lands in this turn's batch
    /// with the snapshot itself and the group's applied index, so a crash keeps all of it or none.
    mutating func restore(_ snapshot: Snapshot, group: GroupID, into output: inout NodeOutput) {
        let state: GroupSnapshot
        do {
            state = try GroupSnapshot.decode(snapshot.data)
        } catch {
            output.fatal = "group \(group) received an undecodable snapshot at \(snapshot.metadata.index): \(error)"
            return
        }
        stats.snapshotsRestored += 1
        appliedGroups.insert(group)
        hostedGroupsChanged = true
        // Entries this node proposed that the snapshot covers: whether they were the ones committed is
        // unknown (the log that said so is gone), so their clients hear exactly that.
        if let covered = groups[group]?.appended.keys.filter({ $0 <= snapshot.metadata.index }) {
            for index in covered {
                for waiter in groups[group]?.appended.removeValue(forKey: index)?.waiters ?? [] {
                    finish(
                        waiter, error: "TRYAGAIN the outcome of this write is unknown: a snapshot replaced the log",
                        into: &output)
                }
            }
        }
        switch state {
        case .meta(let restored):
            guard let restored else { return }
            metaState = restored
            keyspace.appendRaw([.put(key: Self.metaStateKey, value: restored.encoded())])
            if restored.epoch > (map?.epoch ?? 0) { adopt(restored) }
        case .partition(let appliedTime, let records, let idempotency):
            guard let partition = partition(ofGroup: group), let map else {
                output.fatal = "partition snapshot for group \(group), which is not a hosted partition"
                return
            }
            let slots = map.slots(of: partition)
            do {
                try keyspace.removeSlots(Int(slots.lowerBound)...Int(slots.upperBound))
                try replaceIdempotency(of: group, with: idempotency)
            } catch {
                output.fatal = "could not read partition \(partition) to restore a snapshot: \(error)"
                return
            }
            for (key, record) in records { keyspace.put(key, record, previous: nil) }
            groups[existing: group].appliedTime = appliedTime
            groups[existing: group].expiring.removeAll()
            output.logs.append(
                NodeLog(
                    .info, "restored a partition from a snapshot",
                    [
                        ("partition", "\(partition)"), ("index", "\(snapshot.metadata.index)"),
                        ("keys", "\(records.count)"), ("bytes", "\(snapshot.data.count)"),
                    ]))
        }
    }
}
