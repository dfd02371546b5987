"""Final selection: decontaminate the validated pairs, near-deduplicate them, write the dataset and its card.

Input: ``validate.jsonl`` (pairs with a passing response), then, under
``validate.execution = "keep_failed"``, ``validate.failed.jsonl`` (pairs whose
responses all failed), in that order, so a passing pair always wins a
near-duplicate cluster.  An instruction longer than
``select.max_instruction_words`` words is removed (``instruction_too_long``,
SelfCodeAlign's sanitizer does the same at 200).

Decontamination runs the library's audit (:func:`harness.decontamination.audit`,
default methods) over each new pair's instruction, response and tests
against ``SelectConfig.benchmarks``; a flagged pair is removed with the
benchmark in its reason and the findings in its detail.  Near-duplicates are
removed in passes, one per field of ``select.dedup_fields`` (SelfCodeAlign:
instruction, then response, then code), each MinHash over word 5-grams at
Jaccard ``select.dedup_threshold`` with ``select.dedup_num_perm``
permutations, among the pairs kept so far and the new ones, in favour of the
earliest; the code pass compares the code's functions and classes without
docstrings or comments.  A rerun handles only keys not yet selected or
removed.

The dataset is ``<workdir>/<output>.jsonl`` and a ``datasets`` dataset saved
in ``<workdir>/<output>/`` with its card (``README.md``), with provenance
per row (:data:`DATASET_FIELDS`): the seed's key and a readable ``seed_id``,
its repository, path, licence and line span, the seed's code, the property
and concepts, the instruction, the response, the tests and their code, how
many sampled responses passed (``validation``: passed, failed or not_run),
and ``manifest_digest``, the digest of ``manifest.json`` the data was made
with.  ``select.responses = "all"`` writes one row per passing response.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from generation.core import Context, Funnel, StageFiles, config_digest, stage_input
from generation.instruct import pending, read_rows, stage_funnel
from harness.errors import HarnessError

#: Fields the audit reads: everything of a pair that could carry a benchmark's text.
AUDITED_FIELDS = ("instruction", "response", "tests")
#: The dataset's columns, in order (string unless listed in _INT_FIELDS).
DATASET_FIELDS = ("key", "seed_id", "name", "repository", "path", "licence", "lineno", "end_lineno", "seed",
                  "category", "language", "difficulty", "concepts", "instruction", "response", "tests", "code",
                  "test_code", "validation", "passed", "sampled", "chosen", "choice_seed", "manifest_digest")  # fmt: skip
_INT_FIELDS = ("lineno", "end_lineno", "passed", "sampled", "chosen", "choice_seed")
CARD = "README.md"


def seed_id(row: dict[str, Any]) -> str:
    """A readable seed id: ``repository/path:first-last:name`` (the parts known)."""
    where = "/".join(str(x) for x in (row.get("repository"), row.get("path")) if x)
    span = f"{row['lineno']}-{row['end_lineno']}" if row.get("lineno") is not None else ""
    return ":".join(x for x in (where, span, str(row.get("name") or "")) if x)


def validation_of(row: dict[str, Any]) -> str:
    """``passed`` (its tests passed), ``failed`` (kept under keep_failed) or ``not_run`` (execution off)."""
    if row.get("passed") is None:
        return "not_run"
    return "passed" if int(row["passed"]) > 0 else "failed"


def dataset_row(row: dict[str, Any], digest: str | None = None) -> dict[str, Any]:
    """A selected row in the dataset's column layout (missing provenance is None)."""
    prop = row.get("property") or {}
    derived = {"seed_id": seed_id(row), "validation": validation_of(row), "manifest_digest": digest}
    out: dict[str, Any] = {}
    for f in DATASET_FIELDS:
        if f in derived:
            value = derived[f]
        elif f in ("category", "language", "difficulty"):
            value = prop.get(f)
        else:
            value = row.get(f)
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


