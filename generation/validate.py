"""Self-validation: run each response's code with its own tests in the sandbox; keep one passing response.

A response (as the I->R stage stored it) is the ``[Response]`` text, then a
``[Tests]`` section.  The code is the response part's ```python block(s),
the tests are the tests part's; a response lacking either, whose code does
not parse, or whose tests assert nothing never reaches the sandbox and is
counted by that reason.  The rest run as one program each (code, then
tests) in the sandbox, with ``ValidateConfig.timeout`` seconds of CPU, its
memory cap, in parallel.  Of the passing responses of an instruction one is
chosen at random with a seed derived from ``PipelineConfig.seed`` and the
key (recorded in the row with how many passed out of how many sampled); an
instruction with none is removed.
"""

from __future__ import annotations

import ast
import random
import re
import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generation.core import Context, Funnel, StageFiles, stage_input
from generation.instruct import carried, derive_seed, pending, read_rows, stage_funnel

#: Instructions whose responses go to the sandbox together (then the batch's rows are appended).
ROWS_PER_BATCH = 64
PYTHON_FENCES = ("python", "py", "python3", "")
#: Per-response outcomes, in report order; the first five are decided without running anything.
OUTCOMES = ("empty", "no_code", "no_tests", "syntax_error", "no_asserts", "pass", "fail", "timeout")

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.DOTALL | re.MULTILINE)
_TESTS_MARK = re.compile(r"^[ \t]*\[Tests\][ \t]*$", re.MULTILINE)


def fenced_code(text: str, languages: Sequence[str] = PYTHON_FENCES) -> str:
    """The contents of the closed fenced blocks of ``text`` in those languages, joined (an unclosed block: none)."""
    blocks = [textwrap.dedent(m.group(2)).rstrip() for m in _FENCE.finditer(text) if m.group(1).lower() in languages]
    return "\n\n".join(b for b in blocks if b.strip())


def split_response(text: str) -> tuple[str, str | None]:
    """``(response part, tests part)``; the tests part is None when the response has no ``[Tests]`` section."""
    m = _TESTS_MARK.search(text)
    if m is None:
        return text.strip(), None
    return text[: m.start()].strip(), text[m.end() :].strip()


@dataclass
class Extracted:
    """What validation takes from one response."""

    response: str  # the explanation and code, without the tests section
    tests: str  # the tests section as written (prose and fence)
    code: str
    test_code: str
    problem: str | None  # an outcome from OUTCOMES that makes running pointless; None: run it

    @property
    def program(self) -> str:
        """Code, then tests: what the sandbox runs."""
        return f"{self.code}\n\n\n{self.test_code}\n"


def _has_assert(tree: ast.AST) -> bool:
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def extract(text: str) -> Extracted:
    """Split a response into its code and tests and say whether it can run."""
    response, tests = split_response(text or "")
    code = fenced_code(response)
    test_code = fenced_code(tests) if tests is not None else ""
    problem: str | None = None
    if not (text or "").strip():
        problem = "empty"
    elif not code:
        problem = "no_code"
    elif not test_code:
        problem = "no_tests"
    else:
        try:
            ast.parse(code)
            tree = ast.parse(test_code)
        except (SyntaxError, ValueError):  # ValueError: null bytes
            problem = "syntax_error"
        else:
            if not _has_assert(tree):
                problem = "no_asserts"
    return Extracted(response, tests or "", code, test_code, problem)


def run_programs(sandbox: Any, programs: Sequence[str], timeout: float) -> list[str]:
    """Run each program in the sandbox; its outcome (``pass``, ``fail``, ``timeout``) in order.

    Identical programs (frequent when samples agree) run once.
    """
    from harness.execution import ScriptJob

    unique = list(dict.fromkeys(programs))
    results = sandbox.run_scripts([ScriptJob(p, cpu_limit=timeout) for p in unique]) if unique else []
    status = {p: r.status for p, r in zip(unique, results)}
    return [status[p] for p in programs]


