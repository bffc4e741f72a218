#!/usr/bin/env bash
# Measure a rebalance: a 4th node joins a loaded 3-node Cairn cluster (`make rebalance-bench`;
# issue 5's benchmark). Not a test: it never fails on numbers, only on setup.
#
# On 127.0.0.1 with temporary data dirs:
#   1. starts 3 x `cairn server --fsync always` (node 1 founds the cluster: 128 partitions, 3
#      replicas each; 2 and 3 --join it) and waits until every partition has 3 voters and its
#      preferred leader;
#   2. fills it with N distinct keys (--keys, BENCH_KEYS) key:000000000000 .. (100-byte values), each written once:
#      MSETs of 100 keys of one partition, pipelined to the partition's leader
#      (tools/rebalance_bench.py fill), then waits until every replica holds every key
#      (the nodes' cairn_keys sum to 3 x N) and, with BENCH_SNAPSHOT_ENTRIES, until every
#      partition group's log has been compacted;
#   3. starts a steady light load that runs to the end: open loop, BENCH_RATE requests/s, half GET,
#      half SET of random filled keys, each sent to its slot's owner by CLUSTER SLOTS, latency from
#      the scheduled send time (rebalance_bench.py traffic); BENCH_BEFORE seconds of it before the join;
#   4. starts node 4 with --join and polls `cairn ctl rebalance status` and /v1/cluster of every
#      node until the map holds node 4 and ctl prints "rebalance: done" (every partition's voters
#      are the map's replicas), then until every partition is led by its preferred leader;
#   5. keeps the load BENCH_AFTER more seconds, stops it, and reports (rebalance_bench.py report):
#      time to finish; partitions whose replica set changed; replica moves against the optimum
#      (P x R / (n + 1): 128 x 3 / 4 = 96); data moved (keys of the moved replicas) against the
#      optimum (a quarter of all replica bytes); snapshot bytes sent (metrics) and all peer bytes;
#      replicas and preferred leaders per node (max/mean); client p50/p99 before, during and after
#      the rebalance; and the issue's goals, each met or NOT met.
#
# Usage: tools/rebalance-bench.sh [--keys N]
# Environment:
#   CAIRN_BIN               cairn binary (default: <repo>/.build/release/cairn)
#   BENCH_KEYS              keys to fill (default 1000000; --keys overrides)
#   BENCH_VALUE_SIZE        value bytes (default 100)
#   BENCH_RATE              requests/second of the light load (default 200)
#   BENCH_BEFORE            seconds of load measured before the join (default 30)
#   BENCH_AFTER             seconds of load after the rebalance has settled (default 5)
#   BENCH_SNAPSHOT_ENTRIES  passed to every node as --snapshot-entries (default: the server's, 10000).
#                           The fill writes about KEYS / 100 / 128 log entries per partition, so with
#                           the default no log is compacted and a new replica catches up from the
#                           log, not from a snapshot; a small value (e.g. 20) makes moves ship snapshots.
#   BENCH_SERVER_ARGS       extra flags for every node, e.g. "--max-moves 2" (default none)
#   BENCH_TIMEOUT           seconds allowed for the rebalance (default 1800)
#   BENCH_KEEP              1: keep the work dir (logs, data, raw results) and print its path
# Exit status: 0 when it ran (whatever the numbers), 1 on a setup failure or a node exiting.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=rebalance-bench
# shellcheck source=tools/bench-lib.sh
source "$REPO_ROOT/tools/bench-lib.sh" # die, note, stop_pid, pick_port, check_alive, wait_node_ready
CAIRN_BIN="${CAIRN_BIN:-$REPO_ROOT/.build/release/cairn}"
HELPER="$REPO_ROOT/tools/rebalance_bench.py"
CLUSTER_HELPER="$REPO_ROOT/tools/cluster_bench.py"
KEYS="${BENCH_KEYS:-1000000}"
VALUE_SIZE="${BENCH_VALUE_SIZE:-100}"
RATE="${BENCH_RATE:-200}"
GET_RATIO=0.5
BEFORE="${BENCH_BEFORE:-30}"
AFTER="${BENCH_AFTER:-5}"
SNAPSHOT_ENTRIES="${BENCH_SNAPSHOT_ENTRIES:-}"
read -r -a SERVER_ARGS <<<"${BENCH_SERVER_ARGS:-}"
REBALANCE_TIMEOUT="${BENCH_TIMEOUT:-1800}"
KEEP="${BENCH_KEEP:-0}"
HOST=127.0.0.1

