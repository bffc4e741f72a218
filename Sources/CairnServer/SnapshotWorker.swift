import CLinux
import CairnNode
import CairnRocks
import CairnStorage
import Foundation
import Glibc
import Synchronization

/// The snapshot thread: builds the partition snapshots the core asked for (`NodeOutput.snapshotReads`)
/// from store views the loop took when it handled the request, and reports each back to the loop as a
/// `NodeInput.snapshotBuilt`. Reading a large partition takes hundreds of milliseconds; here it
/// delays no reply and no heartbeat.
final class SnapshotWorker: Sendable {
    struct Job: Sendable {
        let read: SnapshotRead
        let view: any KVReadView
    }
    struct Queue: Sendable {
        var jobs: [Job] = []
        var stopping = false
    }

    private let queue = Mutex(Queue())
    private let wakeDescriptor: Int32
    private let finished = Mutex(false)
    private let report: @Sendable (StorageCompletion) -> Void

    init(report: @escaping @Sendable (StorageCompletion) -> Void) {
        self.report = report
        wakeDescriptor = eventfd(0, Int32(EFD_CLOEXEC))
        precondition(wakeDescriptor >= 0, "eventfd failed: \(System.errorText())")
    }

    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "cairn-snapshots"
        thread.start()
    }

    /// Queues a read with the view taken for it (on the loop thread).
    func enqueue(_ read: SnapshotRead, view: any KVReadView) {
        queue.withLock { $0.jobs.append(Job(read: read, view: view)) }
        var one: UInt64 = 1
        _ = Glibc.write(wakeDescriptor, &one, 8)
    }

    /// Drops the reads not started, lets the one under way finish, and waits for the thread to exit:
    /// after this no view of the store is held (RocksDB must not close with snapshots open).
    func stopAndWait() {
        queue.withLock {
            $0.stopping = true
            $0.jobs.removeAll()
        }
        var one: UInt64 = 1
        _ = Glibc.write(wakeDescriptor, &one, 8)
        while !finished.withLock({ $0 }) {
            var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&pause, nil)
        }
    }

    private func run() {
        RocksKVStore.disablePerformanceCountersOnThisThread()
        while true {
            let (job, stopping) = queue.withLock { state in
                (state.jobs.isEmpty ? nil : state.jobs.removeFirst(), state.stopping)
            }
            if stopping { break }
            guard let job else {
                var descriptor = pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)
                if poll(&descriptor, 1, -1) > 0 {
                    var counter: UInt64 = 0
                    _ = read(wakeDescriptor, &counter, 8)
                }
                continue
            }
            report(.snapshot(job.read.build(from: job.view)))
        }
        finished.withLock { $0 = true }
    }
}
