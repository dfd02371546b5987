"""Lineage of a fine-tuned checkpoint and the training command line, without training (no trl needed).

A checkpoint's evaluation run is followed back through its ``lineage``: the training record, the dataset, the
data pipeline's manifest beside it and the model that generated the data (``harness runs lineage``; one line of
it in ``runs list`` and the leaderboard's notes). Also: the schedule warnings for a dataset smaller than the
effective batch, ``harness train --help`` escaping, and commands whose output pipe is closed early.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.registry import Registry, format_lineage, lineage_summary, manifest_digest, trace_lineage
from harness.store import load_run, save_run
from training.data import load_pairs
from training.record import BaseModelInfo, TrainingRun, save_record

ROOT = Path(__file__).resolve().parent.parent
V1 = ROOT / "tests" / "fixtures" / "run_v1.json"
GENERATOR = "hf:/models/starcoder2-15b"


def run_cli(*args: str) -> tuple[int, str, str]:
    """``harness ARGS`` in-process; returns (exit status, stdout, stderr)."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def pipeline_settings(temperature: float = 0.7) -> dict[str, Any]:
    """The ``settings`` block of a pipeline manifest (the format in generation's manifest)."""
    return {"model": GENERATOR, "engine_options": {"dtype": "bfloat16"}, "seed": 3407,
            "seeds": {"source": "stdlib", "max_seeds": 40}, "instruct": {"temperature": temperature},
            "dedup": {"threshold": 0.7}}  # fmt: skip


def digest_of(settings: dict[str, Any]) -> str:
    """The pipeline's own digest when the generation package has it (so both sides agree), else the registry's."""
    try:
        from generation.core import manifest_digest as pipeline_digest
    except ImportError:
        return manifest_digest(settings)
    assert pipeline_digest(settings) == manifest_digest(settings)  # one canonical form on both sides
    return str(pipeline_digest(settings))


