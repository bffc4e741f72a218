"""RESP3: HELLO 3 and the RESP3 reply types, checked byte for byte on a raw socket."""

from __future__ import annotations

import pytest

from conftest import RespError, RespMap, Verbatim


@pytest.fixture
def conn3(server, r2):
    """A raw connection switched to RESP3 (database flushed by r2)."""
    with server.raw() as conn:
        reply = conn.call("HELLO", "3")
        assert isinstance(reply, RespMap), f"HELLO 3 did not return a map: {reply!r}"
        yield conn


def test_hello3_map(server):
    with server.raw() as conn:
        raw = conn.call_raw("HELLO", "3")
        assert raw.startswith(b"%7\r\n")
        conn.buf += raw  # parse the same bytes again
        hello = conn.read_reply()
        assert isinstance(hello, RespMap)
        assert list(hello) == [b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"]
        assert hello[b"proto"] == 3
        assert isinstance(hello[b"id"], int) and hello[b"id"] == conn.call("CLIENT", "ID")
        assert isinstance(hello[b"server"], bytes) and hello[b"server"]
        assert isinstance(hello[b"version"], bytes) and hello[b"version"]
        assert isinstance(hello[b"mode"], bytes) and isinstance(hello[b"role"], bytes)
        assert hello[b"modules"] == []
        assert b":3\r\n" in raw


def test_null_is_underscore(conn3):
    assert conn3.call_raw("GET", "missing") == b"_\r\n"
    conn3.call("SET", "k", "v")
    assert conn3.call_raw("MGET", "k", "missing") == b"*2\r\n$1\r\nv\r\n_\r\n"
    assert conn3.call_raw("SET", "k", "w", "NX") == b"_\r\n"
    assert conn3.call_raw("GETDEL", "missing") == b"_\r\n"
    assert conn3.call_raw("CLIENT", "GETNAME") == b"_\r\n"
    assert conn3.call_raw("RANDOMKEY") in (b"$1\r\nk\r\n",)


def test_config_get_is_map(server, conn3):
    port = str(server.port).encode()
    assert conn3.call_raw("CONFIG", "GET", "port") == b"%1\r\n$4\r\nport\r\n$" + str(len(port)).encode() + \
        b"\r\n" + port + b"\r\n"
    assert conn3.call_raw("CONFIG", "GET", "no-such-parameter") == b"%0\r\n"


def test_info_and_client_info_are_verbatim(conn3):
    info = conn3.call("INFO", "server")
    assert isinstance(info, Verbatim) and info.format == "txt"
    assert info.startswith(b"# Server\r\n")
    client = conn3.call("CLIENT", "INFO")
    assert isinstance(client, Verbatim) and client.format == "txt"
    assert b" resp=3" in client
    assert conn3.call_raw("CLIENT", "LIST").startswith(b"=")


def test_scalars_keep_their_resp2_shape(conn3):
    assert conn3.call_raw("PING") == b"+PONG\r\n"
    assert conn3.call_raw("SET", "n", "1") == b"+OK\r\n"
    assert conn3.call_raw("INCR", "n") == b":2\r\n"
    assert conn3.call_raw("GET", "n") == b"$1\r\n2\r\n"
    assert conn3.call_raw("INCRBYFLOAT", "f", "1.5") == b"$3\r\n1.5\r\n"
    assert conn3.call_raw("TYPE", "n") == b"+string\r\n"
    assert conn3.call_raw("EXISTS", "n") == b":1\r\n"
    assert conn3.call_raw("TTL", "n") == b":-1\r\n"
    assert conn3.call_raw("SCAN", "0", "COUNT", "100")[:4] == b"*2\r\n"
    assert conn3.call_raw("TIME")[:4] == b"*2\r\n"
    assert conn3.call_raw("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"


def test_command_docs_and_info_in_resp3(conn3):
    docs = conn3.call("COMMAND", "DOCS", "get")
    assert isinstance(docs, RespMap) and b"get" in docs
    assert isinstance(docs[b"get"], RespMap) and b"summary" in docs[b"get"]
    assert conn3.call_raw("COMMAND", "INFO", "nosuchcmd") == b"*1\r\n_\r\n"


def test_hello2_switches_back(conn3):
    reply = conn3.call("HELLO", "2")
    assert isinstance(reply, list) and not isinstance(reply, RespMap)
    assert conn3.call_raw("GET", "missing") == b"$-1\r\n"
    assert conn3.call_raw("CONFIG", "GET", "no-such-parameter") == b"*0\r\n"


def test_failed_hello_keeps_protocol(conn3):
    assert conn3.call("HELLO", "4") == RespError("NOPROTO unsupported protocol version")
    assert conn3.call_raw("GET", "missing") == b"_\r\n"


def test_redis_py_resp3_client(server):
    c = server.client(protocol=3)
    c.flushall()
    assert c.get("missing") is None
    assert c.set("k", "v") is True
    assert c.get("k") == "v"
    assert c.config_get("port") == {"port": str(server.port)}
    assert c.client_info()["resp"] == "3"
