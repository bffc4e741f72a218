import CairnCore
import CairnRESP
import CairnStorage

extension NodeCore {
    mutating func del(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var deleted: Int64 = 0
        for key in arguments.dropFirst() {
            guard let previous = try keyspace.get(key, now: now) else { continue }
            keyspace.delete(key, previous: previous)
            deleted += 1
        }
        return .integer(deleted)
    }

    /// DELEX key [IFEQ v | IFNE v]: deletes the key, or only if its value equals / differs from v.
    mutating func delex(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var condition = WriteCondition.always
        if arguments.count > 2 {
            let option = Self.option(arguments[2])
            switch option {
            case "IFEQ", "IFNE":
                guard arguments.count == 4 else { throw .syntax }
                condition = option == "IFEQ" ? .ifEqual(arguments[3]) : .ifNotEqual(arguments[3])
            case "IFDEQ", "IFDNE":
                throw .other(
                    "ERR \(option) (digest comparison) is not supported by Cairn; compare values with IFEQ or IFNE")
            default:
                throw .syntax
            }
        }
        guard let previous = try keyspace.get(arguments[1], now: now), condition.allows(previous) else {
            return .integer(0)
        }
        keyspace.delete(arguments[1], previous: previous)
        return .integer(1)
    }

    mutating func exists(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var found: Int64 = 0
        for key in arguments.dropFirst() where try keyspace.get(key, now: now) != nil {
            found += 1
        }
        return .integer(found)
    }

    /// RENAME / RENAMENX source destination. The value keeps its expiry time.
    mutating func rename(_ arguments: [[UInt8]], onlyIfAbsent: Bool, now: Int64) throws(CommandError) -> RESPValue {
        let source = arguments[1]
        let destination = arguments[2]
        guard let record = try keyspace.get(source, now: now) else { throw .noSuchKey }
        if source == destination { return onlyIfAbsent ? .integer(0) : .ok }
        let replaced = try keyspace.get(destination, now: now)
        if onlyIfAbsent, replaced != nil { return .integer(0) }
        keyspace.put(destination, record, previous: replaced)
        keyspace.delete(source, previous: record)
        return onlyIfAbsent ? .integer(1) : .ok
    }

    /// COPY source destination [DB db] [REPLACE]
    mutating func copy(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var replace = false
        var index = 3
        while index < arguments.count {
            switch Self.option(arguments[index]) {
            case "REPLACE":
                replace = true
            case "DB" where index + 1 < arguments.count:
                index += 1
                guard let database = Numbers.parseInt64(arguments[index]), database >= Int32.min, database <= Int32.max
                else { throw .notInteger }
                guard database == 0 else { throw .dbIndexOutOfRange }
            default:
                throw .syntax
            }
            index += 1
        }
        let source = arguments[1]
        let destination = arguments[2]
        guard source != destination else { throw .sameObject }
        guard let record = try keyspace.get(source, now: now) else { return .integer(0) }
        let replaced = try keyspace.get(destination, now: now)
        if replaced != nil, !replace { return .integer(0) }
        keyspace.put(destination, record, previous: replaced)
        return .integer(1)
    }

    /// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX | XX | GT | LT], as Redis's
    /// `expireGenericCommand`: options are checked before the time, and a time already past deletes
    /// the key.
    mutating func expire(_ name: String, _ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var options = Set<String>()
        for argument in arguments.dropFirst(3) {
            let option = Self.option(argument)
            guard ["NX", "XX", "GT", "LT"].contains(option) else {
                throw .other("ERR Unsupported option \(String(bytes: argument))")
            }
            options.insert(option)
        }
        if options.contains("NX"), options.count > 1 {
            throw .other("ERR NX and XX, GT or LT options at the same time are not compatible")
        }
        if options.contains("GT"), options.contains("LT") {
            throw .other("ERR GT and LT options at the same time are not compatible")
        }
        var when = try Self.integer(arguments[2])
        if name == "expire" || name == "expireat" {
            guard when <= Int64.max / 1000, when >= Int64.min / 1000 else { throw .invalidExpireTime(command: name) }
            when *= 1000
        }
        if name == "expire" || name == "pexpire" {
            let (sum, overflow) = when.addingReportingOverflow(now)
            if overflow { throw .invalidExpireTime(command: name) }
            when = sum
        }
        let key = arguments[1]
        guard let previous = try keyspace.get(key, now: now) else { return .integer(0) }
        let current = previous.expiresAt
        if options.contains("NX"), current != nil { return .integer(0) }
        if options.contains("XX"), current == nil { return .integer(0) }
        if options.contains("GT") {
            guard let current, when > current else { return .integer(0) }
        }
        if options.contains("LT"), let current, when >= current { return .integer(0) }
        if when <= now {
            keyspace.delete(key, previous: previous)
            return .integer(1)
        }
        keyspace.put(key, ValueRecord(value: previous.value, expiresAt: when), previous: previous)
        return .integer(1)
    }

