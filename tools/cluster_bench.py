#!/usr/bin/env python3
"""Helpers of tools/cluster-bench.sh (standard library only; no redis-py).

  load       closed-loop SET load: C connections, each with one request outstanding, random keys
             `key:%012d` below -r and -d byte values (as redis-benchmark's `-t set -r R -d D`).
             --wait N sends `WAIT N 0` right behind every SET on the same connection (one write
             of both commands) and counts the request done only when WAIT has answered.
             --cluster routes each key to the owner of its slot by CLUSTER SLOTS.
             A request without a reply within --timeout counts as an error ("timeout"), its
             connection is closed and the worker goes on. Prints one JSON object: requests,
             errors by kind, seconds, rps, latency in ms (of answered requests), client CPU.
  converged  waits until every node's /ready is 200 and its /v1/cluster shows every partition
             with a leader, voters == replicas and (unless --unsettled) the preferred leader.
  failover   one kill -9 measurement: kills --victim if it leads a partition, else the node
             leading the most partitions (not --exclude); writes every --interval seconds to keys
             of the partitions it leads through the next node in --nodes, each write on an idle connection of a pool with its own timeout (never waiting
             on one request), sends SIGKILL to the victim's PID once --warmup writes succeeded,
             and reports the time from the kill to the first OK reply to a write sent after it.
             Prints one JSON object.

Every network wait has a deadline. Only 127.0.0.1 is used by the script, but any host works.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import json
import os
import random
import selectors
import signal
import socket
import statistics
import sys
import time
import urllib.request

HOST = "127.0.0.1"


def encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def key_slot(key: bytes) -> int:
    """Redis Cluster's slot: CRC16-XMODEM (binascii.crc_hqx with 0) of the key or its {hash tag}."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return binascii.crc_hqx(key, 0) % 16384


def parse_addr(s: str) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    return host or HOST, int(port)


# --------------------------------------------------------------------------- blocking RESP (setup only)


