"""The core names no concrete benchmark: a new benchmark is its module plus one entry-point line."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("harness", "generation", "training", "reports")
CONCRETE = re.compile(r"humaneval|mbpp|livecodebench|ds-?1000", re.IGNORECASE)


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def concrete_names(path: Path) -> list[str]:
    """``line: token`` for every identifier or string in ``path`` (outside comments and docstrings) naming one."""
    source = path.read_text(encoding="utf-8")
    docs = _docstring_lines(ast.parse(source))
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and tok.start[0] in docs):
            continue
        if tok.type in (tokenize.NAME, tokenize.STRING) and CONCRETE.search(tok.string):
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            found.append(f"{where}:{tok.start[0]}: {tok.string[:70]}")
    return found


def test_no_core_module_names_a_concrete_benchmark() -> None:
    offenders = [hit for pkg in CORE for path in sorted((ROOT / pkg).rglob("*.py")) for hit in concrete_names(path)]
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_code_and_strings_but_not_comments_or_docstrings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('"""Mentions HumanEval in a docstring."""\n# and mbpp in a comment\nx = "livecodebench"\nDS1000 = 1\n')
    hits = concrete_names(sample)
    assert [h.split(": ")[1] for h in hits] == ['"livecodebench"', "DS1000"]
