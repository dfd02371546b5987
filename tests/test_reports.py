"""Reports: the run registry, leaderboard, comparison, gate, plots and the HTML report.

The runs come from the StarCoder2-15B-Instruct reference samples on HumanEval+: graded once for real, then altered
copies made here. Two copies are graded for real too (both mostly from the verdict cache): one that breaks ten
passing tasks and one identical copy. The rest are altered run records (flips both ways, another dataset version,
several samples per task, checkpoints with training lineage, LiveCodeBench windows, DS-1000 runs carrying the
published per-library scores) so that the tests stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.benchmark import Column, DatasetInfo, PartVerdict, Verdict
from harness.errors import HarnessError
from harness.passk import mean_pass_at_k
from harness.registry import Registry, index_run, run_id
from harness.store import RunRecord, SampleResult, TaskResult, load_run, save_run
from tests.conftest import REFERENCE

BROKEN = "    return None\n"


# ---------------------------------------------------------------------- the command line
@functools.cache
def _wired() -> bool:
    """Whether ``harness`` itself has the reports commands (then the tests go through the real front door)."""
    from harness import cli

    with contextlib.redirect_stderr(io.StringIO()):
        try:
            cli._parser().parse_args(["gate", "--baseline", "a", "--candidate", "b"])
        except SystemExit:
            return False
    return True


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run a command in-process; returns (exit status, stdout, stderr)."""
    if _wired():
        from harness.cli import main
    else:
        from reports.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------- building runs
def _verdict(base: bool, plus: bool | None) -> Verdict:
    parts = {"base": PartVerdict(status="pass" if base else "fail")}
    if plus is not None:
        parts["plus"] = PartVerdict(status="pass" if plus else "fail")
    ok = base and (plus is None or plus)
    return Verdict(status="pass" if ok else "fail", parts=parts)


def altered(record: RunRecord, outcomes: dict[str, tuple[int, int, int | None]], **update: Any) -> RunRecord:
    """A copy of ``record`` whose tasks have the given (n, base correct, plus correct); suites and pass@k follow."""
    tasks = {}
    for tid, (n, base_c, plus_c) in outcomes.items():
        samples = [SampleResult(line=None, verdict=_verdict(i < base_c, None if plus_c is None else i < plus_c))
                   for i in range(n)]  # fmt: skip
        correct = {"base": base_c} if plus_c is None else {"base": base_c, "plus": plus_c}
        tasks[tid] = TaskResult(n=n, correct=correct, samples=samples)
    suites = ["base", "plus"] if any("plus" in t.correct for t in tasks.values()) else ["base"]
    pak = {s: mean_pass_at_k([(t.n, t.correct.get(s, 0)) for t in tasks.values()]) for s in suites}
    return record.model_copy(update={"tasks": tasks, "pass_at_k": pak, "n_tasks": len(tasks), "suites": suites,
                                     "n_samples": sum(t.n for t in tasks.values()), **update})  # fmt: skip


def outcomes_of(record: RunRecord) -> dict[str, tuple[int, int, int | None]]:
    """Per task (n, base correct, plus correct)."""
    return {tid: (t.n, t.base_correct, t.plus_correct) for tid, t in record.tasks.items()}


def save(record: RunRecord, path: Path) -> Path:
    """Write a run record."""
    save_run(path, record)
    return path


def _published_ds1000(data_dir: Path, name: str) -> dict[str, Any]:
    """The overall, per-library and per-perturbation scores of a published DS-1000 result file."""
    text = (data_dir / "reference-samples" / "ds1000" / f"{name}-result.txt").read_text()
    out: dict[str, Any] = {"library": {}, "perturbation_type": {}}
    section = None
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["mean"]:
            out["overall"] = {"score": float(words[1]), "n": 1000}
        elif words[:1] in (["library"], ["perturbation_type"]):
            section = words[0]
        elif section and len(words) == 3 and words[1].isdigit():
            out[section][words[0]] = {"score": float(words[2]), "n": int(words[1])}
    return out


def ds1000_record(template: RunRecord, data_dir: Path, name: str, created: str) -> RunRecord:
    """A DS-1000 run whose breakdown is the published one and whose tasks pass in each library's proportion."""
    import gzip

    breakdown = _published_ds1000(data_dir, name)
    rows = [json.loads(line) for line in gzip.open(data_dir / "ds1000" / "ds1000.jsonl.gz", "rt")]
    seen: dict[str, int] = {}
    outcomes: dict[str, tuple[int, int, int | None]] = {}
    for row in rows:
        lib = row["metadata"]["library"]
        k = seen[lib] = seen.get(lib, 0) + 1
        cell = breakdown["library"][lib]
        outcomes[str(row["metadata"]["problem_id"])] = (1, int(k <= round(cell["score"] * cell["n"])), None)
    ds = DatasetInfo(name="DS-1000", version="2024-05", hash="d5" * 16, path="ds1000.jsonl.gz")
    return altered(template, outcomes, benchmark="ds1000", dataset=ds, model=name, created=created,
                   breakdown=breakdown, benchmark_options={}, title="DS-1000", options={}, selection={},
                   columns=[Column(suite="base", title="DS-1000")])  # fmt: skip


