"""A persistent verdict cache: re-grading an identical program is free.

Keyed by everything that decides a verdict: grader version, benchmark (its
options and salt), dataset hash, task, the program text and the core grading
options. Only definite verdicts (``pass``/``fail``) are stored; a ``timeout``
is always re-run. Each entry carries a checksum of its text: a damaged entry
is reported once and graded again, never used. Verdicts are also filed under
the program's normalised syntax tree (table ``trees``, see
:func:`harness.grading.normalised_ast`), so another layout of a known
program is not graded again; ``verdicts`` keeps one row per program text. Every verdict is committed as
it is stored (WAL, ``synchronous=NORMAL``: a killed process loses nothing
committed), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from pathlib import Path

from harness.benchmark import GradeOptions, Verdict
from harness.errors import DataError

#: The grading core's version: 3 added what failing programs returned to verdicts (PartVerdict.details);
#: 4 runs a job over its whole time budget near its edge again before its timeout stands (sandbox.BUDGET_RUNS).
GRADER_VERSION = "4"
_TABLES = ("verdicts", "trees")


def verdict_key(
    benchmark: str, dataset_hash: str, task_id: str, program: str, options: GradeOptions, memory: int
) -> str:
    """Cache key of one grading."""
    doc = [GRADER_VERSION, benchmark, dataset_hash, task_id, program, options.model_dump(mode="json"), memory]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8", "surrogatepass")).hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class VerdictCache:
    """SQLite-backed verdict store (one file, safe for concurrent runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.damaged = 0
        #: Keys whose entries failed their checksum in the last :meth:`get_many` (graded again, whatever else says).
        self.damaged_keys: set[str] = set()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS trees (key TEXT PRIMARY KEY, verdict TEXT NOT NULL, "
                             "checksum TEXT)")  # fmt: skip
            cols = {row[1] for row in self._db.execute("PRAGMA table_info(verdicts)")}
            if "checksum" not in cols:  # a cache written before checksums: its entries are re-verified as graded
                self._db.execute("ALTER TABLE verdicts ADD COLUMN checksum TEXT")
            self._db.commit()
        except (sqlite3.Error, OSError) as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> DataError:
        return DataError(f"verdict cache {self.path} is unusable ({exc}); delete it (it only saves re-grading) or "
                         "pass --no-verdict-cache")  # fmt: skip

    def get_many(self, keys: list[str], table: str = "verdicts") -> dict[str, Verdict]:
        """Cached verdicts for the keys that have one (damaged entries are left out and counted).

        ``table``: ``verdicts`` (by program text) or ``trees`` (by syntax tree).
        """
        if table not in _TABLES:
            raise ValueError(f"no verdict table {table!r}")
        out: dict[str, Verdict] = {}
        unique = list(dict.fromkeys(keys))
        damaged = 0
        self.damaged_keys = set()
        try:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, verdict, checksum FROM {table} WHERE key IN ({marks})",  # noqa: S608
                    chunk,
                )
                for key, text, checksum in rows:
                    if checksum is None or checksum != _digest(text):
                        damaged += 1
                        self.damaged_keys.add(key)
                        continue
                    try:
                        out[key] = Verdict.model_validate_json(text)
                    except ValueError:
                        damaged += 1
                        self.damaged_keys.add(key)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if damaged:
            self.damaged += damaged
            print(f"warning: {damaged} entries of the verdict cache {self.path} failed their checksum; "
                  "those programs are graded again", file=sys.stderr)  # fmt: skip
        return out

    def put(self, key: str, verdict: Verdict, table: str = "verdicts") -> None:
        """Store and commit a definite verdict (``table``: ``verdicts`` by text, ``trees`` by syntax tree)."""
        if table not in _TABLES:
            raise ValueError(f"no verdict table {table!r}")
        if verdict.status not in ("pass", "fail") or any(p.status == "timeout" for p in verdict.parts.values()):
            return
        if any("worker died" in r for p in verdict.parts.values() for r in p.reasons.values()):
            return
        text = verdict.model_copy(update={"cached": False}).model_dump_json()
        try:
            self._db.execute(
                f"INSERT OR REPLACE INTO {table} (key, verdict, checksum) VALUES (?, ?, ?)",  # noqa: S608
                (key, text, _digest(text)),
            )
            self._db.commit()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def commit(self) -> None:
        """Flush pending writes (each put commits already)."""
        try:
            self._db.commit()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        """Commit and close."""
        try:
            self._db.commit()
        except sqlite3.Error:
            pass  # nothing is pending: every put committed
        self._db.close()
