import CairnCore
import Testing

@testable import CairnResilience

@Suite("retry budget")
struct RetryBudgetTests {
    static let start = MonotonicTime(nanoseconds: 1_000_000_000)

    static func ratioOnly(_ ratio: Double, banked: UInt64 = 100) -> RetryBudget.Configuration {
        RetryBudget.Configuration(retryRatio: ratio, depositedTokensMax: banked, minimumRetriesPerSecond: 0)
    }

    @Test("ten requests at 10% earn exactly one retry (nine earn none)")
    func tenRequestsEarnOneRetry() {
        var budget = RetryBudget(configuration: Self.ratioOnly(0.1), now: Self.start)
        for _ in 0..<9 { budget.recordRequest(now: Self.start) }
        #expect(!budget.canRetry(now: Self.start), "0.9 tokens must not buy a retry")
        budget.recordRequest(now: Self.start)
        #expect(budget.canRetry(now: Self.start), "ten deposits of 0.1 must make one whole token")
        #expect(budget.canRetry(now: Self.start), "asking must not spend")
        let first = budget.spendRetry(now: Self.start)
        #expect(first)
        let second = budget.spendRetry(now: Self.start)
        #expect(!second)
        #expect(budget.retriesSpent == 1 && budget.retriesDenied == 1 && budget.requestsRecorded == 10)
    }

    /// Method: a backend that fails everything; the client retries each request until the budget
    /// refuses. Without a floor, retries must be exactly `ratio` × requests (the bank never fills).
    @Test("when everything fails, retries are the configured fraction of requests", arguments: [0.05, 0.1, 0.25, 1.0])
    func retriesAreRatioOfRequests(ratio: Double) {
        var budget = RetryBudget(configuration: Self.ratioOnly(ratio), now: Self.start)
        var now = Self.start
        let requests = 100_000
        for _ in 0..<requests {
            now = now + .milliseconds(1)
            budget.recordRequest(now: now)
            for _ in 0..<3 where budget.spendRetry(now: now) {}
        }
        let expected = UInt64((Double(requests) * ratio).rounded())
        #expect(budget.retriesSpent == expected, "ratio \(ratio): \(budget.retriesSpent) retries")
    }

    /// Method: 1000 requests a second for a minute, each failing and retried up to 3 times. The bound is
    /// ratio × requests, plus the floor per elapsed second, plus the floor's initial burst.
    @Test("with a floor, retries stay within ratio × requests + floor × seconds")
    func floorAddsAConstantRate() {
        let configuration = RetryBudget.Configuration(
            retryRatio: 0.1, depositedTokensMax: 100, minimumRetriesPerSecond: 10)
        var budget = RetryBudget(configuration: configuration, now: Self.start)
        var now = Self.start
        for _ in 0..<60_000 {
            now = now + .milliseconds(1)
            budget.recordRequest(now: now)
            for _ in 0..<3 where budget.spendRetry(now: now) {}
        }
        let bound: UInt64 = 6_000 + 10 * 60 + 10
        #expect(budget.retriesSpent <= bound)
        #expect(budget.retriesSpent >= 6_000 + 10 * 59, "the floor must add to the ratio, got \(budget.retriesSpent)")
        #expect(budget.retriesDenied > 50_000, "most failures must not be retried")
    }

    @Test("a quiet client retries every failure thanks to the floor, and none without it")
    func quietClientUsesFloor() {
        var withFloor = RetryBudget(configuration: .standard, now: Self.start)
        var withoutFloor = RetryBudget(configuration: Self.ratioOnly(0.1), now: Self.start)
        var now = Self.start
        for _ in 0..<9 {
            now = now + .seconds(60)
            withFloor.recordRequest(now: now)
            withoutFloor.recordRequest(now: now)
            let floorRetried = withFloor.spendRetry(now: now)
            #expect(floorRetried)
            let ratioRetried = withoutFloor.spendRetry(now: now)
            #expect(!ratioRetried)
        }
    }

    @Test("the floor refills at its rate: 10 per second is one per 100 ms")
    func floorRefillsAtItsRate() {
        let configuration = RetryBudget.Configuration(
            retryRatio: 0.1, depositedTokensMax: 1, minimumRetriesPerSecond: 10)
        var budget = RetryBudget(configuration: configuration, now: Self.start)
        for _ in 0..<10 {
            let inBurst = budget.spendRetry(now: Self.start)
            #expect(inBurst)
        }
        let afterBurst = budget.spendRetry(now: Self.start)
        #expect(!afterBurst, "the floor's burst is one second's worth")
        #expect(!budget.canRetry(now: Self.start + .milliseconds(99)))
        #expect(budget.canRetry(now: Self.start + .milliseconds(100)))
        let refilled = budget.spendRetry(now: Self.start + .milliseconds(100))
        #expect(refilled)
        let refilledTwice = budget.spendRetry(now: Self.start + .milliseconds(100))
        #expect(!refilledTwice)
    }

    @Test("deposits are capped: a long success streak banks at most depositedTokensMax retries")
    func depositsAreCapped() {
        var budget = RetryBudget(configuration: Self.ratioOnly(0.1, banked: 100), now: Self.start)
        for _ in 0..<100_000 { budget.recordRequest(now: Self.start) }
        #expect(budget.depositedTokens == 100)
        var spent = 0
        while budget.spendRetry(now: Self.start) { spent += 1 }
        #expect(spent == 100)
    }

    @Test("retries draw from the floor before the deposits")
    func floorIsSpentFirst() {
        let configuration = RetryBudget.Configuration(
            retryRatio: 0.5, depositedTokensMax: 10, minimumRetriesPerSecond: 2)
        var budget = RetryBudget(configuration: configuration, now: Self.start)
        for _ in 0..<4 { budget.recordRequest(now: Self.start) }
        #expect(budget.depositedTokens == 2)
        let first = budget.spendRetry(now: Self.start)
        let second = budget.spendRetry(now: Self.start)
        #expect(first && second)
        #expect(budget.depositedTokens == 2, "the floor's two tokens go first")
        let third = budget.spendRetry(now: Self.start)
        #expect(third)
        #expect(budget.depositedTokens == 1)
    }
}