def lcb_record(template: RunRecord, model: str, start: str, end: str, solved: int, created: str) -> RunRecord:
    """A LiveCodeBench run (public tests, a date window) with ``solved`` of 120 problems passing."""
    outcomes: dict[str, tuple[int, int, int | None]] = {f"lcb{i:04d}": (1, int(i < solved), None) for i in range(120)}
    ds = DatasetInfo(name="LiveCodeBench", version="release_v6", hash="1c" * 16, path="lcb.jsonl")
    opts = {"release": "release_v6", "start_date": start, "end_date": end, "platform": None, "difficulty": None,
            "problems": 120, "first_contest_date": start, "last_contest_date": end}  # fmt: skip
    selection = {"release": "release_v6", "start_date": start, "end_date": end}
    return altered(template, outcomes, benchmark="livecodebench", dataset=ds, model=model, created=created,
                   benchmark_options=opts, title="LiveCodeBench", options={}, selection=selection,
                   columns=[Column(suite="base", title="LiveCodeBench")])  # fmt: skip


class Runs:
    """Paths and facts of the runs built for this module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: dict[str, Path] = {}
        self.broken: list[str] = []
        self.mixed_p2f: list[str] = []
        self.mixed_f2p: list[str] = []
        self.registry = root / "registry.sqlite"
        self.orig: RunRecord | None = None


@pytest.fixture(scope="module")
def runs(data_dir: Path, sc2_humaneval: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The session's graded reference samples, an altered copy (10 passing tasks broken) and an identical copy,
    both graded; the rest built."""
    from harness.evaluation import evaluate_samples

    root = tmp_path_factory.mktemp("reports")
    r = Runs(root)
    samples = data_dir / REFERENCE / "humaneval.jsonl"
    quiet = {"data_dir": data_dir, "use_verdict_cache": True, "echo": lambda _: None, "parallel": 2}
    (root / "runs" / "sc2").mkdir(parents=True)
    shutil.copy(sc2_humaneval, root / "runs" / "sc2" / "run.json")
    orig = load_run(root / "runs" / "sc2" / "run.json")
    r.orig, r.paths["orig"] = orig, root / "runs" / "sc2" / "run.json"

    lines = samples.read_text().splitlines()
    passing = [tid for tid, t in orig.tasks.items() if t.plus_correct == 1]
    r.broken = passing[:10]
    broken_dir = root / "runs" / "sc2-broken10"
    broken_dir.mkdir(parents=True)
    out = []
    for line in lines:
        row = json.loads(line)
        if row["task_id"] in r.broken:
            row = {"task_id": row["task_id"], "completion": BROKEN}
        out.append(json.dumps(row))
    (broken_dir / "humaneval.jsonl").write_text("\n".join(out) + "\n")
    evaluate_samples("humaneval", broken_dir / "humaneval.jsonl", output=broken_dir, **quiet)
    r.paths["broken10"] = broken_dir / "run.json"
    same_dir = root / "runs" / "sc2-same"
    same_dir.mkdir(parents=True)
    shutil.copy(samples, same_dir / "humaneval.jsonl")
    evaluate_samples("humaneval", same_dir / "humaneval.jsonl", output=same_dir, **quiet)
    r.paths["same"] = same_dir / "run.json"

    # Flips both ways, edited in the record: 6 passing tasks fail, 1 failing task passes (base and plus).
    failing = [tid for tid, t in orig.tasks.items() if t.base_correct == 0]
    r.mixed_p2f, r.mixed_f2p = passing[20:26], failing[:1]
    oc = outcomes_of(orig)
    for tid in r.mixed_p2f:
        oc[tid] = (1, 0, 0)
    for tid in r.mixed_f2p:
        oc[tid] = (1, 1, 1)
    r.paths["mixed"] = save(altered(orig, oc, model="sc2-mixed"), root / "runs" / "sc2-mixed" / "run.json")

    # The same samples scored on another HumanEval+ release: must never be ranked or compared with the others.
    old = orig.model_copy(update={"model": "sc2-old-dataset", "dataset": DatasetInfo(
        name="HumanEval+", version="v0.1.9", hash="0" * 32, path="HumanEvalPlus-v0.1.9.jsonl.gz")})  # fmt: skip
    r.paths["old"] = save(old, root / "runs" / "sc2-old" / "run.json")

    # Several samples per task (a sampled run): pass fractions, pass@k curves.
    oc = {}
    for i, (tid, (_, b, p)) in enumerate(outcomes_of(orig).items()):
        c = 5 if p else 0
        c = 3 if (p and i % 7 == 0) else (2 if (not p and i % 5 == 0) else c)
        oc[tid] = (5, max(c, 5 * b), c)
    r.paths["sampled"] = save(altered(orig, oc, model="sc2-sampled-t0.8"), root / "runs" / "sc2-sampled" / "run.json")

    # Three checkpoints of a fine-tune, with lineage, a few days apart, improving.
    for k, (day, gain) in enumerate((("2026-01-05", 0), ("2026-01-12", 6), ("2026-01-19", 11))):
        oc = outcomes_of(orig)
        fixes = failing[:gain]
        for tid in fixes:
            oc[tid] = (1, 1, 1)
        lineage = {"dataset": {"sha256": "ab" * 32, "path": "data/sft.jsonl"},
                   "base_model": {"source": "bigcode/starcoder2-15b"},
                   "checkpoint": f"runs/sc2-sft/ckpt-{k}"}  # fmt: skip
        rec = altered(orig, oc, model="hf:runs/sc2-sft/final", created=f"{day}T12:00:00+00:00", lineage=lineage)
        r.paths[f"sft{k}"] = save(rec, root / "runs" / f"sft-{k}" / "run.json")

    # LiveCodeBench: two models on one window, one on another (not comparable).
    r.paths["lcb_a"] = save(lcb_record(orig, "starcoder2-15b-instruct-v0.1", "2024-10-01", "2025-01-31", 31,
                                       "2026-01-02T09:00:00+00:00"), root / "runs" / "lcb-a" / "run.json")  # fmt: skip
    r.paths["lcb_b"] = save(lcb_record(orig, "sc2-mixed", "2024-10-01", "2025-01-31", 28, "2026-01-02T10:00:00+00:00"),
                            root / "runs" / "lcb-b" / "run.json")  # fmt: skip
    r.paths["lcb_c"] = save(lcb_record(orig, "hf:runs/sc2-sft/final", "2024-08-01", "2025-01-31", 35,
                                       "2026-01-20T10:00:00+00:00"), root / "runs" / "lcb-c" / "run.json")  # fmt: skip
    for k, name in enumerate(("codex002", "gpt-3.5-turbo-0613", "gpt-4-0613")):
        rec = ds1000_record(orig, data_dir, name, f"2026-01-0{k + 1}T08:00:00+00:00")
        r.paths[f"ds_{name}"] = save(rec, root / "runs" / f"ds1000-{name}" / "run.json")

    code, out_text, err = run_cli("runs", "add", str(root / "runs"), "--registry", str(r.registry))
    assert code == 0, err
    assert f"indexed {len(r.paths)} run(s)" in out_text
    return r


