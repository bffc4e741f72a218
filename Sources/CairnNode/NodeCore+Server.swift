import CairnCore
import CairnRESP
import CairnStorage

/// Resource usage of the process, sampled by the shell (INFO memory and cpu).
public struct ProcessSample: Sendable, Equatable {
    public var residentBytes: UInt64
    public var cpuUserSeconds: Double
    public var cpuSystemSeconds: Double

    public init(residentBytes: UInt64, cpuUserSeconds: Double, cpuSystemSeconds: Double) {
        self.residentBytes = residentBytes
        self.cpuUserSeconds = cpuUserSeconds
        self.cpuSystemSeconds = cpuSystemSeconds
    }
}

extension NodeCore {
    mutating func ping(_ arguments: [[UInt8]]) throws(CommandError) -> RESPValue {
        guard arguments.count <= 2 else { throw .wrongArity(command: "ping") }
        return arguments.count == 2 ? .bulk(arguments[1]) : .simple("PONG")
    }

    /// HELLO [protover [AUTH username password] [SETNAME clientname]]
    mutating func hello(_ arguments: [[UInt8]], session: inout ClientSession) throws(CommandError) -> RESPValue {
        var version = session.protocolVersion
        if arguments.count >= 2 {
            guard let requested = Numbers.parseInt64(arguments[1]) else {
                throw .other("ERR Protocol version is not an integer or out of range")
            }
            guard let supported = RESPVersion(rawValue: Int(clamping: requested)) else {
                throw .other("NOPROTO unsupported protocol version")
            }
            version = supported
        }
        var name: [UInt8]?
        var index = 2
        while index < arguments.count {
            let option = Self.option(arguments[index])
            if option == "AUTH", index + 2 < arguments.count {
                // No users or passwords are configured: the default user accepts any password, as a
                // Redis server without `requirepass` does.
                guard Self.lowercased(arguments[index + 1]) == "default" else {
                    throw .other("WRONGPASS invalid username-password pair or user is disabled.")
                }
                index += 3
            } else if option == "SETNAME", index + 1 < arguments.count {
                try Self.validateName(arguments[index + 1])
                name = arguments[index + 1]
                index += 2
            } else {
                throw .other("ERR Syntax error in HELLO option '\(String(bytes: arguments[index]))'")
            }
        }
        if let name { session.identity = session.identity.with(name: name) }
        session.protocolVersion = version
        return .map([
            (.bulk("server"), .bulk("cairn")),
            (.bulk("version"), .bulk(CairnVersion.redisCompatible)),
            (.bulk("proto"), .integer(Int64(version.rawValue))),
            (.bulk("id"), .integer(Int64(session.id.rawValue))),
            (.bulk("mode"), .bulk("standalone")),
            (.bulk("role"), .bulk("master")),
            (.bulk("modules"), .array([])),
        ])
    }

    mutating func select(_ arguments: [[UInt8]]) throws(CommandError) -> RESPValue {
        guard let index = Numbers.parseInt64(arguments[1]), index >= Int32.min, index <= Int32.max else {
            throw .notInteger
        }
        guard index == 0 else { throw .dbIndexOutOfRange }
        return .ok
    }

    static func validateName(_ name: [UInt8]) throws(CommandError) {
        guard name.allSatisfy({ (33...126).contains($0) }) else {
            throw .other("ERR Client names cannot contain spaces, newlines or special characters.")
        }
        guard name.count <= Limits.clientNameBytesMax else {
            throw .other("ERR Client names are limited to \(Limits.clientNameBytesMax) bytes")
        }
    }

