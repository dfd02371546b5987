"""Run records: typed, versioned results of one evaluation, stored as files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Self, TextIO

from pydantic import BaseModel, Field, model_validator

import harness
from harness.benchmark import Column, DatasetInfo, Verdict
from harness.errors import HarnessError

RUN_SCHEMA_VERSION = 2
#: Records written by the first harness (v1): EvalPlus-shaped counts and settings; migrated when read.
_V1_SETTINGS = ("min_time_limit", "time_limit_factor", "base_only", "memory_accounting")
_LINEAGE_NOTE = re.compile(
    r"trained by harness train: dataset sha256 (?P<data>\S+) .*?, base model (?P<base>.+?), checkpoint (?P<ckpt>\S+?)"
    r"(?: \(LoRA adapter\))?, config sha256"
)


class SampleResult(BaseModel):
    """One sample's verdict within a task, and why it failed (``failure_mode``, see :mod:`harness.failure`)."""

    line: int | None = Field(default=None, description="line in the samples file (or the sample's number)")
    verdict: Verdict
    reason: str | None = Field(default=None, description="why the sample did not pass, in one line")
    failure_mode: str | None = Field(
        default=None,
        description="pass, truncated, truncated_thinking, no_code, syntax_error, wrong_signature, runtime_error, "
        "wrong_answer, timeout, memory, refused or error (records without one get it from the verdict on reading)",
    )
    exception: str | None = Field(default=None, description="for runtime_error: the exception's type")

    @model_validator(mode="after")
    def _mode_from_verdict(self) -> SampleResult:
        # Records written before failure modes existed: the verdict alone decides (no generation facts).
        if self.failure_mode is None:
            from harness.failure import classify

            found = classify(self.verdict, None)
            self.failure_mode, self.exception = found.mode, found.exception
        return self


class TaskResult(BaseModel):
    """All samples of one task."""

    n: int
    correct: dict[str, int] = Field(
        default_factory=dict,
        description="suite -> samples that passed it and every suite before it (EvalPlus: base, then base+plus)",
    )
    samples: list[SampleResult]

    @model_validator(mode="before")
    @classmethod
    def _from_v1(cls, data: Any) -> Any:
        # v1 records (and callers of that layout) give base_correct / plus_correct.
        if isinstance(data, dict) and "correct" not in data and "base_correct" in data:
            data = dict(data)
            correct = {"base": int(data.pop("base_correct") or 0)}
            plus = data.pop("plus_correct", None)
            if plus is not None:
                correct["plus"] = int(plus)
            data["correct"] = correct
        return data

    @property
    def base_correct(self) -> int:
        """Samples that passed the first suite (the v1 field)."""
        return self.correct.get("base", next(iter(self.correct.values()), 0))

    @property
    def plus_correct(self) -> int | None:
        """Samples that passed base and plus (the v1 field; None without a plus suite)."""
        return self.correct.get("plus")


class SkippedSample(BaseModel):
    """A sample that was not graded, and why."""

    line: int
    task_id: str | None
    reason: str


class RunSettings(BaseModel):
    """Core settings that shaped the verdicts (a benchmark's own are in ``RunRecord.options``)."""

    parallel: int
    time_limit_kind: Literal["cpu", "wall"] = "cpu"
    test_details: bool
    verdict_cache: bool
    isolation: str = Field(description="bwrap or process: what the sandbox gave programs")
    memory_limit_bytes: int
    executor: str = Field(default="local", description="local or ray: where the sandbox workers ran")
    grader_version: str | None = Field(
        default=None, description="the grading core's and the benchmark's rules' versions, and the official grader "
        "they reproduce (Benchmark.grader_label); None: a record from before it was kept",
    )
    grader_salt: str | None = Field(
        default=None, description="what else decides this benchmark's verdicts (library versions, limits, guard)"
    )


class RunTimings(BaseModel):
    """Where the time went (seconds)."""

    expected_outputs: float = Field(default=0.0, description="preparing what grading needs (expected outputs, tests)")
    grading: float = 0.0
    total: float = 0.0
    verdict_cache_hits: int = 0
    graded_programs: int = 0
    same_ast_hits: int = Field(default=0, description="of verdict_cache_hits: programs new as text, known by syntax tree")


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
    reasoning: str = Field(default="off", description="on: thinking prompts and the template's thinking switch")
    thinking_switch: bool | None = Field(
        default=None, description="enable_thinking sent to the chat template (None: the template has no switch)"
    )
    think_tags: list[str] = Field(default_factory=lambda: ["<think>", "</think>"])
    extract: str = Field(default="auto", description="the --extract rule")
    reasoning_tokens: int = Field(default=0, description="thinking tokens (part of completion_tokens)")
    answer_tokens: int = Field(default=0, description="completion tokens that are not thinking")
    reasoning_tokens_source: dict[str, int] = Field(
        default_factory=dict,
        description="samples whose thinking tokens were reported by the server, counted with the tokenizer, "
        "or estimated from the thinking's share of the text",
    )
    samples_with_thinking: int = 0
    unclosed_thinking: int = Field(default=0, description="samples whose thinking never closed")


