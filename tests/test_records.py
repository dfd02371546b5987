"""Run records stay readable: v1 records (as the first harness wrote them) work in every reports command.

``tests/fixtures/run_v1.json`` is a HumanEval+ run and ``run_v1_livecodebench.json`` a LiveCodeBench run with a
date window and a training lineage that only its note carries, both schema v1 (``base_correct`` /
``plus_correct`` per task, EvalPlus's settings in ``settings``). The v2 records beside them are built here the
way the harness writes them now. Every command goes through ``python -m harness`` with its own registry and
cache, and every number it prints must be the one the record holds.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.benchmark import PartVerdict, Verdict, benchmark_class
from harness.passk import mean_pass_at_k
from harness.registry import run_id
from harness.store import RunRecord, SampleResult, TaskResult, load_run, save_run

FIXTURES = Path(__file__).resolve().parent / "fixtures"
V1_HUMANEVAL = FIXTURES / "run_v1.json"
V1_LCB = FIXTURES / "run_v1_livecodebench.json"
MODEL_A = "starcoder2-15b-instruct-v0.1"  # the folder of the v1 record's samples file (humaneval.jsonl)
MODEL_B = "model-b"
SFT = "hf:runs/sft/final"


def harness(root: Path, *args: str, python: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` with this module's registry and cache (``python``: another way to start it)."""
    env = {**os.environ, "HARNESS_REGISTRY": str(root / "reg.sqlite"), "HARNESS_CACHE_DIR": str(root / "cache")}
    argv = python or [sys.executable, "-m", "harness"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=300, env=env, cwd=root)


def _verdict(correct: dict[str, int], suites: list[str]) -> Verdict:
    parts, ok = {}, True
    for suite in suites:
        ok = ok and correct.get(suite, 0) == 1
        parts[suite] = PartVerdict(status="pass" if ok else "fail")
    return Verdict(status="pass" if ok else "fail", parts=parts)


