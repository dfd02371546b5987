"""The audit: scan a dataset's text fields against the benchmark index with each chosen method."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.decontamination.dataset import Dataset, load_dataset, write_rows
from harness.decontamination.index import (
    AnchorIndex,
    BenchmarkIndex,
    IndexParams,
    alnum_bytes,
    byte_span_to_chars,
    ensure_minhash,
    load_or_build,
    minhash_of,
    rolling_hashes,
    shingles,
    squash_bytes,
    token_ids,
    words,
)
from harness.decontamination.parts import base as part_base
from harness.errors import HarnessError

METHODS = ("substring", "ngram", "probe", "minhash", "embedding")
#: Routine use: exact substrings (whitespace-insensitive) and 13-gram overlap.
DEFAULT_METHODS = ("substring", "ngram")
EVIDENCE_CHARS = 240


@dataclass
class Flag:
    """One finding: a dataset row's field matches a benchmark item by a method."""

    row: int
    field: str
    benchmark: str
    task_id: str
    part: str
    method: str
    evidence: str
    score: float  # 1.0 for substring/probe; overlap ratio for ngram; Jaccard for minhash; cosine for embedding
    span: tuple[int, int]
    detail: str = ""


@dataclass
class AuditOptions:
    """Method settings."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    ngram_threshold: float = 0.5
    minhash_threshold: float = 0.5
    embedding_model: str | None = None
    embedding_min_cosine: float = 0.6
    judge: Any = None  # an Engine for the embedding method's model judge


def _excerpt(text: str, start: int, end: int) -> str:
    piece = text[start:end]
    if len(piece) > EVIDENCE_CHARS:
        piece = piece[: EVIDENCE_CHARS - 1] + "…"
    return piece


def _texts(ds: Dataset) -> tuple[list[str], list[tuple[int, str]]]:
    texts, where = [], []
    for r, row in enumerate(ds.rows):
        for f in ds.fields:
            v = row.get(f)
            if isinstance(v, str) and v:
                texts.append(v)
                where.append((r, f))
    return texts, where


def _scan_anchor(index: AnchorIndex | None, normal: str, method: str, idx: BenchmarkIndex,
                 texts: Sequence[str], where: Sequence[tuple[int, str]]) -> list[Flag]:  # fmt: skip
    if index is None:
        return []
    norm = squash_bytes if normal == "squash" else alnum_bytes
    flags: list[Flag] = []
    seen: set[tuple[int, int]] = set()
    for t, start, nid in index.find_all([norm(x) for x in texts]):
        new = [k for k in index.owners[nid] if (t, k) not in seen]
        if not new:
            continue
        # One span per match: every owner of the needle (items sharing the string) has the same one.
        a, b = byte_span_to_chars(texts[t], start, start + len(index.needles[nid]), normal)
        for k in new:
            seen.add((t, k))
            it = idx.items[k]
            flags.append(Flag(where[t][0], where[t][1], it.benchmark, it.task_id, it.part, method,
                              _excerpt(texts[t], a, b), 1.0, (a, b)))  # fmt: skip
    return flags


def scan_substring(idx: BenchmarkIndex, texts: Sequence[str], where: Sequence[tuple[int, str]],
                   tokens: Tokens | None = None) -> list[Flag]:  # fmt: skip
    """Exact matches, each part in the normal form that fits it.

    Code parts and whole items: benchmark strings (lowercased, whitespace
    removed, at least ``min_substring_chars``) inside a field.  Prose parts
    (statements, docstrings, questions, descriptions): the part's whole word
    sequence, word for word (case, punctuation and line breaks ignored), when
    it has at least ``min_statement_words`` words and is not a generic phrasing.
    """
    flags = _scan_anchor(idx.substring, "squash", "substring", idx, texts, where)
    return flags + scan_statements(idx, texts, where, tokens)


class Tokens:
    """The texts' word tokens as reference-vocabulary ids, in blocks (computed once, shared by the methods)."""

    def __init__(self, idx: BenchmarkIndex, texts: Sequence[str], chunk: int = 4096) -> None:
        self.idx, self.texts, self.chunk = idx, texts, chunk
        self._blocks: list[tuple[int, np.ndarray, list[int]]] | None = None

    def blocks(self) -> list[tuple[int, np.ndarray, list[int]]]:
        """``(first text, ids of the block's texts joined by -1 separators, each text's start)`` per block."""
        if self._blocks is None:
            self._blocks = []
            sep = np.array([-1], np.int64)  # a separator no n-gram or statement may cross
            for c0 in range(0, len(self.texts), self.chunk):
                pieces, starts, pos = [], [], 0
                for text in self.texts[c0 : c0 + self.chunk]:
                    ids = token_ids(words(text), self.idx.vocab, grow=False)
                    starts.append(pos)
                    pieces += [ids, sep]
                    pos += len(ids) + 1
                self._blocks.append((c0, np.concatenate(pieces) if pieces else np.zeros(0, np.int64), starts))
        return self._blocks


