#!/usr/bin/env python3
"""Helpers of tools/rebalance-bench.sh (standard library only; RESP and cluster-map helpers are
cluster_bench.py's).

  fill     writes keys key:000000000000 .. key:<N-1> (100-byte values by default), each exactly
           once: keys are grouped by partition (slot ranges from /v1/cluster) and sent as MSETs of
           --batch keys of one partition to its leader, --window MSETs in flight per connection.
           A batch answered MOVED goes to the named node; TRYAGAIN, CLUSTERDOWN and the like are
           sent again after 100 ms. Then waits until the nodes' cairn_keys sum to replicas x N
           (every replica applied every key). Prints one JSON object, with the keys per partition.
  traffic  open-loop GET/SET (--get-ratio) of random filled keys at --rate requests per second
           until SIGTERM. Each request takes an idle connection to its slot's owner (CLUSTER
           SLOTS, refreshed every second in a thread; a MOVED reply is followed and updates the
           table), or opens one. Latency is from the request's *scheduled* time to its reply, so a
           stalled client or server cannot hide its delay. A request without a reply within
           --timeout counts as "timeout" (its connection is closed). A GET of a filled key that
           answers nil counts as "nil" (data not found: should never happen). Appends one TSV
           line per request to --out: scheduled wall time, op, latency ms, result, redirections
           followed, key number.
  state    one JSON snapshot of the cluster: /v1/cluster of the first reachable node, and each
           node's /v1/rebalance summary and /metrics samples.
  watch    after a join: polls `cairn ctl rebalance status` and /v1/cluster every --interval s
           until the map has --nodes active nodes, the new node holds replicas and ctl prints
           "rebalance: done" (placed), then until every partition is led by its preferred leader
           (settled). Writes a timeline (JSON lines) to --timeline; prints one JSON object.
  report   reads the files above and prints the report with the issue's goals.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

from cluster_bench import HOST, blocking_call, cluster_map, encode, http_json, key_slot, parse_addr

KEY_FORMAT = b"key:%012d"


def value_for(index: int, size: int) -> bytes:
    """The value of key index: its number, then dots up to size bytes (so a GET can be checked)."""
    head = b"v%011d" % index
    return (head + b"." * max(0, size - len(head)))[:size]


class RespError(Exception):
    """An error reply (-ERR ..., -MOVED ...): a value, not a failure of the parser."""

    @property
    def kind(self) -> str:
        return str(self).split(" ", 1)[0]


def parse_reply(buf: bytes, pos: int):
    """One RESP2/3 reply at buf[pos:]: (value, next pos), or None if incomplete. Errors are RespError values."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    t, rest = buf[pos:pos + 1], buf[pos + 1:end]
    if t == b"+":
        return rest, end + 2
    if t == b"-":
        return RespError(rest.decode(errors="replace")), end + 2
    if t == b":":
        return int(rest), end + 2
    if t == b"_":
        return None, end + 2
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None, end + 2
        stop = end + 2 + n + 2
        return (buf[end + 2:end + 2 + n], stop) if len(buf) >= stop else None
    if t == b"*":
        n = int(rest)
        items, p = [], end + 2
        for _ in range(max(n, 0)):
            got = parse_reply(buf, p)
            if got is None:
                return None
            items.append(got[0])
            p = got[1]
        return (None if n < 0 else items), p
    raise RuntimeError(f"unexpected reply: {buf[pos:pos + 80]!r}")


def moved_addr(err: RespError):
    """(host, port) of "MOVED slot host:port" or "ASK slot host:port", else None."""
    parts = str(err).split()
    if len(parts) == 3 and parts[0] in ("MOVED", "ASK"):
        return parse_addr(parts[2])
    return None


def client_addr_of_node(m: dict) -> dict[int, tuple[str, int]]:
    return {n["id"]: parse_addr(n["client"]) for n in m["nodes"]}


def any_cluster_map(ports: list[int]) -> dict:
    last = None
    for port in ports:
        try:
            return cluster_map(port)
        except (OSError, ValueError, RuntimeError) as exc:
            last = exc
    raise RuntimeError(f"no node answered /v1/cluster: {last}")


