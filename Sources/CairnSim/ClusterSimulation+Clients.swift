import CairnCore
import CairnNode
import CairnRESP

/// A simulated Redis client of the cluster: one connection to some node, one command at a time.
///
/// It knows nothing of partitions or leaders (any node answers any key). After a timeout, a crash of
/// its node, or sometimes after an error reply, it reconnects to another node. Its compare-and-set uses
/// the last value it saw of the key: `SET key value IFEQ seen`, or `SET key value NX` if it saw the key
/// absent (or never saw it).
final class ClusterClient {
    let id: Int
    /// The node it is connected to, and the connection's ID there.
    var node: Int?
    var connection: ClientID?
    /// The command waiting for its reply: its number and its place in the history.
    var current: (operation: Int, historyIndex: Int)?
    var operationCount = 0
    /// The last value seen of each key; nil inside: seen absent.
    var lastSeen: [[UInt8]: [UInt8]?] = [:]
    /// In the liveness phase, regular clients send nothing new.
    var isStopping = false
    /// For the final reader: the keys (by number) it has still to read; nil for the other clients.
    var finalKeys: [Int]?
    /// The current command if it carries a token: its words, resent (to another node) after an unknown
    /// outcome while attempts remain; the history records all attempts as one operation.
    var retry: (arguments: [[UInt8]], attemptsLeft: Int)?

    init(id: Int) {
        self.id = id
    }
}

extension ClusterSimulation {
    /// Starts a client's next command: picks a kind and a key, connects if needed, records the
    /// invocation, sends the command and arms a timeout.
    func issueOperation(client position: Int) {
        let client = clients[position]
        guard client.current == nil else { return }
        let keyNumber: Int
        if let keys = client.finalKeys {
            guard let first = keys.first else { return }
            keyNumber = first
        } else {
            guard !client.isStopping else { return }
            keyNumber = clientPrng.below(options.keyCount)
        }
        guard let (node, connection) = connection(of: position, orLater: .clientNext(client: position)) else { return }
        client.operationCount += 1
        let key = Array("k\(keyNumber)".utf8)
        let value = Array("c\(client.id).\(client.operationCount)".utf8)
        let roll = clientPrng.below(1000)
        var arguments: [[UInt8]]
        let kind: ClientOperation.Kind
        if client.finalKeys != nil || roll < options.readPermille {
            arguments = [Array("GET".utf8), key]
            kind = .read(observed: nil)
        } else if roll < options.readPermille + options.compareAndSetPermille {
            let expected = client.lastSeen[key] ?? nil
            arguments = [Array("SET".utf8), key, value]
            arguments += expected.map { [Array("IFEQ".utf8), $0] } ?? [Array("NX".utf8)]
            kind = .compareAndSet(expected: expected, new: value, succeeded: false)
        } else if roll < options.readPermille + options.compareAndSetPermille + options.deletePermille {
            arguments = [Array("DEL".utf8), key]
            kind = .delete
        } else {
            arguments = [Array("SET".utf8), key, value]
            kind = .write(value)
        }
        client.retry = nil
        if case .read = kind {
        } else if options.idempotentPermille > 0, idempotencyPrng.chance(options.idempotentPermille) {
            arguments = [Array("IDEMPOTENT".utf8), Array("t\(client.id).\(client.operationCount)".utf8)] + arguments
            client.retry = (arguments, ClusterOptions.idempotentAttemptsMax)
        }
        client.current = (client.operationCount, history.count)
        history.append(
            ClientOperation(client: client.id, key: key, kind: kind, invocationMs: historyInstant(), outcome: nil))
        send(arguments, client: position, node: node, connection: connection)
    }