    /// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 for a key without expiry.
    mutating func ttl(_ name: String, _ key: [UInt8], now: Int64) throws(CommandError) -> RESPValue {
        guard let record = try keyspace.get(key, now: now) else { return .integer(-2) }
        guard let expiresAt = record.expiresAt else { return .integer(-1) }
        let absolute = name.hasSuffix("expiretime")
        let milliseconds = max(0, absolute ? expiresAt : expiresAt - now)
        return .integer(name.hasPrefix("p") ? milliseconds : (milliseconds + 500) / 1000)
    }

    mutating func persist(_ key: [UInt8], now: Int64) throws(CommandError) -> RESPValue {
        guard let previous = try keyspace.get(key, now: now), previous.expiresAt != nil else { return .integer(0) }
        keyspace.put(key, ValueRecord(value: previous.value), previous: previous)
        return .integer(1)
    }

    /// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
    ///
    /// Keys come in key order. A cursor names the key to continue from, kept in a bounded table (see
    /// `ScanCursors`): Redis's guarantees hold (a key present for the whole iteration is returned at
    /// least once; the call may return fewer or more keys than COUNT).
    mutating func scan(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        guard let cursor = UInt64(String(bytes: arguments[1])) else { throw .invalidCursor }
        var pattern: GlobPattern?
        var count = 10
        var type: String?
        var index = 2
        while index < arguments.count {
            let option = Self.option(arguments[index])
            guard index + 1 < arguments.count else { throw .syntax }
            index += 1
            switch option {
            case "MATCH": pattern = GlobPattern(arguments[index])
            case "COUNT":
                let value = try Self.integer(arguments[index])
                guard value >= 1 else { throw .syntax }
                count = Int(min(value, Int64(Limits.scanCountMax)))
            case "TYPE": type = Self.lowercased(arguments[index])
            default: throw .syntax
            }
            index += 1
        }
        var start: [UInt8] = []
        if cursor != 0 {
            guard let position = scanCursors.position(of: cursor) else {
                throw .other(
                    "ERR invalid cursor: Cairn does not know cursor \(cursor) (it keeps the last \(Limits.scanCursorsMax) cursors, and forgets them on restart); start again from 0"
                )
            }
            start = position
        }
        let (entries, next) = try keyspace.scan(from: start, limit: count, now: now)
        var keys: [RESPValue] = []
        if type == nil || type == "string" {
            for entry in entries where pattern?.matches(entry.key) ?? true {
                keys.append(.bulk(entry.key))
            }
        }
        let nextCursor = next.map { scanCursors.remember($0) } ?? 0
        return .array([.bulk(String(nextCursor)), .array(keys)])
    }

    mutating func keys(_ pattern: [UInt8], now: Int64) throws(CommandError) -> RESPValue {
        let glob = GlobPattern(pattern)
        var keys: [RESPValue] = []
        var start: [UInt8]? = []
        while let position = start {
            let (entries, next) = try keyspace.scan(from: position, limit: 1024, now: now)
            for entry in entries where glob.matches(entry.key) { keys.append(.bulk(entry.key)) }
            start = next
        }
        return .array(keys)
    }

    /// A key chosen by jumping to a random point of the key order (uniform over gaps, not keys; Redis
    /// is not exactly uniform either).
    mutating func randomKey(now: Int64) throws(CommandError) -> RESPValue {
        guard keyspace.keyCount > 0 else { return .null }
        for _ in 0..<8 {
            var jump: [UInt8] = [StorageLayout.dataPrefix]
            jump.appendBigEndian(prng.next())
            let (entries, _) = try keyspace.scan(from: jump, limit: 16, now: now)
            if let entry = entries.first { return .bulk(entry.key) }
            let (fromStart, _) = try keyspace.scan(from: [], limit: 16, now: now)
            if let entry = fromStart.first { return .bulk(entry.key) }
        }
        return .null
    }

    /// FLUSHDB / FLUSHALL [ASYNC | SYNC], applied to one partition: the coordinator sends it to every
    /// partition (Cairn has one database, so both remove every key).
    mutating func flush(_ arguments: [[UInt8]]) throws(CommandError) -> RESPValue {
        if arguments.count > 2 { throw .syntax }
        if arguments.count == 2 {
            guard ["ASYNC", "SYNC"].contains(Self.option(arguments[1])) else { throw .syntax }
        }
        guard let partition = applyingPartition, let map else {
            preconditionFailure("FLUSHALL runs only as a replicated command of one partition")
        }
        let slots = map.slots(of: partition)
        do {
            try keyspace.removeSlots(Int(slots.lowerBound)...Int(slots.upperBound))
        } catch {
            throw .storage(error)
        }
        return .ok
    }
}
