import CairnCore
import CairnPlacement
import CairnRESP
import CairnRaft
import CairnResilience
import CairnStorage

/// A command split over several partitions (MGET, MSET, DEL, ... with keys in several partitions, or
/// FLUSHALL): its parts run independently, and the reply is merged once every part answered.
struct Split: Sendable {
    enum Merge: Sendable {
        /// MGET: each part's array goes back to the positions its keys had.
        case positions([[Int]], count: Int)
        /// DEL, UNLINK, EXISTS, TOUCH: the integers add up.
        case sum
        /// MSET, FLUSHALL: OK once every part said OK.
        case allOK
    }
    var waiter: Waiter
    var merge: Merge
    var replies: [RESPValue?]
}

/// Where a peer message goes: a known node, or an address (a node that has not joined yet).
public enum PeerTarget: Hashable, Sendable, CustomStringConvertible {
    case node(NodeID)
    case address(String)

    public var description: String {
        switch self {
        case .node(let id): "node \(id)"
        case .address(let address): address
        }
    }
}

/// One envelope for the shell to frame and send.
public struct PeerSend: Sendable, Equatable {
    public var to: PeerTarget
    public var payload: [UInt8]
}

extension NodeCore {
    /// The commands whose keys may sit in different partitions: split, run per partition, merged.
    static let splittable: Set<String> = ["mget", "mset", "del", "unlink", "exists", "touch"]
    /// By command table index: whether `dispatch` sends the command through the log (FLUSHALL's parts
    /// too: one per partition).
    static let dispatchesAsWrite: [Bool] = CommandTable.commands.map {
        $0.isWrite || $0.name == "flushall" || $0.name == "flushdb"
    }
    /// By command table index: whether `route` checks the command's words before routing it.
    static let routesSpecially: [Bool] = CommandTable.commands.map {
        ["idempotent", "mset", "msetnx", "flushall", "flushdb"].contains($0.name)
    }

    /// Routes a data command: to the local leader, to the leader elsewhere, split over partitions, or
    /// parked until a leader is known.
    mutating func route(_ spec: CommandSpec, _ arguments: [[UInt8]], waiter: Waiter, into output: inout NodeOutput) {
        guard let map else {
            finish(waiter, error: "CLUSTERDOWN this node has not joined a cluster yet", into: &output)
            return
        }
        if isRemoved {
            // Its map is no longer kept current (peers stop talking to a removed node).
            finish(
                waiter, error: "CLUSTERDOWN this node was removed from the cluster; connect to another node",
                into: &output)
            return
        }
        // The common case first: a command with one key (GET, SET, INCR, ...) goes to its key's
        // partition without building lists of keys and partitions or comparing names (callgrind: a
        // tenth of the loop's instructions under pipelined GETs).
        if spec.firstKey > 0, spec.lastKey == spec.firstKey, spec.firstKey < arguments.count, spec.index >= 0,
            !Self.routesSpecially[spec.index]
        {
            dispatch(waiter, partition: map.partition(ofKey: arguments[spec.firstKey]), into: &output)
            return
        }
        if spec.name == "idempotent", let problem = Self.idempotentProblem(arguments, map: map) {
            finish(waiter, error: problem, into: &output)
            return
        }
        let keys = Self.keyPositions(spec, argumentCount: arguments.count)
        if spec.name == "mset" || spec.name == "msetnx", arguments.count % 2 == 0 {
            finish(waiter, error: CommandError.wrongArity(command: spec.name).description, into: &output)
            return
        }
        if spec.name == "flushall" || spec.name == "flushdb" {
            if arguments.count > 2 || (arguments.count == 2 && !["ASYNC", "SYNC"].contains(Self.option(arguments[1]))) {
                finish(waiter, error: CommandError.syntax.description, into: &output)
                return
            }
            var parts: [(Int, [[UInt8]])] = []
            for partition in 0..<map.partitionCount { parts.append((partition, [Array("flushall".utf8)])) }
            startSplit(waiter, parts: parts, merge: .allOK, into: &output)
            return
        }
        guard let first = keys.first else {
            finish(waiter, error: "ERR command has no key to route by", into: &output)
            return
        }
        let firstPartition = map.partition(ofKey: arguments[first])
        var byPartition: [Int: [Int]] = [:]
        for position in keys {
            byPartition[map.partition(ofKey: arguments[position]), default: []].append(position)
        }
        if byPartition.count == 1 {
            dispatch(waiter, partition: firstPartition, into: &output)
            return
        }
        guard Self.splittable.contains(spec.name) else {
            finish(
                waiter,
                error:
                    "CROSSSLOT Keys in request don't hash to the same slot (they are in different partitions; use a {hash tag} to keep them together)",
                into: &output)
            return
        }
        let step = spec.name == "mset" ? 2 : 1
        var parts: [(Int, [[UInt8]])] = []
        var positions: [[Int]] = []
        for partition in byPartition.keys.sorted() {
            var words = [arguments[0]]
            var places: [Int] = []
            for position in byPartition[partition]! {
                words.append(contentsOf: arguments[position..<(position + step)])
                places.append((position - 1) / step)
            }
            parts.append((partition, words))
            positions.append(places)
        }
        let merge: Split.Merge =
            switch spec.name {
            case "mget": .positions(positions, count: keys.count)
            case "mset": .allOK
            default: .sum
            }
        startSplit(waiter, parts: parts, merge: merge, into: &output)
    }

