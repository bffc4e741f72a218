import CairnCore
import Foundation
import Testing

@testable import CairnRaft

/// Golden transcript tests (STYLE.md §2.8 item 2), in the manner of etcd's `testdata/*.txt`.
///
/// Each file under `Golden/` is a script: lines starting with `> ` are commands, `#` lines are comments,
/// and every other line is the output the previous command produced. The test runs the commands on a
/// `RaftCluster`, renders the file again and compares. `GOLDEN_UPDATE=1 swift test` rewrites the files,
/// and the diff is reviewed like code.
///
/// Commands: `cluster N [prevote=off] [checkquorum=off] [lease=on] [chunk=B] [inflight=K]`,
/// `tick N [xK]`, `tick-all [xK]`, `deliver-all`, `deliver [FROM [TO]]`, `run [K]` (K rounds of tick-all +
/// deliver-all), `settle [K]` (the same, printing only role changes, applies, reads and replies), `elect N`,
/// `propose N|leader TEXT`, `read N|leader`, `partition 1 2 | 3`, `heal`, `crash N`, `restart N`,
/// `snapshot N`, `add-node N`, `add-learner L N`, `promote L N`, `remove L N`, `replace-voters L 1,4,5`,
/// `transfer L N`, `status`.
@Suite("Raft golden transcripts")
struct RaftGoldenTests {
    static let directory: String = {
        let file = #filePath
        let end = file.lastIndex(of: "/") ?? file.endIndex
        return String(file[..<end]) + "/Golden"
    }()

    static let files: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".txt") }.sorted()
    }()

    @Test("golden transcripts match", arguments: files)
    func transcriptMatches(file: String) throws {
        let path = Self.directory + "/" + file
        let original = try String(contentsOfFile: path, encoding: .utf8)
        var runner = GoldenRunner()
        let rendered = runner.run(original)
        if ProcessInfo.processInfo.environment["GOLDEN_UPDATE"] == "1" {
            try rendered.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let expectedLines = original.split(separator: "\n", omittingEmptySubsequences: false)
        let actualLines = rendered.split(separator: "\n", omittingEmptySubsequences: false)
        let firstDifference = zip(expectedLines, actualLines).enumerated().first { $0.element.0 != $0.element.1 }
        if let (line, pair) = firstDifference {
            Issue.record("\(file):\(line + 1): expected «\(pair.0)», got «\(pair.1)» (GOLDEN_UPDATE=1 rewrites)")
        } else if expectedLines.count != actualLines.count {
            Issue.record(
                "\(file): expected \(expectedLines.count) lines, got \(actualLines.count) (GOLDEN_UPDATE=1 rewrites)")
        }
        #expect(!rendered.contains("VIOLATION"), "\(file) shows a safety violation")
    }

    @Test("the golden directory holds the expected scripts")
    func filesExist() {
        #expect(Self.files.count >= 6, "found \(Self.files)")
    }
}

/// Runs a golden script against a cluster and renders it with fresh output.
struct GoldenRunner {
    var cluster = RaftCluster(size: 1)
    var nextRequest: UInt64 = 1

