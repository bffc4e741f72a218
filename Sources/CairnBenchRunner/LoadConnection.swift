import CairnBench
import CairnResilience
import Glibc

/// A first-in first-out queue over an array, dropping consumed items in bulk.
struct RingQueue<Element> {
    private var items: [Element] = []
    private var head = 0

    var count: Int { items.count - head }
    var isEmpty: Bool { head == items.count }
    var first: Element? { isEmpty ? nil : items[head] }

    mutating func append(_ item: Element) {
        items.append(item)
    }

    mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let item = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return item
    }

    mutating func removeAll() -> [Element] {
        let rest = Array(items[head...])
        items.removeAll(keepingCapacity: true)
        head = 0
        return rest
    }
}

/// An operation generated but not yet sent: it waits for a connection of its endpoint with room.
struct WaitingOperation {
    var operation: Operation
    /// Nanoseconds from the phase start at which it was meant to start.
    var intended: UInt64
    var redirects: UInt8 = 0
    /// Send `ASKING` first (after an `-ASK` redirection).
    var isAsking = false
    /// Attempts made before this one (retries after retryable failures), and the last one's failure.
    var attempt: UInt8 = 0
    var lastFailure: String?
}

/// An operation that failed retryably, waiting out its backoff before it is sent again.
struct DelayedRetry {
    var waiting: WaitingOperation
    var at: UInt64
    /// The failure it is retrying, counted as its error if the phase ends first.
    var kind: String
}

/// A command sent and not yet answered, in the order sent (replies come back in that order).
struct InFlight {
    var operation: Operation
    var intended: UInt64
    var sent: UInt64
    /// The command counted when its reply arrives; nil for setup commands (HELLO, ASKING).
    var command: SentCommand?
    var redirects: UInt8
    /// The GET of a read-modify-write: its reply triggers the SET.
    var isReadOfReadModifyWrite: Bool
    var attempt: UInt8 = 0
    /// The endpoint's breaker let it through; its outcome goes back to the breaker.
    var permit: CircuitBreaker.Permit?
}

/// One connection of the load driver, owned by its loop.
final class LoadConnection {
    enum State {
        /// Not connected; try again at `retryAt` (nanoseconds, monotonic).
        case idle(retryAt: UInt64)
        case connecting(deadline: UInt64)
        case ready
    }

    let endpointIndex: Int
    var descriptor: Int32 = -1
    var state = State.idle(retryAt: 0)
    var output: [UInt8] = []
    var outputOffset = 0
    var input: [UInt8] = []
    var inFlight = RingQueue<InFlight>()
    /// Counted commands in flight (not HELLO or ASKING), against the pipeline depth.
    var pipelined = 0
    var isWaitingForWritable = false
    var isInReadyList = false
    var isDirty = false
    /// Failed connects or lost connections in a row, for the reconnect backoff.
    var failures = 0
    /// Why the last connect attempt failed, for messages.
    var lastError: String?

    init(endpointIndex: Int) {
        self.endpointIndex = endpointIndex
        output.reserveCapacity(64 * 1024)
    }

    var isReady: Bool {
        if case .ready = state { return true }
        return false
    }
}

/// What the driver knows of one endpoint: its address, connections, and the operations waiting for them.
final class EndpointState {
    let endpoint: Endpoint
    let address: sockaddr_in
    var connections: [LoadConnection] = []
    /// Connections that are ready and have room for more commands.
    var readyList: [LoadConnection] = []
    var waiting = RingQueue<WaitingOperation>()
    /// Fails operations fast while the node keeps failing (timeouts, broken connections).
    var breaker: CircuitBreaker

    init(endpoint: Endpoint, address: sockaddr_in, breaker: CircuitBreaker.Configuration) {
        self.endpoint = endpoint
        self.address = address
        self.breaker = CircuitBreaker(configuration: breaker)
    }
}
