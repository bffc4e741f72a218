import CairnServer
import Foundation
import Glibc

/// `cairn ctl`: operator commands against a running node's HTTP port.
enum CtlCommand {
    static let help = """
        Usage: cairn ctl <subcommand> [flags]

        Subcommands:
          status                 Print the cluster's nodes and partitions as this node sees them: each
                                 node's addresses, replicas and leaderships; each partition's slots,
                                 leader, replicas and health (ok, moving, no-leader).
          decommission NODE      Drain node NODE (by ID): every replica it holds moves to other nodes and
                                 its leaderships are handed off; then it is removed and can be stopped
                                 with nothing lost. Refused if fewer active nodes than replicas would be
                                 left. Returns once the node is leaving; follow with 'rebalance watch'.
          remove NODE [--force]  Remove a node that is gone for good (dead, or leaving); its replicas
                                 are rebuilt from the others. An active node only with --force.
          rebalance status       Partitions placed as planned, moving, and waiting for a move slot, over
                                 the whole cluster (asks every node); snapshot bytes sent; leaving nodes.
          rebalance watch        The same, refreshed every --interval seconds (a progress bar on a
                                 terminal) until nothing is left to move.

        Flags:
          --addr H:P          The node's HTTP address (its client port + 20000). Default 127.0.0.1:27001,
                              node 1 of 'make run'.
          --timeout S         Seconds to wait for an answer (decommission and remove: for the map to
                              show the change). Default 5 (10 for decommission and remove).
          --force             remove: also remove a node that is active.
          --interval S        rebalance watch: seconds between refreshes. Default 1.
          -h, --help          Print this help.

        Exit status: 0 on success, 1 if the node cannot be reached or refused the request, 2 for bad
        flags.

        """

    struct Options {
        var address = ListenAddress(host: "127.0.0.1", port: 27001)
        var timeoutSeconds: Int?
        var force = false
        var intervalSeconds = 1
        var words: [String] = []
    }