    /// The argument positions of a command's keys, from the command table.
    static func keyPositions(_ spec: CommandSpec, argumentCount: Int) -> [Int] {
        guard spec.firstKey > 0 else { return [] }
        let last = spec.lastKey < 0 ? argumentCount + spec.lastKey : spec.lastKey
        guard last >= spec.firstKey, last < argumentCount else {
            return spec.firstKey < argumentCount ? [spec.firstKey] : []
        }
        return Array(stride(from: spec.firstKey, through: last, by: max(1, spec.keyStep)))
    }

    mutating func startSplit(
        _ waiter: Waiter, parts: [(Int, [[UInt8]])], merge: Split.Merge, into output: inout NodeOutput
    ) {
        let id = nextRequestID()
        splits[id] = Split(waiter: waiter, merge: merge, replies: Array(repeating: nil, count: parts.count))
        for (index, (partition, words)) in parts.enumerated() {
            var part = waiter
            part.origin = .part(split: id, index: index)
            part.arguments = words
            dispatch(part, partition: partition, into: &output)
        }
    }

    mutating func completePart(split id: UInt64, index: Int, _ reply: RESPValue, into output: inout NodeOutput) {
        guard var split = splits[id] else { return }
        split.replies[index] = reply
        guard split.replies.allSatisfy({ $0 != nil }) else {
            splits[id] = split
            return
        }
        splits.removeValue(forKey: id)
        let replies = split.replies.map { $0! }
        if let error = replies.first(where: \.isError) {
            finish(split.waiter, error, into: &output)
            return
        }
        let merged: RESPValue
        switch split.merge {
        case .sum:
            var total: Int64 = 0
            for case .integer(let value) in replies { total += value }
            merged = .integer(total)
        case .allOK:
            merged = .ok
        case .positions(let positions, let count):
            var values = [RESPValue](repeating: .null, count: count)
            for (part, reply) in replies.enumerated() {
                guard case .array(let items) = reply else { continue }
                for (offset, position) in positions[part].enumerated() where offset < items.count {
                    values[position] = items[offset]
                }
            }
            merged = .array(values)
        }
        finish(split.waiter, merged, into: &output)
    }

