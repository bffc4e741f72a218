import CLinux
import CairnCore
import CairnNode
import CairnResilience
import Glibc

/// An outbound connection to one peer (DESIGN.md §7: one connection per pair of nodes and direction;
/// this node only writes on it). Messages wait in `output` only while the connection is being set
/// up; while the peer is unreachable they are dropped, because Raft and the coordinators retry.
final class PeerLink {
    let target: PeerTarget
    var address: String
    var descriptor: Int32 = -1
    var isConnected = false
    var output: [UInt8] = []
    var outputOffset = 0
    /// Registered for EPOLLOUT: connecting, or a write could not finish. Tracked so that a flush
    /// changes the registration only when it must (an epoll_ctl per flush showed in strace).
    var waitingForWritable = false
    /// Failed connection attempts in a row, for the backoff.
    var failures = 0
    /// Monotonic nanoseconds before which no new attempt is made.
    var retryAt: UInt64 = 0

    init(target: PeerTarget, address: String) {
        self.target = target
        self.address = address
    }

    var pendingOutputBytes: Int { output.count - outputOffset }
}

extension Server {
    static let peerFramesSent = MetricFamily(
        "cairn_peer_frames_sent_total", help: "Frames sent to peers.", kind: .counter)
    static let peerFramesReceived = MetricFamily(
        "cairn_peer_frames_received_total", help: "Frames received from peers.", kind: .counter)
    static let peerBytesSent = MetricFamily(
        "cairn_peer_bytes_sent_total", help: "Bytes sent to peers.", kind: .counter)
    static let peerFramesDropped = MetricFamily(
        "cairn_peer_frames_dropped_total",
        help: "Frames not sent because the peer was unreachable (Raft and coordinators retry).", kind: .counter)
    static let peerConnects = MetricFamily(
        "cairn_peer_connect_attempts_total", help: "Outbound peer connection attempts, by result.", kind: .counter)
    static let peerLinkUp = MetricFamily(
        "cairn_peer_link_up", help: "1 while the outbound connection to a peer is established.", kind: .gauge)

    /// Bytes queued for one peer while its connection is being set up, beyond which frames are dropped.
    static let peerQueuedBytesMax = 64 * 1024 * 1024

    // MARK: Sending

    /// Frames each envelope of the core's output and queues it on the link to its peer.
    func sendToPeers(_ sends: [PeerSend]) {
        for send in sends {
            guard let link = link(for: send.to) else {
                shellMetrics.add(Self.peerFramesDropped, [("reason", "unknown_peer")])
                continue
            }
            if !link.isConnected, link.descriptor < 0 { connect(link) }
            guard link.descriptor >= 0, link.pendingOutputBytes < Self.peerQueuedBytesMax else {
                shellMetrics.add(Self.peerFramesDropped, [("reason", "unreachable")])
                continue
            }
            let frame = PeerFrame(kind: PeerEnvelope.frameKind, payload: send.payload).encoded()
            if link.pendingOutputBytes == 0 { pendingPeerFlush.append(link) }
            link.output.append(contentsOf: frame)
            shellMetrics.add(Self.peerFramesSent, [])
            shellMetrics.add(Self.peerBytesSent, [], Double(frame.count))
        }
    }

    func link(for target: PeerTarget) -> PeerLink? {
        if let link = peerLinks[target] { return link }
        let address: String
        switch target {
        case .node(let id):
            guard let known = peerAddresses[id] else { return nil }
            address = known
        case .address(let given):
            address = given
        }
        let link = PeerLink(target: target, address: address)
        peerLinks[target] = link
        return link
    }

    /// The core says where peers listen now: links whose address changed start over.
    func updatePeerAddresses(_ addresses: [NodeID: String]) {
        peerAddresses = addresses
        for (target, link) in peerLinks {
            guard case .node(let id) = target else { continue }
            if let address = addresses[id], address == link.address { continue }
            closeLink(link, failed: false)
            peerLinks.removeValue(forKey: target)
        }
    }

