import CairnSim
import Glibc

/// `cairn sim raft` and `cairn sim cluster`: run the deterministic Raft or whole-cluster simulator for one
/// seed (with a readable trace) or for a range of seeds (one line per failure and a summary).
enum SimCommand {
    static let help = """
        Usage: cairn sim raft --seed S [--nodes 3|5] [--trace] [--inject-bug NAME] [--ticks N]
               cairn sim raft --seeds A..B [--nodes 3|5] [--inject-bug NAME] [--ticks N]
               cairn sim raft --bench [--nodes 3|5] [--ticks N]
               cairn sim cluster --seed S [--nodes 3|5] [--trace] [--inject-bug NAME] [--ticks N]
               cairn sim cluster --seeds A..B [--nodes 3|5] [--inject-bug NAME] [--ticks N]

        'cairn sim raft' simulates one Raft group with clients, a faulty network and crashing disks, in
        one thread on a simulated clock (1 tick = 10 ms). Everything, including the fault settings,
        derives from the seed, so a seed replays exactly. Each run checks Election Safety, Log Matching, Leader Completeness,
        State Machine Safety and Read Freshness after every step; then heals the cluster and requires a
        leader and every acknowledged write applied everywhere; then checks the client history for
        linearizability.

        'cairn sim cluster' simulates a whole cluster the same way: 3 or 5 complete nodes (the server's
        own node core, 8 partitions), their disks and the network between them, and clients sending GET,
        SET, SET IFEQ / NX and DEL through any node. Envelopes are lost or delayed (in order per link),
        partitions come and go, nodes crash (losing what was not fsync'd) and restart from their store.
        Then faults stop: every node must become ready and every key must be read; then the history is
        checked for linearizability. It sets SWIFT_DETERMINISTIC_HASHING=1 for itself (the node core
        iterates dictionaries), so a seed replays exactly.

        Flags:
          --seed S              Run one seed and print its report (exit 1 if a check failed).
          --seeds A..B          Run seeds A through B; print a line per failing seed and a final
                                'sim: seeds=N failed=F faults=K' line (exit 1 if any failed).
          --nodes N             Nodes in the group or cluster, 3 or 5. Default 3.
          --trace               With --seed: print the whole trace (options under SEED=, faults, role
                                changes, messages, applies, client operations).
          --inject-bug NAME     Turn on a deliberate bug, to show the checks catch it. One of:
                                raft: \(InjectedBug.injectable.map(\.rawValue).joined(separator: ", "));
                                cluster: \(ClusterBug.injectable.map(\.rawValue).joined(separator: ", ")).
          --ticks N             Length of the fault (safety) phase in ticks. Default \(Simulation.safetyTicksDefault).
          --bench               Measure the core's own cost: a fault-free group with zero network and disk
                                latency and 64 clients writing; prints committed proposals per CPU second.
          -h, --help            Print this help.

        For bit-identical hashing across processes, run with SWIFT_DETERMINISTIC_HASHING=1 (the simulator
        does not depend on it; it is a safety net).

        """

    struct Settings {
        var seeds: ClosedRange<UInt64> = 1...1
        var isRange = false
        var nodeCount = 3
        var isTraced = false
        var bug = InjectedBug.none
        var clusterBug = ClusterBug.none
        var isCluster = false
        var safetyTicks = Simulation.safetyTicksDefault
        var isBench = false
    }

    enum Parsed {
        case help
        case settings(Settings)
        case failure(String)
    }

    static func run(_ arguments: [String]) -> Int32 {
        guard let kind = arguments.first, kind != "-h", kind != "--help" else {
            print(help, terminator: "")
            return arguments.isEmpty ? 2 : 0
        }
        guard kind == "raft" || kind == "cluster" else {
            CairnCommand.fail(
                "sim: unknown simulation '\(kind)'; expected 'raft' or 'cluster' (see 'cairn sim --help')")
        }
        switch parse(Array(arguments.dropFirst()), isCluster: kind == "cluster") {
        case .help:
            print(help, terminator: "")
            return 0
        case .failure(let message):
            CairnCommand.fail("sim \(kind): \(message) (see 'cairn sim --help')")
        case .settings(let settings):
            if settings.isCluster {
                ensureDeterministicHashing()
                return settings.isRange ? runClusterMany(settings) : runClusterOne(settings)
            }
            if settings.isBench { return runBench(settings) }
            return settings.isRange ? runMany(settings) : runOne(settings)
        }
    }

