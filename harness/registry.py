"""The run registry: a SQLite index of run records (``run.json``) for listing, leaderboards and comparisons.

The records stay where they were written; the registry only indexes them (id,
model, benchmark, its title, suites and leaderboard column titles, dataset
name/version/hash, the record's selection (such as LiveCodeBench's date
window), harness version, date, pass@k per suite, training lineage, path),
so deleting an entry never deletes results and re-indexing a file replaces its
entry. Location: ``--registry PATH``, else ``$HARNESS_REGISTRY``, else
``<harness cache>/runs.sqlite``. ``HARNESS_REGISTRY=off`` stops ``harness
evaluate`` from indexing the runs it writes (the explicit commands still work
on a path given with ``--registry``).

A run's id is the first 12 hex digits of SHA-256 over its record's absolute
path and creation time: stable for a stored record, different for a new run
written into the same folder (which then replaces the old entry, since the old
record is gone).

The index has a schema version of its own (:data:`SCHEMA_VERSION`): opening a
registry written by an older harness adds the missing columns and re-indexes
its entries from their record files, keeping the model names they were given.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store import RunRecord, load_run

ENV_VAR = "HARNESS_REGISTRY"
#: v1: the first index; v2: the benchmark's title, suites and column titles (record schema v2).
SCHEMA_VERSION = 2
# File names a folder walk treats as run records: harness's ``run.json`` and EvalPlus-style ``X_run.json``.
_RUN_FILE = re.compile(r"(^|_)run\.json$")
# Sample-file stems too generic to name a model (the folder above names it instead); every registered
# benchmark's name is generic too (published samples are laid out as ``<model>/<benchmark>.jsonl``).
_GENERIC_STEMS = frozenset({"samples", "answers", "completions", "generations"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    dataset_name TEXT NOT NULL,
    dataset_version TEXT NOT NULL,
    dataset_hash TEXT NOT NULL,
    selection TEXT NOT NULL,
    options TEXT NOT NULL,
    tasks_hash TEXT NOT NULL,
    harness_version TEXT,
    git_commit TEXT,
    created TEXT NOT NULL,
    kind TEXT,
    n_tasks INTEGER NOT NULL,
    n_samples INTEGER NOT NULL,
    samples_per_task INTEGER NOT NULL,
    base_pass1 REAL,
    plus_pass1 REAL,
    pass_at_k TEXT NOT NULL,
    training_data_hash TEXT,
    base_model TEXT,
    checkpoint TEXT,
    lineage TEXT,
    indexed TEXT NOT NULL,
    title TEXT,
    suites TEXT,
    columns TEXT
);
CREATE INDEX IF NOT EXISTS runs_model ON runs (model, benchmark, created);
CREATE INDEX IF NOT EXISTS runs_benchmark ON runs (benchmark, created);
CREATE INDEX IF NOT EXISTS runs_dataset ON runs (dataset_hash);
"""
# Columns added after v1, with their SQL types: a v1 registry gets them with ALTER TABLE (see Registry._upgrade).
_ADDED_COLUMNS = (("title", "TEXT"), ("suites", "TEXT"), ("columns", "TEXT"))


def default_path() -> Path:
    """``$HARNESS_REGISTRY`` when set (and not ``off``), else ``<harness cache>/runs.sqlite``."""
    from harness.data import cache_dir
    from harness.settings import current

    if current().registry is not None:
        return current().registry  # type: ignore[return-value]

    return cache_dir() / "runs.sqlite"


def run_id(path: str | os.PathLike[str], created: str) -> str:
    """The stable short id of the record stored at ``path`` with creation time ``created``."""
    key = f"{Path(path).resolve()}|{created}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def _generic_stems(record: RunRecord) -> set[str]:
    """File stems that name a benchmark or a format rather than a model."""
    from harness.benchmark import names

    return {*_GENERIC_STEMS, record.benchmark.lower(), *(n.lower() for n in names())}


