"""Seed extraction and near-deduplication speed, against the plain approaches, on 30,000+ documented functions.

Corpus: the running Python's standard library plus the installed site-packages whose ``.py`` files total at
most ``--max-package-mb`` (the giants -- torch, transformers, ... -- would only make the baselines slow).

* Extraction: MB of source per second, ``generation.seeds.extract_corpus`` (one process, then a pool of
  ``--workers``) against a plain extractor (``ast.parse``, ``ast.walk``, ``ast.get_docstring`` and
  ``ast.get_source_segment`` per function) measured here on the same files.  Goal: at least 4 MB/s on 2
  cores.
* Near-dedup: ``generation.dedup.find_near_duplicates`` against a plain per-document datasketch loop (word
  5-gram shingles, ``MinHash.update_batch``, ``MinHashLSH.query`` then ``insert``; same ``num_perm`` and
  threshold) over the extracted seeds.  Goal: at least 10x faster at equal or better agreement with exact
  Jaccard, measured on sampled pairs: pairs each method reports, candidates of a deliberately loose LSH (to
  find similar pairs both may miss) and random pairs, each scored with exact Jaccard over Python sets of
  shingle strings.  Precision and recall are over that (stratified) sample.

    python tests/perf/seeds_speed.py [--max-package-mb 10] [--workers 2] [--baseline-fraction 0.25]
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import re
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

_TOKEN = re.compile(rb"[a-z0-9_\x80-\xff]+")


def corpus(max_package_mb: float) -> tuple[list, list[str]]:
    """Documents of the stdlib and of the site-packages under the size cap, and the packages taken."""
    from generation.seeds import Document, folder_documents, stdlib_root

    docs = folder_documents(stdlib_root(), "PSF-2.0", "stdlib", skip_dirs=("site-packages", "dist-packages"))
    site = Path(sysconfig.get_paths()["purelib"])
    taken = []
    for entry in sorted(site.iterdir()):
        if entry.name.endswith((".dist-info", ".egg-info")) or entry.name in ("__pycache__",) or entry.name[0] == ".":
            continue
        if entry.is_dir():
            pkg = folder_documents(entry, None, entry.name)
        elif entry.suffix == ".py":
            pkg = [Document(entry.name, str(entry), None, entry.name, None, entry.stat().st_size)]
        else:
            continue
        size = sum(d.size for d in pkg)
        if pkg and size <= max_package_mb * 1e6:
            if entry.is_dir():
                for d in pkg:
                    d.path = f"{entry.name}/{d.path}"
            docs.extend(pkg)
            taken.append(entry.name)
    return docs, taken


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the extraction pool's workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def plain_extract(files: list[str]) -> int:
    """The plain extractor: ``ast.walk`` and ``ast.get_source_segment`` per documented function."""
    from generation.seeds import Unparsable, decode_source

    found = 0
    for path in files:
        try:
            text = decode_source(Path(path).read_bytes())
            tree = ast.parse(text)
        except (OSError, Unparsable, SyntaxError, ValueError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node) is not None:
                if ast.get_source_segment(text, node) is not None:
                    found += 1
    return found


def shingle_set(text: str, n: int) -> set[bytes]:
    """Word n-gram shingles with the tokenisation ``generation.dedup`` hashes (ASCII-lowercased words)."""
    toks = _TOKEN.findall(text.encode("utf-8", "surrogatepass").lower())
    return {b" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def plain_dedup(texts: list[str], threshold: float, num_perm: int, n: int) -> set[tuple[int, int]]:
    """The plain per-document loop; returns the pairs LSH reports (short texts: an exact dict, as ours)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    short: dict[str, int] = {}
    pairs: set[tuple[int, int]] = set()
    for i, text in enumerate(texts):
        sh = shingle_set(text, n)
        if not sh:
            norm = b" ".join(_TOKEN.findall(text.encode("utf-8", "surrogatepass").lower())).decode()
            if norm in short:
                pairs.add((short[norm], i))
            else:
                short[norm] = i
            continue
        m = MinHash(num_perm=num_perm)
        m.update_batch(list(sh))
        for j in lsh.query(m):
            pairs.add((j, i))
        lsh.insert(i, m)
    return pairs


