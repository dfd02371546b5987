"""Final selection: decontaminate the validated pairs, near-deduplicate them, write the dataset.

Decontamination runs the library's audit (:func:`harness.decontamination.audit`,
default methods) over each new pair's instruction, response and tests
against ``SelectConfig.benchmarks``; a flagged pair is removed with the
benchmark in its reason and the findings in its detail.  Near-duplicates
(MinHash, ``SelectConfig.dedup_threshold``, word shingles as in the seed
dedup) among the pairs kept so far and the new ones are removed in favour of
the earliest.  A rerun handles only keys not yet selected or removed.

The dataset is ``<workdir>/<output>.jsonl`` and a ``datasets`` dataset saved
in ``<workdir>/<output>/``, with provenance per row: the seed's key, source,
name, path and licence, the concepts and property, the instruction, the
response, the tests, and how many of the sampled responses passed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from generation.core import Context, Funnel, StageFiles, stage_input
from generation.instruct import pending, stage_funnel
from harness.errors import HarnessError

#: Fields the audit reads: everything of a pair that could carry a benchmark's text.
AUDITED_FIELDS = ("instruction", "response", "tests")
#: The dataset's columns, in order (string unless listed in _INT_FIELDS).
DATASET_FIELDS = ("key", "name", "path", "licence", "seed", "category", "language", "difficulty", "concepts",
                  "instruction", "response", "tests", "code", "test_code", "passed", "sampled", "chosen",
                  "choice_seed")  # fmt: skip
_INT_FIELDS = ("passed", "sampled", "chosen", "choice_seed")


def dataset_row(row: dict[str, Any]) -> dict[str, Any]:
    """A selected row in the dataset's column layout (missing provenance is None)."""
    prop = row.get("property") or {}
    out: dict[str, Any] = {}
    for f in DATASET_FIELDS:
        value = prop.get(f) if f in ("category", "language", "difficulty") else row.get(f)
        if value is None and f == "concepts":
            value = prop.get("concepts")
        out[f] = (int(value) if value is not None else None) if f in _INT_FIELDS else \
            (str(value) if value is not None else None)  # fmt: skip
    return out


# ------------------------------------------------------------------ decontamination
def contaminated(rows: Sequence[dict[str, Any]], benchmarks: Sequence[str] | str, data_dir: str | None,
                 echo: Callable[[str], None]) -> dict[int, list[dict[str, Any]]]:  # fmt: skip
    """Index of each row the audit flags -> its findings (benchmark, task, part, method, field)."""
    from harness.data import cache_dir
    from harness.decontamination import AuditOptions, audit

    if not rows:
        return {}
    with tempfile.TemporaryDirectory(prefix="select-audit-") as tmp:
        path = Path(tmp) / "pairs.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps({k: str(row.get(k) or "") for k in AUDITED_FIELDS}, ensure_ascii=False) + "\n")
        report = audit(path, fields=list(AUDITED_FIELDS), benchmarks=None if benchmarks == "all" else list(benchmarks), options=AuditOptions(),
                       data_dir=data_dir, cache_dir=cache_dir(), echo=lambda m: echo(f"[select] {m}"))  # fmt: skip
    found: dict[int, list[dict[str, Any]]] = {}
    for flag in report["flagged"]:
        found.setdefault(int(flag["row"]), []).append(
            {k: flag[k] for k in ("benchmark", "task_id", "part", "method", "field")}
        )
    return found


# ------------------------------------------------------------------ near-deduplication
def _clusters(texts: Sequence[str], threshold: float, num_perm: int, shingle: int) -> list[list[int]]:
    """Groups of near-duplicate texts (indices); the seed dedup's implementation when it offers one."""
    try:
        from generation.dedup import near_duplicates  # type: ignore[attr-defined]
    except ImportError:
        return minhash_clusters(texts, threshold, num_perm, shingle)
    found = near_duplicates(list(texts), threshold=threshold, num_perm=num_perm, shingle=shingle)
    if isinstance(found, dict):  # a cluster id per index
        groups: dict[Any, list[int]] = {}
        for i, c in found.items():
            groups.setdefault(c, []).append(int(i))
        return list(groups.values())
    return [sorted(int(i) for i in c) for c in found]


