#!/usr/bin/env python3
"""Overload benchmark for a 3-node Cairn cluster (issue 7; `make overload-bench`). Not a test: it
never fails on numbers, only on setup.

On 127.0.0.1, in a temporary directory:
  1. 3 x `cairn server` (defaults: fsync always, 128 partitions, 3 replicas; BENCH_SERVER_ARGS adds
     flags to every node): node 1 founds the cluster, 2 and 3 --join it; waits for /ready on all;
  2. capacity: `cairn bench --cluster --workload mixed` closed loop after loading 100,000 keys, with
     -c 16 per node and -P 16: C, the most it serves at a p99 of tens of ms. Also -P 2048 for reference
     (deep pipelines batch better, at a p99 of seconds);
  3. one open-loop `cairn bench --cluster --workload mixed` run: BEFORE s at 0.5 C, OVERLOAD s at
     FACTOR x C (default 10x: the spike profile, x = 2 x FACTOR), AFTER s at 0.5 C again. Deep
     pipelines (-c 16 per node, -P 2048) so that the load reaches the nodes instead of queueing in
     the client. The client retries and breaks as `cairn bench` does by default (budgeted retries,
     a breaker per node);
  4. meanwhile: every node's resident memory (VmRSS) twice a second, and its /metrics at the
     start and end of the overload.
Reports: successful operations per second during the overload against C (goal >= 0.9); p99 of
the successful operations as the client saw them (from each request's scheduled start: client
queueing included; an operation not sent within the client's 5 s deadline fails as 'deadline') and
as the nodes measured them (from a command's arrival to its reply: the
admitted commands' own wait); refusals by reason; peak memory of each node and its growth over the
second half of the overload (goal: bounded, no growth with the overload's length); seconds after
the overload until per-second p99 is back within 2x of the p99 before it and no errors.

Environment: CAIRN_BIN (default <repo>/.build/release/cairn), BENCH_FACTOR (10), BENCH_BEFORE (10),
BENCH_OVERLOAD (30), BENCH_AFTER (30), BENCH_PIPELINE (2048), BENCH_SERVER_ARGS (extra `cairn server`
flags, e.g. "--snapshot-entries 1000"), BENCH_KEEP (1: keep the work dir).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CAIRN = Path(os.environ.get("CAIRN_BIN") or REPO / ".build" / "release" / "cairn")
FACTOR = float(os.environ.get("BENCH_FACTOR", "10"))
BEFORE = int(os.environ.get("BENCH_BEFORE", "10"))
OVERLOAD = int(os.environ.get("BENCH_OVERLOAD", "30"))
AFTER = int(os.environ.get("BENCH_AFTER", "30"))
PIPELINE = int(os.environ.get("BENCH_PIPELINE", "2048"))
KEEP = os.environ.get("BENCH_KEEP") == "1"
SERVER_ARGS = os.environ.get("BENCH_SERVER_ARGS", "").split()
HOST = "127.0.0.1"


def die(message: str) -> None:
    print(f"overload-bench: {message}", file=sys.stderr)
    sys.exit(1)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def pick_base_port() -> int:
    for base in range(7700, 9900, 7):
        if all(port_free(base + i + offset) for i in range(3) for offset in (0, 10000, 20000)):
            return base
    die("no free ports for 3 nodes between 7700 and 9900")
    return 0


def metrics(port: int) -> dict[tuple[str, str], float]:
    text = urllib.request.urlopen(f"http://{HOST}:{port + 20000}/metrics", timeout=5).read().decode()
    values: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
        if match:
            values[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return values


def summed(snapshots: list[dict], name: str, label_filter=lambda labels: True) -> dict[str, float]:
    """Per label set (without the node), the sum over nodes of a metric's samples."""
    total: dict[str, float] = {}
    for snapshot in snapshots:
        for (metric, labels), value in snapshot.items():
            if metric == name and label_filter(labels):
                total[labels] = total.get(labels, 0.0) + value
    return total


def histogram_p99(before: list[dict], after: list[dict], commands: tuple[str, ...]) -> float | None:
    """p99 (upper bucket bound, seconds) of cairn_command_duration_seconds for `commands`, between two scrapes."""
    wanted = lambda labels: any(f'command="{c}"' in labels for c in commands)
    start = summed(before, "cairn_command_duration_seconds_bucket", wanted)
    end = summed(after, "cairn_command_duration_seconds_bucket", wanted)
    buckets: dict[float, float] = {}
    for labels, value in end.items():
        bound = re.search(r'le="([^"]+)"', labels).group(1)
        edge = float("inf") if bound == "+Inf" else float(bound)
        buckets[edge] = buckets.get(edge, 0.0) + value - start.get(labels, 0.0)
    if not buckets or buckets.get(float("inf"), 0) <= 0:
        return None
    total = buckets[float("inf")]
    for edge in sorted(buckets):
        if buckets[edge] >= 0.99 * total:
            return edge
    return None