def _id(r: Runs, name: str) -> str:
    return run_id(r.paths[name], load_run(r.paths[name]).created)


# ---------------------------------------------------------------------- registry
def test_registry_indexes_every_run_with_its_fields(runs: Runs) -> None:
    with Registry(runs.registry) as reg:
        entries = {e.path: e for e in reg.entries()}
        assert len(entries) == len(runs.paths) >= 5
        orig = entries[str(runs.paths["orig"].resolve())]
        assert orig.model == "starcoder2-15b-instruct-v0.1"  # named after the samples' folder
        assert (orig.dataset_name, orig.dataset_version) == ("HumanEval+", "v0.1.10")
        assert orig.dataset_hash == "fe585eb4df8c88d844eeb463ea4d0302"
        assert round(orig.base_pass1, 3) == 0.726 and round(orig.plus_pass1, 3) == 0.640
        assert orig.id == _id(runs, "orig") and len(orig.id) == 12
        assert entries[str(runs.paths["broken10"].resolve())].model == "sc2-broken10"
        sft = entries[str(runs.paths["sft2"].resolve())]
        assert sft.training_data_hash == "ab" * 32 and sft.base_model == "bigcode/starcoder2-15b"
        assert sft.checkpoint == "runs/sc2-sft/ckpt-2"
        lcb = entries[str(runs.paths["lcb_c"].resolve())]
        assert lcb.selection == {"release": "release_v6", "start_date": "2024-08-01", "end_date": "2025-01-31"}
        assert [e.model for e in reg.entries(model="SFT")] == ["hf:runs/sc2-sft/final"] * 4
        assert {e.benchmark for e in reg.entries(benchmark="ds1000")} == {"ds1000"}
        assert {e.model for e in reg.entries(since="2026-01-15")} >= {"hf:runs/sc2-sft/final"}
        assert reg.get(orig.id[:6]).id == orig.id  # a unique prefix works


