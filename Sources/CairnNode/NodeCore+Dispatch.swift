import CairnCore
import CairnRESP
import CairnStorage

extension NodeCore {
    /// Runs one command and returns its reply. Arity is checked here, once, against the command table.
    mutating func execute(
        _ spec: CommandSpec?, _ arguments: [[UInt8]], client id: ClientID?, nowMilliseconds: Int64,
        closeAfter: inout Bool
    ) throws(CommandError) -> RESPValue {
        guard let spec else { throw .unknownCommand(name: arguments[0], arguments: Array(arguments.dropFirst())) }
        guard spec.accepts(argumentCount: arguments.count) else { throw .wrongArity(command: spec.name) }
        let name = spec.name
        switch name {
        // Connection and server.
        case "ping": return try ping(arguments)
        case "echo": return .bulk(arguments[1])
        case "hello", "client":
            guard let id, var session = sessions[id] else {
                preconditionFailure("HELLO and CLIENT run only for a connected client")
            }
            let reply =
                name == "hello" ? try hello(arguments, session: &session) : try client(arguments, session: &session)
            sessions[id] = session
            return reply
        case "quit":
            closeAfter = true
            return .ok
        case "select": return try select(arguments)
        case "command": return try command(arguments)
        case "config": return try config(arguments)
        case "info": return info(arguments)
        case "time":
            let micros = now.unixMicroseconds
            return .array([.bulk(String(micros / 1_000_000)), .bulk(String(micros % 1_000_000))])
        case "dbsize": return .integer(keyspace.keyCount)
        case "cluster": return try cluster(arguments)
        case "readonly", "readwrite":
            guard let id, sessions[id] != nil else { preconditionFailure("\(name) ran without a client session") }
            sessions[existing: id].isReadOnly = name == "readonly"
            return .ok
        case "flushdb", "flushall": return try flush(arguments)
        // Strings.
        case "get": return try get(arguments[1], now: nowMilliseconds)
        case "set": return try set(arguments, now: nowMilliseconds)
        case "setnx": return try setnx(arguments, now: nowMilliseconds)
        case "setex", "psetex": return try setex(name, arguments, now: nowMilliseconds)
        case "getset": return try getset(arguments, now: nowMilliseconds)
        case "getdel": return try getdel(arguments, now: nowMilliseconds)
        case "getex": return try getex(arguments, now: nowMilliseconds)
        case "mget": return try mget(arguments, now: nowMilliseconds)
        case "mset": return try mset(arguments, now: nowMilliseconds)
        case "msetnx": return try msetnx(arguments, now: nowMilliseconds)
        case "incr": return try incrementBy(arguments[1], 1, now: nowMilliseconds)
        case "decr": return try incrementBy(arguments[1], -1, now: nowMilliseconds)
        case "incrby", "decrby": return try incrby(name, arguments, now: nowMilliseconds)
        case "incrbyfloat": return try incrbyfloat(arguments, now: nowMilliseconds)
        case "append": return try append(arguments, now: nowMilliseconds)
        case "strlen": return .integer(Int64(try keyspace.get(arguments[1], now: nowMilliseconds)?.value.count ?? 0))
        case "getrange": return try getrange(arguments, now: nowMilliseconds)
        case "setrange": return try setrange(arguments, now: nowMilliseconds)
        // Keys.
        case "del", "unlink": return try del(arguments, now: nowMilliseconds)
        case "delex": return try delex(arguments, now: nowMilliseconds)
        case "exists", "touch": return try exists(arguments, now: nowMilliseconds)
        case "type": return .simple(try keyspace.get(arguments[1], now: nowMilliseconds) == nil ? "none" : "string")
        case "rename": return try rename(arguments, onlyIfAbsent: false, now: nowMilliseconds)
        case "renamenx": return try rename(arguments, onlyIfAbsent: true, now: nowMilliseconds)
        case "copy": return try copy(arguments, now: nowMilliseconds)
        case "expire", "pexpire", "expireat", "pexpireat": return try expire(name, arguments, now: nowMilliseconds)
        case "expiretime", "pexpiretime", "ttl", "pttl": return try ttl(name, arguments[1], now: nowMilliseconds)
        case "persist": return try persist(arguments[1], now: nowMilliseconds)
        case "scan": return try scan(arguments, now: nowMilliseconds)
        case "keys": return try keys(arguments[1], now: nowMilliseconds)
        case "randomkey": return try randomKey(now: nowMilliseconds)
        default:
            preconditionFailure("command '\(name)' is in the command table but has no handler")
        }
    }

    /// Checks a container command's subcommand against the table; returns its lower-case name.
    func subcommand(_ arguments: [[UInt8]], of container: String) throws(CommandError) -> String {
        let sub = Self.lowercased(arguments[1])
        guard let spec = CommandTable.byName["\(container)|\(sub)"] else {
            throw .unknownSubcommand(command: container, subcommand: arguments[1])
        }
        guard spec.accepts(argumentCount: arguments.count) else { throw .wrongArity(command: spec.name) }
        return sub
    }

    /// Parses an integer argument (Redis's `getLongLongFromObjectOrReply`).
    static func integer(_ argument: [UInt8]) throws(CommandError) -> Int64 {
        guard let value = Numbers.parseInt64(argument) else { throw .notInteger }
        return value
    }

    /// An option word in upper case, for matching flags such as `EX` or `NX`.
    static func option(_ argument: [UInt8]) -> String {
        String(decoding: argument.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 }, as: UTF8.self)
    }
}
