# Shell helpers shared by tools/bench.sh, tools/cluster-bench.sh and tools/rebalance-bench.sh; sourced, not run.
# The caller sets BENCH_NAME (the prefix of every message) first. Nothing here starts a process
# that outlives the call, and nothing signals a process the caller did not start: stop_pid is
# given PIDs of the caller's own children.

# die MESSAGE...: print "<BENCH_NAME>: MESSAGE" on stderr and exit 1 (the EXIT trap cleans up).
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
# note MESSAGE...: progress on stderr, so stdout holds only the report.
note() { echo "$BENCH_NAME: $*" >&2; }

# stop_pid PID [GRACE]: SIGTERM, up to GRACE seconds (default 30) for a clean exit, then SIGKILL;
# reaps it. PID must be a child of this shell (wait needs that, and it keeps us from signalling a
# PID the kernel reused: the caller forgets a PID once it has been reaped).
stop_pid() {
    local pid=$1 grace=${2:-30}
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# port_free PORT: true if PORT can be bound on 127.0.0.1.
port_free() {
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

USED_PORTS=" "
PICKED=""
# pick_port: set PICKED to P in 17000..25000 with P, P+10000 and P+20000 free (Cairn's RESP, peer,
# HTTP), never one this shell picked before. Starts at a random place so parallel runs rarely collide.
pick_port() {
    local start=$((17000 + RANDOM % 8000)) i p
    for ((i = 0; i < 8000; i++)); do
        p=$((17000 + (start - 17000 + i) % 8000))
        [[ "$USED_PORTS" == *" $p "* ]] && continue
        if port_free "$p" && port_free $((p + 10000)) && port_free $((p + 20000)); then
            USED_PORTS+="$p "
            PICKED=$p
            return 0
        fi
    done
    die "no free port triple in 17000..25000"
}

# check_alive PID LOG WHAT: exit with the end of LOG if PID is gone.
check_alive() {
    if ! kill -0 "$1" 2>/dev/null; then
        echo "$BENCH_NAME: $3 (pid $1) exited; end of its log ($2):" >&2
        tail -n 40 "$2" >&2 || true
        exit 1
    fi
}

# wait_node_ready PID LOG PORT WHAT: poll the /ready of the Cairn node with client port PORT (HTTP
# on PORT+20000) until 200 (deadline 60 s) or the process exits.
wait_node_ready() {
    local pid=$1 log=$2 port=$3 what=$4 deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        check_alive "$pid" "$log" "$what"
        python3 - "$((port + 20000))" <<'EOF' 2>/dev/null && return 0
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/ready", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
        sleep 0.1
    done
    tail -n 40 "$log" >&2 || true
    die "$what: /ready not 200 within 60 s"
}
