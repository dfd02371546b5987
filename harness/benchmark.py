"""The ``Benchmark`` plugin interface, verdicts, and the benchmark registry.

A benchmark is a class in its own module, found through the
``harness.benchmarks`` entry-point group (``name = "package.module:Class"``);
the core asks this registry for names (:func:`names`, :func:`defaults`,
:func:`references`) and instances (:func:`get`) and never imports benchmark
modules or names a concrete benchmark.  ``docs/adding-a-benchmark.md`` walks
through one.
"""

from __future__ import annotations

import reprlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ConfigError, HarnessError
from harness.execution import Sandbox, SandboxSettings
from harness.samples import BadLine, Sample


@dataclass(frozen=True)
class Problem:
    """One benchmark task."""

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class DatasetInfo(BaseModel):
    """Which dataset a result was computed on."""

    name: str
    version: str
    hash: str = Field(description="MD5 of the decompressed release file, as EvalPlus records it")
    path: str


#: A suite's status: every input passed, one failed, or the suite's time ran out.
SuiteStatus = Literal["pass", "fail", "timeout"]
#: A program's status; ``error``: not graded (the harness could not grade it, say so in ``error``).
Status = Literal["pass", "fail", "timeout", "error"]


class PartVerdict(BaseModel):
    """The verdict of one test suite (EvalPlus's base or plus inputs; most benchmarks have one suite)."""

    status: SuiteStatus
    failed: list[int] = Field(default_factory=list, description="indices of failing inputs")
    reasons: dict[int, str] = Field(default_factory=dict)
    cpu_seconds: float = 0.0
    details: dict[int, dict[str, str]] = Field(
        default_factory=dict,
        description="failing input -> what the grader saw, as text for a person: input, expected, returned "
        "(the value the program returned or printed), answer (a predicted value); bounded (see shown_value). "
        "Filled by graders that judge outputs in the harness; -1: the program as a whole",
    )


#: Characters of one value kept in a verdict's details (the run record holds one per failing sample).
DETAIL_CHARS = 400


_PLAIN_TYPES = (bool, int, float, str, bytes, list, tuple, dict, set, frozenset)


