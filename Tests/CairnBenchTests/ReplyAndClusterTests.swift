import CairnPlacement
import CairnRESP
import Testing

@testable import CairnBench

@Suite("replies and cluster routing")
struct ReplyAndClusterTests {
    static func scan(_ text: String) -> ReplyStep {
        Array(text.utf8).withUnsafeBufferPointer { ReplyScanner.scan($0, from: 0) }
    }

    @Test("the scanner finds the end of every RESP2 and RESP3 reply type")
    func scansEveryType() {
        let replies = [
            "+OK\r\n", ":12\r\n", "$5\r\nhello\r\n", "$-1\r\n", "*-1\r\n", "*2\r\n$1\r\na\r\n:1\r\n", "_\r\n",
            ",3.5\r\n", "#t\r\n", "(123\r\n", "%1\r\n+a\r\n*1\r\n:2\r\n", "~2\r\n:1\r\n:2\r\n", "=7\r\ntxt:abc\r\n",
            "|1\r\n+ttl\r\n:3\r\n$1\r\nx\r\n", "*2\r\n*0\r\n*1\r\n$0\r\n\r\n",
        ]
        for reply in replies {
            #expect(
                Self.scan(reply + "+NEXT\r\n") == .reply(end: reply.utf8.count, error: nil), "\(reply.debugDescription)"
            )
            for cut in 1..<reply.utf8.count {
                let prefix = String(decoding: Array(reply.utf8).prefix(cut), as: UTF8.self)
                #expect(Self.scan(prefix) == .needMoreBytes, "\(prefix.debugDescription)")
            }
        }
    }

    @Test("errors are reported with their text and kind")
    func errors() {
        #expect(Self.scan("-MOVED 3999 127.0.0.1:6381\r\n") == .reply(end: 28, error: "MOVED 3999 127.0.0.1:6381"))
        #expect(Self.scan("!9\r\nERR oops!\r\n") == .reply(end: 15, error: "ERR oops!"))
        #expect(Self.scan("*1\r\n-ERR inner\r\n") == .reply(end: 16, error: nil))
        #expect(ReplyScanner.errorKind("WRONGTYPE Operation against a key") == "WRONGTYPE")
        if case .invalid = Self.scan("?what\r\n") {} else { Issue.record("garbage was accepted") }
    }

    @Test("parse builds values, RESP2 and RESP3")
    func parseValues() {
        let bytes = Array("%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n".utf8)
        let parsed = ReplyScanner.parse(bytes)
        #expect(parsed?.end == bytes.count)
        #expect(parsed?.value == .map([(.bulk("server"), .bulk("redis")), (.bulk("proto"), .integer(3))]))
        #expect(ReplyScanner.parse(Array("$3\r\nab".utf8)) == nil)
    }

    @Test("CRC16-XMODEM and hash slots match Redis Cluster's, with hash tags")
    func hashSlots() {
        #expect(HashSlot.of(Array("foo".utf8)) == 12182)
        #expect(HashSlot.of(Array("bar".utf8)) == 5061)
        #expect(HashSlot.of(Array("{user1000}.following".utf8)) == HashSlot.of(Array("user1000".utf8)))
        #expect(HashSlot.of(Array("foo{}{bar}".utf8)) == HashSlot.of(Array("foo{}{bar}".utf8)))
        #expect(
            HashSlot.of(Array("foo{}{bar}".utf8)) != HashSlot.of(Array("bar".utf8)), "an empty tag hashes the whole key"
        )
        #expect(HashSlot.of(Array("foo{{bar}}zap".utf8)) == HashSlot.of(Array("{bar".utf8)))
    }

    /// The documented shape of `CLUSTER SLOTS` (Redis 7): ranges with a primary and replicas.
    static let slotsReply = RESPValue.array([
        .array([
            .integer(0), .integer(5460),
            .array([.bulk("127.0.0.1"), .integer(30001), .bulk("09dbe9720cda62f7865eabc5fd8857c5d2678366"), .map([])]),
            .array([.bulk("127.0.0.1"), .integer(30004), .bulk("821d8ca00d7ccf931ed3ffc7e3db0599d2271abf"), .map([])]),
        ]),
        .array([.integer(5461), .integer(10922), .array([.bulk("127.0.0.1"), .integer(30002), .bulk("c9d9")])]),
        .array([.integer(10923), .integer(16383), .array([.bulk(""), .integer(30003), .bulk("044e")])]),
    ])

    @Test("CLUSTER SLOTS builds the slot map; an empty host means the address asked")
    func slotMapParses() throws {
        let asked = Endpoint(host: "10.0.0.9", port: 30001)
        let map = try SlotMap.parse(Self.slotsReply, asked: asked).get()
        #expect(map.endpoint(ofSlot: 0) == Endpoint(host: "127.0.0.1", port: 30001))
        #expect(map.endpoint(ofSlot: 5460) == Endpoint(host: "127.0.0.1", port: 30001))
        #expect(map.endpoint(ofSlot: 5461) == Endpoint(host: "127.0.0.1", port: 30002))
        #expect(map.endpoint(ofSlot: 16383) == Endpoint(host: "10.0.0.9", port: 30003))
        #expect(map.endpoints.count == 3)
        #expect(map.uncoveredSlots == 0)
        var moved = map
        moved.move(slot: 12182, to: Endpoint(host: "127.0.0.1", port: 30007))
        #expect(moved.endpoint(ofSlot: 12182) == Endpoint(host: "127.0.0.1", port: 30007))
        #expect(moved.endpoint(ofSlot: 12181) == Endpoint(host: "10.0.0.9", port: 30003))
    }

    @Test("bad CLUSTER SLOTS replies are refused with a reason")
    func slotMapRejects() {
        let asked = Endpoint(host: "127.0.0.1", port: 7379)
        #expect(
            SlotMap.parse(.error("ERR This instance has cluster support disabled"), asked: asked)
                == .failure(.errorReply("ERR This instance has cluster support disabled")))
        for bad: RESPValue in [
            .array([]), .bulk("x"), .array([.array([.integer(5), .integer(2), .array([.bulk("h"), .integer(1)])])]),
            .array([.array([.integer(0), .integer(16384), .array([.bulk("h"), .integer(1)])])]),
            .array([.array([.integer(0), .integer(1), .array([.bulk("h")])])]),
        ] {
            if case .success = SlotMap.parse(bad, asked: asked) { Issue.record("accepted \(bad)") }
        }
    }

    @Test("MOVED and ASK redirections parse, with the asked host for ':port'")
    func redirections() {
        let asked = Endpoint(host: "127.0.0.1", port: 7000)
        #expect(
            Redirection.parse("MOVED 3999 127.0.0.1:6381", asked: asked)
                == Redirection(isAsk: false, slot: 3999, endpoint: Endpoint(host: "127.0.0.1", port: 6381)))
        #expect(
            Redirection.parse("ASK 1 :6390", asked: asked)
                == Redirection(isAsk: true, slot: 1, endpoint: Endpoint(host: "127.0.0.1", port: 6390)))
        #expect(Redirection.parse("ERR no", asked: asked) == nil)
        #expect(Redirection.parse("MOVED 99999 h:1", asked: asked) == nil)
    }
}
