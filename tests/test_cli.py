"""The `harness evaluate` command: its outputs, its errors, and no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store import RunRecord

SMALL = [
    {
        "task_id": "HumanEval/0",
        "completion": "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n",
    },
    {"task_id": "HumanEval/2", "completion": "    return 0.0\n"},
]


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600
    )


def evaluate(samples: Path, data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`harness evaluate` on HumanEval+ with the offline data folder."""
    return harness(
        "evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--data-dir", str(data_dir), *extra
    )


def write_samples(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_results_go_next_to_the_samples_by_default(data_dir: Path, tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "model.jsonl", SMALL)
    proc = evaluate(samples, data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "HumanEval (base tests)  pass@1: 0.500" in proc.stdout
    assert "HumanEval+ (base + extra tests)  pass@1: 0.500" in proc.stdout
    results = json.loads((tmp_path / "model_eval_results.json").read_text())
    assert set(results) == {"date", "hash", "eval"}
    row = results["eval"]["HumanEval/2"][0]
    assert set(row) == {"task_id", "solution", "base_status", "plus_status", "base_fail_tests", "plus_fail_tests"}
    assert row["base_status"] == "fail" and len(row["base_fail_tests"]) == 1
    record = RunRecord.model_validate_json((tmp_path / "model_run.json").read_text())
    assert record.dataset.hash == results["hash"] and record.harness_version
    assert record.tasks["HumanEval/0"].samples[0].verdict.status == "pass"


def test_output_folder_test_details_and_base_only(data_dir: Path, tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "s.jsonl", SMALL)
    out = tmp_path / "out"
    proc = harness("evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--output", str(out),
                   "--test-details", "--base-only", "--data-dir", str(data_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = json.loads((out / "eval_results.json").read_text())["eval"]["HumanEval/2"][0]
    assert row["plus_status"] is None
    assert len(row["base_fail_tests"]) > 1  # every failing input, not just the first
    assert "base + extra" not in proc.stdout


def test_verdict_cache_makes_regrading_free(data_dir: Path, tmp_path: Path) -> None:
    # Programs no other test grades, so the session's verdict cache starts without them.  They differ from
    # SMALL in their syntax tree, not only in a comment: layout-only variants share the tree key's verdict.
    unique = [{**row, "completion": row["completion"] + "\n_verdict_cache_test = 1\n"} for row in SMALL]
    samples = write_samples(tmp_path / "s.jsonl", unique * 3)
    args = ("--output", str(tmp_path / "o"), "--overwrite")  # the same folder again: replace the earlier run
    assert evaluate(samples, data_dir, *args).returncode == 0
    record = RunRecord.model_validate_json((tmp_path / "o" / "run.json").read_text())
    assert record.timings.graded_programs == 2 and record.timings.verdict_cache_hits == 4
    assert evaluate(samples, data_dir, *args).returncode == 0
    record = RunRecord.model_validate_json((tmp_path / "o" / "run.json").read_text())
    assert record.timings.graded_programs == 0 and record.timings.verdict_cache_hits == 6
    assert evaluate(samples, data_dir, *args, "--no-verdict-cache").returncode == 0
    record = RunRecord.model_validate_json((tmp_path / "o" / "run.json").read_text())
    assert record.timings.graded_programs == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task_id": "HumanEval/0", "completion": "x"\n', "malformed line"),
        ('{"completion": "    return 1\\n"}\n', "missing task_id"),
        ("", "contains no samples"),
        ('{"task_id": "Nope/1", "completion": "x"}\n', "none of the 1 samples"),
    ],
)
def test_bad_samples_give_one_line_errors(data_dir: Path, tmp_path: Path, content: str, message: str) -> None:
    samples = tmp_path / "bad.jsonl"
    samples.write_text(content)
    proc = evaluate(samples, data_dir)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")


def test_unknown_task_is_skipped_and_reported(data_dir: Path, tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "s.jsonl", [*SMALL, {"task_id": "HumanEval/999", "completion": "x"}])
    proc = evaluate(samples, data_dir, "--output", str(tmp_path / "o"))
    assert proc.returncode == 0
    assert "skipped line 3 (HumanEval/999)" in proc.stdout
    record = RunRecord.model_validate_json((tmp_path / "o" / "run.json").read_text())
    assert [s.task_id for s in record.skipped] == ["HumanEval/999"]
    assert len(record.missing_tasks) == 162


def test_unknown_benchmark_and_missing_data(tmp_path: Path) -> None:
    proc = harness("evaluate", "--benchmark", "nope", "--samples", "x.jsonl")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    samples = write_samples(tmp_path / "s.jsonl", SMALL)
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "evaluate", "--benchmark", "mbpp", "--samples", str(samples), "--data-dir", str(empty)],
        capture_output=True, text=True, env={**__import__("os").environ, "HARNESS_OFFLINE": "1"}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--data-dir" in proc.stderr and "HARNESS_DATA_DIR" in proc.stderr and "Traceback" not in proc.stderr