class _Shown(reprlib.Repr):
    """``repr`` bounded in size and time: long containers, strings and numbers are elided inside."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 4
        self.maxtuple = self.maxlist = self.maxset = self.maxfrozenset = self.maxdeque = self.maxarray = 16
        self.maxdict = 10
        self.maxstring = 120
        self.maxlong = 80
        self.maxother = 120

    def repr1(self, x: Any, level: int) -> str:
        """Values of subclasses of plain types (the codec's foreign values) shown as their base type."""
        if type(x) in _PLAIN_TYPES:
            return super().repr1(x, level)
        for base in _PLAIN_TYPES[1:]:
            if isinstance(x, base):
                handler = getattr(self, "repr_" + base.__name__, None)
                inner = handler(x, level) if handler is not None else self.repr_instance(base(x), level)
                return f"{getattr(x, 'foreign_type', '') or type(x).__name__}({inner})"
        return super().repr1(x, level)

    def repr_int(self, x: int, level: int) -> str:
        """Large ints by their digit count (their full text can take seconds, or be refused)."""
        if x.bit_length() > 3 * self.maxlong:
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_SHOWN = _Shown()


def shown_value(value: Any, limit: int = DETAIL_CHARS) -> str:
    """A Python value as a failing-input report shows it: its ``repr``, bounded (never raises).

    Values come decoded from a program's output (plain data, see :mod:`harness.execution.codec`); a huge list or
    string costs no more than its first items.
    """
    try:
        text = _SHOWN.repr(value)
        if isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > _SHOWN.maxlist:
            text += f" ({len(value):,} items)"  # a wrong length is a common failure: say it
    except Exception:  # noqa: BLE001 - a value the program built may refuse to be shown
        text = f"<a {type(value).__name__} that cannot be shown>"
    return shown_text(text, limit)


class FailureDetails:
    """What a judge saw of a suite's failing inputs (``PartVerdict.details``): the first :attr:`KEEP` indices.

    A split suite's units are judged at once on several threads, so the smallest indices win whatever order
    they arrive in; each entry is built only when it is kept.
    """

    #: Failing inputs whose values are kept (a suite stops at its first failure unless ``--test-details``).
    KEEP = 8

    def __init__(self) -> None:
        self.seen: dict[int, dict[str, str]] = {}
        self._lock = threading.Lock()

    def keep(self, i: int, make: Callable[[], dict[str, str]]) -> None:
        """Record input ``i``'s details (``make()``) unless :attr:`KEEP` smaller indices are kept already."""
        with self._lock:
            seen = self.seen
            if len(seen) >= self.KEEP and i > max(seen):
                return
            seen[i] = make()
            while len(seen) > self.KEEP:
                del seen[max(seen)]

    def of(self, failed: Sequence[int]) -> dict[int, dict[str, str]]:
        """The kept details of the inputs a result names as failed."""
        with self._lock:
            return {i: self.seen[i] for i in failed if i in self.seen}


def shown_text(text: str, limit: int = DETAIL_CHARS) -> str:
    """Text (a program's printed output, a test's stdin) clipped to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


class Verdict(BaseModel):
    """The verdict on one program: overall status plus its parts."""

    status: Status
    parts: dict[str, PartVerdict] = Field(default_factory=dict)
    error: str | None = None
    cached: bool = False

    def reason(self) -> str | None:
        """Why the program did not pass, in one line (None when it passed)."""
        if self.status == "pass":
            return None
        if self.error:
            return self.error.strip().splitlines()[-1][:300] if self.error.strip() else self.status
        for name, part in self.parts.items():
            if part.status != "pass":
                why = part.reasons.get(-1) or next(iter(part.reasons.values()), None)
                if why:
                    return why.strip().splitlines()[0][:300] if why.strip() else part.status
                return f"{name} tests: {part.status}"
        return self.status


class GradeOptions(BaseModel):
    """Core grading settings, the same for every benchmark (a benchmark's own live in its ``Options``)."""

    test_details: bool = False


class BenchmarkOptions(BaseModel):
    """Base of a benchmark's ``Options``: each field becomes a ``--flag`` of ``evaluate`` and ``eval``.

    Unknown options are refused; values are recorded in the run record. A
    field's ``description`` is its help text; ``json_schema_extra={"metavar":
    ...}`` names its value in the help.
    """

    model_config = ConfigDict(extra="forbid")


class Column(BaseModel):
    """A leaderboard column: one suite of a benchmark, with its title (``HumanEval+``)."""

    suite: str
    title: str


#: EvalPlus's stop sequences for base models (end of text, then code that starts a new top-level block).
DEFAULT_BASE_STOP: tuple[str, ...] = ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(")


@dataclass(frozen=True)
class Prompt:
    """How a task is put to a model: raw ``text`` (base) or a chat ``instruction`` with a response prefix."""

    text: str | None = None
    instruction: str | None = None
    response_prefix: str = ""
    stop: tuple[str, ...] = ()
    system: str | None = None


def instruct_code(reply: str) -> str:
    """Code from a chat reply that began inside a code fence: up to the closing fence, else the fenced block."""
    if "```" not in reply:
        return reply
    head, _, _ = reply.partition("```")
    if head.strip():
        return head  # the reply opened inside the prefix's fence and closed it
    from harness.samples import extract_code

    return extract_code(reply)


def _defines(code: str, entry_point: str) -> bool:
    import re

    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE) is not None


def _with_prompt_imports(prompt: str, code: str) -> str:
    """Prepend the task prompt's import lines that the reply left out (the prompt's context is the model's)."""
    lines = [ln for ln in prompt.splitlines() if ln.startswith(("import ", "from ")) and ln not in code]
    return "\n".join(lines) + "\n" + code if lines else code


class Benchmark(ABC):
    """A benchmark plugin: what the rest of the harness needs to know of it, and its own work.

    Declarations (class attributes) are read by the core without loading any
    data: ``name``, ``title``, ``suites``, ``Options``, whether its items are
    decontamination references, whether ``harness eval`` runs it by default,
    an optional managed environment, leaderboard ``columns``, ``breakdowns``.

    Work: :meth:`problems`, :meth:`dataset`, :meth:`prompt`, :meth:`sample`,
    :meth:`program`, and for grading the jobs a program needs (:meth:`jobs`)
    and the rule that turns their results into a :class:`Verdict`
    (:meth:`verdict`). The core's runner (:mod:`harness.grading`) does the
    rest: verdict cache, dedup, streaming, scheduling, interruption.
    """

    #: Registry name (``--benchmark NAME``); the entry-point name when found through ``harness.benchmarks``.
    name: ClassVar[str] = ""
    #: Human title (``HumanEval+``); defaults to the name.
    title: ClassVar[str] = ""
    #: Test suites a verdict has parts for: EvalPlus has base and plus; most benchmarks only base.
    suites: ClassVar[tuple[str, ...]] = ("base",)
    #: The benchmark's own options (a :class:`BenchmarkOptions` subclass); the CLI builds flags from it.
    Options: ClassVar[type[BenchmarkOptions]] = BenchmarkOptions
    #: Its items (prompts, solutions, tests) are what training data is audited against.
    decontamination_reference: ClassVar[bool] = True
    #: Part of ``harness eval``'s default ``--benchmarks``.
    default: ClassVar[bool] = False
    #: Where it sorts in listings and leaderboards (lower first; ties by name).
    display_order: ClassVar[int] = 100
    #: A managed execution environment (a :class:`harness.envs.EnvSpec`: ``harness env create NAME`` builds it),
    #: when programs need pinned libraries.
    environment_spec: ClassVar[Any] = None
    #: Leaderboard columns; empty: one per suite, titled from :attr:`title` (``+`` marks a second suite).
    columns: ClassVar[tuple[Column, ...]] = ()
    #: Names of the breakdown tables :meth:`breakdown` returns (``library``, ``difficulty``).
    breakdowns: ClassVar[tuple[str, ...]] = ()
    #: Options whose values decide which problems are scored (a date window): runs compare only when equal.
    selection_options: ClassVar[tuple[str, ...]] = ()
    #: The k of pass@k the run record reports (each where every task has at least k samples).
    pass_at_k_values: ClassVar[tuple[int, ...]] = (1, 10, 100)
    #: Tasks the grading runner holds open at once (their tests decoded); None: all.
    task_window: ClassVar[int | None] = None
    #: Version of this benchmark's grading rules: raise it when a change can change a verdict (the verdict
    #: cache keys on it; run records store it, and comparisons of two runs show it when it differs).
    grader_version: ClassVar[str] = "1"
    #: The official grader this benchmark's verdicts reproduce ("EvalPlus 0.3.1"); empty: its own rules.
    reference_grader: ClassVar[str] = ""
    #: Seconds the last grading spent loading or computing what grading needs (expected outputs, tests).
    prepare_seconds: float = 0.0

    def __init__(self, data_dir: str | Path | None = None, **options: Any) -> None:
        """``data_dir``: offline dataset folder; ``options``: the benchmark's ``Options`` fields."""
        self.data_dir = data_dir
        self.options = self.make_options(options)

    @classmethod
    def make_options(cls, values: Mapping[str, Any] | BenchmarkOptions | None = None) -> BenchmarkOptions:
        """Validate option values against :attr:`Options` (unknown or malformed ones are a ``ConfigError``)."""
        if isinstance(values, cls.Options):
            return values
        given = dict(values or {}) if not isinstance(values, BaseModel) else values.model_dump()
        try:
            return cls.Options(**given)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                field = ".".join(str(x) for x in err["loc"]) or "options"
                flag = "--" + field.replace("_", "-")
                if err["type"] == "extra_forbidden":
                    known = ", ".join("--" + f.replace("_", "-") for f in cls.Options.model_fields) or "none"
                    problems.append(f"{flag} is not an option of {cls.name} (its options: {known})")
                else:
                    problems.append(f"{flag}: {err['msg']}")
            raise ConfigError(f"{cls.name}: " + "; ".join(problems)) from None

    @classmethod
    def for_reading(cls, data_dir: str | Path | None = None) -> Benchmark:
        """An instance that only reads problems (decontamination): what grading needs is not checked."""
        return cls(data_dir=data_dir)

    @classmethod
    def display_title(cls) -> str:
        """The title, or the name when none is declared."""
        return cls.title or cls.name

    @classmethod
    def leaderboard_columns(cls) -> tuple[Column, ...]:
        """Declared columns, else one per suite (``Title`` for the first, ``Title+`` style for the rest)."""
        if cls.columns:
            return cls.columns
        title = cls.display_title()
        return tuple(Column(suite=s, title=title if k == 0 else f"{title} ({s})") for k, s in enumerate(cls.suites))

    # -- data --

    @abstractmethod
    def problems(self) -> dict[str, Problem]:
        """All tasks by id."""

    @abstractmethod
    def dataset(self) -> DatasetInfo:
        """Name, version, hash and path of the dataset file in use."""

    @abstractmethod
    def program(self, problem: Problem, solution: str | None, completion: str | None) -> str:
        """The program to grade for a sample."""

    # -- grading: what to run for a program, and the rule that makes a verdict --

    def setup_jobs(self, sandbox: Sandbox, task_ids: Sequence[str], options: GradeOptions) -> list[SetupJob]:
        """Jobs to run before the tasks they unlock (expected outputs); empty: every task is ready at once."""
        return []

    def open_task(self, task_id: str, options: GradeOptions) -> Any:
        """What grading a task's programs needs (decoded tests); the runner holds :attr:`task_window` open."""
        return None

    def close_task(self, task_id: str, state: Any) -> None:
        """The task's programs are graded: let go of what :meth:`open_task` made."""
        return None

    @abstractmethod
    def jobs(self, task_id: str, program: str, state: Any, ctx: GradeContext) -> Sequence[Any]:
        """Sandbox jobs (call, script or command jobs) that grade ``program``; empty: decided without running."""

    @abstractmethod
    def verdict(self, task_id: str, program: str, state: Any, results: Sequence[Any], ctx: GradeContext) -> Verdict:
        """The verdict from the results of :meth:`jobs` (same order)."""

    def grade(
        self,
        sandbox: Sandbox,
        programs: list[tuple[str, str]],
        options: GradeOptions | None = None,
        on_done: Callable[[int, Verdict], None] | None = None,
    ) -> list[Verdict]:
        """Grade ``(task_id, program)`` pairs with the core runner (no verdict cache); verdicts in order."""
        from harness.grading import grade_programs

        return grade_programs(self, sandbox, programs, options or GradeOptions(), on_verdict=on_done).verdicts

    def prepare(self, sandbox: Sandbox) -> float:
        """Compute or load what grading needs up front (expected outputs); returns seconds spent."""
        return 0.0

    # -- hooks with defaults: sample formats, sandbox needs, reporting --

    def load_samples(self, path: Path, skip_bad: bool = False) -> tuple[list[Sample], list[BadLine]]:
        """Read a samples file (default: EvalPlus JSONL); benchmarks with their own formats override."""
        from harness.samples import load_samples

        return load_samples(path, skip_bad=skip_bad)

    def sandbox_settings(self, base: SandboxSettings) -> SandboxSettings:
        """The sandbox this benchmark's programs need (another interpreter, preloaded modules, limits)."""
        return base

    def verdict_salt(self) -> str:
        """What else changes this benchmark's verdicts (library versions); keys the verdict cache with the options."""
        return ""

    @classmethod
    def grader_label(cls) -> str:
        """The grader's version as run records keep it: ``harness grader 3, humaneval rules 1 (EvalPlus 0.3.1)``."""
        from harness.verdict_cache import GRADER_VERSION

        ref = f" ({cls.reference_grader})" if cls.reference_grader else ""
        return f"harness grader {GRADER_VERSION}, {cls.name} rules {cls.grader_version}{ref}"

    def describe(self) -> dict[str, Any]:
        """Selection and facts that shaped the problem set (a date window, a release), for the run record."""
        return {}

    def selection(self) -> dict[str, Any]:
        """The option values that decide which problems are scored (see :attr:`selection_options`)."""
        values = self.options.model_dump(mode="json")
        described = self.describe()
        out = {k: values.get(k, described.get(k)) for k in self.selection_options}
        return {k: v for k, v in out.items() if v is not None}

    def notes(self) -> list[str]:
        """Caveats a reader of the results must see (missing private tests, substituted library versions)."""
        return []

    def breakdown(self, passed: dict[str, list[bool]]) -> dict[str, Any]:
        """Scores beyond the overall one (per library, per difficulty), from per-task sample outcomes."""
        return {}

    def results_head(self, dataset_hash: str) -> dict[str, Any]:
        """The members of ``eval_results.json`` before its per-task ``eval`` object: the date and dataset hash."""
        from datetime import datetime

        return {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "hash": dataset_hash}

    def results_entry(self, task_id: str, program: str, verdict: Verdict) -> dict[str, Any]:
        """One program's entry in ``eval_results.json``'s ``eval`` object: status and error (a benchmark
        with an official results schema writes that one)."""
        base = verdict.parts.get(self.suites[0])
        return {"task_id": task_id, "solution": program, "status": verdict.status,
                "failed_tests": base.failed if base else [], "reasons": base.reasons if base else {},
                "error": verdict.error}  # fmt: skip

    def results_document(self, dataset_hash: str, programs: list[tuple[str, str]], verdicts: list[Verdict]
                         ) -> dict[str, Any]:  # fmt: skip
        """The per-sample results file (``eval_results.json``): :meth:`results_head`, then each task's
        :meth:`results_entry` list.

        ``harness evaluate`` streams that file one task at a time; a benchmark whose file needs every
        verdict at once (CRUXEval's scores) overrides this method, and its file is then built whole.
        """
        out: dict[str, list[dict[str, Any]]] = {}
        for (tid, program), verdict in zip(programs, verdicts):
            out.setdefault(tid, []).append(self.results_entry(tid, program, verdict))
        return {**self.results_head(dataset_hash), "eval": out}

    def streams_results(self) -> bool:
        """Whether ``eval_results.json`` is written one task at a time (:meth:`results_document` not overridden)."""
        return type(self).results_document is Benchmark.results_document

    def problem_date(self, problem: Problem) -> date | None:
        """When a problem was published (contamination windows use it); None: undated."""
        return None

    def test_case(self, task_id: str, suite: str, index: int) -> dict[str, Any] | None:
        """The ``index``-th test of a suite as reports show a failing input: ``{"input": ..., "expected": ...}``
        (either key may be absent); None when the benchmark cannot say (the default)."""
        return None

    @classmethod
    def options_for_model(cls, model: str, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Option defaults for ``model`` given the options set: ``(values, messages)``.

        Default: a benchmark with dated problems and a ``start_date`` option starts
        after the model's training cutoff when ``harness decontam`` remembered one.
        """
        if "start_date" not in cls.Options.model_fields or given.get("start_date") is not None:
            return {}, []
        from harness.decontamination.window import lookup

        remembered = lookup(model)
        if not remembered:
            return {}, []
        return {"start_date": remembered["start_date"]}, [
            f"{cls.name}: --start-date {remembered['start_date']} from {model}'s training cutoff "
            f"{remembered['cutoff']} (set by harness decontam; pass --start-date to override)"
        ]

    @classmethod
    def oracle_options(cls) -> dict[str, Any]:
        """Options under which canonical solutions are graded (``harness eval --model oracle``)."""
        return {}

    # -- prompting: how a model is asked, and how its reply becomes a sample --

    def prompt(self, problem: Problem, style: str) -> Prompt:
        """The prompt for ``style``: ``base`` continues the task's prompt, ``instruct`` is asked in chat."""
        if style == "base":
            return Prompt(text=problem.prompt.strip() + "\n", stop=DEFAULT_BASE_STOP)
        if style == "instruct":
            instruction = f"Write a Python function to solve the following task:\n```python\n{problem.prompt.strip()}\n```"
            return Prompt(instruction=instruction, response_prefix="```python\n", stop=("\n```",))
        raise HarnessError(f"unknown prompt style {style!r} (base, instruct)")

    def sample(self, problem: Problem, style: str, prompt: Prompt, text: str, field: str | None = None) -> dict[str, str]:
        """The samples-file fields (``solution`` or ``completion``) for a model's reply."""
        if field is not None:  # replay / oracle: stored as the file had it
            return {field: text}
        if style == "base":
            return {"solution": (prompt.text or "") + text}
        code = instruct_code(text)
        if problem.entry_point and _defines(code, problem.entry_point):
            return {"solution": _with_prompt_imports(problem.prompt, code)}
        return {"solution": problem.prompt + code}  # the reply continued the function body

    def reference_items(self) -> list[tuple[str, str, str]]:
        """``(task_id, part, text)`` for decontamination: prompts, solutions, tests, questions.

        Benchmarks add the parts that leak on their own, each matched alone: ``statement``,
        ``docstring``, ``question``, ``description`` (prose, matched word for word) and ``signature``,
        ``assertion:K``, ``test_input:K``, ``code_context`` (code); see :mod:`harness.decontamination.parts`.
        """
        items = []
        for tid, p in self.problems().items():
            items.append((tid, "prompt", p.prompt))
            if p.canonical_solution.strip():
                items.append((tid, "solution", p.canonical_solution))
        return items

    def oracle_sample(self, problem: Problem) -> tuple[str, str]:
        """The canonical solution as a samples-file field; graded, it must pass."""
        return "completion", problem.canonical_solution


@dataclass
class GradeContext:
    """What :meth:`Benchmark.jobs` and :meth:`Benchmark.verdict` get besides the program (one per program)."""

    options: GradeOptions
    memory_bytes: int
    #: Kept from :meth:`Benchmark.jobs` to :meth:`Benchmark.verdict` of the same program (a trusted checker).
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass
class SetupJob:
    """A job run before grading (expected outputs) and the task ids its result makes ready."""

    job: Any
    done: Callable[[Any], Sequence[str]]


# ------------------------------------------------------------------ registry
# Benchmarks are plugins: the ``harness.benchmarks`` entry-point group maps a
# name to a Benchmark class (``name = "package.module:Class"``), so the core
# never imports benchmark modules by name. ``register`` adds one in-process
# (tests, notebooks).
_REGISTRY: dict[str, type[Benchmark] | Callable[..., Benchmark]] = {}
_ENTRY_POINTS: dict[str, Any] = {}
_FAILED: dict[str, str] = {}
_SCANNED = False


def register(name: str, factory: type[Benchmark] | Callable[..., Benchmark]) -> None:
    """Register a benchmark class (or factory) under ``name``."""
    _REGISTRY[name] = factory


def _scan() -> None:
    global _SCANNED
    if _SCANNED:
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group="harness.benchmarks"):
        _ENTRY_POINTS.setdefault(ep.name, ep)
    _SCANNED = True


def rescan() -> None:
    """Forget discovered entry points (after installing or removing a benchmark package in-process)."""
    global _SCANNED
    _SCANNED = False
    _ENTRY_POINTS.clear()
    _FAILED.clear()
    for name in [n for n, f in _REGISTRY.items() if getattr(f, "_from_entry_point", False)]:
        del _REGISTRY[name]


def _load(name: str) -> type[Benchmark] | Callable[..., Benchmark] | None:
    if name in _REGISTRY:
        return _REGISTRY[name]
    _scan()
    ep = _ENTRY_POINTS.get(name)
    if ep is None or name in _FAILED:
        return None
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
        _FAILED[name] = f"{type(exc).__name__}: {exc}"
        return None
    if isinstance(obj, type) and issubclass(obj, Benchmark):
        if obj.name and obj.name != name:
            # One class may serve under its entry-point name only if it says so.
            _FAILED[name] = f"entry point {name!r} loads {obj.__name__}, whose name is {obj.name!r}"
            return None
        if not obj.name:
            obj.name = name
    elif not callable(obj):
        # A module entry point (older layout): importing it registers its benchmarks.
        if name in _REGISTRY:
            return _REGISTRY[name]
        _FAILED[name] = f"entry point {ep.value!r} is not a Benchmark class"
        return None
    try:
        obj._from_entry_point = True  # type: ignore[union-attr]
    except (AttributeError, TypeError):
        pass
    _REGISTRY.setdefault(name, obj)
    return _REGISTRY[name]


def names() -> list[str]:
    """Registered and installed benchmark names in display order (broken plugins left out; see :func:`broken`)."""
    _scan()
    for name in list(_ENTRY_POINTS):
        _load(name)
    return sorted((n for n in _REGISTRY if n not in _FAILED), key=lambda n: (_order(n), n))


def _order(name: str) -> int:
    factory = _REGISTRY.get(name)
    cls = factory if isinstance(factory, type) else getattr(factory, "benchmark_class", None)
    return int(getattr(cls, "display_order", 100))


def broken() -> dict[str, str]:
    """Installed benchmark plugins that failed to load, with the reason."""
    names()
    return dict(_FAILED)


def benchmark_class(name: str) -> type[Benchmark]:
    """The class registered under ``name`` (declarations readable without loading data)."""
    factory = _load(name)
    if factory is None:
        why = f" (its plugin failed to load: {_FAILED[name]})" if name in _FAILED else ""
        raise ConfigError(f"unknown benchmark {name!r}{why}; known: {', '.join(names())}")
    if isinstance(factory, type) and issubclass(factory, Benchmark):
        return factory
    cls = getattr(factory, "benchmark_class", None)
    if isinstance(cls, type) and issubclass(cls, Benchmark):
        return cls
    raise ConfigError(f"benchmark {name!r} is registered as a factory without a benchmark_class attribute")


def defaults() -> list[str]:
    """The benchmarks ``harness eval`` runs when none are named."""
    return [n for n in names() if benchmark_class(n).default]


def references() -> list[str]:
    """The benchmarks whose items are decontamination references (``--benchmarks all``)."""
    return [n for n in names() if benchmark_class(n).decontamination_reference]


def parse_list(text: str | Sequence[str] | None, what: str = "--benchmarks", all_means: str = "all") -> list[str]:
    """A comma list (or ``all``: the decontamination references) as known benchmark names, or a ConfigError."""
    if text is None:
        return defaults()
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if items == [all_means]:
        return references() if all_means == "all" else names()
    if not items:
        raise ConfigError(f"{what} is empty; name at least one of {', '.join(names())}")
    unknown = [b for b in items if b not in names()]
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names())}")
    return list(dict.fromkeys(items))