def _word_span(text: str, first: int, last: int) -> tuple[int, int]:
    """Character span of ``text``'s word tokens ``first`` .. ``last`` (inclusive)."""
    start = end = None
    for k, m in enumerate(re.finditer(r"\w+", text.lower())):
        if k == first:
            start = m.start()
        end = m.end()
        if k >= last:
            break
    if end is None:
        return 0, 0
    return (start if start is not None else 0), end


def scan_statements(idx: BenchmarkIndex, texts: Sequence[str], where: Sequence[tuple[int, str]],
                    tokens: Tokens | None = None) -> list[Flag]:  # fmt: skip
    """Prose parts found word for word (see :func:`scan_substring`); reported as the substring method."""
    index = getattr(idx, "statements", None)
    if index is None or not len(index):
        return []
    tokens = tokens or Tokens(idx, texts)
    flags: list[Flag] = []
    for c0, allids, starts in tokens.blocks():
        h, valid = rolling_hashes(allids, index.anchor)
        found = index.find(allids, h, valid)
        if not found:
            continue
        starts_arr = np.array(starts)
        seen: set[tuple[int, int]] = set()
        for p, n, owners in found:
            t_local = int(np.searchsorted(starts_arr, p, side="right")) - 1
            t = c0 + t_local
            a, b = _word_span(texts[t], p - starts[t_local], p - starts[t_local] + n - 1)
            for k in owners:
                if (t, k) in seen:
                    continue
                seen.add((t, k))
                it = idx.items[k]
                flags.append(Flag(where[t][0], where[t][1], it.benchmark, it.task_id, it.part, "substring",
                                  _excerpt(texts[t], a, b), 1.0, (a, b),
                                  f"the whole {part_base(it.part)} ({n} words), word for word"))  # fmt: skip
    return flags


def scan_probe(idx: BenchmarkIndex, texts: Sequence[str], where: Sequence[tuple[int, str]]) -> list[Flag]:
    """GPT-4's check: any of an item's 50-character probes (letters and digits only) inside a field."""
    return _scan_anchor(idx.probes, "alnum", "probe", idx, texts, where)


def scan_ngram(idx: BenchmarkIndex, texts: Sequence[str], where: Sequence[tuple[int, str]], threshold: float,
               chunk: int = 4096, tokens: Tokens | None = None) -> list[Flag]:  # fmt: skip
    """Shared n-grams of normalised tokens; flagged when they cover ``threshold`` of an item's n-grams."""
    n = idx.params.ngram
    flags: list[Flag] = []
    table = idx.ngram_hashes
    if len(table) == 0:
        return flags
    tokens = tokens or Tokens(idx, texts, chunk)
    for c0, allids, starts in tokens.blocks():
        block = texts[c0 : c0 + tokens.chunk]
        h, valid = rolling_hashes(allids, n)
        if len(h) == 0:
            continue
        at = np.searchsorted(table, h)
        at[at >= len(table)] = 0
        hit = valid & (table[at] == h)
        hit_pos = np.nonzero(hit)[0]
        if len(hit_pos) == 0:
            continue
        owner_text = np.searchsorted(np.array(starts), hit_pos, side="right") - 1
        for t_local in np.unique(owner_text).tolist():
            positions = hit_pos[owner_text == t_local]
            hashes = np.unique(h[positions]).tolist()
            counts: Counter[int] = Counter()
            for v in hashes:
                for k in idx.ngram_owners.get(v, ()):
                    counts[k] += 1
            text = block[t_local]
            t = c0 + t_local
            for k, shared in counts.items():
                total = idx.ngram_counts[k]
                ratio = shared / total if total else 0.0
                if ratio < threshold:
                    continue
                a, b = _ngram_span(text, positions - starts[t_local], n, idx, k, h, starts[t_local])
                it = idx.items[k]
                flags.append(Flag(where[t][0], where[t][1], it.benchmark, it.task_id, it.part, "ngram",
                                  _excerpt(text, a, b), round(ratio, 4), (a, b),
                                  f"{shared} of the item's {total} {n}-grams"))  # fmt: skip
    return flags


