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

``--breakdown`` (HumanEval+ by default, at n = 1 and 10: ``--breakdown-n``)
says where the harness's time goes, graded in a child process with the
sandbox's own statistics: the samples' own work (the floor), the rest of the
runners' CPU (program load, prelude, inputs, encoding outputs), the sandbox
workers' CPU (forks, supervision, relaying outputs, sweeps and cleanup), the
harness process's CPU (judging outputs, scheduling, verdicts), bytes of
outputs through the pipes, idle worker time and the run's tail; then the
same for the HumanEval/15 and /130 samples alone (about 300 MB of outputs
each) and the sandbox's start.

    HARNESS_DATA_DIR=../shared/data python tests/perf/eval_speed.py [--benchmarks humaneval,mbpp] [--parallel 2]
    HARNESS_DATA_DIR=../shared/data python tests/perf/eval_speed.py --breakdown [--breakdown-n 1,10]
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
    cpu_total = 0.0  # the same in CPU seconds: what a loaded machine does not inflate
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
                cpu_start = time.process_time()
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
                cpu_total += time.process_time() - cpu_start
                if not ok:
                    break
                try:
                    if not check(i, codec.encode(out, iterate_opaque=True)):
                        break
                except Exception:  # noqa: BLE001
                    break
    print(json.dumps({"seconds": total, "cpu_seconds": cpu_total}))


def replicated(bench: Any, samples: str, n: int, tasks: set[str] | None = None) -> list[tuple[str, str]]:
    """Each sample's program ``n`` times, copy i with ``_scale_copy_i = i`` appended (distinct syntax trees)."""
    from harness.samples import load_samples

    problems = bench.problems()
    rows, _ = load_samples(samples, skip_bad=True)
    out = []
    for sample in rows:
        if sample.task_id not in problems or (tasks is not None and sample.task_id not in tasks):
            continue
        program = bench.program(problems[sample.task_id], sample.solution, sample.completion).rstrip("\n")
        out += [(sample.task_id, f"{program}\n\n_scale_copy_{i} = {i}\n") for i in range(n)]
    return out


#: The workers' own figures in a ``pong`` (CPU, kernel time, page faults), and their counts of their runners.
_PONG_KEYS = ("cpu", "sys", "minflt")
_STAT_KEYS = ("units", "runner_cpu", "limit_cpu", "ready_cpu", "limit_ready_cpu", "runner_sys", "runner_minflt")


def worker_figures(workers: list[Any]) -> dict[str, float]:
    """The local sandbox workers' own CPU and their runners' (a ``ping`` each; the workers keep the counts)."""
    tot = dict.fromkeys(_PONG_KEYS + _STAT_KEYS, 0.0)
    for w in workers:
        w.send({"op": "ping"})
        while True:
            frame = w.recv()
            if frame is None:
                raise SystemExit("a sandbox worker died during the breakdown")
            if frame[0].get("ev") == "pong":
                break
        pong = frame[0]
        for key in _PONG_KEYS:
            tot[key] += float(pong.get(key, 0.0))
        for key in _STAT_KEYS:
            tot[key] += float(pong.get("stats", {}).get(key, 0.0))
    return tot


def breakdown_worker(bench_name: str, samples: str, data_dir: str, parallel: int, n: int, only: str) -> None:
    """Child process: grade ``n`` copies of every sample (or of ``only``'s tasks) and say where the time went."""
    import resource

    import benchmarks  # noqa: F401
    from harness.benchmark import GradeOptions, get
    from harness.execution import Sandbox, SandboxSettings
    from harness.grading import grade_programs

    bench: Any = get(bench_name, data_dir=data_dir)
    programs = replicated(bench, samples, n, set(only.split(",")) if only else None)
    settings = bench.sandbox_settings(SandboxSettings(workers=parallel))
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with Sandbox(settings) as sandbox:
        workers = sandbox._ensure_workers()
        before = worker_figures(workers)
        t1 = time.perf_counter()
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        outcome = grade_programs(bench, sandbox, programs, GradeOptions())
        t2 = time.perf_counter()
        self2 = resource.getrusage(resource.RUSAGE_SELF)
        stats = sandbox.stats
        after = worker_figures(workers)
    moved = {key: after[key] - before[key] for key in after}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers and their runners, all waited for
    runner = sum(p.cpu_seconds for v in outcome.verdicts for p in v.parts.values())
    cpu = lambda r: r.ru_utime + r.ru_stime  # noqa: E731
    print(json.dumps({
        "programs": len(programs), "workers": parallel, "start": t1 - t0, "wall": t2 - t1,
        "prepare": outcome.prepare_seconds, "runner_cpu": runner, "sandbox_cpu": cpu(children),
        "harness_cpu": cpu(self2) - cpu(self1), "harness_start_cpu": cpu(self1) - cpu(self0),
        "worker_own_cpu": moved["cpu"], "worker_own_sys": moved["sys"], "worker_minflt": moved["minflt"],
        "runner_all_cpu": moved["runner_cpu"], "runner_limit_cpu": moved["limit_cpu"],
        **{key: moved[key] for key in ("ready_cpu", "limit_ready_cpu", "runner_sys", "runner_minflt")},
        "judge_cpu": stats.judge_seconds, "busy": stats.busy_seconds, "units": stats.units, "frames": stats.frames,
        "bytes": stats.bytes_in, "tail": stats.tail_seconds, "tail_idle": stats.tail_idle_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }))  # fmt: skip


