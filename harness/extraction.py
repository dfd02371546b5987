"""Code extraction rules of the official tools, for replies that are prose around code.

* :func:`evalplus_sanitize`: EvalPlus's sanitizer (``evalplus/sanitize.py``, what ``evalplus.codegen``
  applies to every reply): the longest run of lines that parses as Python, then its imports, and the
  classes, functions (those with a ``return``) and assignments the entry point reaches, in order.
  EvalPlus walks a tree-sitter tree; here the same walk runs on Python's own ``ast`` (the two agree on
  valid code, which is all this rule ever keeps).
* :func:`last_fenced_block`: LiveCodeBench's ``extract_code`` for chat models: the lines between the last
  two lines holding a fence, or nothing when there are fewer than two.

Benchmark-specific rules (DS-1000's post-processing, CRUXEval's answer tags) live with their benchmarks.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
import warnings

_ANSI = re.compile(r"\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")


def _parses(code: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences and the like in model output
        try:
            ast.parse(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return False
    return True


#: Syntax errors decided by the text up to the line they name: the parser's generic error (reported at the
#: furthest token it fetched), an unexpected indent (likewise), and the tokenizer's errors (it reads in order).
#: Any span holding the same lines up to there fails the same way.  Errors that depend on what follows (an
#: unclosed bracket or triple-quoted string, a missing block) are not among them.
_PREFIX_ERRORS = ("invalid syntax", "unexpected indent", "unindent does not match", "invalid character",
                  "invalid decimal literal", "invalid non-printable character", "invalid hexadecimal literal",
                  "invalid octal literal", "invalid binary literal", "invalid digit")  # fmt: skip
_DETECTED = re.compile(r"^unterminated string literal \(detected at line (\d+)\)")
#: Errors at the end of the text naming where the trouble began: a bracket or triple-quoted string opened on
#: that line and never closed, a block header with no block.  A shorter span that still holds that line
#: has the same trouble.
_OPENED = ("was never closed", "unterminated triple-quoted string literal")
_NO_BLOCK = re.compile(r"^expected an indented block after .* on line (\d+)")
#: Parses per text at most: EvalPlus's exhaustive search is cubic in the lines, and a degenerate reply
#: (``x = (1,`` repeated for hundreds of lines) must not hold grading up for minutes. Ordinary replies need
#: about one parse per line (172 for 188 lines of prose and eight fenced blocks); past the budget the best
#: span found so far stands (a count, not a clock: the same text always gives the same answer).
PARSE_BUDGET = 1000


def _failure_line(code: str) -> int:
    """0 when ``code`` parses; the line (1-based) of an error that no continuation can fix; -1 otherwise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(code)
        except SyntaxError as exc:
            msg, line = exc.msg or "", exc.lineno or 0
            if msg == "invalid syntax" or (msg.startswith(_PREFIX_ERRORS[1:]) and msg != "invalid syntax"):
                end = exc.end_lineno or line
                return line if line > 0 and end == line else -1
            found = _DETECTED.match(msg)
            if found:
                return int(found.group(1))
            if msg.endswith(_OPENED[0]) or msg.startswith(_OPENED[1]):
                return line if line > 0 else -1
            block = _NO_BLOCK.match(msg)
            return int(block.group(1)) if block else -1
        except (ValueError, MemoryError, RecursionError):
            return -1
    return 0