def metrics(port: int) -> dict[str, float]:
    """Every sample of a node's /metrics: 'name{labels}' -> value."""
    status, body = http_json(port + 20000, "/metrics", timeout=5.0)
    if status != 200:
        raise RuntimeError(f"/metrics of {port} -> {status}")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def progress(msg: str):
    print(f"rebalance-bench: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- fill


def cmd_fill(a) -> int:
    ports = [int(x) for x in a.ports.split(",")]
    m = cluster_map(ports[0])
    partition_of_slot = [0] * 16384
    for p in m["partitions"]:
        lo, hi = p["slots"]
        for s in range(lo, hi + 1):
            partition_of_slot[s] = p["partition"]
    addr_of = client_addr_of_node(m)
    leader_of = {p["partition"]: addr_of[p["leader"]] for p in m["partitions"]}
    by_partition: dict[int, list[int]] = collections.defaultdict(list)
    for i in range(a.keys):
        by_partition[partition_of_slot[key_slot(KEY_FORMAT % i)]].append(i)
    # One queue of batches per node address; a batch is (partition, key indices).
    queues: dict[tuple, collections.deque] = collections.defaultdict(collections.deque)
    for p, idx in sorted(by_partition.items()):
        for j in range(0, len(idx), a.batch):
            queues[leader_of[p]].append((p, idx[j:j + a.batch]))
    total_batches = sum(len(q) for q in queues.values())
    keys_at_start = sum(metrics(p).get("cairn_keys", 0) for p in ports)  # 0 on a fresh cluster

    sel = selectors.DefaultSelector()
    conns: dict[tuple, list] = {}  # addr -> [sock, buf, deque of in-flight batches]
    later: list = []  # (time, batch) to send again

    def conn(addr):
        c = conns.get(addr)
        if c is None:
            s = socket.create_connection(addr, timeout=5.0)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            c = conns[addr] = [s, b"", collections.deque()]
            sel.register(s, selectors.EVENT_READ, addr)
        return c

    def pump(addr):
        c, q = conn(addr), queues[addr]
        out = []
        while q and len(c[2]) < a.window:
            batch = q.popleft()
            args = [b"MSET"]
            for i in batch[1]:
                args += [KEY_FORMAT % i, value_for(i, a.data_size)]
            out.append(encode(*args))
            c[2].append(batch)
        if out:
            c[0].setblocking(True)  # a big pipeline: let sendall block rather than fail part-way
            c[0].sendall(b"".join(out))
            c[0].setblocking(False)

    retries: collections.Counter = collections.Counter()
    done_batches = 0
    t0 = time.monotonic()
    last_note = t0
    deadline = t0 + a.timeout
    for addr in list(queues):
        pump(addr)
    while done_batches < total_batches:
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"fill: {done_batches}/{total_batches} batches done after {a.timeout} s; retries {dict(retries)}")
        if now - last_note > 5:
            last_note = now
            progress(f"fill: {done_batches * 100 // total_batches}% of {a.keys} keys ({now - t0:.0f} s)")
        for when, batch in [x for x in later if x[0] <= now]:
            later.remove((when, batch))
            addr = leader_of[batch[0]]
            queues[addr].append(batch)
            pump(addr)
        for key, _ in sel.select(timeout=0.1):
            addr = key.data
            c = conns[addr]
            try:
                data = c[0].recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError(f"fill: connection to {addr} closed by the server")
            c[1] += data
            pos = 0
            while True:
                got = parse_reply(c[1], pos)
                if got is None:
                    break
                reply, pos = got
                batch = c[2].popleft()
                if isinstance(reply, RespError):
                    retries[reply.kind] += 1
                    target = moved_addr(reply)
                    if target is not None:
                        leader_of[batch[0]] = target
                        queues[target].append(batch)
                        pump(target)
                    else:
                        later.append((time.monotonic() + 0.1, batch))
                else:
                    done_batches += 1
            c[1] = c[1][pos:]
            pump(addr)
    load_seconds = time.monotonic() - t0
    for c in conns.values():
        c[0].close()

    # Every replica must have applied every key before the join: the nodes' cairn_keys sum to replicas x N.
    replicas = len(m["partitions"][0]["replicas"])
    want = keys_at_start + replicas * a.keys
    have = 0
    while time.monotonic() < deadline:
        have = sum(metrics(p).get("cairn_keys", 0) for p in ports)
        if have == want:
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"fill: the nodes hold {have:.0f} keys, not {keys_at_start:.0f} + {replicas} x {a.keys}")
    compacted_seconds = None
    if a.compacted:
        # Wait until every node has taken at least as many snapshots as it hosts partition groups
        # and has taken none for 3 s (compaction runs at most 4 groups a second, so a backlog shows):
        # then every log is compacted and a new replica must be sent a snapshot.
        hosts = collections.Counter(r for p in m["partitions"] for r in p["replicas"])
        node_of_port = {addr[1]: n for n, addr in client_addr_of_node(m).items()}
        name = 'cairn_raft_snapshots_total{kind="created"}'
        last, still_since = None, time.monotonic()
        compaction_deadline = time.monotonic() + 180
        while True:
            created = {p: metrics(p).get(name, 0) for p in ports}
            if created != last:
                last, still_since = created, time.monotonic()
            enough = all(v >= hosts[node_of_port[p]] for p, v in created.items())
            if enough and time.monotonic() - still_since >= 3:
                break
            if time.monotonic() > min(deadline, compaction_deadline):
                entries = metrics(ports[0]).get("cairn_raft_log_entries", 0) / (hosts[node_of_port[ports[0]]] + 1)
                raise RuntimeError(f"fill: logs not compacted within 180 s (snapshots created per node: {created});"
                                   f" the groups hold about {entries:.0f} log entries each: --snapshot-entries must"
                                   " be below that (the fill writes one entry per MSET of --batch keys)")
            time.sleep(0.5)
        compacted_seconds = round(time.monotonic() - t0, 2)
    print(json.dumps({
        "keys": a.keys, "data_size": a.data_size, "compacted_seconds": compacted_seconds, "key_size": len(KEY_FORMAT % 0),
        "batch": a.batch, "window": a.window, "load_seconds": round(load_seconds, 2),
        "keys_per_second": round(a.keys / load_seconds), "replicated_seconds": round(time.monotonic() - t0, 2),
        "retries": dict(retries), "replicas": replicas,
        "keys_per_partition": {str(p): len(v) for p, v in sorted(by_partition.items())},
    }))
    return 0


