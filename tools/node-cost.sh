#!/usr/bin/env bash
# Measures what one command costs a single Cairn node: CPU microseconds and heap allocations per
# command, under redis-benchmark load. Steadier than requests per second for comparing two builds
# on a shared machine (rps moved by 20 % between runs of one build; CPU per command by about 8 %, and
# the allocation count not at all). Not a test: it never fails on numbers.
#
# usage: tools/node-cost.sh [set|get] [pipeline]        (default: set 16)
#
# It starts `cairn server --fsync none` on 127.0.0.1 with a temporary data dir, warms it with 300,000
# SETs (100,000 keys, 100 bytes), then runs redis-benchmark (-c 50 -r 100000 -d 100 -P pipeline) and:
#   - CPU: `perf stat -e task-clock` on the server for MEASURE_SECONDS, divided by the commands the
#     server counted meanwhile (cairn_commands_total on /metrics);
#   - allocations: a uprobe on glibc's malloc counted over 200,000 commands (needs root to add the
#     probe; skipped with a note otherwise).
# This machine's VM exposes no hardware counters, so instructions cannot be counted.
#
# Environment:
#   CAIRN_BIN         cairn binary (default: <repo>/.build/release/cairn)
#   MEASURE_SECONDS   CPU window (default 4)
#   RUNS              repetitions of the CPU window, each on a fresh server (default 1)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAIRN_BIN="${CAIRN_BIN:-$REPO_ROOT/.build/release/cairn}"
TEST="${1:-set}"
PIPELINE="${2:-16}"
SECONDS_WINDOW="${MEASURE_SECONDS:-4}"
RUNS="${RUNS:-1}"
BENCH_NAME=node-cost
# shellcheck source=tools/bench-lib.sh
source "$REPO_ROOT/tools/bench-lib.sh" # die, note, stop_pid, pick_port, wait_node_ready

[[ "$TEST" == set || "$TEST" == get ]] || die "the test must be set or get, got '$TEST'"
[[ "$PIPELINE" =~ ^[1-9][0-9]*$ ]] || die "the pipeline depth must be a positive integer, got '$PIPELINE'"
[[ "$SECONDS_WINDOW" =~ ^[1-9][0-9]*$ ]] || die "MEASURE_SECONDS must be a positive integer, got '$SECONDS_WINDOW'"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ -x "$CAIRN_BIN" ]] || die "cairn binary not found at $CAIRN_BIN (build it with: swift build -c release)"
command -v redis-benchmark >/dev/null || die "redis-benchmark not found (tools/ensure-deps.sh bench installs it)"
command -v perf >/dev/null || die "perf not found (apt-get install linux-perf)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-node-cost.XXXXXX")"
SERVER_PID=""
LOAD_PID=""
cleanup() {
    [[ -n "$LOAD_PID" ]] && stop_pid "$LOAD_PID" 5
    [[ -n "$SERVER_PID" ]] && stop_pid "$SERVER_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# commands_counted PORT: the server's cairn_commands_total, all labels summed.
commands_counted() {
    python3 - "$(($1 + 20000))" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print(int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("cairn_commands_total{"))))
EOF
}

# start_server: a fresh node on a free port, warmed with 300,000 SETs; sets PORT and SERVER_PID.
start_server() {
    pick_port
    PORT=$PICKED
    rm -rf "$WORK/data"
    "$CAIRN_BIN" server --port "$PORT" --data-dir "$WORK/data" --fsync none 2>"$WORK/server.log" &
    SERVER_PID=$!
    wait_node_ready "$SERVER_PID" "$WORK/server.log" "$PORT" "cairn server"
    redis-benchmark -p "$PORT" -t set -c 50 -r 100000 -d 100 -n 300000 -P 16 -q >/dev/null 2>&1
}

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}

echo "test=$TEST pipeline=$PIPELINE binary=$CAIRN_BIN"
for ((run = 1; run <= RUNS; run++)); do
    start_server
    redis-benchmark -p "$PORT" -t "$TEST" -c 50 -r 100000 -d 100 -n 1000000000 -P "$PIPELINE" -q >/dev/null 2>&1 &
    LOAD_PID=$!
    sleep 1
    before=$(commands_counted "$PORT")
    perf stat -e task-clock -p "$SERVER_PID" -x, -o "$WORK/stat" -- sleep "$SECONDS_WINDOW" 2>/dev/null
    after=$(commands_counted "$PORT")
    stop_pid "$LOAD_PID" 5
    LOAD_PID=""
    stop_server
    awk -F, -v n=$((after - before)) -v t="$SECONDS_WINDOW" -v run="$run" \
        '/^[0-9]/ {printf "run %d: %.2f us of server CPU per command, %.0f commands/s\n", run, $1 * 1000 / n, n / t}' \
        "$WORK/stat"
done

# Allocations: a uprobe on malloc (added once; left for later runs, `perf probe -d probe_libc:malloc`
# removes it).
libc=$(ldd "$CAIRN_BIN" | awk '/libc\.so\.6/ {print $3}')
if ! perf probe -l 2>/dev/null | grep -q "probe_libc:malloc"; then
    if ! perf probe -x "$libc" malloc >/dev/null 2>&1; then
        note "could not add a uprobe on malloc (needs root); allocations not counted"
        exit 0
    fi
fi
start_server
before=$(commands_counted "$PORT")
perf stat -e probe_libc:malloc -p "$SERVER_PID" -x, -o "$WORK/malloc" -- \
    redis-benchmark -p "$PORT" -t "$TEST" -c 50 -r 100000 -d 100 -n 200000 -P "$PIPELINE" -q >/dev/null 2>&1
after=$(commands_counted "$PORT")
stop_server
awk -F, -v n=$((after - before)) '/^[0-9]/ {printf "allocations: %.2f mallocs per command (%d commands)\n", $1 / n, n}' \
    "$WORK/malloc"
