"""redis-cli as a real client: one-shot commands, RESP3, INFO, piped scripts and --pipe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import REDIS_CLI

CLI_TIMEOUT = 60


@pytest.fixture(scope="module")
def cli_path():
    if not (Path(REDIS_CLI).is_file() and os.access(REDIS_CLI, os.X_OK)):
        pytest.skip(f"redis-cli not found at {REDIS_CLI} (apt-get install redis-tools)")
    return REDIS_CLI


@pytest.fixture
def cli(cli_path, server, r2):
    """Run redis-cli against the server (database flushed by r2); return CompletedProcess."""

    def run(*args, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        argv = [cli_path, "-h", "127.0.0.1", "-p", str(server.port), *args]
        proc = subprocess.run(argv, input=stdin if stdin is not None else b"", capture_output=True,
                              timeout=CLI_TIMEOUT)
        if check:
            assert proc.returncode == 0, f"{argv} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
        return proc

    return run


def out(proc) -> str:
    return proc.stdout.decode()


def test_set_get(cli, r2):
    assert out(cli("set", "a", "b")) == "OK\n"
    assert out(cli("get", "a")) == "b\n"
    assert r2.get("a") == "b"
    assert out(cli("get", "missing")) == "\n"


def test_no_raw_formatting(cli):
    cli("set", "n", "1")
    assert out(cli("--no-raw", "incr", "n")) == "(integer) 2\n"
    assert out(cli("--no-raw", "get", "n")) == '"2"\n'
    assert out(cli("--no-raw", "get", "missing")) == "(nil)\n"
    assert out(cli("--no-raw", "mget", "n", "missing")) == '1) "2"\n2) (nil)\n'
    assert out(cli("--no-raw", "incrby", "n", "x")) == "(error) ERR value is not an integer or out of range\n"


def test_resp3_hello(cli, server):
    text = out(cli("-3", "--no-raw", "hello", "3"))
    lines = text.splitlines()
    keys = [line.split('"')[1] for line in lines]
    assert keys == ["server", "version", "proto", "id", "mode", "role", "modules"]
    assert '"proto" => (integer) 3' in text
    assert '"modules" => (empty array)' in text


def test_resp3_null_and_map(cli, server):
    assert out(cli("-3", "--no-raw", "get", "missing")) == "(nil)\n"
    assert out(cli("-3", "config", "get", "port")) == f"port {server.port}\n"


def test_info_parses(cli, server):
    text = out(cli("info"))
    sections, fields = [], {}
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line.startswith("# "):
            sections.append(line[2:])
        elif ":" in line:
            k, v = line.split(":", 1)
            fields[k] = v
    for s in ("Server", "Clients", "Memory", "Persistence", "Stats", "Keyspace"):
        assert s in sections
    assert fields["tcp_port"] == str(server.port)
    assert int(fields["connected_clients"]) >= 1


def test_commands_from_stdin(cli, r2):
    script = b'SET a 1\nINCR a\nGET a\nGET nokey\nINCRBY a x\nECHO "hello world"\n'
    proc = cli("--no-raw", stdin=script)
    assert out(proc).splitlines() == [
        "OK", "(integer) 2", '"2"', "(nil)", "(error) ERR value is not an integer or out of range", '"hello world"',
    ]
    assert r2.get("a") == "2"


def test_commands_from_file(cli, r2, tmp_path):
    path = tmp_path / "commands.txt"
    path.write_text("".join(f"SET key:{i} {i}\n" for i in range(100)) + "DBSIZE\n")
    proc = cli(stdin=path.read_bytes())
    lines = out(proc).splitlines()
    assert lines == ["OK"] * 100 + ["100"]
    assert r2.get("key:42") == "42"


def test_mass_insertion_with_pipe(cli, r2, tmp_path):
    n = 10_000
    buf = bytearray()
    for i in range(n):
        k, v = f"mass:{i}".encode(), f"value-{i}".encode()
        buf += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
    path = tmp_path / "mass.resp"
    path.write_bytes(bytes(buf))
    proc = cli("--pipe", stdin=path.read_bytes())
    text = out(proc)
    assert f"errors: 0, replies: {n}" in text, text
    assert r2.dbsize() == n
    assert r2.get("mass:9999") == "value-9999"
    assert r2.get("mass:0") == "value-0"