def model_name(record: RunRecord, path: str | os.PathLike[str] | None = None, model: str | None = None) -> str:
    """The model a record belongs to.

    ``model`` (``runs add --model``) wins; then the record's own ``model`` or generation block (``harness
    eval`` records); then the samples file (``harness evaluate`` of a stored file): its stem, or its folder
    when the stem is generic (``samples.jsonl``, ``<benchmark>.jsonl``, ``completions.jsonl``, ..., the way
    published samples are laid out); else the run's folder.
    """
    if model:
        return model
    if record.model:
        return record.model
    if record.generation is not None and record.generation.model:
        return record.generation.model
    if record.samples_file:
        samples = Path(record.samples_file)
        stem = samples.name[: -len(".jsonl")] if samples.name.endswith(".jsonl") else samples.stem
        if stem and stem.lower() not in _generic_stems(record):
            return stem
        if samples.parent.name:
            return samples.parent.name
    if path is not None:
        return Path(path).resolve().parent.name or "unknown"
    return "unknown"


def tasks_hash(task_ids: Iterable[str]) -> str:
    """A short digest of the scored task set: runs over different subsets (``--limit``) must not be ranked together."""
    return hashlib.sha256("\n".join(sorted(task_ids)).encode("utf-8")).hexdigest()[:12]


