import CairnRESP
import CairnResilience

/// The token bucket that every connection from one client address shares (`--client-rate-limit`).
/// It exists while that address has a connection open, and after its last one closes until it is
/// full again (at most a second), so reconnecting does not refill it; the table is bounded by the
/// connections and the connections closed within the last second.
struct ClientBucket {
    var limiter: RateLimiter
    var connections: Int
}

extension NodeCore {
    /// The host part of a connection's `host:port` address: the key of its rate limit.
    static func clientHost(_ address: String) -> String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        return String(address[..<colon])
    }

    mutating func clientConnected(address: String) {
        guard config.clientCommandsPerSecond > 0 else { return }
        let host = Self.clientHost(address)
        if clientBuckets[host] == nil {
            let rate = UInt64(config.clientCommandsPerSecond)
            clientBuckets[host] = ClientBucket(
                limiter: RateLimiter(tokensPerSecond: rate, burst: rate, now: MonotonicTime(now)), connections: 0)
        }
        clientBuckets[host]!.connections += 1
    }

    mutating func clientDisconnected(address: String) {
        let host = Self.clientHost(address)
        guard clientBuckets[host] != nil else { return }
        clientBuckets[host]!.connections = max(0, clientBuckets[host]!.connections - 1)
    }

    /// Forgets the buckets of addresses with no connection once they are full again (on every tick).
    mutating func pruneClientBuckets() {
        guard !clientBuckets.isEmpty else { return }
        let time = MonotonicTime(now)
        for (host, bucket) in clientBuckets
        where bucket.connections == 0 && bucket.limiter.availableTokens(now: time) >= bucket.limiter.burst {
            clientBuckets.removeValue(forKey: host)
        }
    }

    /// For each command (by `CommandSpec.index`): which latency admission it belongs to, 0 for reads
    /// and 1 for writes of the routed commands, -1 for commands answered locally. Reads and writes
    /// queue in different places (a write waits for its entry to commit, a read for a leadership
    /// check), so a backlog of writes must not make the node refuse reads, or the reverse.
    static let admissionClass: [Int] = CommandTable.commands.map { spec in
        isRouted(spec) ? (spec.isWrite ? 1 : 0) : -1
    }

    static let admissionClassNames = ["reads", "writes"]

    /// A routed command completed without an error: its time from arrival to reply feeds the latency
    /// admission of its class.
    mutating func noteCompletion(_ command: Int, isError: Bool, startedAt: UInt64) {
        guard !latencyAdmission.isEmpty, !isError, command < Self.admissionClass.count else { return }
        let kind = Self.admissionClass[command]
        guard kind >= 0 else { return }
        latencyAdmission[kind].completed(
            latency: TimeSpan(nanoseconds: now.monotonicNanoseconds &- startedAt), now: MonotonicTime(now),
            backlog: commandsAwaitingReply)
    }

    /// Why a command that must wait for the cluster is refused at once, or nil to admit it: the node
    /// holds `--max-inflight` commands already, its reads or writes queue longer than
    /// `--overload-latency`, or the client's address used its `--client-rate-limit`. Refusing now,
    /// cheaply and clearly, beats timing out later.
    mutating func admissionRefusal(_ id: ClientID, command: Int) -> String? {
        if commandsAwaitingReply > config.maxCommandsInFlight {
            stats.commandsRefused += 1
            return "TRYAGAIN node overloaded: more than \(config.maxCommandsInFlight) commands wait for replies here "
                + "(--max-inflight); retry with backoff"
        }
        // The client's own limit before the node's shared allowance, so that a client over its limit
        // does not spend other clients' share.
        if config.clientCommandsPerSecond > 0, case let host = Self.clientHost(sessions[existing: id].identity.address),
            clientBuckets[host] != nil,
            case .denied(let retryAfter) = clientBuckets[host]!.limiter.tryAcquire(now: MonotonicTime(now))
        {
            stats.commandsRateLimited += 1
            let milliseconds = (retryAfter.nanoseconds + 999_999) / 1_000_000
            return "TRYAGAIN rate limited: clients from \(host) may send \(config.clientCommandsPerSecond) commands "
                + "per second to this node (--client-rate-limit); retry in \(milliseconds) ms"
        }
        if !latencyAdmission.isEmpty, case let kind = Self.admissionClass[command], kind >= 0,
            !latencyAdmission[kind].admit(now: MonotonicTime(now), backlog: commandsAwaitingReply)
        {
            let waited = (latencyAdmission[kind].lastFastest?.nanoseconds ?? 0) / 1_000_000
            return "TRYAGAIN node overloaded: even the fastest \(Self.admissionClassNames[kind]) waited \(waited) ms "
                + "here (target \(config.overloadLatencyMilliseconds) ms, --overload-latency); retry with backoff"
        }
        return nil
    }
}
