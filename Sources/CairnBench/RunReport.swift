/// One phase (load or run) of a benchmark against one endpoint, as measured.
public struct PhaseReport: Sendable {
    public var name: String
    public var duration: UInt64
    public var recorder: PhaseRecorder

    public init(name: String, duration: UInt64, recorder: PhaseRecorder) {
        self.name = name
        self.duration = duration
        self.recorder = recorder
    }

    /// Successful operations per second.
    public var throughput: Double {
        duration == 0 ? 0 : Double(recorder.operations) / (Double(duration) / 1e9)
    }
}

/// What happened to the `--fault` command.
public struct FaultReport: Sendable, Equatable {
    public var command: String
    /// When it was started, in nanoseconds into the run phase.
    public var startedAt: UInt64
    /// Its exit status, if it finished before the run ended.
    public var exitStatus: Int32?
    /// A reason it could not be started.
    public var launchError: String?

    public init(command: String, startedAt: UInt64, exitStatus: Int32? = nil, launchError: String? = nil) {
        self.command = command
        self.startedAt = startedAt
        self.exitStatus = exitStatus
        self.launchError = launchError
    }
}

/// A whole benchmark against one endpoint: settings, phases, fault.
public struct RunReport: Sendable {
    public var target: String
    public var settings: BenchSettings
    public var seed: UInt64
    /// The server as it describes itself (`server` and `version` from HELLO or INFO), if known.
    public var server: String?
    public var load: PhaseReport?
    public var run: PhaseReport
    public var fault: FaultReport?
    /// The run was stopped early by SIGINT or SIGTERM.
    public var isInterrupted = false

    public init(
        target: String, settings: BenchSettings, seed: UInt64, server: String?, load: PhaseReport?, run: PhaseReport,
        fault: FaultReport?
    ) {
        self.target = target
        self.settings = settings
        self.seed = seed
        self.server = server
        self.load = load
        self.run = run
        self.fault = fault
    }

    /// Commands counted over both phases, by name, for checking against a server's commandstats.
    public var commandTotals: [(name: String, count: UInt64)] {
        SentCommand.allCases.compactMap { command in
            let total = run.recorder.commands[command.rawValue] + (load?.recorder.commands[command.rawValue] ?? 0)
            return total == 0 ? nil : (command.name, total)
        }
    }
}