    mutating func client(_ arguments: [[UInt8]], session: inout ClientSession) throws(CommandError) -> RESPValue {
        switch try subcommand(arguments, of: "client") {
        case "id":
            return .integer(Int64(session.id.rawValue))
        case "setname":
            try Self.validateName(arguments[2])
            session.identity = session.identity.with(name: arguments[2])
            return .ok
        case "getname":
            return session.identity.name.isEmpty ? .null : .bulk(session.identity.name)
        case "setinfo":
            let attribute = Self.lowercased(arguments[2])
            guard attribute == "lib-name" || attribute == "lib-ver" else {
                throw .other("ERR Unrecognized option '\(String(bytes: arguments[2]))'")
            }
            guard arguments[3].allSatisfy({ (33...126).contains($0) }), arguments[3].count <= Limits.clientNameBytesMax
            else {
                throw .other("ERR \(attribute) cannot contain spaces, newlines or special characters.")
            }
            if attribute == "lib-name" {
                session.identity = session.identity.with(libraryName: arguments[3])
            } else {
                session.identity = session.identity.with(libraryVersion: arguments[3])
            }
            return .ok
        case "list":
            sessions[session.id] = session
            return .verbatim(format: "txt", text: try clientList(arguments))
        case "info":
            return .verbatim(format: "txt", text: clientLine(session) + "\n")
        default:
            return .array(
                [
                    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "ID", "    Return the ID of the current connection.",
                    "INFO", "    Return information about the current client connection.",
                    "LIST [TYPE normal] [ID <id> [<id> ...]]", "    Return information about client connections.",
                    "SETNAME <name>", "    Assign the name <name> to the current connection.",
                    "GETNAME", "    Return the name of the current connection.",
                    "SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
                    "HELP", "    Print this help.",
                ].map { RESPValue.simple($0) })
        }
    }

    /// CLIENT LIST [TYPE type] [ID id [id ...]]
    func clientList(_ arguments: [[UInt8]]) throws(CommandError) -> String {
        var ids: Set<UInt64>?
        var index = 2
        while index < arguments.count {
            let option = Self.option(arguments[index])
            if option == "TYPE", index + 1 < arguments.count {
                let type = Self.lowercased(arguments[index + 1])
                guard ["normal", "master", "replica", "slave", "pubsub"].contains(type) else {
                    throw .other("ERR Unknown client type '\(String(bytes: arguments[index + 1]))'")
                }
                if type != "normal" { ids = [] }
                index += 2
            } else if option == "ID", index + 1 < arguments.count {
                var wanted = Set<UInt64>()
                index += 1
                while index < arguments.count {
                    guard let id = UInt64(String(bytes: arguments[index])), id > 0 else {
                        throw .other("ERR Invalid client ID")
                    }
                    wanted.insert(id)
                    index += 1
                }
                ids = ids.map { $0.intersection(wanted) } ?? wanted
            } else {
                throw .syntax
            }
        }
        var text = ""
        for id in sessions.keys.sorted() where ids?.contains(id.rawValue) ?? true {
            text += clientLine(sessions[existing: id]) + "\n"
        }
        return text
    }

    /// One CLIENT LIST line, in Redis's field order. Buffer sizes are the shell's and are reported as 0.
    func clientLine(_ session: ClientSession) -> String {
        let identity = session.identity
        let age = (now.monotonicNanoseconds &- identity.connectedAt.monotonicNanoseconds) / 1_000_000_000
        let idle = (now.monotonicNanoseconds &- session.lastCommandAt.monotonicNanoseconds) / 1_000_000_000
        return
            "id=\(session.id.rawValue) addr=\(identity.address) laddr=\(identity.localAddress) fd=\(identity.fileDescriptor) "
            + "name=\(String(bytes: identity.name)) age=\(age) idle=\(idle) flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 "
            + "watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r "
            + "cmd=\(CommandTable.labels[session.lastCommand]) user=default redir=-1 resp=\(session.protocolVersion.rawValue) "
            + "lib-name=\(String(bytes: identity.libraryName)) lib-ver=\(String(bytes: identity.libraryVersion))"
    }

    // MARK: COMMAND

