import CLinux
import CairnBench
import Glibc

/// The system calls the load tool uses: clocks, addresses, sockets.
enum BenchSystem {
    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    static func errorText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// A short name for a socket error, used as an error kind in reports.
    static func errorKind(_ code: Int32) -> String {
        switch code {
        case ECONNREFUSED: "connection-refused"
        case ECONNRESET: "connection-reset"
        case EPIPE: "connection-closed"
        case ETIMEDOUT: "timeout"
        case EHOSTUNREACH, ENETUNREACH: "unreachable"
        default: "socket-error"
        }
    }

    /// Resolves `endpoint` to an IPv4 socket address.
    static func resolve(_ endpoint: Endpoint) -> Result<sockaddr_in, BenchFailure> {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(endpoint.port).bigEndian)
        if inet_pton(AF_INET, endpoint.host, &address.sin_addr) == 1 { return .success(address) }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(endpoint.host, nil, &hints, &list)
        guard status == 0, let first = list, let found = first.pointee.ai_addr else {
            return .failure(
                .unreachable(
                    endpoint, "cannot resolve host '\(endpoint.host)': \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        found.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address.sin_addr = $0.pointee.sin_addr }
        return .success(address)
    }

    /// Starts a non-blocking connect; the socket becomes writable when it completes or fails.
    static func startConnect(_ address: sockaddr_in) -> ConnectStart {
        let fd = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var target = address
        let result = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result == 0 || errno == EINPROGRESS { return .started(fd) }
        let code = errno
        close(fd)
        return .failed(code)
    }

    /// The pending error of a socket whose connect finished (0: connected).
    static func socketError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        return code
    }

    static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
        bytes.removeAll()
    }
}

/// A non-blocking connect: started (the descriptor), or failed at once (the errno).
enum ConnectStart {
    case started(Int32)
    case failed(Int32)
}

/// Why a benchmark could not run or finish.
public enum BenchFailure: Error, CustomStringConvertible {
    case unreachable(Endpoint, String)
    case protocolError(Endpoint, String)
    case setup(String)
    case stalled(String)

    public var description: String {
        switch self {
        case .unreachable(let endpoint, let reason): "cannot reach \(endpoint): \(reason)"
        case .protocolError(let endpoint, let reason): "\(endpoint) does not speak RESP as expected: \(reason)"
        case .setup(let text): text
        case .stalled(let text): text
        }
    }
}
