import Testing

@testable import CairnCore

@Suite("limits")
struct LimitsTests {
    @Test("limits relate as the code assumes")
    func limitsRelate() {
        #expect(
            Limits.clientInputBytesMax > Limits.respBulkBytesMax, "a whole maximal bulk must fit in the input buffer")
        #expect(Limits.clientOutputBytesHardMax > Limits.clientOutputBytesSoftMax)
        #expect(Limits.valueBytesMax <= Limits.respBulkBytesMax, "a stored value must be readable back in one bulk")
        #expect(Limits.respInlineBytesMax < Limits.clientInputBytesMax)
        #expect(Limits.readBytesPerTurnMax >= 64 * 1024)
        #expect(Limits.scanCursorsMax > 0 && Limits.expiryKeysPerTickMax > 0)
    }

    @Test("Raft limits relate as the Raft core assumes")
    func raftLimitsRelate() {
        #expect(Limits.raftEntryBytesMax > Limits.respBulkBytesMax, "a SET of the largest value must fit in one entry")
        #expect(Limits.peerFrameBytesMax > Limits.raftEntryBytesMax, "a peer frame must carry the largest entry")
        #expect(Limits.raftAppendBytesMax >= Limits.raftSnapshotChunkBytesMax)
        #expect(Limits.raftSnapshotBytesMax > Limits.raftSnapshotChunkBytesMax)
        #expect(Limits.raftInflightAppendsMax >= 1 && Limits.raftPendingReadsMax >= 1)
        #expect(Limits.raftMembersMax >= 5, "a group of five voters plus learners must fit")
        #expect(Limits.raftElectionTicksMax > 10)
        #expect(
            Limits.proposalBatchCommandsMax <= Limits.replicatedBatchCommandsMax,
            "every batch a leader proposes must decode")
        #expect(Limits.proposalBatchBytesMax < Limits.raftEntryBytesMax, "a batch must fit in one entry")
    }
}

@Suite("CRC32C")
struct CRC32CTests {
    @Test("golden vectors pin the Castagnoli polynomial (RFC 3720 B.4 and the standard check value)")
    func goldenVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    }

    @Test("checksums continue across pieces", arguments: 0..<20 as Range<UInt64>)
    func incremental(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let bytes = (0..<prng.below(200)).map { _ in UInt8(truncatingIfNeeded: prng.next()) }
        let split = bytes.isEmpty ? 0 : prng.below(bytes.count)
        let whole = CRC32C.checksum(bytes)
        #expect(CRC32C.update(CRC32C.checksum(bytes[..<split]), with: bytes[split...]) == whole, "seed \(seed)")
        // The eight-bytes-a-step loop (contiguous bytes) agrees with the byte-at-a-time one (any sequence).
        #expect(CRC32C.checksum(bytes.lazy.map { $0 }) == whole, "seed \(seed)")
    }
}

@Suite("identifiers")
struct IdentifierTests {
    @Test("identifiers order, step and print as their numbers")
    func identifiers() {
        #expect(Term(3).next == Term(4))
        #expect(LogIndex(5).previous == 4)
        #expect(LogIndex(5).advanced(by: 3) == 8)
        #expect(LogIndex(2).distance(to: 7) == 5)
        #expect([NodeID(3), 1, 2].sorted() == [1, 2, 3])
        #expect("\(NodeID(7)) \(Term(2)) \(LogIndex(9)) \(GroupID(4))" == "7 2 9 4")
    }
}

@Suite("SplitMix64")
struct SplitMix64Tests {
    @Test("the same seed gives the same sequence; different seeds differ")
    func deterministic() {
        var first = SplitMix64(seed: 42)
        var second = SplitMix64(seed: 42)
        var other = SplitMix64(seed: 43)
        let a = (0..<8).map { _ in first.next() }
        #expect(a == (0..<8).map { _ in second.next() })
        #expect(a != (0..<8).map { _ in other.next() })
    }