# --------------------------------------------------------------------------- traffic


class SlotTable:
    """slot -> owner address, refreshed from CLUSTER SLOTS every second by a daemon thread."""

    def __init__(self, seeds: list[tuple[str, int]]):
        self.seeds = seeds
        self.table = self.fetch()
        self.refreshes = 0
        self.failures = 0
        threading.Thread(target=self.loop, daemon=True).start()

    def fetch(self):
        last = None
        for addr in self.seeds:
            try:
                table = [None] * 16384
                for entry in blocking_call(addr, "CLUSTER", "SLOTS", timeout=2.0):
                    owner = entry[2]
                    host = owner[0].decode() if isinstance(owner[0], bytes) else owner[0]
                    for s in range(entry[0], entry[1] + 1):
                        table[s] = (host, int(owner[1]))
                if None not in table:
                    return table
                last = "slots without an owner"
            except (OSError, RuntimeError, ValueError) as exc:
                last = exc
        raise RuntimeError(f"CLUSTER SLOTS failed on every seed: {last}")

    def loop(self):
        while True:
            time.sleep(1.0)
            try:
                self.table = self.fetch()
                self.seeds = sorted(set(t for t in self.table)) or self.seeds
                self.refreshes += 1
            except RuntimeError:
                self.failures += 1


def cmd_traffic(a) -> int:
    seeds = [(HOST, int(p)) for p in a.ports.split(",")]
    slots = SlotTable(seeds)
    rng = random.Random(a.seed)
    sel = selectors.DefaultSelector()
    idle: dict[tuple, list[socket.socket]] = collections.defaultdict(list)
    inflight: dict[socket.socket, list] = {}  # sock -> [addr, buf, scheduled perf, wall, op, index, key, hops]
    out = open(a.out, "a", buffering=1 << 16)
    stopping = False
    stop_at = 0.0

    def stop(*_):
        nonlocal stopping, stop_at
        if not stopping:
            stopping, stop_at = True, time.perf_counter()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def record(req, now, result):
        out.write(f"{req[3]:.6f}\t{req[4]}\t{(now - req[2]) * 1000:.3f}\t{result}\t{req[7]}\t{req[5]}\n")

    def close(sock):
        sel.unregister(sock)
        sock.close()
        inflight.pop(sock, None)

    def send(req, addr, now):
        """Send req to addr on an idle connection (or a new one); on a connect failure record it."""
        sock = idle[addr].pop() if idle[addr] else None
        if sock is None:
            try:
                sock = socket.create_connection(addr, timeout=1.0)
            except OSError as exc:
                record(req, now, f"connect:{type(exc).__name__}")
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
        req[0], req[1] = addr, b""
        inflight[sock] = req
        value = value_for(req[5], a.data_size)
        try:
            sock.send(encode(b"GET", req[6]) if req[4] == "get" else encode(b"SET", req[6], value))
        except OSError as exc:
            close(sock)
            record(req, now, f"send:{type(exc).__name__}")

    t0 = time.perf_counter()
    wall0 = time.time()
    sent = 0
    last_timeout_check = t0
    while not stopping or inflight:
        now = time.perf_counter()
        # Open loop: request i is due at t0 + i / rate, whatever happened to the ones before it.
        while not stopping and t0 + sent / a.rate <= now:
            due = t0 + sent / a.rate
            index = rng.randrange(a.keys)
            key = KEY_FORMAT % index
            op = "get" if rng.random() < a.get_ratio else "set"
            req = [None, b"", due, wall0 + (due - t0), op, index, key, 0]
            send(req, slots.table[key_slot(key)], now)
            sent += 1
        if stopping and now - stop_at > a.timeout + 1:
            break  # in-flight requests drained or timed out
        wait = max(0.0, min(0.05, t0 + sent / a.rate - time.perf_counter()))
        for key, _ in sel.select(timeout=wait):
            sock = key.fileobj
            req = inflight.get(sock)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            now = time.perf_counter()
            if req is None:  # an idle connection the server closed (or a stray byte): drop it
                for lst in idle.values():
                    if sock in lst:
                        lst.remove(sock)
                sel.unregister(sock)
                sock.close()
                continue
            if not data:
                close(sock)
                record(req, now, "closed")
                continue
            req[1] += data
            got = parse_reply(req[1], 0)
            if got is None:
                continue
            reply = got[0]
            del inflight[sock]
            idle[req[0]].append(sock)
            if isinstance(reply, RespError):
                target = moved_addr(reply)
                if target is not None and req[7] < 5:
                    req[7] += 1
                    if reply.kind == "MOVED":
                        slots.table[key_slot(req[6])] = target
                    send(req, target, now)
                else:
                    record(req, now, reply.kind)
            elif req[4] == "get" and reply is None:
                record(req, now, "nil")
            else:
                record(req, now, "ok")
        now = time.perf_counter()
        if now - last_timeout_check > 0.1:
            for sock, req in list(inflight.items()):
                if now - req[2] > a.timeout:
                    close(sock)  # a late reply must not be taken for the next request's
                    record(req, now, "timeout")
            last_timeout_check = now
    out.close()
    print(json.dumps({"sent": sent, "seconds": round(time.perf_counter() - t0, 2),
                      "slot_refreshes": slots.refreshes, "slot_refresh_failures": slots.failures}))
    return 0


