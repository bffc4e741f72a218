"""The HTTP data API on the admin port (`/v1/kv/KEY`) and its `Idempotency-Key` header. Cairn only."""

from __future__ import annotations

import http.client
import socket

from conftest import HOST


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_get_put_delete_incr_and_errors(cairn_server):
    """Each method maps to its command and the reply to a status: values are raw bytes both ways
    (binary and percent-encoded keys included), RESP clients see what HTTP wrote, errors are JSON
    with a status that says whose fault and whether to retry."""
    port = cairn_server.http_port
    value = bytes(range(256)) * 4
    assert request(port, "PUT", "/v1/kv/bin%00key%2F1", value)[::2] == (200, b'{"stored":true}\n')
    status, headers, body = request(port, "GET", "/v1/kv/bin%00key%2F1")
    assert (status, headers["content-type"], body) == (200, "application/octet-stream", value)
    with cairn_server.client(decode_responses=False) as r:
        assert r.get(b"bin\x00key/1") == value
        r.set("from-resp", "42")
    assert request(port, "POST", "/v1/kv/from-resp?incrby=-2")[::2] == (200, b'{"value":40}\n')
    assert request(port, "DELETE", "/v1/kv/from-resp")[::2] == (200, b'{"deleted":1}\n')
    assert request(port, "DELETE", "/v1/kv/from-resp")[::2] == (200, b'{"deleted":0}\n')
    assert request(port, "GET", "/v1/kv/from-resp")[::2] == (404, b'{"error":"no such key"}\n')
    assert request(port, "PUT", "/v1/kv/ttl-key?ttl=100", b"v")[0] == 200
    with cairn_server.client() as r:
        assert 0 < r.ttl("ttl-key") <= 100
    status, _, body = request(port, "POST", "/v1/kv/bin%00key%2F1?incrby=1")
    assert (status, body) == (400, b'{"error":"ERR value is not an integer or out of range"}\n')
    for method, path, want in [
        ("PUT", "/v1/kv/x?ttl=0", b"'ttl' must be a positive number of seconds, got '0'"),
        ("POST", "/v1/kv/x", b"POST needs ?incrby=N"),
        ("POST", "/v1/kv/x?incrby=abc", b"'incrby' must be an integer, got 'abc'"),
        ("GET", "/v1/kv/x?ttl=5", b"unknown query parameter 'ttl' for GET"),
        ("GET", "/v1/kv/", b"the key is empty"),
        ("GET", "/v1/kv/%zz", b"not valid percent-encoding"),
        ("PATCH", "/v1/kv/x", b"method PATCH is not served"),
    ]:
        status, headers, body = request(port, method, path, b"")
        assert status in (400, 405) and want in body and headers["content-type"] == "application/json", (path, body)
    status, _, body = request(port, "GET", "/v1/kv/x", headers={"Idempotency-Key": "t1"})
    assert status == 400 and b"applies to writes" in body


def test_body_limits_and_hang_ups(cairn_server):
    """A body over the limit is refused before it is read (413); one cut short, or a client that
    hangs up, costs nothing; a sender that stalls gets 408 after 5 s; chunked bodies are refused with
    a clear 411; the node keeps serving."""
    port = cairn_server.http_port
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(b"PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
        head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"at most 8388608" in head
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(b"PUT /v1/kv/cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part")
    # A sender that stalls mid-body gets 408 once its request is not whole within 5 s, and is closed.
    with socket.create_connection((HOST, port), timeout=20) as s:
        s.sendall(b"PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"did not arrive whole within 5 s" in answer
    status, _, body = request(port, "PUT", "/v1/kv/chunked", b"v", headers={"Transfer-Encoding": "chunked"})
    assert status == 411 and b"send Content-Length" in body
    assert request(port, "PUT", "/v1/kv/huge", b"", headers={"Content-Length": "18446744073709551615"})[0] == 413
    assert request(port, "GET", "/v1/kv/cut")[0] == 404
    assert request(port, "PUT", "/v1/kv/after", b"ok")[0] == 200
    assert cairn_server.proc.poll() is None


def test_idempotency_key_applies_once_through_any_node(cluster_factory):
    """A POST with an Idempotency-Key retried through every node of a 3-node cluster (as a client
    would after losing the reply) gets the first response each time and increments once; the same
    key reaches the token table through RESP too, since both run `IDEMPOTENT token ...`."""
    c = cluster_factory.start(3, partitions=4)
    headers = {"Idempotency-Key": "order-17"}
    first = request(c.nodes[0].http_port, "POST", "/v1/kv/stock?incrby=5", headers=headers)
    assert first[::2] == (200, b'{"value":5}\n')
    for node in c.nodes:
        assert request(node.http_port, "POST", "/v1/kv/stock?incrby=5", headers=headers)[::2] == first[::2]
    with c.nodes[2].client() as r:
        assert r.execute_command("IDEMPOTENT", "order-17", "INCRBY", "stock", "5") == 5
        assert r.get("stock") == "5"
    assert request(c.nodes[1].http_port, "POST", "/v1/kv/stock?incrby=5")[::2] == (200, b'{"value":10}\n')
