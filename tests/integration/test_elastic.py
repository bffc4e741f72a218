"""Elastic scaling with real cairn processes: nodes join and are decommissioned while a client writes
and reads, and `cairn ctl` drives and reports it.

Waits are polls with deadlines; nothing asserts how long a move took.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request

import pytest
import redis

from conftest import CAIRN_BIN, HOST, ClusterNode, wait_until


@pytest.fixture(autouse=True)
def _needs_cairn():
    from conftest import skip_unless_target

    skip_unless_target("cairn")


def ctl(node, *words, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(CAIRN_BIN), "ctl", *words, "--addr", f"{HOST}:{node.http_port}"],
                          capture_output=True, text=True, timeout=timeout)


def node_state(via, node_id: int) -> str | None:
    for entry in via.cluster_map()["nodes"]:
        if entry["id"] == node_id:
            return entry["state"]
    return None


class Writer(threading.Thread):
    """Writes increasing versions of a few hundred keys through the given nodes, retrying each write
    until it is acknowledged, and reads keys back: a read must never show a version older than one
    acknowledged before the read began."""

    def __init__(self, nodes, keys: int = 200):
        super().__init__(daemon=True)
        self.nodes = list(nodes)
        self.keys = [f"elastic-{i}" for i in range(keys)]
        self.acked: dict[str, int] = {}
        self.stop_flag = threading.Event()
        self.errors: list[str] = []
        self.stale: list[str] = []
        self.writes = 0
        self.reads = 0

    def client(self, i: int) -> redis.Redis:
        n = self.nodes[i % len(self.nodes)]
        return redis.Redis(host=HOST, port=n.port, socket_timeout=10, socket_connect_timeout=10,
                           decode_responses=True, protocol=2)

    def run(self):
        i = 0
        version = 0
        clients = [self.client(j) for j in range(len(self.nodes))]
        while not self.stop_flag.is_set():
            i += 1
            key = self.keys[i % len(self.keys)]
            if i % 3 == 0:
                floor = self.acked.get(key, 0)
                try:
                    value = clients[i % len(clients)].get(key)
                except redis.RedisError as exc:
                    self.errors.append(f"GET {key}: {exc}")
                    continue
                self.reads += 1
                got = int(value) if value is not None else 0
                if got < floor:
                    self.stale.append(f"{key}: read {got} after {floor} was acknowledged")
                continue
            version += 1
            deadline = time.monotonic() + 60
            attempt = 0
            while True:
                try:
                    if clients[(i + attempt) % len(clients)].set(key, str(version)) is True:
                        break
                except redis.RedisError as exc:
                    self.errors.append(f"SET {key}: {exc}")
                attempt += 1
                if time.monotonic() > deadline:
                    self.errors.append(f"SET {key} {version} never acknowledged")
                    return
            self.acked[key] = version
            self.writes += 1
        for c in clients:
            c.close()


def add_node(c, name: str) -> ClusterNode:
    node = ClusterNode(c.tmp_path / f"{name}-data", c.tmp_path / "logs", name, fsync=None,
                       join=f"{HOST}:{c.nodes[0].peer_port}")
    c.nodes.append(node)
    node.start()
    return node


def decommission(c, node: ClusterNode):
    via = c.nodes[0]
    node_id = c.node_id(node)
    done = ctl(via, "decommission", str(node_id))
    assert done.returncode == 0, done.stderr
    assert "leaving" in done.stdout, done.stdout
    wait_until(lambda: node_state(via, node_id) == "removed", timeout=120,
               message=f"node {node_id} not removed after draining")
    # The removed node knows it, and refuses clients instead of serving from a map nobody updates.
    wait_until(lambda: node.ready_status() == 503, timeout=30, message="a removed node still says it is ready")
    with redis.Redis(host=HOST, port=node.port, socket_timeout=10, decode_responses=True) as r:
        with pytest.raises(redis.RedisError, match="removed from the cluster"):
            r.get("anything")
    node.proc.terminate()
    node.proc.wait(timeout=30)
    c.nodes.remove(node)
    c.wait_converged(timeout=90)


def test_three_to_five_to_three_nodes_with_a_client_throughout(cluster_factory):
    c = cluster_factory.start(3, partitions=16)
    first = c.nodes[0]

    # Requests that cannot be done are refused with a reason, and change nothing.
    refused = ctl(first, "decommission", "2")
    assert refused.returncode == 1
    assert "fewer than the 3 replicas" in refused.stderr, refused.stderr
    refused = ctl(first, "remove", "2")
    assert refused.returncode == 1 and "--force" in refused.stderr, refused.stderr
    refused = ctl(first, "decommission", "99")
    assert refused.returncode == 1 and "no node 99" in refused.stderr, refused.stderr
    bad = urllib.request.Request(f"http://{HOST}:{first.http_port}/v1/nodes/x/decommission", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code == 400
    assert all(node_state(first, n) == "active" for n in (1, 2, 3))

    writer = Writer(c.nodes[:3])
    writer.start()
    try:
        wait_until(lambda: writer.writes > 50, timeout=30, message="the writer does not get going")
        fourth = add_node(c, "c0-node4")
        c.wait_converged(timeout=90)
        fifth = add_node(c, "c0-node5")
        c.wait_converged(timeout=90)
        status = ctl(first, "rebalance", "status", timeout=30)
        assert status.returncode == 0, status.stderr
        assert "rebalance: done" in status.stdout, status.stdout
        # Every node leads some partitions and holds replicas after the joins.
        m = first.cluster_map()
        assert {p["leader"] for p in m["partitions"]} == {1, 2, 3, 4, 5}, [(p["partition"], p["leader"], p["replicas"]) for p in m["partitions"]]

        decommission(c, fifth)
        decommission(c, fourth)
        wait_until(lambda: writer.writes > 50 + 200, timeout=60, message="the writer stalled")
    finally:
        writer.stop_flag.set()
        writer.join(timeout=120)
    assert not writer.stale, writer.stale[:5]
    assert "never acknowledged" not in " ".join(writer.errors), writer.errors[-5:]
    print(f"\nwriter: {writer.writes} writes, {writer.reads} reads, {len(writer.errors)} retried errors")

    # Every acknowledged write survives, through every remaining node.
    for n in c.nodes:
        with redis.Redis(host=HOST, port=n.port, socket_timeout=10, decode_responses=True) as r:
            for key, version in writer.acked.items():
                assert r.get(key) == str(version), f"{key} via {n.name}"
    m = first.cluster_map()
    assert sorted(x["id"] for x in m["nodes"] if x["state"] != "removed") == [1, 2, 3]
    assert all(len(p["replicas"]) == 3 for p in m["partitions"])
    rebalance = json.loads(first.http("/v1/rebalance")[1])
    assert rebalance["membership_steps"] > 0 or any(
        json.loads(n.http("/v1/rebalance")[1])["membership_steps"] > 0 for n in c.nodes)
    status = ctl(first, "rebalance", "status", timeout=30)
    assert status.returncode == 0 and "rebalance: done" in status.stdout, status.stdout + status.stderr
