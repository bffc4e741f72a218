"""`cairn bench` against real servers: its report's counts must match what the servers saw.

Each test runs the real `cairn bench` binary for a second or two against a local `cairn server`
and/or a local `redis-server` (started by the fixtures on free loopback ports and stopped by PID),
then compares the report's per-command reply counts with the server's `INFO commandstats` deltas.
No test asserts anything about timing: only counts, shapes and exit statuses.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import CAIRN_BIN, HOST, REDIS_CLI, allocate_ports, cairn_available, skip_unless_target, wait_until

BENCH_TIMEOUT = 90


def bench(*args, timeout=BENCH_TIMEOUT) -> subprocess.CompletedProcess:
    if not cairn_available():
        skip_unless_target("cairn")
    return subprocess.run([str(CAIRN_BIN), "bench", *args], capture_output=True, text=True, timeout=timeout)


def command_calls(client) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def delta(before: dict[str, int], after: dict[str, int], name: str) -> int:
    return after.get(name, 0) - before.get(name, 0)


def check_counts(report_run: dict, before: dict[str, int], after: dict[str, int]):
    """Every GET/SET/MGET the report counts reached the server, and nothing else of theirs did."""
    for name in ("get", "set", "mget"):
        assert report_run["commands"].get(name, 0) == delta(before, after, name), (name, report_run["commands"])


def test_closed_loop_ycsb_counts_match_server(server, tmp_path):
    client = server.client()
    client.flushall()
    before = command_calls(client)
    out = tmp_path / "report.json"
    html = tmp_path / "report.html"
    proc = bench("--target", f"{HOST}:{server.port}", "--workload", "ycsb-a", "-c", "8", "-P", "4",
                 "--duration", "2s", "--keys", "500", "--seed", "7", "--quiet", "--json", str(out),
                 "--html", str(html))
    assert proc.returncode == 0, proc.stderr
    after = command_calls(client)
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    check_counts(run, before, after)
    assert run["load"]["operations"] == 500
    assert client.dbsize() == 500
    assert run["run"]["errors"] == 0
    by_kind = run["run"]["by_kind"]
    assert by_kind["read"]["count"] == run["commands"]["get"]
    assert by_kind["update"]["count"] + 500 == run["commands"]["set"]
    assert run["run"]["operations"] == sum(s["operations"] for s in run["run"]["seconds"])
    latency = run["run"]["latency"]
    assert 0 < latency["p50_ns"] <= latency["p99_ns"] <= latency["max_ns"]
    assert "commands: get=" in proc.stdout and "p99.9" in proc.stdout
    page = html.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2


def test_open_loop_spike_resp3_counts_match_server(server, tmp_path):
    client = server.client()
    client.flushall()
    before = command_calls(client)
    out = tmp_path / "report.json"
    proc = bench("--target", f"{HOST}:{server.port}", "--workload", "mixed", "-c", "4", "--rate", "400",
                 "--profile", "spike:x=3,for=1s,every=2s,at=1s", "--duration", "2s", "--keys", "200",
                 "--resp", "3", "--quiet", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    after = command_calls(client)
    (run,) = json.loads(out.read_text())["runs"]
    check_counts(run, before, after)
    assert delta(before, after, "hello") >= 4, "every connection speaks RESP3"
    assert run["spike_windows_seconds"] == [[1, 2]]
    assert [s["target_rate"] for s in run["run"]["seconds"]][:2] == [400, 1200]
    assert run["run"]["errors"] == 0


def test_compare_cairn_with_redis(server_factory, tmp_path):
    cairn = server_factory.start("cairn", fsync="none")
    redis_server = server_factory.start("redis")
    clients = [cairn.client(), redis_server.client()]
    before = [command_calls(c) for c in clients]
    out = tmp_path / "compare.json"
    proc = bench("--target", f"{HOST}:{cairn.port}", "--compare", f"{HOST}:{redis_server.port}", "--workload",
                 "set", "-c", "4", "-P", "8", "--duration", "1s", "--quiet", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert [r["server"].split()[0] for r in report["runs"]] == ["cairn", "redis"]
    for run, client, earlier in zip(report["runs"], clients, before):
        check_counts(run, earlier, command_calls(client))
    assert report["ratios"]["throughput"] > 0
    assert "ratio" in proc.stdout and "throughput ops/s" in proc.stdout


def test_fault_kills_the_server_and_the_report_shows_failures(server_factory, tmp_path):
    cairn = server_factory.start("cairn", fsync="none")
    out = tmp_path / "fault.json"
    proc = bench("--target", f"{HOST}:{cairn.port}", "--workload", "set", "-c", "2", "--duration", "3s",
                 "--timeout", "1s", "--fault", f"kill -9 {cairn.pid}", "--fault-at", "1s", "--quiet",
                 "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert cairn.proc.wait(timeout=10) != 0
    (run,) = json.loads(out.read_text())["runs"]
    fault = run["fault"]
    assert fault["exit_status"] == 0 and fault["at_seconds"] >= 1
    assert fault["first_failure_seconds"] >= fault["at_seconds"]
    assert fault["unavailable_seconds"] is None, "the node never came back"
    kinds = set(run["run"]["errors_by_kind"])
    assert kinds & {"connection-closed", "connection-reset", "connection-refused", "timeout"}, kinds
    assert "no success after it" in proc.stdout


@pytest.mark.parametrize("args, needle", [
    (["--workload", "nope"], "--workload: expected one of set, get, mixed"),
    (["--rate", "fast"], "--rate: expected operations per second"),
    (["--rate", "-5"], "--rate: expected operations per second"),
    (["-c", "0"], "--clients: expected"),
    (["--duration", "forever"], "--duration: expected a duration"),
    (["--profile", "spike"], "needs --rate"),
    (["--frobnicate"], "unknown flag '--frobnicate'"),
    (["--retries", "11"], "--retries: expected a number from 0 to 10"),
    (["--no-breakers=1"], "--no-breakers: expected no value"),
])
def test_bad_input_is_named_and_exits_2(args, needle):
    proc = bench(*args, timeout=30)
    assert proc.returncode == 2
    assert needle in proc.stderr and "cairn bench --help" in proc.stderr


def test_unreachable_endpoint_fails_fast_with_a_message():
    port, _, _ = allocate_ports()  # free: nothing listens there
    proc = bench("--target", f"{HOST}:{port}", "--duration", "1s", "--timeout", "2s", timeout=30)
    assert proc.returncode == 1
    assert f"cannot reach {HOST}:{port}" in proc.stderr


def test_help_lists_the_flags():
    proc = bench("--help", timeout=30)
    assert proc.returncode == 0
    for flag in ("--target", "--workload", "--pipeline", "--rate", "--profile", "--compare", "--fault-at", "--html"):
        assert flag in proc.stdout


def test_cluster_mode_routes_by_slot_and_follows_a_reshard(server_factory, tmp_path):
    """Three redis-server nodes in cluster mode; `cairn bench --cluster` loads them while a reshard
    (the --fault command) moves slots, so the client must follow MOVED and ASK without errors."""
    nodes = [server_factory.start("redis", extra_args=["--cluster-enabled", "yes", "--cluster-config-file",
                                                       "nodes.conf"]) for _ in range(3)]
    addresses = [f"{HOST}:{n.port}" for n in nodes]
    created = subprocess.run([REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0",
                              "--cluster-yes"], capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stdout + created.stderr
    clients = [n.client() for n in nodes]
    wait_until(lambda: all(c.cluster("info").get("cluster_state") == "ok" for c in clients),
               timeout=30, message="cluster state ok on every node")
    ids = [c.cluster("myid") for c in clients]
    done = tmp_path / "reshard.done"
    reshard = (f"{REDIS_CLI} --cluster reshard {addresses[0]} --cluster-from {ids[0]} --cluster-to {ids[1]} "
               f"--cluster-slots 100 --cluster-yes >/dev/null 2>&1; touch {done}")
    out = tmp_path / "cluster.json"
    proc = bench("--target", addresses[0], "--cluster", "--workload", "ycsb-a", "-c", "2", "-P", "4",
                 "--duration", "2s", "--keys", "5000", "--quiet", "--json", str(out), "--fault", reshard,
                 "--fault-at", "500ms")
    assert proc.returncode == 0, proc.stderr
    (run,) = json.loads(out.read_text())["runs"]
    assert run["run"]["errors"] == 0, run["run"]["errors_by_kind"]
    # The reshard may outlive the run; count keys once no key is between two nodes.
    wait_until(done.exists, timeout=60, message="the reshard finished")
    assert sum(c.dbsize() for c in clients) == 5000
    for name in ("get", "set"):
        # The report counts every reply, redirections included; Redis counts those as rejected calls.
        seen = 0
        for c in clients:
            stats = c.info("commandstats").get(f"cmdstat_{name}", {})
            seen += int(stats.get("calls", 0)) + int(stats.get("rejected_calls", 0))
        assert run["commands"][name] == seen, name
    assert all(c.info("commandstats").get("cmdstat_get") for c in clients), "every node served reads"


def test_retries_stay_within_the_budget(server_factory, tmp_path):
    """A node limits the bench to 100 commands per second and the bench offers 600 (open loop): the
    refusals (TRYAGAIN) are retried with backoff, but never more than the retry budget allows (10%
    of operations, plus 10 per second, plus the 100 it may bank), so retries cannot multiply the
    overload. With --retries 0 nothing is retried."""
    node = server_factory.start("cairn", fsync="none", extra_args=("--client-rate-limit", "100"))
    for retries, name in ((2, "with"), (0, "without")):
        out = tmp_path / f"{name}.json"
        proc = bench("--target", f"{HOST}:{node.port}", "--workload", "set", "--no-load", "-c", "4",
                     "--rate", "600", "--duration", "2s", "--retries", str(retries), "--quiet", "--json", str(out))
        assert proc.returncode == 0, proc.stderr
        (run,) = json.loads(out.read_text())["runs"]
        phase = run["run"]
        assert phase["errors_by_kind"].get("TRYAGAIN", 0) > 0, phase["errors_by_kind"]
        issued = phase["operations"] + phase["errors"]
        if retries:
            assert 0 < phase["retries"] <= 0.1 * issued + 10 * 2 + 110, (phase["retries"], issued)
            assert "retries: " in proc.stdout
        else:
            assert phase["retries"] == 0


def test_breakers_open_on_a_stopped_node_and_close_after_it_resumes(cluster_factory, tmp_path):
    """Clients hammer a 3-node cluster (`cairn bench --cluster`) while one node is SIGSTOPped for
    4 s: operations for it time out until its breaker opens, then fail fast (circuit-open) instead of
    waiting; the other nodes keep serving every second; after SIGCONT, probes close the breaker and
    operations for that node succeed again."""
    c = cluster_factory.start(3, partitions=4)
    victim = c.nodes[2]
    fault = f"kill -STOP {victim.proc.pid}; sleep 4; kill -CONT {victim.proc.pid}"
    out = tmp_path / "breaker.json"
    try:
        proc = bench("--target", f"{HOST}:{c.nodes[0].port}", "--cluster", "--workload", "mixed", "--keys", "1000",
                     "-c", "4", "-P", "8", "--duration", "10s", "--timeout", "300ms", "--quiet", "--json", str(out),
                     "--fault", fault, "--fault-at", "1s")
    finally:
        victim.sigcont()
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    (run,) = json.loads(out.read_text())["runs"]
    phase = run["run"]
    kinds = phase["errors_by_kind"]
    assert kinds.get("timeout", 0) > 0 and kinds.get("circuit-open", 0) > 0, kinds
    assert phase["circuits_opened"] >= 1 and phase["circuits_closed"] >= 1, (phase["circuits_opened"],
                                                                            phase["circuits_closed"])
    seconds = phase["seconds"]
    assert all(s["operations"] > 0 for s in seconds), [s["operations"] for s in seconds]
    assert seconds[-1]["errors"] == 0, seconds[-1]
    assert "circuit breakers: opened" in proc.stdout
