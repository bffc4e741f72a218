"""Idempotent writes (`IDEMPOTENT token command ...`) against real cairn processes: retries return the
first reply and apply nothing again, also through other nodes and across a leader's kill -9."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
import redis

from conftest import HOST, REDIS_CLI, key_slot, wait_until


@pytest.fixture(autouse=True)
def _needs_cairn():
    from conftest import skip_unless_target

    skip_unless_target("cairn")


def test_redis_cli_retry_returns_the_first_reply(cluster_factory):
    c = cluster_factory.start(3, partitions=16)
    a, b = c.nodes[0], c.nodes[1]

    def cli(node, *words):
        done = subprocess.run([REDIS_CLI, "-h", HOST, "-p", str(node.port), *words],
                              capture_output=True, text=True, timeout=30)
        return done.stdout.strip()

    assert cli(a, "IDEMPOTENT", "order-17", "INCRBY", "stock", "5") == "5"
    assert cli(a, "IDEMPOTENT", "order-17", "INCRBY", "stock", "5") == "5"
    assert cli(b, "IDEMPOTENT", "order-17", "INCRBY", "stock", "5") == "5"
    assert cli(b, "GET", "stock") == "5"
    assert cli(b, "IDEMPOTENT", "order-18", "INCRBY", "stock", "5") == "10"
    assert "wraps a write command" in cli(a, "IDEMPOTENT", "x", "GET", "stock")
    metrics = "".join(n.metrics() for n in c.nodes)
    assert "cairn_idempotent_replays_total" in metrics


def test_retries_through_a_leader_kill_apply_each_write_once(cluster_factory):
    """Writers increment one counter with a fresh token per increment and retry each increment with
    its token until it is acknowledged (connection errors, TRYAGAIN, CLUSTERDOWN); meanwhile the
    counter's leader is killed. The counter must equal the number of increments: none lost, none
    applied twice."""
    c = cluster_factory.start(3, partitions=16)
    key = "counter"
    m = c.nodes[0].cluster_map()
    slots = {p["partition"]: tuple(p["slots"]) for p in m["partitions"]}
    slot = key_slot(key)
    partition = next(p for p, (lo, hi) in slots.items() if lo <= slot <= hi)
    slot_leader = next(p["leader"] for p in m["partitions"] if p["partition"] == partition)
    victim = c.node_by_id(slot_leader)
    survivors = [n for n in c.nodes if n is not victim]

    acknowledged = [0]
    retries = [0]
    stop = threading.Event()
    lock = threading.Lock()
    errors: list[str] = []

    def writer(index: int):
        clients = [redis.Redis(host=HOST, port=n.port, socket_timeout=10, socket_connect_timeout=5,
                               decode_responses=True) for n in survivors]
        n = 0
        while not stop.is_set():
            n += 1
            token = f"w{index}-{n}"
            deadline = time.monotonic() + 60
            attempt = 0
            while True:
                try:
                    clients[(n + attempt) % len(clients)].execute_command("IDEMPOTENT", token, "INCR", key)
                    break
                except redis.RedisError as exc:
                    attempt += 1
                    with lock:
                        retries[0] += 1
                    if time.monotonic() > deadline:
                        errors.append(f"{token}: {exc}")
                        return
            with lock:
                acknowledged[0] += 1
        for cl in clients:
            cl.close()

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: acknowledged[0] >= 100, timeout=30, message="writers do not get going")
    victim.kill9()
    before = acknowledged[0]
    wait_until(lambda: acknowledged[0] >= before + 200, timeout=60, message="writes stopped after the kill")
    stop.set()
    for t in threads:
        t.join(timeout=90)
    assert not errors, errors[:3]
    print(f"\n{acknowledged[0]} increments acknowledged, {retries[0]} retried attempts")
    with redis.Redis(host=HOST, port=survivors[0].port, socket_timeout=10, decode_responses=True) as r:
        assert int(r.get(key)) == acknowledged[0]
