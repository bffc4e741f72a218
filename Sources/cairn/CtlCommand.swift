import CairnServer
import Glibc

/// `cairn ctl`: operator commands against a running node's HTTP port.
enum CtlCommand {
    static let help = """
        Usage: cairn ctl <subcommand> [flags]

        Subcommands:
          status     Print the cluster's nodes and partitions as this node sees them: each node's
                     addresses, replicas and leaderships; each partition's slots, leader, replicas
                     and health (ok, moving: replicas are being added or removed, no-leader).

        Flags:
          --addr H:P          The node's HTTP address (its client port + 20000). Default 127.0.0.1:27001,
                              node 1 of 'make run'.
          --timeout S         Seconds to wait for the answer. Default 5.
          -h, --help          Print this help.

        Exit status: 0 on success, 1 if the node cannot be reached, 2 for bad flags.

        """

    static func run(_ arguments: [String]) -> Int32 {
        guard let subcommand = arguments.first, !subcommand.hasPrefix("-") else {
            if arguments.contains("-h") || arguments.contains("--help") {
                print(help, terminator: "")
                return 0
            }
            CairnCommand.fail("ctl: expected a subcommand: status (see 'cairn ctl --help')")
        }
        guard subcommand == "status" else {
            CairnCommand.fail("ctl: unknown subcommand '\(subcommand)'; expected: status (see 'cairn ctl --help')")
        }
        var address = ListenAddress(host: "127.0.0.1", port: 27001)
        var timeoutSeconds = 5
        var index = 1
        while index < arguments.count {
            var flag = arguments[index]
            var value: String?
            if let equals = flag.firstIndex(of: "="), flag.hasPrefix("--") {
                value = String(flag[flag.index(after: equals)...])
                flag = String(flag[..<equals])
            }
            if flag == "-h" || flag == "--help" {
                print(help, terminator: "")
                return 0
            }
            guard flag == "--addr" || flag == "--timeout" else {
                CairnCommand.fail("ctl status: unknown flag '\(flag)' (see 'cairn ctl --help')")
            }
            if value == nil {
                index += 1
                guard index < arguments.count else { CairnCommand.fail("ctl status: \(flag) needs a value") }
                value = arguments[index]
            }
            let text = value!
            if flag == "--addr" {
                guard let parsed = ListenAddress.parse(text) else {
                    CairnCommand.fail("ctl status: --addr must be HOST:PORT with an IPv4 host, got '\(text)'")
                }
                address = parsed
            } else {
                guard let seconds = Int(text), (1...600).contains(seconds) else {
                    CairnCommand.fail("ctl status: --timeout must be a number of seconds from 1 to 600, got '\(text)'")
                }
                timeoutSeconds = seconds
            }
            index += 1
        }
        guard
            let response = HTTPProbe.get(
                host: address.host, port: address.port, path: "/v1/status", timeoutMilliseconds: timeoutSeconds * 1000)
        else {
            let line =
                "cairn: ctl status: no answer from \(address) (refused, or nothing within \(timeoutSeconds) s); is a node's HTTP port there?\n"
            _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
            return 1
        }
        guard response.status == 200 else {
            let line = "cairn: ctl status: \(address) answered HTTP \(response.status): \(response.body)\n"
            _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
            return 1
        }
        print(response.body, terminator: "")
        return 0
    }
}
