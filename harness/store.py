"""Run records: typed, versioned results of one evaluation, stored as files."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

import harness
from harness.benchmark import DatasetInfo, Verdict

RUN_SCHEMA_VERSION = 1


class SampleResult(BaseModel):
    """One sample's verdict within a task."""

    line: int | None = Field(default=None, description="line in the samples file")
    verdict: Verdict


class TaskResult(BaseModel):
    """All samples of one task."""

    n: int
    base_correct: int
    plus_correct: int | None
    samples: list[SampleResult]


class SkippedSample(BaseModel):
    """A sample that was not graded, and why."""

    line: int
    task_id: str | None
    reason: str


class RunSettings(BaseModel):
    """Settings that shaped the verdicts."""

    parallel: int
    min_time_limit: float
    time_limit_factor: float
    time_limit_kind: str = "cpu"
    base_only: bool
    test_details: bool
    verdict_cache: bool
    isolation: str
    memory_limit_bytes: int
    memory_accounting: str = "evalplus"


class RunTimings(BaseModel):
    """Where the time went (seconds)."""

    expected_outputs: float = 0.0
    grading: float = 0.0
    total: float = 0.0
    verdict_cache_hits: int = 0
    graded_programs: int = 0


class GenerationInfo(BaseModel):
    """How the samples were generated (``harness eval``): model, prompts, sampling, engine work."""

    model: str
    backend: str
    identity: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)
    style: str
    sampling: dict[str, Any]
    n_requests: int = 0
    cached_samples: int = 0
    generated_samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reasons: dict[str, int] = Field(default_factory=dict)


class RunRecord(BaseModel):
    """One evaluation run: what was graded, how, and the results."""

    schema_version: int = RUN_SCHEMA_VERSION
    kind: str = "evaluate"
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    harness_version: str = harness.__version__
    git_commit: str | None = None
    benchmark: str
    dataset: DatasetInfo
    benchmark_options: dict[str, Any] = Field(default_factory=dict, description="selection, e.g. a date window")
    notes: list[str] = Field(default_factory=list, description="caveats, e.g. private tests absent")
    breakdown: dict[str, Any] = Field(default_factory=dict, description="scores per library, difficulty, ...")
    model: str | None = None
    generation: GenerationInfo | None = None
    lineage: dict[str, Any] | None = Field(
        default=None, description="for a fine-tuned checkpoint: training data hash, base model, config, checkpoint"
    )
    samples_file: str | None = None
    samples_sha256: str | None = None
    settings: RunSettings
    pass_at_k: dict[str, dict[str, float]] = Field(description="suite (base, plus) -> pass@k -> value")
    n_tasks: int
    n_samples: int
    missing_tasks: list[str] = Field(default_factory=list)
    skipped: list[SkippedSample] = Field(default_factory=list)
    tasks: dict[str, TaskResult]
    timings: RunTimings


def git_commit() -> str | None:
    """The harness checkout's commit, when it runs from a git checkout."""
    root = Path(harness.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write JSON so that an interrupted write never leaves a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_run(path: Path, record: RunRecord) -> None:
    """Store a run record as JSON."""
    write_json_atomic(path, record.model_dump(mode="json"))


def load_run(path: Path) -> RunRecord:
    """Load a run record (raises ``HarnessError`` when missing or corrupt)."""
    from harness.errors import HarnessError

    try:
        return RunRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"run record {path} does not exist") from None
    except ValueError as exc:
        raise HarnessError(f"run record {path} is corrupt: {str(exc).splitlines()[0]}") from None
