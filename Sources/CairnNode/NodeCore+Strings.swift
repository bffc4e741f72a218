import CairnCore
import CairnRESP
import CairnStorage

/// The condition a conditional write puts on the key's current value.
enum WriteCondition: Equatable {
    case always
    case ifAbsent  // NX
    case ifPresent  // XX
    case ifEqual([UInt8])  // IFEQ: also requires the key to exist.
    case ifNotEqual([UInt8])  // IFNE: also requires the key to exist (Cairn never creates a key here).

    func allows(_ current: ValueRecord?) -> Bool {
        switch self {
        case .always: true
        case .ifAbsent: current == nil
        case .ifPresent: current != nil
        case .ifEqual(let expected): current.map { $0.value == expected } ?? false
        case .ifNotEqual(let unexpected): current.map { $0.value != unexpected } ?? false
        }
    }
}

/// What an expiry option asks for: nothing, keep the old time, drop it, or a new absolute time.
enum ExpiryOption: Equatable {
    case unchanged
    case keep  // KEEPTTL
    case persist  // PERSIST (GETEX)
    case at(Int64)  // Absolute Unix milliseconds.

    /// The expiry time a write leaves on a key that had `old`.
    func resolve(old: Int64?) -> Int64? {
        switch self {
        case .unchanged, .persist: nil
        case .keep: old
        case .at(let time): time
        }
    }
}

extension NodeCore {
    /// Parses `EX s | PX ms | EXAT s | PXAT ms` with its value, as Redis's `getExpireMillisecondsOrReply`.
    static func expiry(
        _ unit: String, _ argument: [UInt8], command: String, now: Int64
    ) throws(CommandError) -> ExpiryOption {
        let value = try integer(argument)
        guard value > 0 else { throw .invalidExpireTime(command: command) }
        let isSeconds = unit == "EX" || unit == "EXAT"
        if isSeconds, value > Int64.max / 1000 { throw .invalidExpireTime(command: command) }
        var milliseconds = isSeconds ? value * 1000 : value
        if unit == "EX" || unit == "PX" {
            let (sum, overflow) = milliseconds.addingReportingOverflow(now)
            if overflow { throw .invalidExpireTime(command: command) }
            milliseconds = sum
        }
        return .at(milliseconds)
    }

    /// Writes `value` with `expiry` over `previous`; an expiry time already past deletes the key.
    mutating func store(_ key: [UInt8], _ value: [UInt8], expiry: ExpiryOption, previous: ValueRecord?, now: Int64) {
        let record = ValueRecord(value: value, expiresAt: expiry.resolve(old: previous?.expiresAt))
        if record.isExpired(at: now) {
            if let previous { keyspace.delete(key, previous: previous) }
            return
        }
        keyspace.put(key, record, previous: previous)
    }

    mutating func get(_ key: [UInt8], now: Int64) throws(CommandError) -> RESPValue {
        let record = try keyspace.get(key, now: now)
        if record == nil { stats.keyspaceMisses += 1 } else { stats.keyspaceHits += 1 }
        return record.map { .bulk($0.value) } ?? .null
    }

    /// SET key value [NX | XX | IFEQ v | IFNE v] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
    mutating func set(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var condition = WriteCondition.always
        var expiry = ExpiryOption.unchanged
        var returnsOld = false
        var index = 3
        while index < arguments.count {
            let option = Self.option(arguments[index])
            let hasValue = index + 1 < arguments.count
            switch option {
            case "NX", "XX":
                guard condition == .always else { throw .syntax }
                condition = option == "NX" ? .ifAbsent : .ifPresent
            case "IFEQ", "IFNE":
                guard condition == .always, hasValue else { throw .syntax }
                index += 1
                condition = option == "IFEQ" ? .ifEqual(arguments[index]) : .ifNotEqual(arguments[index])
            case "IFDEQ", "IFDNE":
                throw .other(
                    "ERR \(option) (digest comparison) is not supported by Cairn; compare values with IFEQ or IFNE")
            case "GET":
                returnsOld = true
            case "KEEPTTL":
                guard expiry == .unchanged else { throw .syntax }
                expiry = .keep
            case "EX", "PX", "EXAT", "PXAT":
                guard expiry == .unchanged, hasValue else { throw .syntax }
                index += 1
                expiry = try Self.expiry(option, arguments[index], command: "set", now: now)
            default:
                throw .syntax
            }
            index += 1
        }
        let key = arguments[1]
        let previous = try keyspace.get(key, now: now)
        // Built only for SET ... GET: a `.bulk` reply is a heap allocation, once per SET when eager.
        let old: RESPValue = returnsOld ? previous.map { .bulk($0.value) } ?? .null : .null
        guard condition.allows(previous) else { return old }
        store(key, arguments[2], expiry: expiry, previous: previous, now: now)
        return returnsOld ? old : .ok
    }

