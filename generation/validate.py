"""Self-validation: run each response's code with its own tests in the sandbox; keep one passing response.

A response (as the I->R stage stored it) is the ``[Response]`` text, then a
``[Tests]`` section.  The code is the response part's ```python block(s),
the tests are the tests part's.  Responses whose tests cannot prove anything
never reach the sandbox and are counted by their reason (see
:mod:`generation.instrument`): empty, no code, no tests, a syntax error, no
asserts, an exit in the code, an assert a ``try`` swallows, asserts on
nothing the code defines (tautology), asserts only under a constant-false
condition.  The rest run in the sandbox, with ``ValidateConfig.timeout``
seconds of CPU, its memory cap, in parallel, through the trusted runner
(:mod:`generation.validate_prelude`): code, then the instrumented tests, then
the tests nothing called, and a trailer carrying a per-run nonce.  A
response passes only when the runner's trailer says every phase finished,
no assert failed (even one something caught), no thread raised, and at least
one executed assert referred to the code; otherwise it is ``fail``,
``timeout``, ``tests_not_run`` or ``swallowed_assert``.  Each row of
``validate.jsonl`` (and of ``validate.removed.jsonl``) records every
response's outcome and a one-line reason (``response_outcomes``,
``response_reasons``).  Of the passing responses of an instruction one is
chosen at random with a seed derived from ``PipelineConfig.seed`` and the
key (recorded in the row with how many passed out of how many sampled); an
instruction with none is removed.
"""

from __future__ import annotations

import ast
import functools
import random
import re
import secrets
import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation import instrument
from generation.core import Context, Funnel, StageFiles, stage_input
from generation.instruct import carried, derive_seed, pending, read_rows, stage_funnel

#: Instructions whose responses go to the sandbox together (then the batch's rows are appended).
ROWS_PER_BATCH = 64
PYTHON_FENCES = ("python", "py", "python3", "")
#: Per-response outcomes, in report order; the first nine are decided without running anything.
OUTCOMES = ("empty", "no_code", "no_tests", "syntax_error", "no_asserts", "exit_in_code", "swallowed_assert",
            "tautology", "dead_tests", "tests_not_run", "pass", "fail", "timeout")  # fmt: skip
#: Outcomes of responses that reached the sandbox.
RAN = frozenset({"tests_not_run", "swallowed_assert", "pass", "fail", "timeout"})
#: Outcomes of responses with code and tests that parse (a removed instruction had a response the checks refused).
CHECKED = RAN | {"exit_in_code", "swallowed_assert", "tautology", "dead_tests"}
_VERDICTS = {"ok": "pass", "not_run": "tests_not_run", "swallowed": "swallowed_assert", "fail": "fail"}

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
    detail: str = ""  # one line: why the outcome (static, or after the run)
    analysis: instrument.Analysis | None = None  # the static checks and the instrumented tests

    @property
    def program(self) -> str:
        """Code, then tests, as the response wrote them (the sandbox runs :meth:`job_program` instead)."""
        return f"{self.code}\n\n\n{self.test_code}\n"

    def job_program(self, nonce: str) -> str:
        """The sandbox program: the code, the instrumented tests, and the trusted runner's finish with a nonce.

        One compile, as before the checks; the code's lines keep their numbers.
        """
        assert self.analysis is not None
        from generation.validate_prelude import FINISH_NAME, HOOK

        watch = f"{HOOK}.watch_unittest()" if self.analysis.unittest else ""
        return (f"{self.code}\n\n{watch}\n\n{self.analysis.tests}\n"
                f"{FINISH_NAME}({nonce!r}, {self.analysis.meta()!r})\n")  # fmt: skip


_STATIC_DETAIL = {"empty": "the response is empty", "no_code": "no closed ```python block before [Tests]",
                  "no_tests": "no [Tests] section with a closed ```python block",
                  "syntax_error": "the code or the tests do not parse"}  # fmt: skip


