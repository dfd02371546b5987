"""Why a sample failed: one failure mode per sample, decided once, stored in the run record.

Modes, in the order they are decided (the first that applies wins):

==================== ==========================================================================
``pass``             the sample passed every suite
``error``            the backend failed on it (finish reason ``error``) or the harness could not
                     grade it (verdict ``error``: a missing toolchain, a task without tests)
``truncated_thinking`` the reply opened its thinking and never closed it
``truncated``        generation stopped at ``--max-tokens`` (finish reason ``length``)
``refused``          the reply is empty, or a refusal with no code
``no_code``          nothing could be extracted as code
``syntax_error``     the program does not parse (Python benchmarks)
``wrong_signature``  the entry point (function, or ``Solution`` method) is not defined
``timeout``          a time limit ran out (an input's, the suite's or loading the program)
``memory``           the program ran out of memory (``MemoryError``, killed at the memory cap)
``runtime_error``    the program raised an exception; its type is kept in ``exception``
``wrong_answer``     it ran and returned or printed the wrong thing (or failed the tests' assertion)
==================== ==========================================================================

What is structured is read as such: the finish reason, the closed-or-not thinking, the verdict's and
suites' statuses, whether the program parses (``ast``), which names it defines (``ast``).  The sandbox
reports a raised exception only inside a suite's reason text, in its own fixed phrases (``raised
TypeError: ...``, ``time limit exceeded``, ``program died (signal 9)``, ``wrong output``); those phrases,
which benchmarks keep when they reword a reason, are what :func:`_from_reasons` reads.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Every mode, in the order summaries list them.
MODES: tuple[str, ...] = (
    "pass", "wrong_answer", "runtime_error", "timeout", "memory", "syntax_error", "wrong_signature", "no_code",
    "truncated", "truncated_thinking", "refused", "error",
)  # fmt: skip
#: Plural phrases for "12 more truncated, 3 fewer wrong answers".
PHRASES: dict[str, tuple[str, str]] = {
    "pass": ("pass", "passes"), "wrong_answer": ("wrong answer", "wrong answers"),
    "runtime_error": ("runtime error", "runtime errors"), "timeout": ("timeout", "timeouts"),
    "memory": ("out of memory", "out of memory"), "syntax_error": ("syntax error", "syntax errors"),
    "wrong_signature": ("wrong signature", "wrong signatures"), "no_code": ("without code", "without code"),
    "truncated": ("truncated", "truncated"), "truncated_thinking": ("truncated in thinking", "truncated in thinking"),
    "refused": ("refused", "refused"), "error": ("error", "errors"),
}  # fmt: skip

_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry|sorry,|i am sorry|i apologi[sz]e|i (?:can(?:no|')t|cannot|won'?t|am unable to|am not able to)"
    r"|as an ai\b|unfortunately,? i (?:can(?:no|')t|cannot))",
    re.IGNORECASE,
)
#: What running into a missing entry point raises (the grader's lookup, or the call of an undefined name).
_MISSING_NAME = frozenset({"KeyError", "NameError", "AttributeError"})
_RAISED = re.compile(r"\braised ([A-Za-z_][\w.]*)")
_LOAD_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))\b")


@dataclass(frozen=True)
class GenerationFacts:
    """What generation knows about a sample (``harness eval``); absent for samples read from a file."""

    finish_reason: str | None = None
    #: The thinking was opened and never closed.
    thinking_unclosed: bool = False
    #: The reply (thinking aside) was empty or only whitespace.
    empty_answer: bool = False
    #: Extraction found no code in the answer.
    no_code: bool = False
    #: The answer's text, for the refusal check (only its start is read).
    answer_head: str = ""


@dataclass(frozen=True)
class Failure:
    """A sample's failure mode, and the exception type for ``runtime_error``."""

    mode: str
    exception: str | None = None


