import CairnCheck
import Testing

/// Hand-made histories that have a linearization. Each comment names the order that works.
@Suite("linearizable histories")
struct LinearizableHistoryTests {
    @Test("an empty history is linearizable")
    func emptyHistory() throws {
        let report = try LinearizabilityChecker().check([])
        #expect(report.verdict == .linearizable)
        #expect(report.keysChecked == 0)
        #expect(report.statesExplored == 0)
    }

    @Test("a sequential history explores one state per operation")
    func sequentialHistory() throws {
        let history = [
            read("x", nil, client: 1, 0...1),
            write("x", "a", client: 1, 2...3),
            read("x", "a", client: 2, 4...5),
            delete("x", client: 2, 6...7),
            read("x", nil, client: 1, 8...9),
        ]
        let report = try LinearizabilityChecker().check(history)
        #expect(report.verdict == .linearizable)
        #expect(report.statesExplored == history.count)
    }

    @Test("after two concurrent writes, a read may see either one", arguments: ["a", "b"] as [RegisterValue])
    func concurrentWritesEitherWins(seen: RegisterValue) throws {
        let history = [
            write("x", "a", client: 1, 0...10),
            write("x", "b", client: 2, 0...10),
            read("x", seen, client: 3, 11...12),
            read("x", seen, client: 1, 13...14),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("reads during two concurrent writes may see nil, then one value, then the other")
    func readsDuringConcurrentWrites() throws {
        let history = [
            write("x", "a", client: 1, 0...10),
            write("x", "b", client: 2, 0...10),
            read("x", nil, client: 3, 1...2),
            read("x", "b", client: 3, 3...4),
            read("x", "a", client: 3, 5...6),
            read("x", "a", client: 4, 11...12),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("a read concurrent with a write may see the old or the new value", arguments: [nil, "a"] as [RegisterValue?])
    func readConcurrentWithWrite(seen: RegisterValue?) throws {
        let history = [write("x", "a", client: 1, 0...5), read("x", seen, client: 2, 1...4)]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("timestamps that touch are concurrent: a read answered at the write's invocation may see it")
    func touchingWindowsAreConcurrent() throws {
        let history = [read("x", "a", client: 2, 0...5), write("x", "a", client: 1, 5...9)]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("a chain of compare-and-sets, with a concurrent one that saw a mismatch")
    func compareAndSetChain() throws {
        // Order: write 0, cas 0->1, cas 1->2, cas 0->9 (mismatch: holds 2), read 2.
        let history = [
            write("x", "0", client: 1, 0...1),
            compareAndSet("x", from: "0", to: "1", succeeded: true, client: 2, 2...5),
            compareAndSet("x", from: "1", to: "2", succeeded: true, client: 3, 3...6),
            compareAndSet("x", from: "0", to: "9", succeeded: false, client: 4, 2...7),
            read("x", "2", client: 1, 8...9),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("two concurrent compare-and-sets from one value: one wins, the other sees a mismatch")
    func compareAndSetRace() throws {
        let history = [
            write("x", "0", client: 1, 0...1),
            compareAndSet("x", from: "0", to: "1", succeeded: false, client: 2, 2...5),
            compareAndSet("x", from: "0", to: "2", succeeded: true, client: 3, 2...5),
            read("x", "2", client: 1, 6...7),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("compare-and-set on an absent key succeeds from nil")
    func compareAndSetFromAbsent() throws {
        let history = [
            compareAndSet("x", from: nil, to: "a", succeeded: true, client: 1, 0...1),
            compareAndSet("x", from: nil, to: "b", succeeded: false, client: 2, 2...3),
            read("x", "a", client: 1, 4...5),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("a write with unknown outcome that took effect")
    func unknownWriteTookEffect() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3).unknown(),
            read("x", "b", client: 1, 5...6),
            read("x", "b", client: 3, 7...8),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("a write with unknown outcome that never took effect")
    func unknownWriteNeverTookEffect() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3).unknown(),
            read("x", "a", client: 1, 5...6),
            read("x", "a", client: 3, 100...101),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("a write with unknown outcome may take effect long after its invocation")
    func unknownWriteTookEffectLate() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3).unknown(),
            read("x", "a", client: 1, 5...6),
            read("x", "b", client: 3, 10...11),
            read("x", "b", client: 1, 12...13),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("a compare-and-set with unknown outcome that took effect, and one that could not have")
    func unknownCompareAndSet() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            compareAndSet("x", from: "a", to: "b", succeeded: false, client: 2, 2...3).unknown(),
            compareAndSet("x", from: "zzz", to: "c", succeeded: true, client: 3, 2...3).unknown(),
            read("x", "b", client: 1, 5...6),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("failed operations and reads without a reply are ignored")
    func failedAndUnansweredAreIgnored() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3).failed(),
            delete("x", client: 2, 4...5).failed(),
            read("x", "never-written", client: 3, 4...5).unknown(),
            read("x", "a", client: 1, 6...7),
        ]
        let report = try LinearizabilityChecker().check(history)
        #expect(report.verdict == .linearizable)
        #expect(report.operationsChecked == 2)
    }

    @Test("a delete concurrent with reads: they may see the value or nil, but not the value after nil")
    func deleteConcurrentWithReads() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            delete("x", client: 1, 2...10),
            read("x", "a", client: 2, 3...4),
            read("x", nil, client: 2, 5...6),
            read("x", nil, client: 3, 5...12),
        ]
        #expect(try verdict(history) == .linearizable)
    }

    @Test("initial values are the registers' starting state")
    func initialValues() throws {
        let history = [read("x", "seeded", client: 1, 0...1), read("y", nil, client: 1, 2...3)]
        let checker = LinearizabilityChecker(initialValues: ["x": "seeded"])
        #expect(try verdict(history, checker: checker) == .linearizable)
        #expect(try verdict(history) != .linearizable)
    }

    @Test("keys are independent registers: the same values on two keys do not interfere")
    func keysAreIndependent() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            write("y", "b", client: 2, 0...1),
            read("x", "a", client: 3, 2...3),
            read("y", "b", client: 3, 4...5),
        ]
        let report = try LinearizabilityChecker().check(history)
        #expect(report.verdict == .linearizable)
        #expect(report.keysChecked == 2)
    }

    @Test("keys and values are bytes: non-text bytes work and print escaped")
    func binaryKeysAndValues() throws {
        let key = RegisterKey([0x00, 0xFF, UInt8(ascii: "\"")])
        let value = RegisterValue([0x0A])
        let history = [write(key, value, client: 1, 0...1), read(key, value, client: 1, 2...3)]
        #expect(try verdict(history) == .linearizable)
        #expect(key.description == #""\x00\xff\"""#)
        #expect(value.description == #""\x0a""#)
    }
}