def test_runs_list_show_rm_and_add_again(runs: Runs, tmp_path: Path) -> None:
    reg = tmp_path / "copy.sqlite"
    shutil.copy(runs.registry, reg)
    code, out, _ = run_cli("runs", "list", "--benchmark", "humaneval", "--model", "sc2-b", "--registry", str(reg))
    assert code == 0 and "sc2-broken10" in out and "sc2-same" not in out
    rid = _id(runs, "sft1")
    code, out, _ = run_cli("runs", "show", rid, "--registry", str(reg))
    assert code == 0 and "bigcode/starcoder2-15b" in out and "checkpoint runs/sc2-sft/ckpt-1" in out
    code, out, _ = run_cli("runs", "rm", rid, "--registry", str(reg))
    assert code == 0 and "untouched" in out and runs.paths["sft1"].exists()
    code, _, err = run_cli("runs", "show", rid, "--registry", str(reg))
    assert code == 2 and f"unknown run id '{rid}'" in err
    code, out, _ = run_cli("runs", "add", str(runs.paths["sft1"]), "--registry", str(reg))
    assert code == 0 and rid in out


def test_evaluate_hook_indexes_the_run(runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runs.orig is not None
    monkeypatch.setenv("HARNESS_REGISTRY", str(tmp_path / "hook.sqlite"))
    rid = index_run(runs.paths["orig"], runs.orig)
    assert rid == _id(runs, "orig")
    with Registry() as reg:
        assert reg.get(rid).model == "starcoder2-15b-instruct-v0.1"
    monkeypatch.setenv("HARNESS_REGISTRY", "off")
    assert index_run(runs.paths["orig"], runs.orig) is None


# ---------------------------------------------------------------------- leaderboard
def test_leaderboard_rows_values_and_notes(runs: Runs) -> None:
    code, out, err = run_cli("leaderboard", "--format", "json", "--registry", str(runs.registry))
    assert code == 0, err
    board = json.loads(out)
    titles = [c["title"] for c in board["columns"]]
    # benchmarks in the registry's display order, suites in grading order, titles from the records
    assert titles == ["HumanEval", "HumanEval+", "LiveCodeBench", "DS-1000"]
    rows = {row["model"]: row for row in board["rows"]}
    # one row per model; the fine-tune's latest checkpoint is the one shown
    assert len(rows) == len(board["rows"]) == 10
    sft = rows["hf:runs/sc2-sft/final"]["cells"]["HumanEval+"]
    assert sft["run"] == _id(runs, "sft2")
    assert sft["pass@1"] == pytest.approx((105 + 11) / 164)
    broken = rows["sc2-broken10"]["cells"]["HumanEval+"]["pass@1"]
    assert broken == pytest.approx((105 - 10) / 164)
    assert rows["gpt-4-0613"]["cells"]["DS-1000"]["pass@1"] == pytest.approx(0.510, abs=0.002)
    assert rows["sc2-sampled-t0.8"]["samples_per_task"] == "5"
    # sorted by the first column, best first, models without it after
    assert board["sorted_by"] == "HumanEval"
    has = ["HumanEval" in row["cells"] for row in board["rows"]]
    assert has == sorted(has, reverse=True)
    values = [row["cells"]["HumanEval"]["pass@1"] for row in board["rows"] if "HumanEval" in row["cells"]]
    assert values == sorted(values, reverse=True)
    code, out, _ = run_cli("leaderboard", "--format", "json", "--sort", "DS-1000", "--registry", str(runs.registry))
    by_he = json.loads(out)
    values = [row["cells"]["DS-1000"]["pass@1"] for row in by_he["rows"] if "DS-1000" in row["cells"]]
    assert values and values == sorted(values, reverse=True)
    # the other dataset version is a separate group, named in a note; LiveCodeBench's windows too
    old = rows["sc2-old-dataset"]["cells"]["HumanEval+"]
    assert old["group"] == "b" and rows["sc2-same"]["cells"]["HumanEval+"]["group"] == "a"
    notes = " ".join(board["notes"])
    assert "HumanEval/HumanEval+: NOT COMPARABLE" in notes and "v0.1.9" in notes and "sc2-old-dataset" in notes
    assert "LiveCodeBench: NOT COMPARABLE" in notes and "2024-08-01..2025-01-31" in notes
    assert "DS-1000: DS-1000 2024-05" in notes


def test_leaderboard_formats(runs: Runs, tmp_path: Path) -> None:
    reg = ["--registry", str(runs.registry)]
    code, md, _ = run_cli("leaderboard", "--benchmarks", "livecodebench", "ds1000", *reg)
    assert code == 0
    assert md.splitlines()[0].startswith("| Model | LiveCodeBench † | DS-1000 |")
    assert "| gpt-4-0613 | – |" in md and "(a)" in md and "NOT COMPARABLE" in md
    code, md, _ = run_cli("leaderboard", "--benchmarks", "livecodebench", "--model", "starcoder2", *reg)
    assert code == 0 and "LiveCodeBench (2024-10-01..2025-01-31)" in md  # one window: in the header
    code, out, _ = run_cli("leaderboard", "--format", "csv", "--output", str(tmp_path / "lb.csv"), *reg)
    assert code == 0
    csv_lines = (tmp_path / "lb.csv").read_text().splitlines()
    assert csv_lines[0].startswith("model,HumanEval,HumanEval group,HumanEval+,HumanEval+ group")
    code, tex, _ = run_cli("leaderboard", "--format", "latex", *reg)
    assert code == 0 and r"\begin{tabular}" in tex
    assert r"\toprule" in tex and "hf:runs/sc2-sft/final" in tex
    code, page, _ = run_cli("leaderboard", "--format", "html", *reg)
    assert code == 0 and '<table id="leaderboard"' in page
    code, _, err = run_cli("leaderboard", "--benchmarks", "mbpp", *reg)
    assert code == 2 and "no runs of mbpp" in err


# ---------------------------------------------------------------------- compare and gate
def _binom_two_sided(b: int, c: int) -> float:
    """The exact McNemar p-value, from scipy's binomial test when available, else summed here in floats."""
    n = b + c
    try:
        from scipy.stats import binomtest

        return float(binomtest(min(b, c), n, 0.5, alternative="two-sided").pvalue) if n else 1.0
    except ImportError:
        return min(1.0, 2 * sum(math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                                         - n * math.log(2)) for k in range(min(b, c) + 1)))  # fmt: skip


