"""HumanEval-X grading speed: the 164-problem oracle of every language whose toolchain is installed.

For each language the canonical solutions are assembled as CodeGeeX does and
graded by the core runner (:func:`harness.grading.grade_programs`, no verdict
cache) in one sandbox of ``--workers`` workers, from an empty cache (so the
one-time artifacts are built first: a precompiled header, javac's class
archive, the Rust test crates, a warm Go build cache).  Printed per language:
seconds, programs per second, CPU seconds per program, the compile step's
share of the steps' CPU and wall time, the failures (only the known upstream
ones should appear), then with ``--compare N`` the first N problems graded
again with and without the speed-ups (``speedups = False``: no precompiled
header and gold, no JVM start-up flags and class archive, a cold Go build
cache, Rust's standard library linked statically), to show what they save.
No assertions: every figure is measured here, and a busy machine slows all.

    HARNESS_DATA_DIR=../shared/data python tests/perf/humaneval_x_speed.py [--workers 2] [--compare 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _grade(bench: Any, programs: list[tuple[str, str]], workers: int) -> dict[str, Any]:
    """Grade ``programs``; the verdicts and each program's step timings (compile, run)."""
    from harness.benchmark import GradeOptions
    from harness.execution import Sandbox, SandboxSettings
    from harness.grading import grade_programs

    steps: list[list[tuple[float, float]]] = []
    verdict = bench.verdict

    def recording(task_id: str, program: str, state: Any, results: Any, ctx: Any) -> Any:
        if results:
            steps.append([(s.cpu, s.wall) for s in results[0].steps])
        return verdict(task_id, program, state, results, ctx)

    bench.verdict = recording
    try:
        with Sandbox(bench.sandbox_settings(SandboxSettings(workers=workers))) as box:
            t0 = time.perf_counter()
            outcome = grade_programs(bench, box, programs, GradeOptions())
            seconds = time.perf_counter() - t0
    finally:
        bench.verdict = verdict
    return {"verdicts": outcome.verdicts, "seconds": seconds, "prepare": outcome.prepare_seconds, "steps": steps}


def _shares(steps: list[list[tuple[float, float]]], compiles: bool) -> tuple[float, float, float]:
    """CPU seconds per program, and the compile step's share of the steps' CPU and wall time."""
    cpu = sum(c for prog in steps for c, _ in prog)
    wall = sum(w for prog in steps for _, w in prog)
    if not compiles:
        return cpu / max(1, len(steps)), 0.0, 0.0
    ccpu = sum(prog[0][0] for prog in steps if prog)
    cwall = sum(prog[0][1] for prog in steps if prog)
    return cpu / max(1, len(steps)), ccpu / cpu if cpu else 0.0, cwall / wall if wall else 0.0


def main() -> None:
    """Grade each language's oracle and print the figures."""
    from benchmarks import humaneval_x as hx

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers (default 2)")
    parser.add_argument("--languages", default="cpp,java,js,rust,go", help="comma list (default: all five)")
    parser.add_argument("--compare", type=int, default=40, metavar="N",
                        help="also grade the first N problems without the speed-ups (0: skip; default 40)")
    parser.add_argument("--data-dir", default=os.environ.get("HARNESS_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--keep-cache", action="store_true", help="use $HARNESS_CACHE_DIR (built artifacts are reused)")
    args = parser.parse_args()
    if not args.keep_cache:
        os.environ["HARNESS_CACHE_DIR"] = tempfile.mkdtemp(prefix="hx-speed-")
    classes = {"cpp": hx.HumanEvalXCpp, "java": hx.HumanEvalXJava, "js": hx.HumanEvalXJs, "rust": hx.HumanEvalXRust,
               "go": hx.HumanEvalXGo}  # fmt: skip
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.workers} workers; "
          f"cache {os.environ.get('HARNESS_CACHE_DIR')}")  # fmt: skip
    for lang in args.languages.split(","):
        bench = classes[lang](data_dir=args.data_dir)
        tool = bench.toolchain
        if tool.missing:
            print(f"{lang}: not graded ({tool.missing})")
            continue
        problems = list(bench.problems().values())
        programs = [(p.task_id, bench.program(p, None, p.canonical_solution)) for p in problems]
        got = _grade(bench, programs, args.workers)
        failing = [(tid, v.reason()) for (tid, _), v in zip(programs, got["verdicts"]) if v.status != "pass"]
        per, ccpu, cwall = _shares(got["steps"], lang != "js")
        graded = got["seconds"] - got["prepare"]
        print(f"{lang}: {len(programs)} programs in {got['seconds']:.1f} s (artifacts {got['prepare']:.1f} s), "
              f"{len(programs) / max(graded, 1e-9):.1f} programs/s after them; {per:.3f} CPU s per program, "
              f"compile {100 * ccpu:.0f}% of CPU and {100 * cwall:.0f}% of wall; "
              f"{len(programs) - len(failing)} passed  [{'; '.join(tool.versions.values())}]")  # fmt: skip
        for tid, why in failing:
            known = "known upstream failure" if tid in hx.KNOWN_FAILURES[lang] else "NOT A KNOWN FAILURE"
            print(f"    {tid} ({known}): {why}")
        if args.compare and lang != "js":
            subset = programs[: args.compare]
            rows = []
            for fast in (True, False):
                bench.speedups = fast
                res = _grade(bench, subset, args.workers)
                compile_cpu = statistics.mean(s[0][0] for s in res["steps"] if s)
                passed = sum(v.status == "pass" for v in res["verdicts"])
                rows.append((fast, res["seconds"] - res["prepare"], compile_cpu, passed))
            bench.speedups = True
            (_, fs, fc, fp), (_, ss, sc, sp) = rows
            print(f"    first {len(subset)}: with speed-ups {fs:.1f} s, compile {fc:.3f} CPU s/program ({fp} passed); "
                  f"without {ss:.1f} s, compile {sc:.3f} CPU s/program ({sp} passed): "
                  f"{100 * (1 - fc / sc):.0f}% less compile CPU")  # fmt: skip


if __name__ == "__main__":
    main()
