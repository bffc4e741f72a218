"""Semantic tests of every string-era command, run against Cairn and a real redis-server.

The same tests run on both targets (see conftest.py): a test that passes on redis-server
encodes real Redis behaviour. `r` is a redis-py client (RESP2 and RESP3), `raw` a plain
RESP2 socket used where the exact reply shape or error text matters.
"""

from __future__ import annotations

import time

import pytest

from conftest import RespError, wait_until

ARITY = "ERR wrong number of arguments for '{}' command"
NOT_INT = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"
BAD_EXPIRE = "ERR invalid expire time in '{}' command"


def err(conn, *args) -> str:
    """Send a command on a raw connection; assert the reply is an error; return its text."""
    reply = conn.call(*args)
    assert isinstance(reply, RespError), f"{args!r}: expected an error reply, got {reply!r}"
    return str(reply)


def info_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.split("\r\n"):
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            fields[k] = v
    return fields


# =========================================================================== connection


class TestConnection:
    def test_ping(self, r, raw):
        assert r.ping() is True
        assert raw.call_raw("PING") == b"+PONG\r\n"
        assert raw.call_raw("PING", "hello") == b"$5\r\nhello\r\n"
        assert err(raw, "PING", "a", "b") == ARITY.format("ping")

    def test_echo(self, r, raw):
        assert r.echo("hello world") == "hello world"
        assert raw.call("ECHO", b"bin\x00\r\nary") == b"bin\x00\r\nary"
        assert raw.call("ECHO", "") == b""
        assert err(raw, "ECHO") == ARITY.format("echo")
        assert err(raw, "ECHO", "a", "b") == ARITY.format("echo")

    def test_hello_2_shape(self, server, raw):
        reply = raw.call("HELLO", "2")
        assert isinstance(reply, list) and len(reply) == 14
        fields = dict(zip(reply[0::2], reply[1::2]))
        assert list(fields) == [b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"]
        assert fields[b"proto"] == 2
        assert isinstance(fields[b"id"], int)
        assert fields[b"id"] == raw.call("CLIENT", "ID")
        assert isinstance(fields[b"server"], bytes) and fields[b"server"]
        assert isinstance(fields[b"version"], bytes) and fields[b"version"]
        assert fields[b"modules"] == []

    def test_hello_without_version_keeps_protocol(self, raw):
        reply = raw.call("HELLO")
        assert isinstance(reply, list)
        assert dict(zip(reply[0::2], reply[1::2]))[b"proto"] == 2

    def test_hello_errors(self, raw):
        assert err(raw, "HELLO", "4") == "NOPROTO unsupported protocol version"
        assert err(raw, "HELLO", "1") == "NOPROTO unsupported protocol version"
        assert err(raw, "HELLO", "abc") == "ERR Protocol version is not an integer or out of range"
        assert raw.call("PING") == "PONG"

    def test_hello_setname(self, raw):
        raw.call("HELLO", "2", "SETNAME", "conn-name")
        assert raw.call("CLIENT", "GETNAME") == b"conn-name"

    def test_quit_replies_ok_then_closes(self, server):
        with server.raw() as conn:
            assert conn.call_raw("QUIT") == b"+OK\r\n"
            assert conn.read_until_close() == b""

    def test_select(self, raw):
        assert raw.call("SELECT", "0") == "OK"
        assert err(raw, "SELECT", "abc") == NOT_INT
        assert err(raw, "SELECT", "-1") == "ERR DB index is out of range"
        assert err(raw, "SELECT", "100000") == "ERR DB index is out of range"
        assert err(raw, "SELECT") == ARITY.format("select")

    @pytest.mark.cairn_only("Cairn has db 0 only; Redis has 16 databases")
    def test_select_nonzero_db_is_out_of_range(self, raw):
        assert err(raw, "SELECT", "1") == "ERR DB index is out of range"
        assert raw.call("SELECT", "0") == "OK"


# =========================================================================== server commands


class TestCommandCommand:
    LISTED = ["PING", "ECHO", "HELLO", "QUIT", "SELECT", "COMMAND", "CLIENT", "CONFIG", "INFO", "TIME",
              "DBSIZE", "FLUSHDB", "FLUSHALL", "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "GETDEL",
              "GETEX", "MGET", "MSET", "MSETNX", "DEL", "UNLINK", "EXISTS", "TOUCH", "TYPE", "RENAME",
              "RENAMENX", "COPY", "INCR", "INCRBY", "DECR", "DECRBY", "INCRBYFLOAT", "APPEND", "STRLEN",
              "GETRANGE", "SETRANGE", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "EXPIRETIME",
              "PEXPIRETIME", "TTL", "PTTL", "PERSIST", "SCAN", "KEYS", "RANDOMKEY"]

    def test_count_matches_command_list(self, raw):
        count = raw.call("COMMAND", "COUNT")
        assert isinstance(count, int) and count >= len(self.LISTED)
        everything = raw.call("COMMAND")
        assert isinstance(everything, list) and len(everything) == count
        names = {entry[0] for entry in everything}
        for name in self.LISTED:
            assert name.lower().encode() in names, f"COMMAND does not list {name}"

    def test_count_arity(self, raw):
        assert err(raw, "COMMAND", "COUNT", "x") == ARITY.format("command|count")

    def test_unknown_subcommand(self, raw):
        assert err(raw, "COMMAND", "bogus") == "ERR unknown subcommand 'bogus'. Try COMMAND HELP."

    @pytest.mark.parametrize("name", LISTED)
    def test_info_lists_every_command(self, raw, name):
        reply = raw.call("COMMAND", "INFO", name)
        assert isinstance(reply, list) and len(reply) == 1
        entry = reply[0]
        assert entry is not None, f"COMMAND INFO {name} returned nil"
        assert entry[0] == name.lower().encode()
        assert isinstance(entry[1], int)

    @pytest.mark.parametrize("name,arity,flag,first,last,step", [
        ("get", 2, "readonly", 1, 1, 1),
        ("set", -3, "write", 1, 1, 1),
        ("mget", -2, "readonly", 1, -1, 1),
        ("mset", -3, "write", 1, -1, 2),
        ("del", -2, "write", 1, -1, 1),
        ("ping", -1, "fast", 0, 0, 0),
    ])
    def test_info_shape(self, raw, name, arity, flag, first, last, step):
        entry = raw.call("COMMAND", "INFO", name.upper())[0]
        assert len(entry) == 10
        assert entry[0] == name.encode()
        assert entry[1] == arity
        assert flag in entry[2]
        assert entry[3:6] == [first, last, step]
        assert isinstance(entry[6], list)  # ACL categories

    def test_info_unknown_command_is_nil(self, raw):
        reply = raw.call("COMMAND", "INFO", "get", "nosuchcmd")
        assert len(reply) == 2
        assert reply[0][0] == b"get"
        assert reply[1] is None

    def test_docs(self, raw):
        reply = raw.call("COMMAND", "DOCS", "get")
        assert isinstance(reply, list) and len(reply) == 2
        assert reply[0] == b"get"
        doc = dict(zip(reply[1][0::2], reply[1][1::2]))
        assert b"summary" in doc and isinstance(doc[b"summary"], bytes)
        assert raw.call("COMMAND", "DOCS", "nosuchcmd") == []


class TestClient:
    def test_id(self, server, raw):
        my_id = raw.call("CLIENT", "ID")
        assert isinstance(my_id, int) and my_id > 0
        with server.raw() as other:
            assert other.call("CLIENT", "ID") != my_id

    def test_setname_getname(self, r, raw):
        assert raw.call("CLIENT", "GETNAME") is None
        assert raw.call("CLIENT", "SETNAME", "worker-1") == "OK"
        assert raw.call("CLIENT", "GETNAME") == b"worker-1"
        assert err(raw, "CLIENT", "SETNAME", "a b") == \
            "ERR Client names cannot contain spaces, newlines or special characters."
        assert raw.call("CLIENT", "SETNAME", "") == "OK"
        assert raw.call("CLIENT", "GETNAME") is None
        assert err(raw, "CLIENT", "SETNAME") == ARITY.format("client|setname")
        assert r.client_setname("py") is True
        assert r.client_getname() == "py"

    def test_list(self, server, raw):
        raw.call("CLIENT", "SETNAME", "lister")
        my_id = raw.call("CLIENT", "ID")
        with server.raw() as other:
            other_id = other.call("CLIENT", "ID")
            text = raw.call("CLIENT", "LIST")
        assert isinstance(text, bytes)
        assert text.endswith(b"\n") and not text.endswith(b"\r\n")
        lines = text.decode().rstrip("\n").split("\n")
        entries = [dict(f.split("=", 1) for f in line.split(" ")) for line in lines]
        by_id = {int(e["id"]): e for e in entries}
        assert my_id in by_id and other_id in by_id
        mine = by_id[my_id]
        assert mine["name"] == "lister"
        assert mine["addr"].startswith("127.0.0.1:")
        assert mine["laddr"] == f"127.0.0.1:{server.port}"
        assert mine["db"] == "0"
        assert mine["cmd"] == "client|list"
        assert mine["resp"] == "2"

    def test_info(self, server, raw):
        my_id = raw.call("CLIENT", "ID")
        text = raw.call("CLIENT", "INFO")
        assert isinstance(text, bytes) and text.endswith(b"\n") and text.count(b"\n") == 1
        fields = dict(f.split("=", 1) for f in text.decode().rstrip("\n").split(" "))
        assert int(fields["id"]) == my_id
        assert fields["addr"].startswith("127.0.0.1:")
        assert fields["laddr"] == f"127.0.0.1:{server.port}"
        assert fields["name"] == ""
        assert fields["db"] == "0"
        assert fields["cmd"] == "client|info"
        assert fields["resp"] == "2"

    def test_redis_py_parses_list_and_info(self, r):
        r.client_setname("pyclient")
        me = r.client_info()
        assert me["name"] == "pyclient"
        assert int(me["id"]) == r.client_id()
        assert any(c["name"] == "pyclient" for c in r.client_list())

    def test_unknown_subcommand_and_arity(self, raw):
        assert err(raw, "CLIENT", "bogus") == "ERR unknown subcommand 'bogus'. Try CLIENT HELP."
        assert err(raw, "CLIENT") == ARITY.format("client")

    @pytest.mark.cairn_only("CLIENT SETINFO arrived in Redis 7.2")
    def test_setinfo(self, raw):
        assert raw.call("CLIENT", "SETINFO", "lib-name", "redis-py") == "OK"
        assert raw.call("CLIENT", "SETINFO", "LIB-VER", "1.2.3") == "OK"
        assert isinstance(raw.call("CLIENT", "SETINFO", "bogus", "x"), RespError)
        assert isinstance(raw.call("CLIENT", "SETINFO", "lib-name", "a b"), RespError)
        assert raw.call("PING") == "PONG"


class TestConfigInfoTime:
    def test_config_get(self, server, raw, r):
        assert raw.call("CONFIG", "GET", "port") == [b"port", str(server.port).encode()]
        assert raw.call("CONFIG", "GET", "no-such-parameter") == []
        assert err(raw, "CONFIG", "GET") == ARITY.format("config|get")
        assert err(raw, "CONFIG", "bogus") == "ERR unknown subcommand 'bogus'. Try CONFIG HELP."
        assert r.config_get("port") == {"port": str(server.port)}

    def test_info_default_sections(self, server, raw):
        text = raw.call("INFO").decode()
        for header in ("# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Keyspace"):
            assert header + "\r\n" in text, f"INFO lacks section {header}"
        fields = info_fields(text)
        assert fields["redis_version"]
        assert fields["tcp_port"] == str(server.port)
        assert int(fields["uptime_in_seconds"]) >= 0
        assert int(fields["connected_clients"]) >= 1
        assert int(fields["used_memory"]) >= 0
        assert int(fields["total_commands_processed"]) >= 1
        assert int(fields["total_connections_received"]) >= 1

    def test_info_single_section(self, raw):
        text = raw.call("INFO", "server").decode()
        assert text.startswith("# Server\r\n")
        assert "# Clients" not in text and "# Keyspace" not in text
        text = raw.call("INFO", "CLIENTS").decode()
        assert text.startswith("# Clients\r\n") and "connected_clients:" in text
        assert raw.call("INFO", "no-such-section") == b""

    def test_info_keyspace(self, raw):
        assert raw.call("INFO", "keyspace") == b"# Keyspace\r\n"
        raw.call("MSET", "a", "1", "b", "2")
        raw.call("SET", "c", "3", "EX", "1000")
        text = raw.call("INFO", "keyspace").decode()
        assert text.startswith("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=")
        assert text.endswith("\r\n")

    def test_info_keyspace_hits_and_misses(self, raw):
        raw.call("SET", "k", "v")
        before = info_fields(raw.call("INFO", "stats").decode())
        raw.call("GET", "k")
        raw.call("GET", "k")
        raw.call("GET", "missing")
        after = info_fields(raw.call("INFO", "stats").decode())
        assert int(after["keyspace_hits"]) - int(before["keyspace_hits"]) == 2
        assert int(after["keyspace_misses"]) - int(before["keyspace_misses"]) == 1

    def test_redis_py_info(self, r):
        r.set("x", "1")
        assert r.info("keyspace")["db0"]["keys"] == 1
        assert "redis_version" in r.info("server")

    def test_time(self, raw, r):
        reply = raw.call("TIME")
        assert isinstance(reply, list) and len(reply) == 2
        assert all(isinstance(p, bytes) and p.isdigit() for p in reply)
        secs, usecs = int(reply[0]), int(reply[1])
        assert 0 <= usecs < 1_000_000
        assert abs(secs - time.time()) < 600, "server clock and test clock disagree by > 10 minutes"
        assert err(raw, "TIME", "x") == ARITY.format("time")
        s, us = r.time()
        assert isinstance(s, int) and isinstance(us, int)

    def test_dbsize_flushdb_flushall(self, r, raw):
        assert r.dbsize() == 0
        r.mset({"a": "1", "b": "2", "c": "3"})
        assert r.dbsize() == 3
        assert raw.call("FLUSHDB") == "OK"
        assert r.dbsize() == 0
        r.set("a", "1")
        assert raw.call("FLUSHALL") == "OK"
        assert r.dbsize() == 0
        r.set("a", "1")
        assert raw.call("FLUSHDB", "SYNC") == "OK"
        r.set("a", "1")
        assert raw.call("FLUSHALL", "ASYNC") == "OK"
        assert r.dbsize() == 0
        assert err(raw, "FLUSHDB", "bogus") == SYNTAX
        assert err(raw, "FLUSHALL", "bogus") == SYNTAX
        assert err(raw, "DBSIZE", "x") == ARITY.format("dbsize")


# =========================================================================== strings


class TestGetSet:
    def test_get_set_basic(self, r):
        assert r.get("k") is None
        assert r.set("k", "v") is True
        assert r.get("k") == "v"
        assert r.set("k", "w") is True
        assert r.get("k") == "w"

    def test_binary_safe_and_empty_values(self, raw):
        value = bytes(range(256)) + b"\r\n$3\r\n*1\r\n"
        assert raw.call("SET", b"bin\x00key\r\n", value) == "OK"
        assert raw.call("GET", b"bin\x00key\r\n") == value
        assert raw.call("SET", "empty", "") == "OK"
        assert raw.call("GET", "empty") == b""
        assert raw.call("EXISTS", "empty") == 1
        assert raw.call("STRLEN", "empty") == 0

    def test_large_value(self, raw):
        value = b"x" * (1 << 20) + b"end"
        assert raw.call("SET", "big", value) == "OK"
        assert raw.call("GET", "big") == value
        assert raw.call("STRLEN", "big") == len(value)

    def test_raw_reply_shapes(self, raw):
        assert raw.call_raw("SET", "k", "hello") == b"+OK\r\n"
        assert raw.call_raw("GET", "k") == b"$5\r\nhello\r\n"
        assert raw.call_raw("GET", "missing") == b"$-1\r\n"
        assert raw.call_raw("SET", "k", "x", "NX") == b"$-1\r\n"

    def test_nx_xx(self, r):
        assert r.set("k", "1", xx=True) is None
        assert r.get("k") is None
        assert r.set("k", "1", nx=True) is True
        assert r.set("k", "2", nx=True) is None
        assert r.get("k") == "1"
        assert r.set("k", "3", xx=True) is True
        assert r.get("k") == "3"

    def test_get_option(self, r):
        assert r.set("k", "1", get=True) is None
        assert r.get("k") == "1"
        assert r.set("k", "2", get=True) == "1"
        assert r.get("k") == "2"
        # NX+GET (Redis >= 7.0): returns the old value and does not write.
        assert r.set("k", "3", nx=True, get=True) == "2"
        assert r.get("k") == "2"
        assert r.set("n", "v", nx=True, get=True) is None
        assert r.get("n") == "v"
        assert r.set("k", "4", xx=True, get=True) == "2"
        assert r.set("m", "v", xx=True, get=True) is None
        assert r.exists("m") == 0

    def test_expiry_options(self, r):
        r.set("ex", "v", ex=100)
        assert 0 < r.ttl("ex") <= 100
        r.set("px", "v", px=100_000)
        assert 0 < r.pttl("px") <= 100_000
        now = int(time.time())
        r.set("exat", "v", exat=now + 100)
        assert 0 < r.ttl("exat") <= 100
        r.set("pxat", "v", pxat=(now + 100) * 1000)
        assert 0 < r.pttl("pxat") <= 100_000
        assert r.expiretime("exat") == now + 100
        assert r.pexpiretime("pxat") == (now + 100) * 1000

    def test_expiry_in_the_past_deletes(self, r):
        r.set("k", "old")
        assert r.set("k", "v", exat=1) is True
        assert r.get("k") is None
        assert r.exists("k") == 0

    def test_keepttl(self, r):
        r.set("k", "v", ex=100)
        r.set("k", "v2", keepttl=True)
        assert r.get("k") == "v2"
        assert 0 < r.ttl("k") <= 100
        r.set("k", "v3")
        assert r.ttl("k") == -1

    def test_px_key_becomes_invisible(self, r):
        r.set("short", "v", px=100)
        r.set("long", "v")
        wait_until(lambda: r.get("short") is None, timeout=5, message="key with PX 100 still visible")
        assert r.exists("short") == 0
        assert r.ttl("short") == -2
        assert r.get("long") == "v"
        assert "short" not in r.keys("*")

    def test_set_errors(self, raw):
        assert err(raw, "SET", "k") == ARITY.format("set")
        assert err(raw, "SET", "k", "v", "EX", "10", "PX", "100") == SYNTAX
        assert err(raw, "SET", "k", "v", "NX", "XX") == SYNTAX
        assert err(raw, "SET", "k", "v", "KEEPTTL", "EX", "10") == SYNTAX
        assert err(raw, "SET", "k", "v", "EX") == SYNTAX
        assert err(raw, "SET", "k", "v", "bogus") == SYNTAX
        assert err(raw, "SET", "k", "v", "EX", "abc") == NOT_INT
        assert err(raw, "SET", "k", "v", "EX", "0") == BAD_EXPIRE.format("set")
        assert err(raw, "SET", "k", "v", "EX", "-1") == BAD_EXPIRE.format("set")
        assert err(raw, "SET", "k", "v", "PX", "0") == BAD_EXPIRE.format("set")
        assert err(raw, "SET", "k", "v", "PXAT", "0") == BAD_EXPIRE.format("set")
        assert err(raw, "SET", "k", "v", "EX", "9999999999999999") == BAD_EXPIRE.format("set")
        assert raw.call("EXISTS", "k") == 0

    def test_options_are_case_insensitive(self, raw):
        assert raw.call("set", "k", "v", "ex", "100", "nx") == "OK"
        assert 0 < raw.call("ttl", "k") <= 100
        assert raw.call("SeT", "k", "w", "Xx", "GeT") == b"v"

    def test_setnx(self, r, raw):
        assert r.setnx("k", "1") is True
        assert r.setnx("k", "2") is False
        assert r.get("k") == "1"
        assert raw.call_raw("SETNX", "k", "3") == b":0\r\n"
        assert err(raw, "SETNX", "k") == ARITY.format("setnx")

    def test_setex_psetex(self, r, raw):
        assert raw.call("SETEX", "k", "100", "v") == "OK"
        assert r.get("k") == "v" and 0 < r.ttl("k") <= 100
        assert r.psetex("p", 100_000, "v") is True
        assert 0 < r.pttl("p") <= 100_000
        assert err(raw, "SETEX", "k", "0", "v") == BAD_EXPIRE.format("setex")
        assert err(raw, "SETEX", "k", "-1", "v") == BAD_EXPIRE.format("setex")
        assert err(raw, "SETEX", "k", "abc", "v") == NOT_INT
        assert err(raw, "PSETEX", "k", "0", "v") == BAD_EXPIRE.format("psetex")
        assert err(raw, "SETEX", "k", "1") == ARITY.format("setex")

    def test_getset(self, r, raw):
        assert r.getset("k", "1") is None
        assert r.getset("k", "2") == "1"
        assert r.get("k") == "2"
        r.set("t", "v", ex=100)
        r.getset("t", "w")
        assert r.ttl("t") == -1
        assert err(raw, "GETSET", "k") == ARITY.format("getset")

    def test_getdel(self, r, raw):
        r.set("k", "v")
        assert r.getdel("k") == "v"
        assert r.getdel("k") is None
        assert r.exists("k") == 0
        assert err(raw, "GETDEL") == ARITY.format("getdel")

    def test_getex(self, r, raw):
        assert r.getex("missing", ex=10) is None
        assert r.exists("missing") == 0
        r.set("k", "v")
        assert r.getex("k") == "v"
        assert r.ttl("k") == -1
        assert r.getex("k", ex=100) == "v"
        assert 0 < r.ttl("k") <= 100
        assert r.getex("k", px=200_000) == "v"
        assert 100_000 < r.pttl("k") <= 200_000
        now = int(time.time())
        assert r.getex("k", exat=now + 300) == "v"
        assert r.expiretime("k") == now + 300
        assert r.getex("k", pxat=(now + 400) * 1000) == "v"
        assert r.pexpiretime("k") == (now + 400) * 1000
        assert r.getex("k", persist=True) == "v"
        assert r.ttl("k") == -1
        assert r.getex("k", exat=1) == "v"
        assert r.exists("k") == 0

    def test_getex_errors(self, raw):
        raw.call("SET", "k", "v")
        assert err(raw, "GETEX", "k", "EX", "10", "PX", "100") == SYNTAX
        assert err(raw, "GETEX", "k", "EX", "10", "PERSIST") == SYNTAX
        assert err(raw, "GETEX", "k", "bogus") == SYNTAX
        assert err(raw, "GETEX", "k", "EX") == SYNTAX
        assert err(raw, "GETEX", "k", "EX", "abc") == NOT_INT
        assert err(raw, "GETEX", "k", "PX", "0") == BAD_EXPIRE.format("getex")
        assert err(raw, "GETEX", "k", "EXAT", "0") == BAD_EXPIRE.format("getex")
        assert err(raw, "GETEX") == ARITY.format("getex")
        assert raw.call("GET", "k") == b"v"


class TestMulti:
    def test_mget(self, r, raw):
        r.set("a", "1")
        r.set("b", "2")
        assert r.mget("a", "missing", "b") == ["1", None, "2"]
        assert raw.call_raw("MGET", "a", "nope") == b"*2\r\n$1\r\n1\r\n$-1\r\n"
        assert err(raw, "MGET") == ARITY.format("mget")

    def test_mset(self, r, raw):
        assert r.mset({"a": "1", "b": "2"}) is True
        assert r.mget("a", "b") == ["1", "2"]
        assert raw.call("MSET", "k", "1", "k", "2") == "OK"
        assert r.get("k") == "2"
        r.set("t", "v", ex=100)
        r.mset({"t": "w"})
        assert r.ttl("t") == -1
        assert err(raw, "MSET", "a", "1", "b") == ARITY.format("mset")
        assert err(raw, "MSET") == ARITY.format("mset")

    def test_msetnx(self, r, raw):
        assert r.msetnx({"{t}a": "1", "{t}b": "2"}) is True
        assert r.msetnx({"{t}b": "{t}x", "{t}c": "3"}) is False
        assert r.get("{t}c") is None and r.get("{t}b") == "2"
        assert raw.call("MSETNX", "{t}x", "1", "{t}x", "2") == 1
        assert r.get("{t}x") == "2"
        assert err(raw, "MSETNX", "{t}a") == ARITY.format("msetnx")

    def test_del_unlink(self, r, raw):
        r.mset({"a": "1", "b": "2", "c": "3", "d": "4"})
        assert r.delete("a", "b", "zz") == 2
        assert r.unlink("c", "zz", "c") == 1
        assert r.exists("a", "b", "c") == 0
        assert r.get("d") == "4"
        assert err(raw, "DEL") == ARITY.format("del")
        assert err(raw, "UNLINK") == ARITY.format("unlink")

    def test_exists_counts_repeats(self, r, raw):
        r.set("a", "1")
        assert r.exists("a", "a", "b", "a") == 3
        assert r.exists("b") == 0
        assert err(raw, "EXISTS") == ARITY.format("exists")

    def test_touch(self, r, raw):
        r.mset({"a": "1", "b": "2"})
        assert r.touch("a", "b", "zz") == 2
        assert err(raw, "TOUCH") == ARITY.format("touch")

    def test_type(self, r, raw):
        r.set("s", "v")
        assert r.type("s") == "string"
        assert r.type("missing") == "none"
        assert raw.call_raw("TYPE", "s") == b"+string\r\n"
        assert raw.call_raw("TYPE", "missing") == b"+none\r\n"


class TestRenameCopy:
    def test_rename(self, r, raw):
        r.set("{t}a", "1")
        assert r.rename("{t}a", "{t}b") is True
        assert r.get("{t}a") is None and r.get("{t}b") == "1"
        r.set("{t}c", "3")
        r.rename("{t}b", "{t}c")
        assert r.get("{t}c") == "1"
        assert err(raw, "RENAME", "{t}nokey", "{t}x") == "ERR no such key"
        assert err(raw, "RENAME", "{t}a") == ARITY.format("rename")

    def test_rename_to_itself(self, r, raw):
        r.set("{t}x", "1")
        assert raw.call("RENAME", "{t}x", "{t}x") == "OK"
        assert r.get("{t}x") == "1"
        assert err(raw, "RENAME", "{t}nokey", "{t}nokey") == "ERR no such key"

    def test_rename_carries_ttl(self, r):
        r.set("{t}a", "1", ex=100)
        r.set("{t}b", "2")
        r.rename("{t}a", "{t}b")
        assert 0 < r.ttl("{t}b") <= 100
        r.set("{t}c", "3", ex=100)
        r.set("{t}d", "4")
        r.rename("{t}d", "{t}c")
        assert r.ttl("{t}c") == -1

    def test_renamenx(self, r, raw):
        r.mset({"{t}a": "1", "{t}b": "2"})
        assert r.renamenx("{t}a", "{t}b") is False
        assert r.get("{t}a") == "1"
        assert r.renamenx("{t}a", "{t}c") is True
        assert r.get("{t}c") == "1" and r.exists("{t}a") == 0
        assert raw.call("RENAMENX", "{t}c", "{t}c") == 0
        assert err(raw, "RENAMENX", "{t}nokey", "{t}x") == "ERR no such key"

    def test_copy(self, r, raw):
        r.set("{t}src", "v", ex=100)
        assert r.copy("{t}src", "{t}dst") is True
        assert r.get("{t}dst") == "v" and 0 < r.ttl("{t}dst") <= 100
        r.set("{t}src", "w")
        assert r.copy("{t}src", "{t}dst") is False
        assert r.get("{t}dst") == "v"
        assert r.copy("{t}src", "{t}dst", replace=True) is True
        assert r.get("{t}dst") == "w" and r.ttl("{t}dst") == -1
        assert r.copy("{t}nokey", "{t}x") is False
        assert r.exists("{t}x") == 0
        assert raw.call("COPY", "{t}src", "{t}dst", "DB", "0") == 0
        assert err(raw, "COPY", "{t}src", "{t}src") == "ERR source and destination objects are the same"
        assert err(raw, "COPY", "{t}src", "{t}dst", "bogus") == SYNTAX
        assert err(raw, "COPY", "{t}src") == ARITY.format("copy")


class TestCounters:
    def test_incr_decr(self, r, raw):
        assert r.incr("n") == 1
        assert r.incr("n") == 2
        assert r.incrby("n", 10) == 12
        assert r.decr("n") == 11
        assert r.decrby("n", 20) == -9
        assert r.get("n") == "-9"
        assert r.decr("fresh") == -1
        assert raw.call_raw("INCR", "n") == b":-8\r\n"

    def test_incr_keeps_ttl(self, r):
        r.set("n", "1", ex=100)
        r.incr("n")
        assert 0 < r.ttl("n") <= 100

    @pytest.mark.parametrize("value", ["abc", "01", "+1", " 1", "1 ", "-0", "1.5", "", "99999999999999999999"])
    def test_incr_rejects_non_canonical_integers(self, raw, value):
        raw.call("SET", "n", value)
        assert err(raw, "INCR", "n") == NOT_INT
        assert raw.call("GET", "n") == value.encode()

    def test_increment_argument_errors(self, raw):
        assert err(raw, "INCRBY", "n", "abc") == NOT_INT
        assert err(raw, "INCRBY", "n", "1.5") == NOT_INT
        assert err(raw, "DECRBY", "n", "9223372036854775808") == NOT_INT
        assert err(raw, "INCRBY", "n") == ARITY.format("incrby")
        assert err(raw, "INCR") == ARITY.format("incr")

    def test_overflow(self, raw):
        raw.call("SET", "max", "9223372036854775807")
        assert err(raw, "INCR", "max") == OVERFLOW
        assert err(raw, "INCRBY", "max", "1") == OVERFLOW
        raw.call("SET", "min", "-9223372036854775808")
        assert err(raw, "DECR", "min") == OVERFLOW
        assert err(raw, "DECRBY", "min", "1") == OVERFLOW
        assert raw.call("GET", "max") == b"9223372036854775807"
        assert raw.call("INCRBY", "min", "9223372036854775807") == -1

    @pytest.mark.parametrize("start,incr,expected", [
        ("10.50", "0.1", b"10.6"),
        ("10.6", "-5", b"5.6"),
        ("5.0e3", "2.0e2", b"5200"),
        ("1.5", "0.1", b"1.6"),
        ("1.0", "2", b"3"),
        ("10.5", "-0.5", b"10"),
        (None, "1.5", b"1.5"),
        (None, "-1.5", b"-1.5"),
        (None, "0.0", b"0"),
        ("1e5", "1", b"100001"),
        (".5", "1", b"1.5"),
        ("3", "1.0e1", b"13"),
    ])
    def test_incrbyfloat_formatting(self, raw, start, incr, expected):
        if start is not None:
            raw.call("SET", "f", start)
        assert raw.call("INCRBYFLOAT", "f", incr) == expected
        assert raw.call("GET", "f") == expected

    def test_incrbyfloat_errors(self, raw, r):
        assert err(raw, "INCRBYFLOAT", "f", "abc") == NOT_FLOAT
        assert err(raw, "INCRBYFLOAT", "f", "inf") == "ERR increment would produce NaN or Infinity"
        raw.call("SET", "s", "hello")
        assert err(raw, "INCRBYFLOAT", "s", "1") == NOT_FLOAT
        raw.call("SET", "s", "1.5 ")
        assert err(raw, "INCRBYFLOAT", "s", "1") == NOT_FLOAT
        assert err(raw, "INCRBYFLOAT", "f") == ARITY.format("incrbyfloat")
        assert r.incrbyfloat("g", 2.5) == 2.5

    def test_incrbyfloat_keeps_ttl(self, r):
        r.set("f", "1", ex=100)
        r.incrbyfloat("f", 1.5)
        assert 0 < r.ttl("f") <= 100


class TestStringRanges:
    def test_append_strlen(self, r, raw):
        assert r.append("k", "abc") == 3
        assert r.append("k", "def") == 6
        assert r.get("k") == "abcdef"
        assert r.strlen("k") == 6
        assert r.strlen("missing") == 0
        r.set("t", "v", ex=100)
        r.append("t", "w")
        assert 0 < r.ttl("t") <= 100
        assert err(raw, "APPEND", "k") == ARITY.format("append")
        assert err(raw, "STRLEN") == ARITY.format("strlen")

    @pytest.mark.parametrize("start,end,expected", [
        (0, -1, b"hello"), (0, 0, b"h"), (1, 3, b"ell"), (-3, -1, b"llo"), (0, 100, b"hello"),
        (10, 20, b""), (3, 1, b""), (-100, 100, b"hello"), (4, 4, b"o"), (-1, -1, b"o"),
    ])
    def test_getrange(self, raw, start, end, expected):
        raw.call("SET", "k", "hello")
        assert raw.call("GETRANGE", "k", start, end) == expected

    def test_getrange_missing_and_errors(self, raw):
        assert raw.call("GETRANGE", "missing", "0", "-1") == b""
        raw.call("SET", "k", "hello")
        assert err(raw, "GETRANGE", "k", "a", "1") == NOT_INT
        assert err(raw, "GETRANGE", "k", "0") == ARITY.format("getrange")

    def test_setrange(self, r, raw):
        r.set("k", "Hello World")
        assert r.setrange("k", 6, "Redis") == 11
        assert r.get("k") == "Hello Redis"
        assert raw.call("SETRANGE", "k", "13", "xx") == 15
        assert raw.call("GET", "k") == b"Hello Redis\x00\x00xx"
        assert raw.call("SETRANGE", "new", "2", "ab") == 4
        assert raw.call("GET", "new") == b"\x00\x00ab"

    def test_setrange_empty_value_edge_cases(self, raw):
        assert raw.call("SETRANGE", "missing", "0", "") == 0
        assert raw.call("SETRANGE", "missing", "5", "") == 0
        assert raw.call("EXISTS", "missing") == 0
        raw.call("SET", "k", "abc")
        assert raw.call("SETRANGE", "k", "10", "") == 3
        assert raw.call("GET", "k") == b"abc"

    def test_setrange_errors(self, raw):
        raw.call("SET", "k", "abc")
        assert err(raw, "SETRANGE", "k", "-1", "x") == "ERR offset is out of range"
        assert err(raw, "SETRANGE", "k", "536870912", "x") == \
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        assert err(raw, "SETRANGE", "k", "abc", "x") == NOT_INT
        assert err(raw, "SETRANGE", "k", "0") == ARITY.format("setrange")
        assert raw.call("GET", "k") == b"abc"


class TestExpire:
    def test_ttl_pttl_persist(self, r):
        assert r.ttl("missing") == -2
        assert r.pttl("missing") == -2
        r.set("k", "v")
        assert r.ttl("k") == -1
        assert r.pttl("k") == -1
        assert r.expire("k", 100) is True
        assert 0 < r.ttl("k") <= 100
        assert 0 < r.pttl("k") <= 100_000
        assert r.persist("k") is True
        assert r.persist("k") is False
        assert r.persist("missing") is False
        assert r.ttl("k") == -1

    def test_expire_variants(self, r):
        r.set("k", "v")
        assert r.pexpire("k", 100_000) is True
        assert 0 < r.pttl("k") <= 100_000
        now = int(time.time())
        assert r.expireat("k", now + 500) is True
        assert r.expiretime("k") == now + 500
        assert r.pexpireat("k", (now + 600) * 1000 + 123) is True
        assert r.pexpiretime("k") == (now + 600) * 1000 + 123
        assert r.expiretime("k") == now + 600
        assert r.expire("missing", 10) is False
        assert r.pexpire("missing", 10) is False

    def test_expiretime_no_ttl_and_missing(self, raw):
        raw.call("SET", "p", "v")
        assert raw.call("EXPIRETIME", "p") == -1
        assert raw.call("PEXPIRETIME", "p") == -1
        assert raw.call("EXPIRETIME", "missing") == -2
        assert raw.call("PEXPIRETIME", "missing") == -2

    @pytest.mark.parametrize("cmd,arg", [("EXPIRE", "0"), ("EXPIRE", "-5"), ("PEXPIRE", "0"),
                                         ("EXPIREAT", "1"), ("PEXPIREAT", "1")])
    def test_expire_in_the_past_deletes(self, raw, cmd, arg):
        raw.call("SET", "k", "v")
        assert raw.call(cmd, "k", arg) == 1
        assert raw.call("EXISTS", "k") == 0
        assert raw.call("GET", "k") is None

    def test_nx_xx_gt_lt_on_key_with_ttl(self, r):
        r.set("k", "v")
        assert r.expire("k", 100, nx=True) is True
        assert r.expire("k", 100, nx=True) is False
        assert r.expire("k", 50, xx=True) is True
        assert r.expire("k", 200, gt=True) is True
        assert r.expire("k", 100, gt=True) is False
        assert r.expire("k", 50, lt=True) is True
        assert r.expire("k", 500, lt=True) is False
        assert 0 < r.ttl("k") <= 50

    def test_nx_xx_gt_lt_on_key_without_ttl(self, r):
        # A key without TTL counts as an infinite TTL: GT never applies, LT always does.
        r.set("k", "v")
        assert r.expire("k", 100, xx=True) is False
        assert r.expire("k", 100, gt=True) is False
        assert r.ttl("k") == -1
        assert r.expire("k", 100, lt=True) is True
        assert 0 < r.ttl("k") <= 100
        r.persist("k")
        assert r.pexpire("k", 100_000, lt=True) is True
        r.persist("k")
        assert r.pexpireat("k", int(time.time() * 1000) + 100_000, gt=True) is False
        assert r.expireat("k", int(time.time()) + 100, nx=True) is True

    def test_expire_option_errors(self, raw):
        raw.call("SET", "k", "v")
        nx_msg = "ERR NX and XX, GT or LT options at the same time are not compatible"
        assert err(raw, "EXPIRE", "k", "100", "NX", "XX") == nx_msg
        assert err(raw, "EXPIRE", "k", "100", "NX", "GT") == nx_msg
        assert err(raw, "EXPIRE", "k", "100", "GT", "LT", "NX") == nx_msg
        assert err(raw, "EXPIRE", "k", "100", "GT", "LT") == "ERR GT and LT options at the same time are not compatible"
        assert err(raw, "EXPIRE", "k", "100", "bogus") == "ERR Unsupported option bogus"
        assert err(raw, "EXPIRE", "k", "abc") == NOT_INT
        assert err(raw, "EXPIRE", "k", "9223372036854775807") == BAD_EXPIRE.format("expire")
        assert err(raw, "PEXPIRE", "k", "9223372036854775807") == BAD_EXPIRE.format("pexpire")
        assert err(raw, "EXPIRE", "k") == ARITY.format("expire")
        assert err(raw, "TTL") == ARITY.format("ttl")
        assert err(raw, "PERSIST") == ARITY.format("persist")
        assert raw.call("TTL", "k") == -1

    def test_ttl_key_expires_under_poll(self, r):
        r.set("k", "v")
        r.pexpire("k", 100)
        wait_until(lambda: r.exists("k") == 0, timeout=5, message="PEXPIRE 100 key still exists")
        assert r.get("k") is None
        assert r.pttl("k") == -2
        # Redis deletes the key on access; Cairn's leader removes it on its next expiry cycle (reads never
        # write), so DBSIZE may count it for a moment, as Redis counts expired keys nobody touched.
        wait_until(lambda: r.dbsize() == 0, timeout=5, message="expired key still counted by DBSIZE")


class TestKeyspace:
    def test_keys_patterns(self, r, raw):
        r.mset({"a": "1", "ab": "2", "abc": "3", "b": "4", "h?llo": "5", "hello": "6", "a*b": "7"})
        assert sorted(r.keys("*")) == sorted(["a", "ab", "abc", "b", "h?llo", "hello", "a*b"])
        assert sorted(r.keys("a*")) == ["a", "a*b", "ab", "abc"]
        assert sorted(r.keys("a?")) == ["ab"]
        assert sorted(r.keys("[ab]")) == ["a", "b"]
        assert sorted(r.keys("[^a]")) == ["b"]
        assert sorted(r.keys("h\\?llo")) == ["h?llo"]
        assert sorted(r.keys("a\\*b")) == ["a*b"]
        assert r.keys("zzz*") == []
        assert err(raw, "KEYS") == ARITY.format("keys")

    def test_keys_skips_expired(self, r):
        r.set("live", "1")
        r.set("dying", "1", px=50)
        wait_until(lambda: r.keys("*") == ["live"], timeout=5, message="expired key still listed by KEYS")

    def test_randomkey(self, r, raw):
        assert r.randomkey() is None
        r.mset({"a": "1", "b": "2"})
        for _ in range(10):
            assert r.randomkey() in ("a", "b")
        assert err(raw, "RANDOMKEY", "x") == ARITY.format("randomkey")

    def test_scan_full_iteration(self, r):
        expected = {f"key:{i}" for i in range(500)}
        r.mset({k: "v" for k in expected})
        seen, cursor, rounds = set(), 0, 0
        while True:
            cursor, keys = r.scan(cursor, count=10)
            seen.update(keys)
            rounds += 1
            assert rounds < 10_000, "SCAN did not terminate"
            if cursor == 0:
                break
        assert seen == expected

    def test_scan_count_bounds_the_batch(self, r):
        # COUNT is a hint, but Redis honours it closely; clients use it to bound each call's work.
        r.mset({f"key:{i}": "v" for i in range(500)})
        cursor, keys = r.scan(0, count=10)
        assert cursor != 0, "SCAN 0 COUNT 10 over 500 keys finished in one call"
        assert 0 < len(keys) <= 50

    def test_scan_reply_shape(self, raw):
        raw.call("SET", "a", "1")
        reply = raw.call("SCAN", "0", "COUNT", "1000")
        assert isinstance(reply, list) and len(reply) == 2
        assert reply[0] == b"0"  # cursor is a bulk string
        assert reply[1] == [b"a"]

    def test_scan_match_and_type(self, r):
        r.mset({f"user:{i}": "v" for i in range(50)})
        r.mset({f"item:{i}": "v" for i in range(50)})
        matched = set(r.scan_iter(match="user:*", count=7))
        assert matched == {f"user:{i}" for i in range(50)}
        assert set(r.scan_iter(_type="string")) == {f"user:{i}" for i in range(50)} | {f"item:{i}" for i in range(50)}
        assert list(r.scan_iter(_type="hash")) == []

    def test_scan_errors(self, raw):
        assert err(raw, "SCAN", "abc") == "ERR invalid cursor"
        assert err(raw, "SCAN", "0", "COUNT", "0") == SYNTAX
        assert err(raw, "SCAN", "0", "COUNT", "-1") == SYNTAX
        assert err(raw, "SCAN", "0", "COUNT", "abc") == NOT_INT
        assert err(raw, "SCAN", "0", "bogus") == SYNTAX
        assert err(raw, "SCAN", "0", "MATCH") == SYNTAX
        assert err(raw, "SCAN") == ARITY.format("scan")


# =========================================================================== Cairn-only


@pytest.mark.cairn_only("SET IFEQ/IFNE is Redis 8.4+, not in 7.0")
class TestCompareAndSet:
    def test_set_ifeq(self, raw):
        raw.call("SET", "k", "v1")
        assert raw.call("SET", "k", "v2", "IFEQ", "v1") == "OK"
        assert raw.call("GET", "k") == b"v2"
        assert raw.call("SET", "k", "v3", "IFEQ", "v1") is None
        assert raw.call("GET", "k") == b"v2"

    def test_set_ifeq_never_creates(self, raw):
        assert raw.call("SET", "missing", "v", "IFEQ", "x") is None
        assert raw.call("EXISTS", "missing") == 0

    def test_set_ifne(self, raw):
        raw.call("SET", "k", "v1")
        assert raw.call("SET", "k", "v2", "IFNE", "v1") is None
        assert raw.call("GET", "k") == b"v1"
        assert raw.call("SET", "k", "v2", "IFNE", "other") == "OK"
        assert raw.call("GET", "k") == b"v2"

    def test_set_ifne_never_creates(self, raw):
        # Cairn's documented rule: IFEQ/IFNE never create the key. (Redis 8.4 creates on IFNE.)
        assert raw.call("SET", "missing", "v", "IFNE", "x") is None
        assert raw.call("EXISTS", "missing") == 0

    def test_set_ifeq_with_expiry_and_get(self, raw):
        raw.call("SET", "k", "v1")
        assert raw.call("SET", "k", "v2", "IFEQ", "v1", "EX", "100") == "OK"
        assert 0 < raw.call("TTL", "k") <= 100
        assert raw.call("SET", "k", "v3", "IFEQ", "v2", "GET") == b"v2"
        assert raw.call("GET", "k") == b"v3"

    def test_set_if_conflicts(self, raw):
        assert err(raw, "SET", "k", "v", "IFEQ", "a", "NX") == SYNTAX
        assert err(raw, "SET", "k", "v", "IFEQ", "a", "XX") == SYNTAX
        assert err(raw, "SET", "k", "v", "IFEQ", "a", "IFNE", "b") == SYNTAX
        assert err(raw, "SET", "k", "v", "IFEQ") == SYNTAX

    def test_delex(self, raw):
        raw.call("SET", "k", "v")
        assert raw.call("DELEX", "k", "IFEQ", "other") == 0
        assert raw.call("DELEX", "k", "IFNE", "v") == 0
        assert raw.call("EXISTS", "k") == 1
        assert raw.call("DELEX", "k", "IFEQ", "v") == 1
        assert raw.call("EXISTS", "k") == 0
        raw.call("SET", "k", "v")
        assert raw.call("DELEX", "k", "IFNE", "other") == 1
        assert raw.call("EXISTS", "k") == 0
        raw.call("SET", "k", "v")
        assert raw.call("DELEX", "k") == 1
        assert raw.call("DELEX", "k") == 0
        assert raw.call("DELEX", "missing", "IFEQ", "x") == 0
        assert raw.call("DELEX", "missing", "IFNE", "x") == 0

    def test_delex_errors(self, raw):
        assert err(raw, "DELEX") == ARITY.format("delex")
        assert isinstance(raw.call("DELEX", "k", "IFEQ"), RespError)
        assert isinstance(raw.call("DELEX", "k", "bogus", "x"), RespError)

    def test_command_info_lists_delex(self, raw):
        entry = raw.call("COMMAND", "INFO", "DELEX")[0]
        assert entry is not None and entry[0] == b"delex"
