import CairnCheck
import CairnCore
import Testing

/// Property tests over seeded random histories. Every failure message carries its seed; rerun one
/// seed by narrowing the test's arguments to it.
@Suite("random histories")
struct RandomHistoryTests {
    @Test("histories generated from a sequential model are linearizable", arguments: 0..<200 as Range<UInt64>)
    func generatedHistoriesAreLinearizable(seed: UInt64) throws {
        var prng = SplitMix64(seed: seed)
        let generator = HistoryGenerator(
            clients: 2 + prng.below(6), keys: 1 + prng.below(4), windowTicksMax: prng.below(10))
        let history = generator.generate(using: &prng)
        let report = try LinearizabilityChecker().check(history)
        #expect(report.verdict == .linearizable, "seed \(seed): \(report)")
    }

    @Test("a read corrupted to a value never written is always caught, on its key", arguments: 0..<200 as Range<UInt64>)
    func readOfUnwrittenValueIsCaught(seed: UInt64) throws {
        var prng = SplitMix64(seed: seed)
        var history = HistoryGenerator().generate(using: &prng)
        let reads = completedReads(in: history)
        let target = try #require(reads.isEmpty ? nil : reads[prng.below(reads.count)], "seed \(seed): no read")
        history[target].kind = .read(observed: "corrupted")
        let found = violation(in: try verdict(history))
        #expect(
            found?.key == history[target].key, "seed \(seed): \(found.map(String.init(describing:)) ?? "no violation")")
    }

    @Test("a read corrupted to another value of its key is usually caught")
    func staleReadIsUsuallyCaught() throws {
        // Swapping what one read saw for another value its key held at some time may still be
        // linearizable (the read overlapped that value's lifetime), so this counts rather than
        // requires. The seeds are fixed, so the count is too.
        var caught = 0
        var corrupted = 0
        for seed in 0..<UInt64(200) {
            var prng = SplitMix64(seed: seed)
            var history = HistoryGenerator(windowTicksMax: 3).generate(using: &prng)
            let reads = completedReads(in: history)
            guard !reads.isEmpty else { continue }
            let target = reads[prng.below(reads.count)]
            guard case .read(let observed) = history[target].kind else { continue }
            let others = valuesHeld(by: history[target].key, in: history).filter { $0 != observed }
            guard !others.isEmpty else { continue }
            history[target].kind = .read(observed: others[prng.below(others.count)])
            corrupted += 1
            if violation(in: try verdict(history)) != nil { caught += 1 }
        }
        #expect(corrupted >= 190)
        #expect(caught * 10 >= corrupted * 8, "caught \(caught) of \(corrupted) corrupted histories")
    }

    @Test(
        "the checker agrees with brute force on tiny histories",
        arguments: [15, 50], 0..<20 as Range<UInt64>)
    func agreesWithBruteForce(unknownPercent: Int, batch: UInt64) throws {
        // 100 random histories per batch, linearizable or not, each small enough for brute force. The
        // second argument set makes half the operations unknown-outcome, the search's hardest case.
        var linearizable = 0
        for seed in (batch * 100)..<(batch * 100 + 100) {
            var prng = SplitMix64(seed: seed)
            let history = tinyRandomHistory(unknownPercent: unknownPercent, using: &prng)
            let expected = BruteForceChecker.isLinearizable(history)
            let report = try LinearizabilityChecker().check(history)
            #expect(
                report.isLinearizable == expected,
                "seed \(seed) unknown \(unknownPercent)%: brute force says \(expected), checker \(report)")
            if expected { linearizable += 1 }
        }
        #expect(linearizable > 10 && linearizable < 90, "batch \(batch) should mix both verdicts, got \(linearizable)")
    }

    @Test("performance: thousands of operations over tens of keys check with few states")
    func performanceSanity() throws {
        // The deterministic stand-in for a timing assertion: states explored grow about linearly
        // with the history when concurrency is modest. The suite's run time shows the rest.
        var prng = SplitMix64(seed: 2024)
        let generator = HistoryGenerator(clients: 10, keys: 30, operations: 5000, windowTicksMax: 8)
        let history = generator.generate(using: &prng)
        let report = try LinearizabilityChecker().check(history)
        #expect(report.verdict == .linearizable, "\(report)")
        #expect(report.keysChecked == 30)
        #expect(report.statesExplored < 4 * report.operationsChecked, "\(report)")

        var reads = completedReads(in: history)
        reads.shuffle(using: &prng)
        var corrupted = history
        corrupted[reads[0]].kind = .read(observed: "corrupted")
        let found = violation(in: try verdict(corrupted))
        #expect(found?.key == history[reads[0]].key)
    }

    @Test("many timed-out requests on one hot key neither blow up the search nor hide a bad read")
    func manyUnknownOutcomes() throws {
        // One in five requests times out, half of those still taking effect, all on one key: each such
        // request could take effect anywhere after its invocation. Without the unknown-outcome rules
        // in `KeySearch` this went inconclusive; with them a linearizable history stays near one state
        // per operation. Proving the corrupted one wrong costs more (about 6,500 states): the search
        // must rule out every order before the bad read, and timed-out writes add orders.
        var prng = SplitMix64(seed: 77)
        let generator = HistoryGenerator(clients: 8, keys: 1, operations: 500, unknownPercent: 20)
        let history = generator.generate(using: &prng)
        let report = try LinearizabilityChecker().check(history)
        #expect(report.verdict == .linearizable, "\(report)")
        #expect(report.statesExplored < 4 * report.operationsChecked, "\(report)")

        let reads = completedReads(in: history)
        var corrupted = history
        corrupted[reads[reads.count * 3 / 4]].kind = .read(observed: "corrupted")
        let found = try LinearizabilityChecker().check(corrupted)
        #expect(violation(in: found.verdict) != nil, "\(found)")
        #expect(found.statesExplored < 20_000, "\(found)")
    }

    @Test("timed-out deletes are interchangeable: a hundred of them do not multiply the states")
    func manyTimedOutDeletes() throws {
        var history: [RegisterOperation] = []
        for tick in 0..<UInt64(100) {
            history.append(write("x", RegisterValue(stringLiteral: "v\(tick)"), client: 1, (tick * 4)...(tick * 4 + 1)))
            history.append(delete("x", client: 2, (tick * 4)...(tick * 4)).unknown())
            history.append(
                read(
                    "x", tick % 2 == 0 ? nil : RegisterValue(stringLiteral: "v\(tick)"), client: 3,
                    (tick * 4 + 2)...(tick * 4 + 3)))
        }
        history.append(read("x", "v0", client: 3, 1000...1001))
        let report = try LinearizabilityChecker().check(history)
        let found = try #require(violation(in: report.verdict), "\(report)")
        #expect(found.blocked.map(\.operation.index) == [history.count - 1])
        #expect(report.statesExplored < 2000, "\(report)")
    }

    private func completedReads(in history: [RegisterOperation]) -> [Int] {
        history.indices.filter {
            guard case .read = history[$0].kind, case .ok = history[$0].outcome else { return false }
            return true
        }
    }

    /// Every value the key could have held: nil, and each value written or swapped in.
    private func valuesHeld(by key: RegisterKey, in history: [RegisterOperation]) -> [RegisterValue?] {
        var values: [RegisterValue?] = [nil]
        for operation in history where operation.key == key {
            switch operation.kind {
            case .write(let value): values.append(value)
            case .compareAndSet(_, let new, _): values.append(new)
            case .read, .delete: break
            }
        }
        return values
    }

    /// One key, one to seven operations with random windows, kinds, replies and outcomes.
    private func tinyRandomHistory(unknownPercent: Int, using prng: inout SplitMix64) -> [RegisterOperation] {
        let values: [RegisterValue?] = [nil, "a", "b"]
        return (0..<(1 + prng.below(7))).map { client in
            let kind: RegisterOperation.Kind
            switch prng.below(4) {
            case 0: kind = .read(observed: values[prng.below(3)])
            case 1: kind = .write(values[1 + prng.below(2)] ?? "a")
            case 2:
                kind = .compareAndSet(
                    expected: values[prng.below(3)], new: values[1 + prng.below(2)] ?? "a",
                    succeeded: prng.below(2) == 0)
            default: kind = .delete
            }
            let invocation = Timestamp(ticks: UInt64(prng.below(8)))
            let response = Timestamp(ticks: invocation.ticks + UInt64(prng.below(4)))
            let roll = prng.below(100)
            let outcome: RegisterOperation.Outcome =
                roll < unknownPercent
                ? .unknown : roll < unknownPercent + 15 ? .failed(at: response) : .ok(at: response)
            return RegisterOperation(
                client: ClientID(UInt64(client)), key: "x", kind: kind, invocation: invocation, outcome: outcome)
        }
    }
}