@functools.lru_cache(maxsize=64)  # the sanitizer and the no-code check ask about the same text
def longest_parsing_span(text: str) -> str:
    """EvalPlus's ``code_extract``: the span of lines with the most non-blank lines that parses as Python.

    Among spans with equally many non-blank lines the first one found wins (EvalPlus keeps the first
    maximum, scanning start lines in order and end lines upwards).  A single line never counts: EvalPlus
    only tries spans of two lines or more.  EvalPlus parses every span (cubic in the lines); here a start
    line's spans are tried longest first, stopping at the first that parses, skipping those that cannot beat
    the best so far, and skipping every span that holds the lines up to an error no continuation can fix
    (prose fails on its first line): the same answer in a fraction of the parses.
    """
    text = _ANSI.sub("", text)
    lines = text.split("\n")
    n = len(lines)
    weight = [1 if line.strip() else 0 for line in lines]
    # suffix[i]: non-blank lines from i to the end: no span starting at i can beat it.
    suffix = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + weight[i]
    best, pair = 0, (0, 0)
    budget = PARSE_BUDGET
    for i in range(n):
        if suffix[i] <= best or budget <= 0:
            break  # no later start can hold more non-blank lines than the best so far
        # For a start line, longer spans hold at least as many non-blank lines: the longest that parses
        # is this start's best. EvalPlus tries every end and keeps a strictly larger count, so among ends
        # with the same count the shortest is its choice.
        j = n - 1
        while j > i and budget > 0:
            count = suffix[i] - suffix[j + 1]
            if count <= best:
                break
            budget -= 1
            failed = _failure_line("\n".join(lines[i : j + 1]))
            if failed == 0:
                # Walk back over trailing blank lines: the same count, EvalPlus saw the shorter span first.
                k = j
                while k - 1 > i and not lines[k].strip() and _parses("\n".join(lines[i:k])):
                    k -= 1
                best, pair = count, (i, k)
                break
            last = j - i + 1
            # An error on line ``failed`` before the span's last line fails every span through that line.
            j = i + failed - 2 if 0 < failed < last else j - 1
    return "\n".join(lines[pair[0] : pair[1] + 1])


def _identifiers(code: str) -> set[str]:
    """Every name token in ``code`` (tree-sitter's identifier nodes: names, attributes, parameters)."""
    names: set[str] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME:
                names.add(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return names


def _has_return(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Return) for n in ast.walk(node))


def _segment(lines: list[bytes], node: ast.AST, start_line: int | None = None) -> str:
    """The source of ``node`` (from ``start_line`` when given), as tree-sitter's byte span gives it."""
    first = (start_line or node.lineno) - 1  # type: ignore[attr-defined]
    col = 0 if start_line else node.col_offset  # type: ignore[attr-defined]
    last, end_col = node.end_lineno - 1, node.end_col_offset  # type: ignore[attr-defined]
    if first == last:
        return lines[first][col:end_col].decode("utf-8", "replace")
    parts = [lines[first][col:]] + lines[first + 1 : last] + [lines[last][:end_col]]
    return b"".join(parts).decode("utf-8", "replace")


def evalplus_sanitize(text: str, entry_point: str | None = None) -> str:
    """EvalPlus's ``sanitize(code, entrypoint)`` (see the module docstring); never raises."""
    code = longest_parsing_span(text)
    kept = _reachable_definitions(code, entry_point).strip()
    return kept if kept else longest_parsing_span(text)


def _reachable_definitions(code: str, entry_point: str | None) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return ""
    lines = code.encode("utf-8").splitlines(keepends=True)
    # ast offsets are in UTF-8 bytes per line, as tree-sitter's are in bytes.
    imports: list[str] = []
    definitions: list[tuple[str | None, str]] = []
    seen: set[str | None] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(_segment(lines, node))
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            # tree-sitter wraps decorated definitions in a node of another type, which EvalPlus drops.
            if node.decorator_list or node.name in seen:
                continue
            if isinstance(node, ast.ClassDef) or _has_return(node):
                definitions.append((node.name, _segment(lines, node)))
                seen.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = target.id if isinstance(target, ast.Name) else None
            if name is not None and name in seen:
                continue
            definitions.append((name, _segment(lines, node)))
            seen.add(name)
    if entry_point:
        deps = {name: _identifiers(src) for name, src in definitions if name is not None}
        reachable = {entry_point}
        queue = [entry_point]
        while queue:
            for neighbour in deps.get(queue.pop(0), ()):
                if neighbour not in reachable:
                    reachable.add(neighbour)
                    queue.append(neighbour)
        definitions = [(name, src) for name, src in definitions if name in reachable]
    return "\n".join(imports + [src for _, src in definitions])


def last_fenced_block(text: str) -> str:
    """LiveCodeBench's ``extract_code`` for chat models: between the last two lines holding a fence, else ''."""
    lines = text.split("\n")
    fences = [k for k, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])


def has_code(code: str) -> bool:
    """Whether extracted text holds code: it parses (whole, or a span of two lines or more) and is more than
    a bare name or literal (``Done``, ``42``: a one-word reply parses as Python)."""
    text = code if _parses(code) else longest_parsing_span(code)
    if not text.strip() or not _parses(text):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    trivial = (ast.Name, ast.Constant, ast.Attribute)
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, trivial)) for node in tree.body)
