"""Shared fixtures for Cairn's integration tests.

Every test runs real processes on 127.0.0.1 only. Servers are started by the
fixtures below, tracked by their Popen handle, and stopped by PID in teardown
(even when a test fails). Nothing here sleeps to wait for a condition: waits are
polls with a deadline (`wait_until`).

Targets
-------
`CAIRN_TEST_TARGETS` (default "cairn,redis") selects which servers the
parametrised `server` fixture runs against. "redis" is a real redis-server
started with no persistence; it proves that the tests encode real Redis
behaviour. Tests marked `cairn_only` skip on redis.

`CAIRN_BIN` overrides the cairn binary (default: <repo>/.build/debug/cairn).

Clusters
--------
`cluster_factory.start(N, partitions=16)` returns a `Cluster` of N cairn processes: node 1 founds
the cluster, its /ready is awaited, the others start with `--join` to node 1's peer port, then
`wait_converged()` polls until every node's /ready is 200 and every node's /v1/cluster shows each
partition with `min(replicas, N)` replicas, voters equal to replicas, and (unless `settled=False`)
its preferred leader (the first replica) leading. Each `ClusterNode` keeps its ports across
restarts (the cluster map records them); stop/kill9/sigstop/sigcont act on its PID; its logs go
to the test's tmp dir and their tails are attached to a failure report.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
CAIRN_BIN = Path(os.environ.get("CAIRN_BIN") or REPO_ROOT / ".build" / "debug" / "cairn")
REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = os.environ.get("REDIS_CLI_BIN") or shutil.which("redis-cli") or "/usr/bin/redis-cli"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

TARGETS = [t.strip() for t in os.environ.get("CAIRN_TEST_TARGETS", "cairn,redis").split(",") if t.strip()]
for _t in TARGETS:
    if _t not in ("cairn", "redis"):
        raise ValueError(f"CAIRN_TEST_TARGETS: unknown target {_t!r} (expected cairn and/or redis)")

HOST = "127.0.0.1"
PEER_OFFSET = 10000
HTTP_OFFSET = 20000
NET_TIMEOUT = 5.0
READY_TIMEOUT = 30.0


# --------------------------------------------------------------------------- helpers


def wait_until(cond, timeout=10.0, interval=0.02, message=None):
    """Poll `cond()` until it returns a truthy value; return that value.

    Raises AssertionError after `timeout` seconds. This is a poll with a
    deadline, not a timing assertion: a slow machine only makes it take longer.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - surfaced in the failure message
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"condition not met within {timeout}s: {message or cond}{detail}")
        time.sleep(interval)


def cairn_available() -> bool:
    return CAIRN_BIN.is_file() and os.access(CAIRN_BIN, os.X_OK)


def redis_available() -> bool:
    return Path(REDIS_SERVER).is_file() and os.access(REDIS_SERVER, os.X_OK)


REQUIRE_TARGETS = os.environ.get("CAIRN_REQUIRE_TARGETS") == "1"


def skip_unless_target(kind: str):
    """Skip (with a clear reason) unless `kind` is selected and its binary exists.

    With CAIRN_REQUIRE_TARGETS=1 (as `make test` sets it) a missing binary fails
    instead: CI must never pass by skipping the system under test.
    """
    if kind not in TARGETS:
        pytest.skip(f"target {kind!r} not selected by CAIRN_TEST_TARGETS={','.join(TARGETS)}")
    missing = None
    if kind == "cairn" and not cairn_available():
        missing = f"cairn binary not found at {CAIRN_BIN} (run `swift build` or set CAIRN_BIN)"
    if kind == "redis" and not redis_available():
        missing = f"redis-server not found at {REDIS_SERVER} (apt-get install redis-server)"
    if missing and REQUIRE_TARGETS:
        pytest.fail(missing)
    if missing:
        pytest.skip(missing)


_port_lock = threading.Lock()
_ports_handed_out: set[int] = set()
_port_rng = random.Random()


