"""Self-validation speed: responses validated per second, and no sandbox process left behind.

Two synthetic sets of I->R responses (``[Response]`` text with a ```python
block, then ``[Tests]``), each sample unique (a comment with its number) so
that nothing is deduplicated away:

* ordinary: the project's exemplar responses (passing) and the same with a
  wrong assert (failing), plus responses without tests or with a syntax
  error (decided without running);
* hostile: the ordinary mix with, in ``--hostile`` of the samples, infinite
  loops, sleepers, fork bombs, megabytes of printing, a memory hog, and a
  detached ``sleep`` child that tries to outlive its program;
* cheats: the ordinary mix with, in ``--hostile`` of the samples, the
  cheating responses of ``tests/test_validate_cheats.py`` (exits, swallowed
  asserts, tautologies, dead or never-run tests, ...), each expecting its own
  outcome.

Each set goes through :func:`generation.validate.validate_texts` (extraction
and the sandbox, ``--workers`` workers, ``--timeout`` s of CPU per program).
Prints responses per second, outcomes per kind (and whether each kind got the
outcome it should), then scans /proc for processes of the sandbox's program
uids (and the marked ``sleep``) after the run and after the sandbox closed.
Exits 1 if a process was left behind or a kind got a wrong outcome.

    python tests/perf/validate_speed.py [--responses 400] [--hostile 0.2] [--timeout 2] [--workers 2]
                                        [--sets ordinary,hostile,cheats]

Measured 2026-12-01, 2 workers, on the shared 2-core machine under load
(load average 4-9, other engineers' test runs), ordinary set validated three
times per run, five runs of the tree before issue 16 and of the final tree
alternately: median 184.7 vs 174.3 responses/s (-6%); CPU per response
(harness + workers, rusage) median 6.39 vs 7.30 ms (+14%); at load average
about 2, four runs each: 218 vs 206 responses/s (-5.5%), 5.91 vs 6.40 ms (+8%).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MARK = "313.25"  # a sleep length nothing else uses: finds escaped children whatever their uid
TESTS_OK = "assert True\n"

HOSTILE = {
    "infinite_loop": ("def f():\n    while True:\n        pass\n", "assert f() is None\n", "timeout"),
    "sleeper": ("import time\n\ndef f():\n    time.sleep(600)\n", "assert f() is None\n", "timeout"),
    "fork_bomb": ("import os\n\ndef f():\n    while True:\n        try:\n            os.fork()\n        except OSError:\n"
                  "            pass\n", "assert f() is None\n", "timeout"),
    "printer": ("def f():\n    for i in range(1_000_000):\n        print('line', i)\n    return 1\n",
                "assert f() == 1\n", "pass"),
    "memory_hog": ("def f():\n    return bytearray(64 << 30)\n", "assert f()\n", "fail"),
    "detached_child": ("import subprocess\n\ndef f():\n    subprocess.Popen(['sleep', '" + MARK + "'], start_new_session=True)\n"
                       "    return 1\n", "assert f() == 1\n", "pass"),
}  # fmt: skip


def _response(code: str, tests: str | None, n: int) -> str:
    text = f"Explanation of sample {n}.\n\n```python\n# sample {n}\n{code.strip()}\n```\n"
    if tests is not None:
        text += f"\n[Tests]\nThe tests:\n\n```python\n{tests.strip()}\n```\n"
    return text


def ordinary(count: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """``(kind, response text, expected outcome)``: exemplar-based passing and failing responses, and unrunnable ones."""
    from generation.exemplars import load_fewshot
    from generation.validate import fenced_code

    pool = load_fewshot().exemplars
    out = []
    for n in range(count):
        ex = pool[n % len(pool)]
        code, tests = fenced_code(ex.response), fenced_code(ex.tests)
        roll = rng.random()
        if roll < 0.6:
            out.append(("pass", _response(code, tests, n), "pass"))
        elif roll < 0.85:
            out.append(("wrong_assert", _response(code, tests + "\nassert False, 'wrong expectation'", n), "fail"))
        elif roll < 0.93:
            out.append(("no_tests", _response(code, None, n), "no_tests"))
        else:
            out.append(("syntax_error", _response(code + "\ndef broken(:\n    pass", tests, n), "syntax_error"))
    return out


def hostile(count: int, share: float, rng: random.Random) -> list[tuple[str, str, str]]:
    """The ordinary mix with ``share`` of it replaced by hostile programs (each kind in turn)."""
    items = ordinary(count, rng)
    kinds = list(HOSTILE)
    picks = rng.sample(range(count), int(count * share))
    for k, i in enumerate(picks):
        kind = kinds[k % len(kinds)]
        code, tests, expect = HOSTILE[kind]
        items[i] = (kind, _response(code, tests, i), expect)
    return items


def cheats(count: int, share: float, rng: random.Random) -> list[tuple[str, str, str]]:
    """The ordinary mix with ``share`` of it replaced by the cheat suite's responses (each kind in turn)."""
    from tests.test_validate_cheats import CASES

    items = ordinary(count, rng)
    kinds = [k for k, case in CASES.items() if case[2] != "timeout"]  # the loop case: the hostile set has those
    picks = rng.sample(range(count), int(count * share))
    for k, i in enumerate(picks):
        kind = kinds[k % len(kinds)]
        code, tests, expect = CASES[kind]
        items[i] = (kind, _response(code, tests, i), expect)
    return items


