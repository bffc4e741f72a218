"""`cairn dev`: a local 3-node cluster started, used, stopped by SIGTERM and resumed. Cairn only.

The dev process is started and stopped by PID; its children are found through the pid files it
writes. Waits are polls with deadlines, never sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import redis

from conftest import (
    CAIRN_BIN,
    HOST,
    HTTP_OFFSET,
    NET_TIMEOUT,
    PEER_OFFSET,
    _port_is_free,
    _port_lock,
    _ports_handed_out,
    skip_unless_target,
    wait_until,
)

NODES = 3
READY_TIMEOUT = 70  # cairn dev gives up by itself after 60 s (its --ready-timeout default)
STOP_TIMEOUT = 45  # cairn dev waits up to 30 s per node before SIGKILL
EXIT_TIMEOUT = 15  # a command that should exit at once


@pytest.fixture(autouse=True)
def _needs_cairn():
    skip_unless_target("cairn")


def allocate_port_block(count: int) -> int:
    """A base port P with P..P+count-1, their peer ports (+10000) and HTTP ports (+20000) all free."""
    with _port_lock:
        for base in range(17000 + (os.getpid() * 37) % 7000, 25000 - count):
            ports = [p + offset for p in range(base, base + count) for offset in (0, PEER_OFFSET, HTTP_OFFSET)]
            if any(p in _ports_handed_out for p in ports):
                continue
            if all(_port_is_free(p) for p in ports):
                _ports_handed_out.update(ports)
                return base
    raise RuntimeError(f"no block of {count} free port triples in 17000..25000")


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not count: it has exited and only waits to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Dev:
    """One `cairn dev` process on a data directory; output goes to files the test polls."""

    def __init__(self, tmp_path: Path, data_dir: Path, base_port: int):
        self.tmp_path = tmp_path
        self.data_dir = data_dir
        self.base_port = base_port
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.out_path = self.err_path = None
        self.child_pids: set[int] = set()

    def argv(self) -> list[str]:
        # 8 partitions, not the default 128: this test checks how `cairn dev` starts, stops and
        # resumes processes. With 128 Raft groups per node, three debug-build nodes on a loaded
        # 2-core machine churn through elections for many seconds after the replica moves, which
        # would make this test measure Raft under CPU starvation instead.
        return [str(CAIRN_BIN), "dev", "--nodes", str(NODES), "--port", str(self.base_port),
                "--data-dir", str(self.data_dir), "--fsync", "none", "--partitions", "8"]

    def start(self):
        self.runs += 1
        self.out_path = self.tmp_path / f"dev.{self.runs}.out"
        self.err_path = self.tmp_path / f"dev.{self.runs}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        wait_until(self._printed_endpoints, timeout=READY_TIMEOUT, interval=0.05,
                   message=f"cairn dev printed its endpoints (run {self.runs})")
        for i in range(1, NODES + 1):
            self.child_pids.add(int((self.data_dir / f"node{i}.pid").read_text().strip()))
        return self.output()

    def _printed_endpoints(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"cairn dev exited with {self.proc.returncode} before it was ready\n{self.report()}")
        return "stop:" in self.output()

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def errors(self) -> str:
        return self.err_path.read_text(errors="replace")

    def report(self) -> str:
        logs = []
        for i in range(1, NODES + 1):
            log = self.data_dir / f"node{i}.log"
            if log.exists():
                logs.append(f"--- node{i}.log (end) ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
        return f"--- stdout ---\n{self.output()}\n--- stderr ---\n{self.errors()}\n" + "\n".join(logs)

    def stop(self, sig=signal.SIGTERM) -> int:
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"cairn dev did not exit within {STOP_TIMEOUT}s after {sig!r}\n{self.report()}")

    def cleanup(self):
        """Teardown: stop the dev process, then any child it left behind, by PID."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for i in range(1, NODES + 1):
            try:
                self.child_pids.add(int((self.data_dir / f"node{i}.pid").read_text().strip()))
            except (OSError, ValueError):
                pass
        for pid in self.child_pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def dev(tmp_path):
    d = Dev(tmp_path, tmp_path / "cluster", allocate_port_block(NODES))
    try:
        yield d
    finally:
        d.cleanup()


def client(port: int) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, socket_timeout=NET_TIMEOUT, socket_connect_timeout=NET_TIMEOUT,
                       decode_responses=True)


