#!/usr/bin/env bash
# Runs a 3-node Cairn cluster through repeated SET loads and reports, for each load, the throughput,
# the servers' CPU and what happened inside them meanwhile (snapshots, elections, RocksDB flushes and
# compactions), then how many loop turns, fsyncs and commits took over 10, 25 and 100 ms. For finding
# why one load is slower than the next, and for A/B comparisons of two builds (run it alternately
# with each CAIRN_BIN, one cluster each). Not a test: it never fails on numbers.
#
# usage: tools/cluster-loads.sh [cairn server flags...]     e.g. tools/cluster-loads.sh --partitions 8
#
# Each node is `cairn server --fsync always` on 127.0.0.1 with a temporary data dir plus the flags
# given (node 1 founds the cluster, 2 and 3 --join it). Each load is
# `tools/cluster_bench.py load --cluster` (closed loop, -c LOAD_CLIENTS, -r 100000 keys, -d 100 bytes).
#
# Environment:
#   CAIRN_BIN       cairn binary (default: <repo>/.build/release/cairn)
#   LOADS           loads to run (default 4)
#   LOAD_REQUESTS   SETs per load (default 100000)
#   LOAD_CLIENTS    connections (default 50)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAIRN_BIN="${CAIRN_BIN:-$REPO_ROOT/.build/release/cairn}"
HELPER="$REPO_ROOT/tools/cluster_bench.py"
LOADS="${LOADS:-4}"
REQUESTS="${LOAD_REQUESTS:-100000}"
CLIENTS="${LOAD_CLIENTS:-50}"
BENCH_NAME=cluster-loads
# shellcheck source=tools/bench-lib.sh
source "$REPO_ROOT/tools/bench-lib.sh" # die, note, stop_pid, pick_port, wait_node_ready

[[ -x "$CAIRN_BIN" ]] || die "cairn binary not found at $CAIRN_BIN (build it with: swift build -c release)"
[[ "$LOADS" =~ ^[1-9][0-9]*$ ]] || die "LOADS must be a positive integer, got '$LOADS'"
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || die "LOAD_REQUESTS must be a positive integer, got '$REQUESTS'"
[[ "$CLIENTS" =~ ^[1-9][0-9]*$ ]] || die "LOAD_CLIENTS must be a positive integer, got '$CLIENTS'"
command -v python3 >/dev/null || die "python3 not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-cluster-loads.XXXXXX")"
declare -A NODE_PID=()
NODE_PORT=()
cleanup() {
    local i
    for i in "${!NODE_PID[@]}"; do stop_pid "${NODE_PID[$i]}"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for i in 1 2 3; do
    pick_port
    NODE_PORT[i]=$PICKED
    args=(server --port "$PICKED" --data-dir "$WORK/node$i" --fsync always "$@")
    ((i > 1)) && args+=(--join "127.0.0.1:$((NODE_PORT[1] + 10000))")
    "$CAIRN_BIN" "${args[@]}" 2>"$WORK/node$i.log" &
    NODE_PID[$i]=$!
    wait_node_ready "${NODE_PID[$i]}" "$WORK/node$i.log" "$PICKED" "cairn node $i"
done
PORTS="${NODE_PORT[1]},${NODE_PORT[2]},${NODE_PORT[3]}"
note "3 nodes on $PORTS; waiting for every partition to have its replicas and preferred leader"
python3 "$HELPER" converged --ports "$PORTS" --timeout 180 >/dev/null || die "the cluster did not converge in 180 s"

# server_cpu_ticks: user + system CPU of the three servers, in clock ticks.
server_cpu_ticks() {
    local total=0 i fields
    for i in 1 2 3; do
        read -r -a fields <<<"$(cut -d' ' -f14,15 "/proc/${NODE_PID[$i]}/stat")"
        total=$((total + fields[0] + fields[1]))
    done
    echo "$total"
}

# counters: the sums over the three nodes of the counters this report follows, space-separated.
counters() {
    python3 - "$PORTS" "$REPO_ROOT/tools" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
from overload_bench import metrics  # (name, labels) -> value of one node's /metrics
families = ["cairn_raft_snapshots_total", "cairn_raft_elections_total", "cairn_raft_campaigns_total",
            "cairn_raft_quorum_loss_stepdowns_total"]
samples = [metrics(int(port)) for port in sys.argv[1].split(",")]
print(" ".join(str(int(sum(v for s in samples for (n, _), v in s.items() if n == f))) for f in families))
EOF
}

# rocksdb_events FROM TO: flushes and compactions the nodes' RocksDB logs record between two times
# (microseconds since the epoch).
rocksdb_events() {
    python3 - "$1" "$2" "$WORK" <<'EOF'
import glob, re, sys
start, end, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
counts = {"flush_finished": 0, "compaction_finished": 0}
for path in glob.glob(f"{work}/node*/**/LOG", recursive=True):
    for m in re.finditer(r'"time_micros": (\d+), "job": \d+, "event": "(\w+)"', open(path, errors="replace").read()):
        if start <= int(m.group(1)) <= end and m.group(2) in counts:
            counts[m.group(2)] += 1
print(counts["flush_finished"], counts["compaction_finished"])
EOF
}

TICKS_PER_SECOND=$(getconf CLK_TCK)
printf "%-5s %8s %8s %10s %10s %10s %10s %8s %12s\n" load rps cpu_s snapshots elections campaigns stepdowns flushes compactions
for ((load = 1; load <= LOADS; load++)); do
    started=$(date +%s%6N)
    cpu_before=$(server_cpu_ticks)
    read -r -a before <<<"$(counters)"
    result=$(python3 "$HELPER" load --target "127.0.0.1:${NODE_PORT[1]}" --cluster -n "$REQUESTS" -c "$CLIENTS" \
        -r 100000 -d 100 --seed "$load")
    cpu_after=$(server_cpu_ticks)
    read -r -a after <<<"$(counters)"
    read -r flushes compactions <<<"$(rocksdb_events "$started" "$(date +%s%6N)")"
    rps=$(python3 -c 'import json, sys; print(round(json.loads(sys.argv[1])["ok_rps"]))' "$result")
    cpu=$(python3 -c "print(f'{($cpu_after - $cpu_before) / $TICKS_PER_SECOND:.1f}')")
    printf "%-5s %8s %8s %10s %10s %10s %10s %8s %12s\n" "$load" "$rps" "$cpu" \
        $((after[0] - before[0])) $((after[1] - before[1])) $((after[2] - before[2])) $((after[3] - before[3])) \
        "$flushes" "$compactions"
done

echo
echo "Slow steps since the start, per node (count over 10 / 25 / 100 ms):"
for i in 1 2 3; do
    python3 - "${NODE_PORT[i]}" "$i" "$REPO_ROOT/tools" <<'EOF'
import sys
sys.path.insert(0, sys.argv[3])
from overload_bench import metrics  # (name, labels) -> value of one node's /metrics
sample = metrics(int(sys.argv[1]))
parts = []
for family, label in (("cairn_loop_turn_seconds", "loop turns"), ("cairn_fsync_duration_seconds", "fsyncs"),
                      ("cairn_raft_commit_duration_seconds", "commits")):
    def over(bound: str) -> float:
        return sample[(f"{family}_bucket", '{le="+Inf"}')] - sample[(f"{family}_bucket", f'{{le="{bound}"}}')]
    parts.append(f"{label} {over('0.01'):.0f} / {over('0.025'):.0f} / {over('0.1'):.0f}")
print(f"  node {sys.argv[2]}: " + ", ".join(parts))
EOF
done
