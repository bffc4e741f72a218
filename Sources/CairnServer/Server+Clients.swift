import CLinux
import CairnCore
import CairnNode
import CairnRESP
import Glibc

extension Server {
    static let maxClientsReply = Array("-ERR max number of clients reached\r\n".utf8)

    func acceptClients(_ listener: Int32) {
        for _ in 0..<Limits.acceptsPerTurnMax {
            let fd = accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            guard fd >= 0 else { return }
            guard clients.count < Limits.clientsMax else {
                _ = Glibc.write(fd, Self.maxClientsReply, Self.maxClientsReply.count)
                close(fd)
                step(.connectionRejected)
                continue
            }
            System.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            let id = ClientID(nextClientID)
            nextClientID += 1
            let connection = ClientConnection(descriptor: fd, id: id)
            clients[id] = connection
            register(fd, as: .client(connection))
            step(
                .connected(
                    id, address: System.address(of: fd, peer: true), localAddress: System.address(of: fd, peer: false),
                    fileDescriptor: fd))
        }
    }

    /// Accepts connections for the HTTP and peer ports, which the core does not see.
    func acceptOther(_ listener: Int32, _ make: (Int32) -> Registration) {
        for _ in 0..<Limits.acceptsPerTurnMax {
            let fd = accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            guard fd >= 0 else { return }
            guard registrations.count < Limits.clientsMax else {
                close(fd)
                continue
            }
            register(fd, as: make(fd))
        }
    }

    /// Client commands one loop turn may run, in time: past it, the rest wait for the next turn (their
    /// sockets stay readable; commands already read wait in `deferredInput`). Without it one turn ran
    /// every command that 16 deeply pipelining clients had sent (measured: 145 ms turns under 10x
    /// overload), so ticks, heartbeats and replies waited and followers started elections.
    static let clientWorkPerTurnNanoseconds: UInt64 = 10_000_000

    /// Whether this turn's client commands took the budget: the time spent running them so far
    /// (`clientWorkNanoseconds`, added up by `processInput`) plus the run in progress, if any.
    var isTurnBudgetSpent: Bool {
        let running = clientWorkStartedAt.map { System.monotonicNanoseconds() - $0 } ?? 0
        return clientWorkNanoseconds + running > Self.clientWorkPerTurnNanoseconds
    }

    /// Runs the commands that the last turn's budget left waiting, oldest first.
    func runDeferredInput() {
        guard !deferredInput.isEmpty else { return }
        let waiting = deferredInput
        deferredInput.removeAll(keepingCapacity: true)
        for connection in waiting where clients[connection.id] != nil {
            connection.isDeferred = false
            processInput(connection)
        }
    }