def main() -> int:
    """Build the corpus, time both extractors and both dedups, score agreement, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-package-mb", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline-fraction", type=float, default=0.25,
                    help="time the plain extractor on this random fraction of the files (a rate either way)")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--shingle", type=int, default=5)
    ap.add_argument("--sample", type=int, default=2000, help="pairs sampled per source for the agreement check")
    ap.add_argument("--repeats", type=int, default=3, help="runs of the fast dedup (the first is cold)")
    args = ap.parse_args()

    texts = extraction(args)
    dedup(texts, args)
    return 0


def extraction(args: argparse.Namespace) -> list[str]:
    """Time both extractors on the corpus; the seeds' texts."""
    from generation.seeds import extract_corpus

    docs, taken = corpus(args.max_package_mb)
    total = sum(d.size for d in docs)
    print(f"corpus: {len(docs)} files, {total / 1e6:.1f} MB: stdlib + {len(taken)} site-packages entries under "
          f"{args.max_package_mb:g} MB; machine: {os.cpu_count()} CPUs")

    rates = {}
    texts: list[str] = []
    for workers in (1, args.workers):
        t0, cpu0 = time.perf_counter(), _cpu()
        rows = [r for res in extract_corpus(docs, workers=workers, total_bytes=None if workers > 1 else 0)
                for r in res.rows]  # fmt: skip
        wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
        rates[workers] = total / 1e6 / wall
        # MB per CPU-second as well: on a shared machine the wall rate also measures the neighbours' load
        print(f"extraction, generation.seeds, {workers} process(es): {wall:.1f} s, {rates[workers]:.2f} MB/s wall, "
              f"{total / 1e6 / cpu:.2f} MB per CPU-second, {len(rows)} seeds")  # fmt: skip
        texts = [r["seed"] for r in rows]
    files = [d.file for d in docs if d.file]
    subset = files if args.baseline_fraction >= 1 else random.Random(0).sample(
        files, max(1, int(len(files) * args.baseline_fraction)))  # fmt: skip
    sub_bytes = sum(os.path.getsize(f) for f in subset)
    t0, cpu0 = time.perf_counter(), _cpu()
    plain_found = plain_extract(subset)
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    plain_rate = sub_bytes / 1e6 / wall
    print(f"extraction, plain ast.walk + get_source_segment, 1 process: {wall:.1f} s on {sub_bytes / 1e6:.1f} MB "
          f"({'all files' if subset is files else f'a random {args.baseline_fraction:g} of the files'}), "
          f"{plain_rate:.2f} MB/s wall, {sub_bytes / 1e6 / cpu:.2f} MB per CPU-second, {plain_found} documented "
          "functions (nested ones included)")  # fmt: skip
    print(f"  -> {rates[1] / plain_rate:.1f}x the plain rate on 1 process, {rates[args.workers] / plain_rate:.1f}x "
          f"on {args.workers}; goal >= 4 MB/s on 2 cores: {'met' if rates[args.workers] >= 4 else 'NOT met'} "
          f"({rates[args.workers]:.2f} MB/s)")  # fmt: skip
    if len(texts) < 30000:
        print(f"  note: only {len(texts)} seeds (< 30,000): raise --max-package-mb")

    return texts


