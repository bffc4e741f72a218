import Glibc

/// A tiny blocking HTTP/1.1 client for a node's admin port: one GET, `Connection: close`, and a
/// deadline on the whole exchange. It exists so `cairn dev` can ask `/ready` without Foundation.
public enum HTTPProbe {
    /// Largest response read; admin answers (`/ready`, `/v1/cluster` of a dev cluster) are far smaller.
    public static let responseBytesMax = 1 << 20

    public struct Response: Sendable, Equatable {
        public var status: Int
        public var body: String
    }

    /// GETs `path` from `host:port` (IPv4). Returns nil if there is no complete answer within
    /// `timeoutMilliseconds`, or if the answer is not HTTP.
    public static func get(host: String, port: Int, path: String, timeoutMilliseconds: Int) -> Response? {
        request("GET", host: host, port: port, path: path, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Sends `method path` with no body (`cairn ctl` POSTs admin requests this way); as `get` otherwise.
    public static func request(_ method: String, host: String, port: Int, path: String, timeoutMilliseconds: Int)
        -> Response?
    {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let deadline = System.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000

        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if connected != 0 {
            guard errno == EINPROGRESS, wait(fd, for: Int16(POLLOUT), until: deadline) else { return nil }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else { return nil }
        }

        let length = method == "POST" ? "Content-Length: 0\r\n" : ""
        let request = Array(
            "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n\(length)Connection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                sent += count
            } else if count < 0, errno == EAGAIN || errno == EINTR {
                guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return nil }
            } else {
                return nil
            }
        }

        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while response.count <= responseBytesMax {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 {
                response.append(contentsOf: buffer[0..<count])
            } else if count == 0 {
                break
            } else if errno == EAGAIN || errno == EINTR {
                guard wait(fd, for: Int16(POLLIN), until: deadline) else { return nil }
            } else {
                return nil
            }
        }
        return parse(response)
    }

    /// Splits `HTTP/1.x NNN reason\r\n...\r\n\r\nbody` into status and body.
    static func parse(_ response: [UInt8]) -> Response? {
        guard response.starts(with: Array("HTTP/1.".utf8)), let headEnd = response.firstRange(of: [13, 10, 13, 10])
        else { return nil }
        let statusLine = response[..<headEnd.lowerBound].prefix { $0 != 13 }
        let fields = statusLine.split(separator: 0x20, maxSplits: 2)
        guard fields.count >= 2, let status = Int(String(decoding: fields[1], as: UTF8.self)),
            (100...599).contains(status)
        else { return nil }
        return Response(status: status, body: String(decoding: response[headEnd.upperBound...], as: UTF8.self))
    }

    /// Polls `fd` for `events` until `deadline` (monotonic nanoseconds). False on timeout or error.
    private static func wait(_ fd: Int32, for events: Int16, until deadline: UInt64) -> Bool {
        while true {
            let now = System.monotonicNanoseconds()
            guard now < deadline else { return false }
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let milliseconds = Int32(min((deadline - now + 999_999) / 1_000_000, 60_000))
            let result = Glibc.poll(&descriptor, 1, milliseconds)
            if result > 0 { return true }
            if result < 0, errno != EINTR { return false }
        }
    }
}
