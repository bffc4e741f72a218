/// A circuit breaker: stops calling a dependency that keeps failing, and probes it now and then.
///
/// Why: calls to a dead or overloaded peer do not fail fast; they time out. Every one of them holds a
/// client, a queue slot and a deadline's worth of waiting, and the retries they trigger add load to
/// the peer that is already failing. A breaker notices a high failure rate and, for a while, refuses
/// calls at once, so the caller answers `-TRYAGAIN` immediately and the peer gets room to recover.
/// The pattern is from Michael Nygard's "Release It!" (2007); this version follows Netflix Hystrix
/// (a rolling window of time buckets, a request-volume threshold, a sleep window) and resilience4j
/// (a failure-rate threshold with a minimum number of calls, and several permitted calls in half-open).
///
/// ## States and legal transitions
///
/// - **closed**: calls pass; each result is counted in a sliding window of `window` (in
///   `windowBuckets` time buckets). When the window holds at least `minimumCalls` calls and
///   failures ÷ calls ≥ `failureRateThreshold`, the breaker opens.
/// - **open**: calls are rejected with the time left until `openDuration` has passed since opening.
///   The first `allow` after that moves to half-open.
/// - **halfOpen**: the first `halfOpenProbes` calls pass as probes; further calls are rejected until
///   the probes are decided. The first failed probe reopens the breaker (for another `openDuration`);
///   when all probes have succeeded, it closes with an empty window. If the probes' results are not
///   all in within `halfOpenTimeout` (a probe was lost, or the peer just hangs), it reopens: an answer
///   that never comes is a failure, and a breaker must not stay half-open forever.
///
/// closed → open, open → halfOpen, halfOpen → open, halfOpen → closed. Nothing else; in particular
/// open never goes straight to closed, so the peer is always probed before full traffic returns.
///
/// ## Choices
///
/// - **A time-based window, not a count-based one.** resilience4j offers both (count-based is its
///   default); Hystrix uses time buckets. We use time because a peer link's traffic is bursty: with
///   "the last 100 calls", a link that failed a burst of calls an hour ago and has been idle since
///   still reports 100% failures, and on a busy link the same 100 calls cover only milliseconds.
///   "At least `minimumCalls` calls in the last 10 s" is what enough recent evidence means. Cost: a
///   fixed ring of `windowBuckets` counters.
/// - **Permits with a generation.** `allow` hands out a `Permit` carrying the breaker's generation,
///   which changes on every transition. `record` ignores results whose permit is from an earlier
///   generation (counted in `staleResultCount`): a slow call admitted while closed must not count as a
///   half-open probe, and a late failure from before the breaker closed must not reopen it.
/// - **Transitions are returned as data**, not callbacks: `drainTransitions()` hands the shell what
///   happened since it last asked, for logs and metrics. At most `transitionsPendingMax` are kept.
///
/// The shell MUST call `allow` before each call and, for every allowed call, `record` exactly once
/// with the permit it got. It MUST pass readings of one monotonic clock. What counts as a failure is
/// the shell's choice: a timeout, a lost connection or an overload reply from the peer are failures;
/// a reply that is the client's own error (`WRONGTYPE`, a syntax error) is a success of the link.
public struct CircuitBreaker: Sendable, Equatable {
    /// The breaker's parameters. Checked by `init`; they come from code or validated flags.
    public struct Configuration: Sendable, Equatable {
        /// Failures ÷ calls at or above which the closed breaker opens, in `0 < x <= 1`.
        public var failureRateThreshold: Double
        /// Calls the window must hold before the rate counts; fewer calls are too little evidence.
        public var minimumCalls: UInt64
        /// How far back the window looks.
        public var window: TimeSpan
        /// Buckets the window is cut into; the window slides by `window / windowBuckets` at a time.
        public var windowBuckets: Int
        /// How long the breaker stays open before probing.
        public var openDuration: TimeSpan
        /// Calls let through in half-open; all must succeed to close.
        public var halfOpenProbes: Int
        /// How long half-open waits for all probe results before reopening.
        public var halfOpenTimeout: TimeSpan

        /// Parameters as given; `CircuitBreaker.init` checks them.
        public init(
            failureRateThreshold: Double, minimumCalls: UInt64, window: TimeSpan, windowBuckets: Int,
            openDuration: TimeSpan, halfOpenProbes: Int, halfOpenTimeout: TimeSpan
        ) {
            self.failureRateThreshold = failureRateThreshold
            self.minimumCalls = minimumCalls
            self.window = window
            self.windowBuckets = windowBuckets
            self.openDuration = openDuration
            self.halfOpenProbes = halfOpenProbes
            self.halfOpenTimeout = halfOpenTimeout
        }

