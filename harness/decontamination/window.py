"""LiveCodeBench's contamination-free window: problems published after a model's training cutoff.

``harness decontam --model SPEC --cutoff-date D`` reports which LiveCodeBench
problems postdate the cutoff and remembers the window for that model (in
``<cache>/model-windows.json``), so later ``harness eval`` runs of the same
model on LiveCodeBench default to it.
"""

from __future__ import annotations

import json
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


def window_report(cutoff: date, data_dir: str | Path | None = None) -> dict[str, Any]:
    """LiveCodeBench problems after ``cutoff``: count, ids, dates, by difficulty and platform."""
    from harness import benchmark as registry

    if "livecodebench" not in registry.names():
        raise HarnessError("the LiveCodeBench benchmark is not installed")
    bench = registry.get("livecodebench", data_dir=data_dir)
    problems = bench.problems()
    after, before = [], 0
    for tid, p in problems.items():
        day = date.fromisoformat(str(p.extra["contest_date"])[:10])
        if day > cutoff:
            after.append((day, tid, p.extra.get("difficulty"), p.extra.get("platform")))
        else:
            before += 1
    after.sort()
    by: dict[str, dict[str, int]] = {"difficulty": {}, "platform": {}}
    for _, _, diff, plat in after:
        by["difficulty"][str(diff)] = by["difficulty"].get(str(diff), 0) + 1
        by["platform"][str(plat)] = by["platform"].get(str(plat), 0) + 1
    return {
        "cutoff": cutoff.isoformat(),
        "start_date": (cutoff + timedelta(days=1)).isoformat(),
        "dataset": bench.dataset().model_dump(mode="json"),
        "problems_after_cutoff": len(after),
        "problems_on_or_before_cutoff": before,
        "first_contest_date": after[0][0].isoformat() if after else None,
        "last_contest_date": after[-1][0].isoformat() if after else None,
        "by": by,
        "task_ids": [tid for _, tid, _, _ in after],
    }


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