def read_lineage(raw_lineage: Any, run_path: Path | None) -> dict[str, Any] | None:
    """Training lineage of a run: the record's ``lineage`` field, else a ``lineage.json`` beside an old record.

    ``harness train --eval`` writes the field (v1 records that carried it only in a note get it when they
    migrate, see :func:`harness.store.migrate_v1`); some older runs have the side file instead. Returns the
    lineage with ``training_data_hash``, ``base_model`` (its source) and ``checkpoint`` on top, or None.
    """
    lineage = raw_lineage if isinstance(raw_lineage, dict) else None
    if lineage is None and run_path is not None:
        beside = run_path.parent / "lineage.json"
        if beside.is_file():
            try:
                loaded = json.loads(beside.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = None  # a broken side file must not stop indexing the run itself
            lineage = loaded if isinstance(loaded, dict) else None
    if lineage is None:
        return None
    data = lineage.get("dataset")
    base = lineage.get("base_model")
    return {
        **lineage,
        "training_data_hash": lineage.get("training_data_hash")
        or (data.get("sha256") if isinstance(data, dict) else data if isinstance(data, str) else None),
        "base_model": base.get("source") if isinstance(base, dict) else base,
        "checkpoint": lineage.get("checkpoint"),
    }


def column_titles(record: RunRecord) -> list[dict[str, str]]:
    """``[{"suite", "title"}]`` for every suite the record graded, in grading order.

    The record's declared columns; a record that declares none (v1) gets the installed benchmark's columns,
    so its numbers land in the same leaderboard columns as newer runs; else :meth:`RunRecord.suite_titles`.
    A one-suite benchmark's column is titled by the benchmark's title.
    """
    declared = {c.suite: c.title for c in record.columns}
    title = record.title
    if not declared:
        cls = _installed(record.benchmark)
        if cls is not None:
            declared = {c.suite: c.title for c in cls.leaderboard_columns()}
            title = title or cls.display_title()
    fallback = record.suite_titles()
    if len(record.suites) == 1 and record.suites[0] not in declared and title:
        declared[record.suites[0]] = title
    return [{"suite": s, "title": declared.get(s) or fallback[s]} for s in record.suites]


def _installed(name: str) -> Any:
    """The installed benchmark class called ``name``, or None (a record may outlive its plugin)."""
    from harness.benchmark import benchmark_class

    try:
        return benchmark_class(name)
    except HarnessError:
        return None


@dataclass
class RunEntry:
    """One indexed run record (what the registry knows without opening the record)."""

    id: str
    path: str
    model: str
    benchmark: str
    dataset_name: str
    dataset_version: str
    dataset_hash: str
    selection: dict[str, Any]
    options: dict[str, Any]
    tasks_hash: str
    harness_version: str | None
    git_commit: str | None
    created: str
    kind: str | None
    n_tasks: int
    n_samples: int
    samples_per_task: int
    base_pass1: float | None
    plus_pass1: float | None
    pass_at_k: dict[str, dict[str, float]]
    training_data_hash: str | None = None
    base_model: str | None = None
    checkpoint: str | None = None
    lineage: dict[str, Any] | None = None
    indexed: str = ""
    title: str | None = None
    suites: list[str] | None = None
    columns: list[dict[str, str]] | None = None
    _record: RunRecord | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Rows an older harness wrote into an upgraded registry have no suites or titles: derive them.
        if not self.suites:
            self.suites = list(self.pass_at_k) or ["base"]
        if self.columns is None:
            self.columns = []
        if not self.title:
            self.title = self.dataset_name

    def record(self) -> RunRecord:
        """The full run record (loaded once; a missing or corrupt file is a one-line ``HarnessError``)."""
        if self._record is None:
            self._record = load_run(Path(self.path))
        return self._record

    def suite_titles(self) -> dict[str, str]:
        """Suite -> column title, for every suite of the run (the record's titles, see :func:`column_titles`)."""
        titles = {c["suite"]: c["title"] for c in self.columns or []}
        suites = self.suites or []
        for k, suite in enumerate(suites):
            if suite not in titles:
                titles[suite] = (self.title or self.dataset_name) if len(suites) == 1 else (
                    self.dataset_name if k == 0 else f"{self.dataset_name} ({suite})")  # fmt: skip
        return titles

    def pass1(self, suite: str) -> float | None:
        """pass@1 of ``suite`` (None when the run did not grade it)."""
        value = self.pass_at_k.get(suite, {}).get("pass@1")
        return float(value) if value is not None else None

    def dataset_label(self) -> str:
        """``HumanEval+ v0.1.10 (fe585eb4)``."""
        return f"{self.dataset_name} {self.dataset_version} ({self.dataset_hash[:8]})"

    def selection_label(self) -> str | None:
        """The run's selection as text (a ``start..end`` date window, then the other options), if any.

        A value equal to the dataset version (a release that is the version) is already in the dataset label.
        """
        sel = {k: v for k, v in self.selection.items() if v is not None and v != self.dataset_version}
        parts = []
        start, end = sel.pop("start_date", None), sel.pop("end_date", None)
        if start is not None or end is not None:
            parts.append(f"{start or '…'}..{end or '…'}")
        parts += [f"{k} {v}" for k, v in sel.items()]
        return ", ".join(parts) or None

    def comparability_key(self) -> tuple[str, ...]:
        """Runs with equal keys scored the same problems of the same dataset file, so their numbers compare."""
        return (self.benchmark, self.dataset_name, self.dataset_version, self.dataset_hash,
                json.dumps(self.selection, sort_keys=True), self.tasks_hash)  # fmt: skip

    def short(self) -> str:
        """``id model benchmark date`` for messages."""
        return f"{self.id} ({self.model}, {self.benchmark}, {self.created})"

    def to_json(self) -> dict[str, Any]:
        """Every indexed field as plain data."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def entry_from_record(path: str | os.PathLike[str], record: RunRecord, model: str | None = None) -> RunEntry:
    """Index fields of ``record`` stored at ``path`` (``model`` overrides the name the record implies)."""
    run_path = Path(path).resolve()
    lineage = read_lineage(record.lineage, run_path)
    ns = [t.n for t in record.tasks.values()]
    columns = column_titles(record)
    suites = list(record.suites)
    first = record.pass_at_k.get(suites[0], {}).get("pass@1") if suites else None
    last = record.pass_at_k.get(suites[-1], {}).get("pass@1") if len(suites) > 1 else None
    cls = None if record.title else _installed(record.benchmark)
    return RunEntry(
        id=run_id(run_path, record.created),
        path=str(run_path),
        model=model_name(record, run_path, model),
        benchmark=record.benchmark,
        dataset_name=record.dataset.name,
        dataset_version=record.dataset.version,
        dataset_hash=record.dataset.hash,
        selection=_plain(record.selection),
        options=_plain(record.benchmark_options),
        tasks_hash=tasks_hash(record.tasks),
        harness_version=record.harness_version,
        git_commit=record.git_commit,
        created=record.created,
        kind=record.kind,
        n_tasks=record.n_tasks,
        n_samples=record.n_samples,
        samples_per_task=min(ns) if ns else 0,
        # Headline columns: the first suite's pass@1 and, with several suites, the last (strictest) one's.
        base_pass1=first,
        plus_pass1=last,
        pass_at_k=record.pass_at_k,
        training_data_hash=lineage.get("training_data_hash") if lineage else None,
        base_model=lineage.get("base_model") if lineage else None,
        checkpoint=lineage.get("checkpoint") if lineage else None,
        lineage=lineage,
        indexed=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        title=record.title or (cls.display_title() if cls is not None else record.dataset.name),
        suites=suites,
        columns=columns,
        _record=record,
    )


def load_entry(path: str | os.PathLike[str], model: str | None = None) -> RunEntry:
    """Read a run record file (a ``run.json`` or a folder holding one) into an entry, without indexing it."""
    run_path = _run_file(Path(path))
    return entry_from_record(run_path, load_run(run_path), model)


def _run_file(path: Path) -> Path:
    if path.is_dir():
        candidate = path / "run.json"
        if candidate.is_file():
            return candidate
        raise HarnessError(f"{path} holds no run.json (name the run record file, or index the folder with "
                           "`harness runs add`)")  # fmt: skip
    if not path.exists():
        raise HarnessError(f"run record {path} does not exist")
    return path


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


_COLUMNS = [
    "id", "path", "model", "benchmark", "dataset_name", "dataset_version", "dataset_hash", "selection", "options",
    "tasks_hash", "harness_version", "git_commit", "created", "kind", "n_tasks", "n_samples", "samples_per_task",
    "base_pass1", "plus_pass1", "pass_at_k", "training_data_hash", "base_model", "checkpoint", "lineage", "indexed",
    "title", "suites", "columns",
]  # fmt: skip
_JSON_COLUMNS = {"selection", "options", "pass_at_k", "lineage", "suites", "columns"}


class Registry:
    """The SQLite index of run records."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        """Open (creating when absent) the registry at ``path`` (default: :func:`default_path`)."""
        self.path = Path(path).expanduser() if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A generous busy timeout: evaluations running side by side index their runs into the same file.
            self._db = sqlite3.connect(self.path, timeout=60)
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._db.commit()
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            raise HarnessError(f"registry {self.path} is not a usable SQLite database ({exc}); point --registry "
                               f"or ${ENV_VAR} elsewhere, or remove the file and re-index with `harness runs add`"
                               ) from None  # fmt: skip
        except OSError as exc:
            raise HarnessError(f"cannot open the registry {self.path}: {exc}") from None

    def _schema_version(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            return int(row[0]) if row else 0
        except ValueError:
            return 0

    def _upgrade(self) -> None:
        """Bring a registry an older harness wrote up to :data:`SCHEMA_VERSION`, in one transaction.

        Missing columns are added (ALTER TABLE keeps every row), then each entry without the new fields is
        re-indexed from its record file, keeping its model name (it may have come from ``runs add --model``)
        and its id; an entry whose record is gone keeps what the old index knew and derives its suites.
        """
        have = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        if self._schema_version() >= SCHEMA_VERSION and all(c in have for c, _ in _ADDED_COLUMNS):
            return
        # IMMEDIATE takes the write lock first, so two processes opening the old file upgrade it once.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            have = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    self._db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            stale = self._db.execute("SELECT id, path, model, indexed FROM runs WHERE suites IS NULL").fetchall()
            for rid, path, model, indexed in stale:
                try:
                    entry = entry_from_record(path, load_run(Path(path)), model)
                except HarnessError:
                    continue  # the record is gone or broken: RunEntry derives suites and titles from the row
                entry.indexed = indexed
                self._db.execute("DELETE FROM runs WHERE id = ? OR path = ?", (rid, entry.path))
                self._insert(entry)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    def _insert(self, entry: RunEntry) -> None:
        values = [json.dumps(getattr(entry, c)) if c in _JSON_COLUMNS else getattr(entry, c) for c in _COLUMNS]
        self._db.execute(f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                         values)  # fmt: skip

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # ------------------------------------------------------------------ writing
    def add(self, path: str | os.PathLike[str], record: RunRecord | None = None, model: str | None = None) -> RunEntry:
        """Index the run record at ``path`` (``record``: the already loaded record, as a hook passes it).

        An entry for the same file is replaced, so re-indexing picks up a rewritten record.
        """
        entry = entry_from_record(path, record, model) if record is not None else load_entry(path, model)
        with self._db:
            self._db.execute("DELETE FROM runs WHERE path = ? OR id = ?", (entry.path, entry.id))
            self._insert(entry)
        return entry

    def add_paths(self, paths: Iterable[str | os.PathLike[str]], model: str | None = None
                  ) -> tuple[list[RunEntry], list[str]]:  # fmt: skip
        """Index files and folders (folders recursively: every ``run.json`` and ``*_run.json``).

        Returns the entries and one warning per record that could not be indexed. A file named explicitly
        that is missing or corrupt is an error; inside a folder it is a warning, so one bad record does
        not stop indexing the rest.
        """
        entries: list[RunEntry] = []
        warnings: list[str] = []
        for given in paths:
            p = Path(given)
            if p.is_dir():
                found = sorted(f for f in p.rglob("*.json") if _RUN_FILE.search(f.name) and f.is_file())
                if not found:
                    warnings.append(f"no run records (run.json, *_run.json) under {p}")
                for f in found:
                    try:
                        entries.append(self.add(f, model=model))
                    except HarnessError as exc:
                        warnings.append(f"skipped {f}: {exc}")
            else:
                entries.append(self.add(p, model=model))
        return entries, warnings

    def remove(self, ref: str) -> RunEntry:
        """Drop a run's entry (the record file stays)."""
        entry = self.get(ref)
        with self._db:
            self._db.execute("DELETE FROM runs WHERE id = ?", (entry.id,))
        return entry

    # ------------------------------------------------------------------ reading
    def count(self) -> int:
        """Number of indexed runs."""
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def require_runs(self) -> None:
        """A one-line error when nothing is indexed (every report needs runs)."""
        if self.count() == 0:
            raise HarnessError(f"the run registry {self.path} is empty: index run records with "
                               "`harness runs add PATH...` (`harness evaluate`/`harness eval` index the runs they "
                               "write)")  # fmt: skip

    def entries(self, model: str | None = None, benchmark: str | None = None, since: str | None = None,
                benchmarks: Iterable[str] | None = None) -> list[RunEntry]:  # fmt: skip
        """Indexed runs, oldest first; ``model`` matches case-insensitively as a substring, ``since`` a date prefix."""
        where, args = [], []
        if model:
            where.append("instr(lower(model), lower(?)) > 0")
            args.append(model)
        if benchmark:
            where.append("benchmark = ?")
            args.append(benchmark)
        if benchmarks is not None:
            names = list(benchmarks)
            where.append(f"benchmark IN ({', '.join('?' * len(names))})" if names else "0")
            args.extend(names)
        if since:
            where.append("created >= ?")
            args.append(_normalise_since(since))
        sql = f"SELECT {', '.join(_COLUMNS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, indexed, id"
        entries = [self._entry(row) for row in self._db.execute(sql, args)]
        # A record deleted from disk is no result any more: leave it out (its entry stays until `runs rm`).
        kept = [e for e in entries if Path(e.path).is_file()]
        if len(kept) < len(entries):
            gone = [e.id for e in entries if not Path(e.path).is_file()]
            print(f"warning: {len(gone)} indexed run(s) whose run.json is gone are left out "
                  f"({', '.join(gone[:3])}{'...' if len(gone) > 3 else ''}; `harness runs rm ID` drops them)",
                  file=sys.stderr)  # fmt: skip
        return kept

    def get(self, ref: str) -> RunEntry:
        """The entry with id ``ref`` (or a unique prefix of at least 4 characters)."""
        ref = ref.strip()
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE id = ?", (ref,)).fetchall()
        if not rows and len(ref) >= 4 and re.fullmatch(r"[0-9a-f]+", ref):
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE id LIKE ?", (ref + "%",)).fetchall()
            if len(rows) > 1:
                raise HarnessError(f"run id prefix {ref!r} is ambiguous: "
                                   f"{', '.join(r[0] for r in rows[:5])}{'...' if len(rows) > 5 else ''}")  # fmt: skip
        if not rows:
            if self.count() == 0:
                self.require_runs()
            raise HarnessError(f"unknown run id {ref!r} in the registry {self.path} (`harness runs list` shows the "
                               "ids; a run.json path works too)")  # fmt: skip
        return self._entry(rows[0])

    def resolve(self, ref: str) -> RunEntry:
        """A run named by registry id or by path (a ``run.json`` or its folder; indexed or not)."""
        p = Path(ref).expanduser()
        looks_like_path = p.exists() or os.sep in ref or ref.endswith(".json")
        if looks_like_path:
            entry = load_entry(p)
            known = self._db.execute("SELECT model FROM runs WHERE id = ?", (entry.id,)).fetchone()
            if known is not None:
                entry.model = known[0]  # keep a name given with `runs add --model`
            return entry
        return self.get(ref)

    def _entry(self, row: tuple[Any, ...]) -> RunEntry:
        values = {c: (json.loads(v) if c in _JSON_COLUMNS and v is not None else v) for c, v in zip(_COLUMNS, row)}
        return RunEntry(**values)

    def __iter__(self) -> Iterator[RunEntry]:
        return iter(self.entries())


def _normalise_since(since: str) -> str:
    """Accept ``YYYY-MM-DD`` or a full ISO time; records store UTC ISO times, which sort as text."""
    text = since.strip()
    try:
        if len(text) == 10:
            datetime.strptime(text, "%Y-%m-%d")
        else:
            datetime.fromisoformat(text)
    except ValueError:
        raise HarnessError(f"--since expects YYYY-MM-DD (or an ISO time), got {since!r}") from None
    return text


def index_run(run_path: str | os.PathLike[str], record: RunRecord) -> str | None:
    """The hook ``harness evaluate`` calls after saving a run record: index it, never failing the run.

    Returns the run id, or None when indexing is switched off (``HARNESS_REGISTRY=off``) or failed (a
    warning says why; the record itself is saved either way).
    """
    from harness.settings import current

    if current().registry_disabled:
        return None
    try:
        with Registry() as reg:
            return reg.add(run_path, record).id
    except (HarnessError, sqlite3.Error, OSError) as exc:
        print(f"warning: run {run_path} not indexed in the run registry: {exc}", file=sys.stderr)
        return None


# ---------------------------------------------------------------------- lineage: checkpoint -> data -> generator
#: The data pipeline's manifest (``<work>/manifest.json``, written by ``harness generate``): every setting that
#: shapes the dataset, the generating model's spec and identity; ``digest`` is SHA-256 over its ``settings``.
MANIFEST_NAME = "manifest.json"


def manifest_digest(settings: Any) -> str:
    """SHA-256 of the canonical JSON of a manifest's ``settings`` (sorted keys, no spaces), as the pipeline
    computes it; a manifest whose ``digest`` differs from this was edited by hand."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _front_matter(card: Path) -> dict[str, str]:
    """``key: value`` lines of a dataset card's YAML front matter (flat scalars only: all the pipeline writes)."""
    try:
        text = card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "-")):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key.strip()] = value
    return out


