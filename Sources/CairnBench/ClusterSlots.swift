import CairnPlacement
import CairnRESP

/// A `host:port` endpoint.
public struct Endpoint: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` with a port from 1 to 65535.
    public static func parse(_ text: String) -> Endpoint? {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
            let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        return Endpoint(host: String(text[..<colon]), port: port)
    }

    public var description: String { "\(host):\(port)" }

    public static func < (lhs: Endpoint, rhs: Endpoint) -> Bool {
        (lhs.host, lhs.port) < (rhs.host, rhs.port)
    }
}

/// Which endpoint serves each slot, built from a `CLUSTER SLOTS` reply.
///
/// The reply is an array of ranges: `[start, end, [host, port, id?, ...], replica...]`, the first
/// node of a range being its primary. An empty host (or `?`) means "the address you reached me
/// on" (Redis 7's `cluster-preferred-endpoint-type unknown-endpoint`), so the caller passes the
/// endpoint it asked.
public struct SlotMap: Sendable, Equatable {
    /// Primary endpoints, sorted, without duplicates.
    public private(set) var endpoints: [Endpoint]
    /// For each slot, an index into `endpoints`, or -1 if no range covers it.
    public private(set) var owners: [Int16]

    /// A map where every slot belongs to one endpoint (plain mode, or before the first refresh).
    public init(single endpoint: Endpoint) {
        endpoints = [endpoint]
        owners = Array(repeating: 0, count: HashSlot.count)
    }

    /// Parses a `CLUSTER SLOTS` reply obtained from `asked`.
    public static func parse(_ reply: RESPValue, asked: Endpoint) -> Result<SlotMap, SlotMapError> {
        guard case .array(let ranges) = reply else {
            if case .error(let text) = reply { return .failure(.errorReply(text)) }
            return .failure(.malformed("CLUSTER SLOTS did not reply with an array"))
        }
        var primaries: [(Range<Int>, Endpoint)] = []
        for range in ranges {
            guard case .array(let fields) = range, fields.count >= 3, case .integer(let start) = fields[0],
                case .integer(let end) = fields[1], start >= 0, start <= end, end < HashSlot.count
            else {
                return .failure(
                    .malformed("a slot range is not [start, end, node, ...] with 0 <= start <= end < 16384"))
            }
            guard case .array(let node) = fields[2], node.count >= 2, case .integer(let port) = node[1],
                (1...65535).contains(port)
            else { return .failure(.malformed("the node of slots \(start)-\(end) is not [host, port, ...]")) }
            var host = asked.host
            switch node[0] {
            case .bulk(let bytes):
                if !bytes.isEmpty && bytes != [UInt8(ascii: "?")] { host = String(decoding: bytes, as: UTF8.self) }
            case .simple(let text): if !text.isEmpty && text != "?" { host = text }
            case .null: break
            default: return .failure(.malformed("the host of slots \(start)-\(end) is not a string"))
            }
            primaries.append((Int(start)..<Int(end) + 1, Endpoint(host: host, port: Int(port))))
        }
        guard !primaries.isEmpty else { return .failure(.malformed("CLUSTER SLOTS listed no slot ranges")) }
        var map = SlotMap(single: asked)
        map.endpoints = Array(Set(primaries.map(\.1))).sorted()
        guard map.endpoints.count <= Int(Int16.max) else { return .failure(.malformed("too many nodes")) }
        map.owners = Array(repeating: -1, count: HashSlot.count)
        for (range, endpoint) in primaries {
            let index = Int16(map.endpoints.firstIndex(of: endpoint)!)
            for slot in range { map.owners[slot] = index }
        }
        return .success(map)
    }

    /// The endpoint serving `slot`, nil if no range covers it.
    public func endpoint(ofSlot slot: Int) -> Endpoint? {
        let owner = owners[slot]
        return owner < 0 ? nil : endpoints[Int(owner)]
    }

    /// Slots no range covers.
    public var uncoveredSlots: Int { owners.reduce(0) { $0 + ($1 < 0 ? 1 : 0) } }

    /// Moves one slot to `endpoint` (after a `-MOVED` reply), adding the endpoint if it is new.
    public mutating func move(slot: Int, to endpoint: Endpoint) {
        precondition(slot >= 0 && slot < HashSlot.count, "slot \(slot) out of range")
        if let index = endpoints.firstIndex(of: endpoint) {
            owners[slot] = Int16(index)
        } else {
            endpoints.append(endpoint)
            owners[slot] = Int16(endpoints.count - 1)
        }
    }
}

/// Why a `CLUSTER SLOTS` reply could not be used.
public enum SlotMapError: Error, Sendable, Equatable, CustomStringConvertible {
    case errorReply(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .errorReply(let text): "CLUSTER SLOTS failed: \(text)"
        case .malformed(let text): "CLUSTER SLOTS reply not understood: \(text)"
        }
    }
}

/// A redirection in an error reply: `MOVED slot host:port` or `ASK slot host:port`.
public struct Redirection: Sendable, Equatable {
    public var isAsk: Bool
    public var slot: Int
    public var endpoint: Endpoint

    /// Parses the error text (without the leading `-`); nil if it is not a redirection.
    public static func parse(_ text: String, asked: Endpoint) -> Redirection? {
        let words = text.split(separator: " ")
        guard words.count == 3, words[0] == "MOVED" || words[0] == "ASK", let slot = Int(words[1]),
            slot >= 0, slot < HashSlot.count
        else { return nil }
        // Redis may send ":port" when the host is unknown: the asked host then applies.
        var address = String(words[2])
        if address.hasPrefix(":") { address = asked.host + address }
        guard let endpoint = Endpoint.parse(address) else { return nil }
        return Redirection(isAsk: words[0] == "ASK", slot: slot, endpoint: endpoint)
    }
}
