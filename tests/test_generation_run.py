"""`generation.pipeline.run_pipeline`: every stage, from standard-library seeds to the dataset, with one engine.

A generic scripted backend (registered like any backend, so the pipeline
builds it through the shared engine) answers each kind of prompt: the
docstring judge says Yes, S->C names the seed's function and its first
docstring line, C->I (or S->I) asks for it, I->R answers with code and tests
that pass, except for functions whose name has an odd length, whose
responses fail.  One finished work folder (a module fixture) then serves the
acceptance tests: every provenance field of the final rows checked against
the source files, a rerun with a changed setting refused with the key named,
``--rerun-from`` redoing only the stages from there, and the ablations.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sysconfig
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.core import PipelineConfig, StageFiles, load_config, read_manifest
from generation.instruct import DIFFICULTIES, derive_seed
from generation.pipeline import run_pipeline
from harness.engine import Completion, register_backend
from harness.engine.base import Backend, BackendOptions, Emit
from harness.engine.types import Job
from harness.errors import HarnessError


class Generic(Backend):
    """Plausible answers for every stage's prompt, derived from the prompt itself; counts prompts by kind."""

    name = "generic"
    calls: Counter[str] = Counter()

    def __init__(self, identifier: str, options: BackendOptions) -> None:
        super().__init__(identifier, options)

    def identity(self) -> dict[str, Any]:
        return {"model": "generic-script"}

    def answer(self, prompt: str) -> tuple[str, str]:
        last = prompt.rsplit("### Example", 1)[-1]
        if prompt.endswith("[Property]\n"):
            name = re.search(r"def (\w+)", last).group(1)  # type: ignore[union-attr]
            doc = re.search(r'"""\s*(.+)', last)
            line = doc.group(1).strip().rstrip('".') if doc else name
            return "S->C", (f"category: function implementation\nlanguage: Python\ndifficulty: easy\n"
                            f"concepts: {name} behaviour, {line}\n")  # fmt: skip
        if prompt.endswith("[Instruction]\n"):
            if "[Code]" in last:  # S->I: straight from the seed
                name = re.search(r"def (\w+)", last).group(1)  # type: ignore[union-attr]
                return "S->I", f"Write a Python function `{name}_again` that does what {name} does, for any input.\n"
            concepts = re.findall(r"concepts: (.+)", last)[-1]
            name, _, line = concepts.partition(" behaviour, ")
            return "C->I", f"Write a Python function `{name}_again` that mirrors this behaviour: {line}.\n"
        if prompt.endswith("[Response]\n"):
            instruction = last.split("[Instruction]\n", 1)[1].split("\n\n[Response]", 1)[0]
            name = re.search(r"`(\w+)`", instruction).group(1)  # type: ignore[union-attr]
            body = "value" if len(name) % 2 == 0 else "None"  # odd-length names fail their tests
            return "I->R", (f"The task reads: {instruction.strip()} Here is a minimal version named {name}.\n\n"
                            f"```python\ndef {name}(value):\n    return {body}\n```\n\n[Tests]\n```python\n"
                            f"assert {name}(3) == 3\nassert {name}('{name}') == '{name}'\n```\n")  # fmt: skip
        return "judge", " Yes"

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        for j, job in enumerate(jobs):
            kind, text = self.answer(job.request.prompt or "")
            Generic.calls[kind] += 1
            for i in job.indices:
                emit(j, i, Completion(text, "stop", 50, 20))


register_backend("generic", "tests.test_generation_run:Generic")


def _config(work: Path, data_dir: Path, **sets: Any) -> PipelineConfig:
    doc: dict[str, Any] = {
        "model": "generic:x", "workdir": str(work), "data_dir": str(data_dir), "seed": 5, "cache": False,
        "seeds": {"source": "stdlib", "max_files": 12, "max_seeds": 40, "sample": "first"},
        "instruct": {"responses_per_instruction": 3, "batch": 16},
        "validate": {"timeout": 2.0, "parallel": 2, "memory_mb": 1024},
    }  # fmt: skip
    for dotted, value in sets.items():
        section, _, key = dotted.partition(".")
        doc.setdefault(section, {})[key] = value
    return PipelineConfig.model_validate(doc)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(scope="module")
