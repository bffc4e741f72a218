"""Process lifecycle of `cairn server`: data-dir lock, --help, flag validation. Cairn only."""

from __future__ import annotations

import signal
import subprocess

import pytest

from conftest import CAIRN_BIN, allocate_ports, skip_unless_target

EXIT_TIMEOUT = 15  # a process that should exit at once gets this long before the test fails


@pytest.fixture(autouse=True)
def _needs_cairn():
    skip_unless_target("cairn")


def run_cairn(*args, timeout=EXIT_TIMEOUT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(CAIRN_BIN), *args], capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:  # subprocess.run kills the child before raising
        raise AssertionError(f"cairn {' '.join(args)} did not exit within {timeout}s") from exc


def test_second_server_on_same_data_dir_fails_fast(server_factory, tmp_path):
    first = server_factory.start("cairn", data_dir=tmp_path / "shared", fsync="none")
    port, _, _ = allocate_ports()
    proc = run_cairn("server", "--port", str(port), "--data-dir", str(tmp_path / "shared"), "--fsync", "none")
    assert proc.returncode != 0, "second server on a locked data dir did not fail"
    assert "in use" in proc.stderr.decode(errors="replace"), proc.stderr.decode(errors="replace")
    # The first server is unaffected.
    assert first.client().ping() is True
    assert first.proc.poll() is None


def test_lock_is_released_after_shutdown(server_factory, tmp_path):
    srv = server_factory.create("cairn", data_dir=tmp_path / "d", fsync="none")
    srv.start()
    srv.client().set("k", "v")
    assert srv.stop(signal.SIGTERM) == 0
    srv.start()
    assert srv.client().get("k") == "v"


def test_lock_is_released_after_kill9(server_factory, tmp_path):
    srv = server_factory.create("cairn", data_dir=tmp_path / "d", fsync="always")
    srv.start()
    srv.kill9()
    srv.start()  # a stale lock file from a dead process must not block a restart
    assert srv.client().ping() is True


def test_server_help():
    proc = run_cairn("server", "--help")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    for flag in ("--port", "--data-dir", "--fsync", "--cache-bytes"):
        assert flag in text, f"`cairn server --help` does not mention {flag}"


def test_bad_port_is_rejected(tmp_path):
    proc = run_cairn("server", "--port", "notanumber", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode != 0
    assert "--port" in (proc.stdout + proc.stderr).decode(errors="replace")


def test_bad_fsync_is_rejected(tmp_path):
    port, _, _ = allocate_ports()
    proc = run_cairn("server", "--port", str(port), "--data-dir", str(tmp_path / "d"), "--fsync", "sometimes")
    assert proc.returncode != 0
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    for allowed in ("always", "everysec", "none"):
        assert allowed in text, f"--fsync error does not name the allowed value {allowed!r}: {text!r}"


def test_unknown_flag_is_rejected(tmp_path):
    proc = run_cairn("server", "--no-such-flag", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode != 0
    assert "--no-such-flag" in (proc.stdout + proc.stderr).decode(errors="replace")


def test_logs_are_logfmt_on_stderr(server_factory):
    srv = server_factory.start("cairn", fsync="none")
    srv.client().ping()
    assert srv.stop(signal.SIGTERM) == 0
    lines = [line for line in srv.logs().splitlines() if line and not line.startswith("===")]
    assert lines, "server wrote no log lines"
    for line in lines:
        assert "level=" in line and "msg=" in line, f"not logfmt: {line!r}"