while (($#)); do
    case "$1" in
    --keys) KEYS="${2:?--keys needs a number}"; shift 2 ;;
    --keys=*) KEYS="${1#--keys=}"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ "$KEYS" =~ ^[0-9]+$ ]] && ((KEYS > 0)) || die "--keys / BENCH_KEYS must be a positive number, not '$KEYS'"
[[ -x "$CAIRN_BIN" ]] || die "cairn binary not found at $CAIRN_BIN (build it with: swift build -c release, or set CAIRN_BIN)"
command -v python3 >/dev/null || die "python3 not found"
command -v timeout >/dev/null || die "timeout (coreutils) not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-rebalance-bench.XXXXXX")"
# Processes this script started and that are still ours: node -> PID, and the load's PID. A PID is
# forgotten once reaped, so cleanup never signals a PID the kernel may have reused.
declare -A NODE_PID=()
NODE_PORT=()
TRAFFIC_PID=""
WAITED_PID=""

cleanup() {
    local i
    if [[ -n "$WAITED_PID" ]]; then stop_pid "$WAITED_PID" 10; fi
    if [[ -n "$TRAFFIC_PID" ]]; then stop_pid "$TRAFFIC_PID" 10; fi
    for i in "${!NODE_PID[@]}"; do stop_pid "${NODE_PID[$i]}"; done
    if [[ "$KEEP" == 1 ]]; then
        echo "$BENCH_NAME: work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# waited CMD...: run CMD in the background and wait for it. Bash runs a trap only once the foreground
# command has ended, and `timeout` puts its command out of reach of the terminal's Ctrl-C: this way
# Ctrl-C or SIGTERM stops the script (and cleanup stops CMD) at once.
waited() {
    local rc=0
    "$@" &
    WAITED_PID=$!
    wait "$WAITED_PID" || rc=$?
    WAITED_PID=""
    return "$rc"
}

# start_node I: start Cairn node I on an empty data dir; node 1 founds the cluster, others --join it.
start_node() {
    local i=$1 args=()
    args=(server --port "${NODE_PORT[i]}" --bind "$HOST" --data-dir "$WORK/cairn$i" --fsync always --log-level info)
    if [[ -n "$SNAPSHOT_ENTRIES" ]]; then args+=(--snapshot-entries "$SNAPSHOT_ENTRIES"); fi
    args+=("${SERVER_ARGS[@]}")
    if ((i > 1)); then args+=(--join "$HOST:$((NODE_PORT[1] + 10000))"); fi
    echo "=== start $(date -u +%H:%M:%S): ${args[*]}" >>"$WORK/cairn$i.log"
    "$CAIRN_BIN" "${args[@]}" >>"$WORK/cairn$i.log" 2>&1 </dev/null &
    NODE_PID[$i]=$!
}

ports_csv() { # ports_csv N: client ports of nodes 1..N, comma-separated
    local IFS=,
    echo "${NODE_PORT[*]:1:$1}"
}
node_pids() { local IFS=,; echo "${NODE_PID[*]}"; }
all_alive() { for i in "${!NODE_PID[@]}"; do check_alive "${NODE_PID[$i]}" "$WORK/cairn$i.log" "cairn node $i"; done; }
now() { date +%s.%N; }

# ------------------------------------------------------------------------------------------ start

for i in 1 2 3 4; do pick_port; NODE_PORT[i]=$PICKED; done
note "starting cairn node 1 on ${NODE_PORT[1]}"
start_node 1
wait_node_ready "${NODE_PID[1]}" "$WORK/cairn1.log" "${NODE_PORT[1]}" "cairn node 1"
for i in 2 3; do
    note "starting cairn node $i on ${NODE_PORT[i]} (--join)"
    start_node "$i"
done
for i in 2 3; do wait_node_ready "${NODE_PID[$i]}" "$WORK/cairn$i.log" "${NODE_PORT[i]}" "cairn node $i"; done
note "waiting for the cluster to converge (every partition on 3 voters, preferred leaders)"
waited timeout 210 python3 "$CLUSTER_HELPER" converged --ports "$(ports_csv 3)" --timeout 180 ||
    { all_alive; die "the 3-node cluster did not converge within 180 s"; }

echo "Rebalance benchmark: a 4th node joins a 3-node cluster holding $KEYS keys of $VALUE_SIZE-byte values"
echo "cairn: $CAIRN_BIN ($("$CAIRN_BIN" version 2>/dev/null | head -n1 || true)), --fsync always," \
    "--snapshot-entries ${SNAPSHOT_ENTRIES:-default}, default partitions, replicas, --max-moves and --move-rate"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo

# ------------------------------------------------------------------------------------------- fill

note "filling $KEYS keys"
fill_args=()
if [[ -n "$SNAPSHOT_ENTRIES" ]]; then fill_args+=(--compacted); fi
waited timeout $((REBALANCE_TIMEOUT + 60)) python3 "$HELPER" fill --ports "$(ports_csv 3)" --keys "$KEYS" \
    -d "$VALUE_SIZE" --timeout "$REBALANCE_TIMEOUT" "${fill_args[@]}" >"$WORK/fill.json" 2>"$WORK/fill.err" ||
    { tail -n 5 "$WORK/fill.err" >&2; all_alive; die "the fill failed"; }
note "filled: $(python3 -c 'import json, sys; f = json.load(open(sys.argv[1]))
print(f"""{f["keys"]} keys in {f["load_seconds"]} s, on every replica after {f["replicated_seconds"]} s""")' "$WORK/fill.json")"

# ------------------------------------------------------------------------------- load, join, watch

note "light load: $RATE requests/s (GET/SET), $BEFORE s before the join"
T_TRAFFIC="$(now)"
python3 "$HELPER" traffic --ports "$(ports_csv 3)" --keys "$KEYS" -d "$VALUE_SIZE" --rate "$RATE" \
    --get-ratio "$GET_RATIO" --out "$WORK/latency.tsv" >"$WORK/traffic.json" 2>"$WORK/traffic.err" </dev/null &
TRAFFIC_PID=$!
python3 "$HELPER" state --ports "$(ports_csv 3)" --pids "$(node_pids)" --out "$WORK/start.json" || die "could not read the cluster's state"
sleep "$BEFORE"
kill -0 "$TRAFFIC_PID" 2>/dev/null || { cat "$WORK/traffic.err" >&2; die "the load client exited"; }
python3 "$HELPER" state --ports "$(ports_csv 3)" --pids "$(node_pids)" --out "$WORK/before.json" || die "could not read the cluster's state"

note "starting cairn node 4 on ${NODE_PORT[4]} (--join)"
T_JOIN="$(now)"
start_node 4
rc=0
waited timeout $((REBALANCE_TIMEOUT + 60)) python3 "$HELPER" watch --ports "$(ports_csv 4)" --nodes 4 --cairn "$CAIRN_BIN" \
    --since "$T_JOIN" --timeout "$REBALANCE_TIMEOUT" --timeline "$WORK/timeline.jsonl" >"$WORK/watch.json" || rc=$?
all_alive
if ((rc != 0)); then
    "$CAIRN_BIN" ctl rebalance status --addr "$HOST:$((NODE_PORT[1] + 20000))" >&2 || true
    die "the rebalance did not finish within $REBALANCE_TIMEOUT s (timeline: $WORK/timeline.jsonl; BENCH_KEEP=1 keeps it)"
fi
python3 "$HELPER" state --ports "$(ports_csv 4)" --pids "$(node_pids)" --out "$WORK/done.json" || die "could not read the cluster's state"
note "rebalance done; $AFTER s more of load"
sleep "$AFTER"
T_END="$(now)"
kill -0 "$TRAFFIC_PID" 2>/dev/null || { cat "$WORK/traffic.err" >&2; die "the load client exited early"; }
stop_pid "$TRAFFIC_PID" 15
TRAFFIC_PID=""
all_alive

# ----------------------------------------------------------------------------------------- report

python3 "$HELPER" report --fill "$WORK/fill.json" --start "$WORK/start.json" --before "$WORK/before.json" \
    --after "$WORK/done.json" --watch "$WORK/watch.json" --timeline "$WORK/timeline.jsonl" --latency "$WORK/latency.tsv" \
    --summary "$WORK/summary.json" --t-traffic "$T_TRAFFIC" --t-join "$T_JOIN" --t-end "$T_END" \
    --rate "$RATE" --get-ratio "$GET_RATIO" --logs "$WORK"/cairn*.log || die "the report failed (BENCH_KEEP=1 keeps the raw files)"
echo
echo "cairn ctl rebalance status, at the end:"
"$CAIRN_BIN" ctl rebalance status --addr "$HOST:$((NODE_PORT[1] + 20000))" | sed 's/^/  /' || true
