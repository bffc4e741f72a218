#!/usr/bin/env bash
# Benchmark a 3-node Cairn cluster against a Redis primary with two replicas, in one run
# (`make cluster-bench`). Not a test: it never fails on numbers.
#
# Starts, on 127.0.0.1 with temporary data dirs:
#   Cairn: 3 x `cairn server --fsync always` (node 1 founds the cluster, 2 and 3 --join it;
#          3 replicas per partition: a SET is acknowledged once 2 of 3 have it fsync'd);
#   Redis: redis-server primary + 2 replicas (--replicaof), each with
#          --appendonly yes --appendfsync always --save "".
# Then, BENCH_ROUNDS times, alternating (SET, -c 50, -r 100000 keys, -d 100 bytes, -n BENCH_REQUESTS):
#   redis-benchmark -t set --cluster          against Cairn (routes by CLUSTER SLOTS / NODES)
#   redis-benchmark -t set                    against the Redis primary (no WAIT: reference only)
#   tools/cluster_bench.py load --cluster     against Cairn: SET
#   tools/cluster_bench.py load --wait 1      against the Redis primary: SET then WAIT 1 0
#   tools/cluster_bench.py load               against the Redis primary: SET (client capacity check)
# redis-benchmark cannot send WAIT after each SET, so the headline ratio Cairn / Redis-with-WAIT
# uses the same small Python client (cluster_bench.py) on both sides.
# Finally BENCH_KILLS failover rounds: each node in turn gets kill -9 while SETs go
# every 10 ms through the next node to keys of the partitions the victim led; each round reports
# the time from the kill to the first OK reply to a write sent after it, then restarts the node on
# its data dir and waits for the cluster to settle. Prints a table, the ratios and the failover
# median and max, with the goals.
#
# Environment:
#   CAIRN_BIN          cairn binary (default: <repo>/.build/release/cairn)
#   REDIS_SERVER       redis-server binary (default: redis-server on PATH)
#   BENCH_REQUESTS     requests per throughput run (default 20000)
#   BENCH_CLIENTS      connections (default 50)
#   BENCH_ROUNDS       rounds of the throughput runs; the table shows medians (default 3)
#   BENCH_KILLS        failover measurements (default 5; 0 skips them)
#   BENCH_PARTITIONS   partitions of the Cairn cluster (default: the server's, 128)
#   BENCH_TIMEOUT      seconds allowed per throughput run (default 300); a request of the Python client
#                      gets 10 s
#   BENCH_KEEP         1: keep the work dir (logs, data, raw results) and print its path
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAIRN_BIN="${CAIRN_BIN:-$REPO_ROOT/.build/release/cairn}"
REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}"
REDIS_BENCHMARK="${REDIS_BENCHMARK:-$(command -v redis-benchmark || echo /usr/bin/redis-benchmark)}"
REDIS_CLI="${REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}"
HELPER="$REPO_ROOT/tools/cluster_bench.py"
REQUESTS="${BENCH_REQUESTS:-20000}"
CLIENTS="${BENCH_CLIENTS:-50}"
ROUNDS="${BENCH_ROUNDS:-3}"
KILLS="${BENCH_KILLS:-5}"
PARTITIONS="${BENCH_PARTITIONS:-}"
RUN_TIMEOUT="${BENCH_TIMEOUT:-300}"
KEEP="${BENCH_KEEP:-0}"
HOST=127.0.0.1
BENCH_NAME=cluster-bench
# shellcheck source=tools/bench-lib.sh
source "$REPO_ROOT/tools/bench-lib.sh" # die, note, stop_pid, pick_port, check_alive, wait_node_ready

[[ -x "$CAIRN_BIN" ]] || die "cairn binary not found at $CAIRN_BIN (build it with: swift build -c release)"
[[ -x "$REDIS_SERVER" ]] || die "redis-server not found (apt-get install redis-server)"
[[ -x "$REDIS_BENCHMARK" ]] || die "redis-benchmark not found (apt-get install redis-tools)"
[[ -x "$REDIS_CLI" ]] || die "redis-cli not found (apt-get install redis-tools)"
command -v python3 >/dev/null || die "python3 not found"
command -v timeout >/dev/null || die "timeout (coreutils) not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-cluster-bench.XXXXXX")"
# Processes this script started and that are still ours: index -> PID. A PID leaves these maps as
# soon as its process has been reaped, so cleanup never signals a PID the kernel may have reused.
declare -A NODE_PID=() REDIS_PID=()
NODE_PORT=()
REDIS_PORT=()