    /// Sends a single-partition command where it can run: proposed or read here if this node leads the
    /// partition, forwarded to the leader it knows of otherwise, parked until a leader is known.
    mutating func dispatch(_ waiter: Waiter, partition: Int, hint: NodeID? = nil, into output: inout NodeOutput) {
        let group = Self.group(ofPartition: partition)
        let isWrite = Self.dispatchesAsWrite[waiter.command]
        if groups.contains(group) {
            // Writes waiting for the turn's end go first when this command will not join them: a read
            // must see them, and a command sent elsewhere (this node no longer leads) must not
            // overtake them. (`raft.role`, not `isLeader`: a computed property read through `existing:`
            // copies the whole group; see `SlotTable`.)
            if !groups[existing: group].unproposed.isEmpty, !isWrite || groups[existing: group].raft.role != .leader {
                flushProposals(group, into: &output)
            }
            let isLeader = groups[existing: group].raft.role == .leader
            if !isWrite,
                isStaleRead(waiter) || (config._injectedBug == .followerServesLinearizableRead && !isLeader)
            {
                serveLocally(waiter, into: &output)
                return
            }
            if isLeader {
                if isWrite {
                    let bytes = waiter.arguments.reduce(0) { $0 + $1.count + 4 }
                    if groups[existing: group].unproposedBytes + bytes > Limits.proposalBatchBytesMax
                        || groups[existing: group].unproposed.count >= Limits.proposalBatchCommandsMax
                    {
                        flushProposals(group, into: &output)
                    }
                    if groups[existing: group].unproposed.isEmpty {
                        groupsWithUnproposed.append(group)
                        // The list leaves with the proposal: sized once per turn rather than grown from one.
                        groups[existing: group].unproposed.reserveCapacity(8)
                    }
                    groups[existing: group].unproposed.append(waiter)
                    groups[existing: group].unproposedBytes += bytes
                } else if groups[existing: group].canReadNow() {
                    serveLocally(waiter, into: &output)
                } else {
                    let request = RequestID(rawValue: nextRequestID())
                    var read = waiter
                    read.minimumIndex = groups[existing: group].raft.lastIndex
                    groups[existing: group].reads[request] = read
                    stepGroup(group, .readIndex(request: request), into: &output)
                }
                return
            }
        }
        // The first node named that is not this one. A hint naming this node is stale (it would have
        // served the command above): following it parked the command until its deadline, 5 s
        // (the rebalance benchmark's stalls when leadership moved to a new node: a replica removed
        // from a group heard "the leader is you" from the new member, which had not caught up).
        // Then the other replicas the map places it on: a copy that is not a voter yet (a new node
        // whose move waits for its turn) knows no leader and hears of none until its move starts;
        // parking there stalled commands for their whole deadline. A replica that does not lead
        // answers with the leader it knows.
        let known = groups.contains(group) ? groups[existing: group].raft.leader : nil
        let named = [hint, known, leaderHints[partition]].lazy.compactMap { $0 }.first { $0 != identity }
        if let leader = named ?? map?.placement[partition].first(where: { $0 != identity }) {
            forward(waiter, partition: partition, to: leader, into: &output)
        } else {
            parked.append((partition, waiter))
        }
    }

    /// A proposal or read came back "not leader": try the leader named, or wait for one.
    mutating func redispatch(_ waiter: Waiter, partition: Int?, hint: NodeID?, into output: inout NodeOutput) {
        guard waiter.origin != .answered else { return }
        guard let partition else {
            finish(waiter, error: "TRYAGAIN the meta group has no leader; retry shortly", into: &output)
            return
        }
        if let hint, hint != identity {
            leaderHints[partition] = hint
            forward(waiter, partition: partition, to: hint, into: &output)
        } else {
            parked.append((partition, waiter))
        }
    }

    func isStaleRead(_ waiter: Waiter) -> Bool {
        switch waiter.origin {
        case .client(let id, _): sessions.contains(id) && sessions[existing: id].isReadOnly
        case .peer(_, let id): staleForwards.contains(id)
        default: false
        }
    }

    mutating func forward(_ waiter: Waiter, partition: Int, to leader: NodeID, into output: inout NodeOutput) {
        let permit: CircuitBreaker.Permit
        switch breakerDecision(for: leader) {
        case .allowed(let granted):
            permit = granted
        case .rejected(let retryAfter):
            finish(
                waiter,
                error:
                    "TRYAGAIN node \(leader), the leader of partition \(partition) as far as this node knows, keeps failing "
                    + "(circuit open for \(retryAfter.nanoseconds / 1_000_000) ms more); retry shortly",
                into: &output)
            return
        }
        retryBudget.recordRequest(now: MonotonicTime(now))
        let id = nextRequestID()
        forwards[id] = PendingForward(
            waiter: waiter, partition: partition, target: leader, permit: permit, sentTick: ticks)
        let request = ForwardRequest(
            id: id, partition: partition,
            remainingMilliseconds: min(86_400_000, max(0, waiter.deadline - now.unixMilliseconds)),
            protocolVersion: UInt8(waiter.protocolVersion.rawValue), isStaleReadAllowed: isStaleRead(waiter),
            arguments: waiter.arguments)
        stats.forwarded += 1
        enqueue(.forward(request), to: leader)
    }

