/// The static description of one command: what COMMAND INFO and COMMAND DOCS report, and what the
/// dispatcher checks before a handler runs (arity).
///
/// A class, not a struct: every command looks its spec up, and copying a struct of seven strings and
/// arrays cost a retain and release of each (perf showed the copies under SET load).
public final class CommandSpec: Sendable {
    /// Lower-case name.
    public let name: String
    /// `name` as bytes, for lookups that do not build a string.
    public let nameBytes: [UInt8]
    /// Redis arity: N means exactly N words including the name; -N means at least N.
    public let arity: Int
    /// COMMAND INFO flags (`write`, `readonly`, `denyoom`, `fast`, ...).
    public let flags: [String]
    /// Position of the first key, the last key (-1: the last argument) and the step between keys.
    public let firstKey: Int
    public let lastKey: Int
    public let keyStep: Int
    /// COMMAND DOCS fields.
    public let group: String
    public let summary: String
    public let since: String
    public let complexity: String
    /// Subcommands, for container commands (CLIENT, CONFIG, COMMAND).
    public let subcommands: [CommandSpec]
    /// Position in `CommandTable.commands` (top-level commands only; -1 for subcommands), so per-command
    /// counters can live in an array instead of a dictionary keyed by name.
    public let index: Int
    /// Whether this command changes data (and so is refused where writes are not allowed).
    public let isWrite: Bool

    convenience init(
        _ name: String, _ arity: Int, _ flags: [String], keys: (Int, Int, Int) = (0, 0, 0), group: String,
        since: String, complexity: String = "O(1)", _ summary: String, subcommands: [CommandSpec] = []
    ) {
        self.init(
            name: name, arity: arity, flags: flags, keys: keys, group: group, summary: summary, since: since,
            complexity: complexity, subcommands: subcommands, index: -1)
    }

    private init(
        name: String, arity: Int, flags: [String], keys: (Int, Int, Int), group: String, summary: String,
        since: String, complexity: String, subcommands: [CommandSpec], index: Int
    ) {
        self.name = name
        self.nameBytes = Array(name.utf8)
        self.arity = arity
        self.flags = flags
        self.firstKey = keys.0
        self.lastKey = keys.1
        self.keyStep = keys.2
        self.group = group
        self.summary = summary
        self.since = since
        self.complexity = complexity
        self.subcommands = subcommands
        self.index = index
        self.isWrite = flags.contains("write")
    }

    /// The same spec at position `index` of the command table.
    fileprivate func indexed(_ index: Int) -> CommandSpec {
        CommandSpec(
            name: name, arity: arity, flags: flags, keys: (firstKey, lastKey, keyStep), group: group,
            summary: summary, since: since, complexity: complexity, subcommands: subcommands, index: index)
    }

    /// Whether `count` words (name included) satisfy the arity.
    public func accepts(argumentCount count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }

    /// Whether `bytes` spell this command's name, in any case.
    func isNamed(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == nameBytes.count else { return false }
        for position in 0..<bytes.count where CommandTable.lowercase(bytes[position]) != nameBytes[position] {
            return false
        }
        return true
    }
}

/// Every command Cairn understands, with Redis's arity, flags and key positions.
public enum CommandTable {
    static let one = (1, 1, 1)
    static let all = (1, -1, 1)

    public static let commands: [CommandSpec] = specs.enumerated().map { position, spec in spec.indexed(position) }

    /// Counter slots past the real commands: unknown commands and protocol errors.
    public static let unknownIndex = commands.count
    public static let protocolErrorIndex = commands.count + 1
    public static let counterSlots = commands.count + 2

    /// The metric label of a counter slot.
    public static func label(ofIndex index: Int) -> String {
        switch index {
        case unknownIndex: "unknown"
        case protocolErrorIndex: "protocol-error"
        default: commands[index].name
        }
    }

