/// One second of a run: completions, errors and latency of the requests that completed in it.
public struct SecondSample: Sendable, Equatable {
    /// Seconds since the phase started (this sample covers [second, second + 1)).
    public var second: Int
    public var operations: UInt64
    public var errors: UInt64
    /// Error counts by kind, sorted by kind.
    public var errorsByKind: [(kind: String, count: UInt64)]
    public var latency: LatencySummary
    /// The open-loop target rate in the middle of this second (nil in closed loop).
    public var targetRate: Double?

    public static func == (lhs: SecondSample, rhs: SecondSample) -> Bool {
        lhs.second == rhs.second && lhs.operations == rhs.operations && lhs.errors == rhs.errors
            && lhs.errorsByKind.map(\.kind) == rhs.errorsByKind.map(\.kind)
            && lhs.errorsByKind.map(\.count) == rhs.errorsByKind.map(\.count) && lhs.latency == rhs.latency
            && lhs.targetRate == rhs.targetRate
    }
}

/// The availability of the endpoint around a fault: the unavailability window runs from the first
/// failed request completed at or after the fault to the first successful one after that.
public struct AvailabilityTracker: Sendable, Equatable {
    /// When the fault command ran, in nanoseconds from the phase start (nil: no fault).
    public private(set) var faultAt: UInt64?
    public private(set) var firstFailureAfterFault: UInt64?
    public private(set) var firstSuccessAfterFailure: UInt64?

    public init() {}

    public mutating func faultStarted(at time: UInt64) {
        precondition(faultAt == nil, "a fault started twice")
        faultAt = time
    }

    @inline(__always)
    mutating func completed(at time: UInt64, isSuccess: Bool) {
        guard let fault = faultAt, time >= fault, firstSuccessAfterFailure == nil else { return }
        if !isSuccess {
            if firstFailureAfterFault == nil { firstFailureAfterFault = time }
        } else if firstFailureAfterFault != nil {
            firstSuccessAfterFailure = time
        }
    }

    /// The window, once it has closed.
    public var unavailableWindow: Range<UInt64>? {
        guard let start = firstFailureAfterFault, let end = firstSuccessAfterFailure else { return nil }
        return start..<end
    }
}

/// Records the completions of one phase of a run: overall and per-kind histograms, commands sent,
/// errors by kind, a per-second series and the availability around a fault. Pure: the shell passes
/// every time in, in nanoseconds since the phase started, and completions arrive in time order.
public struct PhaseRecorder: Sendable {
    public private(set) var overall = LatencyHistogram()
    public private(set) var byKind = Array(repeating: LatencyHistogram(), count: OperationKind.allCases.count)
    /// Replies received per `SentCommand`, successful or not, as a server's commandstats count them.
    public private(set) var commands = Array(repeating: UInt64(0), count: SentCommand.allCases.count)
    public private(set) var operations: UInt64 = 0
    public private(set) var errors: UInt64 = 0
    public private(set) var errorsByKind: [String: UInt64] = [:]
    /// Attempts after the first (retryable failures retried within the retry budget).
    public private(set) var retries: UInt64 = 0
    public private(set) var seconds: [SecondSample] = []
    public var availability = AvailabilityTracker()
    /// Requests an open-loop schedule had due but the client never sent (all connections busy or down).
    public var unsent: UInt64 = 0

    private var current = LatencyHistogram()
    private var currentSecond = 0
    private var currentOperations: UInt64 = 0
    private var currentErrors: [String: UInt64] = [:]
    /// Gives the target rate of a second; nil in closed loop.
    private let targetRate: (@Sendable (Int) -> Double)?

    /// The last second of a phase with a fixed duration: completions during the final drain count
    /// in it, so the series does not end with a misleading, nearly empty partial second.
    private let lastSecond: Int?

    /// - Parameters:
    ///   - targetRate: the open-loop target rate of a second (nil in closed loop).
    ///   - duration: the phase's length in nanoseconds, if fixed (the run phase).
    public init(targetRate: (@Sendable (Int) -> Double)? = nil, duration: UInt64? = nil) {
        self.targetRate = targetRate
        lastSecond = duration.map { Int((Swift.max($0, 1) - 1) / 1_000_000_000) }
    }

    /// Times a node's circuit breaker opened (it failed fast) and closed again (probes succeeded).
    public private(set) var circuitsOpened: UInt64 = 0
    public private(set) var circuitsClosed: UInt64 = 0

    /// Counts one retry: an operation failed retryably and will be sent again after its backoff.
    public mutating func countRetry() {
        retries &+= 1
    }

    /// Counts a breaker's state change.
    public mutating func countCircuit(opened: Bool) {
        if opened { circuitsOpened &+= 1 } else { circuitsClosed &+= 1 }
    }

    /// Counts one reply to `command` (the report's counts are checked against the server's).
    @inline(__always)
    public mutating func countReply(_ command: SentCommand) {
        commands[command.rawValue] &+= 1
    }

    /// A whole operation completed successfully at `completed`; it was meant to start at `intended`.
    @inline(__always)
    public mutating func succeeded(_ kind: OperationKind, intended: UInt64, completed: UInt64) {
        advance(to: completed)
        let latency = completed >= intended ? completed - intended : 0
        overall.record(latency)
        byKind[kind.rawValue].record(latency)
        current.record(latency)
        operations &+= 1
        currentOperations &+= 1
        availability.completed(at: completed, isSuccess: true)
    }

    /// An operation failed at `completed` with an error of `errorKind` (a reply's error code such
    /// as `ERR` or `MOVED`, or a transport failure such as `timeout` or `connection-refused`).
    public mutating func failed(_ kind: OperationKind, errorKind: String, completed: UInt64) {
        advance(to: completed)
        errors += 1
        errorsByKind[errorKind, default: 0] += 1
        currentErrors[errorKind, default: 0] += 1
        availability.completed(at: completed, isSuccess: false)
    }

    /// Closes every second before the one holding `time`.
    @inline(__always)
    public mutating func advance(to time: UInt64) {
        var second = Int(time / 1_000_000_000)
        if let last = lastSecond, second > last { second = last }
        if second > currentSecond { closeSeconds(before: second) }
    }

    private mutating func closeSeconds(before second: Int) {
        while currentSecond < second {
            let errors = currentErrors.sorted { $0.key < $1.key }.map { (kind: $0.key, count: $0.value) }
            seconds.append(
                SecondSample(
                    second: currentSecond, operations: currentOperations, errors: errors.reduce(0) { $0 + $1.count },
                    errorsByKind: errors, latency: current.summary, targetRate: targetRate?(currentSecond)))
            current.reset()
            currentOperations = 0
            currentErrors.removeAll()
            currentSecond += 1
        }
    }

    /// Ends the phase at `end`. With a fixed duration, closes every second up to the last one (an
    /// empty second inside the run is a fact worth plotting); otherwise, or when stopped early,
    /// closes the last partial second if anything happened in it.
    /// - Parameter stoppedEarly: the phase was interrupted: keep only the seconds it reached.
    public mutating func finish(at end: UInt64, stoppedEarly: Bool = false) {
        advance(to: end)
        if let last = lastSecond, !stoppedEarly {
            closeSeconds(before: last + 1)
        } else if currentOperations > 0 || !currentErrors.isEmpty {
            closeSeconds(before: currentSecond + 1)
        }
    }
}
