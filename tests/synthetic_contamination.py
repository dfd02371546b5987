"""A synthetic training set for decontamination checks: clean code with benchmark items planted at known rows.

Clean rows are functions of the running Python's standard library (code no
benchmark contains), paired into instruction/response rows; one row in
:data:`EVERYDAY_EVERY` asks an everyday programming question instead
(:data:`EVERYDAY`: "Write a function to reverse a string.", written without
looking at any benchmark), which must not be flagged.  Plants are whole
benchmark problems (prompt + reference solution, or the question), inserted
into a row's response in three forms:

* ``verbatim``: as published;
* ``reformatted``: whitespace only (indentation, blank lines, CRLF line ends);
* ``edited``: lightly edited (the entry point renamed, one word changed, one line dropped).

and **statement-only plants**: one part of a problem alone, as the row's
instruction (the response stays a standard-library function: a different
answer to the benchmark's question), verbatim or reformatted (re-wrapped
lines, doubled spaces, CRLF, indentation): an MBPP ``statement``, a
HumanEval ``docstring`` (its text up to the examples) and a LiveCodeBench
``question``, drawn among the parts meant to be matched alone (at least the
index's minimum words, not a generic phrasing).
"""

from __future__ import annotations

import ast
import json
import random
import re
import sysconfig
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KINDS = ("verbatim", "reformatted", "edited")
#: Statement-only plant kinds, and the parts they plant (the part a benchmark item splits into).
STATEMENT_KINDS = ("statement_verbatim", "statement_reformatted")
STATEMENT_PARTS = ("statement", "docstring", "question")
#: One clean row in this many carries an everyday instruction.
EVERYDAY_EVERY = 20
#: Everyday programming requests, as people write them (none copied from a benchmark).
EVERYDAY = (
    'Write a function to reverse a string.',
    'Write a Python function that checks whether a number is prime.',
    'Write a function to compute the factorial of a number.',
    'Write a function that returns the nth Fibonacci number.',
    'Write a function to check if a string is a palindrome.',
    'Write a Python function to find the largest element in a list.',
    'Write a function to remove duplicates from a list while keeping the order.',
    'Write a function that counts the vowels in a string.',
    'Write a function to merge two sorted lists into one sorted list.',
    'Write a function to sort a list of dictionaries by a given key.',
    'Write a Python function to find the second largest number in a list.',
    'Write a function to count the occurrences of each word in a sentence.',
    'Write a function to flatten a nested list.',
    'Write a function that converts a temperature from Celsius to Fahrenheit.',
    'Write a function to check whether two strings are anagrams of each other.',
    'Write a Python function to compute the greatest common divisor of two integers.',
    'Write a function to find the intersection of two lists.',
    'Write a function to capitalize the first letter of every word in a string.',
    'Write a function that returns the sum of the digits of an integer.',
    'Write a function to find all prime numbers up to n using the sieve of Eratosthenes.',
    'Write a function to rotate a list by k positions to the right.',
    'Write a function to transpose a matrix given as a list of lists.',
    'Write a Python function to validate an email address with a regular expression.',
    'Write a function to convert a binary string to a decimal integer.',
    'Write a function that returns the most common element of a list.',
    'Write a function to compute the average of a list of numbers.',
    'Write a function that checks whether a year is a leap year.',
    'Write a function to split a list into chunks of size n.',
    'Write a function to remove all whitespace from a string.',
    'Write a Python function to find the longest common prefix of a list of strings.',
    'Write a function to count the number of lines in a text file.',
    'Write a function to read a CSV file and return its rows as dictionaries.',
    'Write a function that returns the union of two sets without using the set type.',
    'Write a function to implement binary search on a sorted list.',
    'Write a function that implements bubble sort.',
    'Write a function to compute the power set of a list.',
    'Write a function to generate all permutations of a string.',
    'Write a function that finds the missing number in a list of integers from 1 to n.',
    'Write a function to check if a list is sorted in ascending order.',
    'Write a function to convert a Roman numeral to an integer.',
    'Write a function to convert an integer to a Roman numeral.',
    'Write a function that returns the length of the longest substring without repeating characters.',
    'Write a function to compute the dot product of two vectors.',
    'Write a function to find the minimum and maximum of a list in one pass.',
    'Write a Python function that reverses the words in a sentence.',
    'Write a function to parse a date string in ISO format and return the weekday.',
    'Write a function that counts how many times a substring occurs in a string.',
    'Write a function to compute the median of a list of numbers.',
    'Write a function to check whether a number is a perfect square.',
    'Write a function that returns the list of divisors of a positive integer.',
    'Write a function to implement a stack with push, pop and peek.',
    'Write a class that implements a queue using two stacks.',
    'Write a function to compute the Levenshtein distance between two strings.',
    'Write a function to validate a Sudoku board.',
    'Write a function that returns the running total of a list of numbers.',
    'Write a function to check if parentheses in a string are balanced.',
    'Write a function to convert a snake_case string to camelCase.',
    'Write a function that groups a list of words by their first letter.',
    'Write a function to compute the area of a circle given its radius.',
    'Write a function that returns True if all elements of a list are equal.',
    'Write a function to find the index of the first occurrence of a value in a list.',
    'Write a Python function that zips two lists into a dictionary.',
    'Write a function to count the number of set bits in an integer.',
    'Write a function to compute x raised to the power n without using the ** operator.',
    'Write a function that removes the vowels from a string.',
    'Write a function to find the kth smallest element in an unsorted list.',
    'Write a function that returns the distinct characters of a string in order of appearance.',
    'Write a function to compute compound interest.',
    'Write a function to find pairs of numbers in a list that sum to a target value.',
    'Write a function to normalize a list of numbers to the range 0 to 1.',
    'Write a function that checks whether a string contains only digits.',
    'Write a function to truncate a string to a maximum length and add an ellipsis.',
    'Write a function to convert a list of tuples into a dictionary.',
    'Write a function to compute the cumulative product of a list.',
    'Write a function that returns the elements that appear in exactly one of two lists.',
    'Write a function to shuffle a list in place using the Fisher-Yates algorithm.',
    'Write a function that formats a number of seconds as hours, minutes and seconds.',
    'Write a function to count the words in a string.',
    'Write a function to check whether a string is a valid IPv4 address.',
    'Write a function to find the longest word in a sentence.',
    'Write a Python function to compute the least common multiple of two numbers.',
    "Write a function to generate Pascal's triangle up to n rows.",
    'Write a function that returns the frequency of each character in a string as a dictionary.',
    'Write a function to deep copy a nested dictionary.',
    'Write a function to find the mode of a list of numbers.',
    'Write a function to compute the Hamming distance between two strings.',
    'Write a function to check if a number is an Armstrong number.',
    'Write a function that returns the nth triangular number.',
    'Write a function to compress a string using run-length encoding.',
    'Write a function to find the common elements of three lists.',
    'Write a function to remove the nth element from a list.',
    'Write a function to interleave two lists.',
    'Write a function to swap the keys and values of a dictionary.',
    'Write a function that pads a string on the left with zeros to a given width.',
    'Write a function to sum the elements of a list.',
    'Write a function to find the maximum of two numbers.',
    'Write a function to convert a string to uppercase.',
    'Write a Python function to count the even numbers in a list.',
    'Write a function that sorts a list of strings by length.',
    'Write a function to compute the distance between two points in the plane.',
    'Implement a function that returns the number of days between two dates.',
    'Create a function that checks whether a list contains duplicates.',
    'Given a list of integers, return a new list with each element squared.',
    'Sort a list of tuples by their second element.',
    'Reverse a linked list.',
    'Explain the difference between a list and a tuple in Python.',
    'How do I read a JSON file in Python?',
    'Write a unit test for a function that adds two numbers.',
    'Write a function to find the maximum sum of a contiguous subarray.',
    'Write a function that returns the first non-repeating character of a string.',
)


