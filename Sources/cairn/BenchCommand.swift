import CairnBench
import CairnBenchRunner
import Glibc

/// `cairn bench`: load testing of any Redis-protocol endpoint (Cairn or Redis), with honest latency.
enum BenchCommand {
    static let help = """
        Usage: cairn bench [--target HOST:PORT[,HOST:PORT...]] [--workload NAME] [-c N] [-P N] [--duration D]
                           [--rate R [--profile P]] [--keys N] [--value-size N|A..B] [--json FILE] [--html FILE]
                           [--compare HOST:PORT] [--fault CMD --fault-at T] [--cluster] [--resp 2|3] [--retries N] [--no-breakers] [--quiet]

        Loads a Redis-protocol endpoint and reports throughput and latency percentiles (p50, p90, p99, p99.9,
        max) overall, per operation kind and per second. Closed loop by default: each connection keeps
        --pipeline requests in flight. With --rate it runs open loop: requests start on a schedule, whatever
        the server does, and latency counts from each request's intended start (no coordinated omission).

        Flags:
          --target H:P[,H:P]    Endpoints. Plain mode spreads the connections over them. Default 127.0.0.1:7379.
          --workload NAME       set, get, mixed (80% GET, 20% SET), or YCSB ycsb-a (50/50 read/update),
                                ycsb-b (95/5), ycsb-c (read only), ycsb-d (read latest, 5% insert),
                                ycsb-e (short scans as MGET, 5% insert), ycsb-f (read-modify-write). Default set.
          -c, --clients N       Connections (per node with --cluster). Default 50.
          -P, --pipeline N      Requests in flight per connection. Default 1.
          -d, --duration D      Length of the run phase: 30s, 500ms, 2m. Default 10s.
          --rate R              Open loop at R operations per second (the base rate of --profile).
          --profile P           Rate over time (needs --rate): constant; ramp[:from=R]; step:every=D[,by=R];
                                spike[:x=10,for=5s,every=30s,at=15s] (x times the rate for 'for' every 'every').
          --keys N              Records (keys key:000000000000 ...). Default 100000.
          --value-size N|A..B   Value bytes, fixed or uniform in a range. Default 100.
          --no-load             Skip the load phase (which writes every record before reading workloads).
          --json FILE           Write the full report (with the per-second series) as JSON.
          --html FILE           Write a self-contained HTML report with SVG plots.
          --compare H:P         Run the same benchmark against a second endpoint afterwards; print ratios.
          --fault CMD           Run the shell command CMD at --fault-at T into the run (for example a kill -9
          --fault-at T          of a node); the report shows the unavailability window and errors by kind.
          --cluster             Route by CLUSTER SLOTS (hash slots with {hash tags}), follow MOVED and ASK.
          --resp 2|3            Protocol version (3 sends HELLO 3 on each connection). Default 2.
          --timeout D           Deadline of every network wait (connect, each reply, the final drain), and of
                                each operation from its intended start: one that could not be sent by then
                                fails as 'deadline' without being sent. Default 5s.
          --retries N           Attempts after the first for an operation that failed retryably (TRYAGAIN,
                                CLUSTERDOWN, LOADING, a timeout or a broken connection), each after a backoff
                                with full jitter (10 ms doubling to 1 s), within a retry budget of 10% of
                                operations (plus 10 per second). Latency counts from the first attempt's
                                intended start. 0 to 10; 0 never retries. Default 2.
          --no-breakers         No circuit breaker per node. By default an operation for a node whose
                                timeouts and broken connections reached 50% of at least 20 operations in
                                2 s fails fast as circuit-open for 1 s; then 3 probes decide whether it
                                recovered.
          --seed N              Seed of the workload's random choices (printed in the report).
          -q, --quiet           No progress line (the summary is still printed).
          -h, --help            Print this help.

        Example: cairn bench --target 127.0.0.1:7379 --workload ycsb-a -c 50 -P 16 --duration 30s --html report.html

        """

    static func run(_ arguments: [String]) -> Int32 {
        switch BenchSettings.parse(arguments) {
        case .failure(let error):
            CairnCommand.fail("bench: \(error) (see 'cairn bench --help')")
        case .success(.help):
            print(help, terminator: "")
            return 0
        case .success(.settings(let settings)):
            return BenchRunner.run(settings)
        }
    }
}
