import CLinux
import CairnCore
import CairnNode
import CairnRocks
import CairnStorage
import Foundation
import Glibc
import Synchronization

/// What the storage thread reports back to the loop.
enum StorageCompletion: Sendable {
    /// `written` carries the batches back so that their memory is freed on the loop thread, which
    /// allocated it (see `StorageWorker.writeGroup`).
    case persisted(
        through: BatchSequence, durationNanoseconds: UInt64, synced: Bool, batches: Int, mutations: Int,
        written: [StorageBatch])
    case failed(BatchSequence, StorageError)
    /// A partition snapshot the snapshot thread built (`SnapshotWorker`).
    case snapshot(NodeInput)
}

/// The storage thread: applies the loop's batches to RocksDB with group commit.
///
/// Each time it wakes it takes every queued batch, writes them as one RocksDB WriteBatch and, under
/// `--fsync always`, one fsync (`sync: true`), then reports "durable through the last one" to the loop.
/// So every write that arrived in one loop turn (one batch) shares a WriteBatch and an fsync, and
/// turns that queue up while an fsync runs share the next one. Batches that hold only applied data
/// (`StorageBatch.needsSync` false) are written without an fsync even under `always`: the next fsync
/// (RocksDB syncs every earlier write of its WAL with it) or the one at shutdown covers them. Under
/// `everysec` it writes without sync and flushes the WAL about once a second; under `none` it never
/// syncs.
final class StorageWorker: Sendable {
    struct Queue: Sendable {
        var batches: [StorageBatch] = []
        var stopping = false
        /// The thread is waiting for work: the next enqueue must wake it. While it works, enqueues only
        /// add to the queue, which it checks before it sleeps again (one wake per group commit).
        var idle = false
        /// Something was written (by either thread) that no fsync covers yet.
        var unsynced = false
    }

    /// The most mutations a batch written on the loop thread may hold (`writeInline`): about half a
    /// millisecond of memtable inserts.
    static let inlineMutationsMax = 512

    let store: RocksKVStore
    let policy: FsyncPolicy
    private let wakeDescriptor: Int32
    private let queue = Mutex(Queue())
    private let report: @Sendable (StorageCompletion) -> Void
    private let finished = Mutex(false)

    init(store: RocksKVStore, policy: FsyncPolicy, report: @escaping @Sendable (StorageCompletion) -> Void) {
        self.store = store
        self.policy = policy
        self.report = report
        self.wakeDescriptor = eventfd(0, Int32(EFD_CLOEXEC))
        precondition(wakeDescriptor >= 0, "eventfd failed: \(System.errorText())")
    }

    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "cairn-storage"
        thread.start()
    }

    /// Queues a batch (called on the loop thread) and wakes the thread if it sleeps: whatever the
    /// fsync policy, a Raft entry's commit (and so a reply) waits for its batch to be written.
    func enqueue(_ batch: StorageBatch) {
        let mustWake = queue.withLock { state in
            state.batches.append(batch)
            guard state.idle else { return false }
            state.idle = false
            return true
        }
        if mustWake { wake() }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeDescriptor, &one, 8)
    }

    /// Asks the thread to write what is queued, sync, and exit; waits until it has.
    func stopAndWait() {
        queue.withLock {
            $0.stopping = true
            $0.idle = false
        }
        wake()
        while !finished.withLock({ $0 }) {
            var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// Writes `batch` on the calling thread (the loop), saving the storage thread's two wake-ups, when
    /// that is cheap: the batch needs no fsync under the policy, is small, and RocksDB need not slow
    /// writes down (a memtable switch or a WAL write the kernel throttles can still take a while). The caller makes sure no batch is queued or being written, so the order of
    /// batches holds. Returns the completion to report, or nil when the batch must be queued instead.
    func writeInline(_ batch: StorageBatch) -> StorageCompletion? {
        guard policy != .always || !batch.needsSync, batch.mutations.count <= Self.inlineMutationsMax else {
            return nil
        }
        let started = System.monotonicNanoseconds()
        do {
            guard try store.applyUnlessStalled([batch]) else { return nil }
        } catch {
            return .failed(batch.sequence, error)
        }
        queue.withLock { $0.unsynced = true }
        return .persisted(
            through: batch.sequence, durationNanoseconds: System.monotonicNanoseconds() - started, synced: false,
            batches: 1, mutations: batch.mutations.count, written: [])
    }

    private func run() {
        RocksKVStore.disablePerformanceCountersOnThisThread()
        var lastSync = System.monotonicNanoseconds()
        while true {
            let hasWork = queue.withLock { state in
                state.idle = state.batches.isEmpty && !state.stopping
                return !state.idle
            }
            if !hasWork {
                var descriptor = pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)
                let timeout: Int32 = policy == .everysec ? 1000 : -1
                if poll(&descriptor, 1, timeout) > 0 {
                    var counter: UInt64 = 0
                    _ = read(wakeDescriptor, &counter, 8)
                }
            }
            var (batches, stopping) = queue.withLock { state in
                let taken = state.batches
                state.batches.removeAll(keepingCapacity: true)
                return (taken, state.stopping)
            }
            let lastSequence = batches.last?.sequence
            if !batches.isEmpty {
                guard writeGroup(&batches) else { break }
            }
            let now = System.monotonicNanoseconds()
            // Under `always`, writes left unsynced (applied data only) are synced at shutdown.
            if stopping || policy == .everysec && now - lastSync >= 1_000_000_000 {
                // Cleared first: a write on the loop thread during the sync sets it again.
                let mustSync = queue.withLock { state in
                    defer { state.unsynced = false }
                    return state.unsynced
                }
                if mustSync {
                    do {
                        try store.sync()
                    } catch {
                        report(.failed(lastSequence ?? BatchSequence(0), error))
                        break
                    }
                }
                lastSync = now
            }
            if stopping, queue.withLock({ $0.batches.isEmpty }) { break }
        }
        finished.withLock { $0 = true }
    }

    /// Writes `taken` as one group commit; false after a failure was reported.
    ///
    /// The batches go back to the loop in the report and `taken` is left empty, so that the loop
    /// thread, which allocated their keys and values, also frees them. Freed here, they filled this
    /// thread's malloc caches while the loop's ran dry, and the loop's allocations took glibc's slow
    /// path (`_int_malloc` was 11 % of the loop thread under pipelined SETs); handing them back saved
    /// about 7 % of the CPU per pipelined SET (docs/bench.md, session 13).
    private func writeGroup(_ taken: inout [StorageBatch]) -> Bool {
        let batches = taken
        taken = []
        let started = System.monotonicNanoseconds()
        let sync = policy == .always && batches.contains { $0.needsSync }
        do {
            try store.apply(batches, sync: sync)
        } catch {
            report(.failed(batches[0].sequence, error))
            return false
        }
        // Before the report, after which the loop may write (`writeInline`). A synced write makes every
        // earlier one durable too.
        queue.withLock { $0.unsynced = !sync }
        let duration = System.monotonicNanoseconds() - started
        let mutations = batches.reduce(0) { $0 + $1.mutations.count }
        report(
            .persisted(
                through: batches.last!.sequence, durationNanoseconds: duration, synced: sync, batches: batches.count,
                mutations: mutations, written: consume batches))
        return true
    }
}
