import CLinux
import CairnBench
import Glibc

/// A shell command started at a set time of the run (`--fault`), by `/bin/sh -c`.
final class FaultLauncher {
    let command: String
    let at: UInt64
    var processID: pid_t?
    var report: FaultReport?

    init(command: String, at: UInt64) {
        self.command = command
        self.at = at
    }

    func launch(elapsed: UInt64) {
        var report = FaultReport(command: command, startedAt: elapsed)
        var arguments: [UnsafeMutablePointer<CChar>?] = []
        for word in ["/bin/sh", "-c", command] { arguments.append(strdup(word)) }
        arguments.append(nil)
        defer { for argument in arguments { free(argument) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, "/bin/sh", nil, nil, arguments, environ)
        if status == 0 { processID = pid } else { report.launchError = BenchSystem.errorText(status) }
        self.report = report
    }

    /// Collects the exit status if the command has finished (never waits).
    func collect() {
        guard let pid = processID, report?.exitStatus == nil else { return }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            // WIFEXITED / WEXITSTATUS, spelled out (the C macros are not imported).
            let signal = status & 0x7F
            report?.exitStatus = signal == 0 ? (status >> 8) & 0xFF : 128 + signal
            processID = nil
        }
    }
}

extension LoadDriver {
    /// Runs one phase: the load phase (until every record is written) or the run phase (for the
    /// duration), then drains what is in flight within the timeout. Returns its report.
    func runPhase(
        name: String, source: OperationSource, schedule: OpenLoopSchedule?, duration: UInt64?, fault: FaultLauncher?
    ) throws(BenchFailure) -> PhaseReport {
        self.source = source
        self.schedule = schedule
        // The load phase only writes the records; a deep pipeline makes it quick.
        pipelineLimit = duration == nil ? max(settings.pipeline, Self.loadPipeline) : settings.pipeline
        if let schedule {
            let base = schedule.baseRate
            let profile = schedule.profile
            let total = schedule.duration
            recorder = PhaseRecorder(
                targetRate: { second in
                    profile.rate(base: base, at: UInt64(second) * 1_000_000_000 + 500_000_000, duration: total)
                }, duration: duration)
        } else {
            recorder = PhaseRecorder(duration: duration)
        }
        outstanding = 0
        waitingTotal = 0
        phaseStart = BenchSystem.monotonicNanoseconds()
        var events = [epoll_event](repeating: epoll_event(), count: 512)
        var nextMaintenance: UInt64 = 0
        var nextProgress = phaseStart + 1_000_000_000
        var lastProgress = phaseStart
        var lastCompletions: UInt64 = 0
        while true {
            var now = BenchSystem.monotonicNanoseconds()
            let elapsed = now - phaseStart
            if let duration, elapsed >= duration { break }
            if isInterrupted { break }
            if duration == nil, case .load(let next, let total) = self.source, next >= total, outstanding == 0 { break }
            if let fault, fault.report == nil, elapsed >= fault.at {
                fault.launch(elapsed: elapsed)
                recorder.availability.faultStarted(at: elapsed)
            }
            if now >= nextMaintenance {
                maintain(now: now)
                nextMaintenance = now + Self.maintenanceIntervalNanoseconds
            }
            if duration == nil {
                let completions = recorder.operations + recorder.errors
                if completions != lastCompletions {
                    lastCompletions = completions
                    lastProgress = now
                } else if now - lastProgress > settings.timeout {
                    throw .stalled("the \(name) phase made no progress for \(BenchDuration.format(settings.timeout))")
                }
            }
            if now >= nextProgress {
                nextProgress += 1_000_000_000
                recorder.advance(to: now - phaseStart)
                reportProgress(name: name, elapsed: now - phaseStart, duration: duration)
            }
            issue(now: now)
            fill(now: now)
            flush()
            now = BenchSystem.monotonicNanoseconds()
            var wakeAt = min(nextMaintenance, nextProgress)
            if let duration { wakeAt = min(wakeAt, phaseStart + duration) }
            if let open = self.schedule, !open.isFinished, waitingTotal < budget {
                wakeAt = min(wakeAt, phaseStart + open.nextIntendedNanoseconds)
            }
            let count = waitForEvents(&events, nanoseconds: wakeAt > now ? min(wakeAt - now, 100_000_000) : 0)
            for index in 0..<max(0, Int(count)) {
                handle(events[index].data.fd, events[index].events)
            }
        }
        let end = drain()
        if let open = self.schedule {
            recorder.unsent = open.dueButNotTaken(now: end - phaseStart) + UInt64(waitingTotal)
        }
        dropWaiting()
        let phaseDuration = isInterrupted ? end - phaseStart : max(end - phaseStart, duration ?? 0)
        recorder.finish(at: end - phaseStart, stoppedEarly: isInterrupted)
        fault?.collect()
        return PhaseReport(name: name, duration: phaseDuration, recorder: recorder)
    }

