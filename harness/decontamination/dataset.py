"""Datasets to audit: JSONL, Parquet, or a Hugging Face ``datasets`` dataset saved on disk."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


@dataclass
class Dataset:
    """Rows of an audited dataset and the text fields chosen for the audit."""

    path: Path
    kind: str  # jsonl | parquet | hf
    rows: list[dict[str, Any]]
    fields: list[str]
    #: Fields asked for (or found) that hold non-text values in some rows: name -> rows affected.
    non_text: dict[str, int]


def load_dataset(path: str | Path, fields: Sequence[str] | None = None) -> Dataset:
    """Read a dataset; ``fields`` default to every field that holds a string in some row."""
    p = Path(path)
    if not p.exists():
        raise HarnessError(f"dataset {p} does not exist")
    if p.is_dir():
        rows, kind = _load_hf(p), "hf"
    elif p.suffix == ".parquet":
        rows, kind = _load_parquet(p), "parquet"
    else:
        rows, kind = _load_jsonl(p), "jsonl"
    if not rows:
        raise HarnessError(f"dataset {p} has no rows; nothing to audit")
    present: dict[str, int] = {}
    strings: dict[str, int] = {}
    for row in rows:
        for key, value in row.items():
            present[key] = present.get(key, 0) + 1
            if isinstance(value, str):
                strings[key] = strings.get(key, 0) + 1
    if fields:
        unknown = [f for f in fields if f not in present]
        if unknown:
            raise HarnessError(
                f"field(s) {', '.join(unknown)} not in {p}; its fields: {', '.join(sorted(present)) or 'none'}"
            )
        chosen = list(fields)
    else:
        chosen = [k for k in present if strings.get(k)]
        if not chosen:
            raise HarnessError(f"{p} has no text fields; name the fields to check with --fields")
    non_text = {f: present[f] - strings.get(f, 0) for f in chosen if present[f] - strings.get(f, 0) > 0}
    if fields and all(not strings.get(f) for f in chosen):
        raise HarnessError(f"field(s) {', '.join(chosen)} of {p} hold no text (strings) in any row")
    return Dataset(p, kind, rows, chosen, non_text)


def _load_jsonl(p: Path) -> list[dict[str, Any]]:
    rows = []
    with p.open(encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"{p} line {lineno} is not valid JSON ({exc.msg}); fix or remove it") from None
            if not isinstance(row, dict):
                raise HarnessError(f"{p} line {lineno} is not a JSON object")
            rows.append(row)
    return rows


def _load_parquet(p: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise HarnessError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        return pq.read_table(p).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
        raise HarnessError(f"{p} is not a readable Parquet file ({exc})") from None


def _load_hf(p: Path) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise HarnessError(f"{p} is a folder; reading a saved `datasets` dataset needs: pip install datasets") from None
    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as exc:  # noqa: BLE001
        raise HarnessError(f"{p} is not a dataset saved with datasets.save_to_disk ({exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise HarnessError(f"{p} holds splits {', '.join(ds)}; pass one split's folder")
        ds = next(iter(ds.values()))
    return ds.to_list()


def write_rows(path: Path, rows: list[dict[str, Any]], kind: str) -> None:
    """Write rows in the input's format (JSONL, Parquet, or a saved ``datasets`` dataset)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet" or path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif kind == "hf" and path.suffix != ".jsonl":
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    else:
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        tmp.replace(path)
