#!/usr/bin/env bash
# Benchmark Cairn against redis-server, side by side, in one run (`make bench`).
#
# Runs redis-benchmark with the same flags against a Cairn node (release binary) and a
# redis-server, both started here on loopback with temporary data dirs, in two modes:
#   non-durable: cairn --fsync none    vs  redis --save "" --appendonly no
#   durable:     cairn --fsync always  vs  redis --appendonly yes --appendfsync always
# and prints requests/second and the ratio cairn/redis. Not a test: it never fails on numbers.
#
# Environment:
#   CAIRN_BIN        cairn binary (default: <repo>/.build/release/cairn)
#   REDIS_SERVER     redis-server binary (default: redis-server on PATH)
#   BENCH_REQUESTS   requests per run (default 200000)
#   BENCH_CLIENTS    parallel connections (default 50)
#   BENCH_TESTS      redis-benchmark -t list (default get,set)
#   BENCH_PIPELINES  pipeline depths (default "1 16")
#   BENCH_MODES      modes to run (default "non-durable durable")
#   BENCH_TIMEOUT    seconds allowed per redis-benchmark run (default 600)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAIRN_BIN="${CAIRN_BIN:-$REPO_ROOT/.build/release/cairn}"
REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}"
REDIS_BENCHMARK="${REDIS_BENCHMARK:-$(command -v redis-benchmark || echo /usr/bin/redis-benchmark)}"
REDIS_CLI="${REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}"
REQUESTS="${BENCH_REQUESTS:-200000}"
CLIENTS="${BENCH_CLIENTS:-50}"
TESTS="${BENCH_TESTS:-get,set}"
PIPELINES="${BENCH_PIPELINES:-1 16}"
MODES="${BENCH_MODES:-non-durable durable}"
RUN_TIMEOUT="${BENCH_TIMEOUT:-600}"
HOST=127.0.0.1

BENCH_NAME=bench
# shellcheck source=tools/bench-lib.sh
source "$REPO_ROOT/tools/bench-lib.sh" # die, port_free, pick_port

[[ -x "$CAIRN_BIN" ]] || die "cairn binary not found at $CAIRN_BIN (build it with: swift build -c release)"
[[ -x "$REDIS_SERVER" ]] || die "redis-server not found (apt-get install redis-server)"
[[ -x "$REDIS_BENCHMARK" ]] || die "redis-benchmark not found (apt-get install redis-tools)"
[[ -x "$REDIS_CLI" ]] || die "redis-cli not found (apt-get install redis-tools)"
command -v timeout >/dev/null || die "timeout (coreutils) not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench.XXXXXX")"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_ping PORT PID LOG: poll PING until it answers (deadline 30 s) or the process exits.
wait_ping() {
    local port=$1 pid=$2 log=$3 deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: server (pid $pid) exited during startup; log:" >&2
            tail -n 50 "$log" >&2 || true
            exit 1
        fi
        if [[ "$(timeout 5 "$REDIS_CLI" -h "$HOST" -p "$port" ping 2>/dev/null)" == "PONG" ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "bench: server on port $port not ready within 30 s; log:" >&2
    tail -n 50 "$log" >&2 || true
    exit 1
}

SERVER_PID=""
SERVER_PORT=""

# start_server KIND MODE: start cairn or redis for MODE; sets SERVER_PID and SERVER_PORT.
start_server() {
    local kind=$1 mode=$2 port dir log
    pick_port
    port=$PICKED
    dir="$WORK/$kind-$mode-data"
    log="$WORK/$kind-$mode.log"
    mkdir -p "$dir"
    if [[ "$kind" == cairn ]]; then
        local fsync=none
        [[ "$mode" == durable ]] && fsync=always
        "$CAIRN_BIN" server --port "$port" --data-dir "$dir" --fsync "$fsync" --log-level info \
            >"$log" 2>&1 </dev/null &
    else
        local persist=(--appendonly no)
        [[ "$mode" == durable ]] && persist=(--appendonly yes --appendfsync always)
        "$REDIS_SERVER" --port "$port" --bind "$HOST" --dir "$dir" --save "" --daemonize no \
            --logfile "" "${persist[@]}" >"$log" 2>&1 </dev/null &
    fi
    SERVER_PID=$!
    SERVER_PORT=$port
    PIDS+=("$SERVER_PID")
    wait_ping "$port" "$SERVER_PID" "$log"
}

stop_server() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# run_bench PORT PIPELINE OUTFILE: redis-benchmark CSV into OUTFILE.
run_bench() {
    local port=$1 pipeline=$2 out=$3
    if ! timeout "$RUN_TIMEOUT" "$REDIS_BENCHMARK" -h "$HOST" -p "$port" -q --csv \
        -c "$CLIENTS" -n "$REQUESTS" -r 100000 -d 100 -t "$TESTS" -P "$pipeline" >"$out" 2>"$out.err"; then
        echo "bench: redis-benchmark on port $port (-P $pipeline) failed or timed out after ${RUN_TIMEOUT}s" >&2
        cat "$out.err" >&2 || true
    fi
}

# rps_of FILE TEST: requests/second for TEST (e.g. SET) from a redis-benchmark CSV file, or "-".
rps_of() {
    local v
    v="$(grep -i "^\"$2\"," "$1" 2>/dev/null | head -n1 | cut -d, -f2 | tr -d '"' || true)"
    echo "${v:--}"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

echo "Cairn vs redis-server: -c $CLIENTS -n $REQUESTS -r 100000 -d 100 -t $TESTS, pipelines: $PIPELINES"
echo "cairn: $CAIRN_BIN"
echo "redis: $("$REDIS_SERVER" --version | head -n1)"
echo

IFS=',' read -r -a TEST_LIST <<<"$TESTS"
for mode in $MODES; do
    for kind in cairn redis; do
        start_server "$kind" "$mode"
        for p in $PIPELINES; do
            echo "running: $mode $kind -P $p" >&2
            run_bench "$SERVER_PORT" "$p" "$WORK/$mode-$kind-P$p.csv"
        done
        stop_server "$SERVER_PID"
    done
    for p in $PIPELINES; do
        for t in "${TEST_LIST[@]}"; do
            T="$(echo "$t" | tr '[:lower:]' '[:upper:]')"
            c="$(rps_of "$WORK/$mode-cairn-P$p.csv" "$T")"
            r="$(rps_of "$WORK/$mode-redis-P$p.csv" "$T")"
            printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "$p" "$T" "$c" "$r" >>"$RESULTS"
        done
    done
done

echo
awk -F'\t' '
BEGIN { printf "%-12s %8s %-6s %14s %14s %8s\n", "mode", "pipeline", "test", "cairn rps", "redis rps", "ratio";
        printf "%-12s %8s %-6s %14s %14s %8s\n", "------------", "--------", "------", "--------------", "--------------", "--------" }
{ ratio = ($4 != "-" && $5 != "-" && $5 + 0 > 0) ? sprintf("%.2f", $4 / $5) : "-";
  printf "%-12s %8s %-6s %14s %14s %8s\n", $1, $2, $3, $4, $5, ratio }' "$RESULTS"
