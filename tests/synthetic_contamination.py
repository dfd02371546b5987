"""A synthetic training set for decontamination checks: clean code with benchmark items planted at known rows.

Clean rows are functions of the running Python's standard library (code no
benchmark contains), paired into instruction/response rows.  Plants are whole
benchmark problems (prompt + reference solution, or the question), inserted
into a row's response in three forms:

* ``verbatim``: as published;
* ``reformatted``: whitespace only (indentation, blank lines, CRLF line ends);
* ``edited``: lightly edited (the entry point renamed, one word changed, one line dropped).
"""

from __future__ import annotations

import ast
import json
import random
import re
import sysconfig
from pathlib import Path
from typing import Any

KINDS = ("verbatim", "reformatted", "edited")


def stdlib_functions(limit: int = 60000) -> list[tuple[str, str]]:
    """``(qualified name, source)`` of standard-library functions, deduplicated, 80..3000 characters."""
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("test/", "idlelib/idle_test", "site-packages/", "lib2to3/tests")) or "/tests/" in rel:
            continue
        try:
            src = path.read_text(encoding="utf-8")
            tree = ast.parse(src)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = src.splitlines(keepends=True)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno:
                # Whole lines (ast.get_source_segment re-splits the file on every call: quadratic).
                seg = "".join(lines[node.lineno - 1 : node.end_lineno]).rstrip()
                if 80 <= len(seg) <= 3000 and seg not in seen:
                    seen.add(seg)
                    out.append((f"{rel[:-3].replace('/', '.')}.{node.name}", seg))
                    if len(out) >= limit:
                        return out
    return out


def problem_texts(items: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str]]:
    """``(benchmark, task_id, text)``: each problem's prompt (or question) and reference solution joined."""
    by_task: dict[tuple[str, str], dict[str, str]] = {}
    for bench, tid, part, text in items:
        by_task.setdefault((bench, tid), {})[part] = text
    out = []
    for (bench, tid), parts in by_task.items():
        head = parts.get("prompt") or parts.get("question") or ""
        body = parts.get("solution", "")
        text = head + ("\n" + body if body and body.strip() not in head else "")
        if len(re.sub(r"\s+", "", text)) >= 60:
            out.append((bench, tid, text))
    return out


def reformat(text: str, rng: random.Random) -> str:
    """Whitespace-only changes: re-indent, blank lines, CRLF, trailing spaces."""
    lines = text.split("\n")
    style = rng.choice(["tabs", "two", "blank", "crlf"])
    if style == "tabs":
        lines = [re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group(0)) // 4), ln) for ln in lines]
    elif style == "two":
        lines = [re.sub(r"^( {4})+", lambda m: "  " * (len(m.group(0)) // 4), ln) for ln in lines]
    elif style == "blank":
        lines = [ln + "   " for ln in lines for ln in (ln, "")]
    return ("\r\n" if style == "crlf" else "\n").join(lines)


def edit(text: str, rng: random.Random) -> str:
    """Light edits: rename the first defined function everywhere, change one word, drop one line."""
    m = re.search(r"def\s+(\w+)\s*\(", text)
    if m:
        text = re.sub(rf"\b{re.escape(m.group(1))}\b", m.group(1) + "_impl", text)
    wordlist = re.findall(r"\b[a-z]{5,}\b", text)
    if wordlist:
        w = rng.choice(wordlist)
        text = re.sub(rf"\b{w}\b", w.upper(), text, count=1)
    lines = text.split("\n")
    if len(lines) > 6:
        del lines[rng.randrange(1, len(lines) - 1)]
    return "\n".join(lines)


def make_dataset(path: Path, items: list[tuple[str, str, str, str]], rows: int = 50000, plants_per_kind: int = 150,
                 seed: int = 1234) -> dict[str, Any]:  # fmt: skip
    """Write the JSONL set; returns ``{"plants": [{row, kind, benchmark, task_id}], "rows": n}``."""
    rng = random.Random(seed)
    funcs = stdlib_functions()
    problems = problem_texts(items)
    data = []
    for r in range(rows):
        name, src = funcs[r % len(funcs)]
        if r >= len(funcs):  # past the pool: pair two functions so rows stay distinct
            src = src + "\n\n" + funcs[(r * 7919) % len(funcs)][1]
        data.append({"instruction": f"Explain what `{name}` does and show its code.",
                     "response": f"Here is the implementation:\n\n```python\n{src}\n```\n"})  # fmt: skip
    plant_rows = rng.sample(range(rows), plants_per_kind * len(KINDS))
    plants = []
    for k, row in enumerate(plant_rows):
        kind = KINDS[k % len(KINDS)]
        bench, tid, text = problems[rng.randrange(len(problems))]
        planted = text if kind == "verbatim" else reformat(text, rng) if kind == "reformatted" else edit(text, rng)
        where = rng.choice(["before", "after", "replace"])
        resp = data[row]["response"]
        data[row]["response"] = (planted + "\n\n" + resp if where == "before" else
                                 resp + "\n\n" + planted if where == "after" else planted)  # fmt: skip
        plants.append({"row": row, "kind": kind, "benchmark": bench, "task_id": tid})
    with path.open("w", encoding="utf-8") as f:
        for row in data:
            f.write(json.dumps(row) + "\n")
    return {"plants": plants, "rows": rows, "clean_pool": len(funcs)}


def score(report: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Recall per plant kind (any default method, and per method) and precision on clean rows."""
    by_row: dict[int, set[tuple[str, str, str]]] = {}
    for f in report["flagged"]:
        by_row.setdefault(f["row"], set()).add((f["method"], f["benchmark"], f["task_id"]))
    planted = {p["row"] for p in truth["plants"]}
    out: dict[str, Any] = {"recall": {}, "recall_by_method": {}}
    for kind in KINDS:
        mine = [p for p in truth["plants"] if p["kind"] == kind]
        hit = [p for p in mine if any(b == p["benchmark"] and t == p["task_id"] for _, b, t in by_row.get(p["row"], ()))]
        out["recall"][kind] = len(hit) / len(mine)
        out["recall_by_method"][kind] = {
            m: sum(1 for p in mine if (m, p["benchmark"], p["task_id"]) in by_row.get(p["row"], ())) / len(mine)
            for m in report["methods"]
        }
    clean = truth["rows"] - len(planted)
    false = {r for r in by_row if r not in planted}
    out["clean_rows"] = clean
    out["false_positive_rows"] = sorted(false)
    out["precision_on_clean"] = 1 - len(false) / clean
    return out