class RunRecord(BaseModel):
    """One evaluation run: what was graded, how, and the results (schema v2; v1 records migrate on read)."""

    schema_version: int = RUN_SCHEMA_VERSION
    kind: str = "evaluate"
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    harness_version: str = harness.__version__
    git_commit: str | None = None
    benchmark: str
    title: str | None = Field(default=None, description="the benchmark's title")
    suites: list[str] = Field(default_factory=lambda: ["base"], description="test suites, in grading order")
    columns: list[Column] = Field(default_factory=list, description="leaderboard columns: suite and title")
    dataset: DatasetInfo
    options: dict[str, Any] = Field(default_factory=dict, description="the benchmark's own options (its Options)")
    selection: dict[str, Any] = Field(default_factory=dict, description="options that decide the problem set")
    benchmark_options: dict[str, Any] = Field(default_factory=dict, description="what shaped the problem set")
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
    pass_at_k: dict[str, dict[str, float]] = Field(description="suite -> pass@k -> value")
    n_tasks: int
    n_samples: int
    missing_tasks: list[str] = Field(default_factory=list)
    skipped: list[SkippedSample] = Field(default_factory=list)
    tasks: dict[str, TaskResult]
    timings: RunTimings
    failure_modes: dict[str, int] = Field(
        default_factory=dict, description="failure mode -> samples (every sample counted once; see SampleResult)"
    )

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        if isinstance(data, dict) and int(data.get("schema_version", 1) or 1) < 2:
            return migrate_v1(data)
        return data

    @model_validator(mode="after")
    def _count_modes(self) -> RunRecord:
        if not self.failure_modes:
            self.failure_modes = self.count_failure_modes()
        return self

    def count_failure_modes(self, task_ids: Any = None) -> dict[str, int]:
        """Failure mode -> samples, over ``task_ids`` (None: every task)."""
        from harness.failure import count_modes

        wanted = self.tasks if task_ids is None else [t for t in task_ids if t in self.tasks]
        return count_modes(s.failure_mode for t in wanted for s in self.tasks[t].samples)

    def suite_titles(self) -> dict[str, str]:
        """Suite -> column title (declared columns, else the dataset name with the suite)."""
        titles = {c.suite: c.title for c in self.columns}
        for k, suite in enumerate(self.suites):
            titles.setdefault(suite, self.dataset.name if k == 0 else f"{self.dataset.name} ({suite})")
        return titles


def migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A v1 record (the first harness's) as v2: per-suite counts, the benchmark's settings as its options,
    the training lineage from its note."""
    out = dict(data)
    settings = dict(out.get("settings") or {})
    options = {k: settings.pop(k) for k in _V1_SETTINGS if k in settings}
    out["settings"] = settings
    tasks = out.get("tasks") or {}
    has_plus = any(isinstance(t, dict) and t.get("plus_correct") is not None for t in tasks.values())
    if "plus" in (out.get("pass_at_k") or {}):
        has_plus = True
    out["suites"] = ["base", "plus"] if has_plus else ["base"]
    if has_plus:
        options.setdefault("base_only", False)
    out.setdefault("options", options)
    bo = out.get("benchmark_options") or {}
    keys = ("release", "start_date", "end_date", "platform", "difficulty")
    out.setdefault("selection", {k: bo[k] for k in keys if bo.get(k) is not None})
    if out.get("lineage") is None:
        for note in out.get("notes") or []:
            found = _LINEAGE_NOTE.search(str(note))
            if found:
                out["lineage"] = {"training_data_hash": found["data"], "base_model": found["base"],
                                  "checkpoint": found["ckpt"]}  # fmt: skip
                break
    _titles_from_plugin(out)
    out["schema_version"] = RUN_SCHEMA_VERSION
    return out


def _titles_from_plugin(out: dict[str, Any]) -> None:
    """v1 records carry no titles: take them from the benchmark when it is installed (else the dataset's name)."""
    from harness import benchmark as registry

    try:
        cls = registry.benchmark_class(str(out.get("benchmark")))
    except HarnessError:
        return
    out.setdefault("title", cls.display_title())
    suites = out.get("suites") or []
    out.setdefault("columns", [c.model_dump() for c in cls.leaderboard_columns() if c.suite in suites])


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
    """Write JSON so that an interrupted write never leaves a half file; a failed write names the file."""
    write_atomic(path, lambda f: json.dump(doc, f))


def write_atomic(path: Path, write: Callable[[TextIO], Any]) -> None:
    """``write(f)`` into a temporary file beside ``path``, then put it in place: readers never see half a file."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
        os.chmod(tmp, 0o644)  # results are for reading by others (mkstemp makes 0600)
        os.replace(tmp, path)
    except OSError as exc:
        raise HarnessError(f"cannot write {path}: {exc.strerror or exc}; free some space or choose another "
                           "--output") from None  # fmt: skip
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_json_members(f: TextIO, head: Mapping[str, Any], key: str, members: Iterable[tuple[str, Any]]) -> None:
    """A JSON object: ``head``'s members, then ``key`` whose value is an object written one member at a time.

    What a results file holds per sample is made, written and let go one task at a time, so writing it
    needs memory for one task, not for all of them (each member goes through the C encoder: ``json.dump``
    of a whole document runs the pure-Python one).
    """
    f.write("{")
    for name, value in head.items():
        f.write(f"{json.dumps(name)}: {json.dumps(value)}, ")
    f.write(f"{json.dumps(key)}: {{")
    for k, (name, value) in enumerate(members):
        f.write(f"{', ' if k else ''}{json.dumps(name)}: {json.dumps(value)}")
    f.write("}}")


def save_run(path: Path, record: RunRecord) -> None:
    """Store a run record as JSON."""
    write_json_atomic(path, record.model_dump(mode="json"))


def save_run_streaming(path: Path, record: RunRecord, tasks: Iterable[tuple[str, TaskResult]]) -> None:
    """Store ``record`` with ``tasks`` in place of its own (made one at a time: memory for one task's samples).

    The file is the one :func:`save_run` writes for the record holding those tasks.
    """
    head = record.model_dump(mode="json", exclude={"tasks"})
    write_atomic(path, lambda f: write_json_members(f, head, "tasks",
                                                    ((tid, t.model_dump(mode="json")) for tid, t in tasks)))  # fmt: skip


def load_run(path: Path) -> RunRecord:
    """Load a run record (raises ``HarnessError`` when missing or corrupt)."""
    from harness.errors import HarnessError

    try:
        return RunRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"run record {path} does not exist") from None
    except ValueError as exc:
        raise HarnessError(f"run record {path} is corrupt: {str(exc).splitlines()[0]}") from None


class Spool:
    """Records kept on disk by number while a run goes on, so memory does not grow with them.

    Each record is appended to an unlinked temporary file in the run's output folder; the file goes with
    the spool, or with the process however it ends (a full disk is a :class:`HarnessError` naming the fix). Only offsets stay in memory. Reads and writes are positioned (``pread`` /
    ``pwrite``), so threads share a spool without a shared file position.
    """

    def __init__(self, folder: Path, what: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=folder, prefix=f".harness-{what}-", buffering=0)
        self._fd = self._file.fileno()
        self._at = array("q")
        self._size = array("q")
        self._end = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._at)

    def put(self, k: int, data: bytes) -> None:
        """Keep ``data`` as record ``k`` (a later one replaces it; ``k == len(self)`` appends)."""
        with self._lock:
            at = self._end
            self._end += len(data)
            if k >= len(self._at):
                grow = k + 1 - len(self._at)
                self._at.extend([-1] * grow)
                self._size.extend([0] * grow)
        try:
            os.pwrite(self._fd, data, at)
        except OSError as exc:
            raise HarnessError(f"cannot keep the run's records beside its results: {exc.strerror or exc}; free "
                               "some space or choose another --output (cached verdicts are kept)") from None  # fmt: skip
        with self._lock:
            self._at[k], self._size[k] = at, len(data)

    def has(self, k: int) -> bool:
        """Whether record ``k`` is here."""
        return k < len(self._at) and self._at[k] >= 0

    def get(self, k: int) -> bytes:
        """Record ``k`` (KeyError: none was put)."""
        if not self.has(k):
            raise KeyError(k)
        return os.pread(self._fd, self._size[k], self._at[k])

    def close(self) -> None:
        """Let the file go (it was never linked into the folder)."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VerdictSpool(Spool):
    """A run's verdicts by program number, on disk while it grades (``harness evaluate``)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "verdicts")

    def put_verdict(self, k: int, verdict: Verdict) -> None:
        """Keep program ``k``'s verdict."""
        self.put(k, verdict.model_dump_json().encode("utf-8"))

    def verdict(self, k: int) -> Verdict:
        """Program ``k``'s verdict (KeyError: none was put)."""
        return Verdict.model_validate_json(self.get(k))


class ProgramSpool(Spool, Sequence[tuple[str, str]]):
    """``(task_id, program)`` pairs on disk, read back by number: a run's programs without their text in
    memory (task ids stay in memory, one string per task)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "programs")
        self._tasks: list[str] = []

    def append(self, task_id: str, program: str) -> None:
        """Add the next program."""
        self.put(len(self._tasks), program.encode("utf-8", "surrogatepass"))
        self._tasks.append(task_id)

    def task(self, k: int) -> str:
        """Program ``k``'s task id (without reading its text)."""
        return self._tasks[k]

    def __getitem__(self, k: Any) -> Any:  # Sequence's: an index or a slice
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self._tasks):
            raise IndexError(k)
        return self._tasks[k], self.get(k).decode("utf-8", "surrogatepass")