    static func parse(_ arguments: [String], isCluster: Bool = false) -> Parsed {
        var settings = Settings()
        settings.isCluster = isCluster
        var hasSeed = false
        var index = 0
        while index < arguments.count {
            var flag = arguments[index]
            var value: String?
            if let equals = flag.firstIndex(of: "="), flag.hasPrefix("--") {
                value = String(flag[flag.index(after: equals)...])
                flag = String(flag[..<equals])
            }
            if flag == "-h" || flag == "--help" { return .help }
            if flag == "--trace" || flag == "--bench" {
                guard value == nil else { return .failure("\(flag) takes no value") }
                if flag == "--trace" { settings.isTraced = true } else { settings.isBench = true }
                index += 1
                continue
            }
            guard ["--seed", "--seeds", "--nodes", "--inject-bug", "--ticks"].contains(flag) else {
                return .failure("unknown flag '\(flag)'")
            }
            if value == nil {
                guard index + 1 < arguments.count else { return .failure("\(flag) needs a value") }
                index += 1
                value = arguments[index]
            }
            let text = value ?? ""
            switch flag {
            case "--seed":
                guard let seed = UInt64(text) else {
                    return .failure("--seed must be an unsigned 64-bit integer, got '\(text)'")
                }
                settings.seeds = seed...seed
                hasSeed = true
            case "--seeds":
                guard let range = parseRange(text) else {
                    return .failure("--seeds must be A..B with unsigned integers A <= B, such as 1..500; got '\(text)'")
                }
                settings.seeds = range
                settings.isRange = true
            case "--nodes":
                guard let count = Int(text), count == 3 || count == 5 else {
                    return .failure("--nodes must be 3 or 5, got '\(text)'")
                }
                settings.nodeCount = count
            case "--inject-bug" where isCluster:
                guard let bug = ClusterBug(rawValue: text), bug != .none else {
                    let names = ClusterBug.injectable.map(\.rawValue).joined(separator: ", ")
                    return .failure("--inject-bug must be one of \(names); got '\(text)'")
                }
                settings.clusterBug = bug
            case "--inject-bug":
                guard let bug = InjectedBug(rawValue: text), bug != .none else {
                    let names = InjectedBug.injectable.map(\.rawValue).joined(separator: ", ")
                    return .failure("--inject-bug must be one of \(names); got '\(text)'")
                }
                settings.bug = bug
            case "--ticks":
                guard let ticks = Int(text), (1...10_000_000).contains(ticks) else {
                    return .failure("--ticks must be a number from 1 to 10000000, got '\(text)'")
                }
                settings.safetyTicks = ticks
            default:
                preconditionFailure("flag \(flag) is known but not handled")
            }
            index += 1
        }
        if settings.isBench {
            if isCluster { return .failure("--bench works with 'sim raft' only") }
            if hasSeed || settings.isRange || settings.isTraced || settings.bug != .none {
                return .failure("--bench takes only --nodes and --ticks")
            }
            return .settings(settings)
        }
        if hasSeed && settings.isRange { return .failure("give --seed or --seeds, not both") }
        if !hasSeed && !settings.isRange { return .failure("give --seed S or --seeds A..B") }
        if settings.isTraced && settings.isRange { return .failure("--trace works with --seed only") }
        return .settings(settings)
    }