def test_compare_broken_copy(runs: Runs) -> None:
    code, out, err = run_cli("compare", _id(runs, "orig"), str(runs.paths["broken10"]), "--json",
                             "--registry", str(runs.registry))  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["comparable"] is True
    for suite in ("base", "plus"):
        s = doc["suites"][suite]
        assert s["pass_to_fail"] == runs.broken and s["fail_to_pass"] == []
        true_diff = -10 / 164
        assert s["difference"] == pytest.approx(true_diff)
        lo, hi = s["ci"]
        assert lo <= true_diff <= hi and hi < 0  # contains the true change, excludes no change
        assert s["mcnemar_p"] == pytest.approx(_binom_two_sided(10, 0), rel=1e-12)
        assert s["mcnemar_p"] == pytest.approx(2 / 2**10)
        assert s["resamples"] == 10_000


def test_compare_flips_both_ways_and_text_output(runs: Runs) -> None:
    code, out, err = run_cli("compare", str(runs.paths["orig"]), str(runs.paths["mixed"]), "--registry",
                             str(runs.registry))  # fmt: skip
    assert code == 0, err
    assert f"pass->fail (6): {', '.join(runs.mixed_p2f)}" in out
    assert f"fail->pass (1): {', '.join(runs.mixed_f2p)}" in out
    p = _binom_two_sided(6, 1)
    assert f"p = {p:.4g}" in out and p == pytest.approx(2 * (1 + 7) / 2**7)


def test_compare_with_several_samples_per_task(runs: Runs) -> None:
    from reports.compare import compare

    with Registry(runs.registry) as reg:
        a, b = reg.get(_id(runs, "orig")), reg.get(_id(runs, "sampled"))
    c = compare(a, b, resamples=2000)
    s = c.suites["plus"]
    assert c.samples_b == (5, 5)
    fa = [t.plus_correct / t.n for t in a.record().tasks.values()]
    fb = [b.record().tasks[tid].plus_correct / 5 for tid in a.record().tasks]
    assert s.diff == pytest.approx(sum(fb) / len(fb) - sum(fa) / len(fa))
    # majority outcome: 3 of 5 still passes, 2 of 5 fails, so no task flips although fractions changed
    assert s.pass_to_fail == [] and s.fail_to_pass == [] and s.p_value == 1.0
    assert len(s.fraction_changes) > 0