def floors(bench: str, samples: Path, env: dict[str, str], parallel: int) -> tuple[float, float, float]:
    """The floor (wall and CPU seconds of one process), then the CPU of each of ``parallel`` floors run at once.

    The second says whether the floor divided by the workers is within reach at all here: two CPU-bound
    processes on two cores may each run slower than one alone (shared caches, memory bandwidth, a VM's
    neighbours)."""
    cmd = [sys.executable, __file__, "--floor-worker", bench, str(samples)]
    doc = json.loads(run(cmd, env)[2].strip().splitlines()[-1])
    procs = [subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL) for _ in range(parallel)]  # fmt: skip
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("a floor process failed")
    each = [json.loads(o.decode().strip().splitlines()[-1])["cpu_seconds"] for o in outs]
    return doc["seconds"], doc["cpu_seconds"], sum(each) / len(each)


def breakdown(args: argparse.Namespace, data: Path) -> None:
    """Where the time goes, at each n of ``--breakdown-n`` (HumanEval+ unless --benchmarks says otherwise)."""
    py = sys.executable
    bench = args.benchmarks.split(",")[0] if args.benchmarks != "humaneval,mbpp" else "humaneval"
    work = Path(tempfile.mkdtemp(prefix=f"evalspeed-breakdown-{bench}-"))
    samples = work / f"{bench}.jsonl"
    shutil.copy(data / SAMPLES.format(bench=bench), samples)
    # An expected-output cache given in HARNESS_CACHE_DIR is used (the warm-up is then quick).
    env = {**os.environ, "HARNESS_DATA_DIR": str(data),
           "HARNESS_CACHE_DIR": os.environ.get("HARNESS_CACHE_DIR") or str(work / "harness-cache")}  # fmt: skip
    run([py, "-m", "harness", "evaluate", "--benchmark", bench, "--samples", str(samples), "--output",
         str(work / "warm"), "--no-verdict-cache", "--parallel", str(args.parallel)], env)  # fmt: skip
    floor1 = floor1_cpu = pair = 0.0  # measured before each n (not for the HumanEval/15 and /130 case)
    rows = []
    cases = [(int(n), "") for n in args.breakdown_n.split(",") if n]
    if bench == "humaneval":
        cases.append((int(args.breakdown_n.split(",")[-1]), "HumanEval/15,HumanEval/130"))
    for n, only in cases:
        if not only:
            # The machine's speed drifts by 10% and more over minutes (a VM's neighbours): each n's
            # figures are read against a floor measured just before them.
            floor1, floor1_cpu, pair = floors(bench, samples, env, args.parallel)
        load = os.getloadavg()[0]
        _, _, out = run([py, __file__, "--breakdown-worker", bench, str(samples), str(n), only,
                         "--parallel", str(args.parallel)], env)  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        r.update(n=n, only=only or "all", load=round(load, 2), floor=floor1 * n / args.parallel if not only else None,
                 floor_cpu=floor1_cpu * n if not only else None,
                 floor_pair_cpu=pair * n if not only else None)  # fmt: skip
        rows.append(r)
        print(json.dumps(r), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    w = args.parallel
    for r in rows:
        print(f"\n== {bench} n={r['n']} ({r['only']}; {r['programs']} programs, {w} workers, load {r['load']}) ==")
        print(f"wall {r['wall']:.1f} s (+ {r['start']:.2f} s to start the workers); expected outputs "
              f"{r['prepare']:.1f} s" + (f"; floor {r['floor']:.1f} s -> x{r['wall'] / r['floor']:.2f}"
                                          if r["floor"] else ""))  # fmt: skip
        floor_cpu = r["floor_cpu"]  # CPU seconds, but of inputs run under EvalPlus's wall-clock limits
        if r["load"] > 2 and floor_cpu:
            print(f"  note: load {r['load']}: the floor's wall-clock limits cut slow inputs short, so its CPU "
                  "figure is low; the harness's (CPU limits) is not")  # fmt: skip
        # The runners' whole processes (the workers count them at exit), split where each became ready for
        # its first input: before it (fork, setup, inputs decoded, guard, program load: sandbox overhead)
        # and after it (the inputs' own work, encoding their results, exit), apart for runners stopped at a
        # limit (a timed-out input's CPU is the sample's own work, which no result reports).
        limited = r["runner_limit_cpu"] - r["limit_ready_cpu"]
        inputs = r["runner_all_cpu"] - r["runner_limit_cpu"] - (r["ready_cpu"] - r["limit_ready_cpu"])
        rows_out = [
            ("samples' own work (floor, one process)", floor_cpu),
            (f"  the same, {w} floors at once (each)", r.get("floor_pair_cpu")),
            ("runners before their first input (fork, setup, guard, load)", r["ready_cpu"]),
            ("runners' inputs to their end (results, encoding, exit)", inputs),
            ("runners' inputs stopped at a limit", limited),
            ("  runners' kernel time (in the three rows above)", r["runner_sys"]),
            ("workers' own (fork, supervise, relay, sweep, cleanup)", r["worker_own_cpu"]),
            ("  of which kernel time", r["worker_own_sys"]),
            ("other sandbox processes (bwrap, worker start)", r["sandbox_cpu"] - r["runner_all_cpu"] - r["worker_own_cpu"]),
            ("harness process (judging, scheduling, verdicts)", r["harness_cpu"]),
            ("  of which judging outputs", r["judge_cpu"]),
        ]
        for name, sec in rows_out:
            if sec is not None:
                print(f"  {name:<55} {sec:8.1f} CPU s  {sec / w:7.1f} s/worker  "
                      f"{1000 * sec / r['programs']:7.2f} ms/program  {1000 * sec / max(1, r['units']):6.2f} ms/unit")  # fmt: skip
        units = max(1, r["units"])
        print(f"  sandbox per unit (runners before their first input + workers' own): "
              f"{1000 * (r['ready_cpu'] + r['worker_own_cpu']) / units:.2f} ms; page faults per unit: runners "
              f"{r['runner_minflt'] / units:.0f}, workers {r['worker_minflt'] / units:.0f}; results report "
              f"{r['runner_cpu']:.1f} CPU s (the runners' CPU to ready, once per suite, and each input's)")  # fmt: skip
        idle = w * r["wall"] - r["busy"]
        print(f"  idle worker-seconds {idle:.1f} (tail: last unit started {r['tail']:.1f} s before the end, "
              f"{r['tail_idle']:.1f} worker-s idle in it)")  # fmt: skip
        print(f"  outputs through the pipes {r['bytes'] / 1e6:.0f} MB in {r['frames']} frames; {r['units']} units "
              f"(one fork each); harness peak RSS {r['peak_rss_mb']} MiB")  # fmt: skip
    print("\n" + json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default="humaneval,mbpp")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("HARNESS_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--skip-evalplus", action="store_true")
    parser.add_argument("--floor-worker", nargs=2, metavar=("BENCH", "SAMPLES"), help=argparse.SUPPRESS)
    parser.add_argument("--breakdown", action="store_true", help="where the harness's time goes (see above)")
    parser.add_argument("--breakdown-n", default="1,10", help="samples per task for --breakdown")
    parser.add_argument("--breakdown-worker", nargs=4, metavar=("BENCH", "SAMPLES", "N", "ONLY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_worker:
        floor_worker(args.floor_worker[0], args.floor_worker[1], args.data_dir)
        return
    if args.breakdown_worker:
        b, samples, n, only = args.breakdown_worker
        breakdown_worker(b, samples, args.data_dir, args.parallel, int(n), only)
        return
    data = Path(args.data_dir).resolve()
    if args.breakdown:
        breakdown(args, data)
        return
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
