"""Expected outputs are computed once per machine: a second process that needs them while another computes them
waits for that process and loads its file; a holder that dies hands the work over and blocks no one."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The canonical solution sleeps (sleeping costs no CPU, so this test does not load the machine): both
# processes start at once, so the one that claims second does so well inside the other's computation.
SLOW_SECONDS = 6

PREPARE = """
import json, sys
import benchmarks
from harness.benchmark import get
from harness.execution import Sandbox, SandboxSettings
bench = get("humaneval", data_dir=sys.argv[1])
with Sandbox(bench.sandbox_settings(SandboxSettings(workers=1))) as sb:
    bench.prepare(sb)
bench.wait_saved()
print(json.dumps({"computed": bool(bench._gt_groups), "tasks": sorted(bench._expected)}))
"""


def _data(root: Path) -> Path:
    rows = [
        {"task_id": "HumanEval/0", "prompt": "def add(a, b):\n", "canonical_solution": "    return a + b\n",
         "entry_point": "add", "base_input": [[1, 2]], "plus_input": [[3, 4], [5, 6]], "atol": 0},
        {"task_id": "HumanEval/1", "prompt": "def slow(x):\n",
         "canonical_solution": f"    import time\n    time.sleep({SLOW_SECONDS})\n    return x\n",
         "entry_point": "slow", "base_input": [[1]], "plus_input": [], "atol": 0},
    ]  # fmt: skip
    folder = root / "data" / "humanevalplus"
    folder.mkdir(parents=True)
    (folder / "HumanEvalPlus-v0.1.10.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    )
    return root / "data"


def _start(data: Path, cache: Path, err: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    with open(err, "w") as f:
        return subprocess.Popen([sys.executable, "-c", PREPARE, str(data)], env=env, stdout=subprocess.PIPE,
                                stderr=f, text=True, cwd=ROOT)  # fmt: skip


def _until(what: str, check: Callable[[], bool], deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _pair(data: Path, cache: Path, tmp: Path) -> tuple[subprocess.Popen[str], Path, subprocess.Popen[str], Path]:
    """Two processes started at once: ``(holder, its stderr, waiter, its stderr)`` once one holds the lock and
    the other waits for it."""
    procs = [(_start(data, cache, tmp / f"err{k}"), tmp / f"err{k}") for k in (0, 1)]

    def holder() -> int | None:
        for lock in (cache / "expected").glob(".*.lock"):
            pid = lock.read_text().strip()
            for k, (proc, _) in enumerate(procs):
                if pid == str(proc.pid):
                    return k
        return None

    _until("one process to take the lock", lambda: holder() is not None)
    k = holder()
    assert k is not None
    (hold, hold_err), (wait, wait_err) = procs[k], procs[1 - k]
    _until("the other process to wait", lambda: "waiting for process" in wait_err.read_text())
    return hold, hold_err, wait, wait_err


def test_a_second_process_waits_and_loads_instead_of_computing(tmp_path: Path) -> None:
    data, cache = _data(tmp_path), tmp_path / "cache"
    first, first_err, second, second_err = _pair(data, cache, tmp_path)
    out1, _ = first.communicate(timeout=120)
    out2, _ = second.communicate(timeout=120)
    err1, err2 = first_err.read_text(), second_err.read_text()
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    one, two = json.loads(out1.splitlines()[-1]), json.loads(out2.splitlines()[-1])
    assert one == {"computed": True, "tasks": ["HumanEval/0", "HumanEval/1"]}
    assert two == {"computed": False, "tasks": ["HumanEval/0", "HumanEval/1"]}, err2
    assert f"waiting for process {first.pid}, which is computing the HumanEval+ expected outputs" in err2
    assert "waiting" not in err1


def test_a_holder_that_dies_hands_the_computation_over(tmp_path: Path) -> None:
    data, cache = _data(tmp_path), tmp_path / "cache"
    first, _, second, second_err = _pair(data, cache, tmp_path)
    os.kill(first.pid, signal.SIGKILL)  # mid-computation: its canonical solution is still asleep
    first.wait(timeout=30)
    out2, _ = second.communicate(timeout=120)
    err2 = second_err.read_text()
    assert first.returncode == -signal.SIGKILL
    assert second.returncode == 0, err2
    assert json.loads(out2.splitlines()[-1]) == {"computed": True, "tasks": ["HumanEval/0", "HumanEval/1"]}
    assert f"waiting for process {first.pid}" in err2
    assert list((cache / "expected").glob("humaneval*.bin")), "the second process's file was not written"
