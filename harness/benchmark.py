"""The ``Benchmark`` interface, verdicts, and the benchmark registry.

Benchmark modules (``benchmarks/``) register a factory by name; core code
receives benchmarks through :func:`get` and never imports those modules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from harness.errors import HarnessError
from harness.execution import Sandbox


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


class Benchmark(ABC):
    """A benchmark: problems, prompts, and a grader that uses the sandbox."""

    name: str = ""
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