def find_manifest(dataset: str | os.PathLike[str]) -> Path | None:
    """The pipeline manifest of a dataset file or ``datasets`` folder, where the pipeline puts it.

    ``<work>/dataset.jsonl`` -> ``<work>/manifest.json``; a ``datasets`` folder ``<work>/dataset/`` -> the
    ``manifest:`` path in its card (``README.md``), else ``<work>/manifest.json``. None when there is none.
    """
    p = Path(dataset)
    candidates: list[Path] = []
    if p.is_dir():
        rel = _front_matter(p / "README.md").get("manifest")
        if rel:
            candidates.append(p / rel)
        candidates += [p.parent / MANIFEST_NAME, p / MANIFEST_NAME]
    else:
        candidates.append(p.parent / MANIFEST_NAME)
    return next((c.resolve() for c in candidates if c.is_file()), None)


def manifest_link(manifest: str | os.PathLike[str], expected: str | None) -> dict[str, Any]:
    """What a manifest says about the data made with it: path, digest, whether it is intact and is the one
    ``expected`` (the dataset rows' digest), the generating model's spec and identity, seed, harness version.

    Never raises: a manifest that cannot be read comes back with ``problem`` saying why (lineage is a report,
    and a missing link must not stop a listing).
    """
    path = Path(manifest)
    link: dict[str, Any] = {"path": str(path), "digest": None, "intact": False, "matches": False, "model": None,
                            "identity": None, "seed": None, "harness_version": None, "created": None,
                            "problem": None}  # fmt: skip
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        link["problem"] = f"manifest {path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        return link
    if not isinstance(doc, dict) or not isinstance(doc.get("settings"), dict):
        link["problem"] = f"manifest {path} has no settings object (not a harness pipeline manifest)"
        return link
    settings = doc["settings"]

    def text(value: Any) -> str | None:  # a hand-made manifest may hold anything: keep only what fits
        return value if isinstance(value, str) and value else None

    declared = text(doc.get("digest"))
    model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
    identity = model.get("identity")
    seed = settings.get("seed")
    link.update(digest=declared, intact=declared == manifest_digest(settings),
                matches=expected is not None and declared == expected,
                model=text(settings.get("model")) or text(model.get("spec")),
                identity=identity if isinstance(identity, dict) else None,
                seed=seed if isinstance(seed, (int, str)) and not isinstance(seed, bool) else None,
                harness_version=text(doc.get("harness_version")), created=text(doc.get("created")))  # fmt: skip
    if not link["intact"]:
        link["problem"] = (f"manifest {path} was changed by hand: its digest {str(declared)[:16]} is not the "
                           f"digest of its settings ({manifest_digest(settings)[:16]})")  # fmt: skip
    elif expected is not None and not link["matches"]:
        link["problem"] = (f"manifest {path} (digest {str(declared)[:16]}) is not the one the data was made with "
                           f"({expected[:16]}): the work folder was rerun with other settings since")  # fmt: skip
    return link