def code_representation(code: str) -> str:
    """The code's top-level functions and classes without docstrings or comments (the code dedup pass's text)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return code
    tree.body = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):  # fmt: skip
                node.body = body[1:] or [ast.Pass()]
    try:
        return ast.unparse(tree)
    except (ValueError, RecursionError):
        return code


def dedup_text(row: dict[str, Any], field: str) -> str:
    """The text of ``field`` that a dedup pass compares."""
    if field == "code":
        return code_representation(str(row.get("code") or ""))
    return str(row.get(field) or "")


# ------------------------------------------------------------------ the dataset
def expand_responses(rows: Sequence[dict[str, Any]], workdir: Path) -> list[dict[str, Any]]:
    """``select.responses = "all"``: one row per passing response of each selected pair (the chosen one first)."""
    from generation.validate import extract

    sampled = {r["key"]: r.get("responses") or [] for r in read_rows(workdir / "responses.jsonl")}
    out: list[dict[str, Any]] = []
    for row in rows:
        indices = [int(i) for i in row.get("passed_indices") or []]
        texts = sampled.get(row["key"], [])
        out.append(row)
        for i in indices:
            if i == row.get("chosen") or i >= len(texts):
                continue
            e = extract(texts[i])
            out.append({**row, "response": e.response, "tests": e.tests, "code": e.code, "test_code": e.test_code,
                        "chosen": i})  # fmt: skip
    return out


def write_dataset(rows: Sequence[dict[str, Any]], workdir: Path, output: str, digest: str | None = None,
                  card: dict[str, Any] | None = None) -> tuple[Path, Path]:  # fmt: skip
    """``<output>.jsonl`` and the ``datasets`` folder ``<output>/`` with its card, each replaced whole."""
    table = [dataset_row(r, digest) for r in rows]
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
    (staging / CARD).write_text(dataset_card(table, digest, card or {}), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return jsonl, folder


def dataset_card(table: Sequence[dict[str, Any]], digest: str | None, info: dict[str, Any]) -> str:
    """The dataset card: YAML front matter (``manifest_digest``, the generating model, licences) and a summary."""
    licences = sorted({str(r["licence"]) for r in table if r.get("licence")})
    validation: dict[str, int] = {}
    for r in table:
        validation[r["validation"]] = validation.get(r["validation"], 0) + 1
    front = {"manifest_digest": digest, "manifest": "../manifest.json", "generator_model": info.get("model"),
             "rows": len(table), "source_licences": licences, "validation": validation,
             "ablations": info.get("ablations", {})}  # fmt: skip
    lines = ["---"] + [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items()] + ["---", ""]
    lines += ["# SelfCodeAlign instruction dataset", "",
              f"{len(table)} instruction-response pairs generated by `{info.get('model')}` with the harness's "
              "SelfCodeAlign pipeline; every row carries its seed's provenance (repository, path, licence, line span) "
              "and `manifest_digest`, the digest of the pipeline manifest (`../manifest.json`: model, engine "
              "options, every setting) that made it.", ""]  # fmt: skip
    return "\n".join(lines)


def _dataset_current(workdir: Path, output: str, rows: int, digest: str | None) -> bool:
    jsonl, folder = workdir / f"{output}.jsonl", workdir / output
    if not (jsonl.exists() and folder.is_dir() and (folder / CARD).exists()):
        return False
    with jsonl.open(encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if len(lines) != rows:
        return False
    return not lines or json.loads(lines[0]).get("manifest_digest") == digest


def _near_duplicates(universe: Sequence[dict[str, Any]], first_new: int, fields: Sequence[str], threshold: float,
                     num_perm: int, shingle: int) -> dict[int, tuple[int, str]]:  # fmt: skip
    """New row index -> (the earlier row it duplicates, the field), pass by pass over ``fields``."""
    drop: dict[int, tuple[int, str]] = {}
    for field in fields:
        alive = [i for i in range(len(universe)) if i not in drop]
        texts = [dedup_text(universe[i], field) for i in alive]
        for group in _clusters(texts, threshold, num_perm, shingle):
            members = [alive[g] for g in group]
            if field == "code" and not texts[group[0]].strip():
                continue  # rows without code are not one another's duplicates
            head = min(members)  # earlier rows win: already selected ones come first
            for i in members:
                if i != head and i >= first_new:
                    drop[i] = (head, field)
    return drop


def run(ctx: Context) -> Funnel:
    """Decontaminate and deduplicate the new validated pairs, then (re)write the dataset."""
    cfg = ctx.config.select
    rows = stage_input(ctx.workdir, "validate")
    failed_rows = list(read_rows(ctx.workdir / "validate.failed.jsonl"))
    if ctx.config.validate_.execution == "keep_failed":
        rows = [*rows, *failed_rows]
    files = StageFiles(ctx.workdir, "select")
    todo, skipped = pending(rows, files, "validate")
    files.append([])
    removals: list[tuple[str, str, dict[str, Any]]] = []
    if cfg.max_instruction_words is not None:
        long = [r for r in todo if len(str(r.get("instruction") or "").split()) > cfg.max_instruction_words]
        removals += [(r["key"], "instruction_too_long", {"words": len(str(r["instruction"]).split())}) for r in long]
        todo = [r for r in todo if r not in long]
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
        universe = [*kept_before, *todo]
        drop = _near_duplicates(universe, len(kept_before), cfg.dedup_fields, cfg.dedup_threshold, cfg.dedup_num_perm,
                                ctx.config.dedup.shingle)  # fmt: skip
        for i, row in enumerate(todo, start=len(kept_before)):
            if i in drop:
                removals.append((row["key"], "near_duplicate", {"of": universe[drop[i][0]]["key"], "field": drop[i][1]}))
            else:
                new_rows.append(row)
    files.append(new_rows)
    files.remove(removals)
    selected = files.rows()
    table_rows = expand_responses(selected, ctx.workdir) if cfg.responses == "all" else selected
    digest = config_digest(ctx.config)
    if new_rows or not _dataset_current(ctx.workdir, cfg.output, len(table_rows), digest):
        card = {"model": ctx.config.model, "ablations": ablation_settings(ctx.config)}
        jsonl, folder = write_dataset(table_rows, ctx.workdir, cfg.output, digest, card)
        ctx.echo(f"[select] dataset: {len(table_rows)} rows in {jsonl} and {folder}/")
    notes = []
    if not selected:
        notes.append("no pair survived: the dataset is empty")
    if cfg.responses == "all":
        notes.append(f"select.responses = all: {len(table_rows)} rows from {len(selected)} instructions")
    validation: dict[str, int] = {}
    for r in selected:
        validation[validation_of(r)] = validation.get(validation_of(r), 0) + 1
    extra = {"dataset_rows": len(table_rows), "dataset_jsonl": f"{cfg.output}.jsonl", "dataset_dir": cfg.output,
             "decontaminate": cfg.decontaminate, "benchmarks": cfg.benchmarks if cfg.benchmarks == "all" else list(cfg.benchmarks),
             "flagged_this_run": flagged_rows, "dedup_threshold": cfg.dedup_threshold,
             "dedup_fields": list(cfg.dedup_fields), "validation": validation, "manifest_digest": digest}  # fmt: skip
    return stage_funnel("select", files, len(rows), skipped, extra=extra, notes=notes)


def ablation_settings(config: Any) -> dict[str, Any]:
    """The ablation switches' values (the report's comparison table and the dataset card show them)."""
    return {"filter.enabled": config.filter.enabled, "instruct.mode": config.instruct.mode,
            "validate.execution": config.validate_.execution, "select.responses": config.select.responses,
            "instruct.responses_per_instruction": config.instruct.responses_per_instruction}  # fmt: skip
