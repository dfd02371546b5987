"""Contamination-free windows: problems published after a model's training cutoff.

``harness decontam --model SPEC --cutoff-date D`` reports, for every benchmark
with dated problems (those that answer ``Benchmark.problem_date``), which
problems postdate the cutoff, and remembers the window for that model (in
``<cache>/model-windows.json``), so later ``harness eval`` runs of the same
model on those benchmarks default to it (``--start-date``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

WINDOWS_FILE = "model-windows.json"


def _file(cache: Path | None = None) -> Path:
    from harness.data import cache_dir

    return (cache or cache_dir()) / WINDOWS_FILE


def parse_day(text: str, flag: str = "--cutoff-date") -> date:
    """A YYYY-MM-DD date or a clear error."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HarnessError(f"{flag} {text!r} is not a date; write YYYY-MM-DD") from None


def window_report(cutoff: date, data_dir: str | Path | None = None,
                  benchmarks: Sequence[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Problems of dated benchmarks published after ``cutoff``: counts, ids, dates, by each breakdown.

    Dated benchmarks are those whose :meth:`~harness.benchmark.Benchmark.problem_date`
    answers; ``benchmarks`` narrows the search. Totals over all of them are at
    the top level, each benchmark's own figures under ``benchmarks``.
    """
    from harness import benchmark as registry

    names = list(benchmarks) if benchmarks is not None else registry.names()
    per: dict[str, dict[str, Any]] = {}
    for name in names:
        bench = registry.reader(name, data_dir=data_dir) if _may_be_dated(name) else None
        if bench is None:
            continue
        problems = bench.problems()
        dated = [(bench.problem_date(p), tid, p) for tid, p in problems.items()]
        if not dated or all(d is None for d, _, _ in dated):
            continue
        after = sorted((d, tid, p) for d, tid, p in dated if d is not None and d > cutoff)
        before = sum(1 for d, _, _ in dated if d is not None and d <= cutoff)
        by: dict[str, dict[str, int]] = {g: {} for g in registry.benchmark_class(name).breakdowns}
        for _, _, p in after:
            for group in by:
                key = str(p.extra.get(group))
                by[group][key] = by[group].get(key, 0) + 1
        per[name] = {
            "title": bench.display_title(),
            "dataset": bench.dataset().model_dump(mode="json"),
            "problems_after_cutoff": len(after),
            "problems_on_or_before_cutoff": before,
            "first_date": after[0][0].isoformat() if after else None,
            "last_date": after[-1][0].isoformat() if after else None,
            "by": by,
            "task_ids": [tid for _, tid, _ in after],
        }
    if not per:
        raise HarnessError("no installed benchmark has dated problems (a training cutoff window needs them)"
                           + (f" among {', '.join(names)}" if benchmarks is not None else ""))  # fmt: skip
    firsts = [w["first_date"] for w in per.values() if w["first_date"]]
    lasts = [w["last_date"] for w in per.values() if w["last_date"]]
    return {
        "cutoff": cutoff.isoformat(),
        "start_date": (cutoff + timedelta(days=1)).isoformat(),
        "benchmarks": per,
        "problems_after_cutoff": sum(w["problems_after_cutoff"] for w in per.values()),
        "problems_on_or_before_cutoff": sum(w["problems_on_or_before_cutoff"] for w in per.values()),
        "first_contest_date": min(firsts) if firsts else None,
        "last_contest_date": max(lasts) if lasts else None,
        "task_ids": [tid for w in per.values() for tid in w["task_ids"]],
    }


def _may_be_dated(name: str) -> bool:
    """Whether a benchmark can date its problems (it overrides ``problem_date``), without loading its data."""
    from harness import benchmark as registry

    cls = registry.benchmark_class(name)
    return cls.problem_date is not registry.Benchmark.problem_date


def remember(model: str, report: dict[str, Any], cache: Path | None = None) -> Path:
    """Store the window for ``model`` (replacing an earlier one)."""
    path = _file(cache)
    doc = _read(path)
    doc[model] = {"cutoff": report["cutoff"], "start_date": report["start_date"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def lookup(model: str, cache: Path | None = None) -> dict[str, str] | None:
    """The remembered window of ``model``, if any."""
    return _read(_file(cache)).get(model)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise HarnessError(f"{path} is corrupt; delete it (it only remembers model cutoff windows)") from None
    return doc if isinstance(doc, dict) else {}