def _port_is_free(port: int) -> bool:
    # No SO_REUSEADDR: a port with sockets in TIME_WAIT counts as busy, which is
    # the strict answer for a server that may not set SO_REUSEADDR itself.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def allocate_ports() -> tuple[int, int, int]:
    """Return (P, P+10000, P+20000), all free, with P in 17000..25000."""
    with _port_lock:
        span = range(17000, 25000)
        start = _port_rng.randrange(len(span))
        for i in range(len(span)):
            p = span[(start + i) % len(span)]
            triple = (p, p + PEER_OFFSET, p + HTTP_OFFSET)
            if any(q in _ports_handed_out for q in triple):
                continue
            if all(_port_is_free(q) for q in triple):
                _ports_handed_out.update(triple)
                return triple
    raise RuntimeError("no free port triple in 17000..25000")


def tail(text: str, lines: int = 200) -> str:
    parts = text.splitlines()
    return "\n".join(parts[-lines:])


class ServerExited(AssertionError):
    pass


# --------------------------------------------------------------------------- RESP client


class RespError(str):
    """An error reply (`-ERR ...`), returned rather than raised."""

    def __repr__(self):
        return f"RespError({str(self)!r})"


class RespMap(dict):
    """A RESP3 map (`%`)."""


class RespSet(list):
    """A RESP3 set (`~`)."""


class RespPush(list):
    """A RESP3 push (`>`)."""


class Verbatim(bytes):
    """A RESP3 verbatim string (`=`); `.format` is e.g. 'txt'."""

    format = "txt"


def encode_command(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, (int, float)):
            b = repr(a).encode()
        else:
            b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RawConn:
    """A minimal RESP2/RESP3 client over a plain socket, for exact-shape tests."""

    def __init__(self, port: int, timeout: float = NET_TIMEOUT):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sending
    def send(self, *args):
        self.sock.sendall(encode_command(*args))

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def call(self, *args):
        self.send(*args)
        return self.read_reply()

    def call_raw(self, *args) -> bytes:
        self.send(*args)
        return self.read_raw_reply()

    # -- receiving
    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            idx = self.buf.find(b"\r\n", self.pos)
            if idx >= 0:
                line = bytes(self.buf[self.pos:idx])
                self.pos = idx + 2
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        if self.buf[self.pos + n:self.pos + n + 2] != b"\r\n":
            raise ValueError("bulk payload not followed by CRLF")
        self.pos += n + 2
        return data

    def _compact(self):
        del self.buf[:self.pos]
        self.pos = 0

    def read_reply(self):
        value = self._parse()
        self._compact()
        return value

    def read_raw_reply(self) -> bytes:
        start = self.pos
        self._parse()
        raw = bytes(self.buf[start:self.pos])
        self._compact()
        return raw

    def _parse(self):
        line = self._line()
        if not line:
            raise ValueError("empty reply line")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"(":
            return int(rest)
        if t == b",":
            return float(rest)
        if t == b"#":
            return rest == b"t"
        if t == b"_":
            return None
        if t in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            if t == b"=":
                v = Verbatim(data[4:])
                v.format = data[:3].decode()
                return v
            return data
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self._parse() for _ in range(n)]
            return {b"*": list, b"~": RespSet, b">": RespPush}[t](items)
        if t == b"%":
            n = int(rest)
            m = RespMap()
            for _ in range(n):
                k = self._parse()
                m[k] = self._parse()
            return m
        if t == b"|":  # attribute: skip it, return the value that follows
            n = int(rest)
            for _ in range(2 * n):
                self._parse()
            return self._parse()
        raise ValueError(f"unknown RESP type byte in line {line!r}")

    def read_until_close(self, timeout: float = NET_TIMEOUT) -> bytes:
        """Read everything until the peer closes; raise on timeout."""
        self.sock.settimeout(timeout)
        data = bytes(self.buf[self.pos:])
        self.buf.clear()
        self.pos = 0
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


