"""EvalPlus-format samples files: reading them strictly, extracting code.

A samples file is JSONL, one sample per line, with ``task_id`` and either
``solution`` (a whole program) or ``completion`` (appended to the task's
prompt).  Problems are reported with their line numbers; nothing is guessed.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.failure import GenerationFacts

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+\-.]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Sample:
    """One sample: as read from a file, or made in memory by ``harness eval``.

    ``program``, when set, is the program to grade as it is (code extraction
    already happened once, where the sample was made); ``facts``, what
    generation knew of it (finish reason, unclosed thinking, no code), for
    its failure mode.
    """

    line: int
    task_id: str
    solution: str | None
    completion: str | None
    program: str | None = None
    facts: GenerationFacts | None = None


@dataclass(frozen=True)
class BadLine:
    """A line that could not be used, with the reason."""

    line: int
    task_id: str | None
    reason: str


def load_samples(path: str | Path, skip_bad: bool = False) -> tuple[list[Sample], list[BadLine]]:
    """Read a samples file; malformed lines raise unless ``skip_bad``."""
    p = Path(path)
    if not p.exists():
        raise HarnessError(f"samples file {p} does not exist")
    if p.is_dir():
        raise HarnessError(f"{p} is a folder; pass an EvalPlus samples .jsonl file")
    samples: list[Sample] = []
    bad: list[BadLine] = []
    # utf-8-sig: a byte-order mark (editors on Windows write one) is not part of the first line.
    with p.open("r", encoding="utf-8-sig", errors="replace") as f:
        for lineno, raw in enumerate(f, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                bad.append(BadLine(lineno, None, f"not valid JSON ({exc.msg} at column {exc.colno})"))
                continue
            if not isinstance(row, dict):
                bad.append(BadLine(lineno, None, "not a JSON object"))
                continue
            task_id = row.get("task_id")
            if not isinstance(task_id, str) or not task_id:
                bad.append(BadLine(lineno, None, "missing task_id"))
                continue
            solution, completion = row.get("solution"), row.get("completion")
            if solution is None and completion is None:
                bad.append(BadLine(lineno, task_id, "has neither 'solution' nor 'completion'"))
                continue
            if (solution is not None and not isinstance(solution, str)) or (
                completion is not None and not isinstance(completion, str)
            ):
                bad.append(
                    BadLine(lineno, task_id, "'solution'/'completion' must be a string (repeat the task_id per sample)")
                )
                continue
            samples.append(Sample(lineno, sys.intern(task_id), solution, completion))  # one id string per task
    if bad and not skip_bad:
        shown = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise HarnessError(f"{p} has {len(bad)} malformed line(s): {shown}{more}; fix them or pass --skip-bad-samples")
    if not samples:
        raise HarnessError(f"{p} contains no samples; expected JSONL lines with task_id and solution or completion")
    return samples, bad


def parse_quietly(code: str) -> ast.Module | None:
    """``code``'s syntax tree, None when it has none; its compile warnings (a model's invalid escape
    sequences) are not printed as the harness's own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None


def _parses(code: str) -> bool:
    return parse_quietly(code) is not None


def extract_code(text: str, entry_point: str | None = None) -> str:
    """Code in a markdown reply: the fenced Python block that defines ``entry_point``.

    Falls back to the longest fenced block, then to the text itself.
    """
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    if not blocks:
        return text
    python = [b for lang, b in blocks if lang in ("", "python", "py", "python3")] or [b for _, b in blocks]
    if entry_point:
        pattern = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.MULTILINE)
        defining = [b for b in python if pattern.search(b)]
        if defining:
            return defining[0]
    return max(python, key=len)


def program_for(sample: Sample, prompt: str, entry_point: str | None) -> str:
    """The program to grade: ``solution``, or ``prompt + completion``; fenced code extracted.

    Text that already parses as Python is used as is (as EvalPlus does), so a
    fence inside a string literal never changes a program.
    """
    if sample.solution is not None:
        if _parses(sample.solution) or "```" not in sample.solution:
            return sample.solution
        return extract_code(sample.solution, entry_point)
    completion = sample.completion or ""
    program = prompt + completion
    if _parses(program) or "```" not in completion:
        return program
    code = extract_code(completion, entry_point)
    if entry_point and re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        return code
    return prompt + code


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a string (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