def extract(text: str) -> Extracted:
    """Split a response into its code and tests and say whether it can run (and why not)."""
    response, tests = split_response(text or "")
    code = fenced_code(response)
    test_code = fenced_code(tests) if tests is not None else ""
    problem: str | None = None
    analysis = None
    if not (text or "").strip():
        problem = "empty"
    elif not code:
        problem = "no_code"
    elif not test_code:
        problem = "no_tests"
    else:
        try:
            code_tree = ast.parse(code)
            tree = ast.parse(test_code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: null bytes
            problem = "syntax_error"
        else:
            try:
                analysis = instrument.analyse(code, test_code, code_tree, tree)
            except RecursionError:  # absurdly nested code: Python could not compile it either
                problem = "syntax_error"
            else:
                problem = analysis.problem
    detail = analysis.detail if analysis is not None else _STATIC_DETAIL.get(problem or "", "")
    return Extracted(response, tests or "", code, test_code, problem, detail, analysis)


@functools.lru_cache(maxsize=1)
def runner_prelude() -> str:
    """The trusted runner's source (the sandbox compiles it once per worker), without docstrings or comments:
    the text travels with every job."""
    tree = ast.parse((Path(__file__).with_name("validate_prelude.py")).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):  # fmt: skip
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def judge(result: Any, nonce: str) -> tuple[str, str]:
    """``(outcome, reason)`` of one sandbox result: only the runner's trailer with this run's nonce can pass."""
    if result.status == "timeout":
        return "timeout", "the CPU or wall-clock limit ran out"
    error = result.error or ""
    mark = f"SystemExit: {instrument_trailer(nonce)}"
    if result.status == "fail" and error.startswith(mark):
        verdict, _, rest = error[len(mark) :].partition(" ")
        executed, _, rest = rest.partition(" ")
        relevant, _, detail = rest.partition(" ")
        outcome = _VERDICTS.get(verdict, "fail")
        if outcome == "pass":
            return "pass", f"{relevant} asserts on the code ran ({executed} in all)"
        return outcome, detail
    if result.status == "pass":
        # the program ended "cleanly" (SystemExit 0) before its last line: the runner never finished
        return "tests_not_run", "the program exited (SystemExit 0) before its tests finished"
    if error.startswith("crashed") and error.endswith("(exit code 0)"):
        return "tests_not_run", "the program exited with status 0 (os._exit) before the tests finished"
    last = [ln for ln in error.strip().splitlines() if ln.strip()]
    return "fail", (last[-1].strip() if last else "failed")[:300]


def instrument_trailer(nonce: str) -> str:
    """The start of the runner's trailer for ``nonce``."""
    from generation.validate_prelude import TRAILER

    return f"{TRAILER}{nonce} "


def run_checked(sandbox: Any, items: Sequence[Extracted], timeout: float) -> list[tuple[str, str]]:
    """Run each checked response through the trusted runner; ``(outcome, reason)`` in order.

    Identical responses (frequent when samples agree) run once; every run has a nonce of its own.
    """
    from harness.execution import ScriptJob

    unique = list(dict.fromkeys((e.code, e.analysis.tests) for e in items if e.analysis is not None))
    first = {key: k for k, key in enumerate(unique)}
    lead = {}
    for e in items:
        assert e.analysis is not None
        lead.setdefault((e.code, e.analysis.tests), e)
    nonces = [secrets.token_hex(12) for _ in unique]
    prelude = runner_prelude()
    jobs = [ScriptJob(lead[key].job_program(nonce), cpu_limit=timeout, prelude=prelude)
            for key, nonce in zip(unique, nonces)]  # fmt: skip
    results = sandbox.run_scripts(jobs) if jobs else []
    judged = [judge(r, n) for r, n in zip(results, nonces)]
    return [judged[first[(e.code, e.analysis.tests)]] for e in items]  # type: ignore[union-attr]


def validate_texts(sandbox: Any, texts: Sequence[str], timeout: float) -> tuple[list[Extracted], list[str]]:
    """Extract and run every response; returns the extractions (``detail`` says why) and one outcome each."""
    extracted = [extract(t) for t in texts]
    runnable = [k for k, e in enumerate(extracted) if e.problem is None]
    ran = run_checked(sandbox, [extracted[k] for k in runnable], timeout)
    outcomes = [e.problem or "" for e in extracted]
    for k, (status, why) in zip(runnable, ran):
        outcomes[k] = status
        extracted[k].detail = why
    return extracted, outcomes


def _decide(ctx: Context, row: dict[str, Any], extracted: list[Extracted],
            outcomes: list[str]) -> tuple[dict[str, Any] | None, tuple[str, str, dict[str, Any]] | None]:  # fmt: skip
    counts = dict(Counter(outcomes))
    passing = [k for k, o in enumerate(outcomes) if o == "pass"]
    # every response's outcome and why, so a user sees what the model tried
    each = {"response_outcomes": list(outcomes), "response_reasons": [e.detail for e in extracted]}
    if not passing:
        checked = any(o in CHECKED for o in outcomes)
        reason = "no_passing_response" if checked else "no_code_or_tests"
        return None, (row["key"], reason, {"outcomes": counts, "sampled": len(outcomes), **each})
    choice_seed = derive_seed(ctx.config.seed, "validate", row["key"])
    chosen = random.Random(choice_seed).choice(passing)
    e = extracted[chosen]
    base = {k: v for k, v in carried(row).items() if k != "responses"}
    return {**base, "response": e.response, "tests": e.tests, "code": e.code, "test_code": e.test_code,
            "passed": len(passing), "sampled": len(outcomes), "passed_indices": passing, "chosen": chosen,
            "choice_seed": choice_seed, "outcomes": counts, **each}, None  # fmt: skip


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