    /// A coordinator asks this node to run a command of `request.partition`.
    mutating func receiveForward(_ request: ForwardRequest, from peer: NodeID, into output: inout NodeOutput) {
        // Only data commands travel between nodes; anything else from a peer is bad input, refused.
        guard let spec = CommandTable.lookup(request.arguments[0]), Self.isRouted(spec),
            spec.accepts(argumentCount: request.arguments.count),
            request.partition < (map?.partitionCount ?? 0)
        else {
            enqueue(
                .forwardReply(id: request.id, .reply(Array("-ERR not a forwardable command\r\n".utf8), isError: true)),
                to: peer)
            return
        }
        let group = Self.group(ofPartition: request.partition)
        let waiter = Waiter(
            origin: .peer(peer, id: request.id), arguments: request.arguments, command: spec.index,
            protocolVersion: RESPVersion(rawValue: Int(request.protocolVersion)) ?? .resp2,
            startedAt: now.monotonicNanoseconds, deadline: now.unixMilliseconds + request.remainingMilliseconds)
        guard groups.contains(group),
            groups[existing: group].isLeader || (request.isStaleReadAllowed && !spec.isWrite)
        else {
            // Writes this node accepted while it led go on their way before the coordinator re-sends
            // this command elsewhere.
            if groups.contains(group) { flushProposals(group, into: &output) }
            let hint = groups[group]?.raft.leader
            enqueue(.forwardReply(id: request.id, .notLeader(hint: hint)), to: peer)
            return
        }
        if request.isStaleReadAllowed { staleForwards.insert(request.id) }
        dispatch(waiter, partition: request.partition, into: &output)
        staleForwards.remove(request.id)
    }

    mutating func receiveForwardReply(id: UInt64, _ outcome: ForwardOutcome, into output: inout NodeOutput) {
        guard let pending = forwards.removeValue(forKey: id) else { return }
        recordForward(to: pending.target, permit: pending.permit, .success, into: &output)
        switch outcome {
        case .reply(let bytes, let isError):
            finish(pending.waiter, encoded: bytes, isError: isError, into: &output)
        case .notLeader(let hint):
            if let hint, hint != pending.target, hint != identity {
                leaderHints[pending.partition] = hint
                dispatch(pending.waiter, partition: pending.partition, hint: hint, into: &output)
            } else {
                suspect(pending.target, ofLeading: pending.partition)
                parked.append((pending.partition, pending.waiter))
            }
        }
    }

    /// Once a tick: retries parked commands and fails those whose deadline passed.
    mutating func retryParked(into output: inout NodeOutput) {
        let nowMilliseconds = now.unixMilliseconds
        for (id, pending) in forwards where pending.waiter.deadline <= nowMilliseconds {
            forwards.removeValue(forKey: id)
            recordForward(to: pending.target, permit: pending.permit, .failure, into: &output)
            suspect(pending.target, ofLeading: pending.partition)
            finish(
                pending.waiter,
                error:
                    "TRYAGAIN no reply from node \(pending.target), the leader of partition \(pending.partition), in time; a write may or may not have been applied",
                into: &output)
        }
        if ticks % 10 == 0 { expireGroupWaiters(now: nowMilliseconds, into: &output) }
        guard !parked.isEmpty else { return }
        let waiting = parked
        parked = []
        for (partition, waiter) in waiting {
            if waiter.deadline <= nowMilliseconds {
                finish(
                    waiter, error: "CLUSTERDOWN partition \(partition) has no leader; retry shortly", into: &output)
            } else {
                let group = Self.group(ofPartition: partition)
                let hosted = groups.contains(group)
                let leads = hosted && groups[existing: group].isLeader
                let votes = hosted && identity.map { groups[existing: group].raft.configuration.isVoter($0) } == true
                let known = (hosted ? groups[existing: group].raft.leader : nil) ?? leaderHints[partition]
                // A voter that knows no leader waits for the election it takes part in (a hint naming
                // this node, which does not lead, is no leader); any other copy sends it on.
                if votes, !leads, known == nil || known == identity {
                    parked.append((partition, waiter))
                } else {
                    dispatch(waiter, partition: partition, into: &output)
                }
            }
        }
    }