def finished(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One whole pipeline run from standard-library seeds (type-check, judge, decontamination all real)."""
    pytest.importorskip("basedpyright", reason="the type-check filter needs basedpyright (the dev extra)")
    work = tmp_path_factory.mktemp("pipeline") / "work"
    log: list[str] = []
    Generic.calls.clear()
    funnels = run_pipeline(_config(work, data_dir), echo=log.append)
    return {"work": work, "funnels": funnels, "log": log, "calls": Counter(Generic.calls)}


def test_every_stage_from_stdlib_seeds_to_a_dataset(finished: dict[str, Any]) -> None:
    funnels, work, log = finished["funnels"], finished["work"], finished["log"]
    assert list(funnels) == ["seeds", "filter", "dedup", "concepts", "instructions", "responses", "validate", "select"]
    assert funnels["seeds"].output > 0 and funnels["filter"].input == funnels["seeds"].output
    assert sum(funnels["filter"].removed.values()) > 0  # the standard library has seeds every filter can drop
    assert all(f.output <= f.input for name, f in funnels.items())  # one unit per stage, seeds included
    seeds_f = funnels["seeds"]
    assert seeds_f.unit == "functions" and seeds_f.input == seeds_f.extra["functions"]
    assert seeds_f.input == seeds_f.output + sum(seeds_f.removed.values())
    assert any("file(s) read" in n for n in seeds_f.notes)
    assert funnels["filter"].extra["typecheck"]["checked"] > 0  # both scopes counted
    assert (work / "funnel.json").exists() and _rows(work / "dataset.jsonl"), "\n".join(log)
    # progress: a line per batch with a rate and the time left, off a terminal
    line = r"\[responses\] batch 1/\d+: \d+ kept, \d+ removed; \d+/\d+ items \(\d+%\), [\d.]+ items/s, [\d,]+ tokens/s, ETA \d"
    assert any(re.match(line, x) for x in log), log
    validate = funnels["validate"]
    assert 0 < validate.output < validate.input  # odd-length names fail
    assert any(re.match(r"\[validate\] in \d+ instructions, out \d+, removed: .*; responses: \d+ of \d+ passed", x)
               for x in log), log
    from generation.report import markdown

    md = markdown(funnels, work)
    assert re.search(r"\| validate \| responses \| \d+ \| \d+ \| \d+\.\d% \|", md) and "| seeds | functions |" in md


def test_final_rows_carry_every_provenance_field_back_to_the_source_files(finished: dict[str, Any]) -> None:
    import datasets

    work = finished["work"]
    rows = _rows(work / "dataset.jsonl")
    seeds = {r["key"]: r for r in _rows(work / "seeds.jsonl")}
    concepts = {r["key"]: r for r in _rows(work / "concepts.jsonl")}
    instructions = {r["key"]: r for r in _rows(work / "instructions.jsonl")}
    responses = {r["key"]: r for r in _rows(work / "responses.jsonl")}
    validated = {r["key"]: r for r in _rows(work / "validate.jsonl")}
    manifest = read_manifest(work)
    assert manifest is not None and manifest["settings"]["model"] == "generic:x"
    from harness.registry import manifest_digest

    assert manifest_digest(manifest["settings"]) == manifest["digest"]  # what lineage readers recompute
    assert manifest["model"]["identity"]["model"] == "generic-script"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for row in rows:
        seed = seeds[row["key"]]
        source = (stdlib / row["path"]).read_text(encoding="utf-8").split("\n")
        span = source[row["lineno"] - 1 : row["end_lineno"]]
        assert textwrap.dedent("\n".join(span)).strip() == row["seed"].strip()  # the line span is the seed
        assert (row["repository"], row["path"], row["licence"], row["name"]) == \
            (seed["repository"], seed["path"], "PSF-2.0", seed["name"])  # fmt: skip
        assert row["repository"].startswith("python-") and row["seed_id"] == \
            f"{row['repository']}/{row['path']}:{row['lineno']}-{row['end_lineno']}:{row['name']}"  # fmt: skip
        assert row["concepts"] == concepts[row["key"]]["concepts"] and row["name"].split(".")[-1] in row["concepts"]
        assert row["instruction"] == instructions[row["key"]]["instruction"]
        assert row["category"] in ("function implementation", "class implementation", "program implementation")
        chosen = responses[row["key"]]["responses"][row["chosen"]]
        assert row["response"] in chosen and row["tests"] in chosen and row["test_code"] in row["tests"]
        assert (row["passed"], row["sampled"], row["validation"]) == (validated[row["key"]]["passed"], 3, "passed")
        assert row["manifest_digest"] == manifest["digest"]
        ident = f"{row['repository']}\0{row['path']}\0{row['name']}\0{row['seed']}"
        assert row["key"] == hashlib.sha1(ident.encode()).hexdigest()  # the seed id is the seed's own hash
        assert row["code"] in row["response"] and row["language"] == "Python" and row["difficulty"] in DIFFICULTIES
        assert row["chosen"] in validated[row["key"]]["passed_indices"]
        assert row["choice_seed"] == derive_seed(5, "validate", row["key"])  # the recorded draw
    card = (work / "dataset" / "README.md").read_text(encoding="utf-8")
    assert f"manifest_digest: \"{manifest['digest']}\"" in card and "generator_model: \"generic:x\"" in card
    loaded = datasets.load_from_disk(str(work / "dataset"))
    assert len(loaded) == len(rows) and {"seed_id", "lineno", "end_lineno", "manifest_digest"} <= set(loaded.column_names)
    assert set(manifest["stages"]) == set(finished["funnels"]) and all(s["finished"] for s in manifest["stages"].values())


def test_a_changed_setting_is_refused_and_rerun_from_redoes_only_the_later_stages(
    finished: dict[str, Any], data_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    shutil.copytree(finished["work"], work)
    before = {p.name: p.read_bytes() for p in work.glob("*.jsonl")}
    with pytest.raises(HarnessError) as refused:
        run_pipeline(_config(work, data_dir, **{"instruct.responses_per_instruction": 2}), echo=lambda _: None)
    message = str(refused.value)
    assert "instruct.responses_per_instruction 3 -> 2 (responses)" in message and "--rerun-from responses" in message
    # the same through the command line: exit 2, the one-line error on stderr, before any engine is made
    import subprocess
    import sys

    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(_config(work, data_dir, **{"instruct.responses_per_instruction": 2})
                                  .model_dump(mode="json", by_alias=True)))  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "harness", "generate", "run", "--config", str(changed)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "instruct.responses_per_instruction 3 -> 2 (responses)" in proc.stderr, proc.stderr
    with pytest.raises(HarnessError, match=r"instruct\.temperature 0\.7 -> 0\.2 \(concepts, instructions, "
                                           r"responses\).*--rerun-from concepts"):  # fmt: skip
        run_pipeline(_config(work, data_dir, **{"instruct.temperature": 0.2}), echo=lambda _: None)
    assert {p.name: p.read_bytes() for p in work.glob("*.jsonl")} == before  # refused before any work
    # a run that stops before the stages a change affects goes ahead, and the manifest still describes the data
    run_pipeline(_config(work, data_dir, **{"instruct.temperature": 0.2}), last="dedup", echo=lambda _: None)
    manifest = read_manifest(work)
    assert manifest is not None and manifest["digest"] == _rows(work / "dataset.jsonl")[0]["manifest_digest"]
    assert manifest["settings"]["instruct"]["temperature"] == 0.7
    Generic.calls.clear()
    log: list[str] = []
    funnels = run_pipeline(_config(work, data_dir, **{"instruct.responses_per_instruction": 2}),
                           rerun_from="responses", echo=log.append)  # fmt: skip
    for stage in ("seeds", "filter", "dedup", "concepts", "instructions"):
        f = funnels[stage]
        assert f.skipped_done == f.input or stage == "seeds" and f.skipped_done == f.output, stage
        assert (work / f"{stage}.jsonl").read_bytes() == before[f"{stage}.jsonl"], stage
    assert set(Generic.calls) == {"I->R"}  # no judge, S->C or C->I prompt: only the responses were redone
    assert funnels["responses"].skipped_done == 0 and funnels["responses"].output > 0
    assert all(r["sampled"] == 2 for r in _rows(work / "dataset.jsonl"))
    superseded = list((work / "superseded").iterdir())
    assert len(superseded) == 1 and {"responses.jsonl", "validate.jsonl", "dataset.jsonl"} <= \
        {p.name for p in superseded[0].iterdir()}  # fmt: skip
    # the same settings again: nothing to do
    again = run_pipeline(_config(work, data_dir, **{"instruct.responses_per_instruction": 2}), echo=lambda _: None)
    assert all(f.skipped_done == f.input for s, f in again.items() if s not in ("seeds",))


def test_ablation_switches_and_the_comparison_table(finished: dict[str, Any], data_dir: Path, tmp_path: Path) -> None:
    from generation.report import compare

    dedup_rows = _rows(finished["work"] / "dedup.jsonl")
    folders = {}
    for name, sets in (("direct-unexecuted", {"instruct.mode": "S->I", "validate.execution": "off"}),
                       ("keep-failed-all", {"validate.execution": "keep_failed", "select.responses": "all"})):  # fmt: skip
        work = tmp_path / name
        StageFiles(work, "dedup").append(dedup_rows)  # seeds made elsewhere are taken as they are
        Generic.calls.clear()
        funnels = run_pipeline(_config(work, data_dir, **{"select.decontaminate": False, **sets}), first="concepts",
                               echo=lambda _: None)  # fmt: skip
        folders[name] = (work, funnels, Counter(Generic.calls))
    work, funnels, calls = folders["direct-unexecuted"]
    assert "S->C" not in calls and calls["S->I"] == len(dedup_rows) and "C->I" not in calls
    rows = _rows(work / "dataset.jsonl")
    assert rows and {r["validation"] for r in rows} == {"not_run"} and all(r["concepts"] is None for r in rows)
    assert funnels["validate"].output == funnels["validate"].input  # nothing ran, every well-formed pair kept
    work, funnels, _ = folders["keep-failed-all"]
    rows = _rows(work / "dataset.jsonl")
    by = Counter(r["validation"] for r in rows)
    assert by["passed"] and by["failed"] == funnels["validate"].extra["kept_failed"] > 0
    assert by["passed"] == 3 * funnels["validate"].output  # every passing response is a row
    table = compare([finished["work"], *(w for w, _, _ in folders.values())])
    lines = [ln for ln in table.splitlines() if ln.startswith("| ") and "workdir" not in ln]
    assert len(lines) == 3 and "| S->I |" in lines[1] and "| off |" in lines[1] and "| keep_failed | all |" in lines[2]
    assert re.search(r"\| \d+\.\d% \|", lines[0])  # a response pass rate


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "pipeline.toml"
    bad.write_text('model = "generic:x"\n[instruct]\ntemprature = 0.7\n')
    proc = subprocess.run([sys.executable, "-m", "harness", "generate", "run", "--config", str(bad)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "instruct.temprature: unknown key (did you mean instruct.temperature?)" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "harness", "generate", "validate", "--model", "generic:x",
                           "--workdir", str(tmp_path / "empty")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "run `harness generate responses`" in proc.stderr, proc.stderr
    for key, near in (("temperature", "instruct.temperature"), ("seeds.max_seed", "seeds.max_seeds"),
                      ("select.threshold", "select.dedup_threshold")):  # fmt: skip
        with pytest.raises(HarnessError, match=re.escape(f"{key}: unknown key (did you mean {near}?)")):
            load_config(None, {"model": "generic:x", key: 1})


def test_every_stage_cuts_a_torn_last_line_before_appending(tmp_path: Path) -> None:
    for stage in ("concepts", "validate"):  # stages that never handled torn lines themselves
        files = StageFiles(tmp_path, stage)
        files.append([{"key": "a"}])
        with files.out.open("a") as f:
            f.write('{"key": "b", "torn')  # an interruption mid-line
        files = StageFiles(tmp_path, stage)
        files.append([{"key": "c"}])
        assert [r["key"] for r in files.rows()] == ["a", "c"] and files.done_keys() == {"a", "c"}
