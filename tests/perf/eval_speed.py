"""Grading speed: the harness against EvalPlus 0.3.1 and against the samples' own floor.

Runs, for each benchmark, on the StarCoder2-15B-Instruct reference samples:

* EvalPlus 0.3.1 (``pip install -e ".[reference]"``) cold (no expected-output
  cache) and warm, with ``--parallel N``;
* ``harness evaluate`` cold and warm with the same parallelism and
  ``--no-verdict-cache``, then twice with the verdict cache (its effect);
* the floor: every sample's own execution time under EvalPlus's time limits,
  in one process with no isolation, stopping at a suite's first failing input,
  divided by N.

Prints wall times, ratios, per-task verdict agreement (HumanEval/32 aside,
where EvalPlus 0.3.1 is wrong) and peak memory (largest resident set of any
process of the run).  Every figure is measured here, in this script.

    HARNESS_DATA_DIR=../shared/data python tests/perf/eval_speed.py [--benchmarks humaneval,mbpp] [--parallel 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = "reference-samples/starcoder2-15b-instruct-v0.1/{bench}.jsonl"
DATASETS = {"humaneval": "humanevalplus/HumanEvalPlus-v0.1.10.jsonl.gz", "mbpp": "mbppplus/MbppPlus-v0.2.0.jsonl.gz"}
OVERRIDE_ENV = {"humaneval": "HUMANEVAL_OVERRIDE_PATH", "mbpp": "MBPP_OVERRIDE_PATH"}


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a command; returns (wall seconds, peak RSS in MiB of its process tree, output tail)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = out.decode(errors="replace")
    if status != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{text[-3000:]}")
    return wall, usage.ru_maxrss // 1024, text


def statuses(path: Path) -> dict[str, tuple[str, str]]:
    doc = json.loads(path.read_text())
    return {tid: (rows[0]["base_status"], rows[0]["plus_status"]) for tid, rows in doc["eval"].items()}


def floor_worker(bench_name: str, samples: str, data_dir: str) -> None:
    """Child process: time each sample's own work under EvalPlus's limits (no isolation)."""
    import benchmarks  # noqa: F401
    from harness.benchmark import GradeOptions, get
    from harness.execution import codec
    from harness.samples import load_samples

    bench: Any = get(bench_name, data_dir=data_dir)
    problems = bench.problems()
    if not bench._load_cached():
        raise SystemExit("run the harness once first: the floor uses its expected-output cache")
    options = GradeOptions()

    class Timeout(Exception):
        pass

    def alarm(*_: Any) -> None:
        raise Timeout

    signal.signal(signal.SIGALRM, alarm)
    rows, _ = load_samples(samples, skip_bad=True)
    total = 0.0
    devnull = open(os.devnull, "w")  # noqa: SIM115
    for sample in rows:
        if sample.task_id not in problems:
            continue
        program = bench.program(problems[sample.task_id], sample.solution, sample.completion)
        for phase in ("base", "plus"):
            env: dict[str, Any] = {}
            saved = sys.stdout
            sys.stdout = devnull
            try:
                exec(program, env)  # noqa: S102 - trusted reference samples
                fn = env[problems[sample.task_id].entry_point]
            except BaseException:  # noqa: BLE001
                continue
            finally:
                sys.stdout = saved
            check = bench._check(sample.task_id, phase)
            limits = bench.limits(sample.task_id, phase, options)
            for i, args in enumerate(bench.inputs(sample.task_id, phase)):
                sys.stdout = devnull
                start = time.perf_counter()
                try:
                    signal.setitimer(signal.ITIMER_REAL, limits[i])
                    out = fn(*args)
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    ok = True
                except BaseException:  # noqa: BLE001
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    ok = False
                finally:
                    sys.stdout = saved
                total += time.perf_counter() - start
                if not ok:
                    break
                try:
                    if not check(i, codec.encode(out, iterate_opaque=True)):
                        break
                except Exception:  # noqa: BLE001
                    break
    print(json.dumps({"seconds": total}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default="humaneval,mbpp")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("HARNESS_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--skip-evalplus", action="store_true")
    parser.add_argument("--floor-worker", nargs=2, metavar=("BENCH", "SAMPLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_worker:
        floor_worker(args.floor_worker[0], args.floor_worker[1], args.data_dir)
        return
    data = Path(args.data_dir).resolve()
    py = sys.executable
    report = []
    for bench in args.benchmarks.split(","):
        work = Path(tempfile.mkdtemp(prefix=f"evalspeed-{bench}-"))
        samples = work / f"{bench}.jsonl"
        shutil.copy(data / SAMPLES.format(bench=bench), samples)
        base_env = {**os.environ, "HARNESS_DATA_DIR": str(data)}
        row: dict[str, Any] = {"benchmark": bench}

        # -- the harness: cold, warm (verdict cache off), then cached re-grade
        hcache = work / "harness-cache"
        henv = {**base_env, "HARNESS_CACHE_DIR": str(hcache)}
        cmd = [py, "-m", "harness", "evaluate", "--benchmark", bench, "--samples", str(samples),
               "--parallel", str(args.parallel)]  # fmt: skip
        row["harness_cold"], row["harness_cold_mb"], _ = run(
            [*cmd, "--output", str(work / "h1"), "--no-verdict-cache"], henv
        )
        row["harness_warm"], row["harness_warm_mb"], _ = run(
            [*cmd, "--output", str(work / "h2"), "--no-verdict-cache"], henv
        )
        run([*cmd, "--output", str(work / "h3")], henv)  # fills the verdict cache
        row["harness_cached"], _, _ = run([*cmd, "--output", str(work / "h4")], henv)
        mine = statuses(work / "h2" / "eval_results.json")
        again = statuses(work / "h1" / "eval_results.json")
        row["harness_self_agreement"] = sum(mine[t] == again.get(t) for t in mine) / len(mine)

        # -- the floor (needs the harness's expected-output cache)
        _, _, out = run([py, __file__, "--floor-worker", bench, str(samples)], henv)
        row["floor"] = json.loads(out.strip().splitlines()[-1])["seconds"] / args.parallel

        # -- EvalPlus 0.3.1
        if not args.skip_evalplus:
            plain = work / "dataset.jsonl"
            with gzip.open(data / DATASETS[bench], "rb") as f:
                plain.write_bytes(f.read())
            eenv = {**base_env, OVERRIDE_ENV[bench]: str(plain), "XDG_CACHE_HOME": str(work / "evalplus-cache")}
            result = work / f"{bench}_eval_results.json"
            ecmd = [py, "-m", "evalplus.evaluate", "--dataset", bench, "--samples", str(samples),
                    "--parallel", str(args.parallel)]  # fmt: skip
            row["evalplus_cold"], row["evalplus_cold_mb"], _ = run(ecmd, eenv)
            theirs = statuses(result)
            result.unlink()
            row["evalplus_warm"], row["evalplus_warm_mb"], _ = run(ecmd, eenv)
            compared = [t for t in theirs if t != "HumanEval/32"]
            row["agreement"] = sum(mine.get(t) == theirs[t] for t in compared) / len(compared)
            row["disagreements"] = [t for t in compared if mine.get(t) != theirs[t]]
        report.append(row)
        shutil.rmtree(work, ignore_errors=True)
    for row in report:
        print(f"\n== {row['benchmark']} (--parallel {args.parallel}) ==")
        print(f"floor (samples' own work / workers): {row['floor']:.1f} s")
        print(f"harness cold {row['harness_cold']:.1f} s, warm {row['harness_warm']:.1f} s "
              f"(x{row['harness_warm'] / row['floor']:.2f} of the floor), "
              f"cached re-grade {row['harness_cached']:.1f} s; peak RSS {row['harness_cold_mb']} / {row['harness_warm_mb']} MiB")  # fmt: skip
        print(f"harness run-to-run verdict agreement: {row['harness_self_agreement']:.3f}")
        if "evalplus_cold" in row:
            print(f"evalplus cold {row['evalplus_cold']:.1f} s, warm {row['evalplus_warm']:.1f} s; "
                  f"peak RSS {row['evalplus_cold_mb']} / {row['evalplus_warm_mb']} MiB")  # fmt: skip
            print(f"speed-up over EvalPlus: cold x{row['evalplus_cold'] / row['harness_cold']:.2f}, "
                  f"warm x{row['evalplus_warm'] / row['harness_warm']:.2f}")  # fmt: skip
            print(
                f"verdict agreement with EvalPlus (HumanEval/32 aside): {row['agreement']:.3f} {row['disagreements']}"
            )
    print("\n" + json.dumps(report))


if __name__ == "__main__":
    main()