    static let specs: [CommandSpec] = [
        // Connection and server.
        CommandSpec(
            "ping", -1, ["fast"], group: "connection", since: "1.0.0", "Returns the server's liveliness response."),
        CommandSpec("echo", 2, ["fast"], group: "connection", since: "1.0.0", "Returns the given string."),
        CommandSpec(
            "hello", -1, ["noscript", "loading", "stale", "fast", "no_auth"], group: "connection", since: "6.0.0",
            "Handshakes with the server: protocol version, client name."),
        CommandSpec(
            "quit", -1, ["noscript", "loading", "stale", "fast", "no_auth"], group: "connection", since: "1.0.0",
            "Closes the connection."),
        CommandSpec(
            "select", 2, ["loading", "stale", "fast"], group: "connection", since: "1.0.0",
            "Changes the selected database (Cairn has database 0 only)."),
        CommandSpec(
            "client", -2, [], group: "connection", since: "2.4.0", complexity: "Depends on subcommand.",
            "A container for client connection commands.",
            subcommands: [
                CommandSpec(
                    "client|id", 2, ["noscript", "loading", "stale"], group: "connection", since: "5.0.0",
                    "Returns the unique client ID of the connection."),
                CommandSpec(
                    "client|setname", 3, ["noscript", "loading", "stale"], group: "connection", since: "2.6.9",
                    "Sets the connection name."),
                CommandSpec(
                    "client|getname", 2, ["noscript", "loading", "stale"], group: "connection", since: "2.6.9",
                    "Returns the name of the connection."),
                CommandSpec(
                    "client|setinfo", 4, ["noscript", "loading", "stale"], group: "connection", since: "7.2.0",
                    "Sets information specific to the client or connection."),
                CommandSpec(
                    "client|list", -2, ["admin", "noscript", "loading", "stale"], group: "connection", since: "2.4.0",
                    complexity: "O(N)", "Lists open connections."),
                CommandSpec(
                    "client|info", 2, ["noscript", "loading", "stale"], group: "connection", since: "6.2.0",
                    "Returns information about the connection."),
                CommandSpec(
                    "client|help", 2, ["loading", "stale"], group: "connection", since: "5.0.0",
                    "Returns helpful text about the different subcommands."),
            ]),
        CommandSpec(
            "command", -1, ["loading", "stale"], group: "server", since: "2.8.13", complexity: "O(N)",
            "Returns detailed information about all commands.",
            subcommands: [
                CommandSpec(
                    "command|count", 2, ["loading", "stale"], group: "server", since: "2.8.13",
                    "Returns a count of commands."),
                CommandSpec(
                    "command|info", -2, ["loading", "stale"], group: "server", since: "2.8.13", complexity: "O(N)",
                    "Returns information about one, multiple or all commands."),
                CommandSpec(
                    "command|docs", -2, ["loading", "stale"], group: "server", since: "7.0.0", complexity: "O(N)",
                    "Returns documentary information about one, multiple or all commands."),
                CommandSpec(
                    "command|list", -2, ["loading", "stale"], group: "server", since: "7.0.0", complexity: "O(N)",
                    "Returns a list of command names."),
                CommandSpec(
                    "command|help", 2, ["loading", "stale"], group: "server", since: "5.0.0",
                    "Returns helpful text about the different subcommands."),
            ]),
        CommandSpec(
            "config", -2, [], group: "server", since: "2.0.0", complexity: "Depends on subcommand.",
            "A container for server configuration commands.",
            subcommands: [
                CommandSpec(
                    "config|get", -3, ["admin", "noscript", "loading", "stale"], group: "server", since: "2.0.0",
                    complexity: "O(N)", "Returns the effective values of configuration parameters."),
                CommandSpec(
                    "config|help", 2, ["loading", "stale"], group: "server", since: "5.0.0",
                    "Returns helpful text about the different subcommands."),
            ]),
        CommandSpec(
            "info", -1, ["loading", "stale"], group: "server", since: "1.0.0",
            "Returns information and statistics about the server."),
        CommandSpec(
            "time", 1, ["loading", "stale", "fast"], group: "server", since: "2.6.0", "Returns the server time."),
        CommandSpec(
            "readonly", 1, ["loading", "stale", "fast"], group: "cluster", since: "3.0.0",
            "Lets this connection read from the replica it reached (possibly stale) instead of the leader."),
        CommandSpec(
            "readwrite", 1, ["loading", "stale", "fast"], group: "cluster", since: "3.0.0",
            "Makes reads on this connection linearizable again (the default)."),
        CommandSpec(
            "cluster", -2, [], group: "cluster", since: "3.0.0", complexity: "Depends on subcommand.",
            "A container for Redis Cluster commands.",
            subcommands: [
                CommandSpec(
                    "cluster|slots", 2, ["loading", "stale"], group: "cluster", since: "3.0.0",
                    complexity: "O(N) where N is the total number of partitions",
                    "Returns the mapping of hash slot ranges to nodes."),
                CommandSpec(
                    "cluster|shards", 2, ["loading", "stale"], group: "cluster", since: "7.0.0",
                    complexity: "O(N) where N is the total number of partitions",
                    "Returns the mapping of cluster slots to shards."),
                CommandSpec(
                    "cluster|nodes", 2, ["loading", "stale"], group: "cluster", since: "3.0.0",
                    complexity: "O(N) where N is the total number of nodes",
                    "Returns the cluster configuration for a node."),
                CommandSpec(
                    "cluster|info", 2, ["loading", "stale"], group: "cluster", since: "3.0.0",
                    "Returns information about the state of a node."),
                CommandSpec(
                    "cluster|keyslot", 3, ["stale"], group: "cluster", since: "3.0.0",
                    complexity: "O(N) where N is the number of bytes in the key",
                    "Returns the hash slot for a key."),
                CommandSpec(
                    "cluster|myid", 2, ["loading", "stale"], group: "cluster", since: "3.0.0",
                    "Returns the ID of a node."),
                CommandSpec(
                    "cluster|countkeysinslot", 3, ["stale"], group: "cluster", since: "3.0.0",
                    complexity: "O(N) where N is the number of keys in the slot",
                    "Returns the number of keys in a hash slot held by this node."),
            ]),
        CommandSpec(
            "dbsize", 1, ["readonly", "fast"], group: "server", since: "1.0.0",
            "Returns the number of keys in the database."),
        CommandSpec(
            "flushdb", -1, ["write"], group: "server", since: "1.0.0", complexity: "O(N)",
            "Removes all keys from the current database."),
        CommandSpec(
            "flushall", -1, ["write"], group: "server", since: "1.0.0", complexity: "O(N)",
            "Removes all keys from all databases."),

        // Cairn.
        CommandSpec(
            "idempotent", -4, ["write", "denyoom"], keys: (3, 3, 1), group: "generic", since: "cairn 0.1.0",
            "Runs a write command at most once per token: a retry with the same token within 10 minutes gets the first reply. IDEMPOTENT token command [arg ...]"
        ),

        // Strings.
        CommandSpec(
            "get", 2, ["readonly", "fast"], keys: one, group: "string", since: "1.0.0",
            "Returns the string value of a key."),
        CommandSpec(
            "set", -3, ["write", "denyoom"], keys: one, group: "string", since: "1.0.0",
            "Sets the string value of a key, with options for expiry, conditions (NX, XX, IFEQ, IFNE) and GET."),
        CommandSpec(
            "setnx", 3, ["write", "denyoom", "fast"], keys: one, group: "string", since: "1.0.0",
            "Sets the string value of a key only when the key doesn't exist."),
        CommandSpec(
            "setex", 4, ["write", "denyoom"], keys: one, group: "string", since: "2.0.0",
            "Sets the string value and expiration time of a key."),
        CommandSpec(
            "psetex", 4, ["write", "denyoom"], keys: one, group: "string", since: "2.6.0",
            "Sets both string value and expiration time in milliseconds of a key."),
        CommandSpec(
            "getset", 3, ["write", "denyoom", "fast"], keys: one, group: "string", since: "1.0.0",
            "Returns the previous string value of a key after setting it to a new value."),
        CommandSpec(
            "getdel", 2, ["write", "fast"], keys: one, group: "string", since: "6.2.0",
            "Returns the string value of a key after deleting the key."),
        CommandSpec(
            "getex", -2, ["write", "fast"], keys: one, group: "string", since: "6.2.0",
            "Returns the string value of a key after setting its expiration time."),
        CommandSpec(
            "mget", -2, ["readonly", "fast"], keys: all, group: "string", since: "1.0.0", complexity: "O(N)",
            "Atomically returns the string values of one or more keys."),
        CommandSpec(
            "mset", -3, ["write", "denyoom"], keys: (1, -1, 2), group: "string", since: "1.0.1", complexity: "O(N)",
            "Atomically creates or modifies the string values of one or more keys."),
        CommandSpec(
            "msetnx", -3, ["write", "denyoom"], keys: (1, -1, 2), group: "string", since: "1.0.1", complexity: "O(N)",
            "Atomically modifies the string values of one or more keys only when all keys don't exist."),
        CommandSpec(
            "incr", 2, ["write", "denyoom", "fast"], keys: one, group: "string", since: "1.0.0",
            "Increments the integer value of a key by one."),
        CommandSpec(
            "incrby", 3, ["write", "denyoom", "fast"], keys: one, group: "string", since: "1.0.0",
            "Increments the integer value of a key by a number."),
        CommandSpec(
            "decr", 2, ["write", "denyoom", "fast"], keys: one, group: "string", since: "1.0.0",
            "Decrements the integer value of a key by one."),
        CommandSpec(
            "decrby", 3, ["write", "denyoom", "fast"], keys: one, group: "string", since: "1.0.0",
            "Decrements a number from the integer value of a key."),
        CommandSpec(
            "incrbyfloat", 3, ["write", "denyoom", "fast"], keys: one, group: "string", since: "2.6.0",
            "Increment the floating point value of a key by a number."),
        CommandSpec(
            "append", 3, ["write", "denyoom", "fast"], keys: one, group: "string", since: "2.0.0",
            "Appends a string to the value of a key."),
        CommandSpec(
            "strlen", 2, ["readonly", "fast"], keys: one, group: "string", since: "2.2.0",
            "Returns the length of a string value."),
        CommandSpec(
            "getrange", 4, ["readonly"], keys: one, group: "string", since: "2.4.0", complexity: "O(N)",
            "Returns a substring of the string stored at a key."),
        CommandSpec(
            "setrange", 4, ["write", "denyoom"], keys: one, group: "string", since: "2.2.0",
            "Overwrites a part of a string value with another by an offset."),

        // Keys.
        CommandSpec(
            "del", -2, ["write"], keys: all, group: "generic", since: "1.0.0", complexity: "O(N)",
            "Deletes one or more keys."),
        CommandSpec(
            "unlink", -2, ["write", "fast"], keys: all, group: "generic", since: "4.0.0", complexity: "O(N)",
            "Asynchronously deletes one or more keys."),
        CommandSpec(
            "delex", -2, ["write", "fast"], keys: one, group: "generic", since: "8.4.0",
            "Deletes a key, optionally only if its value equals (IFEQ) or differs from (IFNE) a given value."),
        CommandSpec(
            "exists", -2, ["readonly", "fast"], keys: all, group: "generic", since: "1.0.0", complexity: "O(N)",
            "Determines whether one or more keys exist."),
        CommandSpec(
            "touch", -2, ["readonly", "fast"], keys: all, group: "generic", since: "3.2.1", complexity: "O(N)",
            "Returns the number of existing keys out of those specified after updating the time they were last accessed."
        ),
        CommandSpec(
            "type", 2, ["readonly", "fast"], keys: one, group: "generic", since: "1.0.0",
            "Determines the type of value stored at a key."),
        CommandSpec(
            "rename", 3, ["write"], keys: (1, 2, 1), group: "generic", since: "1.0.0",
            "Renames a key and overwrites the destination."),
        CommandSpec(
            "renamenx", 3, ["write", "fast"], keys: (1, 2, 1), group: "generic", since: "1.0.0",
            "Renames a key only when the target key name doesn't exist."),
        CommandSpec(
            "copy", -3, ["write", "denyoom"], keys: (1, 2, 1), group: "generic", since: "6.2.0",
            "Copies the value of a key to a new key."),
        CommandSpec(
            "expire", -3, ["write", "fast"], keys: one, group: "generic", since: "1.0.0",
            "Sets the expiration time of a key in seconds."),
        CommandSpec(
            "pexpire", -3, ["write", "fast"], keys: one, group: "generic", since: "2.6.0",
            "Sets the expiration time of a key in milliseconds."),
        CommandSpec(
            "expireat", -3, ["write", "fast"], keys: one, group: "generic", since: "1.2.0",
            "Sets the expiration time of a key to a Unix timestamp."),
        CommandSpec(
            "pexpireat", -3, ["write", "fast"], keys: one, group: "generic", since: "2.6.0",
            "Sets the expiration time of a key to a Unix milliseconds timestamp."),
        CommandSpec(
            "expiretime", 2, ["readonly", "fast"], keys: one, group: "generic", since: "7.0.0",
            "Returns the expiration time of a key as a Unix timestamp."),
        CommandSpec(
            "pexpiretime", 2, ["readonly", "fast"], keys: one, group: "generic", since: "7.0.0",
            "Returns the expiration time of a key as a Unix milliseconds timestamp."),
        CommandSpec(
            "ttl", 2, ["readonly", "fast"], keys: one, group: "generic", since: "1.0.0",
            "Returns the expiration time in seconds of a key."),
        CommandSpec(
            "pttl", 2, ["readonly", "fast"], keys: one, group: "generic", since: "2.6.0",
            "Returns the expiration time in milliseconds of a key."),
        CommandSpec(
            "persist", 2, ["write", "fast"], keys: one, group: "generic", since: "2.2.0",
            "Removes the expiration time of a key."),
        CommandSpec(
            "scan", -2, ["readonly"], group: "generic", since: "2.8.0", complexity: "O(1) per call, O(N) per iteration",
            "Iterates over the key names in the database."),
        CommandSpec(
            "keys", 2, ["readonly"], group: "generic", since: "1.0.0", complexity: "O(N)",
            "Returns all key names that match a pattern."),
        CommandSpec(
            "randomkey", 1, ["readonly"], group: "generic", since: "1.0.0",
            "Returns a random key name from the database."),
    ]