    /// Reads what the client sent (bounded per turn, so one client cannot starve the rest), then parses.
    func readClient(_ connection: ClientConnection) {
        guard !connection.readingPaused, !connection.waitingForReplies else { return }
        // Out of budget: the socket stays readable and epoll reports it again next turn.
        guard !connection.isDeferred, !isTurnBudgetSpent else { return }
        var total = 0
        while total < Limits.readBytesPerTurnMax {
            let count = scratch.withUnsafeMutableBytes { Glibc.read(connection.descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                connection.input.append(contentsOf: scratch[0..<count])
                total += count
                // A short read emptied the socket (epoll is level-triggered: later bytes are reported).
                if count < scratch.count { break }
            } else if count == 0 {
                closeClient(connection)
                return
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                break
            } else {
                closeClient(connection)
                return
            }
        }
        processInput(connection)
    }

    /// Parses and runs every whole command in the client's buffer, unless its replies pile up unread.
    func processInput(_ connection: ClientConnection) {
        guard !connection.waitingForReplies else { return }
        let started = System.monotonicNanoseconds()
        clientWorkStartedAt = started
        defer {
            clientWorkNanoseconds += System.monotonicNanoseconds() - started
            clientWorkStartedAt = nil
        }
        var parsed = 0
        parsing: while !connection.closeAfterFlush, clients[connection.id] != nil {
            parsed += 1
            if parsed % 16 == 0, isTurnBudgetSpent, state == .running {
                if !connection.isDeferred {
                    connection.isDeferred = true
                    deferredInput.append(connection)
                }
                break
            }
            if connection.pendingOutputBytes >= Limits.clientOutputBytesSoftMax {
                pauseReading(connection)
                break
            }
            if core.commandsAwaitingReply(of: connection.id) >= config.maxPipeline {
                // Backpressure: the client's further commands wait in its socket (and then in its own
                // buffers) until replies catch up, instead of piling up in this node's memory.
                connection.waitingForReplies = true
                awaitingReplies.append(connection)
                shellMetrics.add(Self.pipelinePauses, [])
                modify(connection.descriptor, events: connection.interest)
                break
            }
            switch RESPParser.parse(connection.input, from: connection.inputOffset) {
            case .command(let arguments, let consumed):
                connection.inputOffset += consumed
                if !arguments.isEmpty { step(.command(connection.id, arguments: arguments, wireBytes: consumed)) }
            case .needMoreBytes:
                if connection.input.count - connection.inputOffset > Limits.clientInputBytesMax {
                    connection.inputOffset = connection.input.count
                    step(.protocolError(connection.id, .commandTooLarge(limit: Limits.clientInputBytesMax)))
                }
                break parsing
            case .invalid(let error):
                connection.inputOffset = connection.input.count
                step(.protocolError(connection.id, error))
                break parsing
            }
        }
        if connection.inputOffset > 0 {
            connection.input.removeFirst(connection.inputOffset)
            connection.inputOffset = 0
        }
    }

    func pauseReading(_ connection: ClientConnection) {
        guard !connection.readingPaused else { return }
        connection.readingPaused = true
        connection.waitingForWritable = true
        modify(connection.descriptor, events: connection.interest)
    }

    /// Reads again from connections paused for replies once half their commands are answered.
    func resumeConnectionsAwaitingReplies() {
        guard !awaitingReplies.isEmpty, state == .running else { return }
        let waiting = awaitingReplies
        awaitingReplies.removeAll(keepingCapacity: true)
        for connection in waiting where clients[connection.id] != nil {
            guard core.commandsAwaitingReply(of: connection.id) <= config.maxPipeline / 2 else {
                awaitingReplies.append(connection)
                continue
            }
            connection.waitingForReplies = false
            modify(connection.descriptor, events: connection.interest)
            processInput(connection)
        }
    }

    /// Writes queued replies. Closes the client if asked to, or if it let too many bytes pile up.
    func flush(_ connection: ClientConnection) {
        while connection.pendingOutputBytes > 0 {
            let count = connection.output[connection.outputOffset...].withUnsafeBytes {
                Glibc.write(connection.descriptor, $0.baseAddress, $0.count)
            }
            if count > 0 {
                connection.outputOffset += count
            } else if count < 0, errno == EINTR {
                continue
            } else if count < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                break
            } else {
                closeClient(connection)
                return
            }
        }
        if connection.pendingOutputBytes == 0 {
            connection.output.removeAll(keepingCapacity: connection.output.count <= 64 * 1024)
            connection.outputOffset = 0
            if connection.closeAfterFlush {
                closeClient(connection)
                return
            }
            if connection.waitingForWritable {
                connection.waitingForWritable = false
                let resume = connection.readingPaused && state == .running
                if resume { connection.readingPaused = false }
                modify(connection.descriptor, events: connection.interest)
                if resume { processInput(connection) }
            }
            return
        }
        if connection.pendingOutputBytes > Limits.clientOutputBytesHardMax {
            logger.log(
                .warn, "closing client: it does not read its replies",
                [("client", connection.id.description), ("pending_bytes", String(connection.pendingOutputBytes))])
            closeClient(connection)
            return
        }
        if connection.outputOffset > 1024 * 1024 {
            connection.output.removeFirst(connection.outputOffset)
            connection.outputOffset = 0
        }
        if !connection.waitingForWritable {
            connection.waitingForWritable = true
            modify(connection.descriptor, events: connection.interest)
        }
    }

    func closeClient(_ connection: ClientConnection) {
        guard clients.removeValue(forKey: connection.id) != nil else { return }
        unregister(connection.descriptor)
        step(.disconnected(connection.id))
    }
}
