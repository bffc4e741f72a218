import CairnCheck
import Testing

/// Hand-made histories with no linearization. Each comment says why none exists.
@Suite("violations")
struct ViolationTests {
    @Test("a stale read after a completed write")
    func staleRead() throws {
        // The write of "b" finished before the read began, so the read must see "b".
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3),
            read("x", "a", client: 3, 4...5),
        ]
        let found = try #require(violation(in: try verdict(history)))
        #expect(found.key == "x")
        #expect(found.prefix.map(\.index) == [0, 1])
        #expect(found.valueAfterPrefix == "b")
        #expect(found.blocked.map(\.operation.index) == [2])
    }

    @Test("a lost update: two compare-and-sets from the same value both succeed")
    func lostUpdate() throws {
        // Whichever swaps first changes the value, so the second cannot also find "0".
        let history = [
            write("x", "0", client: 1, 0...1),
            compareAndSet("x", from: "0", to: "1", succeeded: true, client: 2, 2...5),
            compareAndSet("x", from: "0", to: "2", succeeded: true, client: 3, 3...6),
        ]
        let found = try #require(violation(in: try verdict(history)))
        #expect(found.key == "x")
        #expect(found.blocked.count == 1)
    }

    @Test("a lost update seen by a read: increments by read-then-write lose one")
    func lostUpdateByReads() throws {
        // Both clients read 0 and wrote 1 with compare-and-set from 0; only one may succeed, yet a
        // later read sees 1 after both reported success.
        let history = [
            read("n", nil, client: 1, 0...1),
            read("n", nil, client: 2, 0...1),
            compareAndSet("n", from: nil, to: "1", succeeded: true, client: 1, 2...3),
            compareAndSet("n", from: nil, to: "1", succeeded: true, client: 2, 2...3),
            read("n", "1", client: 3, 4...5),
        ]
        #expect(violation(in: try verdict(history)) != nil)
    }

    @Test("a write reported as failed is later visible")
    func failedWriteVisible() throws {
        // A failed write did not happen, so nobody wrote "b".
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3).failed(),
            read("x", "b", client: 3, 4...5),
        ]
        let found = try #require(violation(in: try verdict(history)))
        #expect(found.blocked.map(\.operation.index) == [2])
        #expect(found.blocked.first?.reason == #"it saw "b", but the register holds "a""#)
    }

    @Test("a read sees a value that was never written")
    func readOfValueNeverWritten() throws {
        let history = [
            write("x", "a", client: 1, 0...10),
            read("x", "ghost", client: 2, 1...2),
        ]
        let found = try #require(violation(in: try verdict(history)))
        #expect(found.prefix.map(\.index) == [0])
        #expect(found.blocked.map(\.operation.index) == [1])
        #expect(found.blocked.first?.reason == #"it saw "ghost", but the register holds "a""#)
    }

    @Test("a deleted key is read back")
    func deletedKeyReadBack() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            delete("x", client: 1, 2...3),
            read("x", "a", client: 2, 4...5),
        ]
        let found = try #require(violation(in: try verdict(history)))
        #expect(found.valueAfterPrefix == nil)
    }

    @Test("reads cannot see a value come back: two concurrent writes each take effect once")
    func valueFlipsBack() throws {
        let history = [
            write("x", "a", client: 1, 0...10),
            write("x", "b", client: 2, 0...10),
            read("x", "a", client: 3, 1...2),
            read("x", "b", client: 3, 3...4),
            read("x", "a", client: 3, 5...6),
        ]
        #expect(violation(in: try verdict(history)) != nil)
    }

    @Test("after concurrent writes complete, the value is settled: reads cannot disagree")
    func readsDisagreeAfterWrites() throws {
        let history = [
            write("x", "a", client: 1, 0...10),
            write("x", "b", client: 2, 0...10),
            read("x", "a", client: 3, 11...12),
            read("x", "b", client: 3, 13...14),
        ]
        #expect(violation(in: try verdict(history)) != nil)
    }

    @Test("a write with unknown outcome cannot take effect before it was invoked")
    func unknownWriteSeenTooEarly() throws {
        let history = [
            read("x", "b", client: 1, 0...1),
            write("x", "b", client: 2, 5...6).unknown(),
        ]
        #expect(violation(in: try verdict(history)) != nil)
    }

    @Test("a write with unknown outcome takes effect at most once: it cannot be seen, then unseen")
    func unknownWriteUndone() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3).unknown(),
            read("x", "b", client: 1, 5...6),
            read("x", "a", client: 3, 7...8),
        ]
        #expect(violation(in: try verdict(history)) != nil)
    }

    @Test("a compare-and-set reports a mismatch while the register holds exactly the expected value")
    func falseMismatch() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            compareAndSet("x", from: "a", to: "b", succeeded: false, client: 2, 2...3),
        ]
        let found = try #require(violation(in: try verdict(history)))
        #expect(
            found.blocked.first?.reason == #"it reported a mismatch, but the register holds "a", the value it expected"#
        )
    }

    @Test("the first key in byte order with a violation is reported; other keys do not hide it")
    func violationOnOneKeyOfMany() throws {
        let history = [
            write("a", "1", client: 1, 0...1),
            read("a", "1", client: 2, 2...3),
            write("m", "1", client: 1, 0...1),
            read("m", nil, client: 2, 2...3),
            write("z", "1", client: 1, 0...1),
            read("z", nil, client: 2, 2...3),
        ]
        let found = try #require(violation(in: try verdict(history)))
        #expect(found.key == "m")
        #expect(found.prefix.map(\.index) == [2])
    }

    @Test("the explanation reads as a report: prefix, value, deadline and why each candidate fails")
    func explanationText() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3),
            read("x", "c", client: 4, 2...9),
            read("x", "a", client: 3, 4...5),
        ]
        let report = try LinearizabilityChecker().check(history)
        let expected = """
            not linearizable: key "x" (4 operations, 2 states explored)
            a longest linearizable prefix has 2 operations:
              #0 client 1 [0, 1] ok: write "x" = "a"
              #1 client 2 [2, 3] ok: write "x" = "b"
            after them the register holds "b"
            #3 responded at 5, so one of these must come next, and none can:
              #2 client 4 [2, 9] ok: read "x" -> "c": it saw "c", but the register holds "b"
              #3 client 3 [4, 5] ok: read "x" -> "a": it saw "a", but the register holds "b"
            (1 key, 4 operations, 2 states explored)
            """
        #expect(report.description == expected)
    }

    @Test("the explanation lists the unknown-outcome operations that could not have helped")
    func explanationWithUnknownOutcome() throws {
        let history = [
            write("x", "a", client: 1, 0...1),
            write("x", "b", client: 2, 2...3).unknown(),
            delete("x", client: 3, 2...3).unknown(),
            read("x", "c", client: 4, 4...5),
        ]
        let report = try LinearizabilityChecker().check(history)
        let found = try #require(violation(in: report.verdict))
        #expect(found.unknownOutcome.map(\.index) == [1, 2])
        let expected = """
            not linearizable: key "x" (4 operations, 1 states explored)
            a longest linearizable prefix has 1 operations:
              #0 client 1 [0, 1] ok: write "x" = "a"
            after them the register holds "a"
            #3 responded at 5, so one of these must come next, and none can:
              #3 client 4 [4, 5] ok: read "x" -> "c": it saw "c", but the register holds "a"
            taking effect first, these operations with unknown outcome would not change that:
              #1 client 2 [2, -] unknown: write "x" = "b"
              #2 client 3 [2, -] unknown: delete "x"
            """
        #expect(found.description == expected)
    }

    @Test("a long prefix is shortened in the explanation to its last operations")
    func longPrefixIsShortened() throws {
        var history: [RegisterOperation] = []
        for tick in 0..<UInt64(20) {
            history.append(write("x", RegisterValue(stringLiteral: "v\(tick)"), client: 1, (tick * 2)...(tick * 2 + 1)))
        }
        history.append(read("x", "v0", client: 2, 100...101))
        let found = try #require(violation(in: try verdict(history)))
        #expect(found.prefix.count == 20)
        let lines = found.description.split(separator: "\n")
        #expect(lines.contains("  ... 8 earlier operations not shown"))
        #expect(lines.filter { $0.hasPrefix("  #") }.count == Violation.prefixShownMax + 1)
    }
}