    static func run(_ arguments: [String]) -> Int32 {
        if arguments.isEmpty || arguments.contains("-h") || arguments.contains("--help") {
            if arguments.isEmpty {
                CairnCommand.fail(
                    "ctl: expected a subcommand: status, decommission, remove or rebalance (see 'cairn ctl --help')")
            }
            print(help, terminator: "")
            return 0
        }
        let options = parse(arguments)
        let words = options.words
        switch (words.first, words.count) {
        case ("status", 1):
            return status(options)
        case ("decommission", 2), ("remove", 2):
            guard let node = UInt64(words[1]), node > 0 else {
                CairnCommand.fail("ctl \(words[0]): NODE must be a node ID (a positive number), got '\(words[1])'")
            }
            if words[0] == "decommission", options.force {
                CairnCommand.fail("ctl decommission: --force applies to remove only")
            }
            return changeMembership(words[0], node: node, options)
        case ("rebalance", 2) where words[1] == "status" || words[1] == "watch":
            return rebalance(watch: words[1] == "watch", options)
        case ("decommission", _), ("remove", _):
            CairnCommand.fail("ctl \(words[0]): expected one node ID, e.g. 'cairn ctl \(words[0]) 4'")
        case ("rebalance", _):
            CairnCommand.fail("ctl rebalance: expected 'status' or 'watch'")
        default:
            CairnCommand.fail(
                "ctl: unknown subcommand '\(words.joined(separator: " "))'; expected: status, decommission NODE, "
                    + "remove NODE or rebalance status|watch (see 'cairn ctl --help')")
        }
    }

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var index = 0
        while index < arguments.count {
            var flag = arguments[index]
            index += 1
            guard flag.hasPrefix("-") else {
                options.words.append(flag)
                continue
            }
            if flag == "--force" {
                options.force = true
                continue
            }
            var value: String?
            if let equals = flag.firstIndex(of: "="), flag.hasPrefix("--") {
                value = String(flag[flag.index(after: equals)...])
                flag = String(flag[..<equals])
            }
            guard ["--addr", "--timeout", "--interval"].contains(flag) else {
                CairnCommand.fail("ctl: unknown flag '\(flag)' (see 'cairn ctl --help')")
            }
            if value == nil {
                guard index < arguments.count else { CairnCommand.fail("ctl: \(flag) needs a value") }
                value = arguments[index]
                index += 1
            }
            let text = value!
            switch flag {
            case "--addr":
                guard let parsed = ListenAddress.parse(text) else {
                    CairnCommand.fail("ctl: --addr must be HOST:PORT with an IPv4 host, got '\(text)'")
                }
                options.address = parsed
            case "--timeout":
                guard let seconds = Int(text), (1...600).contains(seconds) else {
                    CairnCommand.fail("ctl: --timeout must be a number of seconds from 1 to 600, got '\(text)'")
                }
                options.timeoutSeconds = seconds
            default:
                guard let seconds = Int(text), (1...3600).contains(seconds) else {
                    CairnCommand.fail("ctl: --interval must be a number of seconds from 1 to 3600, got '\(text)'")
                }
                options.intervalSeconds = seconds
            }
        }
        return options
    }

    static func complain(_ text: String) -> Int32 {
        let line = "cairn: ctl: \(text)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        return 1
    }

    static func noAnswer(_ address: ListenAddress, _ seconds: Int) -> String {
        "no answer from \(address) (refused, or nothing within \(seconds) s); is a node's HTTP port there?"
    }

    // MARK: status

    static func status(_ options: Options) -> Int32 {
        let seconds = options.timeoutSeconds ?? 5
        let address = options.address
        guard
            let response = HTTPProbe.get(
                host: address.host, port: address.port, path: "/v1/status", timeoutMilliseconds: seconds * 1000)
        else { return complain(noAnswer(address, seconds)) }
        guard response.status == 200 else {
            return complain("\(address) answered HTTP \(response.status): \(response.body)")
        }
        print(response.body, terminator: "")
        return 0
    }

    // MARK: decommission and remove

    /// POSTs the request, then waits for the map to show it (re-sending every 2 s: a request on its
    /// way to the meta leader can be lost, and asking again is harmless).
    static func changeMembership(_ action: String, node: UInt64, _ options: Options) -> Int32 {
        let seconds = options.timeoutSeconds ?? 10
        let address = options.address
        let path = "/v1/nodes/\(node)/\(action)" + (options.force ? "?force=1" : "")
        let deadline = Date().addingTimeInterval(TimeInterval(seconds))
        let wanted: Set<String> = action == "decommission" ? ["leaving", "removed"] : ["removed"]
        var lastPost = Date.distantPast
        var answered = false
        while Date() < deadline {
            if Date().timeIntervalSince(lastPost) >= 2 {
                lastPost = Date()
                guard
                    let response = HTTPProbe.request(
                        "POST", host: address.host, port: address.port, path: path, timeoutMilliseconds: 5000)
                else { return complain(noAnswer(address, 5)) }
                switch response.status {
                case 200, 202:
                    answered = true
                case 503:
                    break  // no meta leader right now: ask again
                default:
                    return complain("\(action) \(node): \(errorText(response.body)) (HTTP \(response.status))")
                }
            }
            if answered, let state = nodeState(node, at: address), wanted.contains(state) {
                if action == "decommission" && state == "leaving" {
                    print(
                        "node \(node) is leaving: its replicas move to other nodes, then it is removed "
                            + "(follow with 'cairn ctl rebalance watch --addr \(address)')")
                } else {
                    print("node \(node) is \(state)")
                }
                return 0
            }
            usleep(200_000)
        }
        return complain("\(action) \(node): the cluster map did not show it within \(seconds) s; try again")
    }

    static func errorText(_ body: String) -> String {
        guard let object = json(body), let error = object["error"] as? String else {
            return body.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return error
    }

    static func json(_ text: String) -> [String: Any]? {
        guard let data = text.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    static func fetchJSON(_ address: ListenAddress, _ path: String, seconds: Int = 5) -> [String: Any]? {
        guard
            let response = HTTPProbe.get(
                host: address.host, port: address.port, path: path, timeoutMilliseconds: seconds * 1000),
            response.status == 200
        else { return nil }
        return json(response.body)
    }

    /// The state the map at `address` gives node `node`.
    static func nodeState(_ node: UInt64, at address: ListenAddress) -> String? {
        guard let map = fetchJSON(address, "/v1/cluster"), let nodes = map["nodes"] as? [[String: Any]] else {
            return nil
        }
        let record = nodes.first { ($0["id"] as? NSNumber)?.uint64Value == node }
        return record?["state"] as? String
    }

    // MARK: rebalance

    static func rebalance(watch: Bool, _ options: Options) -> Int32 {
        let seconds = options.timeoutSeconds ?? 5
        let isTerminal = isatty(1) == 1
        var previous: (time: Date, done: Int)?
        while true {
            guard let progress = RebalanceProgress.gather(from: options.address, seconds: seconds) else {
                return complain(noAnswer(options.address, seconds) + " (or it has not joined a cluster)")
            }
            if !watch {
                print(progress.report(), terminator: "")
                return 0
            }
            var rate: Double?
            if let previous, Date().timeIntervalSince(previous.time) > 0 {
                rate = Double(progress.placed - previous.done) / Date().timeIntervalSince(previous.time)
            }
            if previous == nil || (rate ?? 0) > 0 { previous = (Date(), progress.placed) }
            let line = progress.progressLine(rate: rate, width: isTerminal ? 30 : 0)
            if isTerminal {
                print("\r\u{1B}[2K" + line, terminator: "")
                fflush(nil)
            } else {
                print(line)
            }
            if progress.isDone {
                if isTerminal { print("") }
                print("rebalance done: every partition has its planned replicas")
                return 0
            }
            sleep(UInt32(options.intervalSeconds))
        }
    }
}
