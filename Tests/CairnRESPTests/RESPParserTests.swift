import CairnCore
import Testing

@testable import CairnRESP

@Suite("RESP parser")
struct RESPParserTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    static func words(_ items: String...) -> [[UInt8]] { items.map { Array($0.utf8) } }

    @Test("parses a multibulk command and reports the bytes it used")
    func multibulk() {
        let input = Self.bytes("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nextra")
        #expect(RESPParser.parse(input) == .command(Self.words("SET", "k", ""), consumed: 26))
    }

    @Test("parses inline commands with quotes and escapes, as redis-cli and telnet send them")
    func inline() {
        #expect(RESPParser.parse(Self.bytes("PING\r\n")) == .command(Self.words("PING"), consumed: 6))
        #expect(RESPParser.parse(Self.bytes("set  a   b\n")) == .command(Self.words("set", "a", "b"), consumed: 11))
        #expect(
            RESPParser.parse(Self.bytes("set \"a b\" 'c\\'d' \"\\x41\\n\"\r\n"))
                == .command([Array("set".utf8), Array("a b".utf8), Array("c'd".utf8), [0x41, 0x0A]], consumed: 27))
        #expect(RESPParser.parse(Self.bytes("\r\n")) == .command([], consumed: 2))
    }

    @Test("incomplete input asks for more bytes")
    func incomplete() {
        for prefix in ["*", "*2", "*2\r", "*2\r\n$3\r\nGET\r\n$1\r\n", "*1\r\n$3\r\nGE", "PIN"] {
            #expect(RESPParser.parse(Self.bytes(prefix)) == .needMoreBytes, "prefix \(prefix.debugDescription)")
        }
    }

    @Test("malformed input gets Redis's protocol error texts")
    func malformed() {
        func error(_ text: String) -> String? {
            if case .invalid(let error) = RESPParser.parse(Self.bytes(text)) { return error.description }
            return nil
        }
        #expect(error("*2\r\n$3\r\nGET\r\n$abc\r\n")?.hasPrefix("Protocol error: invalid bulk length") == true)
        #expect(error("*-5x\r\n")?.hasPrefix("Protocol error: invalid multibulk length") == true)
        #expect(error("*1\r\n+OK\r\n") == "Protocol error: expected '$', got '+'")
        #expect(error("*1\r\n$99999999999\r\n")?.hasPrefix("Protocol error: invalid bulk length") == true)
        #expect(error("*1\r\n$2\r\nabcd\r\n") == "Protocol error: expected CRLF after bulk string data")
        #expect(error("set \"a b\r\n") == "Protocol error: unbalanced quotes in request")
        #expect(error("*1" + String(repeating: "1", count: 40)) != nil)
        #expect(
            error(String(repeating: "a", count: Limits.respInlineBytesMax + 1))?.hasPrefix(
                "Protocol error: too big inline") == true)
    }

    /// Parses a whole stream by feeding it in pieces of the given sizes, as the network may deliver it.
    static func parseStream(_ stream: [UInt8], pieces: (Int) -> Int) -> [ParseStep] {
        var buffer: [UInt8] = []
        var offset = 0
        var fed = 0
        var steps: [ParseStep] = []
        while fed < stream.count {
            let size = min(stream.count - fed, max(1, pieces(fed)))
            buffer += stream[fed..<(fed + size)]
            fed += size
            while true {
                let step = RESPParser.parse(buffer, from: offset)
                if case .command(_, let consumed) = step {
                    offset += consumed
                    steps.append(step)
                } else {
                    if case .invalid = step { steps.append(step) }
                    break
                }
            }
        }
        return steps
    }

    @Test("byte-at-a-time parsing equals whole-buffer parsing", arguments: 0..<100 as Range<UInt64>)
    func pieceByPiece(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        var stream: [UInt8] = []
        for _ in 0..<(1 + prng.below(8)) {
            let arguments = (0..<(1 + prng.below(4))).map { _ in
                (0..<prng.below(20)).map { _ in UInt8(prng.below(256)) }
            }
            stream += RESPValue.array(arguments.map { .bulk($0) }).encoded(.resp2)
        }
        let whole = Self.parseStream(stream) { _ in stream.count }
        let single = Self.parseStream(stream) { _ in 1 }
        var pieces = SplitMix64(seed: seed ^ 0xFFFF)
        let random = Self.parseStream(stream) { _ in 1 + pieces.below(9) }
        #expect(whole == single, "seed \(seed)")
        #expect(whole == random, "seed \(seed)")
        #expect(!whole.isEmpty)
    }
}

