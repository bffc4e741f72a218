"""Clusters of real cairn processes on 127.0.0.1: routing, Redis Cluster compatibility, failover.

Every test starts its own cluster through the `cluster_factory` fixture (conftest.Cluster) and
all of its processes stop in teardown. Waits are polls with deadlines; no assertion is about how
long something took (failover times are printed, not asserted). Most tests use 16 partitions to
keep a debug binary fast; the redis-py RedisCluster test uses the default of 128.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import signal
import socket
import subprocess
import threading
import time
from collections import Counter

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, TryAgainError
from redis.retry import Retry

from conftest import HOST, REDIS_CLI, ClusterNode, RespError, encode_command, key_slot, metric_total, wait_until

WRITE_TIMEOUT = 10.0  # a command with no reachable leader is answered within about 5 s


@pytest.fixture(autouse=True)
def _needs_cairn():
    from conftest import skip_unless_target

    skip_unless_target("cairn")


# --------------------------------------------------------------------------- helpers


def partition_of(slot: int, slots: dict[int, tuple[int, int]]) -> int:
    for p, (lo, hi) in slots.items():
        if lo <= slot <= hi:
            return p
    raise AssertionError(f"slot {slot} is in no partition: {slots}")


def keys_in_partitions(prefix: str, partitions, slots, per_partition: int) -> list[str]:
    """`per_partition` distinct keys for each partition in `partitions`, in round-robin order."""
    want = {p: [] for p in partitions}
    i = 0
    while any(len(v) < per_partition for v in want.values()):
        k = f"{prefix}{i}"
        p = partition_of(key_slot(k), slots)
        if p in want and len(want[p]) < per_partition:
            want[p].append(k)
        i += 1
        assert i < 10_000_000
    out = []
    for j in range(per_partition):
        out.extend(want[p][j] for p in partitions)
    return out


def no_retry_client(node, timeout: float = WRITE_TIMEOUT) -> redis.Redis:
    return redis.Redis(host=HOST, port=node.port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       decode_responses=True, protocol=2, retry=Retry(NoBackoff(), 0))


def leader_counts(cluster, via=None) -> Counter:
    return Counter(cluster.leaders(via).values())


class HistoryRecorder(threading.Thread):
    """One client of a linearizability history: GET, SET, SET IFEQ/NX (compare-and-set) and DEL on a
    few keys through one node, one operation at a time, each recorded with its invocation and
    response times for `cairn check history`. An error reply or a broken connection leaves the
    outcome unknown (the command may or may not have taken effect)."""

    def __init__(self, node, client_id: int, keys: list[str], seed: int):
        super().__init__(daemon=True)
        self.node = node
        self.client_id = client_id
        self.keys = keys
        self.rng = random.Random(seed)
        self.lines: list[str] = []
        self.stop_flag = threading.Event()
        self.last_seen: dict[str, bytes | None] = {}

    @staticmethod
    def hx(value: bytes | None) -> str:
        if value is None:
            return "nil"
        return value.hex() if value else "="

    def run(self):
        client = no_retry_client(self.node)
        n = 0
        while not self.stop_flag.is_set():
            key = self.rng.choice(self.keys)
            roll = self.rng.random()
            n += 1
            new = f"{self.client_id}-{n}".encode()
            if roll < 0.4:
                op, words = "get", ("GET", key)
            elif roll < 0.7:
                op, words = "set", ("SET", key, new)
            elif roll < 0.9:
                expected = self.last_seen.get(key)
                op = "cas"
                words = ("SET", key, new, "IFEQ", expected) if expected is not None else ("SET", key, new, "NX")
            else:
                op, words = "del", ("DEL", key)
            invoked = time.monotonic_ns() // 1000
            try:
                reply = client.execute_command(*words)
                outcome = "ok"
            except (redis.RedisError, OSError):
                reply, outcome = None, "unknown"
                client.close()
                client = no_retry_client(self.node)
            responded = time.monotonic_ns() // 1000
            k = key.encode().hex()
            head = f"{self.client_id} {invoked} {responded if outcome == 'ok' else '-'} {outcome}"
            if op == "get":
                value = reply.encode() if isinstance(reply, str) else reply if outcome == "ok" else None
                if outcome == "ok":
                    self.last_seen[key] = value
                self.lines.append(f"{head} get {k} {self.hx(value)}")
            elif op == "set":
                self.lines.append(f"{head} set {k} {new.hex()}")
            elif op == "cas":
                expected = words[4] if len(words) == 5 else None
                ok = 1 if reply in (True, b"OK", "OK") else 0
                self.lines.append(f"{head} cas {k} {self.hx(expected)} {new.hex()} {ok}")
            else:
                self.lines.append(f"{head} del {k}")
        client.close()


def check_history(recorders, path) -> str:
    """Writes the recorders' operations to `path` and runs `cairn check history` on it; returns its
    report, failing the test unless the history is linearizable."""
    lines = [line for r in recorders for line in r.lines]
    path.write_text("\n".join(lines) + "\n")
    from conftest import CAIRN_BIN
    done = subprocess.run([str(CAIRN_BIN), "check", "history", str(path)], capture_output=True, text=True,
                          timeout=300)
    report = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, f"history of {len(lines)} operations ({path}) is not linearizable:\n{report}"
    return report


class Writer(threading.Thread):
    """SETs `<prefix>0`, `<prefix>1`, ... through one node, one at a time. A write that fails
    (error reply, timeout, closed connection) is retried with the same key and value until it is
    acknowledged with OK, so every key has exactly one value. Records acknowledged keys with the
    monotonic time of their acknowledgement."""

    def __init__(self, node, prefix: str):
        super().__init__(daemon=True)
        self.node = node
        self.prefix = prefix
        self.acked: list[tuple[str, str, float]] = []
        self.errors: Counter = Counter()
        self.stop_flag = threading.Event()
        self.fatal: BaseException | None = None

    @staticmethod
    def value(key: str) -> str:
        return f"val-{key}"

    def acked_after(self, t: float) -> int:
        return sum(1 for _, _, ts in list(self.acked) if ts > t)

    def run(self):
        client = no_retry_client(self.node)
        i = 0
        try:
            while not self.stop_flag.is_set():
                key = f"{self.prefix}{i}"
                val = self.value(key)
                key_deadline = time.monotonic() + 60
                while not self.stop_flag.is_set():
                    try:
                        reply = client.set(key, val)
                        if reply is True:
                            self.acked.append((key, val, time.monotonic()))
                            break
                        self.errors[f"reply {reply!r}"] += 1
                    except redis.ResponseError as exc:
                        self.errors[f"{type(exc).__name__}: {str(exc)[:50]}"] += 1
                    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                        self.errors[type(exc).__name__] += 1
                        client.close()
                        client = no_retry_client(self.node)
                    if time.monotonic() > key_deadline:
                        raise AssertionError(f"SET {key} not acknowledged within 60 s of retries: {self.errors}")
                i += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.fatal = exc
        finally:
            client.close()

    def finish(self):
        self.stop_flag.set()
        self.join(timeout=WRITE_TIMEOUT + 5)
        assert not self.is_alive(), "writer thread did not stop"
        assert self.fatal is None, f"writer failed: {self.fatal!r}"


def check_keys(node, items, what: str, readonly: bool = False, retry_for: float = 30.0):
    """Reads every (key, value) of `items` through `node` and returns the mismatches as
    (key, expected, got). A read refused with an error (TRYAGAIN, CLUSTERDOWN: no leader right now)
    is retried for up to `retry_for` seconds; this checks data, availability is tested elsewhere."""
    client = no_retry_client(node)
    deadline = time.monotonic() + retry_for
    try:
        todo, bad = list(items), []
        while todo:
            refused = []
            for start in range(0, len(todo), 500):
                chunk = todo[start:start + 500]
                pipe = client.pipeline(transaction=False)
                if readonly:
                    pipe.execute_command("READONLY")
                for k, _ in chunk:
                    pipe.get(k)
                got = pipe.execute(raise_on_error=False)
                if readonly:
                    got = got[1:]
                for (k, v), g in zip(chunk, got):
                    if isinstance(g, (TryAgainError, ClusterDownError)) and time.monotonic() < deadline:
                        refused.append((k, v))
                    elif g != v:
                        bad.append((k, v, g))
            todo = refused
        return bad
    finally:
        client.close()


def assert_all_readable(node, items, what: str):
    bad = check_keys(node, items, what)
    assert not bad, f"{what}: {len(bad)} of {len(items)} acknowledged keys wrong via {node.name}, e.g. {bad[:5]}"


async def measure_failover(through, victim, keys: list[str], interval: float = 0.01,
                           give_up: float = 30.0) -> float | None:
    """Issue SET <key> every `interval` seconds through `through` (each on an idle connection of a
    pool, never waiting on one request), kill -9 `victim` once 20 writes succeeded, and return the
    seconds from the kill to the first OK reply to a write sent after the kill (None if none came
    within `give_up` seconds)."""
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    pending: set[asyncio.Task] = set()
    state = {"ok_before": 0, "t_kill": None, "first_ok": None}

    async def one(key: str, t_send: float):
        conn = idle.pop() if idle else await asyncio.open_connection(HOST, through.port)
        reader, writer = conn
        try:
            writer.write(encode_command("SET", key, f"fo-{t_send}"))
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), WRITE_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        idle.append(conn)
        if line == b"+OK\r\n":
            t_kill = state["t_kill"]
            if t_kill is None:
                state["ok_before"] += 1
            elif t_send > t_kill and state["first_ok"] is None:
                state["first_ok"] = time.monotonic() - t_kill

    i = 0
    start = time.monotonic()
    try:
        while state["first_ok"] is None:
            now = time.monotonic()
            if state["t_kill"] is None and state["ok_before"] >= 20:
                victim.kill9_nowait()
                state["t_kill"] = time.monotonic()
            if state["t_kill"] is not None and now - state["t_kill"] > give_up:
                break
            if state["t_kill"] is None and now - start > give_up:
                raise AssertionError("writes did not succeed before the kill")
            task = asyncio.ensure_future(one(keys[i % len(keys)], now))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
            await asyncio.sleep(interval)  # pacing of the write stream, not a wait for a condition
    finally:
        for t in list(pending):
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for _, w in idle:
            w.close()
    return state["first_ok"]


# --------------------------------------------------------------------------- routing and multi-key


def test_three_nodes_any_node_serves_any_key(cluster_factory):
    c = cluster_factory.start(3, partitions=16)
    slots = c.partition_slots()
    clients = [n.client() for n in c.nodes]
    model: dict[str, str] = {}

    # SET through each node, GET through every other node.
    for i, cl in enumerate(clients):
        for j in range(40):
            k, v = f"k:{i}:{j}", f"v-{i}-{j}"
            assert cl.set(k, v) is True
            model[k] = v
    assert len({partition_of(key_slot(k), slots) for k in model}) >= 12, "keys should span most partitions"
    for i, cl in enumerate(clients):
        for j, other in enumerate(clients):
            if i == j:
                continue
            mine = [k for k in model if k.startswith(f"k:{i}:")]
            assert other.mget(mine) == [model[k] for k in mine], f"keys set via node {i + 1}, read via {j + 1}"

    # MSET / MGET / DEL / EXISTS across partitions, through random nodes, against a dict model.
    rng = random.Random(4)
    universe = [f"m:{x}" for x in range(60)]
    for step in range(150):
        cl = rng.choice(clients)
        op = rng.choice(["mset", "mget", "del", "exists"])
        keys = rng.sample(universe, rng.randint(1, 12))
        if op == "mset":
            kv = {k: f"s{step}-{k}" for k in keys}
            assert cl.mset(kv) is True
            model.update(kv)
        elif op == "mget":
            assert cl.mget(keys) == [model.get(k) for k in keys], f"step {step} MGET {keys}"
        elif op == "del":
            expected = sum(1 for k in set(keys) if k in model)
            assert cl.delete(*keys) == expected, f"step {step} DEL {keys}"
            for k in keys:
                model.pop(k, None)
        else:
            dup = keys + keys[:2]  # EXISTS counts a key once per mention
            assert cl.exists(*dup) == sum(1 for k in dup if k in model), f"step {step} EXISTS {dup}"
    for cl in clients:
        assert cl.mget(universe) == [model.get(k) for k in universe]

    # RENAME across partitions is refused; within one slot (hash tag) it works.
    a, b = "rename-src", "rename-dst"
    assert partition_of(key_slot(a), slots) != partition_of(key_slot(b), slots)
    clients[0].set(a, "x")
    with c.nodes[1].raw() as conn:
        reply = conn.call("RENAME", a, b)
        assert isinstance(reply, RespError) and reply.startswith("CROSSSLOT"), reply
        reply = conn.call("COPY", a, b)
        assert isinstance(reply, RespError) and reply.startswith("CROSSSLOT"), reply
    assert clients[2].get(a) == "x" and clients[2].get(b) is None
    assert clients[2].set("{user7}:a", "tagged") is True
    assert clients[1].rename("{user7}:a", "{user7}:b") is True
    for cl in clients:
        assert cl.get("{user7}:a") is None
        assert cl.get("{user7}:b") == "tagged"
    assert clients[0].mset({"{t}1": "1", "{t}2": "2"}) is True
    assert clients[2].msetnx({"{t}3": "3", "{t}4": "4"}) is True
    assert clients[1].mget("{t}1", "{t}2", "{t}3", "{t}4") == ["1", "2", "3", "4"]


def test_cluster_commands_match_redis(cluster_factory):
    c = cluster_factory.start(3, partitions=16)
    r = c.nodes[1].client()
    # Reference values from Redis itself (redis.io/docs cluster spec and `CLUSTER KEYSLOT` on Redis 7).
    assert r.execute_command("CLUSTER KEYSLOT", "somekey") == 11058
    assert r.execute_command("CLUSTER KEYSLOT", "foo") == 12182
    assert r.execute_command("CLUSTER KEYSLOT", "bar") == 5061
    assert r.execute_command("CLUSTER KEYSLOT", "{user1000}.following") == 3443
    assert r.execute_command("CLUSTER KEYSLOT", "{user1000}.followers") == 3443
    for k in ["", "a", "{", "}", "{}", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}x", "x{y", "é", "k" * 300]:
        assert r.execute_command("CLUSTER KEYSLOT", k) == key_slot(k), f"CLUSTER KEYSLOT {k!r}"

    node_ports = {n.port for n in c.nodes}
    ids = []
    for node in c.nodes:
        raw = node.raw()
        try:
            entries = raw.call("CLUSTER", "SLOTS")
            myid = raw.call("CLUSTER", "MYID")
            info = raw.call("CLUSTER", "INFO")
            nodes_txt = raw.call("CLUSTER", "NODES")
        finally:
            raw.close()
        assert isinstance(entries, list), entries
        covered = [0] * 16384
        for e in entries:
            lo, hi, *replicas = e
            assert 0 <= lo <= hi <= 16383, e
            for s in range(lo, hi + 1):
                covered[s] += 1
            assert len(replicas) == 3, f"{node.name}: range {lo}-{hi} has {len(replicas)} node entries"
            ports = [rep[1] for rep in replicas]
            assert len(set(ports)) == 3 and set(ports) <= node_ports, ports
            for rep in replicas:
                assert rep[0] == HOST.encode()
        assert all(x == 1 for x in covered), f"{node.name}: slots not covered exactly once " \
            f"(missing {covered.count(0)}, duplicated {sum(1 for x in covered if x > 1)})"
        assert isinstance(myid, bytes) and len(myid) == 40, myid
        int(myid, 16)
        ids.append(myid)
        info_txt = info.decode() if isinstance(info, bytes) else str(info)
        assert "cluster_state:ok" in info_txt, info_txt
        assert "cluster_slots_assigned:16384" in info_txt, info_txt
        assert "cluster_known_nodes:3" in info_txt, info_txt
        lines = [ln for ln in nodes_txt.decode().splitlines() if ln.strip()]
        assert len(lines) == 3, lines
        assert sum(1 for ln in lines if "myself" in ln.split()[2]) == 1, lines
        assert [ln for ln in lines if "myself" in ln.split()[2]][0].split()[0].encode() == myid
    assert len(set(ids)) == 3, f"CLUSTER MYID not distinct per node: {ids}"

    # COUNTKEYSINSLOT counts the node's local copy (as in Redis, it only queries the local data set),
    # so a follower that has not applied the MSET yet may answer less: poll until every replica has it.
    assert c.nodes[0].client().mset({"{cnt}a": "1", "{cnt}b": "2", "{cnt}c": "3"}) is True
    slot = key_slot("{cnt}a")
    for node in c.nodes:
        cl = node.client()
        wait_until(lambda: cl.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 3, timeout=30,
                   message=f"CLUSTER COUNTKEYSINSLOT {slot} on {node.name} != 3")


def test_redis_py_cluster_client_and_redis_cli(cluster_factory):
    t0 = time.monotonic()
    c = cluster_factory.start(3, partitions=None)  # the default: 128 partitions
    assert len(c.nodes[0].cluster_map()["partitions"]) == 128
    print(f"\n128 partitions: cluster converged after {time.monotonic() - t0:.1f} s")
    rc = redis.cluster.RedisCluster(host=HOST, port=c.nodes[2].port, decode_responses=True,
                                    socket_timeout=WRITE_TIMEOUT)
    try:
        kv = {f"rc:{i}": f"value-{i}" for i in range(200)}
        for k, v in kv.items():
            assert rc.set(k, v) is True
        for k, v in kv.items():
            assert rc.get(k) == v
        keys = list(kv)
        assert rc.mget_nonatomic(keys) == [kv[k] for k in keys]
        assert rc.mget_nonatomic(keys[:5] + ["rc:missing"]) == [kv[k] for k in keys[:5]] + [None]
        assert rc.delete(*keys[:50]) == 50
        assert rc.exists(*keys[:60]) == 10
        seen_ports = {n.port for n in rc.get_nodes()}
        assert seen_ports == {n.port for n in c.nodes}, seen_ports
    finally:
        rc.close()
    print(f"RedisCluster part done after {time.monotonic() - t0:.1f} s")
    # Through a plain client on another node, the same data.
    plain = c.nodes[0].client()
    assert plain.get("rc:199") == "value-199" and plain.get("rc:0") is None

    for i, node in enumerate(c.nodes):
        key = f"cli-key-{i}"

        def cli(*args):
            proc = subprocess.run([REDIS_CLI, "-c", "-h", HOST, "-p", str(node.port), *args],
                                  capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
            assert proc.returncode == 0, proc.stderr
            return proc.stdout.decode().strip()

        assert cli("set", key, f"from-cli-{i}") == "OK"
        assert cli("get", key) == f"from-cli-{i}"
        assert c.nodes[(i + 1) % 3].client().get(key) == f"from-cli-{i}"


# --------------------------------------------------------------------------- faults


def test_kill9_leader_under_load_loses_no_acknowledged_write(cluster_factory):
    c = cluster_factory.start(3, partitions=16, fsync="always")
    slots = c.partition_slots()
    through = c.nodes[0]

    def pick_victim(previous=None):
        """The node (other than `through` and the previous victim) leading the most partitions."""
        counts = leader_counts(c, through)
        ids = {c.node_id(n): n for n in c.running_nodes() if n is not through and n is not previous}
        best = max(ids, key=lambda i: counts.get(i, 0))
        return ids[best], best, sorted(p for p, leader in c.leaders(through).items() if leader == best)

    # Leaders move from node 1 to the others after they join; wait until some other node leads.
    wait_until(lambda: any(leader_counts(c, through).get(c.node_id(n), 0) > 0 for n in c.nodes[1:]),
               timeout=30, message="no partition is led by a node other than node 1")

    victim, victim_id, led = pick_victim()
    print(f"\nkill 1: node {victim_id} ({victim.name}) leads partitions {led}")
    writer = Writer(through, "ack:")
    writer.start()
    # A linearizability history over a few keys spread over the partitions, through the node that
    # is never killed, for the whole first kill.
    history_keys = keys_in_partitions("lin-", range(16), slots, 1)[:8]
    recorders = [HistoryRecorder(through, i + 1, history_keys, seed=i) for i in range(4)]
    for r in recorders:
        r.start()
    failover_times = []
    try:
        wait_until(lambda: len(writer.acked) >= 100 or not writer.is_alive(), timeout=60,
                   message="writer did not get 100 acknowledgements")
        keys = keys_in_partitions(f"fo1-", led, slots, 20)
        t = asyncio.run(measure_failover(through, victim, keys))
        failover_times.append(t)
        t_kill = time.monotonic()
        # Writes (to every partition, through a surviving node) resume.
        wait_until(lambda: writer.acked_after(t_kill) >= 100 or not writer.is_alive(), timeout=60,
                   message="writes did not resume after kill -9")
        for n in c.nodes:
            if n is not victim:
                c.wait_node_ready(n, timeout=30)
    finally:
        writer.finish()
        for r in recorders:
            r.stop_flag.set()
        for r in recorders:
            r.join(timeout=WRITE_TIMEOUT + 5)
    report = check_history(recorders, c.tmp_path / "kill9-history.txt")
    print(f"history: {report.splitlines()[0]}")
    acked = [(k, v) for k, v, _ in writer.acked]
    print(f"writer: {len(acked)} acknowledged, errors {dict(writer.errors)}")
    survivors = [n for n in c.nodes if n is not victim]
    for n in survivors:
        assert_all_readable(n, acked, "after kill -9")

    # Two more kills, each after the previous victim restarted and the cluster converged again.
    for round_ in (2, 3):
        victim.start()
        c.wait_converged(timeout=60)
        victim, victim_id, led = pick_victim(previous=victim)
        if not led:
            print(f"kill {round_}: no node other than {through.name} leads a partition; not measured")
            continue
        print(f"kill {round_}: node {victim_id} ({victim.name}) leads partitions {led}")
        keys = keys_in_partitions(f"fo{round_}-", led, slots, 20)
        failover_times.append(asyncio.run(measure_failover(through, victim, keys)))
    victim.start()
    c.wait_converged(timeout=60)
    for n in c.nodes:
        assert_all_readable(n, acked, "after all restarts")

    shown = ", ".join("none within 30 s" if t is None else f"{t * 1000:.0f} ms" for t in failover_times)
    measured = sorted(t for t in failover_times if t is not None)
    median = f"{measured[len(measured) // 2] * 1000:.0f} ms" if measured else "n/a"
    print(f"FAILOVER kill -9 -> first OK write to an affected partition: {shown} (median {median})")
    assert all(t is not None for t in failover_times), f"an affected partition never took a write: {shown}"


def test_sigstop_node_then_it_catches_up(cluster_factory):
    c = cluster_factory.start(3, partitions=16)
    slots = c.partition_slots()
    through = c.nodes[0]
    wait_until(lambda: any(leader_counts(c, through).get(c.node_id(n), 0) > 0 for n in c.nodes[1:]),
               timeout=30, message="no partition is led by a node other than node 1")
    counts = leader_counts(c, through)
    stopped = max(c.nodes[1:], key=lambda n: counts.get(c.node_id(n), 0))
    stopped_id = c.node_id(stopped)
    led = sorted(p for p, leader in c.leaders(through).items() if leader == stopped_id)
    lin_keys = keys_in_partitions("lin-", led, slots, 1)
    w = through.client()
    for k in lin_keys:
        assert w.set(k, "before") is True

    writer = Writer(through, "stop:")
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) >= 50 or not writer.is_alive(), timeout=60,
                   message="writer did not get 50 acknowledgements")
        t_stop = time.monotonic()
        stopped.sigstop()
        try:
            # Overwrite keys the stopped node led; each waits for a new leader.
            wc = no_retry_client(through)
            for k in lin_keys:
                wait_until(lambda: wc.set(k, "after") is True, timeout=60, message=f"SET {k} after SIGSTOP")
            wc.close()
            # Keep the node stopped for about 3 s while the writer keeps getting acknowledgements.
            wait_until(lambda: time.monotonic() - t_stop >= 3.0 and writer.acked_after(t_stop) >= 20,
                       timeout=60, message="writes did not continue while a node was stopped")
        finally:
            stopped.sigcont()
        t_cont = time.monotonic()
        # A default (linearizable) read through the resumed node never returns the old value.
        r = no_retry_client(stopped)
        answers = []
        for k in lin_keys:
            try:
                got = r.get(k)
            except (redis.ResponseError, redis.TimeoutError) as exc:
                got = exc  # refusing is allowed; a stale answer is not
            answers.append(got)
            assert got == "after" or isinstance(got, Exception), \
                f"GET {k} on {stopped.name} right after SIGCONT returned {got!r}, acknowledged value is 'after'"
        r.close()
        print(f"\nGETs on the resumed node right after SIGCONT: {answers}")
        wait_until(lambda: writer.acked_after(t_cont) >= 20 or not writer.is_alive(), timeout=60,
                   message="writes did not continue after SIGCONT")
    finally:
        writer.finish()
    acked = [(k, v) for k, v, _ in writer.acked] + [(k, "after") for k in lin_keys]
    print(f"\nstopped {stopped.name} (node {stopped_id}, led {led}); writer: {len(acked)} acknowledged, "
          f"errors {dict(writer.errors)}")
    for n in c.nodes:
        assert_all_readable(n, acked, "after SIGSTOP/SIGCONT")

    # The stopped node catches up: READONLY reads of its own replica eventually return the latest values.
    final = ("catchup-final", f"final-{random.random()}")
    assert through.client().set(*final) is True
    wait_until(lambda: not check_keys(stopped, acked + [final], "catch-up", readonly=True), timeout=60,
               message=f"{stopped.name}'s replica did not catch up (READONLY reads)")
    c.wait_converged(timeout=60)


def test_full_cluster_restart_keeps_data(cluster_factory):
    c = cluster_factory.start(3, partitions=16)
    data = {}
    for i, node in enumerate(c.nodes):
        cl = node.client()
        batch = {f"full:{i}:{j}": f"v{i}.{j}" for j in range(100)}
        assert cl.mset(batch) is True
        for j in range(20):
            assert cl.set(f"one:{i}:{j}", f"w{j}") is True
            batch[f"one:{i}:{j}"] = f"w{j}"
        data.update(batch)
    ids_before = [n.client().execute_command("CLUSTER MYID") for n in c.nodes]
    codes = c.stop_all(signal.SIGTERM)
    assert codes == [0, 0, 0], f"exit codes after SIGTERM: {codes}"

    for n in c.nodes:
        n.start()  # no --join: a node restarted on its data directory rejoins its cluster
    c.wait_converged(timeout=60)
    items = sorted(data.items())
    for n in c.nodes:
        assert_all_readable(n, items, "after full restart")
    assert [n.client().execute_command("CLUSTER MYID") for n in c.nodes] == ids_before
    assert c.nodes[2].client().set("after-restart", "yes") is True
    assert c.nodes[0].client().get("after-restart") == "yes"


def test_five_nodes_replicate_and_spread_leaders(cluster_factory):
    partitions = 16
    c = cluster_factory.start(5, partitions=partitions)
    limit = math.ceil(partitions / 5) + 2
    wait_until(lambda: max(leader_counts(c).values()) <= limit, timeout=60,
               message=f"leaders not spread to at most {limit} per node: {leader_counts(c)}")
    c.wait_converged(timeout=30)
    m = c.nodes[4].cluster_map()
    replica_load = Counter(r for p in m["partitions"] for r in p["replicas"])
    for p in m["partitions"]:
        assert len(p["replicas"]) == 3 and len(set(p["replicas"])) == 3, p
    print(f"\nleaders per node: {dict(sorted(leader_counts(c).items()))}; "
          f"replicas per node: {dict(sorted(replica_load.items()))}")
    assert set(replica_load) == {1, 2, 3, 4, 5}, f"some node holds no replica: {replica_load}"

    clients = [n.client() for n in c.nodes]
    for i, cl in enumerate(clients):
        for j in range(20):
            assert cl.set(f"five:{i}:{j}", f"{i}-{j}") is True
    for cl in clients:
        for i in range(5):
            keys = [f"five:{i}:{j}" for j in range(20)]
            assert cl.mget(keys) == [f"{i}-{j}" for j in range(20)]


def test_bad_input_on_peer_port_closes_connection(cluster_factory):
    c = cluster_factory.start(3, partitions=16)
    target = c.nodes[1]
    before = metric_total(target.metrics(), "cairn_peer_connections_rejected_total")
    rng = random.Random(7)
    payloads = {
        "random bytes": bytes(rng.randrange(256) for _ in range(4096)),
        "http request": b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "resp command": encode_command("SET", "evil", "1"),
        "resp ping": b"PING\r\n",
    }
    for what, data in payloads.items():
        with socket.create_connection((HOST, target.peer_port), timeout=10) as s:
            s.settimeout(10)
            try:
                s.sendall(data)
            except OSError:
                pass  # already closed by the node: fine
            try:
                while s.recv(65536):
                    pass  # drain until the node closes the connection
            except ConnectionResetError:
                pass
            except socket.timeout:
                pytest.fail(f"peer port kept the connection open 10 s after {what}")
    # One rejection per connection.
    wait_until(lambda: metric_total(target.metrics(), "cairn_peer_connections_rejected_total")
               >= before + len(payloads), timeout=10,
               message=f"cairn_peer_connections_rejected_total did not grow by {len(payloads)}")
    lines = [ln for ln in target.metrics().splitlines() if ln.startswith("cairn_peer_connections_rejected_total")]
    print(f"\ncairn_peer_connections_rejected_total before: {before}, after: {lines}")

    # The node keeps serving clients and its peers; the cluster stays whole.
    assert target.client().ping() is True
    assert target.client().get("evil") is None
    for i, n in enumerate(c.nodes):
        assert n.client().mset({f"ok:{i}:{j}": str(j) for j in range(30)}) is True
    for n in c.nodes:
        for i in range(3):
            assert n.client().mget([f"ok:{i}:{j}" for j in range(30)]) == [str(j) for j in range(30)]
    c.wait_converged(timeout=30)


def test_planned_leadership_handoff_does_not_refuse_commands(cluster_factory):
    """Right after a cluster forms, node 1 leads every partition and the placement then hands each
    partition to its preferred leader (a voluntary Raft leadership transfer, no fault anywhere).
    Commands sent meanwhile should be served; a forwarding node can redispatch to the new leader."""
    c = cluster_factory.create(3, partitions=16).start(settled=False)
    slots = c.partition_slots()
    keys = keys_in_partitions("handoff-", range(16), slots, 2)
    errors: Counter = Counter()
    served = Counter()
    stop = threading.Event()

    def load(node):
        # Pipelines of a SET and a GET for every partition keep requests in flight at each handoff.
        cl = no_retry_client(node)
        i = 0
        try:
            while not stop.is_set():
                pipe = cl.pipeline(transaction=False)
                ops = []
                for k in keys:
                    pipe.set(k, str(i))
                    pipe.get(k)
                    ops += ["SET", "GET"]
                for op, got in zip(ops, pipe.execute(raise_on_error=False)):
                    if isinstance(got, redis.ResponseError):
                        errors[f"{op}: {type(got).__name__}: {got}"] += 1
                    else:
                        served[op] += 1
                i += 1
        finally:
            cl.close()

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in c.nodes for _ in range(2)]
    for t in threads:
        t.start()
    try:
        before = leader_counts(c)
        c.wait_converged(timeout=60, settled=True)
        after = leader_counts(c)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=WRITE_TIMEOUT + 5)
    print(f"\nleaders per node {dict(before)} -> {dict(after)}; served {dict(served)}; "
          f"refused {sum(errors.values())}:")
    for e, n in errors.most_common():
        print(f"  {n} x {e}")
    assert not errors, f"{sum(errors.values())} commands refused during planned leadership transfers: " \
        f"{errors.most_common(3)}"


def test_five_nodes_kill9_leader_every_survivor_serves_its_partitions(cluster_factory):
    c = cluster_factory.start(5, partitions=16)
    slots = c.partition_slots()
    victim = c.nodes[1]
    victim_id = c.node_id(victim)
    m = c.nodes[0].cluster_map()
    led = sorted(p["partition"] for p in m["partitions"] if p["leader"] == victim_id)
    assert led, f"node {victim_id} leads nothing: {leader_counts(c)}"
    replicas = {p["partition"]: p["replicas"] for p in m["partitions"]}
    survivors = [n for n in c.nodes if n is not victim]
    keys = dict(zip(led, keys_in_partitions("survivor-", led, slots, 1)))
    victim.kill9()

    results: dict[tuple[str, int], object] = {}
    deadline = time.monotonic() + 20  # failover takes about 0.1 s; a hung forward costs 5 s

    def write(node, partition):
        cl = no_retry_client(node)
        last = None
        try:
            while time.monotonic() < deadline:
                try:
                    if cl.set(keys[partition], node.name) is True:
                        results[(node.name, partition)] = "OK"
                        return
                except redis.RedisError as exc:
                    last = f"{type(exc).__name__}: {exc}"  # a refusal already took up to 5 s: retry at once
            results[(node.name, partition)] = last
        finally:
            cl.close()

    threads = [threading.Thread(target=write, args=(n, p), daemon=True) for n in survivors for p in led]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    failed = {k: v for k, v in results.items() if v != "OK"}
    ids = {n.name: c.node_id(n) for n in survivors}
    print(f"\nkilled node {victim_id}, which led {led}; replicas {[(p, replicas[p]) for p in led]}")
    for (name, p), v in sorted(failed.items()):
        print(f"  via {name} (node {ids[name]}, hosts partition {p}: {ids[name] in replicas[p]}): {v}")
    assert len(results) == len(threads)
    assert not failed, f"{len(failed)} of {len(results)} (surviving node, partition) pairs never took a write"


def test_join_while_a_node_is_down_converges_and_serves(cluster_factory):
    c = cluster_factory.start(3, partitions=16)
    slots = c.partition_slots()
    down = c.nodes[2]
    down.kill9()
    joiner = ClusterNode(c.tmp_path / "c0-data4", c.tmp_path / "logs", "c0-node4", fsync=None,
                         join=f"{HOST}:{c.nodes[0].peer_port}")
    c.nodes.append(joiner)
    joiner.start()
    live = [c.nodes[0], c.nodes[1], joiner]
    wait_until(lambda: len(c.nodes[0].cluster_map()["nodes"]) == 4, timeout=30, message="node 4 not admitted")
    try:
        # Every partition keeps a live majority throughout, so the moves can complete.
        c.wait_converged(timeout=20, nodes=live, settled=False)
    finally:
        m = c.nodes[0].cluster_map()
        stuck = [p for p in m["partitions"] if "voters" in p and sorted(p["voters"]) != sorted(p["replicas"])]
        refusals = Counter()
        cl = no_retry_client(c.nodes[1])
        for p in stuck:
            k = keys_in_partitions("jw-", [p["partition"]], slots, 1)[0]
            for _ in range(10):
                try:
                    refusals[(p["partition"], str(cl.set(k, "v")))] += 1
                except redis.RedisError as exc:
                    refusals[(p["partition"], str(exc))] += 1
        cl.close()
        print(f"\nnot converged (partition, leader, voters, replicas): "
              f"{[(p['partition'], p['leader'], p['voters'], p['replicas']) for p in stuck]}")
        print(f"10 SETs per such partition through node 2: {dict(refusals)}")


def test_logs_compacted_dead_node_replaced_and_placed_again(cluster_factory):
    """Logs are compacted into snapshots; a node killed for longer than --dead-node-timeout is marked
    dead and its replicas rebuilt on the live nodes (from snapshots: the entries are gone); restarted,
    it is marked active, placed again, and serves every key."""
    c = cluster_factory.start(4, partitions=8, node_args=["--snapshot-entries", "40", "--dead-node-timeout", "2s"])
    first = c.nodes[0]
    cl = first.client()
    items = [(f"snap:{i}", f"v{i}") for i in range(400)]
    for k, v in items:
        assert cl.set(k, v) is True

    def compacted():
        parts = json.loads(first.http("/v1/partitions")[1])["partitions"]
        return all(p.get("snapshot_index", 0) > 0 for p in parts if "snapshot_index" in p)
    wait_until(compacted, timeout=30, message="logs were not compacted on node 1")
    assert metric_total(first.metrics(), 'cairn_raft_snapshots_total{kind="created"}') > 0

    victim = c.nodes[3]
    victim_id = 4
    victim.kill9()
    live = c.nodes[:3]

    def state_of(node_id):
        return {n["id"]: n["state"] for n in first.cluster_map()["nodes"]}[node_id]
    wait_until(lambda: state_of(victim_id) == "dead", timeout=30, message="node 4 was not marked dead")
    m = first.cluster_map()
    assert all(victim_id not in p["replicas"] and len(p["replicas"]) == 3 for p in m["partitions"]), m["partitions"]
    c.wait_converged(timeout=60, nodes=live, settled=False)
    assert_all_readable(c.nodes[1], items, "after the dead node's replicas were rebuilt")
    # Writes while it is away: the leaders compact past everything the dead node has.
    more = [(f"snap2:{i}", f"w{i}") for i in range(400)]
    cl2 = c.nodes[1].client()
    for k, v in more:
        assert cl2.set(k, v) is True
    items += more

    victim.start()
    wait_until(lambda: state_of(victim_id) == "active", timeout=30, message="node 4 was not marked active again")
    c.wait_converged(timeout=60, settled=False)
    assert any(victim_id in p["replicas"] for p in first.cluster_map()["partitions"]), "node 4 got no replicas back"
    assert_all_readable(victim, items, "through the returning node")
    restored = metric_total(victim.metrics(), 'cairn_raft_snapshots_total{kind="restored"}')
    print(f"\nnode 4 restored {restored} snapshots")
    assert restored > 0, "node 4's replicas should have caught up from snapshots"
