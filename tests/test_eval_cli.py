"""`harness eval`: whole runs through the CLI with the oracle, replay and the tiny hf model."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store import load_run
from tests.conftest import REFERENCE, HeavyGradings
from tests.test_cli import harness


def _summary(out: Path) -> dict[str, dict]:
    return {row["benchmark"]: row for row in json.loads((out / "summary.json").read_text())["benchmarks"]}


def _cache_line(stdout: str) -> tuple[int, int]:
    found = re.search(r"(\d+) from the response cache, (\d+) generated", stdout)
    assert found, stdout
    return int(found.group(1)), int(found.group(2))


def test_oracle_scores_100_percent(heavy_gradings: HeavyGradings) -> None:
    # The session's oracle run (conftest.py): beside the reference grading, so on a busy machine.
    out, proc = heavy_gradings.oracle_out, heavy_gradings.oracle
    assert proc.returncode == 0, proc.stderr
    rows = _summary(out)
    for bench, n in (("humaneval", 164), ("mbpp", 378)):
        assert rows[bench]["base_pass@1"] == 1.0 and rows[bench]["plus_pass@1"] == 1.0, rows[bench]
        assert rows[bench]["n_tasks"] == n
        record = load_run(out / bench / "run.json")
        assert record.model == "oracle" and record.generation is not None
        assert record.options["memory_accounting"] == "program"
    assert "humaneval" in proc.stdout and "1.000" in proc.stdout


def test_replay_reproduces_the_evaluation_core(data_dir: Path, tmp_path: Path) -> None:
    samples = data_dir / REFERENCE / "humaneval.jsonl"
    core_out = tmp_path / "core"
    core = harness("evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--data-dir", str(data_dir),
                   "--output", str(core_out))  # fmt: skip
    assert core.returncode == 0, core.stderr
    out = tmp_path / "replay"
    proc = harness("eval", "--model", f"replay:{samples}", "--benchmarks", "humaneval", "--data-dir", str(data_dir),
                   "--output", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    core_rec, replay_rec = load_run(core_out / "run.json"), load_run(out / "humaneval" / "run.json")
    assert replay_rec.pass_at_k == core_rec.pass_at_k
    assert round(replay_rec.pass_at_k["base"]["pass@1"], 3) == 0.726
    assert round(replay_rec.pass_at_k["plus"]["pass@1"], 3) == 0.640
    statuses = {t: [s.verdict.status for s in r.samples] for t, r in core_rec.tasks.items()}
    assert {t: [s.verdict.status for s in r.samples] for t, r in replay_rec.tasks.items()} == statuses
    replayed = [json.loads(x) for x in (out / "humaneval" / "samples.jsonl").read_text().splitlines()]
    original = [json.loads(x) for x in samples.read_text().splitlines()]
    assert replayed == original  # stored answers pass through untouched


def test_replay_with_too_few_samples_names_the_fix(data_dir: Path, tmp_path: Path) -> None:
    samples = data_dir / REFERENCE / "humaneval.jsonl"
    proc = harness("eval", "--model", f"replay:{samples}", "--benchmarks", "humaneval", "--n", "2", "--limit", "2",
                   "--data-dir", str(data_dir), "--output", str(tmp_path / "x"))  # fmt: skip
    assert proc.returncode == 2
    assert "holds 1 sample(s) for HumanEval/0" in proc.stderr and "lower --n to 1" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nosuch:x"], "unknown backend 'nosuch'"),
        (["--model", "gpt4"], "is not BACKEND:MODEL"),
        (["--model", "oracle", "--benchmarks", "humaneval,nosuch"], "unknown benchmark(s) nosuch"),
        (["--model", "replay:/nonexistent.jsonl"], "replay file /nonexistent.jsonl does not exist"),
        (["--model", "oracle", "--engine-arg", "bogus"], "expected KEY=VALUE"),
    ],
)
def test_bad_eval_arguments_are_one_line_errors(args: list[str], message: str, tmp_path: Path) -> None:
    proc = harness("eval", *args, "--output", str(tmp_path / "o"))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]  # argparse puts its usage line first
    assert message in last and "Traceback" not in proc.stderr, proc.stderr


def test_tiny_hf_model_end_to_end_then_from_the_cache(tiny_model: Path, data_dir: Path, tmp_path: Path) -> None:
    common = ["eval", "--model", f"hf:{tiny_model}", "--benchmarks", "humaneval,mbpp", "--limit", "6",
              "--max-tokens", "24", "--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    first = harness(*common, "--output", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert _cache_line(first.stdout) == (0, 12)
    rows = _summary(tmp_path / "a")
    assert rows["humaneval"]["n_samples"] == 6 and rows["mbpp"]["n_samples"] == 6
    record = load_run(tmp_path / "a" / "humaneval" / "run.json")
    assert record.generation is not None and record.generation.style == "instruct"
    assert record.generation.identity["weights"]
    assert record.generation.seconds > 0  # it was always 0.0: the time never reached the record
    gens = [json.loads(x) for x in (tmp_path / "a" / "humaneval" / "generations.jsonl").read_text().splitlines()]
    assert all(g["response_prefix"] == "```python\n" and g["completion_tokens"] <= 24 for g in gens)
    second = harness(*common, "--output", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    assert _cache_line(second.stdout) == (12, 0)
    assert (tmp_path / "a" / "mbpp" / "samples.jsonl").read_text() == (tmp_path / "b" / "mbpp" / "samples.jsonl").read_text()
    base = harness(*common, "--style", "base", "--output", str(tmp_path / "c"))
    assert base.returncode == 0 and _cache_line(base.stdout) == (0, 12)  # another prompt is another sample
    uncached = harness(*common, "--no-cache", "--output", str(tmp_path / "d"))
    assert uncached.returncode == 0 and _cache_line(uncached.stdout) == (0, 12)


def test_killed_run_resumes_without_regenerating(tiny_model: Path, data_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "harness", "eval", "--model", f"hf:{tiny_model}", "--benchmarks", "humaneval",
           "--limit", "30", "--max-tokens", "96", "--engine-arg", "batch_size=1", "--data-dir", str(data_dir),
           "--cache-dir", str(cache), "--output", str(tmp_path / "out")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done_before_kill = 0
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (cache / "responses.sqlite").exists():
                try:
                    with sqlite3.connect(cache / "responses.sqlite", timeout=1) as db:
                        done_before_kill = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
                except sqlite3.OperationalError:
                    done_before_kill = 0
                if done_before_kill >= 5:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.05)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    cached, generated = _cache_line(rerun.stdout)
    assert cached >= done_before_kill >= 5 and cached < 30
    assert cached + generated == 30