    mutating func run(_ script: String) -> String {
        var rendered: [String] = []
        for line in script.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") || (line.isEmpty && rendered.last?.isEmpty == false) {
                rendered.append(String(line))
            }
            guard line.hasPrefix("> ") else { continue }
            rendered.append(String(line))
            cluster.transcript = []
            let violationsBefore = cluster.violations.count
            let words = line.dropFirst(2).split(separator: " ").map(String.init)
            let error = execute(words)
            rendered.append(contentsOf: cluster.transcript)
            if let error { rendered.append("error: \(error)") }
            for violation in cluster.violations[violationsBefore...] { rendered.append("VIOLATION \(violation)") }
        }
        while rendered.last?.isEmpty == true { rendered.removeLast() }
        return rendered.joined(separator: "\n") + "\n"
    }

    private func node(_ word: String?) -> NodeID? {
        guard let word else { return nil }
        if word == "leader" { return cluster.leader }
        return UInt64(word).map { NodeID($0) }
    }

    private func repeatCount(_ words: [String]) -> Int {
        words.first { $0.hasPrefix("x") }.flatMap { Int($0.dropFirst()) } ?? 1
    }

    private mutating func request() -> RequestID {
        defer { nextRequest += 1 }
        return RequestID(rawValue: nextRequest)
    }

    /// Runs one command; returns an error text for a command it cannot understand.
    private mutating func execute(_ words: [String]) -> String? {
        guard let command = words.first else { return "empty command" }
        let arguments = Array(words.dropFirst())
        switch command {
        case "cluster": startCluster(arguments)
        case "tick":
            guard let id = node(arguments.first) else { return "tick needs a node" }
            cluster.tick(id, count: repeatCount(arguments))
        case "tick-all": cluster.tickAll(count: repeatCount(arguments))
        case "deliver-all": cluster.deliverAll()
        case "deliver": cluster.deliverQueued(from: node(arguments.first), to: node(arguments.dropFirst().first))
        case "settle": settle(rounds: arguments.first.flatMap { Int($0) } ?? 5, isQuiet: true)
        case "run": settle(rounds: arguments.first.flatMap { Int($0) } ?? 1, isQuiet: false)
        case "elect":
            guard let id = node(arguments.first) else { return "elect needs a node" }
            cluster.elect(id)
        case "propose":
            guard let id = node(arguments.first), arguments.count >= 2 else { return "propose needs a node and text" }
            let text = arguments.dropFirst().joined(separator: " ")
            cluster.step(id, .propose(Array(text.utf8), request: request()))
        case "read":
            guard let id = node(arguments.first) else { return "read needs a node" }
            cluster.step(id, .readIndex(request: request()))
        case "partition": partition(arguments)
        case "heal": cluster.heal()
        case "crash", "restart", "snapshot", "add-node", "status": return nodeCommand(command, arguments)
        default: return membershipCommand(command, arguments)
        }
        return nil
    }

    private mutating func nodeCommand(_ command: String, _ arguments: [String]) -> String? {
        if command == "status" {
            for id in cluster.nodes {
                let line = status(id)
                cluster.render(line)
            }
            return nil
        }
        guard let id = node(arguments.first) else { return "\(command) needs a node" }
        switch command {
        case "crash": cluster.crash(id)
        case "restart": cluster.restart(id)
        case "snapshot": cluster.snapshot(id)
        default: cluster.addNode(id)
        }
        return nil
    }

    private mutating func membershipCommand(_ command: String, _ arguments: [String]) -> String? {
        guard let leader = node(arguments.first), arguments.count >= 2 else { return "\(command) needs two arguments" }
        let target = node(arguments[1]) ?? 0
        let change: MembershipChange
        switch command {
        case "add-learner": change = .addLearner(target)
        case "promote": change = .promoteLearner(target)
        case "remove": change = .remove(target)
        case "replace-voters":
            change = .replaceVoters(arguments[1].split(separator: ",").compactMap { UInt64($0) }.map { NodeID($0) })
        case "transfer":
            cluster.step(leader, .transferLeadership(to: target, request: request()))
            return nil
        default: return "unknown command \(command)"
        }
        cluster.step(leader, .changeMembership(change, request: request()))
        return nil
    }

    private mutating func startCluster(_ arguments: [String]) {
        let size = arguments.first.flatMap { Int($0) } ?? 3
        let options = Dictionary(
            arguments.dropFirst().compactMap { word -> (String, String)? in
                let parts = word.split(separator: "=").map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }, uniquingKeysWith: { $1 })
        cluster = RaftCluster(size: size) { config in
            if options["prevote"] == "off" { config.preVote = false }
            if options["checkquorum"] == "off" { config.checkQuorum = false }
            if options["lease"] == "on" { config.leaseReads = true }
            if let chunk = options["chunk"].flatMap({ Int($0) }) { config.snapshotChunkBytesMax = chunk }
            if let inflight = options["inflight"].flatMap({ Int($0) }) { config.inflightAppendsMax = inflight }
        }
        nextRequest = 1
    }

    private mutating func partition(_ arguments: [String]) {
        var groups: [[NodeID]] = [[]]
        for word in arguments {
            if word == "|" {
                groups.append([])
            } else if let id = node(word) {
                groups[groups.count - 1].append(id)
            }
        }
        cluster.partition(groups)
    }

    private mutating func settle(rounds: Int, isQuiet: Bool) {
        for _ in 0..<rounds {
            cluster.tickAll()
            cluster.deliverAll()
        }
        guard isQuiet else { return }
        cluster.transcript = cluster.transcript.filter { line in
            !line.contains("->") || line.contains(" -> ")
        }
    }

    private func status(_ id: NodeID) -> String {
        guard let core = cluster.cores[id] else { return "\(id) down" }
        let machine = cluster.machines[id]?.joined(separator: ",") ?? ""
        return "\(id) \(core.role) term=\(core.term) leader=\(core.leader.map(\.description) ?? "none") "
            + "commit=\(core.commitIndex) last=\(core.lastIndex) snapshot=\(core.snapshotMetadata.index) "
            + "\(core.configuration) applied=[\(machine)]"
    }
}