def resident_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_ready(port: int, process: subprocess.Popen, log: Path) -> None:
    """Until the node's /ready answers 200 (it is in the cluster and knows every leader)."""
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            die(f"node on port {port} exited ({process.returncode}); see {log}")
        try:
            if urllib.request.urlopen(f"http://{HOST}:{port + 20000}/ready", timeout=2).status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            die(f"node on port {port} not ready within 120 s; see {log}")
        time.sleep(0.2)


def fully_replicated(port: int) -> bool:
    """Whether node 1 sees every partition with 3 voters and a leader."""
    try:
        cluster = json.loads(urllib.request.urlopen(f"http://{HOST}:{port + 20000}/v1/cluster", timeout=5).read())
    except (OSError, ValueError):
        return False
    partitions = cluster.get("partitions", [])
    return bool(partitions) and all(len(p.get("voters", [])) == 3 and p.get("leader") for p in partitions)


def bench(*args: str, log: Path) -> None:
    with open(log, "w") as out:
        code = subprocess.run([str(CAIRN), "bench", *args], stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        die(f"cairn bench failed ({code}); see {log}:\n" + log.read_text()[-2000:])


def main() -> None:
    if not CAIRN.exists():
        die(f"cairn binary not found at {CAIRN} (build it with: swift build -c release)")
    work = Path(tempfile.mkdtemp(prefix="cairn-overload-"))
    base = pick_base_port()
    ports = [base + i for i in range(3)]
    nodes: list[subprocess.Popen] = []
    try:
        for index, port in enumerate(ports):
            args = [str(CAIRN), "server", "--port", str(port), "--data-dir", str(work / f"node{index + 1}"),
                    *SERVER_ARGS]
            if index > 0:
                args += ["--join", f"{HOST}:{base + 10000}"]
            with open(work / f"node{index + 1}.log", "w") as log:
                nodes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
            wait_ready(port, nodes[-1], work / f"node{index + 1}.log")
        deadline = time.monotonic() + 180
        while not fully_replicated(base):
            if time.monotonic() > deadline:
                die("partitions did not reach 3 voters each within 180 s")
            time.sleep(0.5)
        pids = [node.pid for node in nodes]
        target = f"{HOST}:{base}"
        common = ["--target", target, "--cluster", "--workload", "mixed", "--keys", "100000", "--quiet"]
        print(f"cluster: 3 nodes on ports {ports[0]}-{ports[2]}, pids {pids}; work dir {work}"
              + (f"; server flags {' '.join(SERVER_ARGS)}" if SERVER_ARGS else ""))

        capacities = []
        for pipeline in (16, PIPELINE):
            out = work / f"capacity-{pipeline}.json"
            bench(*common, *(["--no-load"] if pipeline != 16 else []), "-c", "16", "-P", str(pipeline), "--duration",
                  "10s", "--json", str(out), log=work / f"capacity-{pipeline}.txt")
            measured = json.loads(out.read_text())["runs"][0]["run"]
            print(f"closed loop, -c 16 per node -P {pipeline}, 10 s: {measured['throughput']:,.0f} ops/s, "
                  f"p99 {measured['latency']['p99_ns'] / 1e6:,.1f} ms")
            capacities.append(measured["throughput"])
        capacity, deep = capacities
        print(f"capacity: {capacity:,.0f} ops/s (-P 16: the most the cluster serves at a p99 of tens of ms; deep "
              f"pipelines batch better but wait seconds)")

        base_rate = 0.5 * capacity
        total = BEFORE + OVERLOAD + AFTER
        profile = f"spike:x={2 * FACTOR:g},for={OVERLOAD}s,every={10 * total}s,at={BEFORE}s"
        samples: list[tuple[float, list[int]]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.monotonic(), [resident_kb(pid) for pid in pids]))
                stop.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        scrapes: dict[str, list[dict]] = {}

        def scrape_at(name: str, at: float) -> None:
            time.sleep(max(0.0, at - time.monotonic()))
            scrapes[name] = [metrics(port) for port in ports]

        run_args = [*common, "--no-load", "-c", "16", "-P", str(PIPELINE), "--rate", f"{base_rate:.0f}", "--profile",
                    profile, "--duration", f"{total}s", "--json", str(work / "overload.json")]
        print(f"overload run: {BEFORE} s at {base_rate:,.0f} ops/s, {OVERLOAD} s at {FACTOR * capacity:,.0f} "
              f"({FACTOR:g}x capacity), {AFTER} s at {base_rate:,.0f}; -c 16 per node, -P {PIPELINE}")
        started = time.monotonic()
        sampler.start()
        scrapers = [threading.Thread(target=scrape_at, args=(name, started + at), daemon=True)
                    for name, at in (("start", BEFORE), ("end", BEFORE + OVERLOAD))]
        for thread in scrapers:
            thread.start()
        bench(*run_args, log=work / "overload.txt")
        stop.set()
        for thread in scrapers:
            thread.join()
        report(work, capacity, deep, samples, started, scrapes)
    finally:
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        if KEEP:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(work: Path, capacity: float, deep: float, samples, started: float, scrapes: dict[str, list[dict]]) -> None:
    run = json.loads((work / "overload.json").read_text())["runs"][0]["run"]
    seconds = run["seconds"]
    before = [s for s in seconds if s["second"] < BEFORE]
    during = [s for s in seconds if BEFORE <= s["second"] < BEFORE + OVERLOAD]
    after = [s for s in seconds if s["second"] >= BEFORE + OVERLOAD]

    def p99s(phase):
        return sorted(s["p99_ns"] / 1e6 for s in phase if s["operations"] > 0)

    def median(values):
        return values[len(values) // 2] if values else float("nan")

    goodput = sum(s["operations"] for s in during) / max(1, len(during))
    errors: dict[str, int] = {}
    for s in during:
        for kind, count in s["errors_by_kind"].items():
            errors[kind] = errors.get(kind, 0) + count
    baseline_p99 = median(p99s(before))
    print()
    print(f"before   ({len(before)} s at 0.5x): {median([s['operations'] for s in before]):,.0f} ok/s, "
          f"per-second p99 median {baseline_p99:.1f} ms")
    print(f"overload ({len(during)} s at {FACTOR:g}x): {goodput:,.0f} ok/s = {goodput / capacity:.2f} x capacity "
          f"(goal >= 0.9: {'met' if goodput / capacity >= 0.9 else 'NOT met'}); "
          f"{goodput / deep:.2f} x the deep-pipeline throughput")
    print(f"  client p99 of successes (from scheduled start, client queueing included): per-second median "
          f"{median(p99s(during)):,.0f} ms, max {max(p99s(during) or [0]):,.0f} ms")
    if "start" in scrapes and "end" in scrapes:
        node_p99 = histogram_p99(scrapes["start"], scrapes["end"], ("get", "set"))
        shown = "n/a" if node_p99 is None else f"<= {node_p99 * 1000:,.0f} ms"
        print(f"  node p99 of admitted GET/SET (arrival to reply, all nodes): {shown}")
        refused_start = summed(scrapes["start"], "cairn_commands_refused_total")
        refused_end = summed(scrapes["end"], "cairn_commands_refused_total")
        reasons = {re.search(r'reason="([^"]+)"', k).group(1): int(v - refused_start.get(k, 0))
                   for k, v in refused_end.items()}
        print(f"  refused by the nodes: {reasons}")
        campaigns = sum(summed(scrapes["end"], "cairn_raft_campaigns_total").values()) - sum(
            summed(scrapes["start"], "cairn_raft_campaigns_total").values())
        print(f"  Raft campaigns during the overload: {campaigns:.0f}")
    print(f"  client errors: {dict(sorted(errors.items()))}; retries in the whole run: {run['retries']}")

    overload_start, overload_end = started + BEFORE, started + BEFORE + OVERLOAD
    half = overload_start + OVERLOAD / 2
    peaks = [max((rss[i] for t, rss in samples if overload_start <= t <= overload_end), default=0) for i in range(3)]
    first_half = [max((rss[i] for t, rss in samples if overload_start <= t < half), default=0) for i in range(3)]
    growth = [peaks[i] - first_half[i] for i in range(3)]
    idle = [min((rss[i] for t, rss in samples if t < overload_start), default=0) for i in range(3)]
    print(f"memory (VmRSS): before {[f'{k / 1024:.0f} MB' for k in idle]}, peak during "
          f"{[f'{k / 1024:.0f} MB' for k in peaks]}, growth over the second half "
          f"{[f'{k / 1024:+.0f} MB' for k in growth]} "
          f"(goal bounded: {'met' if all(g <= 0.1 * p for g, p in zip(growth, peaks)) else 'NOT met'})")

    trajectory = []
    for mark in range(0, OVERLOAD + 1, 10):
        at = overload_start + mark
        nearest = min(samples, key=lambda sample: abs(sample[0] - at), default=None)
        if nearest:
            trajectory.append(f"{mark}s: {'/'.join(f'{k / 1024:.0f}' for k in nearest[1])}")
    print(f"  memory every 10 s of the overload (MB per node): {', '.join(trajectory)}")

    recovered = None
    for index, s in enumerate(after):
        window = after[index:index + 3]
        if len(window) == 3 and all(w["errors"] == 0 and w["p99_ns"] / 1e6 <= 2 * baseline_p99 for w in window):
            recovered = s["second"] - (BEFORE + OVERLOAD)
            break
    shown = "not within the run" if recovered is None else f"{recovered} s"
    print(f"after    ({len(after)} s at 0.5x): back to p99 <= 2x before ({2 * baseline_p99:.0f} ms) with no errors "
          f"after {shown}")
    print("per second (ok, errors, p99 ms):",
          " ".join(f"{s['second']}:{s['operations']}/{s['errors']}/{s['p99_ns'] / 1e6:.0f}" for s in seconds))


if __name__ == "__main__":
    main()
