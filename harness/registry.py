"""The run registry: a SQLite index of run records (``run.json``) for listing, leaderboards and comparisons.

The records stay where they were written; the registry only indexes them (id,
model, benchmark, dataset name/version/hash, selection such as LiveCodeBench's
date window, harness version, date, headline pass@1, training lineage, path),
so deleting an entry never deletes results and re-indexing a file replaces its
entry. Location: ``--registry PATH``, else ``$HARNESS_REGISTRY``, else
``<harness cache>/runs.sqlite``. ``HARNESS_REGISTRY=off`` stops ``harness
evaluate`` from indexing the runs it writes (the explicit commands still work
on a path given with ``--registry``).

A run's id is the first 12 hex digits of SHA-256 over its record's absolute
path and creation time: stable for a stored record, different for a new run
written into the same folder (which then replaces the old entry, since the old
record is gone).
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
_DISABLED = {"off", "none", "0", "false", "no"}
SCHEMA_VERSION = 1
# benchmark_options keys that change which problems are scored (LiveCodeBench's window and filters); other
# options (DS-1000's environment path, time limits) describe the run without changing the selection.
SELECTION_KEYS = ("release", "start_date", "end_date", "platform", "difficulty")
# File names a folder walk treats as run records: harness's ``run.json`` and EvalPlus-style ``X_run.json``.
_RUN_FILE = re.compile(r"(^|_)run\.json$")
# Sample-file stems too generic to name a model (the folder above names it instead).
_GENERIC_STEMS = {"samples", "humaneval", "mbpp", "livecodebench", "ds1000", "answers", "completions", "generations"}
_LINEAGE_NOTE = re.compile(
    r"trained by harness train: dataset sha256 (?P<data>\S+) .*?, base model (?P<base>.+?), checkpoint (?P<ckpt>\S+?)"
    r"(?: \(LoRA adapter\))?, config sha256"
)

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
    indexed TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_model ON runs (model, benchmark, created);
CREATE INDEX IF NOT EXISTS runs_benchmark ON runs (benchmark, created);
CREATE INDEX IF NOT EXISTS runs_dataset ON runs (dataset_hash);
"""


def default_path() -> Path:
    """``$HARNESS_REGISTRY`` when set (and not ``off``), else ``<harness cache>/runs.sqlite``."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env and env.lower() not in _DISABLED:
        return Path(env).expanduser()
    from harness.data import cache_dir

    return cache_dir() / "runs.sqlite"


def run_id(path: str | os.PathLike[str], created: str) -> str:
    """The stable short id of the record stored at ``path`` with creation time ``created``."""
    key = f"{Path(path).resolve()}|{created}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def model_name(record: RunRecord, path: str | os.PathLike[str] | None = None) -> str:
    """The model a record belongs to.

    ``harness eval`` records name it; ``harness evaluate`` records of a stored samples file do not, so the
    samples file names it (its stem, or its folder when the stem is generic such as ``humaneval.jsonl``, the
    way published samples are laid out), else the run's folder.
    """
    if record.model:
        return record.model
    if record.generation is not None and record.generation.model:
        return record.generation.model
    if record.samples_file:
        samples = Path(record.samples_file)
        stem = samples.name[: -len(".jsonl")] if samples.name.endswith(".jsonl") else samples.stem
        if stem.lower() not in _GENERIC_STEMS and stem.lower() != record.benchmark.lower() and stem:
            return stem
        if samples.parent.name:
            return samples.parent.name
    if path is not None:
        return Path(path).resolve().parent.name or "unknown"
    return "unknown"


def selection_of(options: dict[str, Any]) -> dict[str, Any]:
    """The part of ``benchmark_options`` that decides which problems were scored (e.g. a date window)."""
    return {k: options[k] for k in SELECTION_KEYS if options.get(k) is not None}


def tasks_hash(task_ids: Iterable[str]) -> str:
    """A short digest of the scored task set: runs over different subsets (``--limit``) must not be ranked together."""
    return hashlib.sha256("\n".join(sorted(task_ids)).encode("utf-8")).hexdigest()[:12]


def read_lineage(raw_lineage: Any, run_path: Path | None, notes: Iterable[str]) -> dict[str, Any] | None:
    """Training lineage of a run: the record's ``lineage`` field, else ``lineage.json`` beside it, else its notes.

    ``harness train --eval`` writes the lineage in all three places (the field once ``RunRecord`` has it); older
    records have only the note. Returns ``{"training_data_hash", "base_model", "checkpoint", ...}`` or None.
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
    if lineage is not None:
        data = lineage.get("dataset")
        base = lineage.get("base_model")
        return {
            **lineage,
            "training_data_hash": lineage.get("training_data_hash")
            or (data.get("sha256") if isinstance(data, dict) else data if isinstance(data, str) else None),
            "base_model": base.get("source") if isinstance(base, dict) else base,
            "checkpoint": lineage.get("checkpoint"),
        }
    for note in notes:
        found = _LINEAGE_NOTE.search(note)
        if found:
            return {"training_data_hash": found["data"], "base_model": found["base"], "checkpoint": found["ckpt"]}
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
    _record: RunRecord | None = field(default=None, repr=False, compare=False)

    def record(self) -> RunRecord:
        """The full run record (loaded once; a missing or corrupt file is a one-line ``HarnessError``)."""
        if self._record is None:
            self._record = load_run(Path(self.path))
        return self._record

    def dataset_label(self) -> str:
        """``HumanEval+ v0.1.10 (fe585eb4)``."""
        return f"{self.dataset_name} {self.dataset_version} ({self.dataset_hash[:8]})"

    def window_label(self) -> str | None:
        """LiveCodeBench-style selection as text (``2024-05-01..2024-09-30``, platform, difficulty), if any."""
        opts = self.options
        start = opts.get("start_date") or None
        end = opts.get("end_date") or None
        if start is None and end is None and not (opts.get("first_contest_date") or opts.get("last_contest_date")):
            parts = []
        else:
            lo = start or opts.get("first_contest_date") or "…"
            hi = end or opts.get("last_contest_date") or "…"
            parts = [f"{lo}..{hi}"]
        # The release is LiveCodeBench's dataset version, already in the dataset label; say it only when it is not.
        if opts.get("release") and opts["release"] != self.dataset_version:
            parts.append(f"release {opts['release']}")
        for key in ("platform", "difficulty"):
            if opts.get(key):
                parts.append(f"{key} {opts[key]}")
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


