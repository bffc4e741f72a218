#!/usr/bin/env bash
# Is `cairn bench` a bottleneck? Drives one redis-server with redis-benchmark and with `cairn bench`,
# same settings, alternating, in one run, and prints each round and the median ratio cairn/redis.
# Not a test: it never fails on numbers.
#
# Environment:
#   CAIRN_BIN        cairn binary (default: <repo>/.build/release/cairn)
#   ROUNDS           rounds of each tool (default 5)
#   CLIENTS          connections (default 50)
#   PIPELINE         pipeline depth (default 16)
#   SECONDS_PER_RUN  length of a cairn bench run; redis-benchmark gets a matching request count (default 5)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAIRN_BIN="${CAIRN_BIN:-$REPO_ROOT/.build/release/cairn}"
ROUNDS="${ROUNDS:-5}"
CLIENTS="${CLIENTS:-50}"
PIPELINE="${PIPELINE:-16}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
HOST=127.0.0.1

[[ -x "$CAIRN_BIN" ]] || { echo "bench-client: no cairn binary at $CAIRN_BIN (swift build -c release)" >&2; exit 1; }
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "bench-client: needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-client.XXXXXX")"
PORT=$((30000 + RANDOM % 5000))
redis-server --port "$PORT" --bind "$HOST" --save "" --appendonly no --daemonize no --logfile "$WORK/redis.log" \
    --dir "$WORK" </dev/null &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
    [[ "$(timeout 2 redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" == PONG ]] && break
    sleep 0.1
done

echo "redis-server $(redis-server --version | awk '{print $3}') on $HOST:$PORT; SET, -c $CLIENTS -P $PIPELINE," \
    "100000 keys, 100-byte values; $ROUNDS rounds"
printf '%-6s %16s %16s %8s\n' round redis-benchmark "cairn bench" ratio
RATIOS=()
for round in $(seq 1 "$ROUNDS"); do
    # Requests for redis-benchmark: about what it did per second in the previous round times the run length.
    requests=$((${last_rb:-300000} * SECONDS_PER_RUN))
    rb="$(timeout 120 redis-benchmark -h "$HOST" -p "$PORT" -t set -c "$CLIENTS" -P "$PIPELINE" -n "$requests" \
        -r 100000 -d 100 -q --csv 2>/dev/null | grep '"SET"' | cut -d, -f2 | tr -d '"')"
    cb="$(timeout 120 "$CAIRN_BIN" bench --target "$HOST:$PORT" --workload set -c "$CLIENTS" -P "$PIPELINE" \
        --duration "${SECONDS_PER_RUN}s" --keys 100000 --value-size 100 --quiet --json "$WORK/r.json" >/dev/null &&
        python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['runs'][0]['run']['throughput']))" \
            "$WORK/r.json")"
    last_rb="${rb%.*}"
    ratio="$(python3 -c "print(f'{$cb / $rb:.2f}')")"
    RATIOS+=("$ratio")
    printf '%-6s %16s %16s %8s\n' "$round" "$rb" "$cb" "$ratio"
done
python3 -c "import statistics,sys; print('median ratio cairn bench / redis-benchmark:', statistics.median(map(float, sys.argv[1:])))" "${RATIOS[@]}"
