"""Grading at scale: programs that differ only in layout are graded once; finished work is not held.

Uses the toy benchmark (script jobs, no expected outputs to compute) and
the session's sandbox, so it costs a second or two.
"""

from __future__ import annotations

import gc
import sys
import warnings
import weakref
from pathlib import Path
from typing import Any

from harness.benchmark import GradeOptions
from harness.execution import CallJob, encode_inputs
from harness.grading import grade_programs, normalised_ast
from harness.verdict_cache import VerdictCache

sys.path.insert(0, str(Path(__file__).parent / "toy_benchmark"))
from toy_bench import Toy  # noqa: E402

SAME = [
    "def add(a, b):\n    return a + b\n",
    "def add(a, b):  # the sum\n    return a+b\n\n\n",  # a comment, spacing
    "def add(a,\n        b):\n    return (a +\n            b)\n",  # line breaks, parentheses
    "def add(a, b): return a + b",  # one line
]
OTHER = "def add(a, b):\n    return a + b\nUNUSED = 1\n"  # an unused assignment: another program
WRONG = "def add(a, b):\n    return a - b\n"


def test_layout_does_not_make_another_program() -> None:
    assert len({normalised_ast(p) for p in SAME}) == 1
    assert normalised_ast(OTHER) not in {normalised_ast(SAME[0]), None}
    assert normalised_ast('def add(a, b):\n    """Doc."""\n    return a + b\n') != normalised_ast(SAME[0])  # docstrings count
    assert normalised_ast("def add(a, b) return") is None  # no tree: the text key alone


def test_a_programs_invalid_escapes_warn_nothing_in_the_harness() -> None:
    # Model output is full of '\d' in plain strings; the harness parses it for its key and must not
    # print the program's compile warnings as its own (pytest showed them as the suite's warnings).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalised_ast("import re\nPAT = re.compile('\\d+\\.\\w')\n") is not None


def test_same_tree_is_graded_once_and_counted_apart(sandbox: Any, tmp_path: Path) -> None:
    bench = Toy()
    cache = VerdictCache(tmp_path / "verdicts.sqlite")
    try:
        programs = [("toy/0", p) for p in [*SAME, OTHER, WRONG, SAME[1], "def add(a, b) return"]]
        first = grade_programs(bench, sandbox, programs, GradeOptions(), cache=cache)
        assert [v.status for v in first.verdicts] == ["pass"] * 5 + ["fail", "pass", "fail"]
        assert first.graded == 4  # SAME[0], OTHER, WRONG and the one that does not parse
        assert (first.cache_hits, first.ast_hits) == (4, 3)  # SAME[1:] by tree, the repeated SAME[1] by text
        # Another run: a new layout of a known program comes from the cache, by its tree.
        again = grade_programs(bench, sandbox, [("toy/0", "def add(a, b):\n\n    return a + b  # again\n")],
                               GradeOptions(), cache=cache)  # fmt: skip
        assert (again.graded, again.cache_hits, again.ast_hits) == (0, 1, 1)
        assert again.verdicts[0].status == "pass" and again.verdicts[0].cached
        # A damaged text entry is graded again (as the warning says), not replaced by its tree's entry.
        import sqlite3

        with sqlite3.connect(tmp_path / "verdicts.sqlite") as con:
            con.execute("UPDATE verdicts SET verdict = verdict || ' ' WHERE key = ?", (first.keys[0],))
        damaged = grade_programs(bench, sandbox, programs[:1], GradeOptions(), cache=cache)
        assert (damaged.graded, damaged.cache_hits, damaged.verdicts[0].status) == (1, 0, "pass")
        # The same tree for another task is another verdict.
        other_task = grade_programs(bench, sandbox, [("toy/1", SAME[0])], GradeOptions(), cache=cache)
        assert (other_task.graded, other_task.verdicts[0].status) == (1, "fail")
    finally:
        cache.close()


def test_streamed_results_are_not_held(sandbox: Any) -> None:
    inputs = encode_inputs([(i,) for i in range(200)])
    jobs = [CallJob(code="def f(x):\n    return x * 2\n", entry_point="f", inputs_key=f"scale-{k % 2}",
                    inputs_payload=lambda: inputs, limits=[1.0] * 200, costs=[1e-4] * 200)
            for k in range(6)]  # fmt: skip
    seen: list[weakref.ref[Any]] = []
    statuses: list[str] = []

    def on_done(k: int, res: Any) -> None:
        statuses.append(res.status)
        seen.append(weakref.ref(res))

    assert sandbox.run(jobs, on_done=on_done, keep=False) == []
    gc.collect()
    assert statuses == ["pass"] * 6
    assert all(ref() is None for ref in seen)  # nothing kept a result once its callback returned
    kept = sandbox.run(jobs[:1], on_done=on_done)  # the default keeps them, for callers that want the list
    assert kept[0].status == "pass" and len(kept[0].times) == 200


def _pong(worker: Any) -> dict[str, Any]:
    worker.send({"op": "ping"})
    while True:
        frame = worker.recv()
        assert frame is not None, "a sandbox worker died"
        if frame[0].get("ev") == "pong":
            return frame[0]


def test_workers_account_for_their_runners_as_the_breakdown_reads_them(sandbox: Any) -> None:
    # tests/perf/eval_speed.py --breakdown splits each runner's CPU where it became ready for its first
    # input (fork, setup, guard, program load) and counts kernel time and page faults: those counts must
    # move with the work, and the part before the first input must stay a part of the whole.
    workers = sandbox._ensure_workers()
    before = [_pong(w) for w in workers]
    spin = "def f(x):\n    t = 0\n    for i in range(x):\n        t += i\n    return t\n"
    inputs = encode_inputs([(300_000,)] * 3)
    jobs = [CallJob(code=spin, entry_point="f", inputs_key="accounting", inputs_payload=lambda: inputs,
                    limits=[10.0] * 3, costs=[0.02] * 3) for _ in range(4)]  # fmt: skip
    results = sandbox.run(jobs)
    assert [r.status for r in results] == ["pass"] * 4
    after = [_pong(w) for w in workers]
    moved = {key: sum(a["stats"][key] - b["stats"][key] for a, b in zip(after, before))
             for key in ("units", "runner_cpu", "ready_cpu", "runner_sys", "runner_minflt", "limit_cpu")}  # fmt: skip
    assert moved["units"] == 4
    assert moved["limit_cpu"] == 0
    assert 0 < moved["ready_cpu"] < moved["runner_cpu"]
    # Each runner ran 3 x 300,000 additions after it was ready: far more than its setup.
    assert moved["runner_cpu"] - moved["ready_cpu"] > moved["ready_cpu"]
    assert moved["runner_minflt"] > 0 and moved["runner_sys"] <= moved["runner_cpu"]  # kernel time: part of it
    assert sum(a["minflt"] - b["minflt"] for a, b in zip(after, before)) > 0  # the workers' own: forks fault
