"""The EvalPlus sanitizer here against EvalPlus 0.3.1's own: same answers, and how much faster.

Replies are built from the StarCoder2-15B-Instruct HumanEval+ samples (prompt + completion): as they are,
fenced with prose and a test block around them, with a prose line inside, and padded with prose, broken
code and fences. Prints the agreement and the time of each side (needs ``pip install -e '.[reference]'``)::

    HARNESS_DATA_DIR=../shared/data .venv/bin/python tests/perf/sanitize_speed.py
"""

from __future__ import annotations

import gzip
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.extraction import evalplus_sanitize  # noqa: E402

JUNK = ["Let's think: it’s O(n log n).", "  indented prose here", "x = (1,", "We need 1st the sort…", "def broken(:",
        '"""', "Note: don't do it", "    return 1", "```", "print('a')"]  # fmt: skip


def cases(data: Path) -> list[tuple[str, str | None]]:
    """The replies and their entry points (None: no entry point given)."""
    rows = [json.loads(x) for x in gzip.decompress((data / "humanevalplus" / "HumanEvalPlus-v0.1.10.jsonl.gz")
                                                   .read_bytes()).decode().splitlines()]  # fmt: skip
    problems = {r["task_id"]: r for r in rows}
    rng = random.Random(0)
    out: list[tuple[str, str | None]] = []
    samples = data / "reference-samples" / "starcoder2-15b-instruct-v0.1" / "humaneval.jsonl"
    for line in samples.read_text().splitlines():
        s = json.loads(line)
        p = problems[s["task_id"]]
        code, entry = p["prompt"] + s["completion"], p["entry_point"]
        lines = code.split("\n")
        k = rng.randrange(len(lines))
        prose = "\n".join(rng.choice(JUNK) for _ in range(rng.randrange(5, 25)))
        out += [
            (code, entry),
            (code, None),
            (f"Here is the solution:\n```python\n{code}\n```\nIt loops.\nTest:\n```python\nassert {entry}(1)\n```\n", entry),
            ("\n".join(lines[:k]) + "\nSorry let me fix\n" + "\n".join(lines[k:]), entry),
            (f"{prose}\n{code}\n{prose}", entry),
        ]  # fmt: skip
    return out


def main() -> None:
    try:
        from evalplus.sanitize import sanitize
    except ImportError:
        sys.exit("EvalPlus 0.3.1 is the reference: pip install -e '.[reference]'")
    data = Path(os.environ.get("HARNESS_DATA_DIR", ROOT.parent / "shared" / "data"))
    todo = cases(data)
    ours_s = theirs_s = 0.0
    same = 0
    for text, entry in todo:
        t0 = time.perf_counter()
        ours = evalplus_sanitize(text, entry)
        t1 = time.perf_counter()
        theirs = sanitize(text, entry)
        t2 = time.perf_counter()
        ours_s, theirs_s = ours_s + t1 - t0, theirs_s + t2 - t1
        same += ours == theirs
    print(f"{len(todo)} replies: {same} identical to EvalPlus 0.3.1's sanitizer ({len(todo) - same} differ)")
    print(f"harness {ours_s:.2f} s, EvalPlus {theirs_s:.2f} s: x{theirs_s / max(ours_s, 1e-9):.1f}")


if __name__ == "__main__":
    main()
