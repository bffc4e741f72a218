import CairnCore
import CairnRaft

/// A request from a client to a node: a read of `key`, or a command.
struct ClientRequest: Sendable {
    var client: Int
    var request: RequestID
    var key: [UInt8]
    /// Nil for a read.
    var command: KVCommand?
}

/// A node's answer to a client.
enum ClientResult: Sendable, Equatable {
    case value([UInt8]?)
    case done
    case swapped(Bool)
    /// The request did not take effect; try `leaderHint` (if known) instead.
    case failed(leaderHint: NodeID?)
}

/// A simulated client: one operation at a time, sent to the node it believes leads, with a timeout.
///
/// Clients know nothing of Raft's internals: they follow leader hints, try another node after a
/// timeout, and use the last value they saw of a key as a compare-and-set's expectation. In the
/// liveness phase each client keeps writing until one write succeeds (`isFinal`), which shows the
/// healed cluster takes writes again.
///
/// A class, so that the simulator updates a client in place (a copy would copy `lastSeen` on every write).
final class SimClient {
    let id: Int
    var target: Int
    var current: (request: RequestID, historyIndex: Int)?
    var lastSeen: [[UInt8]: [UInt8]] = [:]
    var operationCount = 0
    var isFinal = false
    var isDone = false

    init(id: Int, target: Int) {
        self.id = id
        self.target = target
    }
}
