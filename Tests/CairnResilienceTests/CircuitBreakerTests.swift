import CairnCore
import Testing

@testable import CairnResilience

/// A breaker with small numbers, so each rule is visible: 50% over at least 4 calls in 10 s (ten 1 s
/// buckets), open for 2 s, 2 probes, 5 s for their results.
private let small = CircuitBreaker.Configuration(
    failureRateThreshold: 0.5, minimumCalls: 4, window: .seconds(10), windowBuckets: 10,
    openDuration: .seconds(2), halfOpenProbes: 2, halfOpenTimeout: .seconds(5))

private let start = MonotonicTime(nanoseconds: 100_000_000_000)

private func at(milliseconds: UInt64) -> MonotonicTime {
    start + .milliseconds(milliseconds)
}

extension CircuitBreaker {
    /// Allows one call at `now` and records `outcome` for it; the test fails if the call is rejected.
    mutating func call(_ outcome: Outcome, now: MonotonicTime, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .allowed(let permit) = allow(now: now) else {
            Issue.record("call at \(now) was rejected in state \(state)", sourceLocation: sourceLocation)
            return
        }
        record(outcome, permit: permit, now: now)
    }

    /// The permit for one call at `now`, or nil if rejected.
    mutating func permit(now: MonotonicTime) -> Permit? {
        guard case .allowed(let permit) = allow(now: now) else { return nil }
        return permit
    }

    /// The permit for one call at `now`; the test stops if the call is rejected.
    mutating func requirePermit(now: MonotonicTime, sourceLocation: SourceLocation = #_sourceLocation) throws -> Permit
    {
        let permit = permit(now: now)
        return try #require(permit, "call at \(now) was rejected in state \(state)", sourceLocation: sourceLocation)
    }

    /// Opens a fresh breaker with four failures at `start`.
    static func opened() -> CircuitBreaker {
        var breaker = CircuitBreaker(configuration: small)
        for _ in 0..<4 { breaker.call(.failure, now: start) }
        precondition(breaker.state == .open)
        return breaker
    }
}

@Suite("circuit breaker")
struct CircuitBreakerTests {
    @Test("failures below the minimum number of calls never open the breaker, however many fail")
    func minimumCallsBeforeOpening() {
        var breaker = CircuitBreaker(configuration: small)
        for index in 0..<3 { breaker.call(.failure, now: at(milliseconds: UInt64(index))) }
        #expect(breaker.state == .closed, "3 of 3 failed, but 3 calls are below the minimum of 4")
        breaker.call(.failure, now: at(milliseconds: 3))
        #expect(breaker.state == .open)
        #expect(breaker.openedCount == 1)
        let transitions = breaker.drainTransitions()
        #expect(
            transitions == [
                .init(
                    from: .closed, to: .open, at: at(milliseconds: 3),
                    reason: .failureRateReached(failures: 4, calls: 4))
            ])
        let afterDrain = breaker.drainTransitions()
        #expect(afterDrain.isEmpty, "draining forgets")
    }

    @Test("the breaker opens at the threshold (≥), not below it")
    func opensAtThreshold() {
        var below = CircuitBreaker(configuration: small)
        for outcome in [.success, .success, .failure, .success, .failure, .success] as [CircuitBreaker.Outcome] {
            below.call(outcome, now: start)
        }
        #expect(below.state == .closed, "2 of 6 is below 50%")
        var exactly = CircuitBreaker(configuration: small)
        for outcome in [.success, .failure, .success, .failure] as [CircuitBreaker.Outcome] {
            exactly.call(outcome, now: start)
        }
        #expect(exactly.state == .open, "2 of 4 is exactly 50%")
    }

    @Test("an open breaker rejects with the time left, then lets a probe through after openDuration")
    func openRejectsUntilDurationPassed() {
        var breaker = CircuitBreaker.opened()
        let atOpening = breaker.allow(now: start)
        #expect(atOpening == .rejected(retryAfter: .seconds(2)))
        let justBefore = breaker.allow(now: at(milliseconds: 1999))
        #expect(justBefore == .rejected(retryAfter: .milliseconds(1)))
        #expect(breaker.rejectedCount == 2)
        #expect(breaker.state == .open)
        let probe = breaker.permit(now: at(milliseconds: 2000))
        #expect(probe != nil)
        #expect(breaker.state == .halfOpen)
    }

