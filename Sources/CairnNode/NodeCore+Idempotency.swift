import CairnCore
import CairnRESP
import CairnStorage

/// Idempotent writes: `IDEMPOTENT token command [arg ...]` runs a write command at most once per token
/// within the window (`NodeConfig.idempotencyWindowMilliseconds`, 10 minutes by default, as DynamoDB's
/// ClientRequestToken): a retry with the same token gets the first reply and applies nothing again.
///
/// The table of tokens is part of each partition's replicated state: a token and its reply are written
/// when the entry applies (in the same batch as the data it changed), on every replica, and travel in
/// snapshots. So a retry after a failover, through any node, still applies once. Tokens older than the
/// window (by the entry's apply time, the same on every replica) are pruned as later idempotent writes
/// of the partition apply. The wrapped command's keys must be in one partition.
extension NodeCore {
    /// Longest token accepted.
    static let idempotencyTokenBytesMax = 256
    /// Tokens past the window removed per idempotent write applied.
    static let idempotencyPrunePerApply = 8

    /// Why `IDEMPOTENT …` cannot run as given, or nil. Checked where the client sent it.
    static func idempotentProblem(_ arguments: [[UInt8]], map: ClusterMap) -> String? {
        let token = arguments[1]
        guard (1...idempotencyTokenBytesMax).contains(token.count) else {
            return "ERR IDEMPOTENT token must be 1 to \(idempotencyTokenBytesMax) bytes, got \(token.count)"
        }
        let inner = Array(arguments[2...])
        guard let spec = CommandTable.lookup(inner[0]) else {
            return "ERR IDEMPOTENT wraps a command; unknown command '\(String(decoding: inner[0], as: UTF8.self))'"
        }
        guard spec.isWrite, spec.firstKey > 0, spec.name != "idempotent" else {
            return
                "ERR IDEMPOTENT wraps a write command with keys (SET, INCR, DEL, HSET, ...); '\(spec.name)' is not one"
        }
        guard spec.accepts(argumentCount: inner.count) else {
            return CommandError.wrongArity(command: spec.name).description
        }
        let partitions = Set(keyPositions(spec, argumentCount: inner.count).map { map.partition(ofKey: inner[$0]) })
        guard partitions.count == 1 else {
            return "CROSSSLOT IDEMPOTENT keys must be in one partition (use a {hash tag} to keep them together)"
        }
        return nil
    }

    static func idempotencyKey(group: GroupID, token: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [StorageLayout.idempotencyPrefix]
        bytes.appendBigEndian(group.rawValue)
        return bytes + token
    }

    static func idempotencyTimeKey(group: GroupID, time: Int64, token: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [StorageLayout.idempotencyTimePrefix]
        bytes.appendBigEndian(group.rawValue)
        bytes.appendBigEndian(UInt64(max(0, time)))
        return bytes + token
    }

    /// Every storage key of `group`'s table, under `prefix`.
    static func idempotencyRange(_ prefix: UInt8, group: GroupID) -> (start: [UInt8], end: [UInt8]) {
        var start: [UInt8] = [prefix]
        start.appendBigEndian(group.rawValue)
        var end: [UInt8] = [prefix]
        end.appendBigEndian(group.rawValue + 1)
        return (start, end)
    }

    /// Applies a committed `IDEMPOTENT token command …` at apply time `now`: the recorded reply if the
    /// token applied within the window, else the command's reply, recorded with the token.
    mutating func applyIdempotent(_ arguments: [[UInt8]], group: GroupID, now: Int64) throws(CommandError) -> RESPValue
    {
        let token = arguments[1]
        let key = Self.idempotencyKey(group: group, token: token)
        let stored: [UInt8]?
        do {
            stored = try keyspace.auxGet(key)
        } catch {
            throw .storage(error)
        }
        if let stored, stored.count >= 8, config._injectedBug != .idempotencyIgnored {
            let time = Int64(bitPattern: stored.loadBigEndian(as: UInt64.self, at: 0))
            if now - time < config.idempotencyWindowMilliseconds, let reply = Self.decodeReply(Array(stored[8...])) {
                stats.idempotentReplays += 1
                return reply
            }
            keyspace.auxPut(Self.idempotencyTimeKey(group: group, time: time, token: token), nil)
        }
        let inner = Array(arguments[2...])
        guard let spec = CommandTable.lookup(inner[0]), spec.isWrite, spec.firstKey > 0 else {
            return .error("ERR IDEMPOTENT wraps a write command with keys")
        }
        // Checked where the client sent it; checked again here, because a key applied in another
        // partition's group would be lost from its own.
        if let partition = applyingPartition, let map,
            Self.keyPositions(spec, argumentCount: inner.count).contains(where: {
                map.partition(ofKey: inner[$0]) != partition
            })
        {
            return .error("CROSSSLOT IDEMPOTENT keys must be in one partition")
        }
        var closeAfter = false
        let reply: RESPValue
        do {
            reply = try execute(spec, inner, client: nil, nowMilliseconds: now, closeAfter: &closeAfter)
        } catch .storage(let failure) {
            throw .storage(failure)
        } catch {
            reply = .error(error.description)
        }
        var value: [UInt8] = []
        value.appendBigEndian(UInt64(bitPattern: now))
        keyspace.auxPut(key, value + reply.encoded(.resp2))
        keyspace.auxPut(Self.idempotencyTimeKey(group: group, time: now, token: token), [])
        do {
            try pruneIdempotency(group: group, now: now)
        } catch {
            throw .storage(error)
        }
        return reply
    }