def blocking_call(addr, *args, timeout=5.0):
    """Send one command and return its parsed reply (enough of RESP2 for CLUSTER SLOTS, INFO)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(encode(*args))
        f = s.makefile("rb")

        def parse():
            line = f.readline()
            if not line.endswith(b"\r\n"):
                raise ConnectionError("connection closed")
            t, rest = line[:1], line[1:-2]
            if t == b"+":
                return rest.decode()
            if t == b"-":
                raise RuntimeError(rest.decode())
            if t == b":":
                return int(rest)
            if t == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)
                return data[:-2]
            if t == b"*":
                n = int(rest)
                return None if n < 0 else [parse() for _ in range(n)]
            raise RuntimeError(f"unexpected reply {line!r}")
        return parse()


def slot_table(addr) -> list[tuple[str, int]]:
    """16384 entries: slot -> (host, port) of its owner, from CLUSTER SLOTS."""
    table: list = [None] * 16384
    for entry in blocking_call(addr, "CLUSTER", "SLOTS"):
        lo, hi, primary = entry[0], entry[1], entry[2]
        host = primary[0].decode() if isinstance(primary[0], bytes) else primary[0]
        owner = (host, int(primary[1]))
        for s in range(lo, hi + 1):
            table[s] = owner
    missing = sum(1 for x in table if x is None)
    if missing:
        raise RuntimeError(f"CLUSTER SLOTS leaves {missing} slots without an owner")
    return table


# --------------------------------------------------------------------------- load


class Conn:
    __slots__ = ("sock", "buf", "want", "worker", "addr")

    def __init__(self, addr, worker):
        self.addr = addr
        self.worker = worker
        self.sock = socket.create_connection(addr, timeout=5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.want = 0


def take_replies(conn: Conn, errors: dict) -> int:
    """Consume complete replies from conn.buf; return how many. Errors are counted by first word."""
    n = 0
    buf = conn.buf
    pos = 0
    while True:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            break
        t = buf[pos:pos + 1]
        if t == b"$":
            size = int(buf[pos + 1:end])
            stop = end + 2 + (size + 2 if size >= 0 else 0)
            if len(buf) < stop:
                break
            pos = stop
        elif t in (b"+", b":", b"-", b"_", b"#", b","):
            if t == b"-":
                kind = buf[pos + 1:end].split(b" ", 1)[0].decode(errors="replace")
                errors[kind] = errors.get(kind, 0) + 1
            pos = end + 2
        else:
            raise RuntimeError(f"unexpected reply from {conn.addr}: {buf[pos:pos + 80]!r}")
        n += 1
    conn.buf = buf[pos:]
    return n


def cmd_load(a) -> int:
    target = parse_addr(a.target)
    table = slot_table(target) if a.cluster else None
    value = b"x" * a.data_size
    wait_cmd = encode("WAIT", a.wait, 0) if a.wait is not None else b""
    per_request = 2 if a.wait is not None else 1
    sel = selectors.DefaultSelector()
    errors: dict[str, int] = {}
    timeouts: dict[str, int] = {}  # endpoint -> requests without a reply within --timeout
    latencies: list[float] = []
    rng = random.Random(a.seed)
    issued = 0
    done = 0
    # Worker i has one request outstanding at a time, on its connection to the key's owner.
    conns: list[dict] = [dict() for _ in range(a.clients)]
    started: list[float] = [0.0] * a.clients
    current: list[Conn | None] = [None] * a.clients

    def conn_for(worker: int, addr) -> Conn:
        c = conns[worker].get(addr)
        if c is None:
            c = Conn(addr, worker)
            conns[worker][addr] = c
            sel.register(c.sock, selectors.EVENT_READ, c)
        return c

    def send_next(worker: int):
        nonlocal issued
        if issued >= a.requests:
            current[worker] = None
            return
        issued += 1
        key = b"key:%012d" % rng.randrange(a.keyspace)
        addr = table[key_slot(key)] if table else target
        c = conn_for(worker, addr)
        c.want = per_request
        current[worker] = c
        started[worker] = time.perf_counter()
        c.sock.sendall(encode(b"SET", key, value) + wait_cmd)

    # Connect before the clock starts: every worker to every owner (or to the target).
    for w in range(a.clients):
        for addr in sorted(set(table)) if table else [target]:
            conn_for(w, addr)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for w in range(a.clients):
        send_next(w)
    deadline_check = t0
    while done < issued or issued < a.requests:
        events = sel.select(timeout=0.5)
        now = time.perf_counter()
        for key, _ in events:
            c: Conn = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError(f"connection to {c.addr} closed by the server")
            c.buf += data
            got = take_replies(c, errors)
            if got == 0:
                continue
            c.want -= got
            if c.want < 0:
                raise RuntimeError(f"unexpected extra reply from {c.addr}")
            if c.want == 0 and current[c.worker] is c:
                latencies.append(now - started[c.worker])
                done += 1
                send_next(c.worker)
        if now - deadline_check > 0.5:
            deadline_check = now
            for w in range(a.clients):
                c = current[w]
                if c is not None and now - started[w] > a.timeout:
                    # No reply within --timeout: count it as an error, drop the connection (a late
                    # reply must not be taken for the next request's) and go on with a new one.
                    errors["timeout"] = errors.get("timeout", 0) + 1
                    timeouts.setdefault("%s:%d" % c.addr, 0)
                    timeouts["%s:%d" % c.addr] += 1
                    sel.unregister(c.sock)
                    c.sock.close()
                    del conns[w][c.addr]
                    done += 1
                    send_next(w)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    for d in conns:
        for c in d.values():
            c.sock.close()
    latencies.sort()

    def pct(p):
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3)

    n_err = sum(errors.values())
    print(json.dumps({
        "requests": done, "errors": errors, "error_count": n_err, "timeouts_by_endpoint": timeouts,
        "seconds": round(elapsed, 3), "rps": round(done / elapsed, 1),
        "ok_rps": round((done - n_err) / elapsed, 1),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        "client_cpu_us_per_req": round(cpu / max(done, 1) * 1e6, 1),
        "client_cpu_share": round(cpu / elapsed, 2),
    }))
    return 0


# --------------------------------------------------------------------------- cluster views


def http_json(http_port: int, path: str, timeout=2.0):
    with urllib.request.urlopen(f"http://{HOST}:{http_port}{path}", timeout=timeout) as r:
        return r.status, r.read()


def ready(port: int) -> bool:
    try:
        return http_json(port + 20000, "/ready")[0] == 200
    except OSError:
        return False


def cluster_map(port: int) -> dict:
    status, body = http_json(port + 20000, "/v1/cluster")
    if status != 200:
        raise RuntimeError(f"/v1/cluster of {port} -> {status}")
    return json.loads(body)


def converged_problem(ports: list[int], replicas: int, settled: bool) -> str | None:
    for port in ports:
        try:
            if not ready(port):
                return f"node on port {port}: /ready is not 200"
            m = cluster_map(port)
        except (OSError, ValueError, RuntimeError) as exc:
            return f"node on port {port}: {exc}"
        if len(m.get("nodes", [])) != len(ports):
            return f"node on port {port} knows {len(m.get('nodes', []))} nodes"
        for p in m.get("partitions", []):
            if p.get("leader") in (None, 0):
                return f"partition {p['partition']} has no leader (seen by port {port})"
            if len(p["replicas"]) != replicas or sorted(p.get("voters", p["replicas"])) != sorted(p["replicas"]):
                return f"partition {p['partition']}: replicas {p['replicas']} voters {p.get('voters')}"
            if settled and p["leader"] != p["replicas"][0]:
                return f"partition {p['partition']} led by {p['leader']}, preferred {p['replicas'][0]}"
    return None


def cmd_converged(a) -> int:
    ports = [int(x) for x in a.ports.split(",")]
    deadline = time.monotonic() + a.timeout
    problem = None
    while time.monotonic() < deadline:
        problem = converged_problem(ports, min(a.replicas, len(ports)), not a.unsettled)
        if problem is None:
            return 0
        time.sleep(0.1)
    print(f"not converged within {a.timeout} s: {problem}", file=sys.stderr)
    return 1


# --------------------------------------------------------------------------- failover


def keys_for(partitions: set[int], slots: dict[int, tuple[int, int]], per_partition: int) -> list[bytes]:
    def partition_of(slot):
        for p, (lo, hi) in slots.items():
            if lo <= slot <= hi:
                return p
        return None
    want = {p: [] for p in partitions}
    i = 0
    while any(len(v) < per_partition for v in want.values()) and i < 10_000_000:
        k = b"failover:%d" % i
        p = partition_of(key_slot(k))
        if p in want and len(want[p]) < per_partition:
            want[p].append(k)
        i += 1
    out = []
    for j in range(per_partition):
        out.extend(want[p][j] for p in sorted(partitions) if j < len(want[p]))
    return out


async def write_stream(through: int, keys: list[bytes], victim_pid: int, interval: float, warmup: int,
                       give_up: float, timeout: float) -> dict:
    idle: list = []
    pending: set = set()
    st = {"ok_before": 0, "t_kill": None, "first_ok": None, "sent_after": 0, "failed_after": {}, "ok_after": 0}

    async def one(key: bytes, t_send: float):
        try:
            conn = idle.pop() if idle else await asyncio.wait_for(asyncio.open_connection(HOST, through), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            if st["t_kill"] is not None and t_send > st["t_kill"]:
                kind = type(exc).__name__
                st["failed_after"][kind] = st["failed_after"].get(kind, 0) + 1
            return
        reader, writer = conn
        try:
            writer.write(encode(b"SET", key, b"v-%f" % t_send))
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            writer.close()
            if st["t_kill"] is not None and t_send > st["t_kill"]:
                kind = "timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
                st["failed_after"][kind] = st["failed_after"].get(kind, 0) + 1
            return
        if not line.endswith(b"\r\n"):
            writer.close()
            return
        idle.append(conn)
        after = st["t_kill"] is not None and t_send > st["t_kill"]
        if line == b"+OK\r\n":
            if st["t_kill"] is None:
                st["ok_before"] += 1
            elif after:
                st["ok_after"] += 1
                if st["first_ok"] is None:
                    st["first_ok"] = time.monotonic() - st["t_kill"]
        elif after:
            kind = line[1:].split(b" ", 1)[0].strip().decode(errors="replace")
            st["failed_after"][kind] = st["failed_after"].get(kind, 0) + 1

    i = 0
    start = time.monotonic()
    try:
        while st["first_ok"] is None:
            now = time.monotonic()
            if st["t_kill"] is None and st["ok_before"] >= warmup:
                os.kill(victim_pid, signal.SIGKILL)
                st["t_kill"] = time.monotonic()
            if st["t_kill"] is not None and now - st["t_kill"] > give_up:
                break
            if st["t_kill"] is None and now - start > give_up:
                raise RuntimeError(f"only {st['ok_before']} of {warmup} writes succeeded before the kill")
            if st["t_kill"] is not None and now > st["t_kill"]:
                st["sent_after"] += 1
            task = asyncio.ensure_future(one(keys[i % len(keys)], now))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
            await asyncio.sleep(interval)  # the pacing of the write stream
    finally:
        for t in list(pending):
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for _, w in idle:
            w.close()
    return st


def cmd_failover(a) -> int:
    nodes = {}
    for item in a.nodes.split(","):
        port, pid = item.split(":")
        nodes[int(port)] = int(pid)
    ports = sorted(nodes)
    m = cluster_map(ports[0])
    id_of_port = {int(n["client"].rsplit(":", 1)[1]): n["id"] for n in m["nodes"]}
    led: dict[int, list[int]] = {}
    for p in m["partitions"]:
        led.setdefault(p["leader"], []).append(p["partition"])
    if a.victim and led.get(id_of_port.get(a.victim), []):
        victim = a.victim
    else:
        candidates = [pt for pt in ports if pt != a.exclude and led.get(id_of_port.get(pt), [])]
        if not candidates:
            raise RuntimeError(f"no node (other than {a.exclude}) leads a partition: {led}")
        victim = max(candidates, key=lambda pt: len(led[id_of_port[pt]]))
    victim_id = id_of_port[victim]
    # Write through the next node after the victim in --nodes order.
    order = list(nodes)
    through = order[(order.index(victim) + 1) % len(order)]
    affected = set(led[victim_id])
    slots = {p["partition"]: tuple(p["slots"]) for p in m["partitions"]}
    keys = keys_for(affected, slots, 4)
    st = asyncio.run(write_stream(through, keys, nodes[victim], a.interval, a.warmup, a.give_up, a.timeout))
    first = st["first_ok"]
    print(json.dumps({
        "victim_port": victim, "victim_id": victim_id, "victim_pid": nodes[victim], "through_port": through,
        "through_id": id_of_port[through], "partitions_led": len(affected), "partitions": len(m["partitions"]),
        "failover_ms": None if first is None else round(first * 1000, 1),
        "writes_sent_after_kill": st["sent_after"], "failed_after_kill": st["failed_after"],
    }))
    return 0


# --------------------------------------------------------------------------- summary helpers


def cmd_median(a) -> int:
    vals = [float(x) for x in a.values]
    print(f"{statistics.median(vals):.1f}" if vals else "-")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("load")
    lp.add_argument("--target", required=True, help="host:port")
    lp.add_argument("--cluster", action="store_true")
    lp.add_argument("--wait", type=int, default=None, help="send WAIT N 0 after every SET")
    lp.add_argument("-c", "--clients", type=int, default=50)
    lp.add_argument("-n", "--requests", type=int, default=20000)
    lp.add_argument("-r", "--keyspace", type=int, default=100000)
    lp.add_argument("-d", "--data-size", type=int, default=100)
    lp.add_argument("--timeout", type=float, default=10.0)
    lp.add_argument("--seed", type=int, default=None)
    cp = sub.add_parser("converged")
    cp.add_argument("--ports", required=True, help="client ports, comma-separated (HTTP is port+20000)")
    cp.add_argument("--replicas", type=int, default=3)
    cp.add_argument("--timeout", type=float, default=120.0)
    cp.add_argument("--unsettled", action="store_true", help="do not wait for preferred leaders")
    fp = sub.add_parser("failover")
    fp.add_argument("--nodes", required=True, help="port:pid,port:pid,...")
    fp.add_argument("--victim", type=int, default=0,
                    help="client port of the node to kill if it leads a partition (else the node leading the most)")
    fp.add_argument("--exclude", type=int, default=0, help="without --victim: client port of a node not to kill")
    fp.add_argument("--interval", type=float, default=0.01)
    fp.add_argument("--warmup", type=int, default=20)
    fp.add_argument("--give-up", type=float, default=30.0)
    fp.add_argument("--timeout", type=float, default=10.0, help="deadline of each write")
    mp = sub.add_parser("median")
    mp.add_argument("values", nargs="*")
    a = ap.parse_args()
    return {"load": cmd_load, "converged": cmd_converged, "failover": cmd_failover, "median": cmd_median}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