    /// Every name a session may report as its current command (`cmd=` in CLIENT LIST): commands,
    /// subcommands as `container|sub`, `unknown`, and `NULL` (nothing run yet), as Redis shows them.
    public static let labels: [String] =
        ["NULL", "unknown"] + commands.flatMap { [$0.name] + $0.subcommands.map(\.name) }

    /// Positions in `labels`, by name.
    public static let labelIndex: [String: Int] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })

    /// The top-level command `name` names, in any case (what a client sends as the first word), found
    /// without building a string: buckets by length and first letter, then a byte comparison.
    public static func lookup(_ name: [UInt8]) -> CommandSpec? {
        guard let first = name.first else { return nil }
        for spec in lookupBuckets[bucket(count: name.count, first: first)] where spec.isNamed(name) { return spec }
        return nil
    }

    /// The `labels` position of each top-level command, by `CommandSpec.index`.
    public static let labelOfCommand: [Int] = commands.map { labelIndex[$0.name]! }

    static func lowercase(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }

    private static func bucket(count: Int, first: UInt8) -> Int { min(count, 31) &* 32 &+ Int(lowercase(first) & 0x1F) }

    private static let lookupBuckets: [[CommandSpec]] = {
        var buckets = [[CommandSpec]](repeating: [], count: 32 * 32)
        for spec in commands { buckets[bucket(count: spec.nameBytes.count, first: spec.nameBytes[0])].append(spec) }
        return buckets
    }()

    /// Commands and subcommands by lower-case name (`client|setname` for a subcommand).
    public static let byName: [String: CommandSpec] = {
        var table: [String: CommandSpec] = [:]
        for spec in commands {
            table[spec.name] = spec
            for sub in spec.subcommands { table[sub.name] = sub }
        }
        return table
    }()
}
