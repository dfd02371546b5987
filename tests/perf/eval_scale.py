"""Grading at scale: cost per program and peak memory as the number of samples per task grows.

For each benchmark (HumanEval+, MBPP+) and each n, the StarCoder2-15B-Instruct
reference samples are repeated n times per task, each copy with a different
unused module-level assignment appended (``_scale_copy_<i> = <i>``), so every
program is distinct in its syntax tree and no dedup applies.  Then, with the
same parallelism:

* ``harness evaluate --no-verdict-cache`` (warm expected outputs), its wall
  time, seconds per program and its own peak RSS (the harness process; the
  sandbox workers are separate processes whose size does not depend on n);
* EvalPlus 0.3.1 (warm), for the n given by ``--evalplus-n``: wall time and
  peak RSS of its process tree;
* the floor: the samples' own work under EvalPlus's limits in one process,
  no isolation (``eval_speed.py --floor-worker``), measured at n = 1 just
  before each n's harness run (this VM's speed drifts by 10% and more over
  minutes) and multiplied by n (the copies do the same work), divided by the
  workers;
* the harness's fixed cost per run: the wall time of grading one sample
  (start, imports, dataset and expected outputs loaded, workers started).

Prints one table (ratios to the floor and to EvalPlus, RSS against n = 1) and
checks that verdicts are identical: every copy of a sample gets the verdict
of the n = 1 run, and the harness agrees with EvalPlus (HumanEval/32 aside,
where EvalPlus 0.3.1's oracle is wrong).  Measured timings are only as good
as the machine is idle: the script prints the load average before each run.

    HARNESS_DATA_DIR=../shared/data python tests/perf/eval_scale.py [--benchmarks humaneval,mbpp]
        [--n 1,10,50] [--evalplus-n 1,10] [--parallel 2]

The n = 50 harness runs take about 5x the n = 10 ones (HumanEval+: minutes).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# One definition of the data paths and of a measured run for both perf scripts.
from eval_speed import DATASETS, OVERRIDE_ENV, ROOT, SAMPLES, run  # noqa: E402

# Runs the harness's CLI and reports the peak RSS of this process alone (the harness, not its workers).
HARNESS_MAIN = ("import resource, sys\nfrom harness.cli import main\nrc = main(sys.argv[1:])\n"
                "sys.stderr.write(f\"\\nPEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n\")\n"
                "sys.exit(rc)\n")  # fmt: skip


def load() -> str:
    """The 1-minute load average (what the timings should be read against)."""
    return f"{os.getloadavg()[0]:.2f}"


def replicate(src: Path, dst: Path, n: int) -> int:
    """Each sample ``n`` times, copy i with ``_scale_copy_i = i`` appended (distinct trees); returns the count."""
    rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    count = 0
    with dst.open("w") as f:
        for row in rows:
            field = "solution" if "solution" in row else "completion"
            for i in range(n):
                copy = dict(row)
                copy[field] = row[field].rstrip("\n") + f"\n\n_scale_copy_{i} = {i}\n"
                f.write(json.dumps(copy) + "\n")
                count += 1
    return count


def statuses(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Per task, each sample's (base, plus) status in sample order."""
    doc = json.loads(path.read_text())
    return {tid: [(r["base_status"], r["plus_status"]) for r in rows] for tid, rows in doc["eval"].items()}


