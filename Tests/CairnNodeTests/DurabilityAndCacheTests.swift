import CairnCore
import CairnRESP
import CairnStorage
import Testing

@testable import CairnNode

@Suite("durability gating and the read cache")
struct DurabilityAndCacheTests {
    @Test("a write's reply waits until its entry is durable (committed in a one-node group)")
    func writeReplyWaitsForDurability() throws {
        var node = try NodeHarness()
        node.holdStorage = true
        let client = node.connect()
        let early = node.run(client, [Array("SET".utf8), Array("k".utf8), Array("v".utf8)])
        #expect(early.isEmpty, "no reply before the entry is durable")
        let released = node.persistAll()
        #expect(released.map(\.bytes) == [Array(Reply.ok.utf8)])
    }

    @Test("a read waits for the writes proposed before it, and never sees one that is not committed")
    func readWaitsForEarlierProposals() throws {
        var node = try NodeHarness()
        let writer = node.connect()
        let reader = node.connect()
        node.send(writer, "SET", "old", "1")
        node.holdStorage = true
        _ = node.run(writer, [Array("SET".utf8), Array("k".utf8), Array("v".utf8)])
        let read = node.run(reader, [Array("GET".utf8), Array("k".utf8)])
        #expect(read.isEmpty, "the read waits for the SET proposed before it to commit")
        let pipelined = node.run(writer, [Array("GET".utf8), Array("old".utf8)])
        #expect(pipelined.isEmpty, "the writer's GET waits behind its own SET's reply")
        let released = node.persistAll()
        func text(_ client: ClientID) -> [String] {
            released.filter { $0.client == client }.map { String(decoding: $0.bytes, as: UTF8.self) }
        }
        #expect(text(writer) == [Reply.ok, Reply.bulk("1")])
        #expect(text(reader) == [Reply.bulk("v")])
    }

    @Test("a batch of applied data only needs no fsync; a crash that loses it is repaired from the log")
    func appliedDataNeedsNoSync() throws {
        var node = try NodeHarness()
        node.holdStorage = true
        let client = node.connect()
        _ = node.run(client, [Array("SET".utf8), Array("k".utf8), Array("v".utf8)])
        #expect(node.unapplied.count == 1 && node.unapplied[0].needsSync, "the log entry's batch must be fsync'd")
        #expect(node.persistAll().map(\.bytes) == [Array(Reply.ok.utf8)])
        // The reply went out when the entry was applied; what applying wrote closes with the next turn.
        _ = node.step(.turnEnded)
        let applied = try #require(node.unapplied.first)
        #expect(node.unapplied.count == 1 && !applied.needsSync, "applied data alone needs no fsync")
        #expect(
            applied.mutations.contains {
                if case .put(let key, _) = $0 { key == Keyspace.dataKey(Array("k".utf8)) } else { false }
            })
        // A power cut loses that batch: the node restarts from the store without it and applies the
        // entry again.
        var restarted = try NodeHarness(store: node.store, unixMilliseconds: node.now.unixMilliseconds + 1000)
        let reader = restarted.connect()
        #expect(restarted.send(reader, "GET", "k") == Reply.bulk("v"))
        #expect(restarted.send(reader, "DBSIZE") == Reply.integer(1))
    }

    @Test("all writes of one loop turn share one batch (group commit)")
    func groupCommit() throws {
        var node = try NodeHarness()
        let first = node.connect()
        let second = node.connect()
        _ = node.step(.command(first, arguments: [Array("SET".utf8), Array("a".utf8), Array("1".utf8)], wireBytes: 1))
        _ = node.step(.command(second, arguments: [Array("SET".utf8), Array("b".utf8), Array("2".utf8)], wireBytes: 1))
        _ = node.step(.turnEnded)
        #expect(node.unapplied.count == 1)
        #expect(node.persistAll().count == 2)
    }

    @Test("the cache is written through on durability, counts hits and misses, and evicts by bytes")
    func cache() throws {
        var config = NodeConfig()
        config.cacheBytes = 3 * (ReadCache.entryOverheadBytes + 2 + 100)
        var node = try NodeHarness(config: config)
        let client = node.connect()
        let value = String(repeating: "x", count: 100)
        for index in 0..<5 { node.send(client, "SET", "k\(index)", value) }
        node.settle()
        #expect(node.core.keyspace.cache.count == 3)
        #expect(node.core.keyspace.cache.evictions == 2)
        let hitsBefore = node.core.keyspace.cache.hits
        node.send(client, "GET", "k4")
        #expect(node.core.keyspace.cache.hits == hitsBefore + 1)
        let missesBefore = node.core.keyspace.cache.misses
        node.send(client, "GET", "k0")
        #expect(node.core.keyspace.cache.misses == missesBefore + 1, "k0 was evicted")
        node.send(client, "DEL", "k4")
        node.settle()
        #expect(!node.core.keyspace.cache.contains(Array("k4".utf8)), "deletes invalidate")
    }

    @Test("the cache treats an expired entry as a miss")
    func cacheRespectsTTL() {
        var cache = ReadCache(capacityBytes: 10_000)
        cache.put(Array("k".utf8), ValueRecord(value: Array("v".utf8), expiresAt: 100))
        #expect(cache.get(Array("k".utf8), now: 99) != nil)
        #expect(cache.get(Array("k".utf8), now: 100) == nil)
        #expect(!cache.contains(Array("k".utf8)))
    }

    @Test("a failed fsync stops the node instead of acknowledging")
    func persistFailureIsFatal() throws {
        var node = try NodeHarness()
        node.holdStorage = true
        let client = node.connect()
        _ = node.run(client, [Array("SET".utf8), Array("k".utf8), Array("v".utf8)])
        let output = node.core.step(
            .persistFailed(BatchSequence(1), .rocksDB(operation: "write", message: "disk full")), now: node.now)
        #expect(output.fatal != nil)
        #expect(output.replies.isEmpty)
    }
}