# --------------------------------------------------------------------------- state and watch


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc (None if it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cmd_state(a) -> int:
    ports = [int(x) for x in a.ports.split(",")]
    state = {"time": time.time(), "cluster": any_cluster_map(ports), "nodes": {},
             "cpu_seconds": {pid: cpu_seconds(int(pid)) for pid in a.pids.split(",") if pid},
             "loadavg": open("/proc/loadavg").read().split()[:3]}
    for port in ports:
        node = {}
        try:
            node["metrics"] = metrics(port)
            status, body = http_json(port + 20000, "/v1/rebalance", timeout=5.0)
            summary = json.loads(body)
            summary.pop("partitions", None)
            node["rebalance"] = summary
        except (OSError, ValueError, RuntimeError) as exc:
            node["error"] = str(exc)
        state["nodes"][str(port)] = node
    json.dump(state, open(a.out, "w"))
    return 0


def ctl_status(cairn: str, http_port: int) -> str:
    try:
        r = subprocess.run([cairn, "ctl", "rebalance", "status", "--addr", f"{HOST}:{http_port}"],
                           capture_output=True, text=True, timeout=15)
        return r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        return "ctl timed out"


def merged_map(ports: list[int]) -> dict:
    """/v1/cluster of the first reachable node, each partition's voters and leader taken from the
    nodes that host it (a node lists voters only for the groups it is a member of): the entry of
    the highest term, then the highest commit index."""
    maps = []
    for port in ports:
        try:
            maps.append(cluster_map(port))
        except (OSError, ValueError, RuntimeError):
            pass
    if not maps:
        raise RuntimeError("no node answered /v1/cluster")
    m = max(maps, key=lambda x: x.get("epoch", 0))
    for p in m["partitions"]:
        views = [x["partitions"][p["partition"]] for x in maps if "voters" in x["partitions"][p["partition"]]]
        if views:
            best = max(views, key=lambda v: (v.get("term", 0), v.get("commit", 0)))
            p["voters"], p["leader"] = best["voters"], best["leader"]
    return m


def cmd_watch(a) -> int:
    ports = [int(x) for x in a.ports.split(",")]
    timeline = open(a.timeline, "a")
    t0 = time.time()
    placed_at = settled_at = previous_poll = None
    text = ""
    while time.time() - t0 < a.timeout:
        now = time.time()
        try:
            m = merged_map(ports)
        except RuntimeError as exc:
            timeline.write(json.dumps({"t": now, "error": str(exc)}) + "\n")
            time.sleep(a.interval)
            continue
        active = [n["id"] for n in m["nodes"] if n["state"] == "active"]
        hosted = collections.Counter(r for p in m["partitions"] for r in p["replicas"])
        joined = len(active) == a.nodes and all(hosted[n] > 0 for n in active)
        # By /v1/cluster: voters differ from the map's replicas, and leaders other than the preferred.
        moving = sum(1 for p in m["partitions"] if sorted(p.get("voters", [])) != sorted(p["replicas"]))
        unsettled = sum(1 for p in m["partitions"] if p.get("leader") != p["replicas"][0])
        if joined and placed_at is None:
            text = ctl_status(a.cairn, ports[0] + 20000)
        snap = peer = 0
        for port in ports:
            try:
                sample = metrics(port)
            except (OSError, RuntimeError):
                continue
            snap += sample.get('cairn_rebalance_snapshot_bytes_total{direction="sent"}', 0)
            peer += sample.get("cairn_peer_bytes_sent_total", 0)
        timeline.write(json.dumps({"t": round(now, 3), "epoch": m.get("epoch"), "active": len(active),
                                   "voters_differ": moving, "not_preferred_leader": unsettled,
                                   "snapshot_bytes_sent": snap, "peer_bytes_sent": peer,
                                   "ctl": [x for x in text.splitlines() if x.startswith(("partitions", "rebalance"))]})
                       + "\n")
        timeline.flush()
        if placed_at is None and not ("rebalance: done" in text and joined):
            previous_poll = now
        if placed_at is None and joined and "rebalance: done" in text:
            placed_at = now
            timeline.write(json.dumps({"t": round(now, 3), "placed": True, "peer_bytes_sent": peer}) + "\n")
            progress(f"rebalance done {now - a.since:.1f} s after the join (ctl rebalance status);"
                     f" by /v1/cluster voters differ from the map in {moving} partitions,"
                     f" {unsettled} not led by their preferred leader")
        if placed_at is not None and unsettled == 0 and moving == 0:
            settled_at = now
            break
        if placed_at is not None and now - placed_at > a.settle_timeout:
            break
        time.sleep(a.interval)
    print(json.dumps({"placed_at": placed_at, "previous_poll_at": previous_poll, "settled_at": settled_at,
                      "ctl_at_done": text}))
    return 0 if placed_at is not None else 1


# --------------------------------------------------------------------------- report


def read_latencies(path: str) -> list[tuple[float, str, float, str, int]]:
    """(scheduled wall time, op, latency ms, result, key number) per request."""
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) >= 6:
            rows.append((float(f[0]), f[1], float(f[2]), f[3], int(f[5])))
    return rows