    mutating func setnx(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        guard try keyspace.get(arguments[1], now: now) == nil else { return .integer(0) }
        keyspace.put(arguments[1], ValueRecord(value: arguments[2]), previous: nil)
        return .integer(1)
    }

    /// SETEX key seconds value, PSETEX key milliseconds value.
    mutating func setex(_ name: String, _ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        let expiry = try Self.expiry(name == "setex" ? "EX" : "PX", arguments[2], command: name, now: now)
        let previous = try keyspace.get(arguments[1], now: now)
        store(arguments[1], arguments[3], expiry: expiry, previous: previous, now: now)
        return .ok
    }

    mutating func getset(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        let previous = try keyspace.get(arguments[1], now: now)
        keyspace.put(arguments[1], ValueRecord(value: arguments[2]), previous: previous)
        return previous.map { .bulk($0.value) } ?? .null
    }

    mutating func getdel(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        guard let previous = try keyspace.get(arguments[1], now: now) else { return .null }
        keyspace.delete(arguments[1], previous: previous)
        return .bulk(previous.value)
    }

    /// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]
    mutating func getex(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var expiry = ExpiryOption.unchanged
        var index = 2
        while index < arguments.count {
            let option = Self.option(arguments[index])
            switch option {
            case "PERSIST":
                guard expiry == .unchanged else { throw .syntax }
                expiry = .persist
            case "EX", "PX", "EXAT", "PXAT":
                guard expiry == .unchanged, index + 1 < arguments.count else { throw .syntax }
                index += 1
                expiry = try Self.expiry(option, arguments[index], command: "getex", now: now)
            default:
                throw .syntax
            }
            index += 1
        }
        let key = arguments[1]
        guard let previous = try keyspace.get(key, now: now) else { return .null }
        switch expiry {
        case .unchanged, .keep:
            break
        case .persist:
            if previous.expiresAt != nil {
                keyspace.put(key, ValueRecord(value: previous.value), previous: previous)
            }
        case .at:
            store(key, previous.value, expiry: expiry, previous: previous, now: now)
        }
        return .bulk(previous.value)
    }

    mutating func mget(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var values: [RESPValue] = []
        values.reserveCapacity(arguments.count - 1)
        for key in arguments.dropFirst() {
            values.append(try keyspace.get(key, now: now).map { .bulk($0.value) } ?? .null)
        }
        return .array(values)
    }

    mutating func mset(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        guard arguments.count % 2 == 1 else { throw .wrongArity(command: "mset") }
        for pair in stride(from: 1, to: arguments.count, by: 2) {
            let previous = try keyspace.get(arguments[pair], now: now)
            keyspace.put(arguments[pair], ValueRecord(value: arguments[pair + 1]), previous: previous)
        }
        return .ok
    }

    mutating func msetnx(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        guard arguments.count % 2 == 1 else { throw .wrongArity(command: "msetnx") }
        for pair in stride(from: 1, to: arguments.count, by: 2) where try keyspace.get(arguments[pair], now: now) != nil
        {
            return .integer(0)
        }
        for pair in stride(from: 1, to: arguments.count, by: 2) {
            // A key may appear twice; the second write replaces the first.
            let previous = try keyspace.get(arguments[pair], now: now)
            keyspace.put(arguments[pair], ValueRecord(value: arguments[pair + 1]), previous: previous)
        }
        return .integer(1)
    }

