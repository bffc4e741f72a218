import CairnServer
import Foundation

/// The cluster's rebalance as `cairn ctl rebalance` shows it: every node reports the partitions it
/// leads (`GET /v1/rebalance`); a partition no reachable node leads is `unknown`.
struct RebalanceProgress {
    var epoch = 0
    var partitions = 0
    var placed = 0
    var moving = 0
    var waiting = 0
    var nodes: [(id: Int, state: String)] = []
    var unreachable: [String] = []
    var snapshotBytesSent = 0
    var snapshotBytesThrottled = 0
    var maxMoves: Int?

    var unknown: Int { max(0, partitions - placed - moving - waiting) }
    var leaving: [Int] { nodes.filter { $0.state == "leaving" }.map(\.id) }
    var isDone: Bool { unknown == 0 && moving == 0 && waiting == 0 && leaving.isEmpty }

    /// Asks the node at `address` for the map, then every node in it for its part.
    static func gather(from address: ListenAddress, seconds: Int) -> RebalanceProgress? {
        guard let map = CtlCommand.fetchJSON(address, "/v1/cluster", seconds: seconds),
            map["joined"] as? Bool == true, let nodes = map["nodes"] as? [[String: Any]]
        else { return nil }
        var progress = RebalanceProgress()
        progress.epoch = (map["epoch"] as? NSNumber)?.intValue ?? 0
        progress.partitions = (map["partitions"] as? [Any])?.count ?? 0
        var seen = Set<Int>()
        for node in nodes {
            let id = (node["id"] as? NSNumber)?.intValue ?? 0
            let state = node["state"] as? String ?? "?"
            progress.nodes.append((id, state))
            guard state != "removed" else { continue }
            let http = node["http"] as? String ?? ""
            guard let nodeAddress = ListenAddress.parse(http),
                let part = CtlCommand.fetchJSON(nodeAddress, "/v1/rebalance", seconds: seconds),
                let rows = part["partitions"] as? [[String: Any]]
            else {
                progress.unreachable.append("node \(id) (\(http))")
                continue
            }
            progress.snapshotBytesSent += (part["snapshot_bytes_sent"] as? NSNumber)?.intValue ?? 0
            progress.snapshotBytesThrottled += (part["snapshot_bytes_throttled"] as? NSNumber)?.intValue ?? 0
            progress.maxMoves = progress.maxMoves ?? (part["max_moves"] as? NSNumber)?.intValue
            for row in rows {
                // Two nodes may both think they lead a partition for a moment: count it once.
                guard let partition = (row["partition"] as? NSNumber)?.intValue, seen.insert(partition).inserted
                else { continue }
                switch row["state"] as? String {
                case "placed": progress.placed += 1
                case "moving": progress.moving += 1
                default: progress.waiting += 1
                }
            }
        }
        return progress
    }

    func report() -> String {
        func named(_ state: String) -> String {
            nodes.filter { $0.state == state }.map { "node \($0.id)" }.joined(separator: ", ")
        }
        let present = nodes.filter { $0.state != "removed" }.count
        var summary = "cluster epoch \(epoch): \(present) nodes (\(nodes.filter { $0.state == "active" }.count) active"
        for state in ["leaving", "dead"] where nodes.contains(where: { $0.state == state }) {
            summary += ", \(state): " + named(state)
        }
        var lines = [
            summary + ")",
            "partitions: \(partitions); placed as planned \(placed), moving \(moving), waiting \(waiting)"
                + (maxMoves.map { " (a leader starts a move while fewer than \($0) of its node's partitions move)" }
                    ?? "")
                + ", no leader reached \(unknown)",
            "snapshot bytes sent: \(Self.bytes(snapshotBytesSent)) (held back by --move-rate now: \(Self.bytes(snapshotBytesThrottled)))",
        ]
        if !unreachable.isEmpty { lines.append("unreachable: " + unreachable.joined(separator: ", ")) }
        lines.append(
            isDone ? "rebalance: done" : "rebalance: in progress (\(partitions - placed) partitions to go)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line: a bar of `width` characters (none if 0), counts, rate and time left.
    func progressLine(rate: Double?, width: Int) -> String {
        var line = ""
        if width > 0, partitions > 0 {
            let filled = width * placed / partitions
            line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
        }
        line += "\(placed)/\(partitions) placed, \(moving) moving, \(waiting) waiting"
        if unknown > 0 { line += ", \(unknown) no leader reached" }
        if !leaving.isEmpty { line += "; leaving: " + leaving.map { "node \($0)" }.joined(separator: ", ") }
        line += "; sent \(Self.bytes(snapshotBytesSent))"
        if let rate, rate > 0 {
            line += String(format: "; %.1f partitions/s, about %.0f s left", rate, Double(partitions - placed) / rate)
        }
        return line
    }

    static func bytes(_ count: Int) -> String {
        if count < 1024 { return "\(count) B" }
        if count < 1 << 20 { return String(format: "%.1f KiB", Double(count) / 1024) }
        if count < 1 << 30 { return String(format: "%.1f MiB", Double(count) / Double(1 << 20)) }
        return String(format: "%.2f GiB", Double(count) / Double(1 << 30))
    }
}