def _ngram_span(text: str, local_positions: np.ndarray, n: int, idx: BenchmarkIndex, k: int, h: np.ndarray,
                offset: int) -> tuple[int, int]:  # fmt: skip
    """Character span from the first to the last shared n-gram of item ``k`` in ``text``."""
    mine = [p for p in local_positions.tolist() if k in idx.ngram_owners.get(int(h[p + offset]), ())]
    if not mine:
        return 0, 0
    spans = [m.span() for m in re.finditer(r"\w+", text.lower())]
    first, last = min(mine), max(mine) + n - 1
    last = min(last, len(spans) - 1)
    return spans[first][0], spans[last][1]


def scan_minhash(idx: BenchmarkIndex, texts: Sequence[str], where: Sequence[tuple[int, str]],
                 threshold: float) -> list[Flag]:  # fmt: skip
    """Near-duplicates of whole items (word 5-gram shingles, MinHash LSH), confirmed by exact Jaccard."""
    ensure_minhash(idx)
    p = idx.params
    item_shingles: dict[int, set[bytes]] = {}
    flags: list[Flag] = []
    for t, text in enumerate(texts):
        sh = shingles(text, p.shingle)
        if len(sh) < 3:
            continue
        m = minhash_of(sh, p.minhash_perm, p.seed)
        for k in idx.minhash_lsh.query(m):
            if k not in item_shingles:
                item_shingles[k] = shingles(idx.items[k].text, p.shingle)
            other = item_shingles[k]
            exact = len(sh & other) / len(sh | other)
            if exact < threshold:
                continue
            it = idx.items[k]
            flags.append(Flag(where[t][0], where[t][1], it.benchmark, it.task_id, it.part, "minhash",
                              _excerpt(text, 0, len(text)), round(exact, 4), (0, len(text)),
                              f"estimated Jaccard {m.jaccard(minhash_of(other, p.minhash_perm, p.seed)):.3f}, "
                              f"exact {exact:.3f}"))  # fmt: skip
    return flags


JUDGE_PROMPT = (
    "Decide whether two texts pose the same programming problem, possibly rephrased, reformatted, "
    "translated or with renamed variables.\n\nText 1 (benchmark):\n{item}\n\nText 2 (training sample):\n{text}\n\n"
    "Answer with one word, Yes or No."
)


def scan_embedding(idx: BenchmarkIndex, texts: Sequence[str], where: Sequence[tuple[int, str]],
                   opts: AuditOptions) -> list[Flag]:  # fmt: skip
    """LLM Decontaminator's approach: nearest benchmark item by embedding, judged by the model."""
    if not opts.embedding_model:
        raise HarnessError("the embedding method needs --embedding-model PATH (a transformers encoder or LM)")
    if opts.judge is None:
        raise HarnessError("the embedding method needs a judge model: --judge-model SPEC (e.g. hf:PATH)")
    from harness.decontamination.embed import embed_texts
    from harness.engine import Request, Sampling

    item_vecs = embed_texts(opts.embedding_model, [it.text for it in idx.items])
    text_vecs = embed_texts(opts.embedding_model, list(texts))
    sims = text_vecs @ item_vecs.T
    best = sims.argmax(axis=1)
    cands = [(t, int(best[t]), float(sims[t, best[t]])) for t in range(len(texts))
             if sims[t, best[t]] >= opts.embedding_min_cosine]  # fmt: skip
    reqs = [Request(prompt=JUDGE_PROMPT.format(item=idx.items[k].text[:4000], text=texts[t][:4000]),
                    sampling=Sampling(max_tokens=4)) for t, k, _ in cands]  # fmt: skip
    results = opts.judge.generate(reqs) if reqs else []
    flags = []
    for (t, k, cos), res in zip(cands, results):
        reply = res.completions[0].text.strip()
        if not reply.lower().startswith("yes"):
            continue
        it = idx.items[k]
        flags.append(Flag(where[t][0], where[t][1], it.benchmark, it.task_id, it.part, "embedding",
                          _excerpt(texts[t], 0, len(texts[t])), round(cos, 4), (0, len(texts[t])),
                          f"cosine {cos:.3f}; judge said {reply[:20]!r}"))  # fmt: skip
    return flags