def _shingles(text: str, size: int) -> set[bytes]:
    words = text.lower().split()
    if len(words) < size:
        # Too short to shingle: the whole text is one shingle, so only an exact (word-level) copy matches.
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def minhash_clusters(texts: Sequence[str], threshold: float, num_perm: int, shingle: int) -> list[list[int]]:
    """MinHash LSH near-duplicate groups of ``texts`` (word ``shingle``-grams), with more than one member each."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, text in enumerate(texts):
        mh = MinHash(num_perm=num_perm, seed=1)
        mh.update_batch(list(_shingles(text, shingle)))
        for j in lsh.query(mh):
            a, b = root(i), root(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
        lsh.insert(str(i), mh)
    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(root(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def _pair_text(row: dict[str, Any]) -> str:
    return f"{row.get('instruction', '')}\n{row.get('response', '')}"


# ------------------------------------------------------------------ the dataset
def write_dataset(rows: Sequence[dict[str, Any]], workdir: Path, output: str) -> tuple[Path, Path]:
    """``<output>.jsonl`` and the ``datasets`` folder ``<output>/``, each replaced whole (never half-written)."""
    table = [dataset_row(r) for r in rows]
    jsonl = workdir / f"{output}.jsonl"
    tmp = jsonl.with_name(jsonl.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in table:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(jsonl)
    try:
        import datasets
    except ImportError:
        raise HarnessError(f"{jsonl} is written, but the `datasets` copy needs the 'datasets' package: "
                           "pip install datasets (or the project's train extra), then rerun the select stage") from None  # fmt: skip
    features = datasets.Features({f: datasets.Value("int64" if f in _INT_FIELDS else "string") for f in DATASET_FIELDS})
    folder = workdir / output
    staging = workdir / f".{output}.saving"
    if staging.exists():
        shutil.rmtree(staging)
    # Column-wise, so that an empty dataset still has its columns (from_list([]) would have none).
    columns = {f: [r[f] for r in table] for f in DATASET_FIELDS}
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the stage reports the dataset itself; a bar per save is noise
    try:
        datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(staging))
    finally:
        if bars:
            datasets.enable_progress_bars()
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return jsonl, folder


def _dataset_current(workdir: Path, output: str, rows: int) -> bool:
    jsonl, folder = workdir / f"{output}.jsonl", workdir / output
    if not (jsonl.exists() and folder.is_dir()):
        return False
    with jsonl.open(encoding="utf-8") as f:
        return sum(1 for line in f if line.strip()) == rows


def run(ctx: Context) -> Funnel:
    """Decontaminate and deduplicate the new validated pairs, then (re)write the dataset."""
    cfg = ctx.config.select
    rows = stage_input(ctx.workdir, "validate")
    files = StageFiles(ctx.workdir, "select")
    todo, skipped = pending(rows, files, "validate")
    files.append([])
    removals: list[tuple[str, str, dict[str, Any]]] = []
    flagged_rows = 0
    if todo and cfg.decontaminate:
        flags = contaminated(todo, cfg.benchmarks, ctx.config.data_dir, ctx.echo)
        flagged_rows = len(flags)
        for i, found in sorted(flags.items()):
            benchmarks = sorted({f["benchmark"] for f in found})
            removals.append((todo[i]["key"], f"contaminated_{'_'.join(benchmarks)}", {"findings": found[:20]}))
        todo = [r for i, r in enumerate(todo) if i not in flags]
    kept_before = files.rows()
    new_rows: list[dict[str, Any]] = []
    if todo:
        dc = ctx.config.dedup
        universe = [*kept_before, *todo]
        drop: dict[int, int] = {}
        for group in _clusters([_pair_text(r) for r in universe], cfg.dedup_threshold, dc.num_perm, dc.shingle):
            first = min(group)  # earlier rows win: already selected ones come first
            for i in group:
                if i != first and i >= len(kept_before):
                    drop[i] = first
        for i, row in enumerate(todo, start=len(kept_before)):
            if i in drop:
                removals.append((row["key"], "near_duplicate", {"of": universe[drop[i]]["key"]}))
            else:
                new_rows.append(row)
    files.append(new_rows)
    files.remove(removals)
    selected = files.rows()
    if new_rows or not _dataset_current(ctx.workdir, cfg.output, len(selected)):
        jsonl, folder = write_dataset(selected, ctx.workdir, cfg.output)
        ctx.echo(f"[select] dataset: {len(selected)} rows in {jsonl} and {folder}/")
    notes = []
    if not selected:
        notes.append("no pair survived: the dataset is empty")
    extra = {"dataset_rows": len(selected), "dataset_jsonl": f"{cfg.output}.jsonl", "dataset_dir": cfg.output,
             "decontaminate": cfg.decontaminate, "benchmarks": cfg.benchmarks if cfg.benchmarks == "all" else list(cfg.benchmarks),
             "flagged_this_run": flagged_rows, "dedup_threshold": cfg.dedup_threshold}  # fmt: skip
    return stage_funnel("select", files, len(rows), skipped, extra=extra, notes=notes)
