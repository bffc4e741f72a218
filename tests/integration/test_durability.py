"""Durability: acknowledged writes survive kill -9; TTLs survive restarts; clean shutdown exits 0.

Each test runs against Cairn with --fsync always and, to prove the test itself, against
redis-server with --appendonly yes --appendfsync always.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import wait_until


class Writer(threading.Thread):
    """SETs dur:0, dur:1, ... one at a time; records every acknowledged index."""

    def __init__(self, server):
        super().__init__(daemon=True)
        # No retries: a write counts as acknowledged only if its own reply arrived.
        self.client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5,
                                  socket_connect_timeout=5, protocol=2, retry=Retry(NoBackoff(), 0))
        self.acked: list[int] = []
        self.error: BaseException | None = None
        self.stop_flag = threading.Event()

    @staticmethod
    def value(i: int) -> str:
        return f"value-{i}-" + "x" * (i % 50)

    def run(self):
        i = 0
        try:
            while not self.stop_flag.is_set():
                if self.client.set(f"dur:{i}", self.value(i)) is not True:
                    raise AssertionError(f"SET dur:{i} did not reply OK")
                self.acked.append(i)
                i += 1
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError) as exc:
            self.error = exc  # expected once the server is killed
        finally:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001
                pass


@pytest.mark.parametrize("round_", range(2))
def test_acknowledged_writes_survive_kill9(target, server_factory, round_):
    srv = server_factory.create(target, fsync="always").start()
    writer = Writer(srv)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) >= 300 or not writer.is_alive(), timeout=60,
                   message="writer did not get 300 acknowledgements")
        assert writer.is_alive(), f"writer stopped early: {writer.error!r}"
        srv.kill9()
        writer.join(timeout=15)
        assert not writer.is_alive(), "writer still running after the server was killed"
    finally:
        writer.stop_flag.set()
    acked = list(writer.acked)
    assert len(acked) >= 300

    srv.start()
    c = srv.client()
    missing = []
    pipe = c.pipeline(transaction=False)
    for i in acked:
        pipe.get(f"dur:{i}")
    for i, got in zip(acked, pipe.execute()):
        if got != Writer.value(i):
            missing.append((i, got))
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost or wrong, e.g. {missing[:5]}"
    # Nothing beyond the one in-flight write may appear out of nowhere.
    assert c.dbsize() in (len(acked), len(acked) + 1)


def test_ttl_survives_restart_and_expired_key_stays_gone(target, server_factory):
    srv = server_factory.create(target, fsync="always").start()
    c = srv.client()
    c.set("ttl:long", "v", ex=1000)
    c.set("ttl:abs", "v", pxat=int(time.time() * 1000) + 2_000_000)
    c.set("ttl:none", "v")
    c.set("ttl:short", "v", px=200)
    wait_until(lambda: c.get("ttl:short") is None, timeout=5, message="PX 200 key still visible")
    srv.kill9()

    srv.start()
    c = srv.client()
    assert c.get("ttl:long") == "v"
    assert 0 < c.pttl("ttl:long") <= 1_000_000
    assert 0 < c.pttl("ttl:abs") <= 2_000_000
    assert c.ttl("ttl:none") == -1
    assert c.get("ttl:short") is None
    assert c.exists("ttl:short") == 0
    assert sorted(c.keys("*")) == ["ttl:abs", "ttl:long", "ttl:none"]


def test_key_expiring_while_down_is_gone_after_restart(target, server_factory):
    srv = server_factory.create(target, fsync="always").start()
    c = srv.client()
    deadline_ms = int(time.time() * 1000) + 300
    c.set("soon", "v", pxat=deadline_ms)
    c.set("stays", "v")
    assert srv.stop(signal.SIGTERM) == 0
    wait_until(lambda: time.time() * 1000 > deadline_ms + 50, timeout=5, message="clock did not pass the deadline")
    srv.start()
    c = srv.client()
    assert c.get("soon") is None
    assert c.get("stays") == "v"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clean_shutdown_exits_zero_and_keeps_data(target, server_factory, sig):
    srv = server_factory.create(target, fsync="always").start()
    c = srv.client()
    c.mset({f"clean:{i}": str(i) for i in range(100)})
    c.incrby("clean:counter", 42)
    code = srv.stop(sig, timeout=30)
    assert code == 0, f"server exited with {code} after {sig!r}"

    srv.start()
    c = srv.client()
    assert c.dbsize() == 101
    assert c.get("clean:57") == "57"
    assert c.get("clean:counter") == "42"
    assert srv.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("fsync", ["everysec", "none"])
def test_clean_shutdown_keeps_data_in_every_fsync_mode(server_factory, fsync):
    srv = server_factory.create("cairn", fsync=fsync).start()
    c = srv.client()
    c.mset({f"k{i}": str(i) for i in range(50)})
    assert srv.stop(signal.SIGTERM) == 0
    srv.start()
    assert srv.client().dbsize() == 50
