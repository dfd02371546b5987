"""Bad input gets a clear one-line error, before any work, and loses nothing (issue: nothing silently wrong)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import REFERENCE


def _harness(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_REGISTRY": str(tmp / "reg.sqlite")}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp)  # fmt: skip


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_a_samples_file_with_a_byte_order_mark_is_read(data_dir: Path, tmp_path: Path) -> None:
    line = (data_dir / REFERENCE / "humaneval.jsonl").read_text().splitlines()[0]
    samples = tmp_path / "bom.jsonl"
    samples.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n")
    proc = _harness(tmp_path, "evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--data-dir",
                    str(data_dir), "--output", str(tmp_path / "out"), "--parallel", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["n_samples"] == 1 and not record["skipped"]
    for name in ("run.json", "eval_results.json"):  # results are for others to read too
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) & 0o044 == 0o044


def test_config_files_that_are_not_text_or_are_folders(tmp_path: Path) -> None:
    binary = tmp_path / "cfg.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    err = _one_line_error(_harness(tmp_path, "generate", "run", "--config", str(binary)))
    assert "not UTF-8 text" in err and str(binary) in err
    err = _one_line_error(_harness(tmp_path, "generate", "run", "--config", str(tmp_path)))
    assert "is a folder" in err


def test_sampling_settings_are_checked_before_the_model_loads(tmp_path: Path) -> None:
    err = _one_line_error(_harness(tmp_path, "eval", "--model", "hf:/no/such/model", "--temperature", "-1"))
    assert "--temperature" in err
    err = _one_line_error(_harness(tmp_path, "eval", "--model", "hf:/no/such/model", "--top-p", "0"))
    assert "--top-p" in err


def test_a_folder_without_a_model(tmp_path: Path) -> None:
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "README.md").write_text("not a model")
    err = _one_line_error(_harness(tmp_path, "eval", "--model", f"hf:{folder}", "--benchmarks", "humaneval",
                                   "--limit", "1", "--output", str(tmp_path / "o")))  # fmt: skip
    assert "holds no transformers model" in err


def test_a_deleted_record_leaves_listings(data_dir: Path, tmp_path: Path) -> None:
    lines = (data_dir / REFERENCE / "humaneval.jsonl").read_text().splitlines()[:2]
    samples = tmp_path / "two.jsonl"
    samples.write_text("\n".join(lines) + "\n")
    for name in ("a", "b"):
        proc = _harness(tmp_path, "evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--data-dir",
                        str(data_dir), "--output", str(tmp_path / name), "--parallel", "1")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    listed = _harness(tmp_path, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 2
    (tmp_path / "a" / "run.json").unlink()
    listed = _harness(tmp_path, "runs", "list", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1
    assert "whose run.json is gone" in listed.stderr


def test_isolation_is_chosen_said_and_recorded(data_dir: Path, tmp_path: Path) -> None:
    line = (data_dir / REFERENCE / "humaneval.jsonl").read_text().splitlines()[0]
    samples = tmp_path / "one.jsonl"
    samples.write_text(line + "\n")
    args = ["evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--data-dir", str(data_dir),
            "--parallel", "1"]  # fmt: skip
    proc = _harness(tmp_path, *args, "--output", str(tmp_path / "p"), "--isolation", "process")
    assert proc.returncode == 0, proc.stderr
    assert "isolation process" in proc.stdout
    assert json.loads((tmp_path / "p" / "run.json").read_text())["settings"]["isolation"] == "process"
    # bwrap asked for where bubblewrap cannot start (not on PATH): a hard error naming the fix, not a silent fallback.
    env = {**os.environ, "PATH": str(tmp_path / "empty-path"), "HARNESS_REGISTRY": "off"}
    proc = subprocess.run([sys.executable, "-m", "harness", *args, "--output", str(tmp_path / "b"), "--isolation",
                           "bwrap"], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)  # fmt: skip
    err = _one_line_error(proc)
    assert "bubblewrap" in err


def test_a_damaged_verdict_cache_is_named_with_the_fix(data_dir: Path, tmp_path: Path) -> None:
    line = (data_dir / REFERENCE / "humaneval.jsonl").read_text().splitlines()[0]
    samples = tmp_path / "one.jsonl"
    samples.write_text(line + "\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "verdicts.sqlite").write_bytes(b"this is not a database" * 100)
    env = {**os.environ, "HARNESS_REGISTRY": "off", "HARNESS_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-m", "harness", "evaluate", "--benchmark", "humaneval", "--samples",
                           str(samples), "--data-dir", str(data_dir), "--output", str(tmp_path / "o"), "--parallel",
                           "1"], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    err = _one_line_error(proc)
    assert "verdicts.sqlite" in err and "--no-verdict-cache" in err


def test_parallel_is_capped_to_what_the_machine_holds(data_dir: Path, tmp_path: Path) -> None:
    line = (data_dir / REFERENCE / "humaneval.jsonl").read_text().splitlines()[0]
    samples = tmp_path / "one.jsonl"
    samples.write_text(line + "\n")
    proc = _harness(tmp_path, "evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--data-dir",
                    str(data_dir), "--output", str(tmp_path / "o"), "--parallel", "1000")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--parallel 1000 capped to" in proc.stdout + proc.stderr
    workers = json.loads((tmp_path / "o" / "run.json").read_text())["settings"]["parallel"]
    assert workers <= 4 * (os.cpu_count() or 1)
