import CairnCore
import CairnStorage
import Testing

@testable import CairnNode

@Suite("string commands")
struct StringCommandTests {
    @Test("SET and GET, with NX, XX and GET options")
    func setOptions() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "GET", "k") == Reply.null)
        #expect(node.send(client, "SET", "k", "v1", "XX") == Reply.null)
        #expect(node.send(client, "SET", "k", "v1", "NX") == Reply.ok)
        #expect(node.send(client, "SET", "k", "v2", "NX") == Reply.null)
        #expect(node.send(client, "SET", "k", "v2", "NX", "GET") == Reply.bulk("v1"))
        #expect(node.send(client, "SET", "k", "v3", "GET") == Reply.bulk("v1"))
        #expect(node.send(client, "GET", "k") == Reply.bulk("v3"))
        #expect(node.send(client, "SET", "k", "v", "NX", "XX") == Reply.error("ERR syntax error"))
        #expect(node.send(client, "SET", "k", "v", "EX", "10", "PX", "10") == Reply.error("ERR syntax error"))
        #expect(node.send(client, "SET", "k", "v", "EX") == Reply.error("ERR syntax error"))
        #expect(
            node.send(client, "SET", "k", "v", "EX", "0") == Reply.error("ERR invalid expire time in 'set' command"))
        #expect(
            node.send(client, "SET", "k", "v", "EX", "x") == Reply.error("ERR value is not an integer or out of range"))
        #expect(node.send(client, "SET", "k") == Reply.error("ERR wrong number of arguments for 'set' command"))
    }

    @Test("SET IFEQ and IFNE compare the current value and never create the key")
    func compareAndSet() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "SET", "k", "a", "IFEQ", "a") == Reply.null)
        #expect(node.send(client, "SET", "k", "a", "IFNE", "b") == Reply.null)
        #expect(node.send(client, "EXISTS", "k") == Reply.integer(0))
        node.send(client, "SET", "k", "a")
        #expect(node.send(client, "SET", "k", "b", "IFEQ", "x") == Reply.null)
        #expect(node.send(client, "SET", "k", "b", "IFEQ", "a") == Reply.ok)
        #expect(node.send(client, "SET", "k", "c", "IFNE", "b") == Reply.null)
        #expect(node.send(client, "SET", "k", "c", "IFNE", "a", "GET") == Reply.bulk("b"))
        #expect(node.send(client, "GET", "k") == Reply.bulk("c"))
        #expect(node.send(client, "SET", "k", "d", "IFEQ", "c", "NX") == Reply.error("ERR syntax error"))
        #expect(node.send(client, "DELEX", "k", "IFEQ", "x") == Reply.integer(0))
        #expect(node.send(client, "DELEX", "k", "IFNE", "c") == Reply.integer(0))
        #expect(node.send(client, "DELEX", "k", "IFEQ", "c") == Reply.integer(1))
        #expect(node.send(client, "DELEX", "k") == Reply.integer(0))
    }

    @Test("INCR family: integers, overflow, and errors keep the value")
    func increments() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "INCR", "n") == Reply.integer(1))
        #expect(node.send(client, "INCRBY", "n", "41") == Reply.integer(42))
        #expect(node.send(client, "DECR", "n") == Reply.integer(41))
        #expect(node.send(client, "DECRBY", "n", "50") == Reply.integer(-9))
        node.send(client, "SET", "big", "9223372036854775807")
        #expect(node.send(client, "INCR", "big") == Reply.error("ERR increment or decrement would overflow"))
        node.send(client, "SET", "s", "abc")
        #expect(node.send(client, "INCR", "s") == Reply.error("ERR value is not an integer or out of range"))
        #expect(node.send(client, "INCRBYFLOAT", "f", "10.5") == Reply.bulk("10.5"))
        #expect(node.send(client, "INCRBYFLOAT", "f", "0.1") == Reply.bulk("10.6"))
        #expect(node.send(client, "INCRBYFLOAT", "s", "1") == Reply.error("ERR value is not a valid float"))
        #expect(
            node.send(client, "INCRBYFLOAT", "f", "inf") == Reply.error("ERR increment would produce NaN or Infinity"))
    }

    @Test("APPEND, STRLEN, GETRANGE and SETRANGE follow Redis's offsets")
    func ranges() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "APPEND", "s", "Hello") == Reply.integer(5))
        #expect(node.send(client, "APPEND", "s", " World") == Reply.integer(11))
        #expect(node.send(client, "STRLEN", "s") == Reply.integer(11))
        #expect(node.send(client, "GETRANGE", "s", "0", "4") == Reply.bulk("Hello"))
        #expect(node.send(client, "GETRANGE", "s", "-5", "-1") == Reply.bulk("World"))
        #expect(node.send(client, "GETRANGE", "s", "5", "2") == Reply.bulk(""))
        #expect(node.send(client, "GETRANGE", "s", "0", "100") == Reply.bulk("Hello World"))
        #expect(node.send(client, "SETRANGE", "s", "6", "Redis") == Reply.integer(11))
        #expect(node.send(client, "GET", "s") == Reply.bulk("Hello Redis"))
        #expect(node.send(client, "SETRANGE", "p", "3", "x") == Reply.integer(4))
        #expect(node.send(client, "GET", "p") == "$4\r\n\0\0\0x\r\n")
        #expect(node.send(client, "SETRANGE", "p", "-1", "x") == Reply.error("ERR offset is out of range"))
        #expect(node.send(client, "SETRANGE", "q", "0", "") == Reply.integer(0))
        #expect(node.send(client, "EXISTS", "q") == Reply.integer(0))
    }

    @Test("MSET, MSETNX, MGET, GETSET, GETDEL and SETNX")
    func multiKey() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "MSET", "a", "1", "b", "2") == Reply.ok)
        #expect(node.send(client, "MGET", "a", "x", "b") == "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n")
        #expect(node.send(client, "MSETNX", "b", "3", "{b}c", "3") == Reply.integer(0))
        #expect(node.send(client, "EXISTS", "{b}c") == Reply.integer(0))
        #expect(node.send(client, "MSETNX", "{b}c", "3", "{b}d", "4") == Reply.integer(1))
        #expect(node.send(client, "MSET", "a") == Reply.error("ERR wrong number of arguments for 'mset' command"))
        #expect(
            node.send(client, "MSET", "a", "1", "b") == Reply.error("ERR wrong number of arguments for 'mset' command"))
        #expect(node.send(client, "GETSET", "a", "9") == Reply.bulk("1"))
        #expect(node.send(client, "GETDEL", "a") == Reply.bulk("9"))
        #expect(node.send(client, "GETDEL", "a") == Reply.null)
        #expect(node.send(client, "SETNX", "a", "x") == Reply.integer(1))
        #expect(node.send(client, "SETNX", "a", "y") == Reply.integer(0))
        #expect(node.send(client, "DBSIZE") == Reply.integer(4))
    }

    /// Random commands against the node and against a dictionary model; every reply must agree.
    @Test("agrees with a dictionary model under random commands", arguments: 0..<30 as Range<UInt64>)
    func modelCheck(seed: UInt64) throws {
        var node = try NodeHarness()
        let client = node.connect()
        var model: [String: String] = [:]
        var prng = SplitMix64(seed: seed)
        for step in 0..<200 {
            let key = "{m}k\(prng.below(5))"  // One hash tag: RENAME needs both keys in one partition.
            let value = "v\(prng.below(3))"
            let expected: String
            let reply: String
            switch prng.below(8) {
            case 0:
                reply = node.send(client, "SET", key, value)
                model[key] = value
                expected = Reply.ok
            case 1:
                reply = node.send(client, "GET", key)
                expected = model[key].map(Reply.bulk) ?? Reply.null
            case 2:
                reply = node.send(client, "DEL", key)
                expected = Reply.integer(model.removeValue(forKey: key) == nil ? 0 : 1)
            case 3:
                reply = node.send(client, "APPEND", key, value)
                model[key, default: ""] += value
                expected = Reply.integer(Int64(model[key]!.utf8.count))
            case 4:
                reply = node.send(client, "SET", key, value, "IFEQ", "v0")
                if model[key] == "v0" {
                    model[key] = value
                    expected = Reply.ok
                } else {
                    expected = Reply.null
                }
            case 5:
                reply = node.send(client, "SETNX", key, value)
                expected = Reply.integer(model[key] == nil ? 1 : 0)
                if model[key] == nil { model[key] = value }
            case 6:
                reply = node.send(client, "DBSIZE")
                expected = Reply.integer(Int64(model.count))
            default:
                reply = node.send(client, "RENAME", key, "{m}k9")
                if let moved = model.removeValue(forKey: key) {
                    model["{m}k9"] = moved
                    expected = Reply.ok
                } else {
                    expected = Reply.error("ERR no such key")
                }
            }
            #expect(reply == expected, "seed \(seed) step \(step)")
        }
        // Everything the model holds is in the store after a restart.
        let restarted = try NodeHarness(store: node.store)
        var fresh = restarted
        let other = fresh.connect()
        for (key, value) in model {
            #expect(fresh.send(other, "GET", key) == Reply.bulk(value), "seed \(seed) key \(key)")
        }
        #expect(fresh.send(other, "DBSIZE") == Reply.integer(Int64(model.count)), "seed \(seed)")
    }
}
