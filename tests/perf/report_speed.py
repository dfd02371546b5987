"""How fast the report site of a large run opens in the browser (issue 17: 164 tasks x 50 samples under 2 s).

Builds a run of 164 HumanEval+ tasks with ``--samples`` samples each (default 50): a samples file of distinct
programs (the reference sample of each task with a numbered comment, so no two samples share a program) and a
run record whose verdicts mix passes and failures with failing inputs and reasons; indexes it; writes the site;
then opens the run page in Chromium (Playwright, Debian's chromium through ``executable_path``) from disk and
measures, over ``--repeat`` fresh pages: navigation to the load event, to the task table filtered, and opening
one task (its file of 50 programs loaded and rendered). Prints the times, the page and task-file sizes, the
report build time, and the ratio to the 2 s goal.

    HARNESS_DATA_DIR=../shared/data .venv/bin/python tests/perf/report_speed.py [--samples 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

GOAL_S = 2.0


def build(tmp: Path, samples: int) -> tuple[Path, str, float]:
    """The run, its registry and its site; returns (site folder, run id, build seconds)."""
    from harness.benchmark import DETAIL_CHARS, PartVerdict, Verdict
    from harness.evaluation import evaluate_samples
    from harness.passk import mean_pass_at_k
    from harness.registry import Registry
    from harness.store import SampleResult, TaskResult, save_run
    from reports.html import ReportInputs, build_report

    data = Path(os.environ.get("HARNESS_DATA_DIR", ROOT.parent / "shared" / "data"))
    ref = data / "reference-samples" / "starcoder2-15b-instruct-v0.1" / "humaneval.jsonl"
    # One real graded sample per task gives a real record to start from (dataset hash, settings, suites).
    seed = evaluate_samples("humaneval", ref, output=tmp / "seed", data_dir=data, echo=lambda _: None)
    rows = [json.loads(line) for line in ref.read_text().splitlines() if line.strip()]
    lines, tasks = [], {}
    for row in rows:
        tid = row["task_id"]
        graded = seed.tasks[tid].samples[0].verdict
        results = []
        for i in range(samples):
            text = row.get("completion") or row.get("solution") or ""
            lines.append(json.dumps({"task_id": tid, "completion": f"    # sample {i}\n{text}"}))
            ok = graded.status == "pass" and i % 4 != 3
            # What a failing input's details hold at their bound (DETAIL_CHARS each): the worst case per sample.
            shown = {"input": f"({'[1, 2, 3], ' * 40}{i})"[:DETAIL_CHARS], "expected": "x" * DETAIL_CHARS,
                     "returned": f"'{'y' * (DETAIL_CHARS - 2)}'"}  # fmt: skip
            parts = {"base": PartVerdict(status="pass" if ok else "fail", failed=[] if ok else [i % 7],
                                         reasons={} if ok else {i % 7: "wrong output"}, cpu_seconds=0.01,
                                         details={} if ok else {i % 7: shown}),
                     "plus": PartVerdict(status="pass" if ok else "fail", cpu_seconds=0.2)}  # fmt: skip
            v = Verdict(status="pass" if ok else "fail", parts=parts)
            results.append(SampleResult(line=len(lines), verdict=v, reason=v.reason()))
        c = sum(r.verdict.status == "pass" for r in results)
        tasks[tid] = TaskResult(n=samples, correct={"base": c, "plus": c}, samples=results)
    samples_path = tmp / "big" / "samples.jsonl"
    samples_path.parent.mkdir(parents=True)
    samples_path.write_text("\n".join(lines) + "\n")
    pak = {s: mean_pass_at_k([(t.n, t.correct[s]) for t in tasks.values()]) for s in ("base", "plus")}
    rec = seed.model_copy(update={"tasks": tasks, "n_samples": samples * len(tasks), "pass_at_k": pak,
                                  "samples_file": str(samples_path), "model": f"big-{samples}"})  # fmt: skip
    save_run(tmp / "big" / "run.json", rec)
    with Registry(tmp / "reg.sqlite") as reg:
        entry = reg.add(tmp / "big" / "run.json")
        start = time.perf_counter()
        build_report(reg, tmp / "site", ReportInputs(data_dir=data), warn=lambda _: None)
        took = time.perf_counter() - start
    return tmp / "site", entry.id, took


def measure(site: Path, run: str, repeat: int) -> list[tuple[float, float, float]]:
    """(load, filtered, task opened) seconds per fresh page."""
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("chromium is not installed (scripts/install_chromium.sh)")
    url = (site / "runs" / f"{run}.html").resolve().as_uri()
    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        for _ in range(repeat + 1):  # the first one warms the browser's disk cache; it is not counted
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m, errs=errors: errs.append(m.text) if m.type == "error" else None)
            t0 = time.perf_counter()
            page.goto(url, wait_until="load")
            t1 = time.perf_counter()
            page.select_option("select[data-attr='data-status']", "mixed")
            page.locator("#tasks tbody tr[data-key]:visible").first.wait_for()
            t2 = time.perf_counter()
            page.locator("#tasks button.task").first.click()
            page.locator("#tasks tr.detail .sample").first.wait_for()
            t3 = time.perf_counter()
            if errors:
                raise SystemExit(f"console errors: {errors}")
            out.append((t1 - t0, t2 - t0, t3 - t0))
            page.close()
        browser.close()
    return out[1:]


def main() -> None:
    """Build, open, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="report-speed-"))
    os.environ["HARNESS_REGISTRY"] = "off"  # the seed run is not indexed in the user's registry (its own is in tmp)
    try:
        site, run, took = build(tmp, args.samples)
        page = site / "runs" / f"{run}.html"
        chunks = list((site / "runs" / run).glob("t*.js"))
        size = sum(c.stat().st_size for c in chunks)
        times = measure(site, run, args.repeat)
        load = statistics.median(t[0] for t in times)
        filt = statistics.median(t[1] for t in times)
        task = statistics.median(t[2] for t in times)
        print(f"run: 164 tasks x {args.samples} samples; report built in {took:.1f} s")
        print(f"run page {page.stat().st_size / 1024:.0f} KiB; {len(chunks)} task files, {size / 2**20:.1f} MiB in all, "
              f"largest {max(c.stat().st_size for c in chunks) / 1024:.0f} KiB")  # fmt: skip
        print(f"median of {len(times)} fresh pages: load {load:.3f} s, filtered {filt:.3f} s, first task open "
              f"{task:.3f} s")  # fmt: skip
        print(f"goal {GOAL_S:.1f} s: first task open is x{GOAL_S / task:.1f} under it" if task < GOAL_S
              else f"goal {GOAL_S:.1f} s NOT met: {task:.3f} s")  # fmt: skip
        print(f"load: {os.getloadavg()[0]:.1f} (1-minute load average)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
