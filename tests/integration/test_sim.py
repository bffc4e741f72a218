"""`cairn sim cluster`: the whole-cluster simulator's command line. Cairn only.

Each test runs the simulator for a few seeds with a short fault phase (a few seconds with the debug
binary): the summary line and exit status, an injected bug caught, and a seed replayed bit for bit by
a second process (the command sets SWIFT_DETERMINISTIC_HASHING=1 for itself).
"""

from __future__ import annotations

import os
import re
import subprocess

from conftest import CAIRN_BIN, skip_unless_target

SIM_TIMEOUT = 120
SUMMARY = re.compile(r"^sim: seeds=(\d+) failed=(\d+) faults=(\d+)$", re.MULTILINE)


def run_sim(*args: str) -> subprocess.CompletedProcess[str]:
    # Without the variable, so that the command's own re-run with it set is what is tested.
    env = {k: v for k, v in os.environ.items() if k != "SWIFT_DETERMINISTIC_HASHING"}
    return subprocess.run([str(CAIRN_BIN), "sim", "cluster", *args], capture_output=True, text=True,
                          timeout=SIM_TIMEOUT, stdin=subprocess.DEVNULL, env=env)


def test_sim_cluster_seeds_pass_with_summary_line():
    skip_unless_target("cairn")
    proc = run_sim("--seeds", "1..3", "--ticks", "300")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = SUMMARY.search(proc.stdout)
    assert match, proc.stdout
    assert (int(match[1]), int(match[2])) == (3, 0)
    assert int(match[3]) > 0, "three seeds injected no faults"


def test_sim_cluster_injected_bug_fails_with_replay_command():
    skip_unless_target("cairn")
    proc = run_sim("--seeds", "1..3", "--ticks", "300", "--inject-bug", "follower-serves-linearizable-read")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    match = SUMMARY.search(proc.stdout)
    assert match and int(match[2]) >= 1, proc.stdout
    assert "FAILED Linearizability" in proc.stdout
    assert "--inject-bug follower-serves-linearizable-read --trace)" in proc.stdout


def test_sim_cluster_seed_replays_exactly_in_another_process():
    skip_unless_target("cairn")
    runs = [run_sim("--seed", "4", "--ticks", "200", "--trace") for _ in range(2)]
    hashes = []
    for proc in runs:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
        found = re.search(r"^trace: (\d+) lines, hash ([0-9a-f]{16})$", proc.stdout, re.MULTILINE)
        assert found, proc.stdout[-2000:]
        hashes.append(found.groups())
        assert "SEED=4 bug=none" in proc.stdout
    assert hashes[0] == hashes[1]
    assert int(hashes[0][0]) > 100


def test_sim_cluster_bad_flags():
    skip_unless_target("cairn")
    for args, text in [
        (["--seeds", "1..2", "--inject-bug", "vote-twice"], "--inject-bug must be one of"),
        (["--seed", "1", "--bench"], "--bench works with 'sim raft' only"),
        (["--seeds", "3..1"], "--seeds must be A..B"),
    ]:
        proc = run_sim(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert text in proc.stderr, (args, proc.stderr)


def test_check_history_verdicts_and_bad_input(tmp_path):
    """`cairn check history` (the checker the kill -9 test runs on a real cluster's history): exit 0
    for a linearizable history, 1 with the violation for a stale read, 2 naming the bad line."""
    skip_unless_target("cairn")

    def check(text: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "history.txt"
        path.write_text(text)
        return subprocess.run([str(CAIRN_BIN), "check", "history", str(path)], capture_output=True, text=True,
                              timeout=60)

    good = check("# a write, a concurrent read, a cas; a delete of unknown outcome, then a read of nothing\n"
                 "1 10 20 ok set 6b 31\n2 15 25 ok get 6b 31\n1 30 40 ok cas 6b 31 32 1\n"
                 "2 45 - unknown del 6b\n1 50 60 ok get 6b nil\n")
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("linearizable (1 key, 5 operations"), good.stdout
    stale = check("1 10 20 ok set 6b 31\n1 30 40 ok set 6b 32\n2 50 60 ok get 6b 31\n")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "not linearizable" in stale.stdout and 'it saw "1"' in stale.stdout, stale.stdout
    bad = check("1 10 20 ok set 6b 31\n1 30 40 maybe get 6b nil\n")
    assert bad.returncode == 2
    assert "line 2: OUTCOME 'maybe' is not ok, failed or unknown" in bad.stderr, bad.stderr