def assert_stopped_cleanly(dev: Dev, pids: list[int]):
    code = dev.stop(signal.SIGTERM)
    assert code == 0, f"cairn dev exited with {code}\n{dev.report()}"
    still = [pid for pid in pids if alive(pid)]
    assert not still, f"nodes still running after cairn dev exited: {still}\n{dev.report()}"
    left = sorted(p.name for p in dev.data_dir.glob("*.pid"))
    assert not left, f"pid files left behind: {left}"
    assert "all nodes stopped" in dev.output(), dev.report()


def node_pids(dev: Dev) -> list[int]:
    return [int((dev.data_dir / f"node{i}.pid").read_text().strip()) for i in range(1, NODES + 1)]


def test_dev_cluster_starts_serves_stops_and_resumes(dev):
    P = dev.base_port
    text = dev.start()
    for i in range(NODES):
        assert f"client {HOST}:{P + i}" in text, text
        assert f"http://{HOST}:{P + i + HTTP_OFFSET}" in text, text
    assert f"redis-cli -c -p {P}" in text, text
    pids = node_pids(dev)
    assert all(alive(pid) for pid in pids), dev.report()
    assert all(f"pid {pid}" in text for pid in pids), text

    # Any node answers any key: write through node 1, read through node 3.
    first, third = client(P), client(P + NODES - 1)
    assert first.set("dev:greeting", "hello") is True
    assert third.get("dev:greeting") == "hello"
    first.close()
    third.close()

    # `cairn ctl status` prints every node and partition as node 2 sees them.
    ctl = subprocess.run([str(CAIRN_BIN), "ctl", "status", "--addr", f"{HOST}:{P + 1 + HTTP_OFFSET}"],
                         capture_output=True, text=True, timeout=EXIT_TIMEOUT)
    assert ctl.returncode == 0, (ctl.returncode, ctl.stderr)
    assert "PARTITION" in ctl.stdout and "LEADER" in ctl.stdout, ctl.stdout
    for i in range(NODES):
        assert f"{HOST}:{P + i} " in ctl.stdout, ctl.stdout

    # A second `cairn dev` on the same directory refuses while the first runs, and touches nothing.
    other = subprocess.run([str(CAIRN_BIN), "dev", "--port", str(P + 100), "--data-dir", str(dev.data_dir)],
                           capture_output=True, text=True, timeout=EXIT_TIMEOUT, stdin=subprocess.DEVNULL)
    assert other.returncode == 1, (other.returncode, other.stdout, other.stderr)
    assert "names a running cairn server" in other.stderr, other.stderr
    assert all(alive(pid) for pid in pids), dev.report()

    assert_stopped_cleanly(dev, pids)

    # Run again on the same directory: the same cluster resumes with its data.
    text = dev.start()
    assert "resuming the cluster" in text, text
    second = client(P + 1)
    assert second.get("dev:greeting") == "hello"
    second.close()
    assert_stopped_cleanly(dev, node_pids(dev))


def test_dev_help_and_bad_flags():
    proc = subprocess.run([str(CAIRN_BIN), "dev", "--help"], capture_output=True, text=True, timeout=EXIT_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--nodes", "--port", "--data-dir", "--fsync", "--log-level", "--partitions", "--replicas",
                 "--ready-timeout"):
        assert flag in proc.stdout, f"{flag} missing from 'cairn dev --help'"
    for args, expected in [
        (["--nodes", "0"], "--nodes must be a number from 1 to"),
        (["--port", "x"], "--port must be a number"),
        (["--fsync", "sometimes"], "--fsync must be one of"),
        (["--wat"], "unknown flag '--wat'"),
        (["--nodes"], "--nodes needs a value"),
    ]:
        proc = subprocess.run([str(CAIRN_BIN), "dev", *args], capture_output=True, text=True, timeout=EXIT_TIMEOUT)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)


def test_ctl_bad_flags_and_unreachable_node():
    for args, code, expected in [
        (["ctl"], 2, "expected a subcommand"),
        (["ctl", "nope"], 2, "unknown subcommand 'nope'"),
        (["ctl", "status", "--addr", "nowhere"], 2, "--addr must be HOST:PORT"),
        (["ctl", "status", "--wat"], 2, "unknown flag '--wat'"),
        (["ctl", "status", "--addr", f"{HOST}:1", "--timeout", "1"], 1, "no answer from"),
    ]:
        proc = subprocess.run([str(CAIRN_BIN), *args], capture_output=True, text=True, timeout=EXIT_TIMEOUT)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)