    @Test("golden vector for seed 0 pins the algorithm")
    func goldenVector() {
        var prng = SplitMix64(seed: 0)
        #expect(prng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(prng.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test("below stays in range", arguments: [1, 2, 7, 1000])
    func belowInRange(bound: Int) {
        var prng = SplitMix64(seed: UInt64(bound))
        for _ in 0..<1000 { #expect((0..<bound).contains(prng.below(bound))) }
    }
}

@Suite("glob patterns")
struct GlobPatternTests {
    /// A slow, obviously correct recursive matcher over the same syntax, as the model.
    static func model(_ pattern: [UInt8], _ key: [UInt8]) -> Bool {
        guard let first = pattern.first else { return key.isEmpty }
        switch first {
        case UInt8(ascii: "*"):
            for split in 0...key.count where model(Array(pattern.dropFirst()), Array(key[split...])) { return true }
            return false
        case UInt8(ascii: "?"):
            return !key.isEmpty && model(Array(pattern.dropFirst()), Array(key.dropFirst()))
        default:
            return key.first == first && model(Array(pattern.dropFirst()), Array(key.dropFirst()))
        }
    }

    @Test("matches Redis examples")
    func examples() {
        func matches(_ pattern: String, _ key: String) -> Bool {
            GlobPattern(Array(pattern.utf8)).matches(Array(key.utf8))
        }
        #expect(matches("h?llo", "hello"))
        #expect(matches("h*llo", "heeeello"))
        #expect(matches("h[ae]llo", "hallo"))
        #expect(!matches("h[ae]llo", "hillo"))
        #expect(matches("h[^e]llo", "hallo"))
        #expect(!matches("h[^e]llo", "hello"))
        #expect(matches("h[a-b]llo", "hbllo"))
        #expect(matches("h\\*llo", "h*llo"))
        #expect(!matches("h\\*llo", "hello"))
        #expect(matches("*", ""))
        #expect(!matches("a*b", "ac"))
        #expect(matches("user:*:name", "user:42:name"))
    }

    @Test("agrees with a recursive model on random patterns of *, ? and letters", arguments: 0..<200 as Range<UInt64>)
    func agreesWithModel(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let alphabet: [UInt8] = Array("ab*?".utf8)
        let pattern = (0..<prng.below(6)).map { _ in alphabet[prng.below(4)] }
        let key = (0..<prng.below(7)).map { _ in alphabet[prng.below(2)] }
        #expect(
            GlobPattern(pattern).matches(key) == Self.model(pattern, key),
            "seed \(seed): pattern \(String(bytes: pattern)) key \(String(bytes: key))")
    }
}

@Suite("numbers")
struct NumbersTests {
    @Test("integers parse as Redis's string2ll does")
    func parseIntegers() {
        #expect(Numbers.parseInt64(Array("0".utf8)) == 0)
        #expect(Numbers.parseInt64(Array("-12".utf8)) == -12)
        #expect(Numbers.parseInt64(Array("9223372036854775807".utf8)) == Int64.max)
        #expect(Numbers.parseInt64(Array("-9223372036854775808".utf8)) == Int64.min)
        for bad in ["", "-", "+1", " 1", "1 ", "01", "-0", "9223372036854775808", "1.0", "abc", "1e3"] {
            #expect(Numbers.parseInt64(Array(bad.utf8)) == nil, "'\(bad)' must not parse")
        }
    }

    @Test("doubles parse, NaN and spaces do not")
    func parseDoubles() {
        #expect(Numbers.parseDouble(Array("1.5".utf8)) == 1.5)
        #expect(Numbers.parseDouble(Array("-inf".utf8)) == -.infinity)
        #expect(Numbers.parseDouble(Array("5e3".utf8)) == 5000)
        for bad in ["", "nan", " 1", "1 ", "abc"] {
            #expect(Numbers.parseDouble(Array(bad.utf8)) == nil, "'\(bad)' must not parse")
        }
    }

    @Test("human format never uses an exponent and trims zeros")
    func formatHuman() {
        #expect(Numbers.formatHuman(10.5 + 0.1) == "10.6")
        #expect(Numbers.formatHuman(3) == "3")
        #expect(Numbers.formatHuman(-2.5) == "-2.5")
        #expect(Numbers.formatHuman(1e20) == "100000000000000000000")
        #expect(Numbers.formatHuman(1.5e-7) == "0.00000015")
        #expect(Numbers.formatHuman(5.0e3) == "5000")
    }
}

@Suite("long double formatting for INCRBYFLOAT")
struct LongDoubleTests {
    @Test("matches what redis-server prints")
    func redisExamples() {
        func add(_ a: String, _ b: String) -> String? {
            guard let x = Numbers.parseLongDouble(Array(a.utf8)), let y = Numbers.parseLongDouble(Array(b.utf8)) else {
                return nil
            }
            return Numbers.formatLongDouble(x + y)
        }
        #expect(add("10.50", "0.1") == "10.6")
        #expect(add("5.0e3", "2.0e2") == "5200")
        #expect(add("0", "0x10") == "16")
        #expect(add("0", ".5") == "0.5")
        #expect(add("-1", "0.25") == "-0.75")
        #if arch(x86_64)
            #expect(add("1.5", "0.1") == "1.6")
            #expect(add("1.6", "1e3") == "1001.59999999999999998")
        #endif
        #expect(Numbers.parseLongDouble(Array("1.5 ".utf8)) == nil)
        #expect(Numbers.parseLongDouble(Array("abc".utf8)) == nil)
    }
}

@Suite("metrics")
struct MetricsTests {
    static let counter = MetricFamily("test_requests_total", help: "Requests.", kind: .counter)
    static let histogram = MetricFamily("test_latency_seconds", help: "Latency.", kind: .histogram(buckets: [0.1, 1]))

    @Test("renders counters and cumulative histogram buckets in the text format")
    func renders() {
        var registry = MetricsRegistry()
        registry.add(Self.counter, [("path", "a\"b")], 2)
        registry.observe(Self.histogram, [], 0.05)
        registry.observe(Self.histogram, [], 0.5)
        registry.observe(Self.histogram, [], 5)
        let expected = """
            # HELP test_latency_seconds Latency.
            # TYPE test_latency_seconds histogram
            test_latency_seconds_bucket{le="0.1"} 1
            test_latency_seconds_bucket{le="1"} 2
            test_latency_seconds_bucket{le="+Inf"} 3
            test_latency_seconds_sum 5.55
            test_latency_seconds_count 3
            # HELP test_requests_total Requests.
            # TYPE test_requests_total counter
            test_requests_total{path="a\\"b"} 2

            """
        #expect(registry.render() == expected)
    }
}