def leftovers(uids: set[int]) -> list[str]:
    """Live (non-zombie) processes of the program uids, or the marked sleep, as 'pid uid cmdline'."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            stat = Path(f"/proc/{name}/stat").read_text()
            uid = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] == "Z":
            continue
        if uid in uids or MARK in cmdline:
            found.append(f"{name} uid={uid} {cmdline[:80]}")
    return found


def measure(label: str, items: list[tuple[str, str, str]], workers: int, timeout: float, memory_mb: int) -> bool:
    """Validate one set; print the rate, the outcomes per kind and the leftover scan; True when all is well."""
    from generation.validate import validate_texts
    from harness.execution import Sandbox, SandboxSettings, ScriptJob

    sb = Sandbox(SandboxSettings(workers=workers, memory_bytes=memory_mb << 20))
    try:
        # Workers start on first use: start them outside the timing.
        sb.run_scripts([ScriptJob("pass", 1.0)] * workers)
        uids = set(sb.program_uids())
        t0 = time.perf_counter()
        _, outcomes = validate_texts(sb, [text for _, text, _ in items], timeout)
        seconds = time.perf_counter() - t0
        after_run = leftovers(uids)
    finally:
        sb.close()
    time.sleep(0.5)  # closing is asynchronous for bubblewrap's init: give it a moment before the final scan
    after_close = leftovers(uids)
    by_kind: dict[str, Counter[str]] = {}
    expected = {kind: expect for kind, _, expect in items}
    for (kind, _, _), outcome in zip(items, outcomes):
        by_kind.setdefault(kind, Counter())[outcome] += 1
    ran = sum(o in ("pass", "fail", "timeout") for o in outcomes)
    print(f"\n{label}: {len(items)} responses ({ran} run in the sandbox) in {seconds:.2f} s: "
          f"{len(items) / seconds:.1f} responses/s ({ran / seconds:.1f} programs/s)")  # fmt: skip
    ok = True
    for kind, counts in sorted(by_kind.items()):
        right = counts.get(expected[kind], 0) == sum(counts.values())
        ok &= right
        shown = ", ".join(f"{o} {n}" for o, n in counts.most_common())
        print(f"  {kind:15s} {sum(counts.values()):4d}  {shown}{'' if right else f'  (expected {expected[kind]})'}")
    print(f"  program uids {sorted(uids) or 'none (programs share the harness uid)'}; processes left after the run: "
          f"{len(after_run)}, after close: {len(after_close)}")  # fmt: skip
    for line in (after_run + after_close)[:10]:
        print(f"    {line}")
    return ok and not after_run and not after_close


def main() -> int:
    """Measure both sets and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--responses", type=int, default=400)
    ap.add_argument("--hostile", type=float, default=0.2, help="share of the hostile set that is hostile")
    ap.add_argument("--timeout", type=float, default=2.0, help="CPU seconds per program (the pipeline default is 10)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--memory-mb", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default="ordinary,hostile,cheats", help="which sets to measure, in order")
    args = ap.parse_args()
    sets = [x for x in args.sets.split(",") if x]

    from harness.execution import isolation_mode

    print(f"sandbox isolation: {isolation_mode()}; {args.workers} workers; timeout {args.timeout} s CPU; "
          f"memory cap {args.memory_mb} MiB")  # fmt: skip
    rng = random.Random(args.seed)
    good = True
    for name in sets:
        if name == "ordinary":
            good &= measure("ordinary", ordinary(args.responses, rng), args.workers, args.timeout, args.memory_mb)
        elif name == "hostile":
            good &= measure(f"hostile ({args.hostile:.0%} hostile)", hostile(args.responses, args.hostile, rng),
                            args.workers, args.timeout, args.memory_mb)  # fmt: skip
        elif name == "cheats":
            good &= measure(f"cheats ({args.hostile:.0%} cheating)", cheats(args.responses, args.hostile, rng),
                            args.workers, args.timeout, args.memory_mb)  # fmt: skip
        else:
            ap.error(f"unknown set {name!r}; known: ordinary, hostile, cheats")
    print("\nall outcomes as expected, no process left behind" if good else "\nPROBLEM: see above")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