def v2_from(v1: Path, outcomes: dict[str, tuple[int, ...]], **update: Any) -> RunRecord:
    """A v2 record of the v1 record's benchmark and dataset, one sample per task with the given per-suite passes.

    Outcomes are per suite in grading order (1: the sample passed that suite and every one before it).
    """
    rec = load_run(v1)
    cls = benchmark_class(rec.benchmark)
    tasks = {}
    for i, (tid, passes) in enumerate(outcomes.items()):
        correct = dict(zip(rec.suites, passes))
        verdict = _verdict(correct, rec.suites)
        tasks[tid] = TaskResult(n=1, correct=correct, samples=[SampleResult(line=i + 1, verdict=verdict,
                                                                            reason=verdict.reason())])  # fmt: skip
    pak = {s: mean_pass_at_k([(t.n, t.correct[s]) for t in tasks.values()]) for s in rec.suites}
    fields: dict[str, Any] = {
        "schema_version": 2, "title": cls.display_title(), "columns": list(cls.leaderboard_columns()), "tasks": tasks,
        "pass_at_k": pak, "n_tasks": len(tasks), "n_samples": len(tasks), "notes": [], "lineage": None,
    }  # fmt: skip
    return rec.model_copy(update={**fields, **update})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The v1 fixtures and v2 records of the same benchmarks, indexed with ``harness runs add``."""
    root = tmp_path_factory.mktemp("records")
    runs = root / "runs"
    paths = {"root": root, "v1_he": runs / "v1-humaneval" / "run.json", "v1_lcb": runs / "v1-lcb" / "run.json"}
    for name, src in (("v1_he", V1_HUMANEVAL), ("v1_lcb", V1_LCB)):
        paths[name].parent.mkdir(parents=True)
        shutil.copy(src, paths[name])
    # Another model on the same HumanEval+ tasks, written now (v2): comparable with the v1 run.
    b = v2_from(V1_HUMANEVAL, {"HumanEval/0": (1, 1), "HumanEval/1": (1, 1), "HumanEval/2": (1, 1),
                               "HumanEval/3": (1, 1)}, created="2025-11-05T08:00:00+00:00", model=MODEL_B)  # fmt: skip
    paths["v2_he"] = runs / "v2-humaneval" / "run.json"
    save_run(paths["v2_he"], b)
    # The fine-tune's next LiveCodeBench run on the same window (v2, lineage as data): latest vs previous.
    lineage = {"dataset": {"sha256": "ab" * 32, "path": "data/sft.jsonl"},
               "base_model": {"source": "bigcode/starcoder2-3b"}, "checkpoint": "runs/sft/final-2"}  # fmt: skip
    lcb = v2_from(V1_LCB, {"abc301_a": (1,), "abc301_b": (1,), "1873A": (1,), "leetcode_2798": (0,)},
                  created="2025-11-06T08:00:00+00:00", lineage=lineage,
                  selection={"release": "release_v6", "start_date": "2024-10-01", "end_date": "2025-01-31"})  # fmt: skip
    paths["v2_lcb"] = runs / "v2-lcb" / "run.json"
    save_run(paths["v2_lcb"], lcb)
    # Outside the registry: a v2 candidate that graded 2 of the 4 tasks.
    partial = v2_from(V1_HUMANEVAL, {"HumanEval/0": (1, 1), "HumanEval/1": (1, 0)}, model="partial")
    paths["partial"] = root / "partial" / "run.json"
    save_run(paths["partial"], partial)
    add = harness(root, "runs", "add", str(runs))
    assert add.returncode == 0, add.stderr
    assert "indexed 4 run(s)" in add.stdout
    return paths


def _raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _id(path: Path) -> str:
    return run_id(path, _raw(path)["created"])


def test_the_fixtures_are_v1_records() -> None:
    for path in (V1_HUMANEVAL, V1_LCB):
        raw = _raw(path)
        assert raw["schema_version"] == 1 and "suites" not in raw and "options" not in raw
        assert all("base_correct" in t and "plus_correct" in t and "correct" not in t for t in raw["tasks"].values())
        assert {"min_time_limit", "time_limit_factor", "base_only", "memory_accounting"} <= set(raw["settings"])
    rec = load_run(V1_HUMANEVAL)
    assert rec.suites == ["base", "plus"] and rec.options["base_only"] is False
    assert rec.tasks["HumanEval/1"].correct == {"base": 1, "plus": 0}


def test_runs_list_gives_the_records_numbers(store: dict[str, Path]) -> None:
    listed = harness(store["root"], "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = {e["path"]: e for e in json.loads(listed.stdout)}
    assert len(entries) == 4
    for name in ("v1_he", "v1_lcb", "v2_he", "v2_lcb"):
        e, raw = entries[str(store[name].resolve())], _raw(store[name])
        assert e["pass_at_k"] == raw["pass_at_k"], name
        assert e["n_tasks"] == raw["n_tasks"] and e["id"] == _id(store[name])
    he = entries[str(store["v1_he"].resolve())]
    assert he["model"] == MODEL_A  # named after the samples file's folder, not the stem humaneval.jsonl
    assert he["suites"] == ["base", "plus"] and (he["base_pass1"], he["plus_pass1"]) == (0.75, 0.5)
    assert [c["title"] for c in he["columns"]] == ["HumanEval", "HumanEval+"]  # v1 declares none: the benchmark's
    lcb = entries[str(store["v1_lcb"].resolve())]
    assert lcb["model"] == SFT and lcb["suites"] == ["base"] and lcb["plus_pass1"] is None
    assert lcb["selection"] == {"release": "release_v6", "start_date": "2024-10-01", "end_date": "2025-01-31"}
    # v1: the lineage was only in the note; it is data now
    assert lcb["training_data_hash"] == "ab" * 32 and lcb["base_model"] == "bigcode/starcoder2-3b"
    assert lcb["checkpoint"] == "runs/sft/final"
    assert entries[str(store["v2_lcb"].resolve())]["selection"] == lcb["selection"]  # v1 and v2 select alike
    text = harness(store["root"], "runs", "list")
    assert text.returncode == 0 and "HumanEval 75.0, HumanEval+ 50.0" in text.stdout
    assert "LiveCodeBench 50.0" in text.stdout and "LiveCodeBench 75.0" in text.stdout
    show = harness(store["root"], "runs", "show", _id(store["v1_lcb"]))
    assert (
        show.returncode == 0 and "checkpoint runs/sft/final" in show.stdout and "2024-10-01..2025-01-31" in show.stdout
    )


def test_leaderboard_mixes_v1_and_v2_runs(store: dict[str, Path]) -> None:
    out = harness(store["root"], "leaderboard", "--format", "json")
    assert out.returncode == 0, out.stderr
    board = json.loads(out.stdout)
    assert [c["title"] for c in board["columns"]] == ["HumanEval", "HumanEval+", "LiveCodeBench"]
    rows = {r["model"]: r["cells"] for r in board["rows"]}
    v1, v2 = _raw(store["v1_he"])["pass_at_k"], _raw(store["v2_he"])["pass_at_k"]
    assert rows[MODEL_A]["HumanEval"]["pass@1"] == v1["base"]["pass@1"] == 0.75
    assert rows[MODEL_A]["HumanEval+"]["pass@1"] == v1["plus"]["pass@1"] == 0.5
    assert rows[MODEL_B]["HumanEval+"]["pass@1"] == v2["plus"]["pass@1"] == 1.0
    # the fine-tune's latest run (v2) is shown; v1 and v2 of one window and dataset are one comparable group
    assert rows[SFT]["LiveCodeBench"]["pass@1"] == _raw(store["v2_lcb"])["pass_at_k"]["base"]["pass@1"] == 0.75
    assert rows[SFT]["LiveCodeBench"]["run"] == _id(store["v2_lcb"])
    assert not any("NOT COMPARABLE" in n for n in board["notes"]), board["notes"]
    assert all(c["group"] is None for cells in rows.values() for c in cells.values())
    md = harness(store["root"], "leaderboard")
    assert md.returncode == 0
    assert (
        md.stdout.splitlines()[0]
        == "| Model | HumanEval | HumanEval+ | LiveCodeBench (2024-10-01..2025-01-31) | samples/task |"
    )


def test_compare_v1_with_v2(store: dict[str, Path]) -> None:
    out = harness(store["root"], "compare", str(store["v1_he"]), _id(store["v2_he"]), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["comparable"] is True and list(doc["suites"]) == ["base", "plus"]
    base, plus = doc["suites"]["base"], doc["suites"]["plus"]
    assert (base["label"], plus["label"]) == ("HumanEval", "HumanEval+")
    assert base["pass@1_a"] == 0.75 and plus["pass@1_a"] == 0.5 and plus["pass@1_b"] == 1.0
    assert base["fail_to_pass"] == ["HumanEval/2"] and plus["fail_to_pass"] == ["HumanEval/1", "HumanEval/2"]
    assert plus["pass_to_fail"] == [] and plus["difference"] == pytest.approx(0.5)
    lcb = harness(store["root"], "compare", _id(store["v1_lcb"]), str(store["v2_lcb"]))
    assert lcb.returncode == 0, lcb.stderr
    assert "fail->pass (1): abc301_b" in lcb.stdout and "A 50.0%  B 75.0%" in lcb.stdout


def test_gate_on_v1_and_v2_records(store: dict[str, Path]) -> None:
    root = store["root"]
    better = harness(root, "gate", "--baseline", str(store["v1_he"]), "--candidate", str(store["v2_he"]))
    assert better.returncode == 0 and "gate: pass" in better.stdout, better.stdout + better.stderr
    assert "HumanEval+: baseline 50.00%, candidate 100.00% over 4 tasks" in better.stdout
    worse = harness(root, "gate", "--baseline", str(store["v2_he"]), "--candidate", str(store["v1_he"]), "--json")
    assert worse.returncode == 0, worse.stderr  # a 50-point drop on 4 tasks is not significant
    decision = json.loads(worse.stdout)
    assert decision["regression"] is False and decision["suite"]["pass@1_b"] == 0.5
    partial = harness(root, "gate", "--baseline", str(store["v1_he"]), "--candidate", str(store["partial"]))
    assert partial.returncode == 4 and partial.stdout == ""
    assert partial.stderr.strip().splitlines() == [partial.stderr.strip()]
    assert "lacks 2 of the baseline's 4 tasks" in partial.stderr and "--allow-missing" in partial.stderr
    allowed = harness(root, "gate", "--baseline", str(store["v1_he"]), "--candidate", str(store["partial"]),
                      "--allow-missing")  # fmt: skip
    assert allowed.returncode == 0 and "over 2 tasks" in allowed.stdout and "2 baseline-only" in allowed.stdout


def test_report_on_v1_and_v2_records(store: dict[str, Path]) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    out = store["root"] / "report"
    rp = harness(store["root"], "report", "--output", str(out))
    assert rp.returncode == 0, rp.stderr
    page = (out / "report.html").read_text()
    assert "HumanEval+" in page and "LiveCodeBench breakdown" in page
    assert _id(store["v1_lcb"]) in page and _id(store["v2_lcb"]) in page  # latest (v2) against previous (v1)
    for name in ("leaderboard", "pass1_over_time", "livecodebench_breakdown"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name


def test_report_without_matplotlib_says_what_to_install(store: dict[str, Path]) -> None:
    # matplotlib made unimportable in the child process only (a None entry in sys.modules fails the import).
    start = [sys.executable, "-c", "import sys; sys.modules['matplotlib'] = None; from harness.cli import main; "
             "sys.exit(main())"]  # fmt: skip
    rp = harness(store["root"], "report", "--output", str(store["root"] / "no-mpl"), python=start)
    assert rp.returncode == 2, rp.stdout + rp.stderr
    assert rp.stderr.strip() == "error: plots need matplotlib: pip install 'code-harness[reports]'"
    assert not (store["root"] / "no-mpl" / "report.html").exists()


# The runs table as the first registry (index schema v1) created it.
_V1_REGISTRY = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, model TEXT NOT NULL, benchmark TEXT NOT NULL,
    dataset_name TEXT NOT NULL, dataset_version TEXT NOT NULL, dataset_hash TEXT NOT NULL, selection TEXT NOT NULL,
    options TEXT NOT NULL, tasks_hash TEXT NOT NULL, harness_version TEXT, git_commit TEXT, created TEXT NOT NULL,
    kind TEXT, n_tasks INTEGER NOT NULL, n_samples INTEGER NOT NULL, samples_per_task INTEGER NOT NULL,
    base_pass1 REAL, plus_pass1 REAL, pass_at_k TEXT NOT NULL, training_data_hash TEXT, base_model TEXT,
    checkpoint TEXT, lineage TEXT, indexed TEXT NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def _v1_row(path: Path, model: str) -> tuple[Any, ...]:
    raw = _raw(path)
    return (_id(path), str(path.resolve()), model, raw["benchmark"], raw["dataset"]["name"], raw["dataset"]["version"],
            raw["dataset"]["hash"], "{}", "{}", "0123456789ab", raw["harness_version"], None, raw["created"], "evaluate",
            raw["n_tasks"], raw["n_samples"], 1, raw["pass_at_k"]["base"]["pass@1"],
            raw["pass_at_k"].get("plus", {}).get("pass@1"), json.dumps(raw["pass_at_k"]), None, None, None, "null",
            "2025-11-03T10:00:01+00:00")  # fmt: skip


def test_a_registry_from_the_first_harness_keeps_working(tmp_path: Path) -> None:
    record = tmp_path / "runs" / "a" / "run.json"
    record.parent.mkdir(parents=True)
    shutil.copy(V1_HUMANEVAL, record)
    gone = tmp_path / "runs" / "gone" / "run.json"
    gone.parent.mkdir()
    shutil.copy(V1_HUMANEVAL, gone)
    raw = _raw(gone)
    raw["created"] = "2025-10-01T00:00:00+00:00"
    gone.write_text(json.dumps(raw))
    db = sqlite3.connect(tmp_path / "reg.sqlite")
    db.executescript(_V1_REGISTRY)
    db.execute(f"INSERT INTO runs VALUES ({', '.join('?' * 25)})", _v1_row(record, "named-with-runs-add"))
    db.execute(f"INSERT INTO runs VALUES ({', '.join('?' * 25)})", _v1_row(gone, "vanished"))
    db.commit()
    db.close()
    gone.unlink()  # indexed, then deleted: its entry must survive the upgrade with what the index knew
    listed = harness(tmp_path, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = {e["model"]: e for e in json.loads(listed.stdout)}
    kept = entries["named-with-runs-add"]  # the name given when it was indexed is kept
    assert kept["id"] == _id(record) and kept["suites"] == ["base", "plus"]
    assert [c["title"] for c in kept["columns"]] == ["HumanEval", "HumanEval+"]
    assert kept["tasks_hash"] != "0123456789ab"  # re-indexed from the record
    # A record deleted from disk is no result any more: listings leave it out (and say so); its entry survives
    # the upgrade with what the index knew, until `runs rm`.
    assert "vanished" not in entries and "whose run.json is gone" in listed.stderr
    with sqlite3.connect(tmp_path / "reg.sqlite") as check:
        row = check.execute("SELECT plus_pass1 FROM runs WHERE model = 'vanished'").fetchone()
        assert row is not None and row[0] == 0.5
        assert check.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    board = harness(tmp_path, "leaderboard", "--format", "json", "--model", "named")
    assert board.returncode == 0, board.stderr
    cells = json.loads(board.stdout)["rows"][0]["cells"]
    assert (cells["HumanEval"]["pass@1"], cells["HumanEval+"]["pass@1"]) == (0.75, 0.5)
    again = harness(tmp_path, "runs", "add", str(record))  # re-indexing into the upgraded file works
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("stem", ["samples", "answers", "completions", "generations", "humaneval", "mbpp",
                                  "livecodebench", "ds1000", "HumanEval"])  # fmt: skip
def test_generic_samples_files_do_not_name_the_model(stem: str, tmp_path: Path) -> None:
    from harness.registry import model_name

    rec = load_run(V1_HUMANEVAL).model_copy(update={"samples_file": f"/evals/my-model/{stem}.jsonl"})
    run = tmp_path / "run-folder" / "run.json"
    assert model_name(rec, run) == "my-model"  # the samples file's folder
    assert model_name(rec, run, model="given") == "given"  # --model first
    assert model_name(rec.model_copy(update={"model": "from-record"}), run) == "from-record"
    assert model_name(rec.model_copy(update={"samples_file": f"/{stem}.jsonl"}), run) == "run-folder"
    assert model_name(rec.model_copy(update={"samples_file": "/evals/x/my-model-t0.2.jsonl"}), run) == "my-model-t0.2"