# --------------------------------------------------------------------------- server processes


class ServerProcess:
    """One cairn or redis-server process, started and stopped by this object only."""

    def __init__(self, kind: str, data_dir: Path, log_dir: Path, name: str,
                 fsync: str | None = None, extra_args=()):
        assert kind in ("cairn", "redis")
        self.kind = kind
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.name = name
        self.fsync = fsync
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.port = self.peer_port = self.http_port = None
        self.log_paths: list[Path] = []
        self.starts = 0
        self._clients: list[redis.Redis] = []
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    # -- argv
    def argv(self) -> list[str]:
        if self.kind == "cairn":
            argv = [str(CAIRN_BIN), "server", "--port", str(self.port), "--data-dir", str(self.data_dir),
                    "--log-level", "info"]
            if self.fsync:
                argv += ["--fsync", self.fsync]
            return argv + self.extra_args
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--dir", str(self.data_dir),
                "--save", "", "--daemonize", "no", "--logfile", ""]
        if self.fsync in ("always", "everysec"):
            argv += ["--appendonly", "yes", "--appendfsync", self.fsync]
        else:
            argv += ["--appendonly", "no"]
        return argv + self.extra_args

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- start / stop
    def start(self, wait_ready: bool = True, attempts: int = 3):
        assert not self.running(), "already running"
        for attempt in range(attempts):
            self.port, self.peer_port, self.http_port = allocate_ports()
            self.starts += 1
            log_path = self.log_dir / f"{self.name}.{self.starts}.log"
            self.log_paths.append(log_path)
            with open(log_path, "wb") as logf:
                self.proc = subprocess.Popen(self.argv(), stdout=logf, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=str(self.log_dir))
            if not wait_ready:
                return self
            try:
                self.wait_ready()
                return self
            except ServerExited:
                text = log_path.read_text(errors="replace").lower()
                if attempt + 1 < attempts and ("address already in use" in text or "eaddrinuse" in text):
                    continue  # lost a port race with another process: try other ports
                raise
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise ServerExited(f"{self.name} ({self.kind}) exited with code {self.proc.returncode} "
                                   f"before answering PING\n--- log ---\n{tail(self.logs())}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0) as s:
                    s.settimeout(1.0)
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    data = b""
                    while b"\r\n" not in data:
                        chunk = s.recv(1024)
                        if not chunk:
                            break
                        data += chunk
                    if data.startswith(b"+PONG\r\n") and self._other_ports_accept():
                        return
                    last = data
            except OSError as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name} ({self.kind}) not ready within {timeout}s "
                                     f"(last: {last!r})\n--- log ---\n{tail(self.logs())}")
            time.sleep(0.02)

    def _other_ports_accept(self) -> bool:
        """Cairn also listens on the peer and HTTP ports; ready means all three accept."""
        if self.kind != "cairn":
            return True
        for port in (self.peer_port, self.http_port):
            try:
                with socket.create_connection((HOST, port), timeout=1.0):
                    pass
            except OSError:
                return False
        return True

    def _close_clients(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self._clients.clear()

    def send_signal(self, sig):
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send `sig` (by PID) and wait for exit; return the exit code."""
        self._close_clients()
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(f"{self.name} did not exit within {timeout}s after {sig!r}")
        return self.proc.returncode

    def kill9(self):
        self._close_clients()
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self):
        """Teardown: stop the process if it still runs (TERM, then KILL)."""
        self._close_clients()
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    # -- clients
    def client(self, protocol: int = 2, **kw) -> redis.Redis:
        opts = dict(host=HOST, port=self.port, socket_timeout=NET_TIMEOUT, socket_connect_timeout=NET_TIMEOUT,
                    decode_responses=True, protocol=protocol)
        opts.update(kw)
        c = redis.Redis(**opts)
        self._clients.append(c)
        return c

    def raw(self, timeout: float = NET_TIMEOUT) -> RawConn:
        return RawConn(self.port, timeout=timeout)

    def logs(self) -> str:
        out = []
        for p in self.log_paths:
            try:
                out.append(f"=== {p.name} ===\n" + p.read_text(errors="replace"))
            except OSError:
                pass
        return "\n".join(out)


class ServerFactory:
    """Starts servers on demand for one test; tears all of them down afterwards."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.servers: list[ServerProcess] = []

    def create(self, kind: str, data_dir: Path | None = None, fsync: str | None = None,
               extra_args=(), name: str | None = None) -> ServerProcess:
        skip_unless_target(kind)
        n = len(self.servers)
        name = name or f"{kind}{n}"
        srv = ServerProcess(kind, data_dir or self.tmp_path / f"data-{name}", self.tmp_path / "logs", name,
                            fsync=fsync, extra_args=extra_args)
        self.servers.append(srv)
        return srv

    def start(self, kind: str, **kw) -> ServerProcess:
        return self.create(kind, **kw).start()

    def cleanup(self):
        for s in self.servers:
            s.cleanup()


# --------------------------------------------------------------------------- clusters


def http_get(port: int, path: str, timeout: float = NET_TIMEOUT) -> tuple[int, bytes]:
    """GET http://127.0.0.1:port/path; return (status, body). Non-2xx statuses are returned, not raised."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric_total(text: str, name: str) -> float:
    """Sum of every sample of metric `name` (all label sets) in Prometheus text `text`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key: str | bytes) -> int:
    """Redis Cluster's hash slot of `key` ({hash tag} rules included); independent of Cairn."""
    k = key.encode() if isinstance(key, str) else key
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    return crc16_xmodem(k) % 16384


