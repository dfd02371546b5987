"""Interrupted runs keep what finished: a rerun after SIGINT or SIGKILL regrades only what was in flight."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REFERENCE, statuses

TASKS = 150  # the first 150 MBPP samples of the reference (the whole test: 29.8 and 31.5 s on two cores)


def _samples(data_dir: Path, path: Path) -> Path:
    # A trailing comment makes every program new to the session's verdict cache.
    lines = (data_dir / REFERENCE / "mbpp.jsonl").read_text().splitlines()[:TASKS]
    rows = []
    for line in lines:
        row = json.loads(line)
        if row["task_id"] == "Mbpp/599":
            continue  # ~49 s of CPU alone, and on a loaded machine its wall-clock limit decides it: not this test's point
        field = "solution" if "solution" in row else "completion"
        row[field] = row[field] + "\n# resume test\n"
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n")
    return path


def _cmd(data_dir: Path, samples: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness", "evaluate", "--benchmark", "mbpp", "--samples", str(samples),
            "--data-dir", str(data_dir), "--output", str(out), "--parallel", "2", "--overwrite", *extra]  # fmt: skip


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return int(con.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _verdicts(out: Path) -> dict[str, list[str]]:
    record = json.loads((out / "run.json").read_text())
    return {tid: [s["verdict"]["status"] for s in t["samples"]] for tid, t in record["tasks"].items()}


@pytest.mark.slow
def test_killed_evaluate_resumes_where_it_stopped(data_dir: Path, tmp_path: Path, isolated_cache: Path) -> None:
    samples = _samples(data_dir, tmp_path / "mbpp.jsonl")
    env = {**os.environ, "HARNESS_REGISTRY": "off"}
    # The uninterrupted verdicts: EvalPlus 0.3.1's own on these samples (a trailing comment changes none).
    reference = json.loads((data_dir / REFERENCE / "evalplus-0.3.1-verdicts-mbpp.json").read_text())["verdicts"]
    graded = {json.loads(line)["task_id"] for line in samples.read_text().splitlines()}
    expected = {tid: v for tid, v in reference.items() if tid in graded}
    # Expected outputs from the session's cache (computed here when no test needed them before).
    warm = subprocess.run(_cmd(data_dir, _first(samples, tmp_path / "one.jsonl"), tmp_path / "warm",
                               "--no-verdict-cache"), env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert warm.returncode == 0, warm.stderr
    total = len(expected)
    # A verdict cache of this test's own: only the interrupted runs write it.
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "expected").symlink_to(isolated_cache / "expected", target_is_directory=True)
    env = {**env, "HARNESS_CACHE_DIR": str(cache)}
    db = cache / "verdicts.sqlite"
    kept = 0
    for sig, more in ((signal.SIGINT, 10), (signal.SIGKILL, 30)):
        # SIGINT as a terminal's Ctrl-C finds it: a suite started as a background job (`cmd &` in a script)
        # passes SIGINT down ignored, and this run then finished untouched and the test skipped.
        proc = subprocess.Popen(_cmd(data_dir, samples, tmp_path / "run"), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)  # fmt: skip
        # Kill in mid-run: once this run has committed some verdicts of its own, others are in flight.
        start = time.monotonic()
        while _rows(db) < kept + more and proc.poll() is None and time.monotonic() - start < 300:
            time.sleep(0.05)
        after = time.monotonic() - start
        before_kill = _rows(db)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            pytest.skip("the run finished before it could be interrupted (machine too fast for this test)")
        after_kill = _rows(db)
        # Finished programs accumulate from the start, and what was committed stays.
        assert after_kill > kept, f"nothing new was kept after {after:.1f} s ({sig.name}): {err[-400:]}"
        assert after_kill >= before_kill
        if sig == signal.SIGINT:
            assert proc.returncode == 130 and "rerun the same command to resume" in err
        kept = after_kill
    rerun = subprocess.run(_cmd(data_dir, samples, tmp_path / "run"), env=env, capture_output=True, text=True,
                           timeout=900)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    timings = json.loads((tmp_path / "run" / "run.json").read_text())["timings"]
    # Only what was not committed at the last kill is graded again, with the uninterrupted run's verdicts.
    assert timings["verdict_cache_hits"] >= kept
    assert timings["graded_programs"] == total - timings["verdict_cache_hits"] < total
    assert statuses(tmp_path / "run") == expected


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _first(samples: Path, path: Path) -> Path:
    path.write_text(samples.read_text().splitlines()[0] + "\n")
    return path


def test_existing_results_are_kept_unless_overwrite(data_dir: Path, tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return False\n"}) + "\n")
    env = {**os.environ, "HARNESS_REGISTRY": "off"}
    cmd = [sys.executable, "-m", "harness", "evaluate", "--benchmark", "humaneval", "--samples", str(samples),
           "--data-dir", str(data_dir), "--output", str(tmp_path / "out"), "--parallel", "1"]  # fmt: skip
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    created = json.loads((tmp_path / "out" / "run.json").read_text())["created"]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "earlier run" in again.stderr
    assert json.loads((tmp_path / "out" / "run.json").read_text())["created"] == created
    forced = subprocess.run([*cmd, "--overwrite"], env=env, capture_output=True, text=True, timeout=600)
    assert forced.returncode == 0, forced.stderr
    unwritable = subprocess.run([*cmd[:-4], "--output", "/proc/x", "--parallel", "1"], env=env, capture_output=True,
                                text=True, timeout=600)  # fmt: skip
    assert unwritable.returncode == 2 and "cannot write results to /proc/x" in unwritable.stderr
    assert len(unwritable.stderr.strip().splitlines()) == 1


def _he_run(data_dir: Path, samples: Path, out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_REGISTRY": "off", "HARNESS_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "harness", "evaluate", "--benchmark", "humaneval", "--samples", str(samples),
           "--data-dir", str(data_dir), "--output", str(out), "--parallel", "2", "--overwrite"]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def test_damaged_caches_are_reported_and_recomputed(data_dir: Path, tmp_path: Path, isolated_cache: Path) -> None:
    lines = (data_dir / REFERENCE / "humaneval.jsonl").read_text().splitlines()[:6]
    samples = tmp_path / "he.jsonl"
    samples.write_text("\n".join(lines) + "\n")
    cache = tmp_path / "cache"
    # A copy of the session's expected outputs when an earlier test computed them (this test damages its
    # copy, and the recomputation it checks comes after the damage): the first run need not compute them too.
    warm = sorted((isolated_cache / "expected").glob("humanevalplus-*.bin"))
    if warm:
        (cache / "expected").mkdir(parents=True)
        shutil.copyfile(warm[-1], cache / "expected" / warm[-1].name)
    first = _he_run(data_dir, samples, tmp_path / "a", cache)
    assert first.returncode == 0, first.stderr
    expected = _verdicts(tmp_path / "a")
    # One changed byte in the middle of the expected outputs (it used to move pass@1 without a word).
    (cached,) = (cache / "expected").glob("humanevalplus-*.bin")
    blob = bytearray(cached.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    cached.write_bytes(bytes(blob))
    # And one verdict entry whose text no longer matches its checksum.
    with sqlite3.connect(cache / "verdicts.sqlite") as con:
        key, text = con.execute("SELECT key, verdict FROM verdicts LIMIT 1").fetchone()
        flipped = text.replace('"pass"', '"fail"') if '"pass"' in text else text.replace('"fail"', '"pass"')
        con.execute("UPDATE verdicts SET verdict = ? WHERE key = ?", (flipped, key))
    second = _he_run(data_dir, samples, tmp_path / "b", cache)
    assert second.returncode == 0, second.stderr
    assert "expected-output cache" in second.stderr and "failed its checksum" in second.stderr
    assert "verdict cache" in second.stderr and "graded again" in second.stderr
    assert _verdicts(tmp_path / "b") == expected
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["timings"]["graded_programs"] == 1  # only the damaged verdict was graded again
