import CairnCheck
import CairnCore
import Testing

/// Bad input, limits and determinism: the checker's behaviour at its edges.
@Suite("checker limits and input")
struct CheckerLimitsTests {
    @Test("limits relate as the checker assumes")
    func limitsRelate() {
        // A history without concurrency needs one state per operation, so any key within the
        // operations limit must be checkable within the states limit when nothing overlaps.
        #expect(Limits.linearizabilityStatesPerKeyMax >= Limits.linearizabilityOperationsPerKeyMax)
        #expect(Limits.linearizabilityOperationsPerKeyMax >= 1024, "simulated keys see hundreds of operations")
    }

    @Test("an operation answered before it was invoked is an error that names it")
    func responseBeforeInvocation() {
        let history = [write("x", "a", client: 1, 0...1), read("x", "a", client: 2, 5...5)]
        var broken = history
        broken[1].invocation = 9
        #expect(throws: HistoryError.responseBeforeInvocation(index: 1, invocation: 9, response: 5)) {
            try LinearizabilityChecker().check(broken)
        }
        let error = HistoryError.responseBeforeInvocation(index: 1, invocation: 9, response: 5)
        #expect(error.description.contains("#1 responded at 5, before its invocation at 9"))
    }

    @Test("a search that reaches the states limit is inconclusive, not a hang")
    func statesLimitGivesInconclusive() throws {
        // Twenty concurrent writes, then a read of a value none wrote: the search must try every
        // order of the writes (2^20 sets × values) before it can say no. A small limit stops it.
        var history = (0..<UInt64(20)).map {
            write("x", RegisterValue(stringLiteral: "v\($0)"), client: ClientID($0), 0...100)
        }
        history.append(read("x", "ghost", client: 99, 101...102))
        let report = try LinearizabilityChecker(statesPerKeyMax: 1000).check(history)
        #expect(inconclusive(in: report.verdict)?.reason == .statesLimit(limit: 1000))
        #expect(report.statesExplored == 1000)
        #expect(report.description.hasPrefix("inconclusive: key \"x\": the search explored its limit of 1000 states"))
    }

    @Test("a key with more operations than the limit is inconclusive without a search")
    func operationsLimitGivesInconclusive() throws {
        let history = (0..<UInt64(10)).map { read("x", nil, client: 1, ($0 * 2)...($0 * 2 + 1)) }
        let report = try LinearizabilityChecker(operationsPerKeyMax: 9).check(history)
        #expect(
            inconclusive(in: report.verdict)?.reason == .operationsLimit(operations: 10, limit: 9))
        #expect(report.statesExplored == 0)
    }

    @Test("a violation on a later key beats an inconclusive earlier key")
    func violationBeatsInconclusive() throws {
        let history = [
            read("a", nil, client: 1, 0...1),
            read("a", nil, client: 1, 2...3),
            read("a", nil, client: 1, 4...5),
            write("b", "1", client: 1, 0...1),
            read("b", "2", client: 2, 2...3),
        ]
        let strict = try LinearizabilityChecker(operationsPerKeyMax: 2).check(history)
        #expect(violation(in: strict.verdict)?.key == "b")
        let withoutB = Array(history.prefix(3))
        let report = try LinearizabilityChecker(operationsPerKeyMax: 2).check(withoutB)
        #expect(inconclusive(in: report.verdict)?.key == "a")
    }

    @Test("the same history gives the same report; a reordered array gives the same verdict and depth")
    func deterministicReports() throws {
        // Ties between equal timestamps are broken by position in the array, so a reordered array may
        // explain the violation with a different (equally long) prefix, but never a different verdict.
        var prng = SplitMix64(seed: 7)
        let history = [
            write("x", "a", client: 1, 0...10),
            write("x", "b", client: 2, 0...10),
            read("x", "a", client: 3, 1...2),
            read("x", "b", client: 3, 3...4),
            read("x", "a", client: 3, 5...6),
            write("y", "1", client: 1, 11...12),
        ]
        let report = try LinearizabilityChecker().check(history)
        #expect(try LinearizabilityChecker().check(history) == report)
        let expected = try #require(violation(in: report.verdict))
        for _ in 0..<10 {
            let shuffled = history.shuffled(using: &prng)
            let found = try #require(violation(in: try verdict(shuffled)))
            #expect(found.key == expected.key)
            #expect(found.prefix.count == expected.prefix.count)
        }
    }
}
