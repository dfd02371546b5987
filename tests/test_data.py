"""Dataset resolution: offline folder, cache, and the error when neither has the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import data
from harness.errors import HarnessError

RELEASE = data.ReleaseFile("Toy+", "v9", "toy", "Toy-v9.jsonl.gz", "https://example.invalid/Toy.jsonl.gz")


def test_missing_dataset_offline_names_both_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(HarnessError) as err:
        data.resolve(RELEASE, tmp_path)
    message = str(err.value)
    assert "--data-dir" in message and "HARNESS_DATA_DIR" in message and RELEASE.url in message


def test_data_dir_layouts(tmp_path: Path) -> None:
    (tmp_path / "toy").mkdir()
    nested = tmp_path / "toy" / RELEASE.filename
    nested.write_bytes(b"x")
    assert data.resolve(RELEASE, tmp_path) == nested
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / RELEASE.filename).write_bytes(b"y")
    assert data.resolve(RELEASE, flat) == flat / RELEASE.filename


def test_data_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="not a folder"):
        data.resolve(RELEASE, tmp_path / "missing")


def test_hash_is_evalplus_compatible(data_dir: Path) -> None:
    # EvalPlus records the MD5 of the decompressed release file.
    path = data_dir / "humanevalplus" / "HumanEvalPlus-v0.1.10.jsonl.gz"
    assert data.content_md5(path) == "fe585eb4df8c88d844eeb463ea4d0302"
