import CairnCore
import CairnRESP
import CairnStorage

@testable import CairnNode

/// Drives a `NodeCore` the way the shell does, over an in-memory store, on a fake clock.
///
/// `send` runs one command as a whole loop turn: the command, `.turnEnded`, then (unless storage is
/// held back) the batch applied to the store and `.persisted`. Replies come back decoded as text.
struct NodeHarness {
    var core: NodeCore
    let store: MemoryKVStore
    var now: Instant
    /// Batches the "storage thread" has not applied yet.
    var unapplied: [StorageBatch] = []
    /// When true, batches wait in `unapplied` until `persistAll()`.
    var holdStorage = false
    var nextClient: UInt64 = 1

    init(
        config: NodeConfig = NodeConfig(), store: MemoryKVStore = MemoryKVStore(),
        unixMilliseconds: Int64 = 1_700_000_000_000
    ) throws {
        self.store = store
        self.now = Instant(unixMicroseconds: unixMilliseconds * 1000, monotonicNanoseconds: 1_000_000)
        self.core = try NodeCore(config: config, store: store, now: now)
        try waitUntilReady()
    }

    /// Ticks until every group of the node has elected its leader (a new node founds a one-node
    /// cluster: each group elects itself after one election timeout).
    mutating func waitUntilReady() throws {
        for _ in 0..<(core.config.electionTicks * 4) where !core.isReady { tick(1) }
        guard core.isReady else { throw HarnessError.notReady }
    }

    enum HarnessError: Error { case notReady }

    mutating func connect() -> ClientID {
        let id = ClientID(nextClient)
        nextClient += 1
        _ = step(
            .connected(id, address: "127.0.0.1:5\(id.rawValue)", localAddress: "127.0.0.1:7379", fileDescriptor: 9))
        return id
    }

    mutating func step(_ input: NodeInput) -> [ClientReply] {
        let output = core.step(input, now: now)
        precondition(output.fatal == nil, "unexpected fatal: \(output.fatal ?? "")")
        unapplied += output.writes
        var replies = output.replies
        for read in output.snapshotReads { replies += step(read.build(from: store.readView())) }
        return replies
    }

    /// Applies every unapplied batch and reports it durable; returns the replies that released.
    mutating func persistAll() -> [ClientReply] {
        guard let last = unapplied.last else { return [] }
        do {
            try store.apply(unapplied, sync: true)
        } catch {
            preconditionFailure("the in-memory store cannot fail, but did: \(error)")
        }
        let count = unapplied.count
        let mutations = unapplied.reduce(0) { $0 + $1.mutations.count }
        unapplied.removeAll()
        return step(
            .persisted(
                through: last.sequence, durationNanoseconds: 1000, synced: true, batches: count, mutations: mutations))
    }

    /// Runs one command in its own loop turn and returns every reply released during it.
    mutating func run(_ client: ClientID, _ words: [[UInt8]]) -> [ClientReply] {
        var replies = step(.command(client, arguments: words, wireBytes: 10))
        replies += step(.turnEnded)
        if !holdStorage { replies += persistAll() }
        return replies
    }

    /// Runs a command given as words and returns its reply as RESP text (RESP2 unless HELLO 3 was sent).
    @discardableResult
    mutating func send(_ client: ClientID, _ words: String...) -> String {
        let replies = run(client, words.map { Array($0.utf8) })
        return replies.filter { $0.client == client }.map { String(decoding: $0.bytes, as: UTF8.self) }.joined()
    }

    /// Runs one empty loop turn: the data that committed entries wrote reaches the store.
    mutating func settle() {
        _ = step(.turnEnded)
        if !holdStorage { _ = persistAll() }
    }

    mutating func advance(milliseconds: Int64) {
        now.unixMicroseconds += milliseconds * 1000
        now.monotonicNanoseconds += UInt64(milliseconds) * 1_000_000
    }

    /// Advances time one tick at a time (running the expiry cycle), persisting after each.
    mutating func tick(_ count: Int) {
        for _ in 0..<count {
            advance(milliseconds: Int64(core.config.tickMilliseconds))
            _ = step(.tick)
            _ = step(.turnEnded)
            if !holdStorage { _ = persistAll() }
        }
    }
}

/// RESP2 text of common replies, for readable expectations.
enum Reply {
    static let ok = "+OK\r\n"
    static let null = "$-1\r\n"
    static func bulk(_ text: String) -> String { "$\(text.utf8.count)\r\n\(text)\r\n" }
    static func integer(_ value: Int64) -> String { ":\(value)\r\n" }
    static func error(_ text: String) -> String { "-\(text)\r\n" }
}
