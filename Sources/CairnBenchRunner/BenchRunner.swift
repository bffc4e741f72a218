import CLinux
import CairnBench
import CairnRESP
import Glibc

/// Runs `cairn bench`: probes the endpoint, connects, runs the load and run phases, prints the
/// summary, writes the JSON and HTML reports, and, with `--compare`, does it all again against the
/// second endpoint and prints both with ratios.
public enum BenchRunner {
    /// Runs the benchmark; returns the exit status (0 done, 1 could not run or finish).
    public static func run(_ settings: BenchSettings) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let seed = settings.seed ?? (BenchSystem.monotonicNanoseconds() &* 0x9E37_79B9_7F4A_7C15)
        var reports: [RunReport] = []
        var runs: [[Endpoint]] = [settings.targets]
        if let compare = settings.compare { runs.append([compare]) }
        for (index, targets) in runs.enumerated() {
            var runSettings = settings
            runSettings.targets = targets
            if index > 0 {
                runSettings.faultCommand = nil
                runSettings.faultAt = nil
            }
            do {
                let report = try runOne(runSettings, seed: seed)
                reports.append(report)
                print(ReportText.summary(report))
                if report.isInterrupted { break }
            } catch {
                fail(error.description)
                return 1
            }
        }
        if reports.count == 2 { print(ReportText.comparison(reports[0], reports[1])) }
        var status: Int32 = reports.last?.isInterrupted == true ? 130 : 0
        if let path = settings.jsonPath, !writeFile(path, ReportJSON.render(reports)) { status = 1 }
        if let path = settings.htmlPath, !writeFile(path, ReportHTML.render(reports)) { status = 1 }
        return status
    }

    static func fail(_ message: String) {
        BenchSystem.writeAll(2, "cairn: bench: \(message)\n")
    }

    /// One whole benchmark against `settings.targets`.
    static func runOne(_ settings: BenchSettings, seed: UInt64) throws(BenchFailure) -> RunReport {
        let (server, slotMap) = try probe(settings)
        let encoder = CommandEncoder(valueBytesMax: settings.valueSize.maximum, seed: seed)
        let driver = LoadDriver(settings: settings, encoder: encoder)
        if let slotMap {
            for endpoint in slotMap.endpoints { try driver.addEndpoint(endpoint, connections: settings.clients) }
            driver.slotMap = slotMap
        } else {
            let targets = settings.targets
            for (index, endpoint) in targets.enumerated() {
                let share = settings.clients / targets.count + (index < settings.clients % targets.count ? 1 : 0)
                try driver.addEndpoint(endpoint, connections: max(share, 1))
            }
        }
        driver.catchInterrupts()
        try connectAll(driver)
        let isTerminal = isatty(2) == 1
        if !settings.isQuiet {
            driver.progress = { line in
                BenchSystem.writeAll(2, isTerminal ? "\r\u{1B}[K" + line : line + "\n")
            }
        }
        let target = settings.targets.map(\.description).joined(separator: ",")
        var load: PhaseReport?
        if settings.runsLoadPhase {
            load = try driver.runPhase(
                name: "load", source: .load(next: 0, total: settings.records), schedule: nil, duration: nil, fault: nil)
            endProgressLine(settings, isTerminal)
            if driver.isInterrupted { throw .setup("interrupted during the load phase") }
        }
        driver.generator = WorkloadGenerator(
            spec: settings.workload, records: settings.records, valueSize: settings.valueSize, seed: seed)
        let schedule = settings.rate.map {
            OpenLoopSchedule(baseRate: $0, profile: settings.profile, duration: settings.duration)
        }
        let fault = settings.faultCommand.map { FaultLauncher(command: $0, at: settings.faultAt ?? 0) }
        let run = try driver.runPhase(
            name: "run", source: .workload, schedule: schedule, duration: settings.duration, fault: fault)
        endProgressLine(settings, isTerminal)
        driver.closeAll()
        var report = RunReport(
            target: target, settings: settings, seed: seed, server: server, load: load, run: run, fault: fault?.report)
        report.isInterrupted = driver.isInterrupted
        return report
    }

    static func endProgressLine(_ settings: BenchSettings, _ isTerminal: Bool) {
        if !settings.isQuiet && isTerminal { BenchSystem.writeAll(2, "\n") }
    }

    /// Checks every target answers (PING, HELLO 3 with `--resp 3`), learns what server it is, and
    /// in cluster mode loads the slot map.
    static func probe(_ settings: BenchSettings) throws(BenchFailure) -> (String?, SlotMap?) {
        var server: String?
        var slotMap: SlotMap?
        for endpoint in settings.targets {
            let connection = try SyncConnection(endpoint, timeout: settings.timeout)
            let pong = try connection.call(["PING"])
            if case .error(let text) = pong { throw .protocolError(endpoint, "PING failed: \(text)") }
            if settings.resp == 3, case .error(let text) = try connection.call(["HELLO", "3"]) {
                throw .protocolError(endpoint, "HELLO 3 failed (--resp 3 needs a server with RESP3): \(text)")
            }
            if server == nil, let info = try connection.call(["INFO", "server"]).text {
                server = describeServer(info)
            }
            if settings.isCluster && slotMap == nil {
                switch SlotMap.parse(try connection.call(["CLUSTER", "SLOTS"]), asked: endpoint) {
                case .success(let map): slotMap = map
                case .failure(let error):
                    throw .setup("\(endpoint): \(error); is it a cluster? Run without --cluster for a single endpoint")
                }
            }
        }
        return (server, slotMap)
    }

    /// "cairn 0.3.0" or "redis 7.0.15", from INFO server.
    static func describeServer(_ info: String) -> String? {
        var fields: [String: String] = [:]
        for line in info.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        if let cairn = fields["cairn_version"] { return "cairn \(cairn)" }
        if let redis = fields["redis_version"] { return "redis \(redis)" }
        return nil
    }

    /// Opens every connection and waits until all are ready, within the timeout.
    static func connectAll(_ driver: LoadDriver) throws(BenchFailure) {
        let start = BenchSystem.monotonicNanoseconds()
        driver.phaseStart = start
        let deadline = start + driver.settings.timeout
        for endpoint in driver.endpoints {
            for connection in endpoint.connections { driver.open(connection, now: start) }
        }
        var events = [epoll_event](repeating: epoll_event(), count: 512)
        while true {
            let pending = driver.endpoints.flatMap(\.connections).filter { !$0.isReady }
            guard let first = pending.first else { break }
            let now = BenchSystem.monotonicNanoseconds()
            if let failed = pending.first(where: { if case .idle = $0.state { true } else { false } }) {
                let total = driver.endpoints[failed.endpointIndex].connections.count
                throw .unreachable(
                    driver.endpoints[failed.endpointIndex].endpoint,
                    "\(failed.lastError ?? "the server closed a connection") (opening \(total) connections)")
            }
            if now >= deadline {
                throw .unreachable(
                    driver.endpoints[first.endpointIndex].endpoint,
                    "\(pending.count) connections not open within \(BenchDuration.format(driver.settings.timeout))")
            }
            let count = epoll_wait(driver.epoll, &events, Int32(events.count), 10)
            for index in 0..<max(0, Int(count)) {
                driver.handle(events[index].data.fd, events[index].events)
            }
        }
        driver.flush()
    }

    static func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            fail("cannot write \(path): \(BenchSystem.errorText())")
            return false
        }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                fail("cannot write \(path): \(BenchSystem.errorText())")
                return false
            }
            offset += written
        }
        bytes.removeAll()
        return true
    }
}