    /// Answers commands stuck inside a group past their deadline (a leader that lost its quorum, an
    /// entry that never committed): the client hears a clear error instead of waiting forever.
    mutating func expireGroupWaiters(now nowMilliseconds: Int64, into output: inout NodeOutput) {
        for group in groups.keys.sorted() {
            var expired: [(Waiter, String)] = []
            // Each waiter of an entry on its own deadline: an answered one keeps its place in the batch
            // (`Origin.answered`); the entry leaves the books once nobody waits for it.
            for (request, waiters) in groups[existing: group].proposals
            where waiters.contains(where: { $0.deadline <= nowMilliseconds }) {
                groups[existing: group].proposals[request] = Self.expire(
                    waiters, now: nowMilliseconds, "TRYAGAIN the write was not appended in time; it was not applied",
                    into: &expired)
            }
            for (index, pending) in groups[existing: group].appended
            where pending.waiters.contains(where: { $0.deadline <= nowMilliseconds }) {
                groups[existing: group].appended[index] = Self.expire(
                    pending.waiters, now: nowMilliseconds,
                    "TRYAGAIN the write did not commit in time; it may or may not be applied later", into: &expired
                ).map { (pending.term, $0) }
            }
            for (request, waiter) in groups[existing: group].reads where waiter.deadline <= nowMilliseconds {
                groups[existing: group].reads.removeValue(forKey: request)
                expired.append((waiter, "TRYAGAIN the leader could not confirm its leadership in time"))
            }
            let ready = groups[existing: group].readyReads
            groups[existing: group].readyReads = ready.filter { $0.waiter.deadline > nowMilliseconds }
            for read in ready where read.waiter.deadline <= nowMilliseconds {
                expired.append((read.waiter, "TRYAGAIN the replica did not catch up in time"))
            }
            for (waiter, text) in expired { finish(waiter, error: text, into: &output) }
        }
    }

    /// Answers the waiters past their deadline with `text` and marks them answered, in place; nil once
    /// no waiter of the entry is left to answer.
    static func expire(
        _ waiters: [Waiter], now nowMilliseconds: Int64, _ text: String, into expired: inout [(Waiter, String)]
    ) -> [Waiter]? {
        var kept = waiters
        for position in kept.indices where kept[position].deadline <= nowMilliseconds {
            if kept[position].origin != .none && kept[position].origin != .answered {
                expired.append((kept[position], text))
            }
            kept[position].origin = .answered
        }
        return kept.allSatisfy { $0.origin == .answered || $0.origin == .none } ? nil : kept
    }

    /// A forward to `node` got no answer: the next command of the partition goes to another replica,
    /// which serves it if it leads or names the leader it knows (a node that holds no copy of the
    /// partition has no other way to learn that its leader died).
    mutating func suspect(_ node: NodeID, ofLeading partition: Int) {
        guard let replicas = map?.placement[partition], !replicas.isEmpty else { return }
        guard leaderHints[partition] == nil || leaderHints[partition] == node else { return }
        let position = replicas.firstIndex(of: node).map { ($0 + 1) % replicas.count } ?? 0
        leaderHints[partition] =
            replicas[position] == identity ? replicas[(position + 1) % replicas.count] : replicas[position]
    }

    // MARK: Replies

    mutating func finish(_ waiter: Waiter, error text: String, into output: inout NodeOutput) {
        finish(waiter, .error(text), into: &output)
    }

    mutating func finish(_ waiter: Waiter, _ reply: RESPValue, into output: inout NodeOutput) {
        switch waiter.origin {
        case .part(let split, let index):
            completePart(split: split, index: index, reply, into: &output)
        default:
            finish(waiter, encoded: reply.encoded(waiter.protocolVersion), isError: reply.isError, into: &output)
        }
    }