cleanup() {
    local i
    for i in "${!NODE_PID[@]}"; do stop_pid "${NODE_PID[$i]}"; done
    for i in "${!REDIS_PID[@]}"; do stop_pid "${REDIS_PID[$i]}"; done
    if [[ "$KEEP" == 1 ]]; then
        echo "cluster-bench: work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_ping PORT PID LOG: poll PING until PONG (deadline 30 s) or the process exits.
wait_ping() {
    local port=$1 pid=$2 log=$3 deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        check_alive "$pid" "$log" "server on port $port"
        [[ "$(timeout 5 "$REDIS_CLI" -h "$HOST" -p "$port" ping 2>/dev/null)" == "PONG" ]] && return 0
        sleep 0.1
    done
    tail -n 40 "$log" >&2 || true
    die "server on port $port not answering PING within 30 s"
}

# wait_http_ready I: poll node I's /ready until 200 (deadline 60 s) or the process exits.
wait_http_ready() { wait_node_ready "${NODE_PID[$1]}" "$WORK/cairn$1.log" "${NODE_PORT[$1]}" "cairn node $1"; }

# start_node I: start (or restart, same data dir and ports) Cairn node I (1-based).
start_node() {
    local i=$1 args=()
    args=(server --port "${NODE_PORT[i]}" --bind "$HOST" --data-dir "$WORK/cairn$i" --fsync always --log-level info)
    if ((i == 1)); then
        if [[ -n "$PARTITIONS" ]]; then args+=(--partitions "$PARTITIONS"); fi
    else
        args+=(--join "$HOST:$((NODE_PORT[1] + 10000))") # ignored by a restart on its data dir
    fi
    echo "=== start $(date -u +%H:%M:%S): ${args[*]}" >>"$WORK/cairn$i.log"
    "$CAIRN_BIN" "${args[@]}" >>"$WORK/cairn$i.log" 2>&1 </dev/null &
    NODE_PID[$i]=$!
}

node_ports_csv() { local IFS=,; echo "${NODE_PORT[*]:1}"; }

# wait_converged TIMEOUT: every node ready, every partition led by its preferred leader.
wait_converged() {
    local i
    if ! timeout $(($1 + 30)) python3 "$HELPER" converged --ports "$(node_ports_csv)" --timeout "$1"; then
        for i in 1 2 3; do check_alive "${NODE_PID[$i]}" "$WORK/cairn$i.log" "cairn node $i"; done
        return 1
    fi
}

start_redis() {
    local i=$1 extra=()
    if ((i > 1)); then extra=(--replicaof "$HOST" "${REDIS_PORT[1]}"); fi
    mkdir -p "$WORK/redis$i"
    "$REDIS_SERVER" --port "${REDIS_PORT[i]}" --bind "$HOST" --dir "$WORK/redis$i" --save "" --daemonize no \
        --logfile "" --appendonly yes --appendfsync always "${extra[@]}" >"$WORK/redis$i.log" 2>&1 </dev/null &
    REDIS_PID[$i]=$!
    wait_ping "${REDIS_PORT[i]}" "${REDIS_PID[$i]}" "$WORK/redis$i.log"
}

# wait_replicas: the primary reports 2 replicas, both state=online (initial sync done).
wait_replicas() {
    local deadline=$((SECONDS + 60)) info
    while ((SECONDS < deadline)); do
        info="$(timeout 5 "$REDIS_CLI" -h "$HOST" -p "${REDIS_PORT[1]}" info replication 2>/dev/null | tr -d '\r')"
        if [[ "$(grep -c '^slave[0-9]*:.*state=online' <<<"$info")" == 2 ]]; then
            return 0
        fi
        sleep 0.2
    done
    echo "$info" >&2
    die "redis replicas not online within 60 s"
}

# ------------------------------------------------------------------------------------------ start

CAIRN_VERSION="$("$CAIRN_BIN" version 2>/dev/null | head -n1 || true)"
REDIS_VERSION="$("$REDIS_SERVER" --version | head -n1)"

for i in 1 2 3; do pick_port; NODE_PORT[i]=$PICKED; done
for i in 1 2 3; do pick_port; REDIS_PORT[i]=$PICKED; done

note "starting cairn node 1 on ${NODE_PORT[1]}"
start_node 1
wait_http_ready 1
for i in 2 3; do
    note "starting cairn node $i on ${NODE_PORT[i]} (--join)"
    start_node "$i"
done
for i in 2 3; do wait_http_ready "$i"; done
note "waiting for the cairn cluster to converge (every partition on 3 nodes, preferred leaders)"
wait_converged 180 || die "cairn cluster did not converge within 180 s"

note "starting redis primary on ${REDIS_PORT[1]} and replicas on ${REDIS_PORT[2]}, ${REDIS_PORT[3]}"
for i in 1 2 3; do start_redis "$i"; done
wait_replicas

echo "Cairn 3-node cluster vs Redis primary + 2 replicas: SET, -c $CLIENTS -n $REQUESTS -r 100000 -d 100, $ROUNDS round(s)"
echo "cairn: $CAIRN_BIN ($CAIRN_VERSION)"
echo "       3 x cairn server --fsync always, 3 replicas per partition, $(python3 -c "
import json, sys, urllib.request
print(len(json.load(urllib.request.urlopen('http://127.0.0.1:$((NODE_PORT[1] + 20000))/v1/cluster', timeout=5))['partitions']))") partitions: an OK means 2 of 3 nodes have the write fsync'd"
echo "redis: $REDIS_VERSION"
echo "       primary + 2 replicas (--replicaof), all --appendonly yes --appendfsync always --save \"\";"
echo "       SET + WAIT 1 0: the primary fsync'd its AOF and at least 1 replica acknowledged receiving the write"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo

# ------------------------------------------------------------------------------------- throughput

RAW="$WORK/raw.tsv" # config, round, rps, errors, p50 ms, p99 ms, client CPU us/req
: >"$RAW"
CAIRN_RB_MODE="--cluster"

# rb_rps CSVFILE: SET requests/second from redis-benchmark --csv output, or empty.
rb_rps() { grep -i '^"SET",' "$1" 2>/dev/null | head -n1 | cut -d, -f2 | tr -d '"' || true; }

# run_rb NAME PORT [EXTRA...]: redis-benchmark SET into $WORK/NAME.rROUND.csv; prints its rps, or
# "hung" if it did not finish within BENCH_TIMEOUT (then its connections' TCP counters are saved
# and summarized: requests sent and replies received per server port), or "failed".
run_rb() {
    local name=$1 port=$2 out pid deadline
    shift 2
    out="$WORK/$name.r$round.csv"
    "$REDIS_BENCHMARK" -h "$HOST" -p "$port" "$@" -q --csv -t set -c "$CLIENTS" \
        -n "$REQUESTS" -r 100000 -d 100 >"$out" 2>"$out.err" </dev/null &
    pid=$!
    deadline=$((SECONDS + RUN_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        ss -tnpi state established 2>/dev/null | grep --no-group-separator -A1 "pid=$pid," >"$out.hung-ss" || true
        { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
        python3 - "$out.hung-ss" >"$out.hung" <<'EOF2'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
conns = []
for head, info in zip(lines[0::2], lines[1::2]):
    sent = re.search(r"bytes_sent:(\d+)", info)
    got = re.search(r"bytes_received:(\d+)", info)
    conns.append((head.split()[3], int(sent.group(1)) if sent else 0, int(got.group(1)) // 5 if got else 0))
# Every reply is "+OK\r\n" (5 bytes) and every SET the same size: the smallest bytes per reply is
# the size of a SET (on a connection with nothing outstanding).
size = min((s / g for _, s, g in conns if g), default=0)
per = {}
for peer, sent, got in conns:
    p = per.setdefault(peer, [0, 0, 0])
    p[0] += 1
    p[1] += round(sent / size) if size else 0
    p[2] += got
for peer, (n, sent, got) in sorted(per.items()):
    print(f"{peer}: {n} connections, {sent} SETs sent, {got} replies received, {sent - got} unanswered")
EOF2
        note "redis-benchmark on port $port still running after ${RUN_TIMEOUT}s; killed. Its connections:"
        sed 's/^/    /' "$out.hung" >&2
        echo hung
        return 0
    fi
    wait "$pid" 2>/dev/null || true
    local rps
    rps="$(rb_rps "$out")"
    echo "${rps:-failed}"
}

run_py() { # NAME ARGS...
    local name=$1 out
    shift
    out="$WORK/$name.r$round.json"
    if ! timeout "$RUN_TIMEOUT" python3 "$HELPER" load -c "$CLIENTS" -n "$REQUESTS" -r 100000 -d 100 "$@" \
        >"$out" 2>"$out.err"; then
        note "$name round $round failed (or ran over ${RUN_TIMEOUT}s):"
        tail -n 5 "$out.err" >&2 || true
        printf '%s\t%s\t-\t-\t-\t-\t-\n' "$name" "$round" >>"$RAW"
        return 0
    fi
    python3 - "$out" "$name" "$round" >>"$RAW" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("\t".join(map(str, [sys.argv[2], sys.argv[3], r["ok_rps"], r["error_count"], r["p50_ms"], r["p99_ms"],
                          r["client_cpu_us_per_req"]])))
for kind, n in sorted(r["errors"].items()):
    print(f"{sys.argv[2]} round {sys.argv[3]}: {n} x {kind}"
          + (f" {r['timeouts_by_endpoint']}" if kind == "timeout" else ""), file=sys.stderr)
EOF
}

record_rb() { # NAME RPS
    printf '%s\t%s\t%s\t-\t-\t-\t-\n' "$1" "$round" "$2" >>"$RAW"
}

for round in $(seq 1 "$ROUNDS"); do
    note "round $round/$ROUNDS: redis-benchmark $CAIRN_RB_MODE -> cairn"
    rps="$(run_rb cairn-rb "${NODE_PORT[1]}" $CAIRN_RB_MODE)"
    if [[ "$rps" == failed && "$CAIRN_RB_MODE" == --cluster ]]; then
        note "redis-benchmark --cluster failed against cairn ($(head -c 300 "$WORK/cairn-rb.r$round.csv.err"));" \
            "sending to node 1 only from now on"
        CAIRN_RB_MODE=""
        rps="$(run_rb cairn-rb "${NODE_PORT[1]}")"
    fi
    record_rb cairn-rb "$rps"
    note "round $round/$ROUNDS: redis-benchmark -> redis primary (SET, no WAIT)"
    record_rb redis-rb "$(run_rb redis-rb "${REDIS_PORT[1]}")"
    note "round $round/$ROUNDS: cluster_bench.py --cluster -> cairn (SET)"
    run_py cairn-py --target "$HOST:${NODE_PORT[1]}" --cluster
    note "round $round/$ROUNDS: cluster_bench.py -> redis primary (SET + WAIT 1 0)"
    run_py redis-py-wait --target "$HOST:${REDIS_PORT[1]}" --wait 1
    note "round $round/$ROUNDS: cluster_bench.py -> redis primary (SET, no WAIT)"
    run_py redis-py --target "$HOST:${REDIS_PORT[1]}"
done

# ------------------------------------------------------------------------------------------ failover

FAILOVER="$WORK/failover.tsv" # kill, victim node id, partitions led, failover ms, restart->settled s, failed writes
: >"$FAILOVER"
PREV_VICTIM=0
for k in $(seq 1 "$KILLS"); do
    nodes=""
    for i in 1 2 3; do nodes+="${nodes:+,}${NODE_PORT[i]}:${NODE_PID[$i]}"; done
    # Victims in turn: the node started first, second, third, first, ...; writes go through the next.
    target=$(((k - 1) % 3 + 1))
    note "failover $k/$KILLS: kill -9 of the node on port ${NODE_PORT[target]}"
    # The helper sends SIGKILL to the victim's PID (a child of this shell). Its exit is reaped here,
    # with stderr closed so that bash's "Killed" job notice does not clutter the output.
    rc=0
    victim=0
    {
        out="$(timeout 120 python3 "$HELPER" failover --nodes "$nodes" --victim "${NODE_PORT[target]}" \
            --exclude "$PREV_VICTIM" \
            2>"$WORK/failover$k.err")" || rc=$?
        if ((rc == 0)); then
            victim_port="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["victim_port"])' "$out")"
            for i in 1 2 3; do
                if [[ "${NODE_PORT[i]}" == "$victim_port" ]]; then victim=$i; fi
            done
            if ((victim > 0)); then wait "${NODE_PID[$victim]}" || true; fi
        fi
    } 2>/dev/null
    if ((rc != 0)); then
        note "failover $k failed:"
        tail -n 5 "$WORK/failover$k.err" >&2 || true
        break
    fi
    ((victim > 0)) || die "failover helper named an unknown port: $out"
    echo "$out" >"$WORK/failover$k.json"
    unset "NODE_PID[$victim]"
    t0=$SECONDS
    start_node "$victim"
    wait_http_ready "$victim"
    settled="-"
    if wait_converged 120; then settled=$((SECONDS - t0)); else note "cluster not settled 120 s after the restart"; fi
    python3 - "$out" "$k" "$settled" >>"$FAILOVER" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
ms = "none in 30 s" if r["failover_ms"] is None else r["failover_ms"]
failed = ",".join(f"{k}:{v}" for k, v in sorted(r["failed_after_kill"].items())) or "-"
print("\t".join(map(str, [sys.argv[2], r["victim_id"], f'{r["partitions_led"]}/{r["partitions"]}',
                          r["through_id"], ms, sys.argv[3], failed])))
EOF
    PREV_VICTIM=$victim_port
done

# ------------------------------------------------------------------------------------------ report

echo
echo "Throughput (requests/second; median of $ROUNDS round(s), each round listed):"
python3 - "$RAW" "$CAIRN_RB_MODE" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cluster = sys.argv[2]
labels = [
    ("cairn-rb", f"cairn 3 nodes, SET", f"redis-benchmark {cluster or '(node 1 only)'}".strip()),
    ("redis-rb", "redis primary, SET (no WAIT)", "redis-benchmark"),
    ("cairn-py", "cairn 3 nodes, SET", "cluster_bench.py --cluster"),
    ("redis-py-wait", "redis primary, SET + WAIT 1 0", "cluster_bench.py --wait 1"),
    ("redis-py", "redis primary, SET (no WAIT)", "cluster_bench.py"),
]
def num(x):
    try:
        return float(x)
    except ValueError:
        return None
med = {}
print(f"{'system, command':<32} {'client':<28} {'rps':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'cpu us/req':>10}  rounds")
print("-" * 120)
for key, what, client in labels:
    rs = [r for r in rows if r[0] == key]
    vals = [num(r[2]) for r in rs if num(r[2]) is not None]
    med[key] = statistics.median(vals) if vals else None
    def m(col):
        v = [num(r[col]) for r in rs if num(r[col]) is not None]
        return f"{statistics.median(v):.1f}" if v else "-"
    errs = [num(r[3]) for r in rs if num(r[3]) is not None]
    shown = f"{med[key]:.0f}" if med[key] else "-"
    print(f"{what:<32} {client:<28} {shown:>9} {m(4):>7} {m(5):>7} "
          f"{(str(int(sum(errs))) if errs else '-'):>6} {m(6):>10}  {' '.join(r[2] for r in rs)}")
for key, what, client in labels:
    bad = [r[1] for r in rows if r[0] == key and num(r[2]) is None]
    if bad:
        print(f"  {what}, {client}: no result in round(s) {', '.join(bad)} "
              f"({', '.join(sorted(set(r[2] for r in rows if r[0] == key and num(r[2]) is None)))}; see above)")
def ratio(a, b):
    return f"{med[a] / med[b]:.2f}" if med.get(a) and med.get(b) else "-"
print()
print(f"RATIO cairn / redis-with-WAIT, same client (cluster_bench.py):   {ratio('cairn-py', 'redis-py-wait')}"
      "   (goal >= 1.0)")
print(f"ratio cairn (redis-benchmark) / redis-with-WAIT (cluster_bench.py): {ratio('cairn-rb', 'redis-py-wait')}"
      "   (different clients)")
print(f"ratio cairn / redis without WAIT (redis-benchmark):               {ratio('cairn-rb', 'redis-rb')}")
print(f"ratio cairn / redis without WAIT (cluster_bench.py):              {ratio('cairn-py', 'redis-py')}")
EOF

if ((KILLS > 0)); then
    echo
    echo "Failover: kill -9 of each node in turn; SET every 10 ms through another node (via) to keys of the"
    echo "partitions the victim led; time from the kill to the first OK reply to a write sent after the kill."
    echo "victim and via are cluster node IDs (/v1/cluster); led: partitions the victim led."
    python3 - "$FAILOVER" "$KILLS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print(f"{'kill':>4} {'victim':>6} {'led':>8} {'via':>4} {'failover ms':>12} {'restart->settled s':>19}  failed writes after the kill")
for r in rows:
    print(f"{r[0]:>4} {r[1]:>6} {r[2]:>8} {r[3]:>4} {r[4]:>12} {r[5]:>19}  {r[6]}")
vals = []
for r in rows:
    try:
        vals.append(float(r[4]))
    except ValueError:
        pass
missing = int(sys.argv[2]) - len(vals)
if vals:
    print(f"FAILOVER median {statistics.median(vals):.0f} ms, max {max(vals):.0f} ms over {len(vals)} kill(s)"
          f"{f' ({missing} without a measurement)' if missing else ''}   (goal: median <= 200 ms)")
else:
    print("FAILOVER no measurement")
EOF
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