def entry_from_record(path: str | os.PathLike[str], record: RunRecord, raw_lineage: Any = None,
                      model: str | None = None) -> RunEntry:  # fmt: skip
    """Index fields of ``record`` stored at ``path`` (``model`` overrides the name the record implies)."""
    run_path = Path(path).resolve()
    lineage = read_lineage(raw_lineage if raw_lineage is not None else getattr(record, "lineage", None), run_path,
                           record.notes)  # fmt: skip
    ns = [t.n for t in record.tasks.values()]
    return RunEntry(
        id=run_id(run_path, record.created),
        path=str(run_path),
        model=model or model_name(record, run_path),
        benchmark=record.benchmark,
        dataset_name=record.dataset.name,
        dataset_version=record.dataset.version,
        dataset_hash=record.dataset.hash,
        selection=selection_of(record.benchmark_options),
        options=_plain(record.benchmark_options),
        tasks_hash=tasks_hash(record.tasks),
        harness_version=record.harness_version,
        git_commit=record.git_commit,
        created=record.created,
        kind=record.kind,
        n_tasks=record.n_tasks,
        n_samples=record.n_samples,
        samples_per_task=min(ns) if ns else 0,
        base_pass1=record.pass_at_k.get("base", {}).get("pass@1"),
        plus_pass1=record.pass_at_k.get("plus", {}).get("pass@1"),
        pass_at_k=record.pass_at_k,
        training_data_hash=lineage.get("training_data_hash") if lineage else None,
        base_model=lineage.get("base_model") if lineage else None,
        checkpoint=lineage.get("checkpoint") if lineage else None,
        lineage=lineage,
        indexed=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        _record=record,
    )


def load_entry(path: str | os.PathLike[str], model: str | None = None) -> RunEntry:
    """Read a run record file (a ``run.json`` or a folder holding one) into an entry, without indexing it."""
    run_path = _run_file(Path(path))
    record = load_run(run_path)
    raw_lineage = None
    try:
        # RunRecord may not declare ``lineage`` yet (pydantic drops unknown fields), so read it from the JSON.
        raw = json.loads(run_path.read_text(encoding="utf-8"))
        raw_lineage = raw.get("lineage") if isinstance(raw, dict) else None
    except (OSError, ValueError):
        pass  # load_run already parsed it; a race with a rewrite only loses the lineage
    return entry_from_record(run_path, record, raw_lineage, model)


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
]  # fmt: skip
_JSON_COLUMNS = {"selection", "options", "pass_at_k", "lineage"}


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
        except sqlite3.DatabaseError as exc:
            raise HarnessError(f"registry {self.path} is not a usable SQLite database ({exc}); point --registry "
                               f"or ${ENV_VAR} elsewhere, or remove the file and re-index with `harness runs add`"
                               ) from None  # fmt: skip
        except OSError as exc:
            raise HarnessError(f"cannot open the registry {self.path}: {exc}") from None

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
        entry = entry_from_record(path, record, None, model) if record is not None else load_entry(path, model)
        values = [json.dumps(getattr(entry, c)) if c in _JSON_COLUMNS else getattr(entry, c) for c in _COLUMNS]
        with self._db:
            self._db.execute("DELETE FROM runs WHERE path = ? OR id = ?", (entry.path, entry.id))
            self._db.execute(f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                             values)  # fmt: skip
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
        return [self._entry(row) for row in self._db.execute(sql, args)]

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
    if os.environ.get(ENV_VAR, "").strip().lower() in _DISABLED:
        return None
    try:
        with Registry() as reg:
            return reg.add(run_path, record).id
    except (HarnessError, sqlite3.Error, OSError) as exc:
        print(f"warning: run {run_path} not indexed in the run registry: {exc}", file=sys.stderr)
        return None
