"""Bad input: protocol errors, inline commands, error texts, and fuzzing of every port.

The server must answer malformed RESP with an `-ERR Protocol error...` reply and close the
connection, and survive anything sent to the RESP, peer and HTTP ports.
Fuzz seed: env CAIRN_FUZZ_SEED (default: random, printed; rerun with -s to see it).
"""

from __future__ import annotations

import os
import random
import socket

import pytest

from conftest import HOST, RespError, encode_command, wait_until

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def exchange(port: int, payload: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send payload; read until the server closes (True) or goes quiet for 1 s (False)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        s.settimeout(1.0)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return data, False
            except ConnectionResetError:
                return data, True
            if not chunk:
                return data, True
            data += chunk


def read_until_closed(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send payload; return everything received; fail unless the server closes within timeout."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return data
            except socket.timeout:
                raise AssertionError(f"server did not close the connection within {timeout}s; got {data!r}")
            if not chunk:
                return data
            data += chunk


def assert_alive(server):
    assert server.proc.poll() is None, f"server process died (exit code {server.proc.returncode})"
    with server.raw() as conn:
        assert conn.call("PING") == "PONG"


# --------------------------------------------------------------------------- protocol errors

PROTOCOL_ERRORS = [
    (b"*2\r\n$3\r\nGET\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*-5x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*\xff\xfe\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*3000000000\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n$99999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
    (b"*1\r\n$4\r\nPING\r\n*1\r\n:5\r\n", b"+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n"),
    (b'ECHO "unbalanced\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
]


@pytest.mark.parametrize("payload,expected", PROTOCOL_ERRORS, ids=[repr(p)[:40] for p, _ in PROTOCOL_ERRORS])
def test_protocol_error_replies_then_closes(server, payload, expected):
    # `expected` is redis-server 7.0's exact reply. The contract is that reply's text as a prefix
    # (a server may add detail after it, e.g. the allowed range), one line, then a close.
    data = read_until_closed(server.port, payload)
    head = expected[:-2]
    assert data.startswith(head), f"got {data!r}, want a reply starting with {head!r}"
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == expected.count(b"\r\n"), data
    assert data.rsplit(b"\r\n", 2)[-2].startswith(b"-ERR Protocol error"), data
    assert_alive(server)


@pytest.mark.parametrize("payload", [b"A" * 70_000, b"*1\r\n$" + b"9" * 70_000],
                         ids=["inline-too-big", "bulk-count-too-long"])
def test_oversized_headers_are_protocol_errors(server, payload):
    data = read_until_closed(server.port, payload, timeout=10)
    assert data.startswith(b"-ERR Protocol error"), data[:200]
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == 1
    assert_alive(server)


def test_top_level_dollar_line_is_an_inline_command(server):
    # Only '*' starts a multibulk request; anything else is an inline command.
    data, closed = exchange(server.port, b"$99999999999\r\n")
    assert data == b"-ERR unknown command '$99999999999', with args beginning with: \r\n"
    assert not closed


def test_incomplete_command_waits_for_more(server):
    with server.raw() as conn:
        conn.send_raw(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel")
        conn.sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            conn.sock.recv(100)
        conn.sock.settimeout(5)
        conn.send_raw(b"lo\r\n")
        assert conn.read_raw_reply() == b"$5\r\nhello\r\n"


def test_empty_multibulk_is_ignored(server):
    with server.raw() as conn:
        conn.send_raw(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n")
        assert conn.read_raw_reply() == b"+PONG\r\n"


# --------------------------------------------------------------------------- inline commands


def test_inline_ping(server):
    with server.raw() as conn:
        conn.send_raw(b"PING\r\n")
        assert conn.read_raw_reply() == b"+PONG\r\n"
        conn.send_raw(b"PING\n")
        assert conn.read_raw_reply() == b"+PONG\r\n"
        conn.send_raw(b"\r\n\r\nping hello\r\n")
        assert conn.read_raw_reply() == b"$5\r\nhello\r\n"


def test_inline_set_get(server, r2):
    with server.raw() as conn:
        conn.send_raw(b"SET a b\r\nGET a\r\n")
        assert conn.read_raw_reply() == b"+OK\r\n"
        assert conn.read_raw_reply() == b"$1\r\nb\r\n"
        conn.send_raw(b"set \"x y\" 'z w'\r\nget \"x y\"\r\n")
        assert conn.read_raw_reply() == b"+OK\r\n"
        assert conn.read_raw_reply() == b"$3\r\nz w\r\n"
        conn.send_raw(b'set q "a\\x41\\n"\r\n')
        assert conn.read_raw_reply() == b"+OK\r\n"
    assert r2.get("a") == "b"
    assert r2.get("x y") == "z w"
    assert r2.get("q") == "aA\n"


def test_inline_and_multibulk_mixed(server):
    with server.raw() as conn:
        conn.send_raw(b"SET m 1\r\n" + encode_command("INCR", "m") + b"GET m\r\n")
        assert conn.read_raw_reply() == b"+OK\r\n"
        assert conn.read_raw_reply() == b":2\r\n"
        assert conn.read_raw_reply() == b"$1\r\n2\r\n"


# --------------------------------------------------------------------------- error texts

ARITY_CASES = [
    ("get",), ("get", "a", "b"), ("set", "k"), ("getset", "k"), ("getdel",), ("getex",), ("mget",),
    ("mset", "a"), ("mset", "a", "1", "b"), ("msetnx", "a"), ("del",), ("unlink",), ("exists",), ("touch",),
    ("type",), ("rename", "a"), ("renamenx", "a"), ("copy", "a"), ("incr",), ("incrby", "a"), ("decr",),
    ("decrby", "a"), ("incrbyfloat", "a"), ("append", "a"), ("strlen",), ("getrange", "a", "0"),
    ("setrange", "a", "0"), ("expire", "a"), ("pexpire", "a"), ("expireat", "a"), ("pexpireat", "a"),
    ("expiretime",), ("pexpiretime",), ("ttl",), ("pttl",), ("persist",), ("scan",), ("keys",),
    ("randomkey", "x"), ("dbsize", "x"), ("time", "x"), ("echo",), ("ping", "a", "b"), ("setnx", "a"),
    ("setex", "a", "1"), ("psetex", "a", "1"), ("select",), ("client",),
]


@pytest.mark.parametrize("args", ARITY_CASES, ids=[" ".join(a) for a in ARITY_CASES])
def test_wrong_arity(raw, args):
    reply = raw.call(*[a.upper() if i == 0 else a for i, a in enumerate(args)])
    assert reply == RespError(f"ERR wrong number of arguments for '{args[0]}' command")
    assert isinstance(reply, RespError)


@pytest.mark.parametrize("args,expected", [
    (("config", "get"), "config|get"), (("client", "setname"), "client|setname"),
    (("command", "count", "x"), "command|count"),
])
def test_wrong_arity_of_subcommands(raw, args, expected):
    assert raw.call(*args) == RespError(f"ERR wrong number of arguments for '{expected}' command")


def test_unknown_command(raw):
    assert raw.call("foo", "a") == RespError("ERR unknown command 'foo', with args beginning with: 'a' ")
    assert raw.call("FOO") == RespError("ERR unknown command 'FOO', with args beginning with: ")
    assert raw.call("foo", "a", "b") == RespError("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")


def test_unknown_command_args_are_cut_at_128_chars(raw):
    long_arg = "a" * 200
    expected = f"ERR unknown command 'foo', with args beginning with: '{'a' * 128}' "
    assert raw.call("foo", long_arg, "next") == RespError(expected)
    many = [c * (1 if i < 26 else 2) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz" * 2)]
    reply = raw.call("foo", *many)
    quoted = "".join(f"'{a}' " for a in many[:31])  # stops once 128 characters are reached
    assert reply == RespError(f"ERR unknown command 'foo', with args beginning with: {quoted}")


def test_connection_survives_errors(raw):
    assert isinstance(raw.call("nosuch"), RespError)
    assert isinstance(raw.call("GET"), RespError)
    assert raw.call("PING") == "PONG"


@pytest.fixture
def list_key(raw):
    """A key holding a list, where the target has lists; skip otherwise."""
    reply = raw.call("LPUSH", "lst", "a")
    if isinstance(reply, RespError) and "unknown command" in reply:
        pytest.skip("target has no non-string type (LPUSH unknown), so WRONGTYPE cannot be provoked")
    assert reply == 1
    return "lst"


@pytest.mark.parametrize("args", [
    ("GET", "{k}"), ("INCR", "{k}"), ("INCRBY", "{k}", "1"), ("DECR", "{k}"), ("INCRBYFLOAT", "{k}", "1"),
    ("APPEND", "{k}", "x"), ("STRLEN", "{k}"), ("GETRANGE", "{k}", "0", "1"), ("SETRANGE", "{k}", "0", "x"),
    ("GETSET", "{k}", "x"), ("GETDEL", "{k}"), ("GETEX", "{k}"), ("SET", "{k}", "x", "GET"),
])
def test_wrong_type(raw, list_key, args):
    args = [a.replace("{k}", list_key) for a in args]
    assert raw.call(*args) == RespError(WRONGTYPE)
    assert raw.call("TYPE", list_key) == "list"


def test_wrong_type_is_not_an_error_for_mget_and_set(raw, list_key):
    assert raw.call("MGET", list_key, "missing") == [None, None]
    assert raw.call("SET", list_key, "now-a-string") == "OK"
    assert raw.call("TYPE", list_key) == "string"


# --------------------------------------------------------------------------- fuzzing


def _seed() -> int:
    env = os.environ.get("CAIRN_FUZZ_SEED")
    seed = int(env) if env else random.SystemRandom().randrange(1 << 32)
    print(f"fuzz seed: {seed} (rerun with CAIRN_FUZZ_SEED={seed})")
    return seed


PREFIXES = [b"", b"*", b"$", b"*1\r\n", b"*2\r\n$3\r\nGET\r\n", b"*3\r\n$3\r\nSET\r\n", b"+", b"-", b":",
            b"GET ", b"PING ", b"%", b"~", b"GET / HTTP/1.1\r\n", b"POST /metrics HTTP/1.0\r\nContent-Length: 9999\r\n\r\n",
            b"\x00\x00\x00\x10", b"\xff\xff\xff\xff", b"CAIRN", b"\r\n"]


def _garbage(rng: random.Random) -> bytes:
    size = rng.choice([1, 2, 7, 64, 512, 4096, 65536])
    body = bytes(rng.getrandbits(8) for _ in range(min(size, 2048)))
    if size > len(body):
        body = body * (size // len(body) + 1)
    return rng.choice(PREFIXES) + body[:size]


def _blast(port: int, rng: random.Random, connections: int, batch: int = 40):
    """Open many connections, send garbage on each, close them; ignore every socket error."""
    done = 0
    while done < connections:
        socks = []
        for _ in range(min(batch, connections - done)):
            try:
                s = socket.create_connection((HOST, port), timeout=5)
                s.settimeout(5)
                socks.append(s)
            except OSError as exc:
                raise AssertionError(f"could not connect to port {port}: {exc!r}")
        for s in socks:
            try:
                s.sendall(_garbage(rng))
            except OSError:
                pass
        for s in socks:
            try:
                if rng.random() < 0.5:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            except OSError:
                pass
        done += len(socks)


def _ports(server, which: str) -> int:
    return {"resp": server.port, "peer": server.peer_port, "http": server.http_port}[which]


@pytest.mark.parametrize("which", ["resp", "peer", "http"])
def test_random_bytes_on_every_port(server, target, which):
    if which != "resp" and target != "cairn":
        pytest.skip("cairn only: redis-server has no peer or HTTP port")
    rng = random.Random(_seed())
    _blast(_ports(server, which), rng, connections=200)
    assert_alive(server)


@pytest.mark.parametrize("which", ["resp", "peer", "http"])
def test_truncated_commands_on_every_port(server, target, r2, which):
    if which != "resp" and target != "cairn":
        pytest.skip("cairn only: redis-server has no peer or HTTP port")
    rng = random.Random(_seed())
    port = _ports(server, which)
    baseline = int(r2.info("clients")["connected_clients"])
    for i in range(150):
        cmd = encode_command("SET", f"trunc:{i}", "v" * rng.randrange(1, 3000))
        cut = rng.randrange(1, len(cmd))  # strictly inside: the command is never complete
        with socket.create_connection((HOST, port), timeout=5) as s:
            try:
                s.sendall(cmd[:cut])
            except OSError:
                pass
    assert_alive(server)
    if which == "resp":
        # A command that never fully arrived must never run. Wait for the server to see every close first.
        wait_until(lambda: int(r2.info("clients")["connected_clients"]) <= baseline, timeout=10,
                   message="truncated connections still open")
        assert r2.keys("trunc:*") == []


def test_fuzz_then_normal_traffic(server, r2):
    rng = random.Random(_seed())
    _blast(server.port, rng, connections=100)
    r2.set("after", "fuzz")
    assert r2.get("after") == "fuzz"
    assert_alive(server)