    /// Starts a non-blocking connection, unless the link is backing off after failures.
    func connect(_ link: PeerLink) {
        let now = System.monotonicNanoseconds()
        guard now >= link.retryAt else { return }
        guard let address = ListenAddress.parse(link.address) else {
            link.failures += 1
            link.retryAt = now + backoffNanoseconds(link.failures)
            logger.log(.warn, "peer address is not HOST:PORT with an IPv4 host", [("address", link.address)])
            return
        }
        let fd = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        System.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(address.port).bigEndian)
        _ = inet_pton(AF_INET, address.host, &socketAddress.sin_addr)
        let result = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 || errno == EINPROGRESS else {
            close(fd)
            link.failures += 1
            link.retryAt = now + backoffNanoseconds(link.failures)
            shellMetrics.add(Self.peerConnects, [("result", "failed")])
            return
        }
        link.descriptor = fd
        link.isConnected = false
        register(fd, as: .peerLink(link), events: EPOLLOUT.rawValue | EPOLLIN.rawValue)
        link.waitingForWritable = true
    }

    /// Reconnects back off exponentially with full jitter: uniform in [0, min(2 s, 20 ms × 2^failures)].
    static let peerBackoff = Backoff(base: .milliseconds(20), cap: .seconds(2))

    func backoffNanoseconds(_ failures: Int) -> UInt64 {
        Self.peerBackoff.delay(attempt: failures, using: &jitter).nanoseconds
    }

    func serviceLink(_ link: PeerLink, _ events: UInt32) {
        if !link.isConnected {
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(link.descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0, events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) == 0,
                !System.isSelfConnected(link.descriptor)
            else {
                // A connection to a loopback port nobody listens on can pick that very port as its
                // source and connect to itself (TCP simultaneous open): it would swallow every frame,
                // and hold the port the peer needs when it restarts.
                closeLink(link, failed: true)
                return
            }
            link.isConnected = true
            link.failures = 0
            shellMetrics.add(Self.peerConnects, [("result", "connected")])
            shellMetrics.set(Self.peerLinkUp, [("peer", link.target.description)], 1)
            modify(link.descriptor, events: EPOLLIN.rawValue)
            link.waitingForWritable = false
        }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            // Nothing is ever sent back on an outbound link: readable means closed or broken, and bytes
            // mean the other end is not a Cairn node's inbound side.
            let count = scratch.withUnsafeMutableBytes { Glibc.read(link.descriptor, $0.baseAddress, $0.count) }
            if count >= 0 || (errno != EAGAIN && errno != EINTR) {
                closeLink(link, failed: true)
                return
            }
        }
        flushLink(link)
    }

    func flushLink(_ link: PeerLink) {
        guard link.isConnected, link.pendingOutputBytes > 0 else { return }
        while link.pendingOutputBytes > 0 {
            let written = link.output.withUnsafeBytes {
                Glibc.write(link.descriptor, $0.baseAddress! + link.outputOffset, link.pendingOutputBytes)
            }
            if written > 0 {
                link.outputOffset += written
            } else if written < 0, errno == EINTR {
                continue
            } else if written < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                if !link.waitingForWritable {
                    modify(link.descriptor, events: EPOLLIN.rawValue | EPOLLOUT.rawValue)
                    link.waitingForWritable = true
                }
                return
            } else {
                closeLink(link, failed: true)
                return
            }
        }
        link.output.removeAll(keepingCapacity: link.output.capacity <= 1024 * 1024)
        link.outputOffset = 0
        if link.waitingForWritable {
            modify(link.descriptor, events: EPOLLIN.rawValue)
            link.waitingForWritable = false
        }
    }

    func closeLink(_ link: PeerLink, failed: Bool) {
        if link.descriptor >= 0 { unregister(link.descriptor) }
        if link.isConnected { shellMetrics.set(Self.peerLinkUp, [("peer", link.target.description)], 0) }
        link.descriptor = -1
        link.isConnected = false
        link.output.removeAll()
        link.outputOffset = 0
        if failed {
            link.failures += 1
            link.retryAt = System.monotonicNanoseconds() + backoffNanoseconds(link.failures)
            shellMetrics.add(Self.peerConnects, [("result", "lost")])
        }
    }

    // MARK: Receiving

    /// Reads frames from an inbound peer connection and hands each envelope to the core. A bad frame
    /// or envelope closes the connection and is counted: nothing a peer sends is trusted.
    func readPeer(_ connection: PeerConnection) {
        var total = 0
        while total < Limits.readBytesPerTurnMax {
            let count = scratch.withUnsafeMutableBytes { Glibc.read(connection.descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                connection.decoder.append(scratch[0..<count])
                total += count
                // A short read emptied the socket: another read would only return EAGAIN (epoll is
                // level-triggered, so bytes arriving later are reported again).
                if count < scratch.count { break }
            } else if count == 0 {
                // The peer closed: hand over the frames it sent before that, then close.
                if deliverFrames(connection) {
                    shellMetrics.add(Self.peerRejected, [("reason", "closed")])
                    unregister(connection.descriptor)
                }
                return
            } else if errno == EINTR {
                continue
            } else {
                break
            }
        }
        _ = deliverFrames(connection)
    }

    /// Decodes every whole frame buffered on `connection` and steps the core with each envelope.
    /// Returns false if a bad frame closed the connection.
    func deliverFrames(_ connection: PeerConnection) -> Bool {
        while true {
            let frame: PeerFrame?
            do {
                frame = try connection.decoder.next()
            } catch {
                rejectPeer(connection, reason: "bad_frame", detail: error.description)
                return false
            }
            guard let frame else { return true }
            guard frame.kind == PeerEnvelope.frameKind else {
                rejectPeer(connection, reason: "bad_frame", detail: "unknown frame kind \(frame.kind)")
                return false
            }
            let envelope: PeerEnvelope
            do {
                envelope = try PeerEnvelope.decode(frame.payload)
            } catch {
                rejectPeer(connection, reason: "bad_envelope", detail: error.description)
                return false
            }
            shellMetrics.add(Self.peerFramesReceived, [])
            step(.peer(envelope))
        }
    }

    func rejectPeer(_ connection: PeerConnection, reason: String, detail: String) {
        logger.log(.warn, "closing peer connection: bad input", [("reason", reason), ("detail", detail)])
        shellMetrics.add(Self.peerRejected, [("reason", reason)])
        unregister(connection.descriptor)
    }

    func flushPeers() {
        let links = pendingPeerFlush
        pendingPeerFlush.removeAll(keepingCapacity: true)
        for link in links { flushLink(link) }
    }
}