def validate_texts(sandbox: Any, texts: Sequence[str], timeout: float) -> tuple[list[Extracted], list[str]]:
    """Extract and run every response; returns the extractions and one outcome (from OUTCOMES) per response."""
    extracted = [extract(t) for t in texts]
    runnable = [k for k, e in enumerate(extracted) if e.problem is None]
    ran = run_programs(sandbox, [extracted[k].program for k in runnable], timeout)
    outcomes = [e.problem or "" for e in extracted]
    for k, status in zip(runnable, ran):
        outcomes[k] = status
    return extracted, outcomes


def _decide(ctx: Context, row: dict[str, Any], extracted: list[Extracted],
            outcomes: list[str]) -> tuple[dict[str, Any] | None, tuple[str, str, dict[str, Any]] | None]:  # fmt: skip
    counts = dict(Counter(outcomes))
    passing = [k for k, o in enumerate(outcomes) if o == "pass"]
    if not passing:
        ran = any(o in ("pass", "fail", "timeout") for o in outcomes)
        reason = "no_passing_response" if ran else "no_code_or_tests"
        return None, (row["key"], reason, {"outcomes": counts, "sampled": len(outcomes)})
    choice_seed = derive_seed(ctx.config.seed, "validate", row["key"])
    chosen = random.Random(choice_seed).choice(passing)
    e = extracted[chosen]
    base = {k: v for k, v in carried(row).items() if k != "responses"}
    return {**base, "response": e.response, "tests": e.tests, "code": e.code, "test_code": e.test_code,
            "passed": len(passing), "sampled": len(outcomes), "passed_indices": passing, "chosen": chosen,
            "choice_seed": choice_seed, "outcomes": counts}, None  # fmt: skip


def run(ctx: Context) -> Funnel:
    """Validate every instruction's responses; one passing response per instruction survives."""
    cfg = ctx.config.validate_
    rows = stage_input(ctx.workdir, "responses")
    files = StageFiles(ctx.workdir, "validate")
    todo, skipped = pending(rows, files, "responses")
    files.append([])
    sandbox = ctx.sandbox(cfg.memory_mb, cfg.parallel) if todo else None
    tested = 0
    run_seconds = 0.0
    batches = (len(todo) + ROWS_PER_BATCH - 1) // ROWS_PER_BATCH
    for b, start in enumerate(range(0, len(todo), ROWS_PER_BATCH), start=1):
        batch = todo[start : start + ROWS_PER_BATCH]
        texts = [t for row in batch for t in row.get("responses") or []]
        t0 = time.perf_counter()
        extracted, outcomes = validate_texts(sandbox, texts, cfg.timeout)
        run_seconds += time.perf_counter() - t0
        tested += len(texts)
        outputs, removals = [], []
        at = 0
        for row in batch:
            n = len(row.get("responses") or [])
            kept, gone = _decide(ctx, row, extracted[at : at + n], outcomes[at : at + n])
            at += n
            if kept is not None:
                outputs.append(kept)
            if gone is not None:
                removals.append(gone)
        files.append(outputs)
        files.remove(removals)
        ctx.echo(f"[validate] batch {b}/{batches}: {len(texts)} responses, "
                 f"{sum(o == 'pass' for o in outcomes)} passed; {len(outputs)} instructions kept")  # fmt: skip
    totals: Counter[str] = Counter()
    for r in [*files.rows(), *read_rows(files.removed)]:
        totals.update(r.get("outcomes") or {})
    responses = sum(totals.values())
    extra = {
        "responses": {o: totals.get(o, 0) for o in OUTCOMES},
        "responses_total": responses,
        "response_pass_rate": round(totals.get("pass", 0) / responses, 4) if responses else None,
        "responses_this_run": tested,
        "responses_per_second_this_run": round(tested / run_seconds, 2) if run_seconds > 0 else None,
        "timeout_s": cfg.timeout,
        "memory_mb": cfg.memory_mb,
    }
    return stage_funnel("validate", files, len(rows), skipped, extra=extra)
