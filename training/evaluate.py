"""Evaluate a trained checkpoint through the shared engine and link the run records to the training lineage.

A full fine-tune is evaluated as ``hf:<output>/final`` (or ``vllm:``).  A LoRA
adapter is evaluated through the engine of its base model with the adapter
loaded (``adapters={"sft": <output>/final}``) and every request routed to it,
with the adapter folder's tokenizer (it carries the chat template the run
trained with).  Each benchmark's run record goes to
``<output>/eval/<benchmark>/run.json`` with the training lineage in its
``lineage`` field (dataset hash, base model, configuration, checkpoint), and
``training_run.json`` lists the evaluations with their pass@k.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import registry
from harness.engine import Engine, Request, Result, shared_engine
from harness.errors import HarnessError
from harness.model_eval import EvalSettings, eval_model
from harness.store import RunRecord, save_run
from training.card import write_model_card
from training.record import EvalLink, TrainingRun, load_record, record_path, save_record

ADAPTER_NAME = "sft"


class AdapterEngine(Engine):
    """A view of a base model's shared engine that sends every request to one LoRA adapter.

    It shares the backend, the response cache and the statistics with the engine it wraps; the adapter's
    name is part of each request, so cached samples of the base model and of the adapter never mix.
    """

    def __init__(self, inner: Engine, adapter: str) -> None:
        # Not Engine.__init__: the backend is already built and its identity computed by ``inner``.
        self.inner, self.adapter = inner, adapter
        self.spec, self.backend, self.cache = inner.spec, inner.backend, inner.cache
        self.identity, self.stats = inner.identity, inner.stats

    def generate(self, requests: Sequence[Request], progress: Callable[[int], None] | None = None) -> list[Result]:
        """Generate through the wrapped engine with the adapter selected on every request."""
        return self.inner.generate([dataclasses.replace(r, adapter=self.adapter) for r in requests], progress)

    def describe(self) -> dict[str, Any]:
        """The wrapped engine's description, naming the adapter the requests used."""
        desc = self.inner.describe()
        desc["options"] = {**desc.get("options", {}), "request_adapter": self.adapter}
        return desc

    def close(self) -> None:
        """The wrapped engine is shared: closing the view leaves it open."""


def checkpoint_engine(record: TrainingRun, backend: str = "hf", options: Mapping[str, Any] | None = None,
                      use_cache: bool = True, cache_dir: str | Path | None = None) -> tuple[str, Engine, str | None]:  # fmt: skip
    """(spec, engine, adapter name) for a finished run's checkpoint."""
    if record.status != "completed" or not record.checkpoint:
        raise HarnessError(f"training run in {record.output} is {record.status}: there is no final checkpoint to "
                           "evaluate yet (rerun harness train to finish it)")  # fmt: skip
    ckpt = Path(record.checkpoint)
    if not ckpt.is_dir():
        raise HarnessError(f"checkpoint {ckpt} named by {record_path(record.output)} does not exist")
    opts = dict(options or {})
    if record.adapter:
        spec = f"{backend}:{record.base_model.source}"
        opts["adapters"] = {**dict(opts.get("adapters") or {}), ADAPTER_NAME: str(ckpt)}
        # The adapter folder's tokenizer holds the chat template the run formatted with (the base may have none).
        opts.setdefault("tokenizer", str(ckpt))
        engine: Engine = shared_engine(spec, opts, cache_dir=cache_dir, use_cache=use_cache)
        return spec, AdapterEngine(engine, ADAPTER_NAME), ADAPTER_NAME
    spec = f"{backend}:{ckpt}"
    return spec, shared_engine(spec, opts, cache_dir=cache_dir, use_cache=use_cache), None


def evaluate_run(output: str | Path, benchmarks: Sequence[str], settings: EvalSettings = EvalSettings(), *,
                 backend: str = "hf", engine_options: Mapping[str, Any] | None = None, use_cache: bool = True,
                 cache_dir: str | Path | None = None, data_dir: str | Path | None = None, parallel: int | None = None,
                 echo: Callable[[str], None] = print) -> dict[str, RunRecord]:  # fmt: skip
    """Evaluate the run in ``output`` on ``benchmarks``; returns the run records, each linked to the lineage."""
    out = Path(output)
    record = load_record(out)
    if record is None:
        raise HarnessError(f"{out} holds no training run ({record_path(out).name} is missing)")
    spec, engine, adapter = checkpoint_engine(record, backend, engine_options, use_cache, cache_dir)
    eval_dir = out / "eval"
    records = eval_model(spec, list(benchmarks), eval_dir, settings, engine=engine, data_dir=data_dir,
                         parallel=parallel, echo=echo)  # fmt: skip
    lineage = record.lineage(record_path(out).resolve())
    for name, rec in records.items():
        run_path = eval_dir / name / "run.json"
        link_lineage(rec, lineage)
        save_run(run_path, rec)
        registry.index_run(run_path, rec)  # again, now with the lineage
        record.evals[name] = EvalLink(run=str(run_path.resolve()), model=spec, adapter=adapter,
                                      pass_at_k=rec.pass_at_k, n_tasks=rec.n_tasks,
                                      settings=dataclasses.asdict(settings))  # fmt: skip
    save_record(record)
    if record.checkpoint and Path(record.checkpoint).is_dir():
        write_model_card(record, record.checkpoint)  # the card lists the scores too
    echo(f"evaluations linked to {record_path(out)} (dataset sha256 {record.dataset.sha256[:16]})")
    return records


def link_lineage(rec: RunRecord, lineage: Mapping[str, Any]) -> None:
    """Put the training lineage into an evaluation's run record: its ``lineage`` field, written once, as data."""
    rec.lineage = dict(lineage)