class ClusterNode(ServerProcess):
    """One node of a cluster. Its ports are chosen once and kept across restarts,
    because the cluster map records every node's addresses."""

    def __init__(self, data_dir: Path, log_dir: Path, name: str, fsync: str | None, extra_args=(),
                 join: str | None = None):
        super().__init__("cairn", data_dir, log_dir, name, fsync=fsync, extra_args=extra_args)
        self.join = join
        self.port, self.peer_port, self.http_port = allocate_ports()

    def argv(self) -> list[str]:
        argv = super().argv()
        # Always passed: a node whose data directory holds its identity ignores --join. (Passing it on the
        # first start only was wrong: a retry after losing a port race is a second start, and without
        # --join that node founded a cluster of its own: a CI flake, "knows 4 nodes, expected 5".)
        if self.join:
            argv += ["--join", self.join]
        return argv

    def start(self, wait_ready: bool = False, attempts: int = 3):
        """Start the process (same ports as before). Readiness is the cluster's business:
        see Cluster.wait_node_ready / Cluster.wait_converged."""
        assert not self.running(), "already running"
        for attempt in range(attempts):
            self.starts += 1
            log_path = self.log_dir / f"{self.name}.{self.starts}.log"
            self.log_paths.append(log_path)
            with open(log_path, "wb") as logf:
                self.proc = subprocess.Popen(self.argv(), stdout=logf, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=str(self.log_dir))
            # A port taken by someone else between allocation and bind: pick new ports, but only
            # before the node has ever run (afterwards the cluster map knows its addresses).
            if self.starts == 1 + attempt and attempt + 1 < attempts:
                try:
                    self.proc.wait(timeout=0.3)
                except subprocess.TimeoutExpired:
                    return self
                text = log_path.read_text(errors="replace").lower()
                if "address already in use" in text or "eaddrinuse" in text:
                    self.port, self.peer_port, self.http_port = allocate_ports()
                    continue
            return self
        return self

    # -- signals by PID
    def kill9_nowait(self):
        """SIGKILL without waiting for the exit (the next start() or cleanup reaps it)."""
        self._close_clients()
        os.kill(self.proc.pid, signal.SIGKILL)

    def sigstop(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def sigcont(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def cleanup(self):
        self.sigcont()  # a stopped process cannot act on SIGTERM
        super().cleanup()

    # -- HTTP
    def http(self, path: str, timeout: float = NET_TIMEOUT) -> tuple[int, bytes]:
        return http_get(self.http_port, path, timeout=timeout)

    def ready(self) -> bool:
        return self.ready_status() == 200

    def ready_status(self):
        """The status of GET /ready, or the exception that prevented an answer."""
        try:
            return self.http("/ready", timeout=2.0)[0]
        except OSError as exc:
            return exc

    def cluster_map(self, timeout: float = NET_TIMEOUT) -> dict:
        status, body = self.http("/v1/cluster", timeout=timeout)
        assert status == 200, f"{self.name} /v1/cluster -> {status}: {body[:200]!r}"
        return json.loads(body)

    def metrics(self) -> str:
        status, body = self.http("/metrics")
        assert status == 200, f"{self.name} /metrics -> {status}"
        return body.decode()


class Cluster:
    """N cairn processes forming one cluster on loopback.

    start(): node 1 founds the cluster (`--partitions`, `--replicas`), its /ready is awaited, then
    the other nodes start with `--join <node 1's peer address>`; finally wait_converged(). Nodes are
    indexed from 0 (`nodes[0]` is cluster node 1). Every wait is a poll with a deadline.
    """

    def __init__(self, tmp_path: Path, size: int, partitions: int | None = 16, replicas: int | None = None,
                 fsync: str | None = None, name: str = "c", node_args=()):
        skip_unless_target("cairn")
        self.tmp_path = Path(tmp_path)
        self.size = size
        self.partitions = partitions
        self.replicas = replicas
        log_dir = self.tmp_path / "logs"
        self.nodes: list[ClusterNode] = []
        for i in range(size):
            extra = list(node_args)
            if i == 0:
                if partitions is not None:
                    extra += ["--partitions", str(partitions)]
                if replicas is not None:
                    extra += ["--replicas", str(replicas)]
            node = ClusterNode(self.tmp_path / f"{name}-data{i + 1}", log_dir, f"{name}-node{i + 1}",
                               fsync=fsync, extra_args=extra)
            self.nodes.append(node)
        for node in self.nodes[1:]:
            node.join = f"{HOST}:{self.nodes[0].peer_port}"

    # -- lifecycle
    def start(self, timeout: float = 60.0, settled: bool = True):
        first = self.nodes[0]
        first.start()
        self.wait_node_ready(first, timeout=READY_TIMEOUT)
        for node in self.nodes[1:]:
            node.start()
        self.wait_converged(timeout=timeout, settled=settled)
        return self

    def running_nodes(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.running()]

    def _check_alive(self, nodes):
        for n in nodes:
            if n.proc is not None and n.proc.poll() is not None:
                raise ServerExited(f"{n.name} exited with code {n.proc.returncode}\n--- log ---\n{tail(n.logs())}")

    def wait_node_ready(self, node: ClusterNode, timeout: float = READY_TIMEOUT):
        def ok():
            self._check_alive([node])
            return node.ready()
        wait_until(ok, timeout=timeout, interval=0.05, message=f"{node.name} /ready is not 200")

    def expected_replicas(self) -> int:
        want = self.replicas if self.replicas is not None else 3
        return min(want, len(self.nodes))

    def converged_problem(self, nodes=None, settled: bool = True) -> str | None:
        """None if every given node (default: all running) is ready and its /v1/cluster shows every
        partition fully replicated (voters == replicas, the expected count) with a leader and, if
        `settled`, that leader is the partition's preferred leader (the first replica: the placement
        hands leadership to it, so until then leadership transfers are still to come); else a
        description of the first problem found."""
        nodes = nodes if nodes is not None else self.running_nodes()
        self._check_alive(nodes)
        want = self.expected_replicas()
        for n in nodes:
            status = n.ready_status()
            if status != 200:
                return f"{n.name}: /ready -> {status!r}"
            m = n.cluster_map()
            if not m.get("joined"):
                return f"{n.name}: not joined"
            members = [x for x in m.get("nodes", []) if x.get("state") != "removed"]
            if len(members) != len(self.nodes):
                return f"{n.name}: knows {len(members)} nodes (not removed), expected {len(self.nodes)}"
            parts = m.get("partitions", [])
            if self.partitions is not None and len(parts) != self.partitions:
                return f"{n.name}: {len(parts)} partitions, expected {self.partitions}"
            for p in parts:
                if p.get("leader") in (None, 0):
                    return f"{n.name}: partition {p['partition']} has no leader"
                if len(p["replicas"]) != want:
                    return f"{n.name}: partition {p['partition']} replicas {p['replicas']} (want {want})"
                if "voters" in p and sorted(p["voters"]) != sorted(p["replicas"]):
                    return f"{n.name}: partition {p['partition']} voters {p['voters']} != replicas {p['replicas']}"
                if m["node"] in p["replicas"] and "voters" not in p:
                    return f"{n.name}: partition {p['partition']} lists it as replica but it hosts no voters"
                if settled and p["leader"] != p["replicas"][0]:
                    return (f"{n.name}: partition {p['partition']} led by {p['leader']}, "
                            f"preferred leader is {p['replicas'][0]}")
        return None

    def wait_converged(self, timeout: float = 60.0, nodes=None, settled: bool = True):
        """Wait for converged_problem() to be None (see there)."""
        last = [None]

        def ok():
            last[0] = self.converged_problem(nodes, settled)
            return last[0] is None
        try:
            wait_until(ok, timeout=timeout, interval=0.1, message="cluster not converged")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last problem: {last[0]}\n{self.views()}") from None

    def views(self) -> str:
        """One line per node: what it says about itself and the cluster (for failure messages: the
        logs printed after a failure are cut to their last lines)."""
        lines = []
        for n in self.nodes:
            head = f"  {n.name} (pid {n.proc.pid if n.proc else None}, ports {n.port}/{n.peer_port}/{n.http_port})"
            if not n.running():
                lines.append(f"{head}: not running")
                continue
            try:
                m = n.cluster_map(timeout=2.0)
            except (OSError, AssertionError, ValueError) as exc:
                lines.append(f"{head}: /v1/cluster failed: {exc}")
                continue
            if not m.get("joined"):
                lines.append(f"{head}: not joined (join {m.get('join')})")
                continue
            nodes = [(x.get("id"), x.get("state"), x.get("peer")) for x in m.get("nodes", [])]
            lines.append(f"{head}: node {m.get('node')} epoch {m.get('epoch')} meta_voters {m.get('meta_voters')} "
                         f"nodes {nodes}")
        return "\n".join(lines)

    def stop_all(self, sig=signal.SIGTERM) -> list[int]:
        for n in self.nodes:
            if n.running():
                n.sigcont()
                n._close_clients()
                os.kill(n.pid, sig)
        codes = []
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    n.proc.kill()
                    n.proc.wait(timeout=10)
                    raise AssertionError(f"{n.name} did not exit within 30s after {sig!r}")
                codes.append(n.proc.returncode)
        return codes

    def cleanup(self):
        for n in self.nodes:
            n.sigcont()
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n._close_clients()
                n.proc.terminate()
        for n in self.nodes:
            n.cleanup()

    # -- views
    def node_by_id(self, node_id: int, via: ClusterNode | None = None) -> ClusterNode:
        via = via or self.running_nodes()[0]
        for entry in via.cluster_map()["nodes"]:
            if entry["id"] == node_id:
                port = int(entry["client"].rsplit(":", 1)[1])
                for n in self.nodes:
                    if n.port == port:
                        return n
        raise KeyError(f"no node with id {node_id}")

    def node_id(self, node: ClusterNode) -> int:
        return node.cluster_map()["node"]

    def leaders(self, via: ClusterNode | None = None) -> dict[int, int]:
        """partition -> leader node id, as `via` (default: first running node) sees it."""
        via = via or self.running_nodes()[0]
        return {p["partition"]: p["leader"] for p in via.cluster_map()["partitions"]}

    def partition_slots(self, via: ClusterNode | None = None) -> dict[int, tuple[int, int]]:
        via = via or self.running_nodes()[0]
        return {p["partition"]: tuple(p["slots"]) for p in via.cluster_map()["partitions"]}


class ClusterFactory:
    """Creates clusters for one test and tears all their processes down afterwards."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.clusters: list[Cluster] = []

    def create(self, size: int, **kw) -> Cluster:
        name = kw.pop("name", f"c{len(self.clusters)}")
        c = Cluster(self.tmp_path, size, name=name, **kw)
        self.clusters.append(c)
        return c

    def start(self, size: int, **kw) -> Cluster:
        return self.create(size, **kw).start()

    def cleanup(self):
        for c in self.clusters:
            c.cleanup()


# --------------------------------------------------------------------------- fixtures


def pytest_configure(config):
    config.addinivalue_line("markers", "cairn_only(reason): behaviour that only Cairn has (skipped on redis)")


@pytest.fixture(scope="module", params=TARGETS)
def target(request):
    """The server kind under test ("cairn" or "redis"); skips if its binary is missing."""
    skip_unless_target(request.param)
    return request.param


@pytest.fixture(scope="module")
def server(target, tmp_path_factory):
    """One server per test module and target, without persistence settings."""
    tmp = tmp_path_factory.mktemp(f"{target}-server")
    fsync = "none" if target == "cairn" else None
    srv = ServerProcess(target, tmp / "data", tmp / "logs", target, fsync=fsync)
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def cairn_server(tmp_path_factory):
    """A cairn server for Cairn-only test modules (HTTP, lifecycle)."""
    skip_unless_target("cairn")
    tmp = tmp_path_factory.mktemp("cairn-only")
    srv = ServerProcess("cairn", tmp / "data", tmp / "logs", "cairn", fsync="none")
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture
def server_factory(tmp_path):
    f = ServerFactory(tmp_path)
    try:
        yield f
    finally:
        f.cleanup()


@pytest.fixture
def cluster_factory(tmp_path):
    """Start clusters with `cluster_factory.start(3, partitions=16)`; all processes stop afterwards."""
    f = ClusterFactory(tmp_path)
    try:
        yield f
    finally:
        f.cleanup()


@pytest.fixture(autouse=True)
def _cairn_only_marker(request):
    marker = request.node.get_closest_marker("cairn_only")
    if marker is None:
        return
    kind = None
    if "target" in request.fixturenames:
        kind = request.getfixturevalue("target")
    if kind is not None and kind != "cairn":
        reason = marker.args[0] if marker.args else "Cairn-only behaviour"
        pytest.skip(f"cairn only: {reason}")


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(request, server):
    """A redis-py client (RESP2 and RESP3) on a flushed database."""
    c = server.client(protocol=request.param)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def r2(server):
    """A RESP2 redis-py client on a flushed database."""
    c = server.client(protocol=2)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def raw(server):
    """A raw RESP connection on a flushed database."""
    c = server.client(protocol=2)
    c.flushall()
    c.close()
    conn = server.raw()
    yield conn
    conn.close()


def _servers_of(item):
    found = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, ServerProcess):
            found.append(value)
        elif isinstance(value, ServerFactory):
            found.extend(value.servers)
        elif isinstance(value, ClusterFactory):
            for c in value.clusters:
                found.extend(c.nodes)
    seen, out = set(), []
    for s in found:
        if id(s) not in seen:
            seen.add(id(s))
            out.append(s)
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in _servers_of(item):
            text = srv.logs()
            if text:
                rep.sections.append((f"{srv.name} ({srv.kind}) log, last 200 lines", tail(text)))
