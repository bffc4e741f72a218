import CLinux
import CairnBench
import CairnRESP
import Glibc

/// A blocking request/reply connection for setup: probing an endpoint, HELLO, INFO, CLUSTER SLOTS.
/// Every wait has a deadline (poll with a timeout), so an unreachable or silent endpoint ends in an
/// error, never a hang.
final class SyncConnection {
    let endpoint: Endpoint
    let fd: Int32
    let timeout: UInt64
    private var input: [UInt8] = []

    /// Connects within `timeout` nanoseconds.
    init(_ endpoint: Endpoint, timeout: UInt64) throws(BenchFailure) {
        self.endpoint = endpoint
        self.timeout = timeout
        let address: sockaddr_in
        switch BenchSystem.resolve(endpoint) {
        case .success(let resolved): address = resolved
        case .failure(let failure): throw failure
        }
        switch BenchSystem.startConnect(address) {
        case .failed(let code): throw .unreachable(endpoint, BenchSystem.errorText(code))
        case .started(let descriptor): fd = descriptor
        }
        let deadline = BenchSystem.monotonicNanoseconds() + timeout
        guard wait(for: Int16(POLLOUT), until: deadline) else {
            close(fd)
            throw .unreachable(endpoint, "no connection within \(BenchDuration.format(timeout))")
        }
        let code = BenchSystem.socketError(fd)
        guard code == 0 else {
            close(fd)
            throw .unreachable(endpoint, BenchSystem.errorText(code))
        }
    }

    deinit { close(fd) }

    /// Polls until `events` or the deadline; true if the event came.
    private func wait(for events: Int16, until deadline: UInt64) -> Bool {
        while true {
            let now = BenchSystem.monotonicNanoseconds()
            guard now < deadline else { return false }
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let milliseconds = Int32(min((deadline - now + 999_999) / 1_000_000, 60_000))
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
        }
    }

    /// Sends one command and reads its reply, within the timeout.
    func call(_ words: [String]) throws(BenchFailure) -> RESPValue {
        let deadline = BenchSystem.monotonicNanoseconds() + timeout
        var request = CommandEncoder.command(words)
        var offset = 0
        while offset < request.count {
            let written = request.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written > 0 {
                offset += written
            } else if errno == EAGAIN || errno == EINTR {
                guard wait(for: Int16(POLLOUT), until: deadline) else {
                    throw .unreachable(endpoint, "timed out sending \(words.first ?? "")")
                }
            } else {
                throw .unreachable(endpoint, BenchSystem.errorText())
            }
        }
        request.removeAll()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let step = input.withUnsafeBufferPointer { ReplyScanner.scan($0, from: 0) }
            switch step {
            case .reply(let end, _):
                guard let (value, _) = ReplyScanner.parse(input) else {
                    throw .protocolError(endpoint, "a reply to \(words.first ?? "") could not be parsed")
                }
                input.removeFirst(end)
                return value
            case .invalid(let reason):
                throw .protocolError(endpoint, reason)
            case .needMoreBytes:
                guard input.count < 64 * 1024 * 1024 else { throw .protocolError(endpoint, "reply larger than 64 MiB") }
                guard wait(for: Int16(POLLIN), until: deadline) else {
                    throw .unreachable(
                        endpoint, "no reply to \(words.first ?? "") within \(BenchDuration.format(timeout))")
                }
                let count = read(fd, &buffer, buffer.count)
                if count == 0 { throw .unreachable(endpoint, "the connection was closed by the server") }
                if count < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw .unreachable(endpoint, BenchSystem.errorText())
                }
                input.append(contentsOf: buffer[0..<count])
            }
        }
    }
}

extension RESPValue {
    /// The text of a bulk, simple or verbatim string.
    var text: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .simple(let text): text
        case .verbatim(_, let text): text
        default: nil
        }
    }
}