def test_compare_refuses_other_dataset_version(runs: Runs) -> None:
    code, _, err = run_cli("compare", str(runs.paths["orig"]), str(runs.paths["old"]), "--registry",
                           str(runs.registry))  # fmt: skip
    assert code == 2
    assert "not comparable" in err and "v0.1.10 vs HumanEval+ v0.1.9" in err and "dataset hashes" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = run_cli("compare", str(runs.paths["orig"]), str(runs.paths["old"]), "--allow-incomparable",
                           "--registry", str(runs.registry))  # fmt: skip
    assert code == 0 and out.count("NOT COMPARABLE") == 1
    code, _, err = run_cli("gate", "--baseline", str(runs.paths["orig"]), "--candidate", str(runs.paths["old"]),
                           "--registry", str(runs.registry))  # fmt: skip
    assert code == 2 and "not comparable" in err
    code, _, err = run_cli("compare", str(runs.paths["orig"]), str(runs.paths["lcb_a"]), "--registry",
                           str(runs.registry))  # fmt: skip
    assert code == 2 and "different benchmarks" in err


def test_gate(runs: Runs) -> None:
    reg = ["--registry", str(runs.registry)]
    base = _id(runs, "orig")
    code, out, _ = run_cli("gate", "--baseline", base, "--candidate", _id(runs, "broken10"), *reg)
    assert code == 1, out
    assert "REGRESSION" in out and "gate: FAIL" in out and "10 pass->fail" in out
    code, out, _ = run_cli("gate", "--baseline", base, "--candidate", str(runs.paths["same"]), *reg)
    assert code == 0, out
    assert "gate: pass" in out and "no drop" in out
    # 6 lost, 1 gained: a 3-point drop, beyond --max-drop but not significant at 0.05 (p = 0.125)
    code, out, _ = run_cli("gate", "--baseline", base, "--candidate", str(runs.paths["mixed"]), *reg)
    assert code == 0, out
    assert "not significant" in out
    # the same drop passes a looser alpha's first rule
    code, out, _ = run_cli("gate", "--baseline", base, "--candidate", str(runs.paths["mixed"]), "--alpha", "0.2", *reg)
    assert code == 1, out
    # an improvement never fails the gate
    code, out, _ = run_cli("gate", "--baseline", _id(runs, "sft0"), "--candidate", _id(runs, "sft2"), "--json", *reg)
    assert code == 0 and json.loads(out)["regression"] is False


def test_gate_refuses_a_candidate_that_lacks_baseline_tasks(runs: Runs, tmp_path: Path) -> None:
    # The bug: a candidate that graded 2 of 164 tasks passed ("162 baseline-only tasks were left out", exit 0).
    assert runs.orig is not None
    two = dict(list(outcomes_of(runs.orig).items())[:2])
    part = save(altered(runs.orig, two, model="sc2-two-tasks"), tmp_path / "two" / "run.json")
    reg = ["--registry", str(runs.registry)]
    code, out, err = run_cli("gate", "--baseline", str(runs.paths["orig"]), "--candidate", str(part), *reg)
    assert code == 4 and out == "", out  # its own exit code: neither a regression (1) nor an input error (2)
    assert len(err.strip().splitlines()) == 1, err
    assert "lacks 162 of the baseline's 164 tasks" in err and "rerun the candidate" in err and "--allow-missing" in err
    code, out, _ = run_cli("gate", "--baseline", str(runs.paths["orig"]), "--candidate", str(part), "--allow-missing",
                           *reg)  # fmt: skip
    assert code == 0 and "over 2 tasks" in out and "162 baseline-only" in out
    # a candidate with every baseline task (and more) is gated as before
    code, out, _ = run_cli("gate", "--baseline", str(part), "--candidate", str(runs.paths["same"]), *reg)
    assert code == 0 and "0 baseline-only and 162 candidate-only" in out


def test_suites_come_from_the_records(runs: Runs) -> None:
    reg = ["--registry", str(runs.registry)]
    base = str(runs.paths["orig"])
    code, out, _ = run_cli("gate", "--baseline", base, "--candidate", str(runs.paths["broken10"]), "--json", *reg)
    assert code == 1 and json.loads(out)["suite"]["suite"] == "plus"  # the last suite both graded
    assert json.loads(out)["suite"]["label"] == "HumanEval+"
    code, out, _ = run_cli("gate", "--baseline", base, "--candidate", str(runs.paths["broken10"]), "--suite", "base",
                           "--json", *reg)  # fmt: skip
    assert code == 1 and json.loads(out)["suite"]["label"] == "HumanEval"
    code, _, err = run_cli("compare", base, str(runs.paths["broken10"]), "--suite", "hidden", *reg)
    assert code == 2 and "hidden is not in both runs (available: base, plus)" in err
    code, out, _ = run_cli("compare", str(runs.paths["lcb_a"]), str(runs.paths["lcb_b"]), "--json", *reg)
    assert code == 0 and list(json.loads(out)["suites"]) == ["base"]
    assert json.loads(out)["suites"]["base"]["label"] == "LiveCodeBench"


