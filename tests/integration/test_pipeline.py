"""Pipelining: many commands in one write, replies complete and in order."""

from __future__ import annotations

import socket

from conftest import HOST, encode_command


def test_raw_pipeline_1000_commands_in_one_write(server, raw):
    n = 1000
    commands, expected = [], []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            commands.append(encode_command("SET", f"p:{i}", f"v{i}"))
            expected.append(b"+OK\r\n")
        elif kind == 1:
            commands.append(encode_command("GET", f"p:{i - 1}"))
            v = f"v{i - 1}".encode()
            expected.append(b"$%d\r\n%s\r\n" % (len(v), v))
        elif kind == 2:
            commands.append(encode_command("INCR", "counter"))
            expected.append(b":%d\r\n" % (i // 4 + 1))
        else:
            commands.append(encode_command("GET", f"missing:{i}"))
            expected.append(b"$-1\r\n")
    raw.send_raw(b"".join(commands))
    replies = [raw.read_raw_reply() for _ in range(n)]
    for i, (got, want) in enumerate(zip(replies, expected)):
        assert got == want, f"reply {i}: got {got!r}, want {want!r}"
    assert raw.call("DBSIZE") == n // 4 + 1


def test_pipeline_with_errors_in_the_middle(raw):
    payload = (encode_command("SET", "a", "1") + encode_command("INCRBY", "a", "x") + encode_command("NOSUCH")
               + encode_command("GET") + encode_command("INCR", "a"))
    raw.send_raw(payload)
    assert raw.read_raw_reply() == b"+OK\r\n"
    assert raw.read_raw_reply() == b"-ERR value is not an integer or out of range\r\n"
    assert raw.read_raw_reply() == b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
    assert raw.read_raw_reply() == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert raw.read_raw_reply() == b":2\r\n"


def test_pipeline_split_at_every_byte(server, r2):
    """A command stream delivered one byte per send still parses (partial input waits)."""
    payload = encode_command("SET", "split", "value") + encode_command("GET", "split")
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in payload:
            s.sendall(bytes([b]))
        want = b"+OK\r\n$5\r\nvalue\r\n"
        got = b""
        while len(got) < len(want):
            chunk = s.recv(4096)
            assert chunk, "server closed the connection"
            got += chunk
        assert got == want


def test_redis_py_pipeline(r):
    n = 1000
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"py:{i}", str(i))
    for i in range(n):
        pipe.get(f"py:{i}")
    pipe.incrby("total", 5)
    pipe.get("nope")
    results = pipe.execute()
    assert results[:n] == [True] * n
    assert results[n:2 * n] == [str(i) for i in range(n)]
    assert results[2 * n:] == [5, None]
    assert r.dbsize() == n + 1


def test_redis_py_pipeline_error_does_not_break_order(r):
    pipe = r.pipeline(transaction=False)
    pipe.set("k", "v")
    pipe.incr("k")
    pipe.get("k")
    results = pipe.execute(raise_on_error=False)
    assert results[0] is True
    assert isinstance(results[1], Exception)
    assert results[2] == "v"
