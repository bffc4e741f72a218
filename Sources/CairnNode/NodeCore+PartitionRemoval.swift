import CairnCore
import CairnStorage

/// A copy of a partition this node dropped (the partition moved away), whose keys are still to be
/// deleted.
///
/// Deleting them one at a time on the loop (a scan, then a delete per key) held the loop for 20 to
/// 130 ms per partition of 8,000 keys in the rebalance benchmark, several partitions in a turn: the
/// followers of the groups the node led started elections (368 in one run), and client p99 during a
/// rebalance went from 25 ms to 200 ms. So removal takes two steps:
///
/// 1. `beginRemoval` (in the batch that drops the group's log): writes a marker, and asks the shell to
///    count the copy's keys and expiring keys off the loop (`SnapshotRead`, purpose `.removal`).
///    Nothing writes to those slots meanwhile: the group is gone from this node, and a new copy of
///    the partition is not created here until the removal is durable (`syncHostedGroups`).
/// 2. `partitionCounted`: one range deletion of the slots' data, a deletion of each removed key's
///    expiry-index entry (the index is ordered by time, not slot), the counters lowered by the count,
///    and the marker deleted, all in one batch.
///
/// From step 1 until step 2's batch is durable, reads and scans do not see the slots
/// (`Keyspace.hideSlots`); DBSIZE and the key metrics still count the keys until step 2. A crash
/// between the two leaves the marker: `loadRemovals` finds it at start, hides the slots again and
/// counts again (the keys are still there: step 2's batch is atomic).
struct PartitionRemoval: Sendable {
    let group: GroupID
    let slots: ClosedRange<Int>
    /// The count read in flight, if any (a read is asked for again after a restart).
    var readID: UInt64?
}

extension NodeCore {
    static let removalPrefix = StorageLayout.metaKey("removing/")

    /// The marker of `partition`'s pending removal: its group and slot range, so a restart can finish it.
    static func removalKey(_ partition: Int) -> [UInt8] {
        var writer = ByteWriter(capacity: removalPrefix.count + 2)
        writer.writeRest(removalPrefix)
        writer.write(UInt16(partition))
        return writer.bytes
    }

    /// Step 1: records the removal of this node's copy of `partition` and asks for its keys' count.
    mutating func beginRemoval(
        _ partition: Int, group: GroupID, slots: ClosedRange<Int>, into output: inout NodeOutput
    ) {
        var marker = ByteWriter(capacity: 12)
        marker.write(group.rawValue)
        marker.write(UInt16(slots.lowerBound))
        marker.write(UInt16(slots.upperBound))
        keyspace.appendRaw([.put(key: Self.removalKey(partition), value: marker.bytes)])
        keyspace.hideSlots(slots)
        removals[partition] = PartitionRemoval(group: group, slots: slots, readID: nil)
        requestRemovalReads(into: &output)
    }

    /// Asks for the count of every removal that has no read in flight (new, or found at start).
    mutating func requestRemovalReads(into output: inout NodeOutput) {
        guard !removals.isEmpty else { return }
        for partition in removals.keys.sorted() where removals[partition]?.readID == nil {
            let id = nextRequestID()
            removals[partition]?.readID = id
            let slots = removals[partition]!.slots
            output.snapshotReads.append(
                SnapshotRead(
                    id: id, slots: slots, records: keyspace.pendingRecords(inSlots: slots),
                    purpose: .removal(partition: partition)))
        }
    }

    /// Step 2: the count came back; deletes the keys with one range deletion.
    mutating func partitionCounted(_ counted: PartitionCount, into output: inout NodeOutput) {
        guard let removal = removals[counted.partition], removal.readID == counted.id else { return }
        switch counted.outcome {
        case .failure(let error):
            output.fatal = "could not read partition \(counted.partition) to delete this node's copy: \(error)"
        case .success(let counts):
            keyspace.removeSlots(removal.slots, holding: counts)
            keyspace.appendRaw([.delete(key: Self.removalKey(counted.partition))])
            removals[counted.partition] = nil
            // A new copy of the group waits for this batch too (`syncHostedGroups`).
            droppedGroupBatches[removal.group] = keyspace.openBatch.sequence
            hostedGroupsChanged = true
        }
    }

    /// Reads the removals a previous run began and did not finish (their markers).
    mutating func loadRemovals() throws(StorageError) {
        var end = Self.removalPrefix
        end[end.count - 1] += 1
        for (key, value) in try keyspace.store.scan(from: Self.removalPrefix, to: end, limit: Int(UInt16.max) + 1) {
            var reader = ByteReader(value)
            let suffix = Array(key[Self.removalPrefix.count...])
            guard suffix.count == 2, value.count == 12,
                let group = try? reader.readUInt64("group"),
                let lower = try? reader.readUInt16("first slot"),
                let upper = try? reader.readUInt16("last slot"), lower <= upper
            else {
                throw .corruptRecord(key: key, reason: "a partition removal marker of \(value.count) bytes")
            }
            let partition = Int(suffix[0]) << 8 | Int(suffix[1])
            guard !groups.contains(GroupID(rawValue: group)) else {
                // The partition is hosted again: never the case when this node wrote the marker (a new
                // copy waits for the removal), but a version that knew no markers may have run on this
                // store in between. Its data is the live copy's now; the marker is stale.
                keyspace.appendRaw([.delete(key: key)])
                continue
            }
            keyspace.hideSlots(Int(lower)...Int(upper))
            removals[partition] = PartitionRemoval(
                group: GroupID(rawValue: group), slots: Int(lower)...Int(upper), readID: nil)
        }
    }
}
