"""The pipeline's plumbing: configuration, resumable stage outputs, funnels, the shared context.

Every stage reads the previous stage's JSONL output from the work folder and
appends its own, row by row (flushed per batch), together with a
``<stage>.removed.jsonl`` of what it dropped and why.  Each row carries the
``key`` of the item it came from, so a rerun skips every key already
written or removed: an interrupted run loses at most the batch in flight.
Each stage's funnel (in, out, removed by reason, seconds, tokens) goes to
``funnel.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.cliargs import read_config_file
from harness.errors import HarnessError

STAGES = ("seeds", "filter", "dedup", "concepts", "instructions", "responses", "validate", "select")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedsConfig(_Section):
    """Stage 1: where seeds come from."""

    #: "stdlib" (the running Python's standard library), a folder of .py files, a .jsonl/.parquet file with a
    #: ``content`` column, or "hf:DATASET[:SPLIT]" streamed from the Hugging Face hub.
    source: str = "stdlib"
    content_field: str = "content"
    include_methods: bool = True
    max_files: int | None = None
    max_seeds: int | None = None
    licence: str | None = None  # recorded as provenance when the source does not say


class FilterConfig(_Section):
    """Stage 2: which filters run, and their settings."""

    max_lines: int = 150
    banned_imports: list[str] = Field(default_factory=lambda: [
        "os", "sys", "subprocess", "argparse", "shutil", "socket", "threading", "multiprocessing", "asyncio",
        "requests", "urllib", "http", "tkinter", "ctypes", "signal", "pickle", "sqlite3", "logging",
    ])  # fmt: skip
    banned_markers: list[str] = Field(default_factory=lambda: ["TODO", "FIXME", "XXX", "HACK", "BUG", "NotImplemented"])
    typecheck: bool = True
    checker: str = "basedpyright"  # or "pyright"
    typecheck_batch: int = 200
    typecheck_timeout: float = 600.0
    decontaminate: bool = True
    benchmarks: list[str] | Literal["all"] = Field(
        default="all", description="benchmarks to decontaminate against; all: every installed reference benchmark "
        "whose data is here (the registry decides)")
    judge: bool = True
    judge_max_tokens: int = 4


class DedupConfig(_Section):
    """Stage 3: near-deduplication of seeds."""

    threshold: float = 0.5
    num_perm: int = 128
    shingle: int = 5


class InstructConfig(_Section):
    """Stages 4-6: Self-OSS-Instruct sampling."""

    temperature: float = 0.7
    top_p: float = 1.0
    concepts_max_tokens: int = 256
    instruction_max_tokens: int = 512
    response_max_tokens: int = 1536
    responses_per_instruction: int = 10
    fewshot: int = 8  # exemplars per prompt, drawn from the project's own
    batch: int = 256  # requests per engine call (progress is saved per batch)


class ValidateConfig(_Section):
    """Stage 7: running each response's code with its tests in the sandbox."""

    timeout: float = 10.0
    memory_mb: int = 2048
    parallel: int | None = None


class SelectConfig(_Section):
    """Stage 8: final decontamination, deduplication and the dataset."""

    decontaminate: bool = True
    benchmarks: list[str] | Literal["all"] = Field(
        default="all", description="benchmarks to decontaminate against; all: every installed reference benchmark "
        "whose data is here (the registry decides)")
    dedup_threshold: float = 0.5
    output: str = "dataset"  # folder name under the work folder: <output>.jsonl and <output>/ (datasets)


