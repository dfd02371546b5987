"""A persistent verdict cache: re-grading an identical program is free.

Keyed by everything that decides a verdict: grader version, benchmark,
dataset hash, task, the program text and the grading options (limits).
Only definite verdicts (``pass``/``fail``) are stored; a ``timeout`` is
always re-run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from harness.benchmark import GradeOptions, Verdict

GRADER_VERSION = "1"


def verdict_key(
    benchmark: str, dataset_hash: str, task_id: str, program: str, options: GradeOptions, memory: int
) -> str:
    """Cache key of one grading."""
    doc = [GRADER_VERSION, benchmark, dataset_hash, task_id, program, options.model_dump(mode="json"), memory]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8", "surrogatepass")).hexdigest()


class VerdictCache:
    """SQLite-backed verdict store (one file, safe for concurrent runs)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL)")
        self._db.commit()
        self._pending = 0

    def get_many(self, keys: list[str]) -> dict[str, Verdict]:
        """Cached verdicts for the keys that have one."""
        out: dict[str, Verdict] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, text in self._db.execute(f"SELECT key, verdict FROM verdicts WHERE key IN ({marks})", chunk):  # noqa: S608
                try:
                    out[key] = Verdict.model_validate_json(text)
                except ValueError:
                    continue
        return out

    def put(self, key: str, verdict: Verdict) -> None:
        """Store a definite verdict."""
        if verdict.status not in ("pass", "fail") or any(p.status == "timeout" for p in verdict.parts.values()):
            return
        if any("worker died" in r for p in verdict.parts.values() for r in p.reasons.values()):
            return
        self._db.execute(
            "INSERT OR REPLACE INTO verdicts (key, verdict) VALUES (?, ?)",
            (key, verdict.model_copy(update={"cached": False}).model_dump_json()),
        )
        self._pending += 1
        if self._pending >= 50:  # an interrupted run keeps what it graded
            self.commit()

    def commit(self) -> None:
        """Flush pending writes."""
        self._db.commit()
        self._pending = 0

    def close(self) -> None:
        """Commit and close."""
        self._db.commit()
        self._db.close()
