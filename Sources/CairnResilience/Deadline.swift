/// The moment after which nobody waits for an answer any more: an absolute reading of the monotonic clock.
///
/// Why absolute: a timeout ("5 s") is relative to when it was set, and every hop that re-applies it
/// extends the total. A deadline fixed once at the edge and handed down makes every layer agree on
/// when to stop, so a coordinator drops work its client already gave up on instead of finishing it for
/// nobody (the "timeouts without deadlines waste work"). This is gRPC's deadline model and
/// Go's `context.WithDeadline`; `child(timeout:now:)` is `WithTimeout` on a parent context: a callee
/// may be given less time than its caller has, never more.
///
/// Between nodes a deadline travels as its *remaining* span, not as a clock reading, because monotonic
/// clocks of different machines share no origin (gRPC sends `grpc-timeout` for the same reason): the
/// sender puts `remaining(now:)` on the wire and the receiver rebuilds `Deadline(now:timeout:)` on its
/// own clock. The transit time is then not subtracted, so the callee's deadline errs late by one
/// network hop; callers that care subtract a margin.
public struct Deadline: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The moment the deadline passes; at and after it the deadline is expired.
    public let instant: MonotonicTime

    /// A deadline at `instant`.
    public init(_ instant: MonotonicTime) {
        self.instant = instant
    }

    /// A deadline `timeout` after `now`, saturating at `MonotonicTime.distantFuture`.
    public init(now: MonotonicTime, timeout: TimeSpan) {
        self.instant = now + timeout
    }

    /// No deadline: never expires, and `child` of it is just the child's own timeout.
    public static let never = Deadline(.distantFuture)

    /// Whether the deadline has passed at `now`. A deadline equal to `now` has passed: no time is left.
    public func isExpired(now: MonotonicTime) -> Bool {
        now >= instant
    }

    /// Time left at `now`, zero once expired.
    public func remaining(now: MonotonicTime) -> TimeSpan {
        instant.timeSpan(since: now)
    }

    /// The deadline for a sub-operation given `timeout` of its own: the earlier of this deadline and
    /// `now + timeout`. A sub-operation never outlives its parent.
    public func child(timeout: TimeSpan, now: MonotonicTime) -> Deadline {
        Swift.min(self, Deadline(now: now, timeout: timeout))
    }

    public static func < (left: Deadline, right: Deadline) -> Bool {
        left.instant < right.instant
    }

    public var description: String { self == .never ? "deadline=never" : "deadline=\(instant)" }
}
