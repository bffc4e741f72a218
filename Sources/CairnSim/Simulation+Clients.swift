import CairnCore
import CairnRaft

extension Simulation {
    /// Starts a client's next operation: picks a kind and a key, records the invocation, sends the
    /// request to the node the client believes leads, and arms a timeout.
    func issueOperation(client position: Int) {
        let client = clients[position]
        guard !client.isDone, client.current == nil else { return }
        client.operationCount += 1
        let key = Array("k\(clientPrng.below(options.keyCount))".utf8)
        let value = Array("c\(client.id).\(client.operationCount)".utf8)
        let roll = clientPrng.below(1000)
        let command: KVCommand?
        let kind: ClientOperation.Kind
        if client.isFinal {
            command = .write(key: key, value: value)
            kind = .write(value)
        } else if roll < options.readPermille {
            command = nil
            kind = .read(observed: nil)
        } else if roll < options.readPermille + options.compareAndSetPermille {
            let expected = client.lastSeen[key]
            command = .compareAndSet(key: key, expected: expected, new: value)
            kind = .compareAndSet(expected: expected, new: value, succeeded: false)
        } else if roll < options.readPermille + options.compareAndSetPermille + options.deletePermille {
            command = .delete(key: key)
            kind = .delete
        } else {
            command = .write(key: key, value: value)
            kind = .write(value)
        }
        nextRequest += 1
        let request = RequestID(rawValue: nextRequest)
        client.current = (request, history.count)
        history.append(ClientOperation(client: client.id, key: key, kind: kind, invocationMs: nowMs, outcome: nil))
        trace.record(
            nowMs,
            "client \(client.id) -> n\(client.target + 1) \(request) \(command.map(\.description) ?? "get \(Text.bytes(key))")"
        )
        let delay = networkPrng.within(options.messageDelayMsMin...options.messageDelayMsMax)
        let message = ClientRequest(client: client.id, request: request, key: key, command: command)
        queue.push(.request(node: client.target, message), at: nowMs + delay)
        queue.push(.clientTimeout(client: position, request: request), at: nowMs + options.requestTimeoutMs)
    }

    /// A node answered: complete the operation in the history, learn from it, and plan the next one.
    /// An answer to a request the client already gave up on is ignored (it stays unknown).
    func receiveResponse(client position: Int, request: RequestID, result: ClientResult) {
        let client = clients[position]
        guard let current = client.current, current.request == request else { return }
        var operation = history[current.historyIndex]
        switch (result, operation.kind) {
        case (.failed(let hint), _):
            operation.outcome = .failed(atMs: nowMs)
            client.target = hint.map { Int($0.rawValue) - 1 } ?? clientPrng.below(nodes.count)
        case (.value(let observed), .read):
            operation.kind = .read(observed: observed)
            operation.outcome = .ok(atMs: nowMs)
            client.lastSeen[operation.key] = observed
        case (.swapped(let swapped), .compareAndSet(let expected, let new, _)):
            operation.kind = .compareAndSet(expected: expected, new: new, succeeded: swapped)
            operation.outcome = .ok(atMs: nowMs)
            if swapped { client.lastSeen[operation.key] = new }
        case (.done, .write(let value)):
            operation.outcome = .ok(atMs: nowMs)
            client.lastSeen[operation.key] = value
            if client.isFinal { client.isDone = true }
        case (.done, .delete):
            operation.outcome = .ok(atMs: nowMs)
            client.lastSeen[operation.key] = nil
        default:
            preconditionFailure("client \(client.id): answer \(result) does not fit \(operation)")
        }
        history[current.historyIndex] = operation
        trace.record(nowMs, "client \(client.id) <- \(request) \(operation)")
        client.current = nil
        queue.push(
            .clientNext(client: position), at: nowMs + clientPrng.within(options.thinkMsMin...options.thinkMsMax))
    }

    /// No answer in time: the outcome is unknown; try another node next, or the same one again.
    func timeOut(client position: Int, request: RequestID) {
        let client = clients[position]
        guard let current = client.current, current.request == request else { return }
        history[current.historyIndex].outcome = .unknown
        trace.record(nowMs, "client \(client.id) timeout \(request) \(history[current.historyIndex])")
        client.current = nil
        if !clientPrng.chance(options.retrySameNodePermille) {
            client.target = (client.target + 1 + clientPrng.below(nodes.count - 1)) % nodes.count
        }
        queue.push(
            .clientNext(client: position), at: nowMs + clientPrng.within(options.thinkMsMin...options.thinkMsMax))
    }
}
