import CairnCore
import CairnRESP
import CairnStorage

extension NodeCore {
    static let defaultInfoSections = [
        "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace",
    ]
    static let allInfoSections = defaultInfoSections.dropLast() + ["commandstats", "keyspace"]

    /// INFO [section ...]: Redis's text format, one `# Section` block each, with Redis's field names
    /// where Cairn has the same quantity and `cairn_` fields for its own.
    func info(_ arguments: [[UInt8]]) -> RESPValue {
        var wanted: [String] = []
        for argument in arguments.dropFirst() {
            let name = Self.lowercased(argument)
            switch name {
            case "default": wanted += Self.defaultInfoSections
            case "all", "everything": wanted += Self.allInfoSections
            default: wanted.append(name)
            }
        }
        if wanted.isEmpty { wanted = Self.defaultInfoSections }
        var seen = Set<String>()
        var blocks: [String] = []
        for section in wanted where seen.insert(section).inserted {
            guard let lines = infoSection(section) else { continue }
            let title = section.prefix(1).uppercased() + section.dropFirst()
            blocks.append("# \(title)\r\n" + lines.map { "\($0.0):\($0.1)\r\n" }.joined())
        }
        return .verbatim(format: "txt", text: blocks.joined(separator: "\r\n"))
    }

    func infoSection(_ name: String) -> [(String, String)]? {
        let uptimeSeconds = (now.monotonicNanoseconds &- startedAt.monotonicNanoseconds) / 1_000_000_000
        switch name {
        case "server":
            return [
                ("redis_version", CairnVersion.redisCompatible), ("cairn_version", CairnVersion.cairn),
                ("redis_mode", "standalone"), ("os", config.operatingSystem), ("arch_bits", "64"),
                ("process_id", String(config.processID)), ("run_id", config.runID),
                ("tcp_port", String(config.clientPort)), ("server_time_usec", String(now.unixMicroseconds)),
                ("uptime_in_seconds", String(uptimeSeconds)), ("uptime_in_days", String(uptimeSeconds / 86_400)),
                ("hz", configParameters.first { $0.0 == "hz" }?.1 ?? "10"), ("executable", config.executablePath),
                ("config_file", ""), ("cairn_seed", String(config.seed)),
            ]
        case "clients":
            return [
                ("connected_clients", String(sessions.count)), ("maxclients", String(Limits.clientsMax)),
                ("blocked_clients", "0"), ("tracking_clients", "0"),
            ]
        case "memory":
            return [
                ("used_memory", String(processSample.residentBytes)),
                ("used_memory_human", Self.humanBytes(processSample.residentBytes)),
                ("used_memory_rss", String(processSample.residentBytes)), ("maxmemory", "0"),
                ("maxmemory_policy", "noeviction"), ("cairn_cache_bytes", String(keyspace.cache.usedBytes)),
                ("cairn_cache_capacity_bytes", String(keyspace.cache.capacityBytes)),
                ("cairn_cache_entries", String(keyspace.cache.count)),
            ]
        case "persistence":
            return [
                ("loading", "0"), ("aof_enabled", "1"), ("aof_last_write_status", "ok"),
                ("rdb_changes_since_last_save", "0"), ("cairn_storage", "rocksdb"),
                ("cairn_fsync", config.fsync.rawValue),
                ("cairn_durable_batch", String(keyspace.durableThrough.rawValue)),
                ("cairn_pending_write_keys", String(keyspace.pendingKeyCount)),
            ]
        case "stats":
            return [
                ("total_connections_received", String(stats.connectionsReceived)),
                ("total_commands_processed", String(stats.commandsProcessed)),
                ("total_net_input_bytes", String(stats.inputBytes)),
                ("total_net_output_bytes", String(stats.outputBytes)),
                ("rejected_connections", String(stats.connectionsRejected)),
                ("expired_keys", String(keyspace.expiredKeys)),
                ("evicted_keys", "0"), ("keyspace_hits", String(stats.keyspaceHits)),
                ("keyspace_misses", String(stats.keyspaceMisses)), ("total_error_replies", String(stats.errorReplies)),
                ("cairn_protocol_errors", String(stats.protocolErrors)),
                ("cairn_cache_hits", String(keyspace.cache.hits)),
                ("cairn_cache_misses", String(keyspace.cache.misses)),
                ("cairn_cache_evictions", String(keyspace.cache.evictions)),
            ]
        case "replication":
            return [("role", "master"), ("connected_slaves", "0")]
        case "cpu":
            return [
                ("used_cpu_sys", Self.fixed(processSample.cpuSystemSeconds, digits: 6)),
                ("used_cpu_user", Self.fixed(processSample.cpuUserSeconds, digits: 6)),
            ]
        case "commandstats":
            let used = stats.commands.indices.filter { stats.commands[$0].calls > 0 }
                .sorted { CommandTable.label(ofIndex: $0) < CommandTable.label(ofIndex: $1) }
            return used.map { index in
                let command = CommandTable.label(ofIndex: index)
                let stat = stats.commands[index]
                let perCall = stat.calls == 0 ? 0 : Double(stat.microseconds) / Double(stat.calls)
                return (
                    "cmdstat_\(command)",
                    "calls=\(stat.calls),usec=\(stat.microseconds),usec_per_call=\(Self.fixed(perCall, digits: 2)),"
                        + "rejected_calls=0,failed_calls=\(stat.failedCalls)"
                )
            }
        case "keyspace":
            guard keyspace.keyCount > 0 else { return [] }
            return [("db0", "keys=\(keyspace.keyCount),expires=\(keyspace.expiringKeyCount),avg_ttl=0")]
        default:
            return nil
        }
    }

    /// Formats `value` with exactly `digits` decimals (printf's `%.Nf`, without Foundation).
    static func fixed(_ value: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return Numbers.formatHuman(value) }
        let whole = UInt64(scaled)
        let integerPart = whole / UInt64(scale)
        var fraction = String(whole % UInt64(scale))
        fraction = String(repeating: "0", count: max(0, digits - fraction.count)) + fraction
        let sign = value < 0 && whole != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(integerPart)" : "\(sign)\(integerPart).\(fraction)"
    }

    static func humanBytes(_ bytes: UInt64) -> String {
        let units = ["B", "K", "M", "G", "T"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes)B" : fixed(value, digits: 2) + units[unit]
    }
}