    /// `A..B` with A <= B.
    static func parseRange(_ text: String) -> ClosedRange<UInt64>? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].isEmpty, let low = UInt64(parts[0]), let high = UInt64(parts[2]), low <= high
        else { return nil }
        return low...high
    }

    static func runOne(_ settings: Settings) -> Int32 {
        let seed = settings.seeds.lowerBound
        var sink: (@Sendable (String) -> Void)?
        if settings.isTraced { sink = { (line: String) in print(line) } }
        let simulation = Simulation(
            seed: seed, nodeCount: settings.nodeCount, bug: settings.bug, safetyTicks: settings.safetyTicks,
            traceSink: sink)
        let report = simulation.run()
        if !settings.isTraced { print("SEED=\(seed) bug=\(settings.bug)\n  \(report.options)") }
        print(report.summaryLine)
        print("faults: \(report.faults)")
        print(
            "simulated \(report.endMs) ms ("
                + (report.livenessStartMs.map { "liveness from \($0) ms" } ?? "liveness phase not reached")
                + (report.convergenceMs.map { ", converged in \($0) ms)" } ?? ")")
                + ", \(report.steps) core steps, at most \(report.stepsPerSecondMax) in one simulated second")
        print("history: \(report.linearizability)")
        if settings.isTraced { print("trace: \(report.traceLines) lines, hash \(hex(report.traceHash))") }
        if report.faults.total == 0 { print("seed \(seed): injected no faults") }
        return report.isFailure ? 1 : 0
    }

    static func runMany(_ settings: Settings) -> Int32 {
        runSeeds(settings.seeds) { seed in
            Simulation(
                seed: seed, nodeCount: settings.nodeCount, bug: settings.bug, safetyTicks: settings.safetyTicks
            ).run()
        }
    }

    /// Runs every seed, prints a line per failing seed (and per seed without faults or with an
    /// inconclusive check), then the summary line; exit status 1 if any seed failed.
    static func runSeeds(_ seeds: ClosedRange<UInt64>, _ run: (UInt64) -> any SeedReport) -> Int32 {
        var count = 0
        var failed = 0
        var faults = 0
        for seed in seeds {
            let result = run(seed)
            count += 1
            faults += result.faults.total
            if result.isFailure {
                failed += 1
                print(result.summaryLine)
            } else if result.faults.total == 0 {
                print("seed \(seed): injected no faults")
            }
            if result.isLinearizabilityInconclusive {
                print("seed \(seed): linearizability \(result.linearizability.split(separator: "\n").first ?? "")")
            }
        }
        print("sim: seeds=\(count) failed=\(failed) faults=\(faults)")
        return failed == 0 ? 0 : 1
    }

    /// The node core iterates dictionaries, whose order follows Swift's per-process hash seed: a cluster
    /// run replays exactly only with deterministic hashing, which must be set before the process starts.
    /// Without it, the command runs itself again with it set.
    static func ensureDeterministicHashing() {
        guard getenv("SWIFT_DETERMINISTIC_HASHING") == nil else { return }
        setenv("SWIFT_DETERMINISTIC_HASHING", "1", 1)
        var arguments = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        execv("/proc/self/exe", &arguments)
        // Only reached if the exec failed: run on, replayable within this process only.
        let line = "cairn sim cluster: could not re-run with SWIFT_DETERMINISTIC_HASHING=1; runs may not replay\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }

    static func runClusterOne(_ settings: Settings) -> Int32 {
        let seed = settings.seeds.lowerBound
        var sink: (@Sendable (String) -> Void)?
        if settings.isTraced { sink = { (line: String) in print(line) } }
        let cpuStart = cpuSeconds()
        let report = ClusterSimulation(
            seed: seed, nodeCount: settings.nodeCount, bug: settings.clusterBug, safetyTicks: settings.safetyTicks,
            traceSink: sink
        ).run()
        let cpu = cpuSeconds() - cpuStart
        if !settings.isTraced { print("SEED=\(seed) bug=\(settings.clusterBug)\n  \(report.options)") }
        print(report.summaryLine)
        print("faults: \(report.faults)")
        print(
            "simulated \(report.endMs) ms ("
                + (report.formedMs.map { "formed at \($0) ms" } ?? "never formed")
                + (report.livenessStartMs.map { ", liveness from \($0) ms" } ?? "")
                + (report.convergenceMs.map { ", converged in \($0) ms" } ?? "")
                + "), \(report.steps) node steps, \(format(cpu)) CPU seconds")
        print("history: \(report.linearizability)")
        if settings.isTraced { print("trace: \(report.traceLines) lines, hash \(hex(report.traceHash))") }
        if report.faults.total == 0 { print("seed \(seed): injected no faults") }
        return report.isFailure ? 1 : 0
    }

    static func runClusterMany(_ settings: Settings) -> Int32 {
        runSeeds(settings.seeds) { seed in
            ClusterSimulation(
                seed: seed, nodeCount: settings.nodeCount, bug: settings.clusterBug, safetyTicks: settings.safetyTicks
            ).run()
        }
    }

    /// Committed proposals per CPU second in a calm group (no faults, zero latency): the core's cost.
    static func runBench(_ settings: Settings) -> Int32 {
        let options = SwarmOptions.calm(seed: 1, nodeCount: settings.nodeCount)
        let simulation = Simulation(options: options, safetyTicks: settings.safetyTicks)
        simulation.checksHistory = false
        simulation.checksMessageStorms = false
        let cpuStart = cpuSeconds()
        let report = simulation.run()
        let cpu = cpuSeconds() - cpuStart
        let proposals = report.history.filter { if case .ok = $0.outcome { true } else { false } }.count
        print(report.summaryLine)
        print(
            "bench: nodes=\(settings.nodeCount) simulated=\(report.endMs)ms cpu=\(format(cpu))s"
                + " committed=\(report.committedIndex) acknowledged-proposals=\(proposals)"
                + " proposals-per-cpu-second=\(Int(Double(proposals) / max(cpu, 1e-9)))"
                + " core-steps-per-cpu-second=\(Int(Double(report.steps) / max(cpu, 1e-9)))")
        return report.isFailure ? 1 : 0
    }

    static func cpuSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func format(_ seconds: Double) -> String {
        let millis = Int((seconds * 1000).rounded())
        let fraction = String(millis % 1000)
        return "\(millis / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
