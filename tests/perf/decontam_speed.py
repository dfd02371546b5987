"""Decontamination speed: the whole audit of a 50,000-row planted set against every benchmark, and brute force.

Brute force is the original pipeline's approach: every benchmark string
looked for in every sample (``needle in haystack`` on the same normalised
text the substring method uses), timed on a 1,000-row subsample and scaled
to the whole set.  Goals: the whole audit (default methods) under 60 s on 2
cores, and the substring method at least 100x faster than brute force.
Also prints recall per plant kind and method, recall of the statement-only
plants per part (MBPP statements, HumanEval docstrings, LiveCodeBench
questions as instructions), precision on clean rows, the clean rows flagged
per part, and the everyday instructions flagged (goal: all statement plants
found, at most 1% of clean rows flagged).

    HARNESS_DATA_DIR=../shared/data python tests/perf/decontam_speed.py [--rows 50000] [--methods substring,ngram,probe,minhash]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _per_part(s: dict, truth: dict) -> None:  # type: ignore[type-arg]
    """Recall of the statement-only plants per part, false positives per part, everyday rows flagged."""
    for kind, parts in s["recall_by_part"].items():
        print(f"  {kind}: " + ", ".join(f"{p} {v['recall']:.3f} of {v['plants']}" for p, v in parts.items()))
    print(f"  parts matched alone (pool the plants come from): {json.dumps(truth['statement_pool'])}")
    fp = s["false_positives_by_part"]
    print(f"  clean rows flagged per part: {json.dumps(fp) if fp else 'none'}; everyday instructions flagged: "
          f"{len(s['everyday_flagged'])} of {s['everyday_rows']}")


def main() -> int:
    """Build the set, audit it, time brute force, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50000)
    ap.add_argument("--methods", default="substring,ngram,probe,minhash")
    ap.add_argument("--brute-rows", type=int, default=1000)
    args = ap.parse_args()

    import benchmarks  # noqa: F401
    from harness import benchmark as registry
    from harness.decontamination import DEFAULT_METHODS, AuditOptions, audit
    from harness.decontamination.index import TRIVIAL, collect_items, squash_bytes
    from harness.decontamination.parts import is_text
    from tests.synthetic_contamination import make_dataset, score

    data_dir = os.environ.get("HARNESS_DATA_DIR")
    benches = registry.references()
    tmp = Path(tempfile.mkdtemp(prefix="decontam-perf-"))
    items, _ = collect_items(benches, data_dir)
    t0 = time.perf_counter()
    truth = make_dataset(tmp / "train.jsonl", [(it.benchmark, it.task_id, it.part, it.text) for it in items],
                         rows=args.rows)  # fmt: skip
    print(f"synthetic set: {args.rows} rows ({truth['clean_pool']} stdlib functions), "
          f"{len(truth['plants'])} plants, built in {time.perf_counter() - t0:.1f} s; benchmarks: {', '.join(benches)}")

    methods = tuple(m for m in args.methods.split(",") if m)
    for label, ms, cache in (("cold index", DEFAULT_METHODS, None), ("all methods", methods, tmp / "cache"),
                             ("warm index", DEFAULT_METHODS, tmp / "cache")):  # fmt: skip
        t1 = time.perf_counter()
        report = audit(tmp / "train.jsonl", benchmarks=benches, options=AuditOptions(methods=ms), data_dir=data_dir,
                       cache_dir=cache)  # fmt: skip
        wall = time.perf_counter() - t1
        print(f"audit ({label}, {', '.join(ms)}): {wall:.1f} s  {json.dumps(report['timings'])}")
        if label == "all methods":
            full = report
        if label == "cold index":
            s = score(report, truth)
            print(f"  default methods: recall {json.dumps(s['recall'])}, precision on clean rows "
                  f"{s['precision_on_clean']:.4f} ({len(s['false_positive_rows'])} clean rows flagged)")
            _per_part(s, truth)
    s = score(full, truth)
    print(f"all methods ({', '.join(methods)}):")
    _per_part(s, truth)
    print("recall by method and plant kind:")
    for kind, per in s["recall_by_method"].items():
        print(f"  {kind:12s} " + "  ".join(f"{m} {v:.3f}" for m, v in per.items()))
    print(f"precision on clean rows, all methods: {s['precision_on_clean']:.4f}")

    # Brute force on a subsample: every eligible benchmark string in every field, same normalisation.
    trivial = {t.encode() for t in TRIVIAL}
    needles = sorted({k for k in (squash_bytes(it.text) for it in items if not is_text(it.part))
                      if len(k) >= 40 and k not in trivial})  # the substring index's strings (prose is matched by words)
    rows = [json.loads(x) for x in (tmp / "train.jsonl").read_text().splitlines()]
    sub = rows[: args.brute_rows]
    t2 = time.perf_counter()
    found = 0
    for row in sub:
        for value in row.values():
            hay = squash_bytes(value)
            for needle in needles:
                if needle in hay:
                    found += 1
    brute = (time.perf_counter() - t2) * len(rows) / len(sub)
    substring_s = full["timings"]["substring"]
    print(f"brute force: {len(needles)} strings x {len(sub)} rows in {brute * len(sub) / len(rows):.1f} s, "
          f"scaled to {len(rows)} rows: {brute:.0f} s ({found} hits in the subsample)")
    print(f"substring method: {substring_s:.2f} s for {len(rows)} rows -> x{brute / substring_s:.0f} faster "
          f"than brute force (goal >= 100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
