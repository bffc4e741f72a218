"""Locust load test for Cairn (or any Redis-protocol endpoint), for people who prefer Locust.

It runs the same workloads as `cairn bench` (set, get, mixed, YCSB A-F) with redis-py and reports
each command to Locust's statistics, so the Locust web UI and CSV output work as usual.

    pip install locust redis
    CAIRN_TARGET=127.0.0.1:7379 CAIRN_WORKLOAD=ycsb-a locust -f tools/locust/locustfile.py \
        --headless -u 50 -r 50 -t 30s

Settings (environment variables):
    CAIRN_TARGET      HOST:PORT of the endpoint (default 127.0.0.1:7379)
    CAIRN_WORKLOAD    set, get, mixed, ycsb-a ... ycsb-f (default mixed)
    CAIRN_KEYS        records, keys key:000000000000 ... (default 100000), as `cairn bench --keys`
    CAIRN_VALUE_SIZE  value bytes (default 100)
    CAIRN_LOAD        1 to write every record once before the run (default 0; `cairn bench` does
                      this itself for reading workloads, so run it first or set this)
    CAIRN_SHAPE       "spike" to use the spike shape below: CAIRN_SPIKE_USERS users for
                      CAIRN_SPIKE_FOR seconds every CAIRN_SPIKE_EVERY seconds, else CAIRN_BASE_USERS

What Locust cannot do that `cairn bench` does: each Locust user waits for its reply before the next
request (closed loop), so when the server stalls, the requests that would have been sent during
the stall are never sent and never timed: coordinated omission. Locust's percentiles therefore
understate tail latency under overload. Use `cairn bench --rate R` for honest open-loop numbers;
use Locust for its UI, its Python scripting, and distributed load across machines.
"""

from __future__ import annotations

import os
import random
import time

import redis
from locust import LoadTestShape, User, between, events, task  # noqa: F401 (LoadTestShape used below)

HOST, _, PORT = os.environ.get("CAIRN_TARGET", "127.0.0.1:7379").rpartition(":")
WORKLOAD = os.environ.get("CAIRN_WORKLOAD", "mixed").lower()
KEYS = int(os.environ.get("CAIRN_KEYS", "100000"))
VALUE = b"x" * int(os.environ.get("CAIRN_VALUE_SIZE", "100"))

# Operation mixes as in `cairn bench` (docs/bench.md): read, update, insert, scan, read-modify-write.
MIXES = {
    "set": {"update": 1},
    "get": {"read": 1},
    "mixed": {"read": 80, "update": 20},
    "ycsb-a": {"read": 50, "update": 50},
    "ycsb-b": {"read": 95, "update": 5},
    "ycsb-c": {"read": 100},
    "ycsb-d": {"read": 95, "insert": 5},
    "ycsb-e": {"scan": 95, "insert": 5},
    "ycsb-f": {"read": 50, "rmw": 50},
}
if WORKLOAD not in MIXES:
    raise SystemExit(f"CAIRN_WORKLOAD must be one of {', '.join(MIXES)}; got {WORKLOAD!r}")
LATEST = WORKLOAD == "ycsb-d"
UNIFORM = WORKLOAD in ("set", "get", "mixed")

_inserted = KEYS  # shared by the users of this process


def key(record: int) -> str:
    return f"key:{record:012d}"


def zipfian_rank(records: int) -> int:
    """A skewed rank in 0..records-1, 0 the most popular (density about 1/rank, Zipf with θ≈1)."""
    return min(int(records ** random.random()) - 1, records - 1)


def zipfian_record(records: int) -> int:
    """A skewed record, the hot ranks scattered over the key space by a fixed hash (as YCSB does)."""
    return ((zipfian_rank(records) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) % records


@events.test_start.add_listener
def load_records(environment, **_kwargs):
    """With CAIRN_LOAD=1, write every record once before the users start."""
    if os.environ.get("CAIRN_LOAD") != "1":
        return
    client = redis.Redis(host=HOST, port=int(PORT), socket_timeout=5, socket_connect_timeout=5)
    pipe = client.pipeline(transaction=False)
    for record in range(KEYS):
        pipe.set(key(record), VALUE)
        if record % 1000 == 999:
            pipe.execute()
    pipe.execute()
    client.close()


class RedisUser(User):
    """One Locust user: one redis-py connection running the workload's mix."""

    wait_time = between(0, 0)

    def on_start(self):
        self.client = redis.Redis(host=HOST, port=int(PORT), socket_timeout=5, socket_connect_timeout=5)
        names = list(MIXES[WORKLOAD])
        self.kinds = random.choices(names, weights=[MIXES[WORKLOAD][n] for n in names], k=10_000)
        self.next = 0

    def choose(self) -> int:
        records = _inserted
        if UNIFORM:
            return random.randrange(records)
        if LATEST:
            return records - 1 - zipfian_rank(records)
        return zipfian_record(records)

    def timed(self, name: str, call):
        start = time.perf_counter()
        exception = None
        try:
            call()
        except redis.RedisError as error:
            exception = error
        events.request.fire(request_type="redis", name=name, response_time=(time.perf_counter() - start) * 1000,
                            response_length=0, exception=exception, context={})

    @task
    def operation(self):
        global _inserted
        kind = self.kinds[self.next % len(self.kinds)]
        self.next += 1
        if kind == "read":
            record = self.choose()
            self.timed("read GET", lambda: self.client.get(key(record)))
        elif kind == "update":
            record = self.choose()
            self.timed("update SET", lambda: self.client.set(key(record), VALUE))
        elif kind == "insert":
            record = _inserted
            _inserted += 1
            self.timed("insert SET", lambda: self.client.set(key(record), VALUE))
        elif kind == "scan":
            start = self.choose()
            count = min(random.randint(1, 100), _inserted - start)
            self.timed("scan MGET", lambda: self.client.mget([key(start + i) for i in range(max(count, 1))]))
        else:
            record = self.choose()

            def read_modify_write():
                self.client.get(key(record))
                self.client.set(key(record), VALUE)

            self.timed("read-modify-write GET+SET", read_modify_write)


if os.environ.get("CAIRN_SHAPE") == "spike":

    class SpikeShape(LoadTestShape):
        """Base users, and a spike of many more users for a while, periodically."""

        base = int(os.environ.get("CAIRN_BASE_USERS", "10"))
        spike = int(os.environ.get("CAIRN_SPIKE_USERS", "100"))
        length = float(os.environ.get("CAIRN_SPIKE_FOR", "5"))
        every = float(os.environ.get("CAIRN_SPIKE_EVERY", "30"))
        total = float(os.environ.get("CAIRN_DURATION", "120"))

        def tick(self):
            now = self.get_run_time()
            if now > self.total:
                return None
            in_spike = (now % self.every) >= self.every / 2 and (now % self.every) < self.every / 2 + self.length
            users = self.spike if in_spike else self.base
            return users, users
