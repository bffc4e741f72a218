import CairnCore
import CairnStorage
import Testing

@testable import CairnNode

@Suite("keys and expiry")
struct KeyAndExpiryTests {
    @Test("EXPIRE options NX, XX, GT, LT and TTL replies")
    func expireOptions() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "EXPIRE", "k", "10") == Reply.integer(0))
        #expect(node.send(client, "TTL", "k") == Reply.integer(-2))
        node.send(client, "SET", "k", "v")
        #expect(node.send(client, "TTL", "k") == Reply.integer(-1))
        #expect(node.send(client, "EXPIRE", "k", "100", "XX") == Reply.integer(0))
        #expect(node.send(client, "EXPIRE", "k", "100", "GT") == Reply.integer(0))
        #expect(node.send(client, "EXPIRE", "k", "100", "LT") == Reply.integer(1))
        #expect(node.send(client, "EXPIRE", "k", "50", "NX") == Reply.integer(0))
        #expect(node.send(client, "EXPIRE", "k", "200", "GT") == Reply.integer(1))
        #expect(node.send(client, "EXPIRE", "k", "300", "LT") == Reply.integer(0))
        #expect(node.send(client, "TTL", "k") == Reply.integer(200))
        #expect(node.send(client, "PTTL", "k") == Reply.integer(200_000))
        let expiresAt = node.now.unixMilliseconds + 200_000
        #expect(node.send(client, "PEXPIRETIME", "k") == Reply.integer(expiresAt))
        #expect(node.send(client, "EXPIRETIME", "k") == Reply.integer((expiresAt + 500) / 1000))
        #expect(
            node.send(client, "EXPIRE", "k", "1", "NX", "XX")
                == Reply.error("ERR NX and XX, GT or LT options at the same time are not compatible"))
        #expect(
            node.send(client, "EXPIRE", "k", "1", "GT", "LT")
                == Reply.error("ERR GT and LT options at the same time are not compatible"))
        #expect(node.send(client, "EXPIRE", "k", "1", "YY") == Reply.error("ERR Unsupported option YY"))
        #expect(
            node.send(client, "EXPIRE", "k", "9223372036854775807")
                == Reply.error("ERR invalid expire time in 'expire' command"))
        #expect(node.send(client, "PERSIST", "k") == Reply.integer(1))
        #expect(node.send(client, "PERSIST", "k") == Reply.integer(0))
        #expect(node.send(client, "EXPIRE", "k", "-1") == Reply.integer(1))
        #expect(node.send(client, "EXISTS", "k") == Reply.integer(0))
    }

    @Test("an expired key is invisible at once, and the expiry cycle removes it from storage")
    func expiryIsImmediateAndBackgroundRemovesIt() throws {
        var node = try NodeHarness()
        let client = node.connect()
        for index in 0..<50 { node.send(client, "SET", "t\(index)", "v", "PX", "100") }
        node.send(client, "SET", "keep", "v")
        #expect(node.send(client, "DBSIZE") == Reply.integer(51))
        node.advance(milliseconds: 100)
        #expect(node.send(client, "GET", "t0") == Reply.null, "expired exactly at its time, before any cycle")
        node.tick(node.core.config.expiryCycleTicks)
        #expect(node.send(client, "DBSIZE") == Reply.integer(1))
        #expect(node.core.keyspace.expiredKeys == 50)
        node.settle()
        // Only the kept key's record and the node's metadata remain: no record, no index entry left behind.
        let stored = try node.store.scan(
            from: [StorageLayout.dataPrefix], to: [StorageLayout.expiryPrefix + 1], limit: 100)
        #expect(stored.map(\.key) == [Keyspace.dataKey(Array("keep".utf8))])
    }

    @Test("the expiry cycle does bounded work per tick")
    func expiryCycleIsBounded() throws {
        var node = try NodeHarness()
        let client = node.connect()
        let count = Limits.expiryKeysPerTickMax * 2 + 10
        for index in 0..<count { node.send(client, "SET", "t\(index)", "v", "PX", "5") }
        node.advance(milliseconds: 10)
        node.tick(node.core.config.expiryCycleTicks)
        #expect(node.core.keyspace.expiredKeys == UInt64(Limits.expiryKeysPerTickMax))
        node.tick(node.core.config.expiryCycleTicks * 2)
        #expect(node.core.keyspace.expiredKeys == UInt64(count))
    }

    @Test("expiry times survive a restart, and keys that expired while down stay gone")
    func expirySurvivesRestart() throws {
        var node = try NodeHarness()
        let client = node.connect()
        node.send(client, "SET", "short", "v", "PX", "500")
        node.send(client, "SET", "long", "v", "EX", "100")
        var restarted = try NodeHarness(store: node.store, unixMilliseconds: node.now.unixMilliseconds + 1000)
        let other = restarted.connect()
        #expect(restarted.send(other, "GET", "short") == Reply.null)
        #expect(restarted.send(other, "TTL", "long") == Reply.integer(99))
    }

    @Test("GETEX sets, changes and removes expiry times")
    func getex() throws {
        var node = try NodeHarness()
        let client = node.connect()
        node.send(client, "SET", "k", "v")
        #expect(node.send(client, "GETEX", "k", "EX", "10") == Reply.bulk("v"))
        #expect(node.send(client, "TTL", "k") == Reply.integer(10))
        #expect(node.send(client, "GETEX", "k", "PERSIST") == Reply.bulk("v"))
        #expect(node.send(client, "TTL", "k") == Reply.integer(-1))
        #expect(node.send(client, "GETEX", "k", "EX", "0") == Reply.error("ERR invalid expire time in 'getex' command"))
        #expect(node.send(client, "GETEX", "k", "PERSIST", "EX", "1") == Reply.error("ERR syntax error"))
        #expect(node.send(client, "GETEX", "nokey", "EX", "10") == Reply.null)
        #expect(node.send(client, "SET", "k", "v", "KEEPTTL") == Reply.ok)
    }

    @Test("RENAME keeps the expiry time; COPY copies it; errors use Redis's texts (keys share a hash tag)")
    func renameAndCopy() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "RENAME", "{t}a", "{t}b") == Reply.error("ERR no such key"))
        node.send(client, "SET", "{t}a", "1", "EX", "50")
        #expect(node.send(client, "RENAME", "{t}a", "{t}b") == Reply.ok)
        #expect(node.send(client, "TTL", "{t}b") == Reply.integer(50))
        #expect(node.send(client, "RENAMENX", "{t}b", "{t}b") == Reply.integer(0))
        node.send(client, "SET", "{t}c", "2")
        #expect(node.send(client, "RENAMENX", "{t}b", "{t}c") == Reply.integer(0))
        #expect(node.send(client, "COPY", "{t}b", "{t}c") == Reply.integer(0))
        #expect(node.send(client, "COPY", "{t}b", "{t}c", "REPLACE") == Reply.integer(1))
        #expect(node.send(client, "GET", "{t}c") == Reply.bulk("1"))
        #expect(node.send(client, "TTL", "{t}c") == Reply.integer(50))
        #expect(
            node.send(client, "COPY", "{t}b", "{t}b") == Reply.error("ERR source and destination objects are the same"))
        #expect(node.send(client, "COPY", "{t}b", "{t}d", "DB", "1") == Reply.error("ERR DB index is out of range"))
        #expect(node.send(client, "TYPE", "{t}b") == "+string\r\n")
        #expect(node.send(client, "TYPE", "zz") == "+none\r\n")
    }

    @Test("SCAN visits every key exactly once over a full iteration, with MATCH and COUNT")
    func scanCompleteness() throws {
        var node = try NodeHarness()
        let client = node.connect()
        for index in 0..<137 { node.send(client, "SET", "key:\(index)", "v") }
        node.send(client, "SET", "other", "v")
        var cursor = "0"
        var seen: [String] = []
        repeat {
            let reply = node.send(client, "SCAN", cursor, "MATCH", "key:*", "COUNT", "10")
            let lines = reply.split(separator: "\r\n").map(String.init)
            cursor = lines[2]
            seen += lines.dropFirst(4).enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        } while cursor != "0"
        #expect(seen.count == 137)
        #expect(Set(seen).count == 137)
        #expect(node.send(client, "SCAN", "abc") == Reply.error("ERR invalid cursor"))
        #expect(node.send(client, "SCAN", "0", "COUNT", "0") == Reply.error("ERR syntax error"))
        #expect(node.send(client, "KEYS", "oth*") == "*1\r\n$5\r\nother\r\n")
        #expect(node.send(client, "RANDOMKEY").hasPrefix("$"))
    }

    @Test("FLUSHALL removes every key, in storage too")
    func flushAll() throws {
        var node = try NodeHarness()
        let client = node.connect()
        node.send(client, "SET", "a", "1", "EX", "100")
        node.send(client, "SET", "b", "2")
        #expect(node.send(client, "FLUSHALL") == Reply.ok)
        #expect(node.send(client, "DBSIZE") == Reply.integer(0))
        #expect(node.send(client, "GET", "a") == Reply.null)
        #expect(node.send(client, "FLUSHALL", "LAZY") == Reply.error("ERR syntax error"))
        var restarted = try NodeHarness(store: node.store)
        let other = restarted.connect()
        #expect(restarted.send(other, "DBSIZE") == Reply.integer(0))
        #expect(restarted.send(other, "GET", "b") == Reply.null)
    }
}

@Suite("scan over writes not yet durable")
struct PendingScanTests {
    @Test("SCAN honours COUNT and stays complete while writes are pending")
    func scanWithPendingWrites() throws {
        var config = NodeConfig()
        config.fsync = .none
        var node = try NodeHarness(config: config)
        let client = node.connect()
        // Each write's data is applied into the open batch after its entry commits, so the keys of the
        // latest turns are always pending: the scan merges them with the store.
        for index in 0..<120 { node.send(client, "SET", "p\(index)", "v") }
        node.send(client, "DEL", "p5")
        var cursor = "0"
        var seen: [String] = []
        var calls = 0
        repeat {
            let lines = node.send(client, "SCAN", cursor, "COUNT", "10").split(separator: "\r\n").map(String.init)
            cursor = lines[2]
            let keys = lines.dropFirst(4).enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            #expect(keys.count <= 10)
            seen += keys
            calls += 1
        } while cursor != "0" && calls < 100
        #expect(calls > 10, "COUNT 10 over 119 keys needs more than 10 calls")
        #expect(seen.count == 119)
        #expect(Set(seen).count == 119)
        #expect(!seen.contains("p5"))
    }
}