def _parses(code: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return False
    return True


def defines(code: str, name: str) -> bool:
    """Whether ``code`` binds ``name`` at top level, or as a method of a top-level class (LiveCodeBench's
    ``Solution.<func_name>``); ``True`` when the code does not parse (that is a syntax error, not this)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name.split(".")[0]) == name:
            return True
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return True  # a star import may bring it
    return False


def classify(verdict: Any, program: str | None, entry_point: str | None = None, python: bool = True,
             facts: GenerationFacts | None = None, required: Sequence[str] | None = None) -> Failure:  # fmt: skip
    """The failure mode of one graded sample (see the module docstring for the order).

    ``required``: the names the program must define (None: ``entry_point``); ``python``: the program is Python
    (its syntax and names can be read with ``ast``).
    """
    status = verdict.status
    if status == "pass":
        return Failure("pass")
    f = facts or GenerationFacts()
    if f.finish_reason == "error" or status == "error":
        return Failure("error")
    if f.thinking_unclosed:
        return Failure("truncated_thinking")
    if f.finish_reason == "length":
        return Failure("truncated")
    if f.empty_answer or (f.no_code and _REFUSAL.search(f.answer_head or "")):
        return Failure("refused")
    if f.no_code or (program is not None and not program.strip()):
        return Failure("no_code")
    if python and program is not None and not _parses(program):
        return Failure("syntax_error")
    found = _from_reasons(verdict)
    names = tuple(required) if required is not None else ((entry_point,) if entry_point else ())
    # A program without the entry point fails to load (KeyError, NameError, AttributeError); one that ran and
    # returned values had it, so only a load or run failure is looked at.
    if python and program is not None and names and found.exception in _MISSING_NAME:
        if not all(defines(program, name) for name in names):
            return Failure("wrong_signature")
    if status == "timeout" and found.mode != "memory":
        return Failure("timeout")
    return found


def classify_sample(bench: Any, problem: Any, program: str | None, verdict: Any,
                    facts: GenerationFacts | None) -> Failure:  # fmt: skip
    """:func:`classify` with what the benchmark declares: its language (``language``, default Python) and the
    names a program must define (``signature_names(problem)``, default the problem's entry point)."""
    python = str(getattr(bench, "language", "python") or "python").lower() in ("python", "py", "python3")
    names = getattr(bench, "signature_names", None)
    required = tuple(names(problem)) if callable(names) and problem is not None else None
    entry = getattr(problem, "entry_point", None) or None
    return classify(verdict, program, entry, python=python, facts=facts, required=required)


def _reasons(verdict: Any) -> Iterable[str]:
    if getattr(verdict, "error", None):
        yield str(verdict.error)
    for part in (getattr(verdict, "parts", None) or {}).values():
        if part.status == "pass":
            continue
        reasons: Mapping[int, str] = part.reasons or {}
        if -1 in reasons:
            yield str(reasons[-1])
        for key in sorted(k for k in reasons if k != -1):
            yield str(reasons[key])


def _from_reasons(verdict: Any) -> Failure:
    """The mode the sandbox's phrases give (the first failing suite's first reason decides)."""
    for part in (getattr(verdict, "parts", None) or {}).values():
        if part.status == "timeout":
            return Failure("timeout")
        if part.status != "pass":
            break
    for why in _reasons(verdict):
        low = why.lower().strip()
        # Benchmarks put their own phrase first ("wrong answer on test 3: <output>"); what follows it may be
        # the program's output, which is not read.
        if low.startswith(("wrong", "comparison raised", "no output")) or low[:60].find("wrong answer") >= 0:
            return Failure("wrong_answer")
        raised = _RAISED.search(why[:300])
        name = raised.group(1) if raised else None
        if name is None:
            # A load failure is the exception's own text: "NameError: name 'x' is not defined"; a script's
            # traceback (the sandbox's ScriptJob) ends with that line.
            text = why.split(": ", 1)[1] if why.lower().startswith("program failed to load: ") else why
            if "Traceback (most recent call last)" in text:
                text = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
            load = _LOAD_ERROR.match(text.strip())
            name = load.group(1) if load else None
        if name is not None:
            base = name.rsplit(".", 1)[-1]
            if base == "AssertionError":
                return Failure("wrong_answer")  # the tests' own assertion (DS-1000, CRUXEval, check functions)
            if base == "MemoryError":
                return Failure("memory")
            if base == "TimeoutError":
                return Failure("timeout")
            if base == "SyntaxError" or base == "IndentationError" or base == "TabError":
                return Failure("syntax_error")
            return Failure("runtime_error", base)
        if "time limit" in low or "timeout" in low or "timed out" in low:
            return Failure("timeout")
        if "memory" in low or "signal 9" in low:
            return Failure("memory")
        if "wrong" in low or "mismatch" in low or "assert" in low:
            return Failure("wrong_answer")
        if "program died" in low or "exit code" in low or "signal" in low:
            return Failure("runtime_error", "crash")
    return Failure("wrong_answer")


def count_modes(modes: Iterable[str | None]) -> dict[str, int]:
    """``{mode: samples}`` in :data:`MODES` order, zero counts left out."""
    counts: dict[str, int] = {}
    for mode in modes:
        if mode:
            counts[mode] = counts.get(mode, 0) + 1
    order = {m: k for k, m in enumerate(MODES)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def format_counts(counts: Mapping[str, int]) -> str:
    """``"120 pass, 30 wrong_answer, 4 truncated"``."""
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"


def describe_movement(a: Mapping[str, int], b: Mapping[str, int]) -> list[tuple[str, int]]:
    """``[(mode, change)]`` from run A to run B, biggest change first (``pass`` left out: pass@1 says it)."""
    keys = [m for m in MODES if m != "pass"] + sorted(k for k in set(a) | set(b) if k not in MODES)
    moved = [(k, int(b.get(k, 0)) - int(a.get(k, 0))) for k in keys]
    moved = [(k, d) for k, d in moved if d]
    return sorted(moved, key=lambda kd: -abs(kd[1]))


def movement_text(moved: list[tuple[str, int]]) -> str:
    """``"12 more truncated, 3 fewer wrong answers"`` (``"no change"`` when nothing moved)."""
    parts = []
    for mode, d in moved:
        one, many = PHRASES.get(mode, (mode, mode))
        parts.append(f"{abs(d)} {'more' if d > 0 else 'fewer'} {one if abs(d) == 1 else many}")
    return ", ".join(parts) or "no change"
