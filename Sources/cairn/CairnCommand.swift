import CairnNode
import CairnServer
import Glibc

/// `cairn`: one binary, several subcommands. Flag errors name the flag, the value and what is
/// expected, and exit with status 2 (as usage errors do in most Unix tools).
@main
enum CairnCommand {
    static let usage = """
        cairn \(CairnVersion.cairn): a horizontally scalable, fault-tolerant key-value store that speaks the Redis protocol.

        Usage: cairn <command> [flags]

        Commands:
          server     Run a node (see 'cairn server --help').
          dev        Run a local cluster of N nodes in the foreground (see 'cairn dev --help').
          ctl        Operator commands against a running node (see 'cairn ctl --help').
          sim        Run the deterministic simulator (see 'cairn sim --help').
          bench      Load a Redis-protocol endpoint, Cairn or Redis (see 'cairn bench --help').
          check      Check a recorded client history for linearizability (see 'cairn check --help').
          version    Print the version.
          help       Print this help.

        """

    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard let command = arguments.first else {
            print(usage, terminator: "")
            exit(2)
        }
        arguments.removeFirst()
        switch command {
        case "server":
            exit(ServerCommand.run(arguments))
        case "dev":
            exit(DevCommand.run(arguments))
        case "ctl":
            exit(CtlCommand.run(arguments))
        case "sim":
            exit(SimCommand.run(arguments))
        case "bench":
            exit(BenchCommand.run(arguments))
        case "check":
            exit(CheckCommand.run(arguments))
        case "version", "--version", "-v":
            if arguments.contains("--help") || arguments.contains("-h") {
                print("Usage: cairn version\n\nPrints Cairn's version and the Redis version whose protocol it follows.")
                return
            }
            print("cairn \(CairnVersion.cairn) (Redis protocol \(CairnVersion.redisCompatible))")
        case "help", "--help", "-h":
            print(usage, terminator: "")
        default:
            fail("unknown command '\(command)'; expected one of: server, dev, ctl, bench, sim, check, version, help")
        }
    }

    /// Prints `message` to stderr and exits with status 2.
    static func fail(_ message: String) -> Never {
        let line = "cairn: \(message)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        exit(2)
    }
}
