"""What the report finds through the registry and the training lineage, with no flag given.

A fine-tuned checkpoint's evaluation carries its lineage (``harness train --eval`` writes it into the run
record): the training record (``training_run.json``: the loss curve), the training dataset (the data
pipeline's work folder holds ``dataset.jsonl``, ``funnel.json``, ``manifest.json`` and any decontamination
``report.json``) and the base model. From these the report draws the funnel, the loss curve and the
contamination heatmap, and pairs each fine-tuned model with its base model's run of the same benchmark.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.registry import RunEntry, trace_lineage
from reports import leaderboard
from reports.compare import incomparable_reasons

#: How deep below a pipeline work folder decontamination reports are looked for.
_AUDIT_DEPTH = 3
_BACKEND = re.compile(r"^[a-z][a-z0-9_-]*:(?!//)")


@dataclass
class Found:
    """An artefact and the run whose lineage led to it."""

    path: Path
    via: str


@dataclass
class Discovered:
    """Funnels (pipeline work folders), training records and decontamination reports found through lineage."""

    funnels: list[Found] = field(default_factory=list)
    training: list[Found] = field(default_factory=list)
    audits: list[Found] = field(default_factory=list)
    #: Each pipeline's manifest link as :func:`harness.registry.trace_lineage` follows it (path, digest, intact,
    #: matches, model, problem) with ``via`` (the run) and ``generator`` (the generating model, when the link holds).
    manifests: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _add(items: list[Found], path: Path, via: str) -> None:
    resolved = path.resolve()
    if all(f.path.resolve() != resolved for f in items):
        items.append(Found(path, via))


def _dataset_path(lineage: dict[str, Any], training: dict[str, Any] | None) -> Path | None:
    data = lineage.get("dataset")
    text = data.get("path") if isinstance(data, dict) else None
    if not text and isinstance(training, dict):
        ds = training.get("dataset")
        text = ds.get("path") if isinstance(ds, dict) else None
    return Path(text) if isinstance(text, str) and text else None


def _work_folder(dataset: Path) -> Path | None:
    """The pipeline work folder of a dataset: the dataset's folder (or the one above) holding ``funnel.json``."""
    start = dataset if dataset.is_dir() else dataset.parent
    for folder in (start, start.parent):
        if (folder / "funnel.json").is_file() or (folder / "manifest.json").is_file():
            return folder
    return None


def _audits_under(folder: Path) -> Iterable[Path]:
    base_depth = len(folder.parts)
    for root, dirs, files in os.walk(folder):
        depth = len(Path(root).parts) - base_depth
        if depth >= _AUDIT_DEPTH:
            dirs[:] = []
        dirs[:] = [d for d in dirs if d not in ("datasets", ".git", "__pycache__")]
        if "report.json" in files:
            doc = _read_json(Path(root) / "report.json")
            if isinstance(doc, dict) and isinstance(doc.get("summary"), dict):
                yield Path(root) / "report.json"


def discover(entries: Sequence[RunEntry]) -> Discovered:
    """Follow every run's lineage to its training record, the dataset's pipeline work folder and its audits."""
    out = Discovered()
    seen_work: set[Path] = set()
    for en in entries:
        lineage = en.lineage or {}
        if not lineage:
            continue
        training = None
        tr = lineage.get("training_run")
        if isinstance(tr, str) and tr:
            tpath = Path(tr)
            if tpath.is_dir():
                tpath = tpath / "training_run.json"
            if tpath.is_file():
                _add(out.training, tpath, en.id)
                training = _read_json(tpath)
            else:
                out.notes.append(f"run {en.id}: its training record {tr} is gone (no loss curve from it)")
        dataset = _dataset_path(lineage, training)
        if dataset is None:
            continue
        traced = trace_lineage(lineage) or {}
        link = traced.get("manifest") if isinstance(traced.get("manifest"), dict) else None
        work = _work_folder(dataset)
        if work is None and link and link.get("path"):
            work = Path(str(link["path"])).parent
        if work is None:
            if not dataset.exists():
                out.notes.append(f"run {en.id}: its training dataset {dataset} is gone (no funnel from it)")
            continue
        if work.resolve() in seen_work:
            continue
        seen_work.add(work.resolve())
        if (work / "funnel.json").is_file():
            _add(out.funnels, work / "funnel.json", en.id)
        if link:
            out.manifests.append({**link, "via": en.id, "generator": traced.get("generator"),
                                  "problems": list(traced.get("problems") or [])})  # fmt: skip
        for audit in _audits_under(work):
            _add(out.audits, audit, en.id)
    return out


def model_key(spec: Any) -> str | None:
    """A model name as comparable text: no backend prefix (``hf:``), a local path made absolute."""
    if isinstance(spec, dict):
        spec = spec.get("source")
    if not isinstance(spec, str) or not spec.strip():
        return None
    text = _BACKEND.sub("", spec.strip())
    if text.startswith(("/", "./", "../", "~")) or os.sep in text and Path(text).expanduser().exists():
        return str(Path(text).expanduser().resolve())
    return text.rstrip("/").lower()


def finetune_pairs(entries: Sequence[RunEntry]) -> list[tuple[RunEntry, RunEntry]]:
    """(base run, fine-tuned run): each fine-tuned model's latest run of a benchmark beside its base model's
    latest comparable run of that benchmark (the base named by the lineage)."""
    latest: dict[tuple[str, str], RunEntry] = {}
    for en in sorted(entries, key=lambda x: (leaderboard.timestamp(x.created), x.indexed)):
        latest[(en.model, en.benchmark)] = en
    pairs = []
    for tuned in latest.values():
        base_key = model_key((tuned.lineage or {}).get("base_model") or tuned.base_model)
        if not tuned.lineage or base_key is None:
            continue
        candidates = [b for b in latest.values() if b.benchmark == tuned.benchmark and b is not tuned
                      and model_key(b.model) == base_key and not incomparable_reasons(b, tuned)]  # fmt: skip
        if candidates:
            pairs.append((candidates[-1], tuned))
    return pairs