    /// INCRBY key n, DECRBY key n.
    mutating func incrby(_ name: String, _ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        let amount = try Self.integer(arguments[2])
        if name == "decrby" {
            guard amount != Int64.min else { throw .other("ERR decrement would overflow") }
            return try incrementBy(arguments[1], -amount, now: now)
        }
        return try incrementBy(arguments[1], amount, now: now)
    }

    /// Adds `amount` to the integer in `key` (0 when absent), keeping its expiry time.
    mutating func incrementBy(_ key: [UInt8], _ amount: Int64, now: Int64) throws(CommandError) -> RESPValue {
        let previous = try keyspace.get(key, now: now)
        var current: Int64 = 0
        if let previous {
            guard let parsed = Numbers.parseInt64(previous.value) else { throw .notInteger }
            current = parsed
        }
        let (sum, overflow) = current.addingReportingOverflow(amount)
        if overflow { throw .overflow }
        keyspace.put(
            key, ValueRecord(value: Array(String(sum).utf8), expiresAt: previous?.expiresAt), previous: previous)
        return .integer(sum)
    }

    mutating func incrbyfloat(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        let key = arguments[1]
        guard let amount = Numbers.parseLongDouble(arguments[2]) else { throw .notFloat }
        let previous = try keyspace.get(key, now: now)
        var current: LongDouble = 0
        if let previous {
            guard let parsed = Numbers.parseLongDouble(previous.value) else { throw .notFloat }
            current = parsed
        }
        let sum = current + amount
        guard sum.isFinite else { throw .incrementNaN }
        let text = Array(Numbers.formatLongDouble(sum).utf8)
        keyspace.put(key, ValueRecord(value: text, expiresAt: previous?.expiresAt), previous: previous)
        return .bulk(text)
    }

    mutating func append(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        let key = arguments[1]
        let previous = try keyspace.get(key, now: now)
        let length = (previous?.value.count ?? 0) + arguments[2].count
        guard length <= Limits.valueBytesMax else { throw .stringTooLong }
        let value = (previous?.value ?? []) + arguments[2]
        keyspace.put(key, ValueRecord(value: value, expiresAt: previous?.expiresAt), previous: previous)
        return .integer(Int64(value.count))
    }

    /// GETRANGE key start end, with Redis's clamping of negative and out-of-range offsets.
    mutating func getrange(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        var start = try Self.integer(arguments[2])
        var end = try Self.integer(arguments[3])
        guard let value = try keyspace.get(arguments[1], now: now)?.value else { return .bulk([]) }
        let length = Int64(value.count)
        if start < 0, end < 0, start > end { return .bulk([]) }
        if start < 0 { start = length + start }
        if end < 0 { end = length + end }
        if start < 0 { start = 0 }
        if end < 0 { end = 0 }
        if end >= length { end = length - 1 }
        guard length > 0, start <= end else { return .bulk([]) }
        return .bulk(Array(value[Int(start)...Int(end)]))
    }

    /// SETRANGE key offset value: overwrites from `offset`, padding with zero bytes.
    mutating func setrange(_ arguments: [[UInt8]], now: Int64) throws(CommandError) -> RESPValue {
        let key = arguments[1]
        let offset = try Self.integer(arguments[2])
        guard offset >= 0 else { throw .offsetOutOfRange }
        let patch = arguments[3]
        let previous = try keyspace.get(key, now: now)
        if patch.isEmpty { return .integer(Int64(previous?.value.count ?? 0)) }
        guard offset <= Int64(Limits.valueBytesMax) - Int64(patch.count) else { throw .stringTooLong }
        var value = previous?.value ?? []
        let end = Int(offset) + patch.count
        if value.count < end { value.append(contentsOf: repeatElement(0, count: end - value.count)) }
        value.replaceSubrange(Int(offset)..<end, with: patch)
        keyspace.put(key, ValueRecord(value: value, expiresAt: previous?.expiresAt), previous: previous)
        return .integer(Int64(value.count))
    }
}
