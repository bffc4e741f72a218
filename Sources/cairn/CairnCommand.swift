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
          version    Print the version.
          help       Print this help.

        'dev', 'ctl', 'bench' and 'sim' arrive with clustering, the load tool and the simulator.

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
        case "version", "--version", "-v":
            if arguments.contains("--help") || arguments.contains("-h") {
                print("Usage: cairn version\n\nPrints Cairn's version and the Redis version whose protocol it follows.")
                return
            }
            print("cairn \(CairnVersion.cairn) (Redis protocol \(CairnVersion.redisCompatible))")
        case "help", "--help", "-h":
            print(usage, terminator: "")
        case "dev", "ctl", "bench", "sim":
            fail("'cairn \(command)' is not available in this version yet; run 'cairn server --help' to start a node")
        default:
            fail("unknown command '\(command)'; expected one of: server, version, help")
        }
    }

    /// Prints `message` to stderr and exits with status 2.
    static func fail(_ message: String) -> Never {
        let line = "cairn: \(message)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        exit(2)
    }
}