def _tally(rows: list[tuple[str, str]]) -> dict[str, int]:
    """How many copies got each (base, plus) status pair: ``{"pass/timeout": 2, ...}``."""
    out: dict[str, int] = {}
    for base, plus in rows:
        out[f"{base}/{plus}"] = out.get(f"{base}/{plus}", 0) + 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default="humaneval,mbpp")
    parser.add_argument("--n", default="1,10,50", help="samples per task for the harness")
    parser.add_argument("--evalplus-n", default="1,10", help="samples per task for EvalPlus ('' for none)")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("HARNESS_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    args = parser.parse_args()
    data = Path(args.data_dir).resolve()
    py = sys.executable
    ns = [int(x) for x in args.n.split(",") if x]
    ens = [int(x) for x in args.evalplus_n.split(",") if x]
    speed = str(Path(__file__).with_name("eval_speed.py"))
    table: list[dict[str, Any]] = []
    for bench in args.benchmarks.split(","):
        work = Path(tempfile.mkdtemp(prefix=f"evalscale-{bench}-"))
        base_env = {**os.environ, "HARNESS_DATA_DIR": str(data), "HARNESS_CACHE_DIR": str(work / "harness-cache")}
        plain = work / "dataset.jsonl"
        with gzip.open(data / DATASETS[bench], "rb") as f:
            plain.write_bytes(f.read())
        eenv = {**base_env, OVERRIDE_ENV[bench]: str(plain), "XDG_CACHE_HOME": str(work / "evalplus-cache")}
        one = work / "n1.jsonl"
        replicate(data / SAMPLES.format(bench=bench), one, 1)
        # Warm-up (expected outputs of both tools), then the floor of one copy of every sample.
        print(f"[{bench}] warm-up (load {load()})", flush=True)
        run([py, "-c", HARNESS_MAIN, "evaluate", "--benchmark", bench, "--samples", str(one), "--output",
             str(work / "warm"), "--no-verdict-cache", "--parallel", str(args.parallel)], base_env)  # fmt: skip
        if ens:
            run([py, "-m", "evalplus.evaluate", "--dataset", bench, "--samples", str(one), "--parallel",
                 str(args.parallel)], eenv)  # fmt: skip
            (work / "n1_eval_results.json").unlink()
        single = work / "single.jsonl"
        single.write_text(one.read_text().splitlines()[0] + "\n")
        fixed, _, _ = run([py, "-c", HARNESS_MAIN, "evaluate", "--benchmark", bench, "--samples", str(single),
                           "--output", str(work / "single"), "--no-verdict-cache", "--parallel", str(args.parallel)],
                          base_env)  # fmt: skip
        reference = statuses(work / "warm" / "eval_results.json")
        for n in sorted(set(ns) | set(ens)):
            samples = work / f"n{n}.jsonl"
            count = replicate(data / SAMPLES.format(bench=bench), samples, n)
            _, _, out = run([py, speed, "--floor-worker", bench, str(one)], base_env)
            floor1 = json.loads(out.strip().splitlines()[-1])["seconds"] / args.parallel
            row: dict[str, Any] = {"benchmark": bench, "n": n, "programs": count, "floor": floor1 * n,
                                   "harness_fixed": round(fixed, 2)}  # fmt: skip
            if n in ns:
                row["load"] = load()
                wall, _, text = run([py, "-c", HARNESS_MAIN, "evaluate", "--benchmark", bench, "--samples",
                                     str(samples), "--output", str(work / f"h{n}"), "--no-verdict-cache",
                                     "--parallel", str(args.parallel)], base_env)  # fmt: skip
                row["harness"] = wall
                row["harness_rss"] = int(text.rsplit("PEAK_RSS_KB=", 1)[1].split()[0]) // 1024
                mine = statuses(work / f"h{n}" / "eval_results.json")
                row["copies_agree"] = all(mine[t] == [v[0]] * n for t, v in reference.items())
                if not row["copies_agree"]:  # which tasks, and how their copies came out
                    row["copies_differ"] = {t: _tally(mine[t]) for t, v in reference.items() if mine[t] != [v[0]] * n}
            if n in ens:
                row["evalplus_load"] = load()
                wall, rss, _ = run([py, "-m", "evalplus.evaluate", "--dataset", bench, "--samples", str(samples),
                                    "--parallel", str(args.parallel)], eenv)  # fmt: skip
                row["evalplus"], row["evalplus_rss"] = wall, rss
                theirs = statuses(work / f"n{n}_eval_results.json")
                if "harness" in row:
                    tasks = [t for t in theirs if t != "HumanEval/32"]
                    row["evalplus_agree"] = all(mine.get(t) == theirs[t] for t in tasks)
                    if not row["evalplus_agree"]:
                        row["evalplus_differs"] = {t: {"harness": _tally(mine.get(t) or []), "evalplus": _tally(theirs[t])}
                                                   for t in tasks if mine.get(t) != theirs[t]}  # fmt: skip
            table.append(row)
            print(json.dumps(row), flush=True)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n--parallel {args.parallel}; warm; harness with --no-verdict-cache; the floor = n x the n=1 floor "
          "measured just before; the harness's fixed cost per run (one sample): "
          + ", ".join(f"{b} {r['harness_fixed']} s" for b, r in {r["benchmark"]: r for r in table}.items()))
    head = ("bench", "n", "progs", "floor s", "harness s", "ms/prog", "x floor", "RSS MiB", "x RSS(n=1)",
            "evalplus s", "ms/prog", "RSS MiB", "speed-up", "same verdicts", "load")  # fmt: skip
    print(" | ".join(head))
    first: dict[str, dict[str, Any]] = {}
    for row in table:
        b = row["benchmark"]
        first.setdefault(b, row)
        h, e = row.get("harness"), row.get("evalplus")
        cells = [b, row["n"], row["programs"], f"{row['floor']:.1f}",
                 f"{h:.1f}" if h else "-", f"{1000 * h / row['programs']:.2f}" if h else "-",
                 f"{h / row['floor']:.2f}" if h else "-", row.get("harness_rss", "-"),
                 f"{row['harness_rss'] / first[b]['harness_rss']:.2f}" if h and first[b].get("harness_rss") else "-",
                 f"{e:.1f}" if e else "-", f"{1000 * e / row['programs']:.2f}" if e else "-", row.get("evalplus_rss", "-"),
                 f"{e / h:.2f}" if e and h else "-",
                 f"{row.get('copies_agree', '-')}/{row.get('evalplus_agree', '-')}", row.get("load", "-")]  # fmt: skip
        print(" | ".join(str(c) for c in cells))
    print("\n" + json.dumps(table))


if __name__ == "__main__":
    main()
