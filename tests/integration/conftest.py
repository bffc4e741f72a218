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
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
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