    mutating func command(_ arguments: [[UInt8]]) throws(CommandError) -> RESPValue {
        guard arguments.count > 1 else { return .array(CommandTable.commands.map(Self.commandInfo)) }
        switch try subcommand(arguments, of: "command") {
        case "count":
            return .integer(Int64(CommandTable.commands.count))
        case "info":
            let names = arguments.dropFirst(2).map { Self.lowercased($0) }
            if names.isEmpty { return .array(CommandTable.commands.map(Self.commandInfo)) }
            return .array(names.map { name in CommandTable.byName[name].map(Self.commandInfo) ?? .nullArray })
        case "docs":
            let names = arguments.dropFirst(2).map { Self.lowercased($0) }
            let specs = names.isEmpty ? CommandTable.commands : names.compactMap { CommandTable.byName[$0] }
            return .map(specs.map { (.bulk($0.name), Self.commandDocs($0)) })
        case "list":
            return .array(CommandTable.commands.map { .bulk($0.name) })
        default:
            return .array(
                [
                    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "(no subcommand)", "    Return details about all commands.",
                    "COUNT", "    Return the total number of commands.",
                    "INFO [<command-name> ...]", "    Return details about the given commands, or all of them.",
                    "DOCS [<command-name> ...]", "    Return documentation about the given commands, or all of them.",
                    "LIST", "    Return a list of all command names.",
                    "HELP", "    Print this help.",
                ].map { RESPValue.simple($0) })
        }
    }

    /// A COMMAND INFO entry: name, arity, flags, first key, last key, step, ACL categories, tips,
    /// key specs (empty: the first/last/step triple describes every Cairn command) and subcommands.
    static func commandInfo(_ spec: CommandSpec) -> RESPValue {
        var categories = ["@" + (spec.group == "generic" ? "keyspace" : spec.group)]
        categories.append(spec.isWrite ? "@write" : "@read")
        categories.append(spec.flags.contains("fast") ? "@fast" : "@slow")
        return .array([
            .bulk(spec.name), .integer(Int64(spec.arity)), .set(spec.flags.map { .simple($0) }),
            .integer(Int64(spec.firstKey)), .integer(Int64(spec.lastKey)), .integer(Int64(spec.keyStep)),
            .set(categories.map { .simple($0) }), .set([]), .array([]),
            .array(spec.subcommands.map(commandInfo)),
        ])
    }

    static func commandDocs(_ spec: CommandSpec) -> RESPValue {
        var fields: [(RESPValue, RESPValue)] = [
            (.bulk("summary"), .bulk(spec.summary)), (.bulk("since"), .bulk(spec.since)),
            (.bulk("group"), .bulk(spec.group)), (.bulk("complexity"), .bulk(spec.complexity)),
        ]
        if !spec.subcommands.isEmpty {
            fields.append((.bulk("subcommands"), .map(spec.subcommands.map { (.bulk($0.name), commandDocs($0)) })))
        }
        return .map(fields)
    }

    // MARK: CONFIG

    /// The parameters CONFIG GET reports, with Redis's names where Redis has one.
    var configParameters: [(String, String)] {
        let hz = 1000 / max(1, config.tickMilliseconds * max(1, config.expiryCycleTicks))
        return [
            ("bind", config.bindAddress), ("port", String(config.clientPort)), ("dir", config.dataDirectory),
            ("appendonly", "yes"), ("appendfsync", config.fsync.redisName), ("save", ""), ("databases", "1"),
            ("maxclients", String(Limits.clientsMax)), ("proto-max-bulk-len", String(Limits.respBulkBytesMax)),
            ("maxmemory", "0"), ("maxmemory-policy", "noeviction"), ("hz", String(hz)), ("timeout", "0"),
            ("cluster-enabled", "no"), ("cairn-cache-bytes", String(config.cacheBytes)),
            ("cairn-fsync", config.fsync.rawValue), ("cairn-peer-port", String(config.peerPort)),
            ("cairn-http-port", String(config.httpPort)),
        ]
    }

    mutating func config(_ arguments: [[UInt8]]) throws(CommandError) -> RESPValue {
        let sub = Self.lowercased(arguments[1])
        if sub == "set" || sub == "rewrite" || sub == "resetstat" {
            throw .other(
                "ERR CONFIG \(sub.uppercased()) is not supported by Cairn: settings are flags of 'cairn server'")
        }
        switch try subcommand(arguments, of: "config") {
        case "get":
            let patterns = arguments.dropFirst(2).map { GlobPattern(Self.lowercased($0).utf8.map { $0 }) }
            let matched = configParameters.filter { name, _ in patterns.contains { $0.matches(Array(name.utf8)) } }
            return .map(matched.map { (.bulk($0.0), .bulk($0.1)) })
        default:
            return .array(
                [
                    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
                    "HELP", "    Print this help.",
                ].map { RESPValue.simple($0) })
        }
    }
}