    /// Waits for events at most `nanoseconds`. epoll_pwait2 takes the timeout with nanosecond
    /// precision, so an open-loop schedule is met to within the kernel's timer slack (about 50 µs)
    /// without spinning; epoll_wait's milliseconds would either delay requests by up to 1 ms (which
    /// the report would charge as latency) or burn a core. Kernels before 5.11 fall back to it.
    func waitForEvents(_ events: inout [epoll_event], nanoseconds: UInt64) -> Int32 {
        if hasPreciseWait {
            var timeout = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
            let count = epoll_pwait2(epoll, &events, Int32(events.count), &timeout, nil)
            if count >= 0 || errno != ENOSYS { return count }
            hasPreciseWait = false
        }
        return epoll_wait(epoll, &events, Int32(events.count), Int32((nanoseconds + 999_999) / 1_000_000))
    }

    func handle(_ fd: Int32, _ events: UInt32) {
        if fd == signalDescriptor {
            var info = signalfd_siginfo()
            while read(fd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 { isInterrupted = true }
            return
        }
        guard Int(fd) < byDescriptor.count, let connection = byDescriptor[Int(fd)] else { return }
        if case .connecting = connection.state {
            if events & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
                connected(connection, now: BenchSystem.monotonicNanoseconds())
            }
            return
        }
        if events & EPOLLOUT.rawValue != 0 { write(connection) }
        if events & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { readable(connection) }
    }

    /// Every 10 ms: open idle connections whose retry time came, time out slow connects and replies.
    func maintain(now: UInt64) {
        releaseDelayedRetries(now: now)
        for endpoint in endpoints {
            for transition in endpoint.breaker.drainTransitions() where transition.to != .halfOpen {
                recorder.countCircuit(opened: transition.to == .open)
            }
            for connection in endpoint.connections {
                switch connection.state {
                case .idle(let retryAt):
                    if now >= retryAt && !isStopping { open(connection, now: now) }
                case .connecting(let deadline):
                    if now >= deadline {
                        closeDescriptor(connection)
                        connectFailed(connection, code: ETIMEDOUT, now: now)
                    }
                case .ready:
                    if let oldest = connection.inFlight.first, now > oldest.sent + settings.timeout {
                        connectionLost(connection, kind: "timeout", now: now)
                    }
                }
            }
        }
    }

    func reportProgress(name: String, elapsed: UInt64, duration: UInt64?) {
        guard let progress else { return }
        var total = duration ?? 0
        if duration == nil, case .load(let next, let records) = source {
            total = records == 0 ? 0 : elapsed * UInt64(records) / UInt64(max(next, 1))
        }
        progress(
            ReportText.progress(
                phase: name, elapsed: elapsed, duration: total, lastSecond: recorder.seconds.last,
                operations: recorder.operations, errors: recorder.errors))
    }

    /// Stops sending and waits (at most `timeout`) for the replies still in flight; what does not
    /// come back in time fails as `timeout`. Returns the time it ended.
    func drain() -> UInt64 {
        isStopping = true
        defer { isStopping = false }
        let deadline = BenchSystem.monotonicNanoseconds() + settings.timeout
        var events = [epoll_event](repeating: epoll_event(), count: 512)
        while inFlightCount > 0 {
            let now = BenchSystem.monotonicNanoseconds()
            if now >= deadline { break }
            flush()
            let timeout = Int32(min((deadline - now) / 1_000_000 + 1, 100))
            let count = epoll_wait(epoll, &events, Int32(events.count), timeout)
            for index in 0..<max(0, Int(count)) {
                handle(events[index].data.fd, events[index].events)
            }
        }
        let end = BenchSystem.monotonicNanoseconds()
        for endpoint in endpoints {
            for connection in endpoint.connections where connection.pipelined > 0 {
                connectionLost(connection, kind: "timeout", now: end)
            }
        }
        return end
    }

    var inFlightCount: Int {
        endpoints.reduce(0) { sum, endpoint in sum + endpoint.connections.reduce(0) { $0 + $1.pipelined } }
    }

    /// Forgets operations generated but never sent (the caller counted them); retries still waiting
    /// out their backoff end as errors of the failure they were retrying.
    func dropWaiting() {
        let now = BenchSystem.monotonicNanoseconds()
        for retry in delayed { finishFailed(retry.waiting.operation, kind: retry.kind, now: now) }
        delayed.removeAll()
        for endpoint in endpoints {
            for waiting in endpoint.waiting.removeAll() {
                if let failure = waiting.lastFailure {
                    // A retry that was queued but never sent: the operation failed, as its last attempt did.
                    finishFailed(waiting.operation, kind: failure, now: now)
                } else {
                    outstanding -= 1
                }
            }
        }
        waitingTotal = 0
    }

    /// Closes every connection (between runs against different endpoints).
    func closeAll() {
        for endpoint in endpoints {
            for connection in endpoint.connections {
                closeDescriptor(connection)
                connection.state = .idle(retryAt: 0)
            }
        }
    }
}
