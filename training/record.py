"""``<output>/training_run.json``: what a training run was made of and what came out of it.

The record links a checkpoint to its lineage (the dataset's SHA-256, the base
model, the full training configuration) and to everything measured on it: the
training metrics (``metrics.jsonl``, one line per logging step) and the run
records of its evaluations (``<output>/eval/<benchmark>/run.json``, each with a
``lineage.json`` beside it).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

import harness
from harness.errors import HarnessError
from harness.store import write_json_atomic
from training.data import DatasetLineage, DataStats

TRAINING_SCHEMA_VERSION = 1
RECORD_NAME = "training_run.json"
METRICS_NAME = "metrics.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class BaseModelInfo(BaseModel):
    """The model the run started from."""

    source: str = Field(description="as given: a local folder (made absolute) or a hub id")
    local: bool
    digest: str | None = Field(default=None, description="SHA-256 over a local folder's weights, config, tokenizer")
    commit: str | None = Field(default=None, description="hub commit, when the model came from the local hub cache")


class TrainerInfo(BaseModel):
    """How the recipe met the hardware."""

    world_size: int
    per_device_batch_size: int
    gradient_accumulation_steps: int
    effective_batch_size: int
    planned_steps: int
    precision: str
    device: str
    dropout_zeroed: dict[str, float] = Field(default_factory=dict, description="config dropout rates set to 0")
    versions: dict[str, str] = Field(default_factory=dict)


class MetricsSummary(BaseModel):
    """The run's curve in a few numbers (the whole curve is in metrics.jsonl)."""

    global_step: int = 0
    epoch: float = 0.0
    first_loss: float | None = None
    last_loss: float | None = None
    train_loss: float | None = Field(default=None, description="the trainer's mean loss over the last session")
    tokens: int = Field(default=0, description="input tokens seen, all sessions (padding excluded)")
    runtime_s: float = Field(default=0.0, description="the last session's training time (a resume starts a session)")
    tokens_per_second: float | None = Field(default=None, description="the last session's input tokens per second")


class EvalLink(BaseModel):
    """One evaluation of the checkpoint."""

    run: str = Field(description="the evaluation's run record (run.json)")
    model: str = Field(description="engine spec it was generated with")
    adapter: str | None = None
    pass_at_k: dict[str, dict[str, float]] = Field(default_factory=dict)
    n_tasks: int = 0
    settings: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=_now)


class TrainingRun(BaseModel):
    """The training run record."""

    schema_version: int = TRAINING_SCHEMA_VERSION
    kind: str = "train"
    created: str = Field(default_factory=_now)
    updated: str = Field(default_factory=_now)
    harness_version: str = harness.__version__
    # Set by each training session (training.sft.prepare), never by default: a record read back keeps its own.
    git_commit: str | None = Field(default=None, description="the harness checkout's commit (the last session's)")
    status: Literal["running", "interrupted", "completed"] = "running"
    run_key: str = Field(description="SHA-256 of dataset hash, base model and training config: a resume must match")
    output: str
    dataset: DatasetLineage
    data: DataStats | None = None
    base_model: BaseModelInfo
    config: dict[str, Any]
    config_sha256: str
    trainer: TrainerInfo | None = None
    adapter: bool = Field(default=False, description="the checkpoint is a LoRA adapter on base_model")
    checkpoint: str | None = Field(default=None, description="the final model (or adapter) folder")
    resumed_from: list[str] = Field(default_factory=list, description="checkpoints this run resumed from, in order")
    metrics_file: str
    metrics: MetricsSummary = Field(default_factory=MetricsSummary)
    evals: dict[str, EvalLink] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list, description="what the last session warned of (and the fix)")

    def lineage(self, path: Path | None = None) -> dict[str, Any]:
        """The lineage an evaluation run record carries: dataset hash (with the pipeline manifest that made the
        data and its generating model), base model, config, checkpoint."""
        ds = self.dataset
        return {
            "training_run": str(path) if path else str(Path(self.output) / RECORD_NAME),
            "dataset": {"path": ds.path, "sha256": ds.sha256, "rows": ds.rows, "format": ds.format,
                        "manifest_digest": ds.manifest_digest, "manifest_digests": ds.manifest_digests,
                        "manifest": ds.manifest.model_dump(mode="json") if ds.manifest else None},
            "base_model": self.base_model.model_dump(mode="json"),
            "checkpoint": self.checkpoint,
            "adapter": self.adapter,
            "config": self.config,
            "config_sha256": self.config_sha256,
            "run_key": self.run_key,
            "harness_version": self.harness_version,
            "git_commit": self.git_commit,
        }  # fmt: skip


def record_path(output: str | Path) -> Path:
    """Where a run's record lives."""
    return Path(output) / RECORD_NAME


def save_record(record: TrainingRun) -> Path:
    """Write the record atomically (updating its ``updated`` time)."""
    record.updated = _now()
    path = record_path(record.output)
    write_json_atomic(path, record.model_dump(mode="json"))
    return path


def load_record(output: str | Path) -> TrainingRun | None:
    """The record in ``output``, or None when there is none; a corrupt one is an error."""
    path = record_path(output)
    if not path.exists():
        return None
    try:
        return TrainingRun.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise HarnessError(f"training record {path} is corrupt: {str(exc).splitlines()[0]}") from None
