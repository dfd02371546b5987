"""Edge samples get the statuses EvalPlus 0.3.1 writes, in its own ``eval_results.json`` schema.

Mbpp/793 has no plus inputs: EvalPlus still executes the program for its
plus suite, so a program that does not load (empty, a syntax error, defines
nothing, raises at import) is ``fail`` there, and one that loads is ``pass``.
With EvalPlus installed (``pip install -e ".[reference]"``) the statuses are
also checked against EvalPlus itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EDGES = {
    "empty": ("", ["fail", "fail"]),
    "syntax_error": ("def last(arr, x:\n    return 0\n", ["fail", "fail"]),
    "defines_nothing": ("x = 1\n", ["fail", "fail"]),
    "raises_at_import": ("raise ValueError('no')\n", ["fail", "fail"]),
    "wrong_output": ("def last(arr, x):\n    return None\n", ["fail", "pass"]),
    "right": ("def last(arr, x):\n    n = len(arr) - 1\n    while n >= 0 and arr[n] != x:\n        n -= 1\n"
              "    return n\n", ["pass", "pass"]),
}  # fmt: skip


def _samples(path: Path) -> Path:
    path.write_text("".join(json.dumps({"task_id": "Mbpp/793", "solution": code}) + "\n" for code, _ in EDGES.values()))
    return path


def _statuses(results: Path) -> list[list[str | None]]:
    rows = json.loads(results.read_text())["eval"]["Mbpp/793"]
    return [[r["base_status"], r["plus_status"]] for r in rows]


def test_edge_samples_get_evalplus_statuses(data_dir: Path, tmp_path: Path) -> None:
    from harness.evaluation import evaluate_samples

    samples = _samples(tmp_path / "edges.jsonl")
    evaluate_samples("mbpp", samples, output=tmp_path / "out", parallel=2, data_dir=data_dir, use_verdict_cache=False,
                     echo=lambda _: None)  # fmt: skip
    got = dict(zip(EDGES, _statuses(tmp_path / "out" / "eval_results.json")))
    assert got == {name: statuses for name, (_, statuses) in EDGES.items()}


@pytest.mark.reference
def test_edge_statuses_equal_evalplus_itself(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("evalplus", reason="EvalPlus 0.3.1 is the reference: pip install -e '.[reference]'")
    samples = _samples(tmp_path / "edges.jsonl")
    env = {**os.environ, "MBPP_OVERRIDE_PATH": str(tmp_path / "mbpp.jsonl"), "EVALPLUS_CACHE": str(tmp_path / "c")}
    import gzip

    # EvalPlus grades every problem of its dataset: give it a dataset of just this one.
    rows = gzip.decompress((data_dir / "mbppplus" / "MbppPlus-v0.2.0.jsonl.gz").read_bytes()).decode().splitlines()
    (tmp_path / "mbpp.jsonl").write_text("".join(r + "\n" for r in rows if '"Mbpp/793"' in r))
    proc = subprocess.run([sys.executable, "-m", "evalplus.evaluate", "--dataset", "mbpp", "--samples", str(samples),
                           "--parallel", "2", "--i-just-wanna-run"], env=env, capture_output=True, text=True,
                          timeout=1200, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = _statuses(tmp_path / "edges_eval_results.json")
    assert dict(zip(EDGES, theirs)) == {name: statuses for name, (_, statuses) in EDGES.items()}