def audit(
    dataset: str | Path,
    fields: Sequence[str] | None = None,
    benchmarks: Sequence[str] | None = None,
    options: AuditOptions | None = None,
    params: IndexParams | None = None,
    data_dir: str | Path | None = None,
    cache_dir: Path | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Audit a dataset against ``benchmarks`` (None: every decontamination reference); returns the report.

    With None, a reference benchmark whose data cannot be had here is left out
    with a warning and listed in the report's ``skipped_benchmarks``; a named
    one that cannot be loaded is an error.
    """
    skipped: dict[str, str] | None = None
    if benchmarks is None:
        from harness.benchmark import references

        benchmarks = references()
        skipped = {}
    opts = options or AuditOptions()
    bad = [m for m in opts.methods if m not in METHODS]
    if bad:
        raise HarnessError(f"unknown method(s) {', '.join(bad)}; known: {', '.join(METHODS)}")
    params = params or IndexParams(minhash_threshold=opts.minhash_threshold)
    t0 = time.perf_counter()
    ds = load_dataset(dataset, fields)
    idx, cached = load_or_build(list(benchmarks), data_dir, params, cache_dir, skipped)
    if skipped:
        for name, why in skipped.items():
            echo(f"warning: {name} left out of the audit: {why}")
        benchmarks = [b for b in benchmarks if b not in skipped]
    t_index = time.perf_counter() - t0
    echo(f"benchmark index: {len(idx.items)} reference strings from {', '.join(benchmarks)} "
         f"({'from cache' if cached else f'built in {idx.build_seconds:.1f} s'})")  # fmt: skip
    texts, where = _texts(ds)
    tokens = Tokens(idx, texts)  # word tokens: computed once for the statement and n-gram scans
    flags: list[Flag] = []
    timings: dict[str, float] = {"load_and_index": round(t_index, 3)}
    if {"substring", "ngram"} & set(opts.methods):
        t1 = time.perf_counter()
        tokens.blocks()
        timings["tokenize"] = round(time.perf_counter() - t1, 3)
    for method in opts.methods:
        t1 = time.perf_counter()
        if method == "substring":
            found = scan_substring(idx, texts, where, tokens)
        elif method == "probe":
            found = scan_probe(idx, texts, where)
        elif method == "ngram":
            found = scan_ngram(idx, texts, where, opts.ngram_threshold, tokens=tokens)
        elif method == "minhash":
            found = scan_minhash(idx, texts, where, opts.minhash_threshold)
        else:
            found = scan_embedding(idx, texts, where, opts)
        timings[method] = round(time.perf_counter() - t1, 3)
        echo(f"{method}: {len(found)} findings in {timings[method]:.1f} s")
        flags.extend(found)
    timings["total"] = round(time.perf_counter() - t0, 3)
    report = _report(ds, idx, list(benchmarks), opts, flags, timings, cached)
    report["skipped_benchmarks"] = dict(skipped or {})
    return report


def _report(ds: Dataset, idx: BenchmarkIndex, benchmarks: list[str], opts: AuditOptions, flags: list[Flag],
            timings: dict[str, float], cached: bool) -> dict[str, Any]:  # fmt: skip
    n = len(ds.rows)
    summary: dict[str, Any] = {}
    for b in benchmarks:
        mine = [f for f in flags if f.benchmark == b]
        per_method = {}
        for m in opts.methods:
            rows = {f.row for f in mine if f.method == m}
            per_method[m] = {"rows": len(rows), "rate": len(rows) / n,
                             "items": len({(f.task_id, f.part) for f in mine if f.method == m})}  # fmt: skip
        rows_any = {f.row for f in mine}
        summary[b] = {"rows": len(rows_any), "rate": len(rows_any) / n, "tasks": len({f.task_id for f in mine}),
                      "by_method": per_method}  # fmt: skip
    flagged_rows = sorted({f.row for f in flags})
    # prose parts the index does not match alone (too short, generic phrasing): said, not hidden
    alone: dict[str, dict[str, int]] = {}
    for k, why in getattr(idx, "unmatched_text", {}).items():
        it = idx.items[k]
        if it.benchmark in benchmarks:
            key = f"{part_base(it.part)}: {why}"
            alone.setdefault(it.benchmark, {})[key] = alone.setdefault(it.benchmark, {}).get(key, 0) + 1
    return {
        "dataset": {"path": str(ds.path.resolve()), "format": ds.kind, "rows": n, "fields": ds.fields,
                    "non_text_values": ds.non_text},  # fmt: skip
        "benchmarks": {b: {**idx.datasets[b], "reference_strings": sum(1 for it in idx.items if it.benchmark == b)}
                       for b in benchmarks},  # fmt: skip
        "methods": list(opts.methods),
        "params": {**idx.params.__dict__, "ngram_threshold": opts.ngram_threshold,
                   "minhash_threshold": opts.minhash_threshold},  # fmt: skip
        "index_from_cache": cached,
        "summary": summary,
        "contaminated_rows": len(flagged_rows),
        "contamination_rate": len(flagged_rows) / n,
        # A flag's fields are plain values: a copy of its __dict__ is what dataclasses.asdict gives, without
        # its recursive deep copy (2 s of a 50,000-row audit with 14,000 flags).
        "flagged": [dict(vars(f)) for f in sorted(flags, key=lambda f: (f.row, f.benchmark, f.task_id, f.method))],
        "parts_not_matched_alone": alone,
        "timings": timings,
    }


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.md`` in ``out``."""
    from harness.store import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "report.json", report)
    md = _markdown(report)
    (out / "report.md").write_text(md, encoding="utf-8")
    return out / "report.json", out / "report.md"