    @Test("half-open lets exactly halfOpenProbes through and closes when all succeed, with an empty window")
    func halfOpenProbesClose() throws {
        var breaker = CircuitBreaker.opened()
        _ = breaker.drainTransitions()
        let probeTime = at(milliseconds: 2000)
        let first = try breaker.requirePermit(now: probeTime)
        let second = try breaker.requirePermit(now: probeTime)
        let thirdProbe = breaker.allow(now: probeTime)
        #expect(thirdProbe == .rejected(retryAfter: .seconds(5)), "only 2 probes at a time")
        breaker.record(.success, permit: first, now: at(milliseconds: 2100))
        #expect(breaker.state == .halfOpen, "one of two probes is not enough")
        breaker.record(.success, permit: second, now: at(milliseconds: 2200))
        #expect(breaker.state == .closed)
        #expect(
            breaker.windowTotals(now: at(milliseconds: 2200)) == (0, 0), "the failures before opening are forgotten")
        let transitions = breaker.drainTransitions()
        #expect(transitions.map { "\($0.from)->\($0.to)" } == ["open->half-open", "half-open->closed"])
        // Closed again and fresh: three failures are below the minimum once more.
        for _ in 0..<3 { breaker.call(.failure, now: at(milliseconds: 2300)) }
        #expect(breaker.state == .closed)
    }

    @Test("a failed probe reopens the breaker for a full openDuration from the failure")
    func failedProbeReopens() throws {
        var breaker = CircuitBreaker.opened()
        let probe = try breaker.requirePermit(now: at(milliseconds: 2000))
        let other = try breaker.requirePermit(now: at(milliseconds: 2000))
        breaker.record(.failure, permit: probe, now: at(milliseconds: 2500))
        #expect(breaker.state == .open)
        #expect(breaker.openedCount == 2)
        let reopened = breaker.allow(now: at(milliseconds: 2500))
        #expect(reopened == .rejected(retryAfter: .seconds(2)))
        breaker.record(.success, permit: other, now: at(milliseconds: 2600))
        #expect(breaker.state == .open, "the other probe's late success belongs to the old half-open period")
        #expect(breaker.staleResultCount == 1)
        let nextProbe = breaker.permit(now: at(milliseconds: 4500))
        #expect(nextProbe != nil)
        #expect(breaker.state == .halfOpen)
    }

    @Test("probes that never answer reopen the breaker after halfOpenTimeout")
    func silentProbesReopen() throws {
        var breaker = CircuitBreaker.opened()
        let probe = try breaker.requirePermit(now: at(milliseconds: 2000))
        _ = try breaker.requirePermit(now: at(milliseconds: 2000))
        let justBeforeTimeout = breaker.allow(now: at(milliseconds: 6999))
        #expect(justBeforeTimeout == .rejected(retryAfter: .milliseconds(1)))
        #expect(breaker.state == .halfOpen)
        let atTimeout = breaker.allow(now: at(milliseconds: 7000))
        #expect(atTimeout == .rejected(retryAfter: .seconds(2)))
        #expect(breaker.state == .open)
        let transitions = breaker.drainTransitions()
        #expect(transitions.last?.reason == .probesTimedOut)
        breaker.record(.success, permit: probe, now: at(milliseconds: 7001))
        #expect(breaker.state == .open, "a probe that answered after the timeout decides nothing")
    }

    @Test("a slow call admitted while closed does not count as a half-open probe")
    func stalePermitIsIgnored() throws {
        var breaker = CircuitBreaker(configuration: small)
        let slow = try breaker.requirePermit(now: start)
        for _ in 0..<4 { breaker.call(.failure, now: start) }
        #expect(breaker.state == .open)
        let probe = try breaker.requirePermit(now: at(milliseconds: 2000))
        breaker.record(.success, permit: slow, now: at(milliseconds: 2001))
        breaker.call(.success, now: at(milliseconds: 2002))
        #expect(breaker.state == .halfOpen, "only one real probe has answered; the slow call is stale")
        breaker.record(.success, permit: probe, now: at(milliseconds: 2003))
        #expect(breaker.state == .closed)
        #expect(breaker.staleResultCount == 1)
    }

    @Test("the window slides: failures older than the window are forgotten")
    func windowForgetsOldFailures() {
        var breaker = CircuitBreaker(configuration: small)
        for _ in 0..<3 { breaker.call(.failure, now: at(milliseconds: 500)) }
        #expect(breaker.windowTotals(now: at(milliseconds: 9999)) == (3, 3), "still inside the 10 s window")
        #expect(breaker.windowTotals(now: at(milliseconds: 10_000)) == (0, 0), "its bucket left the window")
        breaker.call(.failure, now: at(milliseconds: 10_000))
        #expect(breaker.state == .closed, "one recent failure is below the minimum")
        var inside = CircuitBreaker(configuration: small)
        for _ in 0..<3 { inside.call(.failure, now: at(milliseconds: 500)) }
        inside.call(.failure, now: at(milliseconds: 9999))
        #expect(inside.state == .open, "the same four failures within the window open it")
    }

    @Test("old successes leave the window too, so a later burst of failures opens the breaker")
    func windowForgetsOldSuccesses() {
        var breaker = CircuitBreaker(configuration: small)
        for _ in 0..<100 { breaker.call(.success, now: start) }
        for _ in 0..<4 { breaker.call(.failure, now: at(milliseconds: 5000)) }
        #expect(breaker.state == .closed, "4 of 104 calls failed")
        breaker.call(.failure, now: at(milliseconds: 10_500))
        #expect(breaker.state == .open, "5 of 5: the 100 successes of the first second have left the window")
    }

    @Test("transitions not drained are bounded; the oldest are dropped and counted")
    func pendingTransitionsBounded() throws {
        var breaker = CircuitBreaker.opened()
        var now = start
        for _ in 0..<40 {
            now = now + .seconds(2)
            let probe = try breaker.requirePermit(now: now)
            breaker.record(.failure, permit: probe, now: now)
        }
        // 1 opening + 40 × (open → half-open, half-open → open) = 81 transitions.
        #expect(breaker.droppedTransitionCount == UInt64(81 - CircuitBreaker.transitionsPendingMax))
        let kept = breaker.drainTransitions()
        #expect(kept.count == CircuitBreaker.transitionsPendingMax)
        #expect(kept.last == .init(from: .halfOpen, to: .open, at: now, reason: .probeFailed))
        #expect(breaker.openedCount == 41)
    }

    @Test("exactly four transitions are legal")
    func legalTransitions() {
        let states = CircuitBreaker.State.allCases
        let legal = states.flatMap { from in
            states.filter { CircuitBreaker.isLegal(from: from, to: $0) }.map { "\(from)->\($0)" }
        }
        #expect(legal == ["closed->open", "open->half-open", "half-open->closed", "half-open->open"])
    }

    /// Method: a seeded random stream of calls (random gaps, random outcomes) against a naive model
    /// that keeps every result and recomputes the window by brute force with the same bucket rule.
    /// The breaker must open at exactly the call where the model first sees the threshold reached.
    @Test("opening agrees with a brute-force window model", arguments: 0..<200 as Range<UInt64>)
    func opensLikeTheModel(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let failurePercent = 20 + prng.below(50)
        var breaker = CircuitBreaker(configuration: small)
        var history: [(time: UInt64, isFailure: Bool)] = []
        var now = start
        let bucketWidth: UInt64 = 1_000_000_000
        for step in 0..<300 {
            now = now + .milliseconds(UInt64(prng.below(1500)))
            let isFailure = prng.below(100) < failurePercent
            breaker.call(isFailure ? .failure : .success, now: now)
            history.append((now.nanoseconds, isFailure))
            let current = now.nanoseconds / bucketWidth
            let inWindow = history.filter { current - $0.time / bucketWidth < 10 }
            let failures = inWindow.filter(\.isFailure).count
            let modelOpens = inWindow.count >= 4 && failures * 2 >= inWindow.count
            #expect(
                (breaker.state == .open) == modelOpens,
                "seed \(seed) step \(step): model \(failures)/\(inWindow.count), breaker \(breaker.state)")
            if modelOpens || breaker.state == .open { return }
        }
    }
}
