"""CRUXEval grading speed: the 800-problem oracle of CRUXEval-O and of CRUXEval-I through the grading runner.

For each task, the oracle's generations (the output, or the call ``f(<input>)``)
are turned into CRUXEval's programs and graded by the core runner
(:func:`harness.grading.grade_programs`, no verdict cache) in one sandbox of
``--workers`` workers.  Prints seconds, programs per second and how many
passed (all should), and for reference the same sandbox running 800 empty
scripts, the floor any script-graded benchmark has there.  Every figure is
measured here; a busy machine slows them all.

    HARNESS_DATA_DIR=../shared/data python tests/perf/cruxeval_speed.py [--workers 2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Time each variant ``--repeat`` times and print the figures."""
    from benchmarks.cruxeval import CruxEvalInput, CruxEvalOutput
    from harness.benchmark import GradeOptions
    from harness.execution import Sandbox, SandboxSettings, ScriptJob, isolation_mode
    from harness.grading import grade_programs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers (default 2)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each variant (default 2)")
    parser.add_argument("--data-dir", default=os.environ.get("HARNESS_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    args = parser.parse_args()

    benches = [CruxEvalOutput(data_dir=args.data_dir), CruxEvalInput(data_dir=args.data_dir)]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.workers} workers")
    with Sandbox(SandboxSettings(workers=args.workers)) as sandbox:
        sandbox.run_scripts([ScriptJob("pass")] * args.workers)  # workers started before any timing
        print(f"isolation {isolation_mode()}")
        for rep in range(args.repeat):
            t0 = time.perf_counter()
            sandbox.run_scripts([ScriptJob("pass") for _ in range(800)])
            dt = time.perf_counter() - t0
            print(f"run {rep + 1}  empty scripts (floor)  800 programs  {dt:6.2f} s  {800 / dt:7.1f} programs/s")
            for bench in benches:
                problems = bench.problems()
                programs = [(tid, bench.program(p, bench.oracle_sample(p)[1], None)) for tid, p in problems.items()]
                t0 = time.perf_counter()
                outcome = grade_programs(bench, sandbox, programs, GradeOptions())
                dt = time.perf_counter() - t0
                passed = sum(v.status == "pass" for v in outcome.verdicts)
                print(f"run {rep + 1}  {bench.title:<20} {len(programs)} programs  {dt:6.2f} s  "
                      f"{len(programs) / dt:7.1f} programs/s  passed {passed}/{len(programs)}")  # fmt: skip


if __name__ == "__main__":
    main()
