"""A toy benchmark: three functions, tests run as a script, one option.

It is the example of ``docs/adding-a-benchmark.md`` and the test that a
benchmark installed from outside the repository works everywhere
(``tests/test_plugin.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from harness.benchmark import Benchmark, BenchmarkOptions, DatasetInfo, GradeContext, PartVerdict, Problem, Verdict
from harness.execution import ScriptJob, ScriptResult

# task id -> (prompt, entry point, canonical solution, tests)
TASKS: dict[str, tuple[str, str, str, str]] = {
    "toy/0": ('def add(a: int, b: int) -> int:\n    """Return the sum of a and b, the toy benchmark\'s first task."""\n',
              "add", "    return a + b\n", "assert add(1, 2) == 3\nassert add(-4, 4) == 0\n"),
    "toy/1": ('def triple(x: int) -> int:\n    """Return three times x, which is the toy benchmark\'s second task."""\n',
              "triple", "    return 3 * x\n", "assert triple(2) == 6\nassert triple(0) == 0\n"),
    "toy/2": ('def shout(s: str) -> str:\n    """Return s in upper case followed by an exclamation mark, the third task."""\n',
              "shout", "    return s.upper() + '!'\n", "assert shout('hi') == 'HI!'\n"),
}  # fmt: skip


class ToyOptions(BenchmarkOptions):
    """The toy's one option: how many times its tests run."""

    toy_flag: int = Field(default=1, ge=1, description="run each task's tests this many times")


class Toy(Benchmark):
    """Three problems, one suite, graded by running the tests as a script."""

    name = "toy"
    title = "Toy"
    Options = ToyOptions

    def problems(self) -> dict[str, Problem]:
        """The three tasks."""
        return {tid: Problem(tid, prompt, entry, solution, {"tests": tests})
                for tid, (prompt, entry, solution, tests) in TASKS.items()}  # fmt: skip

    def dataset(self) -> DatasetInfo:
        """The tasks are the dataset: their hash is its version."""
        digest = hashlib.md5(json.dumps(TASKS, sort_keys=True).encode()).hexdigest()  # noqa: S324 - an identifier
        return DatasetInfo(name="Toy", version="1", hash=digest, path=__file__)

    def program(self, problem: Problem, solution: str | None, completion: str | None) -> str:
        """A whole program, or the prompt followed by the completion."""
        return solution if solution is not None else problem.prompt + (completion or "")

    def jobs(self, task_id: str, program: str, state: Any, ctx: GradeContext) -> list[ScriptJob]:
        """One script: the program, then its tests (``toy_flag`` times)."""
        tests = self.problems()[task_id].extra["tests"] * self.options.toy_flag  # type: ignore[attr-defined]
        return [ScriptJob(program + "\n\n" + tests, cpu_limit=5.0)]

    def verdict(self, task_id: str, program: str, state: Any, results: Sequence[ScriptResult],
                ctx: GradeContext) -> Verdict:  # fmt: skip
        """Passes when the script exits cleanly."""
        res = results[0]
        status = res.status if res.status in ("pass", "fail", "timeout") else "fail"
        reasons = {} if status == "pass" else {0: (res.error or status).strip().splitlines()[-1][:300]}
        part = PartVerdict(status=status, failed=[] if status == "pass" else [0], reasons=reasons, cpu_seconds=res.cpu)
        return Verdict(status=status, parts={"base": part})
