/// Admission by queueing delay: while even the fastest request of the last interval waited longer
/// than a target, admit new requests only at the rate requests complete, scaled down by how far over
/// the target that fastest one was, so that the queue drains instead of growing until everything in
/// it times out.
///
/// The signal is CoDel's (Nichols and Jacobson, "Controlling Queue Delay", ACM Queue 2012): the
/// *minimum* time spent by the requests that completed in an interval. One slow request (a partition
/// between leaders, a forward to a dead node) does not raise it; it is above the target only when
/// every request waited, which is what a standing queue looks like. A burst that waited out an
/// election together also raises it, so a second condition asks for the queue itself: the requests
/// still waiting (the caller's `backlog`) must be at least what the node completes in `target` at
/// its best rate seen; after the burst is answered the backlog is small and nothing is refused. A count limit (`--max-inflight`)
/// cannot tell: 50,000 waiting commands are 50 ms of work on one machine and 5 s on another.
///
/// The allowance per interval comes from `capacity`, the most requests that completed in one interval
/// over the last `capacityIntervals` (3 s): what the node has shown it can do.
/// - fastest above target: allowance = capacity × target ÷ fastest (at least 1, so the queue keeps
///   being measured). The further over, the harder the cut, and admitting less than completes drains
///   the queue. It is cut from the capacity, not from the last interval's completions, so that a node
///   that is slow without a queue (every request slower than the target, as on a stalled disk) keeps
///   target ÷ latency of its throughput for 3 s at a time instead of cutting itself by that share
///   every interval towards zero.
/// - fastest within target while limited, and requests were refused: allowance = capacity + 1/8,
///   probing for more only as fast as completions actually grow (the queue is seen one delay late,
///   so a faster probe overshoots; simulated in the tests).
/// - fastest within target and nothing refused: demand fits, the limit is lifted.
/// - an interval in which nothing completed carries no evidence: nothing changes.
///
/// The target should be at least the interval: a shorter one is reached within one interval and the
/// cut then empties the queue (the server idles). On simulated time, 10x overload with a 100 ms target
/// keeps the server at least 99% busy with no request served waiting more than about 2.3 targets,
/// once the queue built before the first measurement has drained.
///
/// Requests refused here never complete as successes, so they never feed the signal; the caller
/// reports only successful completions of the requests this admits.
///
/// Pure: every call takes `now` (monotonic); no clock, no randomness.
public struct LatencyAdmission: Sendable, Equatable {
    /// The queueing delay above which the node counts as overloaded.
    public let target: TimeSpan
    /// How long each measurement lasts (CoDel's interval is 100 ms).
    public let interval: TimeSpan

    /// New requests the current interval may still admit; nil admits every request.
    public private(set) var allowance: Int?
    /// Requests refused so far (for metrics).
    public private(set) var refusedCount: UInt64 = 0
    /// Intervals that ended overloaded (fastest above target), for metrics.
    public private(set) var overloadedIntervals: UInt64 = 0
    /// The fastest completion of the last finished interval, if any completed (for messages and metrics).
    public private(set) var lastFastest: TimeSpan?

    /// Completions of the last `capacityIntervals` intervals that had any, oldest first.
    private var recentCompletions: [Int] = []
    public static let capacityIntervals = 30

    private var intervalEnd: MonotonicTime
    private var completed = 0
    private var refusedInInterval = 0
    private var fastest = TimeSpan(nanoseconds: .max)
    /// Allowance of the current interval as set at its start.
    private var granted: Int?

    public init(target: TimeSpan, interval: TimeSpan = .milliseconds(100), now: MonotonicTime) {
        precondition(target.nanoseconds > 0 && interval.nanoseconds > 0, "target and interval must be positive")
        self.target = target
        self.interval = interval
        intervalEnd = now + interval
    }

    /// Whether a new request may start now. Each admitted request spends one unit of the allowance.
    /// `backlog` is how many admitted requests still wait for their answer.
    public mutating func admit(now: MonotonicTime, backlog: Int) -> Bool {
        roll(now: now, backlog: backlog)
        guard let left = allowance else { return true }
        guard left > 0 else {
            refusedCount += 1
            refusedInInterval += 1
            return false
        }
        allowance = left - 1
        return true
    }

    /// An admitted request completed successfully after `latency` (from its arrival to its answer).
    public mutating func completed(latency: TimeSpan, now: MonotonicTime, backlog: Int) {
        roll(now: now, backlog: backlog)
        completed += 1
        if latency < fastest { fastest = latency }
    }

    /// Ends every interval that is over by `now`, setting the next allowance from the last one's evidence.
    private mutating func roll(now: MonotonicTime, backlog: Int) {
        guard now >= intervalEnd else { return }
        if completed > 0 {
            lastFastest = fastest
            if recentCompletions.count == Self.capacityIntervals { recentCompletions.removeFirst() }
            recentCompletions.append(completed)
            let capacity = recentCompletions.max()!
            let standingQueue =
                Double(backlog) * Double(interval.nanoseconds) >= Double(capacity) * Double(target.nanoseconds)
            if fastest > target, standingQueue {
                overloadedIntervals += 1
                let scaled = Double(capacity) * Double(target.nanoseconds) / Double(fastest.nanoseconds)
                granted = max(1, Int(scaled))
            } else if granted != nil {
                granted = refusedInInterval == 0 ? nil : capacity + max(1, capacity / 8)
            }
        }
        allowance = granted
        refusedInInterval = 0
        completed = 0
        fastest = TimeSpan(nanoseconds: .max)
        // Skip whole intervals that passed with no calls at all: they carry no evidence either.
        let behind = (now.nanoseconds - intervalEnd.nanoseconds) / interval.nanoseconds
        intervalEnd = MonotonicTime(nanoseconds: intervalEnd.nanoseconds + (behind + 1) * interval.nanoseconds)
    }
}
