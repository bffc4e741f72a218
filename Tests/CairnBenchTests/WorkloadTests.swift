import CairnCore
import CairnRESP
import Testing

@testable import CairnBench

@Suite("workloads")
struct WorkloadTests {
    static func kinds(_ name: String, count: Int = 20_000) -> [OperationKind: Int] {
        var generator = WorkloadGenerator(
            spec: WorkloadSpec.named(name)!, records: 1000, valueSize: ValueSize(10, 10), seed: 42)
        var counts: [OperationKind: Int] = [:]
        for _ in 0..<count { counts[generator.next().kind, default: 0] += 1 }
        return counts
    }

    @Test("each workload draws its documented mix of operations")
    func mixes() {
        let expected: [(String, [OperationKind: Double])] = [
            ("set", [.update: 1]), ("get", [.read: 1]), ("mixed", [.read: 0.8, .update: 0.2]),
            ("ycsb-a", [.read: 0.5, .update: 0.5]), ("ycsb-b", [.read: 0.95, .update: 0.05]), ("ycsb-c", [.read: 1]),
            ("ycsb-d", [.read: 0.95, .insert: 0.05]), ("ycsb-e", [.scan: 0.95, .insert: 0.05]),
            ("ycsb-f", [.read: 0.5, .readModifyWrite: 0.5]),
        ]
        for (name, mix) in expected {
            let counts = Self.kinds(name)
            #expect(Set(counts.keys) == Set(mix.keys), "\(name): \(counts)")
            for (kind, share) in mix {
                let observed = Double(counts[kind] ?? 0) / 20_000
                #expect(abs(observed - share) < 0.015, "\(name) \(kind.name): \(observed) vs \(share)")
            }
        }
        #expect(WorkloadSpec.named("YCSB-A") != nil)
        #expect(WorkloadSpec.named("ycsb-g") == nil)
    }

    @Test("the same seed gives the same operations")
    func deterministic() {
        var first = WorkloadGenerator(
            spec: WorkloadSpec.named("ycsb-e")!, records: 500, valueSize: ValueSize(1, 9), seed: 7)
        var second = first
        for _ in 0..<1000 { #expect(first.next() == second.next()) }
    }

    @Test("uniform keys cover the records evenly")
    func uniformIsEven() {
        var prng = SplitMix64(seed: 1)
        var chooser = KeyChooser(.uniform, records: 10)
        var counts = Array(repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[chooser.next(records: 10, &prng)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })
    }

    @Test("zipfian ranks follow Zipf's law: rank 0 is hot and frequency falls as 1/rank^0.99")
    func zipfianIsSkewed() {
        var prng = SplitMix64(seed: 3)
        var generator = ZipfianGenerator(items: 1000)
        var counts = Array(repeating: 0, count: 1000)
        let draws = 200_000
        for _ in 0..<draws { counts[generator.next(&prng)] += 1 }
        let zeta = ZipfianGenerator.zeta(from: 0, to: 1000, theta: 0.99)
        for rank in [0, 1, 4, 9] {
            let expected = Double(draws) / BenchMath.pow(Double(rank + 1), 0.99) / zeta
            #expect(
                abs(Double(counts[rank]) - expected) < expected * 0.1, "rank \(rank): \(counts[rank]) vs \(expected)")
        }
        // The hottest 1% of ranks gets a large share of the draws.
        #expect(counts.prefix(10).reduce(0, +) > draws / 3)
    }

    @Test("scrambled zipfian keys are skewed but the hot keys are scattered over the key space")
    func zipfianScattered() {
        var prng = SplitMix64(seed: 5)
        var chooser = KeyChooser(.zipfian, records: 10_000)
        var counts: [Int: Int] = [:]
        for _ in 0..<50_000 { counts[chooser.next(records: 10_000, &prng), default: 0] += 1 }
        let hottest = counts.max { $0.value < $1.value }!
        #expect(hottest.value > 50_000 / 20)
        #expect(hottest.key != 0)
    }

    @Test("latest keys favour the most recent insert")
    func latestFavoursRecent() {
        var prng = SplitMix64(seed: 8)
        var chooser = KeyChooser(.latest, records: 1000)
        var recent = 0
        for _ in 0..<10_000 where chooser.next(records: 2000, &prng) >= 1990 { recent += 1 }
        #expect(recent > 3000)
    }

    @Test("inserts append new records and scans stay inside the records")
    func insertsAndScans() {
        var generator = WorkloadGenerator(
            spec: WorkloadSpec.named("ycsb-e")!, records: 100, valueSize: ValueSize(5, 5), seed: 11)
        var inserted = 100
        for _ in 0..<5000 {
            let operation = generator.next()
            switch operation.kind {
            case .insert:
                #expect(operation.record == inserted)
                inserted += 1
            case .scan:
                #expect(operation.scanLength >= 1 && operation.scanLength <= 100)
                #expect(operation.record + operation.scanLength <= generator.records)
            default:
                Issue.record("unexpected \(operation.kind)")
            }
        }
        #expect(generator.records == inserted)
    }

    @Test("commands are encoded as RESP arrays the command parser accepts")
    func encodedCommandsParse() {
        let encoder = CommandEncoder(valueBytesMax: 100, seed: 1)
        var bytes: [UInt8] = []
        encoder.appendSet(42, valueBytes: 7, to: &bytes)
        encoder.appendGet(1_234_567, to: &bytes)
        encoder.appendMultiGet(9, count: 3, to: &bytes)
        guard case .command(let set, let used) = RESPParser.parse(bytes) else {
            Issue.record("SET did not parse")
            return
        }
        #expect(set.count == 3 && set[0] == Array("SET".utf8) && set[1] == Array("key:000000000042".utf8))
        #expect(set[2].count == 7)
        guard case .command(let get, let usedGet) = RESPParser.parse(bytes, from: used) else {
            Issue.record("GET did not parse")
            return
        }
        #expect(get == [Array("GET".utf8), Array("key:000001234567".utf8)])
        guard case .command(let mget, _) = RESPParser.parse(bytes, from: used + usedGet) else {
            Issue.record("MGET did not parse")
            return
        }
        #expect(
            mget.map { String(decoding: $0, as: UTF8.self) } == [
                "MGET", "key:000000000009", "key:000000000010", "key:000000000011",
            ])
        #expect(CommandEncoder.command(["HELLO", "3"]) == Array("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n".utf8))
    }
}