@Suite("RESP encoder")
struct RESPEncoderTests {
    static func text(_ value: RESPValue, _ version: RESPVersion) -> String {
        String(decoding: value.encoded(version), as: UTF8.self)
    }

    @Test("golden bytes for every reply type in RESP2 and RESP3")
    func golden() {
        let cases: [(RESPValue, String, String)] = [
            (.ok, "+OK\r\n", "+OK\r\n"),
            (.simple("OKAY"), "+OKAY\r\n", "+OKAY\r\n"),
            (.integer(0), ":0\r\n", ":0\r\n"),
            (.integer(1), ":1\r\n", ":1\r\n"),
            (.integer(10), ":10\r\n", ":10\r\n"),
            (.error("ERR syntax error"), "-ERR syntax error\r\n", "-ERR syntax error\r\n"),
            (.integer(-7), ":-7\r\n", ":-7\r\n"),
            (.bulk("hi"), "$2\r\nhi\r\n", "$2\r\nhi\r\n"),
            (.null, "$-1\r\n", "_\r\n"),
            (.nullArray, "*-1\r\n", "_\r\n"),
            (.array([.integer(1), .null]), "*2\r\n:1\r\n$-1\r\n", "*2\r\n:1\r\n_\r\n"),
            (.map([(.bulk("a"), .integer(1))]), "*2\r\n$1\r\na\r\n:1\r\n", "%1\r\n$1\r\na\r\n:1\r\n"),
            (.set([.simple("x")]), "*1\r\n+x\r\n", "~1\r\n+x\r\n"),
            (.double(1.5), "$3\r\n1.5\r\n", ",1.5\r\n"),
            (.boolean(true), ":1\r\n", "#t\r\n"),
            (.verbatim(format: "txt", text: "ab"), "$2\r\nab\r\n", "=6\r\ntxt:ab\r\n"),
            (.error("ERR a\r\nb"), "-ERR a  b\r\n", "-ERR a  b\r\n"),
        ]
        for (value, resp2, resp3) in cases {
            #expect(Self.text(value, .resp2) == resp2)
            #expect(Self.text(value, .resp3) == resp3)
        }
    }

    @Test("encode then parse round-trips any command", arguments: 0..<50 as Range<UInt64>)
    func roundTrip(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let arguments = (0..<(1 + prng.below(6))).map { _ in (0..<prng.below(64)).map { _ in UInt8(prng.below(256)) } }
        let encoded = RESPValue.array(arguments.map { .bulk($0) }).encoded(.resp2)
        #expect(RESPParser.parse(encoded) == .command(arguments, consumed: encoded.count), "seed \(seed)")
    }
}

@Suite("command table")
struct CommandTableTests {
    @Test("every command the issue lists is in the table, with Redis's arity")
    func listed() {
        let expected: [String: Int] = [
            "get": 2, "set": -3, "mset": -3, "del": -2, "expire": -3, "scan": -2, "ping": -1, "time": 1, "getex": -2,
            "copy": -3, "delex": -2, "randomkey": 1, "hello": -1, "client": -2, "config": -2, "command": -1,
        ]
        for (name, arity) in expected {
            #expect(CommandTable.byName[name]?.arity == arity, "\(name)")
        }
        #expect(CommandTable.commands.count == Set(CommandTable.commands.map(\.name)).count, "names are unique")
    }
}