    /// Removes a few of `group`'s tokens older than the window.
    mutating func pruneIdempotency(group: GroupID, now: Int64) throws(StorageError) {
        let cutoff = now - config.idempotencyWindowMilliseconds
        guard cutoff > 0 else { return }
        let range = Self.idempotencyRange(StorageLayout.idempotencyTimePrefix, group: group)
        var end = range.start
        end.appendBigEndian(UInt64(cutoff))
        // The oldest few of the merged view (the same on every replica), skipping pages that hold only
        // deletes not yet durable.
        var expired: [[UInt8]] = []
        var start: [UInt8]? = range.start
        while let from = start, expired.count < Self.idempotencyPrunePerApply {
            let page = try keyspace.auxScan(from: from, to: end, limit: Self.idempotencyPrunePerApply)
            expired += page.entries.prefix(Self.idempotencyPrunePerApply - expired.count).map(\.key)
            start = page.next
        }
        for timeKey in expired {
            let time = Int64(bitPattern: timeKey.loadBigEndian(as: UInt64.self, at: 9))
            let token = Array(timeKey[17...])
            keyspace.auxPut(timeKey, nil)
            // The token may have been used again since (its record then has the newer time).
            let key = Self.idempotencyKey(group: group, token: token)
            if let stored = try keyspace.auxGet(key), stored.count >= 8,
                Int64(bitPattern: stored.loadBigEndian(as: UInt64.self, at: 0)) == time
            {
                keyspace.auxPut(key, nil)
            }
        }
    }

    /// `group`'s whole table: each token with its apply time and recorded reply (for a snapshot).
    func idempotencyEntries(of group: GroupID, pageKeys: Int = 4096) throws(StorageError) -> [IdempotencyEntry] {
        let range = Self.idempotencyRange(StorageLayout.idempotencyPrefix, group: group)
        var entries: [IdempotencyEntry] = []
        var start: [UInt8]? = range.start
        while let from = start {
            let page = try keyspace.auxScan(from: from, to: range.end, limit: pageKeys)
            entries += page.entries.compactMap(Self.idempotencyEntry)
            start = page.next
        }
        return entries
    }

    /// A stored token record (key: prefix, group, token; value: apply time, reply) as an entry.
    static func idempotencyEntry(key: [UInt8], value: [UInt8]) -> IdempotencyEntry? {
        guard key.count >= 9, value.count >= 8 else { return nil }
        return IdempotencyEntry(
            token: Array(key[9...]), time: Int64(bitPattern: value.loadBigEndian(as: UInt64.self, at: 0)),
            reply: Array(value[8...]))
    }

    /// Replaces `group`'s table with `entries` (restoring a snapshot), or just deletes it (`entries` empty).
    mutating func replaceIdempotency(of group: GroupID, with entries: [IdempotencyEntry], pageKeys: Int = 4096)
        throws(StorageError)
    {
        for prefix in [StorageLayout.idempotencyPrefix, StorageLayout.idempotencyTimePrefix] {
            let range = Self.idempotencyRange(prefix, group: group)
            var start: [UInt8]? = range.start
            while let from = start {
                let page = try keyspace.auxScan(from: from, to: range.end, limit: pageKeys)
                for (key, _) in page.entries { keyspace.auxPut(key, nil) }
                start = page.next
            }
        }
        for entry in entries {
            var value: [UInt8] = []
            value.appendBigEndian(UInt64(bitPattern: entry.time))
            keyspace.auxPut(Self.idempotencyKey(group: group, token: entry.token), value + entry.reply)
            keyspace.auxPut(Self.idempotencyTimeKey(group: group, time: entry.time, token: entry.token), [])
        }
    }
}

/// One token of a partition's idempotency table: when its write applied, and the reply (RESP2 bytes).
struct IdempotencyEntry: Sendable, Equatable {
    var token: [UInt8]
    var time: Int64
    var reply: [UInt8]
}