# The fields that hold statements: a function definition is a statement, so only these lead to one.
_BODIES = frozenset({"body", "orelse", "finalbody", "handlers", "cases"})


def _function_defs(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The function definitions of ``tree`` in ``ast.walk``'s order, visiting statements only.

    Breadth first like ``ast.walk``, so the same functions come in the same order; skipping the expressions
    (most of a tree's nodes) took the stdlib scan from 8.2 to 5.4 s (2026-12-04; parsing is most of the rest).
    """
    todo: deque[ast.AST] = deque([tree])
    while todo:
        node = todo.popleft()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        for name in node._fields:
            if name in _BODIES:
                todo.extend(getattr(node, name))


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
        for node in _function_defs(tree):
            if node.end_lineno:
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


def reformat_text(text: str, rng: random.Random) -> str:
    """Whitespace-only changes to prose: re-wrapped lines, doubled spaces, CRLF, indentation."""
    words_ = text.split()
    style = rng.choice(["wrap", "spaces", "crlf", "indent"])
    if style == "wrap":
        width = rng.randrange(20, 60)
        lines, line = [], ""
        for w in words_:
            if line and len(line) + 1 + len(w) > width:
                lines.append(line)
                line = w
            else:
                line = f"{line} {w}" if line else w
        return "\n".join([*lines, line])
    if style == "spaces":
        return "  ".join(words_)
    if style == "crlf":
        return text.replace("\r\n", "\n").replace("\n", "\r\n")
    return "\n".join("    " + ln for ln in text.split("\n"))


def statement_parts(items: list[tuple[str, str, str, str]], min_words: int = 8) -> dict[str, list[tuple[str, str, str]]]:
    """Per part kind in :data:`STATEMENT_PARTS`: ``(benchmark, task_id, text)`` of the parts matched alone."""
    from harness.decontamination.index import words
    from harness.decontamination.parts import is_generic

    out: dict[str, list[tuple[str, str, str]]] = {p: [] for p in STATEMENT_PARTS}
    for bench, tid, part, text in items:
        if part in out:
            toks = words(text)
            if len(toks) >= min_words and not is_generic(toks):
                out[part].append((bench, tid, text))
    return out


def make_dataset(path: Path, items: list[tuple[str, str, str, str]], rows: int = 50000, plants_per_kind: int = 150,
                 seed: int = 1234, statement_plants: int = 60) -> dict[str, Any]:  # fmt: skip
    """Write the JSONL set; returns ``{"plants": [{row, kind, benchmark, task_id[, part]}], "rows": n, ...}``.

    ``statement_plants``: statement-only plants per part kind and per statement kind.
    """
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
    # everyday requests on clean rows (a different random stream: the plants above stay as they were)
    srng = random.Random(seed + 1)
    taken = set(plant_rows)
    everyday = [r for r in range(0, rows, EVERYDAY_EVERY) if r not in taken]
    for n, r in enumerate(everyday):
        data[r]["instruction"] = EVERYDAY[n % len(EVERYDAY)]
    taken |= set(everyday)
    pools = statement_parts(items)
    free = [r for r in range(rows) if r not in taken]
    wanted = [(kind, part) for part in STATEMENT_PARTS if pools[part] for kind in STATEMENT_KINDS
              for _ in range(statement_plants)]  # fmt: skip
    for (kind, part), row in zip(wanted, srng.sample(free, min(len(free), len(wanted)))):
        bench, tid, text = pools[part][srng.randrange(len(pools[part]))]
        planted = text if kind == "statement_verbatim" else reformat_text(text, srng)
        how = srng.choice(["alone", "prefixed", "suffixed"])
        data[row]["instruction"] = (planted if how == "alone" else f"Please solve this problem.\n\n{planted}"
                                    if how == "prefixed" else f"{planted}\n\nExplain your approach.")  # fmt: skip
        plants.append({"row": row, "kind": kind, "benchmark": bench, "task_id": tid, "part": part})
    with path.open("w", encoding="utf-8") as f:
        for row in data:
            f.write(json.dumps(row) + "\n")
    return {"plants": plants, "rows": rows, "clean_pool": len(funcs), "everyday_rows": everyday,
            "statement_pool": {p: len(v) for p, v in pools.items()}}


def score(report: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Recall per plant kind (any method, and per method) and per planted part; precision on clean rows.

    A plant counts as found when some flag on its row names its benchmark and
    task (whatever part).  False positives: clean rows flagged, in all, per
    part the flags name, and among the everyday-instruction rows.
    """
    by_row: dict[int, set[tuple[str, str, str]]] = {}
    parts_by_row: dict[int, set[str]] = {}
    for f in report["flagged"]:
        by_row.setdefault(f["row"], set()).add((f["method"], f["benchmark"], f["task_id"]))
        parts_by_row.setdefault(f["row"], set()).add(f"{f['benchmark']}:{f['part'].split(':')[0]}")
    planted = {p["row"] for p in truth["plants"]}
    out: dict[str, Any] = {"recall": {}, "recall_by_method": {}, "recall_by_part": {}}

    def found(p: dict[str, Any]) -> bool:
        return any(b == p["benchmark"] and t == p["task_id"] for _, b, t in by_row.get(p["row"], ()))

    for kind in (*KINDS, *STATEMENT_KINDS):
        mine = [p for p in truth["plants"] if p["kind"] == kind]
        if not mine:
            continue
        out["recall"][kind] = sum(map(found, mine)) / len(mine)
        out["recall_by_method"][kind] = {
            m: sum(1 for p in mine if (m, p["benchmark"], p["task_id"]) in by_row.get(p["row"], ())) / len(mine)
            for m in report["methods"]
        }
        for part in sorted({p.get("part") for p in mine if p.get("part")}):
            of_part = [p for p in mine if p.get("part") == part]
            out["recall_by_part"].setdefault(kind, {})[part] = {"plants": len(of_part),
                                                                "recall": sum(map(found, of_part)) / len(of_part)}
    clean = truth["rows"] - len(planted)
    false = {r for r in by_row if r not in planted}
    out["clean_rows"] = clean
    out["false_positive_rows"] = sorted(false)
    out["precision_on_clean"] = 1 - len(false) / clean
    per_part: dict[str, int] = {}
    for r in false:
        for label in parts_by_row.get(r, ()):
            per_part[label] = per_part.get(label, 0) + 1
    out["false_positives_by_part"] = dict(sorted(per_part.items()))
    everyday = [r for r in truth.get("everyday_rows", []) if r not in planted]
    out["everyday_rows"] = len(everyday)
    out["everyday_flagged"] = sorted(r for r in everyday if r in by_row)
    return out
