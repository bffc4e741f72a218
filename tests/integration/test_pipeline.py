"""Pipelining: many commands in one write, replies complete and in order."""

from __future__ import annotations

import socket

from conftest import HOST, encode_command


def pipelined(port: int, commands: list[bytes]) -> list[bytes]:
    """Sends `commands` in one write on a fresh connection and returns their raw replies, in order."""
    from conftest import RawConn

    raw = RawConn(port, timeout=60)
    try:
        raw.send_raw(b"".join(commands))
        return [raw.read_raw_reply() for _ in commands]
    finally:
        raw.close()


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


def test_backpressure_and_admission_control(cluster_factory):
    """`--max-pipeline 8`: a client pipelining 3000 commands in one write is simply read more slowly
    (every reply correct, in order; the pauses are counted). `--max-inflight 4` on another node: a
    pipeline of writes beyond it gets clear, retryable refusals at once, every command a reply, in
    order, and the node keeps serving."""
    from conftest import metric_total

    c = cluster_factory.start(3, partitions=4, node_args=("--max-pipeline", "8"))
    n = 3000
    commands = [encode_command("SET", f"bp:{i}", f"v{i}") if i % 2 == 0 else encode_command("GET", f"bp:{i - 1}")
                for i in range(n)]
    replies = pipelined(c.nodes[1].port, commands)
    for i, got in enumerate(replies):
        want = b"+OK\r\n" if i % 2 == 0 else b"$%d\r\n%s\r\n" % (len(f"v{i - 1}"), f"v{i - 1}".encode())
        assert got == want, f"reply {i}: {got!r}"
    assert metric_total(c.nodes[1].metrics(), "cairn_client_pipeline_pauses_total") > 0

    limited = cluster_factory.start(3, partitions=4, node_args=("--max-inflight", "4"))
    node = limited.nodes[0]
    replies = pipelined(node.port, [encode_command("SET", f"adm:{i}", "x") for i in range(200)]
                        + [encode_command("PING")])
    refused = [r for r in replies if r.startswith(b"-TRYAGAIN node overloaded")]
    assert refused, replies[:10]
    assert all(r == b"+OK\r\n" or r.startswith(b"-TRYAGAIN node overloaded: more than 4 commands") for r in replies[:200])
    assert replies[200] == b"+PONG\r\n"
    assert metric_total(node.metrics(), "cairn_commands_refused_total") == len(refused)
    with node.client() as r:
        assert r.set("after", "1") is True


def test_client_rate_limit(server_factory):
    """`--client-rate-limit 5`: a pipeline of 300 writes from one address gets about a second's burst
    (5, plus what refills while they are read) accepted and the rest refused at once with a retryable
    error naming the address and the limit; PING is never counted; the refusals are counted by reason
    in /metrics; a new connection from the same address finds the same empty bucket (reconnecting
    does not reset it); once the bucket refills the client may write again."""
    from conftest import http_get, wait_until

    node = server_factory.start("cairn", fsync="none", extra_args=("--client-rate-limit", "5"))
    replies = pipelined(node.port, [encode_command("SET", f"rl:{i}", "x") for i in range(300)]
                        + [encode_command("PING")])
    refusal = b"-TRYAGAIN rate limited: clients from 127.0.0.1 may send 5 commands per second to this node"
    accepted = [r for r in replies[:300] if r == b"+OK\r\n"]
    refused = [r for r in replies[:300] if r.startswith(refusal)]
    assert len(accepted) + len(refused) == 300, replies[:5]
    assert 5 <= len(accepted) < 300, len(accepted)
    assert replies[300] == b"+PONG\r\n"
    later = pipelined(node.port, [encode_command("SET", f"rl2:{i}", "x") for i in range(20)])
    assert sum(r.startswith(refusal) for r in later) >= 10, later
    status, body = http_get(node.http_port, "/metrics")
    assert status == 200
    text = body.decode()
    total = len(refused) + sum(r.startswith(refusal) for r in later)
    assert f'cairn_commands_refused_total{{reason="rate-limited"}} {total}' in text
    with node.client() as r:
        wait_until(lambda: _set_succeeds(r), timeout=10, message="a write accepted once the bucket refilled")


def _set_succeeds(r) -> bool:
    import redis

    try:
        return r.set("rl:after", "1") is True
    except redis.ResponseError:
        return False