@Suite("connection and server commands")
struct ServerCommandTests {
    @Test("PING, ECHO, SELECT, QUIT, unknown commands and arity errors")
    func basics() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "PING") == "+PONG\r\n")
        #expect(node.send(client, "ping", "hi") == Reply.bulk("hi"))
        #expect(node.send(client, "PING", "a", "b") == Reply.error("ERR wrong number of arguments for 'ping' command"))
        #expect(node.send(client, "ECHO", "x") == Reply.bulk("x"))
        #expect(node.send(client, "SELECT", "0") == Reply.ok)
        #expect(node.send(client, "SELECT", "1") == Reply.error("ERR DB index is out of range"))
        #expect(node.send(client, "SELECT", "x") == Reply.error("ERR value is not an integer or out of range"))
        #expect(
            node.send(client, "FOO", "a", "b")
                == Reply.error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "))
        #expect(node.send(client, "CLIENT", "NOPE") == Reply.error("ERR unknown subcommand 'NOPE'. Try CLIENT HELP."))
        let quit = node.run(client, [Array("QUIT".utf8)])
        #expect(quit == [ClientReply(client: client, bytes: Array(Reply.ok.utf8), closeAfter: true)])
        #expect(node.run(client, [Array("PING".utf8)]).isEmpty, "nothing after QUIT")
    }

    @Test("HELLO 3 switches the connection to RESP3 and returns the server map")
    func hello() throws {
        var node = try NodeHarness()
        let client = node.connect()
        let reply = node.send(client, "HELLO", "3", "SETNAME", "app")
        #expect(reply.hasPrefix("%7\r\n$6\r\nserver\r\n$5\r\ncairn\r\n"))
        #expect(reply.contains("$5\r\nproto\r\n:3\r\n"))
        #expect(node.send(client, "GET", "missing") == "_\r\n")
        #expect(node.send(client, "CLIENT", "GETNAME") == Reply.bulk("app"))
        #expect(node.send(client, "HELLO", "4") == Reply.error("NOPROTO unsupported protocol version"))
        #expect(
            node.send(client, "HELLO", "x") == Reply.error("ERR Protocol version is not an integer or out of range"))
    }

    @Test("CLIENT subcommands report and change the session")
    func clientCommands() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "CLIENT", "ID") == Reply.integer(Int64(client.rawValue)))
        #expect(node.send(client, "CLIENT", "GETNAME") == Reply.null)
        #expect(
            node.send(client, "CLIENT", "SETNAME", "a b")
                == Reply.error("ERR Client names cannot contain spaces, newlines or special characters."))
        #expect(node.send(client, "CLIENT", "SETNAME", "worker") == Reply.ok)
        #expect(node.send(client, "CLIENT", "SETINFO", "LIB-NAME", "redis-py") == Reply.ok)
        #expect(node.send(client, "CLIENT", "SETINFO", "color", "x") == Reply.error("ERR Unrecognized option 'color'"))
        let list = node.send(client, "CLIENT", "LIST")
        #expect(
            list.contains(
                "id=\(client.rawValue) addr=127.0.0.1:5\(client.rawValue) laddr=127.0.0.1:7379 fd=9 name=worker"))
        #expect(list.contains("lib-name=redis-py"))
        #expect(node.send(client, "CLIENT", "INFO").contains("cmd=client|info "))
    }

    @Test("COMMAND, CONFIG GET and INFO answer what redis-cli and client libraries ask")
    func introspection() throws {
        var node = try NodeHarness()
        let client = node.connect()
        #expect(node.send(client, "COMMAND", "COUNT") == Reply.integer(Int64(CommandTable.commands.count)))
        #expect(node.send(client, "COMMAND", "INFO", "get").hasPrefix("*1\r\n*10\r\n$3\r\nget\r\n:2\r\n"))
        #expect(node.send(client, "COMMAND", "DOCS", "set").contains("summary"))
        #expect(node.send(client, "CONFIG", "GET", "appendfsync") == "*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n")
        #expect(node.send(client, "CONFIG", "SET", "x", "y").hasPrefix("-ERR CONFIG SET is not supported"))
        node.send(client, "SET", "a", "1")
        let info = node.send(client, "INFO")
        for section in ["# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Keyspace"] {
            #expect(info.contains(section), "INFO lacks \(section)")
        }
        #expect(info.contains("db0:keys=1,expires=0,avg_ttl=0"))
        #expect(node.send(client, "INFO", "commandstats").contains("cmdstat_set:calls=1,"))
        #expect(node.send(client, "TIME").hasPrefix("*2\r\n"))
    }

    @Test("a protocol error replies once and closes the connection")
    func protocolError() throws {
        var node = try NodeHarness()
        let client = node.connect()
        let replies = node.step(.protocolError(client, .expectedBulk(found: UInt8(ascii: "+"))))
        #expect(
            replies == [
                ClientReply(
                    client: client, bytes: Array("-ERR Protocol error: expected '$', got '+'\r\n".utf8),
                    closeAfter: true)
            ])
    }

    @Test("metrics render every family and count commands by result")
    func metrics() throws {
        var node = try NodeHarness()
        let client = node.connect()
        node.send(client, "SET", "a", "1")
        node.send(client, "GET")
        let text = node.core.renderMetrics(now: node.now)
        #expect(text.contains("cairn_commands_total{command=\"set\",result=\"ok\"} 1"))
        #expect(text.contains("cairn_commands_total{command=\"get\",result=\"error\"} 1"))
        for family in NodeMetrics.all { #expect(text.contains("# TYPE \(family.name) "), "\(family.name) missing") }
    }
}