class PipelineConfig(_Section):
    """The whole pipeline (``harness generate run --config FILE``)."""

    model: str = Field(description="engine spec for every model call, e.g. hf:PATH or vllm:bigcode/starcoder2-15b")
    workdir: str = "runs/selfcodealign"
    engine_options: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    data_dir: str | None = None
    cache: bool = True
    seeds: SeedsConfig = Field(default_factory=SeedsConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    instruct: InstructConfig = Field(default_factory=InstructConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    select: SelectConfig = Field(default_factory=SelectConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a TOML or JSON config, apply ``section.key=value`` overrides, validate (unknown keys refused)."""
    doc: dict[str, Any] = {}
    if path is not None:
        doc = read_config_file(path)
    for dotted, value in (overrides or {}).items():
        target = doc
        *parents, last = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise HarnessError(f"--set {dotted}: {part} is not a section")
        target[last] = value
    try:
        return PipelineConfig.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e["loc"])
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append(f"{loc}: {msg}")
        where = f"config {path}" if path else "configuration"
        raise HarnessError(f"{where} is invalid: {'; '.join(problems)}") from None


class Funnel(BaseModel):
    """What one stage did."""

    stage: str
    input: int = 0
    output: int = 0
    removed: dict[str, int] = Field(default_factory=dict)
    skipped_done: int = 0  # inputs a previous run already handled
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    notes: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class StageFiles:
    """Append-only outputs of one stage, and the keys it has handled."""

    def __init__(self, workdir: Path, stage: str) -> None:
        self.workdir = workdir
        self.stage = stage
        self.out = workdir / f"{stage}.jsonl"
        self.removed = workdir / f"{stage}.removed.jsonl"
        workdir.mkdir(parents=True, exist_ok=True)
        # Every stage resumes through this class, so torn lines are cut here once, for all of them.
        for path in (self.out, self.removed):
            repair_torn_tail(path)

    def done_keys(self) -> set[str]:
        """Keys already written or removed by an earlier run (a torn last line is ignored)."""
        return {r["key"] for path in (self.out, self.removed) for r in _read(path, tolerant=True) if "key" in r}

    def removed_counts(self) -> dict[str, int]:
        """Removal reasons over every run so far."""
        counts: dict[str, int] = {}
        for r in _read(self.removed, tolerant=True):
            counts[r.get("reason", "?")] = counts.get(r.get("reason", "?"), 0) + 1
        return counts

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append output rows (each with ``key``); flushed to disk before returning."""
        return _append(self.out, rows)

    def remove(self, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> int:
        """Record dropped items: ``(key, reason, detail)``."""
        return _append(self.removed, ({"key": k, "reason": why, **detail} for k, why, detail in rows))

    def rows(self) -> list[dict[str, Any]]:
        """Every output row so far."""
        return list(_read(self.out, tolerant=True))


def repair_torn_tail(path: Path) -> bool:
    """Cut a last line left without its newline by an interruption; True if something was cut.

    Appending after a torn line would glue the next row onto it and lose both; the torn item is redone.
    """
    if not path.exists():
        return False
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return False
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        # walk back to the previous newline in blocks
        pos = size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            block = f.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                f.truncate(pos - step + nl + 1)
                return True
            pos -= step
        f.truncate(0)
        return True


def _append(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return n


def _read(path: Path, tolerant: bool = False) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                if tolerant:
                    continue  # a line torn by an interruption: its item is redone
                raise HarnessError(f"{path} line {lineno} is not valid JSON") from None


def stage_input(workdir: Path, stage: str) -> list[dict[str, Any]]:
    """The output of ``stage`` (the next stage's input), or an error naming the stage to run first."""
    files = StageFiles(workdir, stage)
    if not files.out.exists():
        raise HarnessError(f"{files.out} does not exist: run `harness generate {stage}` (or `run`) first")
    return files.rows()


@dataclass
class Context:
    """What every stage gets: the config, the work folder, and lazily the one engine and sandbox."""

    config: PipelineConfig
    workdir: Path
    echo: Callable[[str], None] = print
    _engine: Any = None
    _sandbox: Any = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def engine(self) -> Any:
        """The process's shared engine (created on first use)."""
        if self._engine is None:
            from harness.engine import shared_engine

            self._engine = shared_engine(self.config.model, self.config.engine_options, use_cache=self.config.cache)
        return self._engine

    def sandbox(self, timeout_memory_mb: int | None = None, parallel: int | None = None) -> Any:
        """A sandbox for validation (started on first use, closed by :meth:`close`)."""
        if self._sandbox is None:
            from harness.execution import Sandbox, SandboxSettings

            mem = (timeout_memory_mb or self.config.validate_.memory_mb) << 20
            self._sandbox = Sandbox(SandboxSettings(workers=parallel or self.config.validate_.parallel or 0,
                                                    memory_bytes=mem))  # fmt: skip
        return self._sandbox

    def close(self) -> None:
        """Close the sandbox (the engine is the process's and stays)."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None


def save_funnel(workdir: Path, funnel: Funnel) -> None:
    """Merge one stage's funnel into ``funnel.json``."""
    from harness.store import write_json_atomic

    path = workdir / "funnel.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.pop("stages", None)
    doc[funnel.stage] = funnel.model_dump(mode="json")
    order = {s: k for k, s in enumerate(STAGES)}
    # The stage order travels with the data, so readers (reports) never import the pipeline.
    write_json_atomic(path, {"stages": list(STAGES), **dict(sorted(doc.items(), key=lambda kv: order.get(kv[0], 99)))})


def load_funnel(workdir: Path) -> dict[str, Funnel]:
    """Every stage's funnel recorded in ``workdir``."""
    path = workdir / "funnel.json"
    if not path.exists():
        raise HarnessError(f"{path} does not exist: no stage has run in {workdir}")
    return {k: Funnel.model_validate(v) for k, v in json.loads(path.read_text()).items() if k != "stages"}
