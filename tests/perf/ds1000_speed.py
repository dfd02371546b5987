"""DS-1000 grading speed: the harness against DS-1000's own way of running programs.

Measures, with the managed ``ds1000`` environment:

* ``harness evaluate`` on all 1000 codex002 answers, default parallelism
  (one worker per core), no verdict cache: wall time;
* DS-1000's evaluator's way, on a subsample stratified by library (40
  problems by default): one worker; per problem a multiprocessing manager
  and a new process, in which the program imports its libraries afresh, with
  DS-1000's 120 s limit.  Its per-library mean times are scaled to the whole
  benchmark's library mix, divided by the worker count of the harness run
  (DS-1000's evaluator parallelises over problems the same way), and compared.

Also checks that both ways give the same verdicts on the subsample.  Every
figure is measured here, in this script; a busy machine slows both.

    HARNESS_DATA_DIR=../shared/data python tests/perf/ds1000_speed.py [--sample 40] [--env DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ANSWERS = "reference-samples/ds1000/codex002-answers.jsonl"

# DS-1000's evaluator, restated: per problem a manager (a server process) and
# a fresh child that runs the program in a temporary folder with its output
# swallowed; passed when the program finishes within the limit.  The driver
# itself imports no data-science library, so each child imports its own.
OFFICIAL_DRIVER = r"""
import contextlib, io, json, multiprocessing, os, sys, tempfile, time

def run_one(program, timeout, out):
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        import signal
        def alarm(*_):
            raise TimeoutError("timed out")
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(program, {})
            out.append("passed")
        except BaseException as exc:
            out.append(f"failed: {type(exc).__name__}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

def main():
    jobs = json.load(open(sys.argv[1]))
    results = []
    for tid, program in jobs:
        t0 = time.perf_counter()
        manager = multiprocessing.Manager()
        out = manager.list()
        proc = multiprocessing.Process(target=run_one, args=(program, 120.0, out))
        proc.start()
        proc.join(121.0)
        if proc.is_alive():
            proc.kill()
        verdict = out[0] if len(out) else "timed out"
        manager.shutdown()
        results.append([tid, verdict == "passed", time.perf_counter() - t0])
    json.dump(results, open(sys.argv[2], "w"))

if __name__ == "__main__":
    main()
"""


def stratified(problems: dict, size: int) -> list[str]:
    """About ``size`` problems, allocated to libraries by their share, spread evenly within each."""
    by_lib: dict[str, list[str]] = defaultdict(list)
    for tid, p in problems.items():
        by_lib[p.extra["library"]].append(tid)
    total = len(problems)
    chosen: list[str] = []
    for _lib, tids in sorted(by_lib.items()):
        k = max(1, round(size * len(tids) / total))
        step = len(tids) / k
        chosen += [tids[int(i * step)] for i in range(k)]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=40, help="problems in the official-way subsample")
    parser.add_argument("--env", help="managed environment folder (default: the harness cache's ds1000)")
    parser.add_argument("--parallel", type=int, default=0, help="harness workers (default: one per core)")
    args = parser.parse_args()

    from benchmarks.ds1000 import DS1000
    from harness.evaluation import evaluate_samples

    data = Path(os.environ.get("HARNESS_DATA_DIR", ROOT.parent / "shared" / "data"))
    bench = DS1000(data_dir=data, env=args.env)
    problems = bench.problems()
    answers = data / ANSWERS
    workers = args.parallel or os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        record = evaluate_samples("ds1000", answers, output=Path(tmp) / "run", parallel=workers, data_dir=data,
                                  use_verdict_cache=False, bench=bench, echo=lambda _: None)  # fmt: skip
        ours_wall = time.perf_counter() - t0
        ours = {tid: t.base_correct == t.n for tid, t in record.tasks.items()}

        rows, _ = bench.load_samples(answers)
        answer_of = {s.task_id: s.solution for s in rows}
        subset = [t for t in stratified(problems, args.sample) if t in answer_of]
        jobs = [[t, bench.program(problems[t], answer_of[t], None)] for t in subset]
        jobs_path, out_path, driver = Path(tmp) / "jobs.json", Path(tmp) / "out.json", Path(tmp) / "official.py"
        jobs_path.write_text(json.dumps(jobs))
        driver.write_text(OFFICIAL_DRIVER)
        env = {**os.environ, **_env_vars()}
        t1 = time.perf_counter()
        subprocess.run([bench.environment.python, str(driver), str(jobs_path), str(out_path)], check=True, env=env,
                       cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        official_sub_wall = time.perf_counter() - t1
        official = json.loads(out_path.read_text())

    per_lib: dict[str, list[float]] = defaultdict(list)
    for tid, _, secs in official:
        per_lib[problems[tid].extra["library"]].append(secs)
    counts = Counter(p.extra["library"] for p in problems.values())
    official_one_worker = sum(counts[lib] * sum(v) / len(v) for lib, v in per_lib.items())
    official_same_workers = official_one_worker / workers
    agree = sum(ours[tid] == ok for tid, ok, _ in official)
    differ = [tid for tid, ok, _ in official if ours[tid] != ok]

    print(f"harness evaluate, 1000 codex002 answers, {workers} workers: {ours_wall:.1f} s wall "
          f"(grading {record.timings.grading:.1f} s), pass@1 {record.pass_at_k['base']['pass@1']:.3f}")  # fmt: skip
    print(f"DS-1000's way, {len(official)} stratified problems, one worker: {official_sub_wall:.1f} s")
    for lib in sorted(per_lib):
        v = per_lib[lib]
        print(f"  {lib:<11} {len(v):>2} problems, {sum(v) / len(v):.2f} s each (x {counts[lib]} problems)")
    print(f"DS-1000's way scaled to 1000 problems: {official_one_worker:.0f} s with one worker, "
          f"{official_same_workers:.0f} s with {workers}")  # fmt: skip
    print(f"speed-up: {official_one_worker / ours_wall:.1f}x against one worker, "
          f"{official_same_workers / ours_wall:.1f}x against {workers} workers")  # fmt: skip
    print(f"verdicts on the subsample: {agree}/{len(official)} agree" + (f"; differ on {differ}" if differ else ""))


def _env_vars() -> dict[str, str]:
    from harness import envs

    return dict(envs.DS1000.env)


if __name__ == "__main__":
    main()