    /// Sends the current command's words to the client's node and arms its timeout.
    func send(_ arguments: [[UInt8]], client position: Int, node: Int, connection: ClientID) {
        let client = clients[position]
        trace.record(
            nowMs,
            "client \(client.id) -> n\(node + 1) \(arguments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "))"
        )
        let delay = networkPrng.within(options.messageDelayMsMin...options.messageDelayMsMax)
        queue.push(
            .command(node: node, incarnation: nodes[node].incarnation, connection: connection, arguments: arguments),
            at: nowMs + delay)
        queue.push(
            .clientTimeout(client: position, operation: client.operationCount), at: nowMs + options.clientTimeoutMs)
    }

    /// The client's connection, opened to a random live node if it has none; nil (and `later` scheduled)
    /// while every node is down.
    func connection(of position: Int, orLater later: Event) -> (node: Int, connection: ClientID)? {
        if clients[position].node == nil {
            let up = nodes.filter(\.isUp).map(\.position)
            guard !up.isEmpty else {
                queue.push(later, at: nowMs + 5 * SwarmOptions.tickMs)
                return nil
            }
            connect(client: position, to: up[clientPrng.below(up.count)])
        }
        guard let node = clients[position].node, let connection = clients[position].connection else { return nil }
        return (node, connection)
    }

    /// Opens a connection from a client to a live node.
    func connect(client position: Int, to node: Int) {
        let connection = ClientID(nextConnection)
        nextConnection += 1
        connectionOwners[connection.rawValue] = position
        clients[position].node = node
        clients[position].connection = connection
        step(
            node,
            .connected(
                connection, address: "client\(clients[position].id):\(connection.rawValue)",
                localAddress: nodes[node].config.addresses.client,
                fileDescriptor: Int32(truncatingIfNeeded: connection.rawValue)))
    }

    /// Closes a client's connection (the client gave up, or its node crashed): a command still waiting
    /// has an unknown outcome, unless it carries a token and attempts remain: then it is sent again.
    /// The client reconnects, to a random live node, for its next command.
    func dropConnection(client position: Int, reason: String) {
        let client = clients[position]
        if let current = client.current {
            if let retry = client.retry, retry.attemptsLeft > 1 {
                client.retry = (retry.arguments, retry.attemptsLeft - 1)
                trace.record(nowMs, "client \(client.id) \(reason): retrying with its token")
                queue.push(.clientRetry(client: position), at: nowMs + clientPrng.within(0...options.thinkMsMax))
            } else {
                history[current.historyIndex].outcome = .unknown
                trace.record(nowMs, "client \(client.id) \(reason): \(history[current.historyIndex])")
                client.current = nil
                client.retry = nil
                queue.push(.clientNext(client: position), at: nowMs + clientPrng.within(0...options.thinkMsMax))
            }
        }
        if let connection = client.connection {
            connectionOwners.removeValue(forKey: connection.rawValue)
            if let node = client.node, nodes[node].isUp { step(node, .disconnected(connection)) }
        }
        client.node = nil
        client.connection = nil
    }

    /// No reply in time: the outcome is unknown; the client reconnects elsewhere.
    func timeOut(client position: Int, operation: Int) {
        guard let current = clients[position].current, current.operation == operation else { return }
        dropConnection(client: position, reason: "timed out")
    }

    /// Sends the current command again with its token, from a new connection to a random live node.
    func resendOperation(client position: Int) {
        let client = clients[position]
        guard let current = client.current, let retry = client.retry else { return }
        guard let (node, connection) = connection(of: position, orLater: .clientRetry(client: position)) else { return }
        client.operationCount += 1
        client.current = (client.operationCount, current.historyIndex)
        send(retry.arguments, client: position, node: node, connection: connection)
    }

    /// A reply arrived on a client's connection: complete its command in the history.
    func receiveReply(client position: Int, connection: ClientID, bytes: [UInt8]) {
        let client = clients[position]
        guard client.connection == connection, let current = client.current else { return }
        var reader = RESPReplyReader(bytes)
        guard let reply = reader.next() else {
            report(.linearizability, "client \(client.id): unreadable reply \(Text.bytes(bytes))")
            return
        }
        if case .error = reply, let retry = client.retry, retry.attemptsLeft > 1 {
            // Its outcome is unknown, and it carries a token: another attempt, elsewhere, settles it.
            dropConnection(client: position, reason: "error reply \(Text.bytes(bytes))")
            return
        }
        client.retry = nil
        var operation = history[current.historyIndex]
        let time = historyInstant()
        var isError = false
        switch (reply, operation.kind) {
        case (.error, .read):
            // A read that failed saw nothing and changed nothing.
            operation.outcome = .failed(atMs: time)
            isError = true
        case (.error, _):
            // TRYAGAIN or CLUSTERDOWN after a write was sent may or may not have been applied.
            operation.outcome = .unknown
            isError = true
        case (.bulk(let value), .read):
            operation.kind = .read(observed: value)
            operation.outcome = .ok(atMs: time)
            client.lastSeen[operation.key] = .some(value)
        case (.null, .read):
            operation.outcome = .ok(atMs: time)
            client.lastSeen[operation.key] = .some(nil)
        case (.simple("OK"), .write(let value)):
            operation.outcome = .ok(atMs: time)
            client.lastSeen[operation.key] = .some(value)
        case (.simple("OK"), .compareAndSet(let expected, let new, _)):
            operation.kind = .compareAndSet(expected: expected, new: new, succeeded: true)
            operation.outcome = .ok(atMs: time)
            client.lastSeen[operation.key] = .some(new)
        case (.null, .compareAndSet):
            operation.outcome = .ok(atMs: time)
        case (.integer, .delete):
            operation.outcome = .ok(atMs: time)
            client.lastSeen[operation.key] = .some(nil)
        default:
            report(
                .linearizability,
                "client \(client.id): reply \(Text.bytes(bytes)) does not fit \(operation)")
            return
        }
        history[current.historyIndex] = operation
        trace.record(
            nowMs,
            "client \(client.id) <- \(isError ? Text.bytes(bytes) : "") \(operation)")
        client.current = nil
        if client.finalKeys != nil, !isError {
            client.finalKeys?.removeFirst()
        }
        // After an error the node may be cut off: sometimes try another one (always, for the final reader).
        if isError, client.finalKeys != nil || clientPrng.chance(500) {
            dropConnection(client: position, reason: "error reply")
        }
        queue.push(.clientNext(client: position), at: nowMs + clientPrng.within(0...options.thinkMsMax))
    }
}