        /// Defaults for a peer link; docs/resilience.md explains each.
        ///
        /// 50% failures over at least 20 calls in a 10 s window of 10 buckets are Hystrix's defaults
        /// (`errorThresholdPercentage`, `requestVolumeThreshold`, `metrics.rollingStats`). Open for 2 s,
        /// shorter than Hystrix's 5 s sleep window, because a restarted Cairn node is back within
        /// seconds and a probe is one forwarded command. 3 probes (Hystrix: 1, resilience4j: 10) so
        /// that one lucky answer does not bring full traffic back. Half-open waits 5 s for probe
        /// results, the node's default request timeout.
        public static let standard = Configuration(
            failureRateThreshold: 0.5, minimumCalls: 20, window: .seconds(10), windowBuckets: 10,
            openDuration: .seconds(2), halfOpenProbes: 3, halfOpenTimeout: .seconds(5))
    }

    /// The breaker's state, as metrics and `cairn ctl status` show it.
    public enum State: Int, Sendable, Equatable, CaseIterable, CustomStringConvertible {
        /// Calls pass and are counted.
        case closed = 0
        /// Calls are rejected until the open duration has passed.
        case open = 1
        /// A few probe calls pass; their results decide between closed and open.
        case halfOpen = 2

        public var description: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half-open"
            }
        }
    }

    /// Proof that `allow` let a call through; hand it back to `record` with the call's outcome.
    public struct Permit: Sendable, Hashable {
        /// The breaker generation that issued it.
        let generation: UInt64
    }

    /// What `allow` decided.
    public enum Decision: Sendable, Equatable {
        /// Make the call, then `record` its outcome with this permit.
        case allowed(Permit)
        /// Fail fast. The breaker will not change its mind before `retryAfter` (it may still refuse then).
        case rejected(retryAfter: TimeSpan)
    }

    /// How an allowed call ended.
    public enum Outcome: Sendable, Equatable {
        case success
        case failure
    }

    /// Why the breaker changed state.
    public enum Reason: Sendable, Equatable {
        /// Closed → open: the window held `calls` calls, `failures` of them failures.
        case failureRateReached(failures: UInt64, calls: UInt64)
        /// Open → half-open: `openDuration` has passed.
        case openDurationElapsed
        /// Half-open → open: a probe failed.
        case probeFailed
        /// Half-open → open: not all probe results came within `halfOpenTimeout`.
        case probesTimedOut
        /// Half-open → closed: every probe succeeded.
        case probesSucceeded
    }

    /// One state change, for logs and metrics.
    public struct Transition: Sendable, Equatable, CustomStringConvertible {
        public let from: State
        public let to: State
        public let at: MonotonicTime
        public let reason: Reason

        public var description: String { "\(from) -> \(to) at \(at): \(reason)" }
    }

    /// The state with the data each state needs, so a closed breaker cannot hold probe counts.
    enum Phase: Sendable, Equatable {
        case closed
        case open(until: MonotonicTime)
        case halfOpen(since: MonotonicTime, admitted: Int, succeeded: Int)
    }

    /// Transitions kept for `drainTransitions` before the oldest are dropped.
    public static let transitionsPendingMax = 32

    /// The parameters in use.
    public let configuration: Configuration
    /// The current state and its data.
    private(set) var phase: Phase = .closed
    /// Changes on every transition; permits from another generation are stale.
    private var generation: UInt64 = 0
    /// Results of the current closed period.
    private var window: FailureWindow
    /// Transitions not yet drained, oldest first.
    private var pendingTransitions: [Transition] = []

    /// Calls let through (including probes).
    public private(set) var allowedCount: UInt64 = 0
    /// Calls refused by an open or busy half-open breaker.
    public private(set) var rejectedCount: UInt64 = 0
    /// Times the breaker opened (from closed or from half-open).
    public private(set) var openedCount: UInt64 = 0
    /// Results ignored because their permit was from an earlier generation.
    public private(set) var staleResultCount: UInt64 = 0
    /// Transitions dropped because nobody drained them.
    public private(set) var droppedTransitionCount: UInt64 = 0

    /// A closed breaker with an empty window.
    /// - Precondition: the configuration is valid (see each field); the message names the bad field.
    public init(configuration: Configuration = .standard) {
        let threshold = configuration.failureRateThreshold
        precondition(
            threshold > 0 && threshold <= 1, "CircuitBreaker failureRateThreshold must be in (0, 1], got \(threshold)")
        precondition(configuration.minimumCalls >= 1, "CircuitBreaker minimumCalls must be at least 1")
        precondition(
            (1...1000).contains(configuration.windowBuckets),
            "CircuitBreaker windowBuckets must be in 1...1000, got \(configuration.windowBuckets)")
        precondition(configuration.openDuration > .zero, "CircuitBreaker openDuration must be positive")
        precondition(
            (1...1000).contains(configuration.halfOpenProbes),
            "CircuitBreaker halfOpenProbes must be in 1...1000, got \(configuration.halfOpenProbes)")
        precondition(configuration.halfOpenTimeout > .zero, "CircuitBreaker halfOpenTimeout must be positive")
        self.configuration = configuration
        self.window = FailureWindow(window: configuration.window, bucketCount: configuration.windowBuckets)
    }

    /// The current state. An open breaker whose open duration has passed still reads `open` until the
    /// next `allow` moves it to half-open.
    public var state: State {
        switch phase {
        case .closed: .closed
        case .open: .open
        case .halfOpen: .halfOpen
        }
    }

    /// Calls and failures in the closed state's window at `now`, for metrics. Empty unless closed.
    public func windowTotals(now: MonotonicTime) -> (calls: UInt64, failures: UInt64) {
        let totals = window.totals(now: now)
        return (totals.calls, totals.failures)
    }
}