def _markdown(report: dict[str, Any]) -> str:
    d = report["dataset"]
    lines = [f"# Decontamination report: `{Path(d['path']).name}`", "",
             f"{d['rows']} rows, fields {', '.join(f'`{f}`' for f in d['fields'])}; methods "
             f"{', '.join(report['methods'])}; {report['contaminated_rows']} rows flagged "
             f"({report['contamination_rate']:.2%}).", ""]  # fmt: skip
    if d["non_text_values"]:
        lines += [f"Non-text values skipped: {', '.join(f'`{k}` in {v} rows' for k, v in d['non_text_values'].items())}.", ""]
    methods = report["methods"]
    lines += ["| benchmark | dataset | rows flagged | rate | " + " | ".join(methods) + " |",
              "|---|---|---|---|" + "---|" * len(methods)]  # fmt: skip
    for b, s in report["summary"].items():
        info = report["benchmarks"][b]
        cells = " | ".join(f"{s['by_method'][m]['rows']} ({s['by_method'][m]['rate']:.2%})" for m in methods)
        lines.append(f"| {b} | {info['name']} {info['version']} | {s['rows']} | {s['rate']:.2%} | {cells} |")
    lines += ["", "## Flagged", ""]
    if not report["flagged"]:
        lines.append("Nothing flagged.")
    else:
        lines += ["| row | field | benchmark | task | part | method | score | evidence |", "|---|---|---|---|---|---|---|---|"]
        for f in report["flagged"][:500]:
            ev = f["evidence"].replace("|", "\\|").replace("\n", "⏎")[:120]
            lines.append(f"| {f['row']} | {f['field']} | {f['benchmark']} | {f['task_id']} | {f['part']} | "
                         f"{f['method']} | {f['score']} | `{ev}` |")  # fmt: skip
        if len(report["flagged"]) > 500:
            lines.append(f"| … | {len(report['flagged']) - 500} more in report.json | | | | | | |")
    return "\n".join(lines) + "\n"


def write_clean(report: dict[str, Any], dataset: str | Path, fields: Sequence[str] | None, path: Path) -> dict[str, Any]:
    """Write the dataset without flagged rows; the dropped rows, with their reasons, go to a side file."""
    ds = load_dataset(dataset, fields)
    reasons: dict[int, list[str]] = {}
    for f in report["flagged"]:
        reasons.setdefault(f["row"], []).append(f"{f['method']}: {f['benchmark']} {f['task_id']} ({f['part']}) "
                                                f"in {f['field']}")  # fmt: skip
    kept = [row for r, row in enumerate(ds.rows) if r not in reasons]
    dropped = [{"row": r, "reasons": sorted(set(why)), "data": ds.rows[r]} for r, why in sorted(reasons.items())]
    write_rows(path, kept, ds.kind)
    side = path.with_name(path.name + ".dropped.jsonl") if path.suffix else path.with_name(path.name + "-dropped.jsonl")
    write_rows(side, dropped, "jsonl")
    return {"clean": str(path), "kept": len(kept), "dropped": len(dropped), "dropped_file": str(side)}
