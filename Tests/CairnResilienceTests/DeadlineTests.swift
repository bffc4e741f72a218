import CairnCore
import Testing

@testable import CairnResilience

@Suite("deadlines and time")
struct DeadlineTests {
    static let now = MonotonicTime(nanoseconds: 10_000_000_000)

    @Test("a deadline expires at its instant, not before, and reports what is left")
    func expiresAtItsInstant() {
        let deadline = Deadline(now: Self.now, timeout: .milliseconds(250))
        #expect(!deadline.isExpired(now: Self.now))
        #expect(deadline.remaining(now: Self.now) == .milliseconds(250))
        let almost = MonotonicTime(nanoseconds: deadline.instant.nanoseconds - 1)
        #expect(!deadline.isExpired(now: almost))
        #expect(deadline.remaining(now: almost) == TimeSpan(nanoseconds: 1))
        #expect(deadline.isExpired(now: deadline.instant), "no time left means expired")
        #expect(deadline.remaining(now: deadline.instant) == .zero)
        #expect(deadline.remaining(now: deadline.instant + .seconds(5)) == .zero, "remaining never goes negative")
    }

    @Test("a child deadline is the earlier of its parent and its own timeout")
    func childNeverOutlivesParent() {
        let parent = Deadline(now: Self.now, timeout: .seconds(1))
        let shorter = parent.child(timeout: .milliseconds(100), now: Self.now)
        #expect(shorter == Deadline(now: Self.now, timeout: .milliseconds(100)))
        let longer = parent.child(timeout: .seconds(5), now: Self.now)
        #expect(longer == parent, "a callee must not get more time than its caller")
        let late = parent.child(timeout: .milliseconds(600), now: Self.now + .milliseconds(500))
        #expect(late == parent)
        #expect(
            Deadline.never.child(timeout: .seconds(2), now: Self.now) == Deadline(now: Self.now, timeout: .seconds(2)))
    }

    @Test("never does not expire, and huge timeouts saturate instead of trapping")
    func neverAndSaturation() {
        #expect(!Deadline.never.isExpired(now: MonotonicTime(nanoseconds: .max - 1)))
        #expect(Deadline(now: Self.now, timeout: TimeSpan(nanoseconds: .max)) == .never)
        #expect(TimeSpan.seconds(.max) == TimeSpan(nanoseconds: .max))
        #expect(TimeSpan.milliseconds(.max / 2) == TimeSpan(nanoseconds: .max))
        #expect(TimeSpan(nanoseconds: .max) + .seconds(1) == TimeSpan(nanoseconds: .max))
        #expect(TimeSpan.seconds(3) + .milliseconds(5) == TimeSpan(nanoseconds: 3_005_000_000))
    }

    @Test("a deadline crosses to another clock as its remaining span")
    func crossesClocksAsRemaining() {
        let deadline = Deadline(now: Self.now, timeout: .seconds(3))
        let sentAt = Self.now + .seconds(1)
        let receiverNow = MonotonicTime(nanoseconds: 777)
        let rebuilt = Deadline(now: receiverNow, timeout: deadline.remaining(now: sentAt))
        #expect(rebuilt.instant == MonotonicTime(nanoseconds: 777 + 2_000_000_000))
    }

    @Test("time spans between readings saturate at zero")
    func timeSpanSince() {
        let later = Self.now + .milliseconds(3)
        #expect(later.timeSpan(since: Self.now) == .milliseconds(3))
        #expect(Self.now.timeSpan(since: later) == .zero)
        #expect(MonotonicTime(Instant(unixMicroseconds: 5, monotonicNanoseconds: 42)) == MonotonicTime(nanoseconds: 42))
    }
}
