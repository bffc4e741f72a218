"""The HTTP admin port (RESP port + 20000): /health, /ready, /metrics, errors. Cairn only."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import HOST, PROMTOOL, REQUIRE_TARGETS, wait_until

METRIC_NAMES = [
    "cairn_commands_total", "cairn_command_duration_seconds", "cairn_connected_clients", "cairn_keys",
    "cairn_cache_hits_total", "cairn_cache_misses_total", "cairn_fsync_duration_seconds",
    "cairn_group_commit_batch_writes", "cairn_group_commits_total",
]


def http_get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> tuple[list[tuple[str, dict[str, str], float]], dict[str, str]]:
    """Return (samples, types) from Prometheus text format."""
    samples, types = [], {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind.strip()
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"unparseable metrics line: {line!r}"
        labels = dict(_LABEL.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples, types


def metric_sum(samples, name: str, **labels) -> float:
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == want for k, want in labels.items()))


def fetch_metrics(server):
    status, headers, body = http_get(server.http_port, "/metrics")
    assert status == 200
    return parse_metrics(body.decode())


def test_health(cairn_server):
    status, _, body = http_get(cairn_server.http_port, "/health")
    assert status == 200
    assert body == b"ok\n"


def test_ready(cairn_server):
    wait_until(lambda: http_get(cairn_server.http_port, "/ready")[0] == 200, timeout=10,
               message="/ready did not return 200 for a server that answers PING")


def test_unknown_path_is_404(cairn_server):
    for path in ("/nope", "/metrics/extra", "/healthz", "/%00"):
        status, _, _ = http_get(cairn_server.http_port, path)
        assert status == 404, path


def test_metrics_format_and_names(cairn_server):
    status, headers, body = http_get(cairn_server.http_port, "/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain")
    text = body.decode()
    samples, types = parse_metrics(text)
    names = {n for n, _, _ in samples}
    for name in METRIC_NAMES:
        assert name in types or name in names, f"metric {name} missing from /metrics"
    assert types.get("cairn_command_duration_seconds") == "histogram"
    assert types.get("cairn_commands_total", types.get("cairn_commands")) == "counter"
    assert "cairn_command_duration_seconds_bucket" in names
    assert any(l.get("le") == "+Inf" for n, l, _ in samples if n == "cairn_command_duration_seconds_bucket")


def test_commands_counter_counts_sets(cairn_server):
    c = cairn_server.client()
    before, _ = fetch_metrics(cairn_server)
    n = 37
    for i in range(n):
        c.set(f"m:{i}", "v")
    for i in range(5):
        c.get(f"m:{i}")
    after, _ = fetch_metrics(cairn_server)
    sets = metric_sum(after, "cairn_commands_total", command="set", result="ok") - \
        metric_sum(before, "cairn_commands_total", command="set", result="ok")
    gets = metric_sum(after, "cairn_commands_total", command="get") - \
        metric_sum(before, "cairn_commands_total", command="get")
    assert sets >= n
    assert gets >= 5
    count_before = metric_sum(before, "cairn_command_duration_seconds_count")
    assert metric_sum(after, "cairn_command_duration_seconds_count") >= count_before + n


def test_connected_clients_and_keys_gauges(cairn_server):
    c = cairn_server.client()
    c.flushall()
    c.mset({f"g:{i}": "v" for i in range(12)})
    samples, _ = fetch_metrics(cairn_server)
    assert metric_sum(samples, "cairn_connected_clients") >= 1
    wait_until(lambda: metric_sum(fetch_metrics(cairn_server)[0], "cairn_keys") == c.dbsize(), timeout=10,
               message="cairn_keys does not match DBSIZE")


def test_promtool_accepts_metrics(cairn_server):
    if not (Path(PROMTOOL).is_file() and os.access(PROMTOOL, os.X_OK)):
        if REQUIRE_TARGETS:
            pytest.fail(f"promtool not found at {PROMTOOL} (apt-get install prometheus)")
        pytest.skip(f"promtool not found at {PROMTOOL} (apt-get install prometheus)")
    c = cairn_server.client()
    for i in range(10):
        c.set(f"p:{i}", "v")
        c.get(f"p:{i}")
        c.get("p:missing")
    _, _, body = http_get(cairn_server.http_port, "/metrics")
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert proc.returncode == 0, (f"promtool check metrics exited {proc.returncode}:\n"
                                  f"{proc.stdout.decode()}{proc.stderr.decode()}")


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /health\r\n\r\n",
    b"GET /health HTTP/1.1\r\nno-colon-header\r\n\r\n",
    b"GET /health HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"GET /health HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",
    b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n",
    b"\x00\xff\x10\x80\r\n\r\n",
    # The start of a TLS ClientHello, then a blank line so that the "request" is complete.
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)) + b"\r\n\r\n",
]


@pytest.mark.parametrize("payload", MALFORMED, ids=[repr(p[:24]) for p in MALFORMED])
def test_malformed_request_gets_400_or_close(cairn_server, payload):
    with socket.create_connection((HOST, cairn_server.http_port), timeout=5) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise AssertionError(f"no 400 and no close within 5 s; got {data[:200]!r}")
            if not chunk:
                break
            data += chunk
    if data:
        status_line = data.split(b"\r\n", 1)[0]
        assert re.match(rb"HTTP/1\.[01] (400|413|414|431) ", status_line), status_line
    assert cairn_server.proc.poll() is None, "server died"
    status, _, body = http_get(cairn_server.http_port, "/health")
    assert (status, body) == (200, b"ok\n")


def test_keep_alive_and_many_requests(cairn_server):
    conn = http.client.HTTPConnection(HOST, cairn_server.http_port, timeout=5)
    try:
        for _ in range(50):
            conn.request("GET", "/health")
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.read() == b"ok\n"
    finally:
        conn.close()