def get(name: str, data_dir: str | Path | None = None, **options: Any) -> Benchmark:
    """Instantiate a registered benchmark with its options, or fail naming the known ones."""
    factory = _load(name)
    if factory is None:
        why = f" (its plugin failed to load: {_FAILED[name]})" if name in _FAILED else ""
        raise ConfigError(f"unknown benchmark {name!r}{why}; known: {', '.join(names())}")
    cls = benchmark_class(name)
    cls.make_options(options)  # unknown or malformed options fail here, with the flags named
    return factory(data_dir=data_dir, **options)


def reader(name: str, data_dir: str | Path | None = None) -> Benchmark:
    """A benchmark instance for reading problems only (decontamination, prompts): no grading needs checked."""
    return benchmark_class(name).for_reading(data_dir)


def accepted_options(name: str) -> set[str]:
    """Option names the benchmark's ``Options`` declares."""
    return set(benchmark_class(name).Options.model_fields)


def options_for(names_: Sequence[str], options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Split benchmark options (set flags only) among benchmarks; an option no benchmark here takes is an error."""
    given = {k: v for k, v in options.items() if v is not None}
    per = {n: {k: v for k, v in given.items() if k in accepted_options(n)} for n in names_}
    used = {k for opts in per.values() for k in opts}
    unused = [k for k in given if k not in used]
    if unused:
        takers = {k: [n for n in names() if k in accepted_options(n)] for k in unused}
        what = "; ".join(f"--{k.replace('_', '-')} applies to {', '.join(v) or 'no benchmark'}" for k, v in takers.items())
        raise ConfigError(f"{what} (benchmarks here: {', '.join(names_)})")
    return per