def trace_lineage(lineage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Follow a fine-tuned checkpoint's lineage back: training record, base model, dataset, manifest, generator.

    ``lineage`` is a run's lineage (:func:`read_lineage` or the record's field). The links recorded at
    training time are kept; the training record and the manifest are read again from disk, and every link
    that is gone or no longer matches is named in ``problems``. Returns None for a run without lineage.
    """
    if not isinstance(lineage, dict):
        return None
    problems: list[str] = []
    data = lineage.get("dataset") if isinstance(lineage.get("dataset"), dict) else {}
    base = lineage.get("base_model")
    base = base if isinstance(base, dict) else {"source": base} if base else {}
    out: dict[str, Any] = {
        "checkpoint": lineage.get("checkpoint"),
        "adapter": bool(lineage.get("adapter")),
        "training_run": lineage.get("training_run"),
        "training": None,
        "base_model": base,
        "dataset": {k: data.get(k) for k in ("path", "sha256", "rows", "format", "manifest_digest")}
        | {"sha256": data.get("sha256") or lineage.get("training_data_hash")},
        "manifest": None,
        "generator": None,
        "problems": problems,
    }
    run_file = lineage.get("training_run")
    if isinstance(run_file, str) and run_file:
        try:
            doc = json.loads(Path(run_file).read_text(encoding="utf-8"))
            if isinstance(doc.get("base_model"), dict) and doc["base_model"].get("source") == base.get("source"):
                out["base_model"] = doc["base_model"]  # with its weights digest or hub commit
            out["training"] = {"status": doc.get("status"), "steps": (doc.get("metrics") or {}).get("global_step"),
                               "config_sha256": doc.get("config_sha256"), "git_commit": doc.get("git_commit"),
                               "harness_version": doc.get("harness_version")}  # fmt: skip
            sha = (doc.get("dataset") or {}).get("sha256")
            if sha and out["dataset"]["sha256"] and sha != out["dataset"]["sha256"]:
                problems.append(f"training record {run_file} now names dataset {sha[:16]}, not "
                                f"{out['dataset']['sha256'][:16]} (the folder was retrained since)")  # fmt: skip
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            problems.append(f"training record {run_file} is gone or unreadable")
    digest = data.get("manifest_digest") if isinstance(data.get("manifest_digest"), str) else None
    recorded = data.get("manifest") if isinstance(data.get("manifest"), dict) else None
    where = (recorded or {}).get("path")
    where = where if isinstance(where, str) and where else None
    if where is None and isinstance(data.get("path"), str) and data["path"]:
        found = find_manifest(data["path"])
        where = str(found) if found else None
    if where and Path(where).is_file():
        now = manifest_link(where, digest)
        if recorded and recorded.get("matches") and not now["matches"]:
            # Rerun since training: the recorded link (from training time) still names the generator.
            problems.append(now["problem"] or f"manifest {where} changed since training")
            out["manifest"] = recorded
        else:
            out["manifest"] = now
            if now["problem"]:
                problems.append(now["problem"])
    elif recorded:
        out["manifest"] = recorded
        problems.append(f"manifest {where} is gone; the link recorded at training time is shown")
    elif digest:
        problems.append(f"the data names manifest {digest[:16]} but no manifest.json was found beside "
                        f"{data.get('path')}")  # fmt: skip
    link = out["manifest"]
    if link and link.get("matches") and link.get("model"):
        out["generator"] = {"model": link["model"], "identity": link.get("identity"), "seed": link.get("seed")}
    return out


def lineage_summary(lineage: dict[str, Any] | None) -> str | None:
    """One line for tables: ``ft of BASE on data SHA (by GENERATOR)``, None for a run without lineage.

    Uses only what the lineage recorded (no file reads: a listing of many runs stays fast).
    """
    if not isinstance(lineage, dict):
        return None
    base = lineage.get("base_model")
    base = base.get("source") if isinstance(base, dict) else base
    data = lineage.get("dataset") if isinstance(lineage.get("dataset"), dict) else {}
    sha = data.get("sha256") or lineage.get("training_data_hash")
    text = f"{'LoRA on' if lineage.get('adapter') else 'ft of'} {base or '?'} on data {str(sha or '?')[:8]}"
    link = data.get("manifest") if isinstance(data.get("manifest"), dict) else None
    if link and link.get("matches") and link.get("model"):
        text += f" (by {link['model']})"
    elif data.get("manifest_digest"):
        text += f" (manifest {str(data['manifest_digest'])[:8]})"
    return text


def entry_lineage(entry: RunEntry) -> dict[str, Any]:
    """The traced lineage of an indexed run (:func:`trace_lineage`) under a ``run`` key naming the run itself.

    A run that is no evaluation of a fine-tuned checkpoint is a one-line error (``harness runs lineage``).
    """
    traced = trace_lineage(entry.lineage)
    if traced is None:
        raise HarnessError(f"run {entry.id} ({entry.model}, {entry.benchmark}) has no training lineage: it is not an "
                           "evaluation of a `harness train` checkpoint (`harness train --eval` links those)")  # fmt: skip
    run = {"id": entry.id, "path": entry.path, "model": entry.model, "benchmark": entry.benchmark,
           "created": entry.created}  # fmt: skip
    return {"run": run, **traced}


def format_lineage(traced: dict[str, Any]) -> str:
    """:func:`entry_lineage` as text, one link a line, from the evaluation back to the generating model."""

    def short(value: Any, n: int = 16) -> str:
        return str(value)[:n] + "…" if value else "?"

    lines: list[str] = []

    def row(label: str, text: str) -> None:
        lines.append(f"{label:<12}{text}")

    run = traced.get("run") or {}
    if run:
        row("run", f"{run.get('id')}  {run.get('model')}  {run.get('benchmark')}  {run.get('created')}  "
                   f"{run.get('path')}")  # fmt: skip
    kind = "LoRA adapter on the base model" if traced.get("adapter") else "full fine-tune"
    row("checkpoint", f"{traced.get('checkpoint') or '?'} ({kind})")
    training = traced.get("training")
    if traced.get("training_run"):
        detail = ""
        if training:
            detail = (f" ({training.get('status')}, {training.get('steps')} steps, config sha256 "
                      f"{short(training.get('config_sha256'))}, harness {training.get('harness_version') or '?'}"
                      f"{', commit ' + str(training['git_commit'])[:12] if training.get('git_commit') else ''})")  # fmt: skip
        row("training", f"{traced['training_run']}{detail}")
    base = traced.get("base_model") or {}
    extra = (f" (weights sha256 {short(base.get('digest'))})" if base.get("digest")
             else f" (commit {short(base.get('commit'), 12)})" if base.get("commit") else "")  # fmt: skip
    row("base model", f"{base.get('source') or '?'}{extra}")
    data = traced.get("dataset") or {}
    row("dataset", f"{data.get('path') or '?'} ({data.get('rows') or '?'} rows, {data.get('format') or '?'}, sha256 "
                   f"{short(data.get('sha256'))})")  # fmt: skip
    link = traced.get("manifest")
    if link:
        state = "the rows' digest" if link.get("matches") else "NOT the rows' digest"
        state += ", intact" if link.get("intact") else ", edited by hand"
        row("manifest", f"{link.get('path')} (digest {short(link.get('digest'))}: {state})")
    elif data.get("manifest_digest"):
        row("manifest", f"not found (the rows carry digest {short(data.get('manifest_digest'))})")
    else:
        row("manifest", "none (the dataset carries no pipeline manifest digest)")
    gen = traced.get("generator")
    if gen:
        seed = f" (seed {gen.get('seed')})" if gen.get("seed") is not None else ""
        row("generator", f"{gen.get('model')}{seed}")
    lines += [f"problem: {p}" for p in traced.get("problems") or []]
    return "\n".join(lines)
