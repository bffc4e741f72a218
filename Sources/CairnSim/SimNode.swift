import CairnCore
import CairnRaft

/// One simulated node: its core (nil while crashed), its disk, and its state machine.
///
/// The disk is a `MemoryRaftLog` holding only what is durable, plus a FIFO of write batches still in
/// flight, each with the simulated time its fsync completes. Each batch travels with the rest of its
/// `RaftOutput`: messages, applies, reads and replies are carried out only once the batch is durable,
/// and in output order, so nothing that depends on a write leaves before the write is on disk
/// (`RaftCore`'s lane contract). A crash throws the in-flight batches away.
final class SimNode {
    /// A write batch on its way to disk, with the output that waits for it (nil when the injected bug
    /// `ackBeforeFsync` carried the output out already).
    struct DiskItem {
        var readyMs: UInt64
        var writes: DurableWrites
        var output: RaftOutput?
    }

    /// A proposal this node appended for a client, waiting to be applied.
    struct Proposal {
        var request: RequestID
        var term: Term
    }

    /// A client request this node is working on.
    struct ClientRecord {
        var client: Int
        var key: [UInt8]
        /// For reads: the highest commit anywhere when the read arrived (Read Freshness).
        var readFloor: LogIndex
    }

    let id: NodeID
    /// Position in `Simulation.nodes` (`id` − 1).
    let position: Int
    var core: RaftCore?
    /// Bumped by every crash, so completions scheduled before a crash are ignored after it.
    var incarnation = 0
    var durable: MemoryRaftLog
    var disk: [DiskItem] = []
    var diskHead = 0
    /// When the last batch issued becomes durable (batches complete in order).
    var diskReadyMs: UInt64 = 0

    var machine = KVStateMachine()
    /// What the state machine applied (the shell's view; the core may have handed out more, still
    /// waiting in `disk`).
    var appliedIndex: LogIndex = 0
    /// The index of the last snapshot the state machine made or restored.
    var snapshotIndex: LogIndex = 0
    var proposals: [LogIndex: Proposal] = [:]
    var clientRecords: [RequestID: ClientRecord] = [:]
    /// Reads ReadIndex let through, waiting for `appliedIndex` to reach their index, in arrival order.
    var waitingReads: [ReadResult] = []

    init(id: NodeID, configuration: ConfigurationState) {
        self.id = id
        self.position = Int(id.rawValue) - 1
        self.durable = MemoryRaftLog(bootstrap: configuration)
    }

    var isUp: Bool { core != nil }

    /// Write batches not yet durable.
    var pendingDiskCount: Int { disk.count - diskHead }

    /// Takes the first in-flight batch if it is durable by `nowMs`.
    func popDurable(nowMs: UInt64) -> DiskItem? {
        guard diskHead < disk.count, disk[diskHead].readyMs <= nowMs else { return nil }
        let item = disk[diskHead]
        diskHead += 1
        if diskHead == disk.count {
            disk.removeAll(keepingCapacity: true)
            diskHead = 0
        }
        return item
    }

    /// Forgets everything volatile: the core, in-flight writes, the state machine, requests. Returns how
    /// many write batches were lost.
    func crash(nowMs: UInt64) -> Int {
        let lost = disk[diskHead...].filter { !$0.writes.isEmpty }.count
        core = nil
        incarnation += 1
        disk.removeAll()
        diskHead = 0
        diskReadyMs = nowMs
        machine = KVStateMachine()
        appliedIndex = 0
        snapshotIndex = 0
        proposals.removeAll()
        clientRecords.removeAll()
        waitingReads.removeAll()
        return lost
    }
}