def write_manifest(work: Path, settings: dict[str, Any], digest: str | None = None) -> str:
    """``<work>/manifest.json`` as ``harness generate`` writes it; returns its digest."""
    digest = digest or digest_of(settings)
    doc = {"format": 1, "digest": digest, "settings": settings, "operational": {"workdir": str(work)},
           "model": {"spec": settings["model"], "identity": {"weights_sha256": "cd" * 32}, "describe": None},
           "harness_version": "0.9", "git_commit": None, "created": "2026-11-30T10:00:00+00:00",
           "updated": "2026-11-30T11:00:00+00:00", "stages": {}}  # fmt: skip
    (work / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")
    return digest


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A pipeline work folder, a training record on its dataset, and the checkpoint's evaluation, indexed."""
    root = tmp_path_factory.mktemp("lineage")
    work = root / "work"
    work.mkdir()
    digest = write_manifest(work, pipeline_settings())
    with (work / "dataset.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(3):
            fh.write(json.dumps({"instruction": f"Add {i}.", "response": f"x + {i}", "manifest_digest": digest}) + "\n")
    pairs = load_pairs(work / "dataset.jsonl")
    out = root / "sft"
    record = TrainingRun(run_key="ef" * 32, output=str(out), dataset=pairs.lineage, config={"learning_rate": 1e-5},
                         base_model=BaseModelInfo(source="/models/base", local=True, digest="12" * 32),
                         config_sha256="34" * 32, metrics_file=str(out / "metrics.jsonl"), status="completed",
                         checkpoint=str(out / "final"))  # fmt: skip
    save_record(record)
    ev = load_run(V1).model_copy(update={"model": f"hf:{out / 'final'}", "created": "2026-12-01T09:00:00+00:00",
                                         "lineage": record.lineage()})  # fmt: skip
    run_path = out / "eval" / "humaneval" / "run.json"
    save_run(run_path, ev)
    registry = root / "reg.sqlite"
    with Registry(registry) as reg:
        entry = reg.add(run_path)
        reg.add(V1)  # a run without lineage beside it
    return {"root": root, "work": work, "digest": digest, "pairs": pairs, "record": record, "id": entry.id,
            "registry": registry, "run": run_path}  # fmt: skip


def test_dataset_lineage_records_the_manifest_and_generator(chain: dict[str, Any]) -> None:
    lineage = chain["pairs"].lineage
    assert lineage.manifest_digest == chain["digest"]
    assert lineage.manifest is not None and lineage.manifest.matches and lineage.manifest.intact
    assert lineage.manifest.path == str((chain["work"] / "manifest.json").resolve())
    assert lineage.manifest.model == GENERATOR and lineage.manifest.seed == 3407


def test_eval_run_traces_back_to_the_manifest_and_generating_model(chain: dict[str, Any]) -> None:
    reg = ["--registry", str(chain["registry"])]
    code, out, err = run_cli("runs", "lineage", chain["id"], "--json", *reg)
    assert code == 0, err
    traced = json.loads(out)
    assert traced["checkpoint"] == chain["record"].checkpoint
    assert traced["training_run"] == str(Path(chain["record"].output) / "training_run.json")
    assert traced["training"]["status"] == "completed"
    assert traced["base_model"]["source"] == "/models/base"
    assert traced["dataset"]["sha256"] == chain["pairs"].lineage.sha256
    assert traced["dataset"]["manifest_digest"] == chain["digest"]
    assert traced["manifest"]["path"] == str((chain["work"] / "manifest.json").resolve())
    assert traced["manifest"]["matches"] and traced["manifest"]["digest"] == chain["digest"]
    assert traced["generator"]["model"] == GENERATOR and traced["problems"] == []
    code, text, _ = run_cli("runs", "lineage", chain["run"].as_posix(), *reg)  # a path works too
    assert code == 0 and f"generator   {GENERATOR}" in text and chain["digest"][:16] in text
    code, shown, _ = run_cli("runs", "show", chain["id"], *reg)
    assert code == 0 and f"data by:    {GENERATOR} (pipeline manifest {chain['digest'][:16]}" in shown
    code, listed, _ = run_cli("runs", "list", *reg)
    assert code == 0 and f"ft of /models/base on data {chain['pairs'].lineage.sha256[:8]} (by {GENERATOR})" in listed
    code, board, _ = run_cli("leaderboard", *reg)
    assert code == 0 and f"hf:{chain['record'].checkpoint}: ft of /models/base" in board and GENERATOR in board
    code, _, err = run_cli("runs", "lineage", str(V1), *reg)
    assert code == 2 and "has no training lineage" in err


def test_a_rerun_or_edited_manifest_is_named(chain: dict[str, Any], tmp_path: Path) -> None:
    lineage = json.loads(json.dumps(chain["record"].lineage()))
    work = chain["work"]
    saved = (work / "manifest.json").read_text()
    try:
        write_manifest(work, pipeline_settings(temperature=0.2))  # the work folder was rerun with other settings
        traced = trace_lineage(lineage)
        assert traced is not None and traced["generator"]["model"] == GENERATOR  # as recorded at training time
        assert any("rerun with other settings" in p for p in traced["problems"]), traced["problems"]
        write_manifest(work, pipeline_settings(temperature=0.2), digest=chain["digest"])  # edited, old digest kept
        traced = trace_lineage(lineage)
        assert traced is not None and any("changed by hand" in p for p in traced["problems"]), traced["problems"]
        (work / "manifest.json").unlink()
        traced = trace_lineage(lineage)
        assert traced is not None and any("is gone" in p for p in traced["problems"])
        assert traced["generator"]["model"] == GENERATOR
    finally:
        (work / "manifest.json").write_text(saved)
    # Rows whose manifest was rewritten by hand never lead to a generator.
    (tmp_path / "manifest.json").write_text(saved.replace("3407", "1"))
    (tmp_path / "d.jsonl").write_text(json.dumps({"instruction": "a", "response": "b",
                                                  "manifest_digest": chain["digest"]}) + "\n")  # fmt: skip
    link = load_pairs(tmp_path / "d.jsonl").lineage.manifest
    assert link is not None and not link.intact and "changed by hand" in (link.problem or "")


def test_a_malformed_manifest_is_a_named_problem_not_a_crash(tmp_path: Path) -> None:
    row = json.dumps({"instruction": "a", "response": "b", "manifest_digest": "ab" * 32}) + "\n"
    (tmp_path / "d.jsonl").write_text(row)
    for doc, problem in (("{not json", "cannot be read"), ("[1, 2]", "no settings object"),
                         (json.dumps({"digest": 7, "settings": {"model": 5}, "model": {"identity": "x"},
                                      "harness_version": 1, "created": []}), "changed by hand")):  # fmt: skip
        (tmp_path / "manifest.json").write_text(doc)
        link = load_pairs(tmp_path / "d.jsonl").lineage.manifest
        assert link is not None and not link.matches and problem in (link.problem or ""), (doc, link)
        assert link.model is None and link.identity is None
    # A hand-made run record's lineage of the wrong types is shown as far as it goes, never a crash.
    odd = {"dataset": {"path": 5, "manifest_digest": 7, "manifest": {"path": 3}}, "base_model": 9,
           "training_run": ["x"]}  # fmt: skip
    traced = trace_lineage(odd)
    assert traced is not None and traced["generator"] is None and traced["manifest"] == {"path": 3}
    assert lineage_summary(odd) == "ft of 9 on data ? (manifest 7)"
    assert "base model  9" in format_lineage(traced)


def test_model_card_of_an_adapter_on_a_hub_model(chain: dict[str, Any]) -> None:
    from training.card import model_card

    record = chain["record"].model_copy(update={"adapter": True, "base_model": BaseModelInfo(
        source="bigcode/starcoder2-3b", local=False, commit="ab" * 20)})  # fmt: skip
    card = model_card(record)
    assert card.startswith('---\nbase_model: "bigcode/starcoder2-3b"\nlibrary_name: peft\n')
    assert "a LoRA adapter for [bigcode/starcoder2-3b](https://huggingface.co/bigcode/starcoder2-3b) (commit" in card
    assert f"generated by `{GENERATOR}`" in card and chain["pairs"].lineage.sha256[:16] in card
    local = model_card(chain["record"])
    assert "base_model:" not in local and "fine-tuned version of the local model `/models/base`" in local


def test_schedule_warnings_name_the_fix() -> None:
    from training.sft import schedule_warnings

    small = schedule_warnings(sequences=10, effective_batch=64, unit=1, planned_steps=4, warmup_ratio=0.05,
                              scheduler="linear")  # fmt: skip
    assert len(small) == 2, small
    assert "10 training sequences, fewer than the effective batch of 64" in small[0]
    assert "every optimizer step is a whole epoch" in small[0] and "--set effective_batch_size=2" in small[0]
    assert "step 1 of 4 runs at learning rate 0" in small[1] and "--set warmup_ratio=0" in small[1]
    assert schedule_warnings(6400, 64, 1, 400, 0.05, "linear") == []
    assert schedule_warnings(640, 64, 1, 10, 0.05, "constant") == []  # no warmup in that schedule
    assert schedule_warnings(640, 64, 1, 10, 0.0, "linear") == []
    odd = schedule_warnings(3, 8, 4, 2, 0.0, "linear")
    assert len(odd) == 1 and "per_device_batch_size" in odd[0]


def test_train_help_prints_single_percent_signs() -> None:
    from training.cli import add_parser

    parser = argparse.ArgumentParser(prog="harness")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    text = sub.choices["train"].format_help()
    assert "warmup 5%," in " ".join(text.split()) and "%%" not in text


def _closed_stdout(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run ``python -m harness ARGS`` with its stdout a pipe nobody reads (closed at once, as ``| head`` does)."""
    proc = subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=120), err


def test_output_commands_exit_quietly_when_the_pipe_closes(chain: dict[str, Any]) -> None:
    env = {**os.environ, "HARNESS_REGISTRY": str(chain["registry"]), "HARNESS_CACHE_DIR": str(chain["root"] / "c")}
    for args in (("runs", "list", "--json"), ("leaderboard", "--format", "json")):
        code, err = _closed_stdout(*args, env=env)
        assert (code, err) == (141, ""), (args, code, err)