# ---------------------------------------------------------------------- errors
def test_errors_are_one_line(runs: Runs, tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    for args in (["runs", "list"], ["leaderboard"], ["report", "--output", str(tmp_path / "r")]):
        code, _, err = run_cli(*args, "--registry", str(empty))
        assert code == 2 and "is empty" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli("compare", "0123456789ab", _id(runs, "orig"), "--registry", str(runs.registry))
    assert code == 2 and "unknown run id '0123456789ab'" in err
    corrupt = tmp_path / "bad" / "run.json"
    corrupt.parent.mkdir()
    corrupt.write_text('{"benchmark": "humaneval", ')
    code, _, err = run_cli("runs", "add", str(corrupt), "--registry", str(empty))
    assert code == 2 and "is corrupt" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("gate", "--baseline", str(corrupt), "--candidate", _id(runs, "orig"), "--registry",
                           str(runs.registry))  # fmt: skip
    assert code == 2 and "is corrupt" in err
    code, _, err = run_cli("compare", str(tmp_path / "missing" / "run.json"), _id(runs, "orig"), "--registry",
                           str(runs.registry))  # fmt: skip
    assert code == 2 and "does not exist" in err
    # a folder walk skips the corrupt record with a warning and indexes the good ones
    shutil.copytree(runs.paths["same"].parent, tmp_path / "bad" / "good")
    code, out, err = run_cli("runs", "add", str(tmp_path / "bad"), "--registry", str(empty))
    assert code == 0 and "indexed 1 run(s)" in out and "skipped" in err and "is corrupt" in err
    # a record deleted after indexing
    gone = tmp_path / "bad" / "good" / "run.json"
    rid = run_id(gone, load_run(gone).created)
    gone.unlink()
    code, _, err = run_cli("runs", "show", rid, "--registry", str(empty))
    assert code == 2 and "does not exist" in err
    not_db = tmp_path / "not.sqlite"
    not_db.write_text("this is not a database, it is a text file " * 50)
    code, _, err = run_cli("runs", "list", "--registry", str(not_db))
    assert code == 2 and "not a usable SQLite database" in err
    with pytest.raises(HarnessError, match="is empty"):
        with Registry(tmp_path / "empty2.sqlite") as reg:
            reg.get("abcdef")


# ---------------------------------------------------------------------- plots and the HTML report
def _extras(root: Path) -> argparse.Namespace:
    """A pipeline funnel, a training run and two decontamination reports, as those subsystems write them."""
    work = root / "pipeline"
    work.mkdir(parents=True, exist_ok=True)
    funnel = {
        "seeds": {"stage": "seeds", "input": 5000, "output": 3100, "removed": {"no docstring": 1200, "too long": 700}},
        "filter": {"stage": "filter", "input": 3100, "output": 2400,
                   "removed": {"type check failed": 500, "benchmark item (humaneval HumanEval/0)": 3,
                               "returns nothing": 197}},
        "dedup": {"stage": "dedup", "input": 2400, "output": 2250, "removed": {"near duplicate": 150}},
        "instructions": {"stage": "instructions", "input": 2250, "output": 2250, "removed": {}},
        "validate": {"stage": "validate", "input": 2250, "output": 1480,
                     "removed": {"tests failed": 610, "no tests": 160}},
    }  # fmt: skip
    (work / "funnel.json").write_text(json.dumps(funnel))
    train = root / "train"
    train.mkdir(exist_ok=True)
    with (train / "metrics.jsonl").open("w") as f:
        for step in range(1, 201):
            loss = 0.55 + 1.4 * math.exp(-step / 35) + 0.04 * math.sin(step)
            f.write(json.dumps({"step": step, "epoch": step / 100, "loss": loss,
                                "learning_rate": 1e-5 * min(1, step / 20) * (1 - step / 220)}) + "\n")  # fmt: skip
    (train / "training_run.json").write_text(json.dumps({"kind": "train", "metrics_file": str(train / "metrics.jsonl"),
                                                         "metrics": {"global_step": 200}}))  # fmt: skip
    reports = []
    for name, rates in (("sc2-selfalign.jsonl", (0.0012, 0.0004, 0.0, 0.0)),
                        ("oss-instruct-75k.jsonl", (0.031, 0.012, 0.0021, 0.0008))):  # fmt: skip
        d = root / "decontam" / name.split(".")[0]
        d.mkdir(parents=True, exist_ok=True)
        summary = {b: {"rows": int(r * 10000), "rate": r, "tasks": 3, "by_method": {}}
                   for b, r in zip(("humaneval", "mbpp", "ds1000", "livecodebench"), rates)}  # fmt: skip
        (d / "report.json").write_text(json.dumps({"dataset": {"path": f"/data/{name}", "rows": 10000},
                                                   "summary": summary}))  # fmt: skip
        reports.append(d / "report.json")
    return argparse.Namespace(funnel=work / "funnel.json", training=train / "training_run.json", decontam=reports)


@pytest.fixture(scope="module")
def report(runs: Runs) -> Path:
    """The HTML report of the module's registry, with every optional plot."""
    extras = _extras(runs.root / "extras")
    out = runs.root / "report"
    code, stdout, err = run_cli("report", "--output", str(out), "--registry", str(runs.registry),
                                "--funnel", str(extras.funnel), "--training", str(extras.training),
                                "--decontam", *map(str, extras.decontam),
                                "--decontam", str(runs.root / "extras" / "absent" / "report.json"))  # fmt: skip
    assert code == 0, err
    assert "absent" in err and "does not exist (skipped)" in err  # a missing input is skipped, and said so
    return out / "report.html"


def test_funnel_stage_order_is_written_by_the_pipeline_report_and_read_from_the_file(tmp_path: Path) -> None:
    from generation.core import STAGES
    from generation.report import report as funnel_report
    from reports.plots import load_funnel

    work = tmp_path / "work"
    work.mkdir()
    stages = {"dedup": {"stage": "dedup", "input": 9, "output": 8, "removed": {"near duplicate": 1}},
              "seeds": {"stage": "seeds", "input": 10, "output": 9, "removed": {"no docstring": 1}}}  # fmt: skip
    (work / "funnel.json").write_text(json.dumps(stages))
    # an old funnel.json without the order: the file's own order
    assert [f["stage"] for f in load_funnel(work)] == ["dedup", "seeds"]
    funnel_report(work)
    doc = json.loads((work / "funnel.json").read_text())
    assert doc["stages"] == list(STAGES) and doc["seeds"]["output"] == 9
    assert [f["stage"] for f in load_funnel(work / "funnel.json")] == ["seeds", "dedup"]
    funnel_report(work)  # a second report reads the file it wrote
    assert json.loads((work / "funnel.json").read_text()) == doc


PLOTS = ("leaderboard", "pass1_over_time", "passk", "ds1000_breakdown", "funnel", "training_loss", "contamination")


def test_plots_written_as_png_and_svg(report: Path) -> None:
    plots = report.parent / "plots"
    for name in PLOTS:
        png, svg = plots / f"{name}.png", plots / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000, name
        assert "<svg" in svg.read_text()[:2000], name
    if os.environ.get("REPORTS_KEEP_PLOTS"):  # for looking at them: REPORTS_KEEP_PLOTS=DIR
        shutil.copytree(report.parent, os.environ["REPORTS_KEEP_PLOTS"], dirs_exist_ok=True)


def test_report_index_links_only_inside_the_site(report: Path, runs: Runs) -> None:
    page = report.read_text()
    assert '<table id="leaderboard"' in page and '<table id="comparisons"' in page
    assert (report.parent / "index.html").read_text() == page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    # Every link and image is a file of the site (or an anchor): it opens from disk, offline, as a CI artifact.
    assert sources and all(s.startswith("#") or (report.parent / s).is_file() for s in sources), sources
    assert sum(s.startswith("plots/") and s.endswith(".png") for s in sources) == len(PLOTS)
    assert "http://" not in page and "https://" not in page
    # Each run has its page, each comparison too.
    for name in ("orig", "broken10", "sft2", "lcb_a"):
        assert f"runs/{_id(runs, name)}.html" in sources, name
    assert f"compare/{_id(runs, 'sft1')}-{_id(runs, 'sft2')}.html" in sources
    # latest vs previous checkpoint of the fine-tune: 5 more tasks solved
    assert "hf:runs/sc2-sft/final" in page and _id(runs, "sft2") in page and _id(runs, "sft1") in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)  # fmt: skip


def test_report_renders_in_headless_chromium(report: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium; scripts/setup.sh does it as root)")
    with tempfile.TemporaryDirectory() as profile:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]  # fmt: skip
        proc = subprocess.run([browser, *flags, "--dump-dom", report.resolve().as_uri()], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert '<table id="leaderboard"' in dom
    rows = re.search(r'<table id="leaderboard".*?<tbody>(.*?)</tbody>', dom, re.S)
    assert rows is not None and rows.group(1).count("<tr>") == 10
    assert "starcoder2-15b-instruct-v0.1" in rows.group(1)
    assert dom.count("<img") == len(PLOTS)
    problems = [line for line in proc.stderr.splitlines()
                if re.search(r"CONSOLE|Uncaught|Failed to load resource|Not allowed to load", line)]  # fmt: skip
    assert not problems, problems
