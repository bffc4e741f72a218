import CLinux
import CairnCore
import CairnNode
import Glibc

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

extension Server {
    /// Serves one HTTP request: the admin paths (`/metrics`, `/health`, `/ready`, `/v1/...`) and the
    /// data API (`/v1/kv/KEY`, run by the core as a command of its own session). Anything malformed
    /// gets a 4xx and the connection closes.
    func serviceHTTP(_ connection: HTTPConnection, _ events: UInt32) {
        if let session = connection.session, !connection.responded {
            // Only a hang-up or an error is reported while the core runs the command (no read interest;
            // a half-close after the request is fine): the client gave up on it.
            httpSessions.removeValue(forKey: session)
            step(.disconnected(session))
            unregister(connection.descriptor)
            return
        }
        if !connection.responded {
            var total = 0
            while total < Limits.httpRequestHeadBytesMax + Limits.httpRequestBodyBytesMax + 1 {
                let count = scratch.withUnsafeMutableBytes {
                    Glibc.read(connection.descriptor, $0.baseAddress, $0.count)
                }
                if count > 0 {
                    connection.input.append(contentsOf: scratch[0..<count])
                    total += count
                } else if count < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                    break
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    unregister(connection.descriptor)
                    return
                }
            }
            if let headEnd = Self.find([0x0D, 0x0A, 0x0D, 0x0A], in: connection.input),
                headEnd <= Limits.httpRequestHeadBytesMax
            {
                respond(connection, head: Array(connection.input[..<headEnd]), bodyStart: headEnd + 4)
                // Still reading the body, or waiting for the core's reply to a data request.
                guard connection.responded else { return }
            } else if connection.input.count > Limits.httpRequestHeadBytesMax {
                reply(
                    connection, status: "431 Request Header Fields Too Large",
                    body: "request head exceeds \(Limits.httpRequestHeadBytesMax) bytes\n")
            } else {
                return
            }
        }
        while connection.outputOffset < connection.output.count {
            let count = connection.output[connection.outputOffset...].withUnsafeBytes {
                Glibc.write(connection.descriptor, $0.baseAddress, $0.count)
            }
            if count > 0 {
                connection.outputOffset += count
            } else if count < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                modify(connection.descriptor, events: EPOLLOUT.rawValue)
                return
            } else {
                break
            }
        }
        unregister(connection.descriptor)
    }

    func respond(_ connection: HTTPConnection, head: [UInt8], bodyStart: Int) {
        let requestLine = head.split(separator: 0x0D, maxSplits: 1).first.map { Array($0) } ?? []
        let parts = requestLine.split(separator: 0x20).map { String(decoding: $0, as: UTF8.self) }
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            reply(
                connection, status: "400 Bad Request", body: "expected a request line such as 'GET /metrics HTTP/1.1'\n"
            )
            return
        }
        if let problem = Self.headerProblem(head) {
            reply(connection, status: "400 Bad Request", body: problem + "\n")
            return
        }
        if HTTPDataRequest.isDataPath(parts[1][...]) {
            respondData(connection, method: parts[0], target: parts[1], head: head, bodyStart: bodyStart)
            return
        }
        let path = String(parts[1].split(separator: "?", maxSplits: 1).first ?? "")
        let query = parts[1].split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        if parts[0] == "POST", path.hasPrefix("/v1/nodes/") {
            respondAdmin(connection, path: path, query: query)
            return
        }
        guard parts[0] == "GET" || parts[0] == "HEAD" else {
            reply(
                connection, status: "405 Method Not Allowed",
                body: "only GET and HEAD are served here (and POST /v1/nodes/ID/decommission or /remove)\n",
                path: parts[1])
            return
        }
        let includeBody = parts[0] == "GET"
        switch path {
        case "/metrics":
            let text = core.renderMetrics(now: Self.now()) + shellMetrics.render()
            reply(
                connection, status: "200 OK", body: text, contentType: "text/plain; version=0.0.4; charset=utf-8",
                path: path, includeBody: includeBody)
        case "/health":
            reply(connection, status: "200 OK", body: "ok\n", path: path, includeBody: includeBody)
        case "/ready":
            if state != .running {
                reply(
                    connection, status: "503 Service Unavailable", body: "shutting down\n", path: path,
                    includeBody: includeBody)
            } else if !core.isReady {
                reply(
                    connection, status: "503 Service Unavailable",
                    body: "not ready: not in a cluster yet, or a partition has no known leader\n", path: path,
                    includeBody: includeBody)
            } else {
                reply(connection, status: "200 OK", body: "ready\n", path: path, includeBody: includeBody)
            }
        case "/v1/status":
            reply(connection, status: "200 OK", body: core.statusText(), path: path, includeBody: includeBody)
        case "/v1/cluster":
            reply(
                connection, status: "200 OK", body: core.clusterJSON(), contentType: "application/json", path: path,
                includeBody: includeBody)
        case "/v1/partitions":
            reply(
                connection, status: "200 OK", body: core.partitionsJSON(), contentType: "application/json",
                path: path, includeBody: includeBody)
        case "/v1/rebalance":
            reply(
                connection, status: "200 OK", body: core.rebalanceJSON(), contentType: "application/json",
                path: path, includeBody: includeBody)
        default:
            reply(
                connection, status: "404 Not Found",
                body:
                    "no such path; try /metrics, /health, /ready, /v1/status, /v1/cluster, /v1/partitions, /v1/rebalance or /v1/kv/KEY\n",
                path: "other", includeBody: includeBody)
        }
    }

    /// `POST /v1/nodes/ID/decommission` and `POST /v1/nodes/ID/remove[?force=1]`: membership changes,
    /// checked by the core and passed to the meta leader.
    func respondAdmin(_ connection: HTTPConnection, path: String, query: String) {
        let words = path.split(separator: "/", omittingEmptySubsequences: true)
        let usage = "expected POST /v1/nodes/ID/decommission or POST /v1/nodes/ID/remove[?force=1]"
        guard words.count == 4, let raw = UInt64(words[2]), raw > 0 else {
            reply(
                connection, status: "400 Bad Request", body: "{\"error\":\"\(usage)\"}\n",
                contentType: "application/json")
            return
        }
        let node = NodeID(rawValue: raw)
        let request: AdminRequest
        switch words[3] {
        case "decommission": request = .decommission(node)
        case "remove": request = .remove(node, force: query.split(separator: "&").contains("force=1"))
        default:
            reply(
                connection, status: "404 Not Found", body: "{\"error\":\"\(usage)\"}\n", contentType: "application/json"
            )
            return
        }
        let answer = step(.admin(request)).adminReply ?? AdminReply.unavailable
        reply(
            connection, status: "\(answer.status) \(Self.reason(answer.status))", body: answer.body,
            contentType: "application/json", path: path)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 202: "Accepted"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 409: "Conflict"
        default: "Service Unavailable"
        }
    }

    func reply(
        _ connection: HTTPConnection, status: String, body: String, contentType: String = "text/plain; charset=utf-8",
        path: String = "invalid", includeBody: Bool = true
    ) {
        let bodyBytes = Array(body.utf8)
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\nConnection: close\r\n\r\n"
        connection.output = Array(head.utf8) + (includeBody ? bodyBytes : [])
        connection.responded = true
        let code = String(status.prefix(3))
        let label = ["/metrics", "/health", "/ready", "/v1/kv"].contains(path) ? path : "other"
        shellMetrics.add(Self.httpRequests, [("path", label), ("code", code)])
    }

    /// Answers 408 to every HTTP connection whose request has not arrived whole within
    /// `Limits.httpRequestSecondsMax` of connecting (checked once a second), and closes it.
    func expireSlowHTTPRequests(now: UInt64) {
        let limit = UInt64(Limits.httpRequestSecondsMax) * 1_000_000_000
        for registration in registrations.values {
            guard case .http(let connection) = registration, !connection.responded, connection.session == nil,
                now - connection.connectedAt > limit
            else { continue }
            reply(
                connection, status: "408 Request Timeout",
                body: "the request (head and body) did not arrive whole within \(Limits.httpRequestSecondsMax) s\n")
            serviceHTTP(connection, EPOLLOUT.rawValue)
        }
    }

    /// A data API request: once its body is in, the core runs its command as a session of its own;
    /// `finishData` answers when the reply comes (in this step or a later one).
    func respondData(_ connection: HTTPConnection, method: String, target: String, head: [UInt8], bodyStart: Int) {
        let declared = Self.headerValue("content-length", in: head)
        let length = declared.map { Int($0) ?? Int.max } ?? 0
        if Self.headerValue("transfer-encoding", in: head) != nil {
            respond(connection, .problem(411, "Transfer-Encoding is not supported here; send Content-Length"))
            return
        }
        guard length <= Limits.httpRequestBodyBytesMax else {
            respond(
                connection,
                .problem(
                    413,
                    "the body has \(declared ?? "0") bytes; the HTTP API takes at most \(Limits.httpRequestBodyBytesMax) (larger values go over RESP)"
                ))
            return
        }
        guard connection.input.count >= bodyStart + length else { return }
        let body = Array(connection.input[bodyStart..<(bodyStart + length)])
        let request: HTTPDataRequest
        switch HTTPDataRequest.parse(
            method: method, target: target, idempotencyKey: Self.headerValue("idempotency-key", in: head), body: body)
        {
        case .failure(let problem):
            respond(connection, problem)
            return
        case .success(let parsed):
            request = parsed
        }
        let id = ClientID(nextClientID)
        nextClientID += 1
        connection.session = id
        connection.request = request
        httpSessions[id] = connection
        modify(connection.descriptor, events: 0)
        step(
            .connected(
                id, address: System.address(of: connection.descriptor, peer: true),
                localAddress: System.address(of: connection.descriptor, peer: false),
                fileDescriptor: connection.descriptor))
        step(.command(id, arguments: request.words, wireBytes: bodyStart + length))
    }

    /// The core replied to a data request's session: the response goes out as soon as the socket is
    /// writable, and the session ends.
    func finishData(_ connection: HTTPConnection, reply: [UInt8]) {
        guard let request = connection.request, let session = connection.session else { return }
        httpSessions.removeValue(forKey: session)
        respond(connection, request.response(to: reply))
        modify(connection.descriptor, events: EPOLLOUT.rawValue)
        finishedSessions.append(session)
    }

    func respond(_ connection: HTTPConnection, _ response: HTTPDataResponse) {
        var head = "HTTP/1.1 \(response.status) \(response.reason)\r\nContent-Type: \(response.contentType)\r\n"
        head += "Content-Length: \(response.body.count)\r\nConnection: close\r\n"
        if let seconds = response.retryAfterSeconds { head += "Retry-After: \(seconds)\r\n" }
        connection.output = Array((head + "\r\n").utf8) + response.body
        connection.responded = true
        shellMetrics.add(Self.httpRequests, [("path", "/v1/kv"), ("code", String(response.status))])
    }

    /// The value of the first header line named `name` (lowercase), trimmed; nil if there is none.
    static func headerValue(_ name: String, in head: [UInt8]) -> String? {
        let text = String(decoding: head, as: UTF8.self)
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: false).dropFirst() {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name else { continue }
            return line[line.index(after: colon)...].trimmingCharacters(in: " \t")
        }
        return nil
    }

    /// Why the header lines of a request head are malformed, or nil if they are fine: each must be
    /// `Name: value`, and a Content-Length must be a non-negative integer.
    static func headerProblem(_ head: [UInt8]) -> String? {
        let text = String(decoding: head, as: UTF8.self)
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: false).dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return "malformed header line: expected 'Name: value'"
            }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            if name == "content-length", UInt64(value) == nil {
                return "Content-Length must be a non-negative integer, got '\(value)'"
            }
        }
        return nil
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return start }
        }
        return nil
    }
}
