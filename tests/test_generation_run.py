"""`generation.pipeline.run_pipeline`: every stage, from standard-library seeds to the dataset, with one engine.

A generic scripted backend (registered like any backend, so the pipeline
builds it through the shared engine) answers each kind of prompt: the
docstring judge says Yes, S->C names the seed's function and its first
docstring line, C->I asks for it, I->R answers with code and passing tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.core import PipelineConfig
from generation.pipeline import run_pipeline
from harness.engine import Completion, register_backend
from harness.engine.base import Backend, BackendOptions, Emit
from harness.engine.types import Job


class Generic(Backend):
    """Plausible answers for every stage's prompt, derived from the prompt itself."""

    name = "generic"

    def __init__(self, identifier: str, options: BackendOptions) -> None:
        super().__init__(identifier, options)

    def identity(self) -> dict[str, Any]:
        return {"model": "generic-script"}

    def answer(self, prompt: str) -> str:
        last = prompt.rsplit("### Example", 1)[-1]
        if prompt.endswith("[Property]\n"):
            name = re.search(r"def (\w+)", last).group(1)  # type: ignore[union-attr]
            doc = re.search(r'"""\s*(.+)', last)
            line = doc.group(1).strip().rstrip('".') if doc else name
            return (f"category: function implementation\nlanguage: Python\ndifficulty: easy\n"
                    f"concepts: {name} behaviour, {line}\n")  # fmt: skip
        if prompt.endswith("[Instruction]\n"):
            concepts = re.findall(r"concepts: (.+)", last)[-1]
            name, _, line = concepts.partition(" behaviour, ")
            return f"Write a Python function `{name}_again` that mirrors this behaviour: {line}.\n"
        if prompt.endswith("[Response]\n"):
            instruction = last.split("[Instruction]\n", 1)[1].split("\n\n[Response]", 1)[0]
            name = re.search(r"`(\w+)`", instruction).group(1)  # type: ignore[union-attr]
            return (f"The task reads: {instruction.strip()} Here is a minimal version named {name}.\n\n"
                    f"```python\ndef {name}(value):\n    return value\n```\n\n[Tests]\n```python\n"
                    f"assert {name}(3) == 3\nassert {name}('{name}') == '{name}'\n```\n")  # fmt: skip
        return " Yes"  # the docstring judge

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        for j, job in enumerate(jobs):
            text = self.answer(job.request.prompt or "")
            for i in job.indices:
                emit(j, i, Completion(text, "stop", 50, 20))


register_backend("generic", "tests.test_generation_run:Generic")


def test_every_stage_from_stdlib_seeds_to_a_dataset(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("basedpyright", reason="the type-check filter needs basedpyright (the dev extra)")
    config = PipelineConfig.model_validate({
        "model": "generic:x", "workdir": str(tmp_path / "work"), "data_dir": str(data_dir), "seed": 5,
        "cache": False,
        "seeds": {"source": "stdlib", "max_files": 12, "max_seeds": 40},
        "instruct": {"responses_per_instruction": 3, "batch": 16},
        "validate": {"timeout": 2.0, "parallel": 2, "memory_mb": 1024},
    })  # fmt: skip
    log: list[str] = []
    funnels = run_pipeline(config, echo=log.append)
    assert list(funnels) == ["seeds", "filter", "dedup", "concepts", "instructions", "responses", "validate", "select"]
    assert funnels["seeds"].output > 0 and funnels["filter"].input == funnels["seeds"].output
    assert sum(funnels["filter"].removed.values()) > 0  # the standard library has seeds every filter can drop
    work = tmp_path / "work"
    rows = [json.loads(x) for x in (work / "dataset.jsonl").read_text().splitlines()]
    assert rows, "\n".join(log)
    seeds = {json.loads(x)["key"]: json.loads(x) for x in (work / "seeds.jsonl").read_text().splitlines()}
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for row in rows:
        seed = seeds[row["key"]]  # every row traces back to a real seed ...
        lines = (stdlib / seed["path"]).read_text(encoding="utf-8").splitlines() if not Path(seed["path"]).is_absolute() \
            else Path(seed["path"]).read_text(encoding="utf-8").splitlines()  # fmt: skip
        first = seed["seed"].splitlines()[0].strip()
        assert any(first in ln for ln in lines[seed["lineno"] - 1 : seed["lineno"] + 3])  # ... in a real file
        assert row["instruction"] and row["response"] and row["tests"]
    assert all(f.output <= f.input for name, f in funnels.items() if name not in ("seeds",))
    assert (work / "funnel.json").exists()


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "pipeline.toml"
    bad.write_text('model = "generic:x"\n[instruct]\ntemprature = 0.7\n')
    proc = subprocess.run([sys.executable, "-m", "harness", "generate", "run", "--config", str(bad)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "instruct.temprature: unknown key" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "harness", "generate", "validate", "--model", "generic:x",
                           "--workdir", str(tmp_path / "empty")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "run `harness generate responses`" in proc.stderr, proc.stderr


def test_every_stage_cuts_a_torn_last_line_before_appending(tmp_path: Path) -> None:
    from generation.core import StageFiles

    for stage in ("concepts", "validate"):  # stages that never handled torn lines themselves
        files = StageFiles(tmp_path, stage)
        files.append([{"key": "a"}])
        with files.out.open("a") as f:
            f.write('{"key": "b", "torn')  # an interruption mid-line
        files = StageFiles(tmp_path, stage)
        files.append([{"key": "c"}])
        assert [r["key"] for r in files.rows()] == ["a", "c"] and files.done_keys() == {"a", "c"}