    /// Delivers an already-encoded reply to whoever waits for it.
    mutating func finish(_ waiter: Waiter, encoded bytes: [UInt8], isError: Bool, into output: inout NodeOutput) {
        switch waiter.origin {
        case .client(let id, let sequence):
            deliver(
                id, sequence: sequence, ClientReply(client: id, bytes: bytes), command: waiter.command,
                isError: isError, startedAt: waiter.startedAt, into: &output)
        case .peer(let node, let id):
            enqueue(.forwardReply(id: id, .reply(bytes, isError: isError)), to: node)
        case .part(let split, let index):
            let value: RESPValue = Self.decodeReply(bytes) ?? .error("ERR unreadable reply from a peer")
            completePart(split: split, index: index, value, into: &output)
        case .joiner, .none, .answered:
            break
        }
    }

    /// Decodes a forwarded reply (needed only to merge split commands).
    static func decodeReply(_ bytes: [UInt8]) -> RESPValue? {
        var parser = RESPReplyReader(bytes)
        return parser.next()
    }

    // MARK: Outbox

    mutating func enqueue(_ message: PeerMessage, to node: NodeID) {
        outbox[.node(node), default: []].append(message)
    }

    mutating func enqueue(_ message: PeerMessage, to address: String) {
        outbox[.address(address), default: []].append(message)
    }

    /// Turns the turn's queued messages into one envelope per peer (several if very large).
    mutating func flushOutbox(into output: inout NodeOutput) {
        guard !outbox.isEmpty else { return }
        let from = identity ?? NodeID(rawValue: 0)
        let clusterID = map?.clusterID ?? 0
        let epoch = map?.epoch ?? 0
        for (target, messages) in outbox {
            if case .node(let node) = target { lastSentTick[node] = ticks }
            if messages.isEmpty {
                // A node-level heartbeat: the envelope alone says the sender is alive.
                let envelope = PeerEnvelope(clusterID: clusterID, from: from, epoch: epoch, messages: [])
                output.peerSends.append(PeerSend(to: target, payload: envelope.encoded()))
            }
            var start = 0
            while start < messages.count {
                var size = 0
                var end = start
                while end < messages.count, end == start || size < Limits.peerEnvelopeBytesTarget {
                    size += messages[end].estimatedBytes
                    end += 1
                }
                let envelope = PeerEnvelope(
                    clusterID: clusterID, from: from, epoch: epoch, messages: Array(messages[start..<end]))
                output.peerSends.append(PeerSend(to: target, payload: envelope.encoded()))
                start = end
            }
        }
        outbox.removeAll(keepingCapacity: true)
    }

    mutating func nextRequestID() -> UInt64 {
        requestCounter += 1
        return requestCounter
    }
}

/// A command sent to another node, waiting for its reply.
struct PendingForward: Sendable {
    var waiter: Waiter
    var partition: Int
    var target: NodeID
    /// The target's circuit breaker let it through with this permit.
    var permit: CircuitBreaker.Permit?
    /// When it was sent: a target not heard from since a restart is not judged silent at once.
    var sentTick: UInt64 = 0
}

extension PeerMessage {
    /// About how many bytes the message takes on the wire, to size envelopes.
    var estimatedBytes: Int {
        switch self {
        case .raft(let message):
            if case .appendEntries(let append) = message.kind {
                return 64 + append.entries.reduce(0) { $0 + $1.sizeBytes }
            }
            if case .installSnapshot(let chunk) = message.kind { return 128 + chunk.data.count }
            return 64
        case .forward(let request): return 64 + request.arguments.reduce(0) { $0 + $1.count + 4 }
        case .forwardReply(_, .reply(let bytes, _)): return 32 + bytes.count
        case .forwardReply: return 32
        case .join: return 256
        case .joined(_, let map), .map(let map): return 256 + map.placement.count * 32 + map.nodes.count * 128
        case .mapRequest, .membersQuery: return 16
        case .quiesce: return 24
        case .metaRequest: return 64
        case .members(_, let nodes, _): return 24 + nodes.count * 8
        }
    }
}