extension CircuitBreaker {
    /// Decides whether a call may go out at `now`.
    ///
    /// May move open → half-open (the open duration has passed) or half-open → open (the probes timed out).
    public mutating func allow(now: MonotonicTime) -> Decision {
        switch phase {
        case .closed:
            return admit()
        case .open(let until):
            guard now >= until else { return reject(retryAfter: until.timeSpan(since: now)) }
            become(.halfOpen(since: now, admitted: 0, succeeded: 0), reason: .openDurationElapsed, now: now)
            return allow(now: now)
        case .halfOpen(let since, let admitted, let succeeded):
            let timeout = since + configuration.halfOpenTimeout
            if now >= timeout {
                reopen(reason: .probesTimedOut, now: now)
                return allow(now: now)
            }
            guard admitted < configuration.halfOpenProbes else {
                // The probes decide within the timeout at the latest.
                return reject(retryAfter: timeout.timeSpan(since: now))
            }
            phase = .halfOpen(since: since, admitted: admitted + 1, succeeded: succeeded)
            return admit()
        }
    }

    /// Records how a call that `allow` let through ended. Each permit MUST be recorded exactly once.
    ///
    /// May move closed → open (the failure rate reached the threshold) and half-open → open or closed.
    public mutating func record(_ outcome: Outcome, permit: Permit, now: MonotonicTime) {
        if case .halfOpen(let since, _, _) = phase, now >= since + configuration.halfOpenTimeout {
            reopen(reason: .probesTimedOut, now: now)
        }
        guard permit.generation == generation else {
            staleResultCount += 1
            return
        }
        switch phase {
        case .closed:
            window.record(isFailure: outcome == .failure, now: now)
            let totals = window.totals(now: now)
            let isRateReached =
                Double(totals.failures) >= configuration.failureRateThreshold * Double(totals.calls)
            if totals.calls >= configuration.minimumCalls && isRateReached {
                reopen(reason: .failureRateReached(failures: totals.failures, calls: totals.calls), now: now)
            }
        case .open:
            preconditionFailure("CircuitBreaker: a permit of generation \(generation) exists while open")
        case .halfOpen(let since, let admitted, let succeeded):
            precondition(succeeded < admitted, "CircuitBreaker: \(succeeded + 1) probe results for \(admitted) probes")
            guard outcome == .success else {
                reopen(reason: .probeFailed, now: now)
                return
            }
            if succeeded + 1 == configuration.halfOpenProbes {
                become(.closed, reason: .probesSucceeded, now: now)
            } else {
                phase = .halfOpen(since: since, admitted: admitted, succeeded: succeeded + 1)
            }
        }
    }

    /// The transitions since the last call, oldest first, and forgets them.
    public mutating func drainTransitions() -> [Transition] {
        let drained = pendingTransitions
        pendingTransitions.removeAll(keepingCapacity: true)
        return drained
    }

    private mutating func admit() -> Decision {
        allowedCount += 1
        return .allowed(Permit(generation: generation))
    }

    private mutating func reject(retryAfter: TimeSpan) -> Decision {
        rejectedCount += 1
        return .rejected(retryAfter: retryAfter)
    }

    private mutating func reopen(reason: Reason, now: MonotonicTime) {
        openedCount += 1
        window.reset()
        become(.open(until: now + configuration.openDuration), reason: reason, now: now)
    }

    /// Moves to `next`, starts a new generation (outstanding permits become stale) and logs the transition.
    private mutating func become(_ next: Phase, reason: Reason, now: MonotonicTime) {
        let from = state
        phase = next
        let to = state
        precondition(Self.isLegal(from: from, to: to), "CircuitBreaker: illegal transition \(from) -> \(to)")
        generation += 1
        if pendingTransitions.count == Self.transitionsPendingMax {
            pendingTransitions.removeFirst()
            droppedTransitionCount += 1
        }
        pendingTransitions.append(Transition(from: from, to: to, at: now, reason: reason))
    }

    /// The four legal transitions; see the type's documentation.
    static func isLegal(from: State, to: State) -> Bool {
        switch (from, to) {
        case (.closed, .open), (.open, .halfOpen), (.halfOpen, .open), (.halfOpen, .closed): true
        default: false
        }
    }
}
