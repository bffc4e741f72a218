import CairnCore
import CairnRESP

/// The HTTP data API on the admin port (`/v1/kv/KEY`): each request becomes one command that the
/// node runs exactly as a client's (routing, deadlines, admission control, rate limits, idempotency),
/// and the command's reply becomes the response. Pure: the shell reads requests and writes responses.
///
/// - `GET /v1/kv/KEY`: the value as `application/octet-stream`; 404 if there is no such key.
/// - `PUT /v1/kv/KEY[?ttl=SECONDS]` with the value as the body: `SET` (with `EX`); `{"stored":true}`.
/// - `DELETE /v1/kv/KEY`: `DEL`; `{"deleted":N}`.
/// - `POST /v1/kv/KEY?incrby=N`: `INCRBY`; `{"value":N}`.
///
/// A write with an `Idempotency-Key: TOKEN` header runs as `IDEMPOTENT TOKEN ...`: a retry with the
/// same token within the window gets the first response and applies nothing again.
public struct HTTPDataRequest: Sendable, Equatable {
    public enum Operation: Sendable, Equatable {
        case get, put, delete, incrementBy
    }

    public let operation: Operation
    /// The command the request runs, as a client would send it.
    public let words: [[UInt8]]

    public static let pathPrefix = "/v1/kv/"
    static let usage = "use GET, PUT or DELETE /v1/kv/KEY, or POST /v1/kv/KEY?incrby=N"

    /// Whether a request target is for the data API (the shell then reads a body and asks `parse`).
    public static func isDataPath(_ target: Substring) -> Bool {
        target.hasPrefix(pathPrefix)
    }

    /// The request's command, or why the request is malformed (a 4xx response).
    public static func parse(
        method: String, target: String, idempotencyKey: String?, body: [UInt8]
    ) -> Result<HTTPDataRequest, HTTPDataResponse> {
        let pieces = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard let rawKey = pieces.first?.dropFirst(pathPrefix.count), let key = percentDecoded(rawKey) else {
            return .failure(.problem(400, "the key is not valid percent-encoding; \(usage)"))
        }
        guard !key.isEmpty else { return .failure(.problem(400, "the key is empty; \(usage)")) }
        var parameters: [(String, String)] = []
        for pair in (pieces.count > 1 ? pieces[1] : "").split(separator: "&") {
            let nameValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let value = percentDecoded(nameValue.count > 1 ? nameValue[1] : "") else {
                return .failure(.problem(400, "the query parameter '\(nameValue[0])' is not valid percent-encoding"))
            }
            parameters.append((String(nameValue[0]), String(decoding: value, as: UTF8.self)))
        }
        let allowed: [String]
        let operation: Operation
        var words: [[UInt8]]
        switch method {
        case "GET":
            (operation, words, allowed) = (.get, [Array("GET".utf8), key], [])
        case "PUT":
            (operation, words, allowed) = (.put, [Array("SET".utf8), key, body], ["ttl"])
        case "DELETE":
            (operation, words, allowed) = (.delete, [Array("DEL".utf8), key], [])
        case "POST":
            (operation, words, allowed) = (.incrementBy, [Array("INCRBY".utf8), key], ["incrby"])
        default:
            return .failure(.problem(405, "method \(method) is not served on /v1/kv/; \(usage)"))
        }
        if let unknown = parameters.first(where: { !allowed.contains($0.0) }) {
            let expected = allowed.isEmpty ? "none" : allowed.joined(separator: ", ")
            return .failure(
                .problem(400, "unknown query parameter '\(unknown.0)' for \(method); expected: \(expected)"))
        }
        for (name, value) in parameters {
            guard let number = Int64(value), name != "ttl" || number > 0 else {
                let expected = name == "ttl" ? "a positive number of seconds" : "an integer"
                return .failure(.problem(400, "query parameter '\(name)' must be \(expected), got '\(value)'"))
            }
            if name == "ttl" { words += [Array("EX".utf8), Array(String(number).utf8)] }
            if name == "incrby" { words.append(Array(String(number).utf8)) }
        }
        if operation == .incrementBy, words.count == 2 {
            return .failure(.problem(400, "POST needs ?incrby=N (an integer to add to the key's number)"))
        }
        if let token = idempotencyKey {
            guard operation != .get else {
                return .failure(.problem(400, "Idempotency-Key applies to writes (PUT, DELETE, POST), not GET"))
            }
            guard !token.isEmpty else { return .failure(.problem(400, "the Idempotency-Key header is empty")) }
            words = [Array("IDEMPOTENT".utf8), Array(token.utf8)] + words
        }
        return .success(HTTPDataRequest(operation: operation, words: words))
    }

    /// The response for the command's reply (what the node sent the request's session).
    public func response(to replyBytes: [UInt8]) -> HTTPDataResponse {
        var reader = RESPReplyReader(replyBytes)
        switch (operation, reader.next()) {
        case (_, .error(let text)):
            let code = text.prefix { $0 != " " }
            switch code {
            case "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "BUSY":
                // Retryable: the node is overloaded, or a partition is between leaders.
                return .problem(503, text, retryAfterSeconds: 1)
            case "WRONGTYPE":
                return .problem(409, text)
            default:
                return .problem(400, text)
            }
        case (.get, .bulk(let value)):
            return HTTPDataResponse(status: 200, contentType: "application/octet-stream", body: value)
        case (.get, .null):
            return .problem(404, "no such key")
        case (.put, .simple("OK")):
            return .json(200, "{\"stored\":true}")
        case (.delete, .integer(let count)):
            return .json(200, "{\"deleted\":\(count)}")
        case (.incrementBy, .integer(let value)):
            return .json(200, "{\"value\":\(value)}")
        case (_, let other):
            return .problem(500, "unexpected reply from the node: \(other.map { "\($0)" } ?? "unreadable")")
        }
    }

    /// `%XX` sequences decoded to bytes; nil if one is malformed. `+` stays `+` (this is a path).
    static func percentDecoded(_ text: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        var utf8 = text.utf8.makeIterator()
        while let byte = utf8.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = utf8.next().flatMap(Numbers.hexDigitValue),
                let low = utf8.next().flatMap(Numbers.hexDigitValue)
            else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}

/// An HTTP response of the data API: status, content type, body, and `Retry-After` for retryable ones.
public struct HTTPDataResponse: Error, Sendable, Equatable {
    public let status: Int
    public let contentType: String
    public let body: [UInt8]
    public var retryAfterSeconds: Int?

    public init(status: Int, contentType: String, body: [UInt8], retryAfterSeconds: Int? = nil) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.retryAfterSeconds = retryAfterSeconds
    }

    static func json(_ status: Int, _ text: String) -> HTTPDataResponse {
        HTTPDataResponse(status: status, contentType: "application/json", body: Array((text + "\n").utf8))
    }

    /// An error as `{"error":"..."}`.
    public static func problem(_ status: Int, _ message: String, retryAfterSeconds: Int? = nil) -> HTTPDataResponse {
        var response = json(status, "{\"error\":\"\(NodeCore.jsonEscape(message))\"}")
        response.retryAfterSeconds = retryAfterSeconds
        return response
    }

    /// The status line's reason phrase.
    public var reason: String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 500: "Internal Server Error"
        default: "Service Unavailable"
        }
    }
}