def window(rows, lo: float, hi: float) -> dict:
    """Latency percentiles of the requests scheduled in [lo, hi): every request, an error or a
    timeout at the time it failed (a timeout at --timeout), so that failures cannot hide the tail."""
    sel = [r for r in rows if lo <= r[0] < hi]
    every = sorted(r[2] for r in sel)
    errors = collections.Counter(r[3] for r in sel if r[3] != "ok")

    def pct(p):
        return every[min(len(every) - 1, int(p * len(every)))] if every else None
    return {"seconds": round(hi - lo, 1), "requests": len(sel), "errors": dict(errors),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": every[-1] if every else None}


def counts(values, ids) -> tuple[int, float]:
    c = collections.Counter(values)
    per = [c.get(i, 0) for i in ids]
    return max(per), sum(per) / len(per)


def goal(ok: bool) -> str:
    return "met" if ok else "NOT met"


def move_starts(log_paths: list[str]) -> list[float]:
    """Wall times at which a leader took a move's first step (the node logs' "membership step" lines
    with change="add-learner N"), sorted."""
    import datetime
    import re
    pattern = re.compile(r'ts=(\S+) .*msg="membership step" group=\d+ change="add-learner \d+"')
    starts = []
    for path in log_paths:
        try:
            for line in open(path, errors="replace"):
                m = pattern.search(line)
                if m:
                    starts.append(datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp())
        except OSError:
            continue
    return sorted(starts)


def slow_by_move_phase(rows, starts: list[float], lo: float, hi: float, threshold_ms: float) -> str:
    """Share of the requests scheduled in [lo, hi) slower than threshold_ms, by time since the last move
    started (50 ms bins, the last bin open-ended): where in a move's life the slow requests fall."""
    import bisect
    total = collections.Counter()
    slow = collections.Counter()
    for r in rows:
        if not lo <= r[0] < hi:
            continue
        i = bisect.bisect_right(starts, r[0]) - 1
        if i < 0:
            continue
        b = min(int((r[0] - starts[i]) / 0.05), 10)
        total[b] += 1
        slow[b] += r[2] > threshold_ms
    return "  ".join(f"{b * 50}{'+' if b == 10 else ''}ms {100 * slow[b] / total[b]:.1f}% of {total[b]}"
                     for b in sorted(total))


def cmd_report(a) -> int:
    fill = json.load(open(a.fill))
    before = json.load(open(a.before))
    after = json.load(open(a.after))
    watch = json.load(open(a.watch))
    rows = read_latencies(a.latency)
    mb, ma = before["cluster"], after["cluster"]
    n_before = len([n for n in mb["nodes"] if n["state"] == "active"])
    ids_after = [n["id"] for n in ma["nodes"] if n["state"] == "active"]
    new_ids = sorted(set(ids_after) - {n["id"] for n in mb["nodes"]})
    parts_b = {p["partition"]: p for p in mb["partitions"]}
    parts_a = {p["partition"]: p for p in ma["partitions"]}
    P = len(parts_a)
    R = len(ma["partitions"][0]["replicas"])

    # Replica moves: a replica on a node that did not hold the partition before.
    record_bytes = fill["key_size"] + fill["data_size"]
    part_bytes = {int(p): n * record_bytes for p, n in fill["keys_per_partition"].items()}
    moves = changed = moved_bytes = leader_changes = 0
    for p, pa in parts_a.items():
        added = set(pa["replicas"]) - set(parts_b[p]["replicas"])
        moves += len(added)
        changed += bool(added)
        moved_bytes += len(added) * part_bytes.get(p, 0)
        leader_changes += pa["replicas"][0] != parts_b[p]["replicas"][0]
    optimum = P * R // (n_before + 1)
    data_bytes = fill["keys"] * record_bytes  # one copy
    optimum_bytes = R * data_bytes / (n_before + 1)

    def total(state, name):
        return sum(n.get("metrics", {}).get(name, 0) for n in state["nodes"].values())
    snap_name = 'cairn_rebalance_snapshot_bytes_total{direction="sent"}'
    snap_sent = total(after, snap_name) - total(before, snap_name)
    # Peer bytes from the join to "rebalance: done", less what the load alone sent before the join.
    start = json.load(open(a.start))
    peer_name = "cairn_peer_bytes_sent_total"
    peer_rate = (total(before, peer_name) - total(start, peer_name)) / (before["time"] - start["time"])
    placed_line = [json.loads(x) for x in open(a.timeline) if '"placed"' in x]
    peer_sent = (placed_line[0]["peer_bytes_sent"] - total(before, peer_name)) if placed_line else None
    keys_after = total(after, "cairn_keys")
    created = 'cairn_raft_snapshots_total{kind="created"}'
    restored = 'cairn_raft_snapshots_total{kind="restored"}'

    def cpu(state) -> float:
        return sum(v or 0 for v in state.get("cpu_seconds", {}).values())
    cpu_before = (cpu(before) - cpu(start)) / (before["time"] - start["time"])
    cpu_during = (cpu(after) - cpu(before)) / (after["time"] - before["time"])
    campaigns = "cairn_raft_campaigns_total"
    steps = "cairn_rebalance_membership_steps_total"
    rep_max, rep_mean = counts([r for p in parts_a.values() for r in p["replicas"]], ids_after)
    pref_max, pref_mean = counts([p["replicas"][0] for p in parts_a.values()], ids_after)
    lead_max, lead_mean = counts([p["leader"] for p in parts_a.values()], ids_after)
    per_node = collections.Counter(r for p in parts_a.values() for r in p["replicas"])
    pref_node = collections.Counter(p["replicas"][0] for p in parts_a.values())

    t_join, placed, settled = a.t_join, watch["placed_at"], watch["settled_at"]
    w_before = window(rows, a.t_traffic + a.warmup, t_join)
    # The leader hand-offs to the new node come after the replicas are placed: the window runs until
    # every preferred leader leads, so the after window starts where it ends and nothing is left out.
    during_end = settled or placed
    w_during = window(rows, t_join, during_end)
    w_after = window(rows, settled or placed, a.t_end)
    elapsed = placed - t_join

    print(f"Rebalance: node {', '.join(map(str, new_ids))} joins {n_before} nodes; {P} partitions x {R} replicas;"
          f" {fill['keys']} keys x {record_bytes} bytes (key {fill['key_size']} + value {fill['data_size']})")
    print(f"fill: {fill['keys']} keys in {fill['load_seconds']} s ({fill['keys_per_second']} keys/s, MSET of"
          f" {fill['batch']} keys of one partition), on every replica after {fill['replicated_seconds']} s;"
          f" retries {fill['retries'] or 'none'}")
    print()
    previous = watch.get("previous_poll_at")
    print(f"time to finish: {elapsed:.1f} s from starting the node to 'rebalance: done'"
          + (f" (the poll before saw it not done at {previous - t_join:.1f} s)" if previous else "")
          + (f"; preferred leaders all in place after {settled - t_join:.1f} s" if settled
             else "; preferred leaders NOT all in place when the watch ended"))
    print(f"partitions whose replica set changed: {changed}/{P} = {changed / P:.3f}")
    print(f"replica moves: {moves} (optimum {optimum} = {P} x {R} / {n_before + 1}): {moves / optimum:.3f} x optimum;"
          f" preferred leaders changed: {leader_changes}")
    print(f"data moved (keys of the moved replicas, from the fill): {moved_bytes / 1e6:.1f} MB; optimum"
          f" {R} x {data_bytes / 1e6:.1f} MB / {n_before + 1} = {optimum_bytes / 1e6:.1f} MB: {moved_bytes / optimum_bytes:.3f} x")
    print(f"snapshot bytes sent (cairn_rebalance_snapshot_bytes_total sent, all nodes, during the run):"
          f" {snap_sent / 1e6:.1f} MB = {snap_sent / optimum_bytes:.3f} x optimum bytes"
          f" (counts moves and followers sent a snapshot after a compaction; a learner can also catch up"
          f" from the log, which this does not count)")
    if peer_sent is not None:
        extra = peer_sent - peer_rate * (placed - before["time"])
        print(f"peer bytes sent, all nodes, join to done: {peer_sent / 1e6:.1f} MB; less the load's"
              f" {peer_rate / 1e3:.0f} kB/s before the join: {extra / 1e6:.1f} MB = {extra / optimum_bytes:.2f} x optimum"
              f" bytes (every peer message: log entries, heartbeats, snapshots)")
    print(f"raft snapshots during the run: created {total(after, created) - total(before, created):.0f},"
          f" restored {total(after, restored) - total(before, restored):.0f};"
          f" keys on all nodes after: {keys_after:.0f} ({R} x {fill['keys']} = {R * fill['keys']})")
    # cairn_raft_campaigns_total is summed over the groups a node hosts: a dropped replica takes its
    # count away, so the difference is only a lower bound.
    elections = max(0, total(after, campaigns) - total(before, campaigns))

    def term_max(state) -> float:
        return max(n.get("metrics", {}).get("cairn_raft_term_max", 0) for n in state["nodes"].values())
    print(f"membership steps: {total(after, steps) - total(before, steps):.0f} (a move is 3: add learner, promote,"
          f" remove); elections started from the join to done: at least {elections:.0f}"
          f" ({total(before, campaigns) - total(start, campaigns):.0f} in the {before['time'] - start['time']:.0f} s before);"
          f" highest Raft term {term_max(before):.0f} before, {term_max(after):.0f} at done")
    print(f"CPU of the cairn processes: {cpu_before:.2f} cores before the join, {cpu_during:.2f} from the join to the end of the watch"
          f" ({os.cpu_count()} on the machine; load average {' '.join(before.get('loadavg', []))} at the join)")
    print(f"replicas per node after: {dict(sorted(per_node.items()))}: max/mean {rep_max}/{rep_mean:.1f} = {rep_max / rep_mean:.3f}")
    print(f"preferred leaders per node after: {dict(sorted(pref_node.items()))}: max/mean {pref_max}/{pref_mean:.1f}"
          f" = {pref_max / pref_mean:.3f}; actual leaders max/mean {lead_max}/{lead_mean:.1f} = {lead_max / lead_mean:.3f}")
    print()
    print(f"client latency, open loop at {a.rate} requests/s, {a.get_ratio:.0%} GET / {1 - a.get_ratio:.0%} SET of filled keys"
          " (ms from the scheduled send time;"
          " errors and timeouts count at the time they failed):")
    print(f"{'window':<34} {'seconds':>7} {'requests':>8} {'p50':>8} {'p99':>8} {'max':>8}  errors")
    for name, w in (("before the join", w_before), ("during (join -> leaders settled)", w_during),
                    ("after (leaders settled -> end)", w_after)):
        def f(x):
            return f"{x:8.2f}" if x is not None else f"{'-':>8}"
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(w["errors"].items())) or "none"
        print(f"{name:<34} {w['seconds']:>7} {w['requests']:>8} {f(w['p50_ms'])} {f(w['p99_ms'])} {f(w['max_ms'])}  {errs}")
    partition_of_slot = {}
    for p in ma["partitions"]:
        for slot in range(p["slots"][0], p["slots"][1] + 1):
            partition_of_slot[slot] = p["partition"]

    def describe(row) -> str:
        p = partition_of_slot[key_slot(KEY_FORMAT % row[4])]
        moved = set(parts_a[p]["replicas"]) != set(parts_b[p]["replicas"])
        return (f"{row[1]} {row[2]:.0f} ms at +{row[0] - t_join:.1f} s, partition {p}"
                f" ({'moved' if moved else 'not moved'}, preferred leader {parts_b[p]['replicas'][0]}->{parts_a[p]['replicas'][0]})")
    slowest = sorted((r for r in rows if t_join <= r[0] < during_end), key=lambda r: -r[2])[:5]
    if slowest:
        print("slowest during the rebalance: " + "; ".join(describe(r) for r in slowest))
    ratio = (w_during["p99_ms"] / w_before["p99_ms"]) if w_during["p99_ms"] and w_before["p99_ms"] else None
    starts = move_starts(a.logs)
    if starts and w_before["p99_ms"]:
        threshold = 2 * w_before["p99_ms"]
        print(f"requests during the rebalance over {threshold:.2f} ms (2 x p99 before), by time since the last move"
              f" started ({len(starts)} starts): " + slow_by_move_phase(rows, starts, t_join, during_end, threshold))
    print(f"p99 during / p99 before: {ratio:.2f}" if ratio is not None else "p99 during / p99 before: -")
    print()
    print("Goals (issue 5):")
    print(f"  replica moves <= 1.05 x optimum:      {moves} <= {1.05 * optimum:.1f}: {goal(moves <= 1.05 * optimum)}")
    print(f"  replicas per node max/mean <= 1.1:    {rep_max / rep_mean:.3f}: {goal(rep_max / rep_mean <= 1.1)}")
    print(f"  p99 during <= 2 x p99 before:         "
          + (f"{w_during['p99_ms']:.2f} <= {2 * w_before['p99_ms']:.2f} ms: {goal(ratio <= 2)}" if ratio is not None
             else "no latency measured: NOT met"))
    json.dump({"moves": moves, "optimum": optimum, "changed": changed, "partitions": P, "moved_bytes": moved_bytes,
               "optimum_bytes": optimum_bytes, "snapshot_bytes_sent": snap_sent, "peer_bytes_sent": peer_sent,
               "seconds_to_done": elapsed, "seconds_to_settled": settled - t_join if settled else None,
               "replicas_max_mean": rep_max / rep_mean, "preferred_leaders_max_mean": pref_max / pref_mean,
               "before": w_before, "during": w_during, "after": w_after, "p99_ratio": ratio},
              open(a.summary, "w"), indent=1)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    fp = sub.add_parser("fill")
    fp.add_argument("--ports", required=True, help="client ports of the nodes, comma-separated")
    fp.add_argument("--keys", type=int, required=True)
    fp.add_argument("-d", "--data-size", type=int, default=100)
    fp.add_argument("--batch", type=int, default=100, help="keys per MSET")
    fp.add_argument("--window", type=int, default=16, help="MSETs in flight per node")
    fp.add_argument("--timeout", type=float, default=1800.0)
    fp.add_argument("--compacted", action="store_true",
                    help="then wait until every node has snapshotted every partition group it hosts")
    tp = sub.add_parser("traffic")
    tp.add_argument("--ports", required=True, help="client ports to read CLUSTER SLOTS from")
    tp.add_argument("--keys", type=int, required=True)
    tp.add_argument("-d", "--data-size", type=int, default=100)
    tp.add_argument("--rate", type=float, default=200.0)
    tp.add_argument("--get-ratio", type=float, default=0.5)
    tp.add_argument("--timeout", type=float, default=5.0)
    tp.add_argument("--seed", type=int, default=None)
    tp.add_argument("--out", required=True)
    sp = sub.add_parser("state")
    sp.add_argument("--ports", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--pids", default="", help="PIDs of the nodes, comma-separated: their CPU time is recorded")
    wp = sub.add_parser("watch")
    wp.add_argument("--ports", required=True, help="client ports of every node, the new one included")
    wp.add_argument("--nodes", type=int, required=True, help="active nodes once the join is in the map")
    wp.add_argument("--cairn", required=True, help="the cairn binary (for ctl rebalance status)")
    wp.add_argument("--since", type=float, required=True, help="wall time of the join")
    wp.add_argument("--interval", type=float, default=0.5)
    wp.add_argument("--timeout", type=float, default=1800.0)
    wp.add_argument("--settle-timeout", type=float, default=60.0)
    wp.add_argument("--timeline", required=True)
    rp = sub.add_parser("report")
    for name in ("fill", "start", "before", "after", "watch", "timeline", "latency", "summary"):
        rp.add_argument(f"--{name}", required=True)
    for name in ("t-traffic", "t-join", "t-end"):
        rp.add_argument(f"--{name}", type=float, required=True)
    rp.add_argument("--warmup", type=float, default=1.0)
    rp.add_argument("--rate", type=float, required=True)
    rp.add_argument("--get-ratio", type=float, required=True)
    rp.add_argument("--logs", nargs="*", default=[], help="node logs, for the slow requests by move phase")
    a = ap.parse_args()
    return {"fill": cmd_fill, "traffic": cmd_traffic, "state": cmd_state, "watch": cmd_watch,
            "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