def dedup(texts: list[str], args: argparse.Namespace) -> None:
    """Time both near-dedups on ``texts`` and score their agreement with exact Jaccard."""
    import numpy as np

    from generation.dedup import band_shape, find_near_duplicates, hash_corpus, lsh_candidates, oph_signatures

    n_docs = len(texts)
    print(f"\nnear-dedup of {n_docs} seeds ({sum(map(len, texts)) / 1e6:.1f} MB), threshold {args.threshold}, "
          f"num_perm {args.num_perm}, {args.shingle}-word shingles")  # fmt: skip
    t0 = time.perf_counter()
    base_pairs = plain_dedup(texts, args.threshold, args.num_perm, args.shingle)
    base_wall = time.perf_counter() - t0
    print(f"plain datasketch loop: {base_wall:.2f} s, {n_docs / base_wall:,.0f} docs/s, {len(base_pairs)} pairs")
    walls = []
    found = None
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        found = find_near_duplicates(texts, args.threshold, args.num_perm, args.shingle)
        walls.append(time.perf_counter() - t0)
    assert found is not None
    cold, best = walls[0], min(walls)
    print(f"generation.dedup: cold {cold:.3f} s ({n_docs / cold:,.0f} docs/s), best of {len(walls)} {best:.3f} s "
          f"({n_docs / best:,.0f} docs/s); {found.stats}")  # fmt: skip
    print(f"  -> {base_wall / cold:.1f}x faster cold, {base_wall / best:.1f}x best; goal >= 10x: "
          f"{'met' if base_wall / cold >= 10 else 'NOT met'}")  # fmt: skip

    # agreement with exact Jaccard
    rng = random.Random(0)
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(found.rep.tolist()):
        groups.setdefault(r, []).append(i)
    exact_pairs = [(m[0], x) for m in groups.values() if len(m) > 1 for x in m[1:]]
    h = hash_corpus(texts, args.shingle)
    reps = np.flatnonzero((found.rep == np.arange(n_docs)) & ~found.short)
    sig = oph_signatures(h.shingles, h.offsets, reps, args.num_perm)
    ours_cand = reps[lsh_candidates(sig, found.stats["bands"], found.stats["rows"])[0]]
    loose = band_shape(max(0.05, args.threshold - 0.2), args.num_perm, 0.95)
    net = reps[lsh_candidates(sig, *loose)[0]]
    pools = {"plain-reported": sorted(base_pairs), "ours: LSH candidates": [tuple(map(int, p)) for p in ours_cand],
             "ours: exact groups": exact_pairs, f"loose LSH {loose}": [tuple(map(int, p)) for p in net],
             "random": [tuple(sorted(rng.sample(range(n_docs), 2))) for _ in range(args.sample)]}  # fmt: skip
    sample: set[tuple[int, int]] = set()
    for name, pool in pools.items():
        picked = rng.sample(pool, min(args.sample, len(pool)))
        sample.update((min(a, b), max(a, b)) for a, b in picked)
        print(f"  pairs from {name}: {len(pool)} available, {len(picked)} sampled")
    cache: dict[int, set[bytes]] = {}

    def sh(i: int) -> set[bytes]:
        if i not in cache:
            cache[i] = shingle_set(texts[i], args.shingle)
        return cache[i]

    def truth(i: int, j: int) -> bool:
        a, b = sh(i), sh(j)
        if not a or not b:  # too short to shingle: equal normalised words
            return _TOKEN.findall(texts[i].encode().lower()) == _TOKEN.findall(texts[j].encode().lower())
        return len(a & b) / len(a | b) >= args.threshold

    base_norm = {(min(a, b), max(a, b)) for a, b in base_pairs}
    ordered = sorted(sample)
    real = [truth(i, j) for i, j in ordered]
    print(f"agreement on {len(ordered)} sampled pairs ({sum(real)} with Jaccard >= {args.threshold}):")
    ours_says = found.duplicates(np.array(ordered)).tolist()  # candidates not verified while clustering: now
    for name, pred in (("plain datasketch", [(i, j) in base_norm for i, j in ordered]),
                       ("generation.dedup", ours_says)):  # fmt: skip
        tp = sum(p and t for p, t in zip(pred, real))
        fp = sum(p and not t for p, t in zip(pred, real))
        fn = sum(t and not p for p, t in zip(pred, real))
        agree = sum(p == t for p, t in zip(pred, real)) / len(ordered)
        prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        f1 = 2 * prec * rec / max(prec + rec, 1e-9)
        print(f"  {name:18s} precision {prec:.3f}  recall {rec:.3f}  F1 {f1:.3f}  agreement {agree:.4f}  "
              f"(tp {tp}, fp {fp}, fn {fn})")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
