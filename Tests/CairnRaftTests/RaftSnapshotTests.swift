import CairnCore
import Testing

@testable import CairnRaft

@Suite("Raft log compaction and snapshots (§7)")
struct RaftSnapshotTests {
    @Test("§7: snapshotCreated asks the shell to save the snapshot and drops the entries it covers")
    func snapshotCompactsLog() {
        var cluster = RaftCluster(size: 3)
        cluster.elect(1)
        for request in 0..<4 as Range<UInt64> {
            cluster.step(1, .propose(Array("s\(request)".utf8), request: RequestID(rawValue: request)))
        }
        cluster.deliverAll()
        cluster.snapshot(1)
        let core = cluster.cores[1]
        #expect(core?.snapshotMetadata.index == 5)
        #expect(core?.snapshotMetadata.term == 1)
        #expect(core?.snapshotMetadata.configuration == ConfigurationState(voters: [1, 2, 3]))
        #expect(core?.entries.isEmpty == true)
        #expect(cluster.storages[1]?.savedSnapshot.metadata.index == 5)
        #expect(cluster.storages[1]?.savedEntries.isEmpty == true)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test(
        "§7: a follower behind the snapshot receives it in checksummed chunks of snapshotChunkBytesMax and restores it")
    func laggingFollowerGetsSnapshot() {
        var cluster = Self.lagging(snapshotsOnDemand: false)
        cluster.transcript = []
        for _ in 0..<20 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        let bytes = RaftCluster.encode((0..<6).map { "value\($0)" }).count
        let chunks = cluster.transcript.filter { $0.hasPrefix("1->3 InstallSnapshot") }
        #expect(chunks.count >= (bytes + 7) / 8)
        #expect(cluster.transcript.contains { $0.hasPrefix("3 restore snapshot 7@1") })
        #expect(cluster.machines[3] == (0..<6).map { "value\($0)" } + ["tail"])
        #expect(cluster.storages[3]?.savedSnapshot.metadata.index == 7)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("§7: a chunk with a bad checksum or at the wrong offset is refused and asked for again")
    func badChunkRefused() throws {
        var core = try Fixture.core(2)
        let metadata = SnapshotMetadata(index: 5, term: 1, configuration: ConfigurationState(voters: [1, 2, 3]))
        var chunk = SnapshotChunk(metadata: metadata, totalBytes: 8, offset: 0, data: [1, 2, 3, 4], isLast: false)
        chunk.data[0] = 9  // corrupted in flight
        let refused = core.step(.received(Fixture.message(1, .installSnapshot(chunk)), from: 1))
        #expect(
            refused.messages.map(\.message.kind) == [
                .installSnapshotResponse(snapshotIndex: 5, receivedBytes: 0, isComplete: false)
            ])
        #expect(core.counters.rejectedSnapshotChunks == 1)
        let good = SnapshotChunk(metadata: metadata, totalBytes: 8, offset: 0, data: [1, 2, 3, 4], isLast: false)
        _ = core.step(.received(Fixture.message(1, .installSnapshot(good)), from: 1))
        let skipped = SnapshotChunk(metadata: metadata, totalBytes: 8, offset: 6, data: [7, 8], isLast: true)
        let wrongOffset = core.step(.received(Fixture.message(1, .installSnapshot(skipped)), from: 1))
        #expect(
            wrongOffset.messages.map(\.message.kind) == [
                .installSnapshotResponse(snapshotIndex: 5, receivedBytes: 4, isComplete: false)
            ])
        let last = SnapshotChunk(metadata: metadata, totalBytes: 8, offset: 4, data: [5, 6, 7, 8], isLast: true)
        let done = core.step(.received(Fixture.message(1, .installSnapshot(last)), from: 1))
        #expect(
            done.messages.map(\.message.kind) == [
                .installSnapshotResponse(snapshotIndex: 5, receivedBytes: 8, isComplete: true)
            ])
        #expect(done.snapshotToRestore == Snapshot(metadata: metadata, data: [1, 2, 3, 4, 5, 6, 7, 8]))
        #expect(done.writes.snapshot == done.snapshotToRestore)
        #expect(done.writes.truncateFrom == 6)
        #expect(core.commitIndex == 5)
    }

    @Test("§7: a follower keeps the entries after a snapshot whose last entry it already has")
    func snapshotKeepsMatchingSuffix() throws {
        var core = try Fixture.core(2, terms: [1, 1, 1, 1, 1, 1])
        let metadata = SnapshotMetadata(index: 3, term: 1, configuration: ConfigurationState(voters: [1, 2, 3]))
        let chunk = SnapshotChunk(metadata: metadata, totalBytes: 2, offset: 0, data: [1, 2], isLast: true)
        let output = core.step(.received(Fixture.message(1, .installSnapshot(chunk)), from: 1))
        #expect(output.writes.truncateFrom == nil)
        #expect(core.entries.map(\.index) == [4, 5, 6])
        #expect(core.commitIndex == 3)
    }

    @Test("§7: a restarted node rebuilds from its snapshot plus the log after it")
    func restartFromSnapshotPlusLog() {
        var cluster = RaftCluster(size: 3)
        cluster.elect(1)
        for request in 0..<3 as Range<UInt64> {
            cluster.step(1, .propose(Array("a\(request)".utf8), request: RequestID(rawValue: request)))
        }
        cluster.deliverAll()
        cluster.tickAll()
        cluster.deliverAll()
        cluster.snapshot(2)
        cluster.step(1, .propose(Array("b".utf8), request: 10))
        cluster.deliverAll()
        cluster.tickAll()
        cluster.deliverAll()
        cluster.crash(2)
        cluster.restart(2)
        cluster.tick(2)
        #expect(cluster.cores[2]?.snapshotMetadata.index == 4)
        #expect(cluster.machines[2] == ["a0", "a1", "a2"], "the snapshot at once")
        cluster.tickAll()
        cluster.deliverAll()
        #expect(
            cluster.machines[2] == ["a0", "a1", "a2", "b"], "the log after it once the leader says it is committed")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    // MARK: Snapshots on demand (the application's durable state is the snapshot)

    /// A 3-node cluster led by 1 (snapshot chunks of 8 bytes), where 3 missed six writes that 1 then
    /// compacted away (with `snapshotsOnDemand`, metadata only), and one more write after that.
    static func lagging(snapshotsOnDemand: Bool) -> RaftCluster {
        var cluster = RaftCluster(size: 3) {
            $0.snapshotsOnDemand = snapshotsOnDemand
            $0.snapshotChunkBytesMax = 8
        }
        cluster.elect(1)
        cluster.partition([[1, 2], [3]])
        for request in 0..<6 as Range<UInt64> {
            cluster.step(1, .propose(Array("value\(request)".utf8), request: RequestID(rawValue: request)))
        }
        cluster.deliverAll()
        cluster.snapshot(1)  // With snapshots on demand, a compaction (`RaftCluster.snapshot`).
        cluster.step(1, .propose(Array("tail".utf8), request: 99))
        cluster.deliverAll()
        cluster.heal()
        return cluster
    }

    @Test(
        "snapshotsOnDemand: compaction saves the metadata only; a follower that needs a snapshot gets the one the leader's application prepares, as of its applied index"
    )
    func onDemandSnapshotSent() {
        var cluster = Self.lagging(snapshotsOnDemand: true)
        #expect(cluster.storages[1]?.savedSnapshot.metadata.index == 7)
        #expect(cluster.storages[1]?.savedSnapshot.data.isEmpty == true)
        #expect(cluster.cores[1]?.entries.map(\.index) == [8])
        for _ in 0..<20 {
            cluster.tickAll()
            cluster.deliverAll()
            cluster.prepareSnapshots()
            cluster.deliverAll()
        }
        let values = (0..<6).map { "value\($0)" } + ["tail"]
        #expect(cluster.snapshotRequests[1, default: 0] >= 1)
        #expect(cluster.transcript.contains { $0.hasPrefix("3 restore snapshot 8@1") }, "as of 1's applied index")
        #expect(cluster.machines[3] == values)
        // The follower keeps the metadata only: its restored state machine is the snapshot.
        #expect(cluster.storages[3]?.savedSnapshot.metadata.index == 8)
        #expect(cluster.storages[3]?.savedSnapshot.data.isEmpty == true)
        // The leader dropped the prepared snapshot once nobody needed it.
        #expect(cluster.cores[1]?.leaderState?.outgoingSnapshot == nil)
        #expect(cluster.cores[1]?.progress(of: 3)?.state == .replicate)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test(
        "snapshotsOnDemand: while the application prepares the snapshot, the leader asks again on heartbeats and keeps the follower from campaigning"
    )
    func onDemandFollowerWaitsQuietly() {
        var cluster = Self.lagging(snapshotsOnDemand: true)
        let term = cluster.cores[1]?.term
        for _ in 0..<40 {  // Four election timeouts without an answer from the application.
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect(cluster.cores[1]?.role == .leader)
        #expect(cluster.cores[3]?.term == term, "3 heard its leader and did not campaign")
        #expect(cluster.cores[3]?.role == .follower)
        #expect(cluster.cores[1]?.progress(of: 3)?.state == .snapshotWanted)
        #expect(cluster.snapshotRequests[1, default: 0] >= 20, "asked again on heartbeats")
        cluster.prepareSnapshots()
        for _ in 0..<10 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect(cluster.machines[3] == (0..<6).map { "value\($0)" } + ["tail"])
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("snapshotsOnDemand: a prepared snapshot the log no longer holds is not sent; a newer one is asked for")
    func onDemandStaleSnapshotIgnored() {
        var cluster = Self.lagging(snapshotsOnDemand: true)
        cluster.tickAll()
        cluster.deliverAll()
        #expect(cluster.snapshotWanted.contains(1))
        // Prepared as of 5, but the log starts after 7 now: 3 could not go on from 6.
        cluster.step(1, .snapshotPrepared(index: 5, data: RaftCluster.encode(["stale"])))
        #expect(cluster.cores[1]?.leaderState?.outgoingSnapshot == nil)
        #expect(cluster.cores[1]?.progress(of: 3)?.state == .snapshotWanted)
        cluster.deliverAll()
        #expect(!cluster.transcript.contains { $0.contains("InstallSnapshot") })
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test(
        "snapshotsOnDemand: a restart whose applied index is behind a metadata-only snapshot fails with a clear error")
    func onDemandRestartBehindCompaction() throws {
        var storage = Fixture.storage(voters: [1, 2, 3], terms: [1, 1, 1, 1, 1, 1])
        var writes = DurableWrites()
        writes.snapshot = Snapshot(
            metadata: SnapshotMetadata(index: 5, term: 1, configuration: ConfigurationState(voters: [1, 2, 3])),
            data: [])
        storage.apply(writes)
        let config = Fixture.config(1) { $0.snapshotsOnDemand = true }
        #expect(throws: RaftStartError.self) { try RaftCore(config: config, storage: storage, appliedIndex: 4) }
        do {
            _ = try RaftCore(config: config, storage: storage, appliedIndex: 4)
        } catch {
            #expect("\(error)".contains("behind the log's compaction point 5"), "\(error)")
        }
        let core = try RaftCore(config: config, storage: storage, appliedIndex: 5)
        #expect(!core.isRestorePending)
        #expect(core.lastAppliedIndex == 5)
    }
}
