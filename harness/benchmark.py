"""The ``Benchmark`` interface, verdicts, and the benchmark registry.

Benchmark modules (``benchmarks/``) register a factory by name; core code
receives benchmarks through :func:`get` and never imports those modules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from harness.errors import HarnessError
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


class PartVerdict(BaseModel):
    """The verdict of one test suite (EvalPlus's base or plus inputs)."""

    status: str  # pass | fail | timeout
    failed: list[int] = Field(default_factory=list, description="indices of failing inputs")
    reasons: dict[int, str] = Field(default_factory=dict)
    cpu_seconds: float = 0.0


class Verdict(BaseModel):
    """The verdict on one program: overall status plus its parts."""

    status: str  # pass | fail | timeout | error
    parts: dict[str, PartVerdict] = Field(default_factory=dict)
    error: str | None = None
    cached: bool = False


class GradeOptions(BaseModel):
    """Settings that change verdicts (and so key the verdict cache)."""

    min_time_limit: float = 1.0
    time_limit_factor: float = 4.0
    test_details: bool = False
    base_only: bool = False
    memory_accounting: str = Field(
        default="evalplus",
        description="'evalplus': a program gets the free memory it would get inside EvalPlus's checker; "
        "'program': the whole cap is the program's",
    )


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
    """A benchmark: problems, prompts, and a grader that uses the sandbox."""

    name: str = ""
    #: Test suites a verdict has parts for: EvalPlus has base and plus; most benchmarks only base.
    suites: tuple[str, ...] = ("base",)
    #: Seconds the last :meth:`grade` spent loading or computing what grading
    #: needs (expected outputs), for the run record.
    prepare_seconds: float = 0.0

    @abstractmethod
    def problems(self) -> dict[str, Problem]:
        """All tasks by id."""

    @abstractmethod
    def dataset(self) -> DatasetInfo:
        """Name, version, hash and path of the dataset file in use."""

    @abstractmethod
    def program(self, problem: Problem, solution: str | None, completion: str | None) -> str:
        """The program to grade for a sample."""

    @abstractmethod
    def grade(
        self,
        sandbox: Sandbox,
        programs: list[tuple[str, str]],
        options: GradeOptions,
        on_done: Callable[[int, Verdict], None] | None = None,
    ) -> list[Verdict]:
        """Grade ``(task_id, program)`` pairs; verdicts in the same order."""

    def prepare(self, sandbox: Sandbox) -> float:
        """Compute or load what grading needs (expected outputs); returns seconds spent."""
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
        """What else changes this benchmark's verdicts (time limits, library versions); keys the verdict cache."""
        return ""

    def describe(self) -> dict[str, Any]:
        """Selection and options that shaped the problem set (a date window, a release), for the run record."""
        return {}

    def notes(self) -> list[str]:
        """Caveats a reader of the results must see (missing private tests, substituted library versions)."""
        return []

    def breakdown(self, passed: dict[str, list[bool]]) -> dict[str, Any]:
        """Scores beyond the overall one (per library, per difficulty), from per-task sample outcomes."""
        return {}

    def results_document(self, dataset_hash: str, programs: list[tuple[str, str]], verdicts: list[Verdict],
                         base_only: bool) -> dict[str, Any]:  # fmt: skip
        """The per-sample results file (``eval_results.json``): status and error per program."""
        from datetime import datetime

        out: dict[str, list[dict[str, Any]]] = {}
        for (tid, program), verdict in zip(programs, verdicts):
            base = verdict.parts.get("base")
            out.setdefault(tid, []).append({
                "task_id": tid, "solution": program, "status": verdict.status,
                "failed_tests": base.failed if base else [], "reasons": base.reasons if base else {},
                "error": verdict.error,
            })  # fmt: skip
        return {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "hash": dataset_hash, "eval": out}

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
        """``(task_id, part, text)`` for decontamination: prompts, solutions, tests, questions."""
        items = []
        for tid, p in self.problems().items():
            items.append((tid, "prompt", p.prompt))
            if p.canonical_solution.strip():
                items.append((tid, "solution", p.canonical_solution))
        return items

    def oracle_sample(self, problem: Problem) -> tuple[str, str]:
        """The canonical solution as a samples-file field; graded, it must pass."""
        return "completion", problem.canonical_solution


_REGISTRY: dict[str, Callable[..., Benchmark]] = {}


def register(name: str, factory: Callable[..., Benchmark]) -> None:
    """Register a benchmark factory under ``name``."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Registered benchmark names."""
    _load_builtin()
    return sorted(_REGISTRY)


def get(name: str, **kwargs: Any) -> Benchmark:
    """Instantiate a registered benchmark, or fail naming the known ones."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise HarnessError(f"unknown benchmark {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    return factory(**kwargs)


def accepted_options(name: str) -> set[str]:
    """Keyword options the benchmark's factory takes besides ``data_dir``."""
    import inspect

    _load_builtin()
    factory = _REGISTRY.get(name)
    if factory is None:
        return set()
    params = inspect.signature(factory).parameters
    return {p for p in params if p not in ("self", "data_dir")}


def options_for(names_: list[str], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split benchmark options (set flags only) among benchmarks; an option no benchmark takes is an error."""
    given = {k: v for k, v in options.items() if v is not None}
    per = {n: {k: v for k, v in given.items() if k in accepted_options(n)} for n in names_}
    used = {k for opts in per.values() for k in opts}
    unused = [k for k in given if k not in used]
    if unused:
        takers = {k: [n for n in names() if k in accepted_options(n)] for k in unused}
        what = "; ".join(f"--{k.replace('_', '-')} applies to {', '.join(v) or 'no benchmark'}" for k, v in takers.items())
        raise HarnessError(f"{what} (benchmarks here: {', '.join(names_)})")
    return per


def _load_builtin() -> None:
    # Benchmark modules sit above the core, so the core discovers them as
    # plugins (the ``harness.benchmarks`` entry-point group) instead of
    # importing them; the CLI also imports the ``benchmarks`` package.
    if _REGISTRY:
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group="harness.benchmarks"):
        try:
            ep.load()
        except ImportError:
            continue
