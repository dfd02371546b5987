"""A benchmark is one module: a toy benchmark installed as a separate package works everywhere.

The toy package (``tests/toy_benchmark``: a module and one entry-point line)
is ``pip install``-ed into the test environment, then ``harness evaluate``
with its own flag, ``harness eval`` with the oracle, ``harness decontam
--benchmarks all``, ``harness leaderboard`` and ``harness report`` must all
work with no file of this repository changed; it is uninstalled afterwards.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "toy_benchmark"
PACKAGE = "harness-toy-benchmark"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _git_status() -> str:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return ""
    out = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True)
    return out.stdout


@pytest.fixture(scope="module")
def toy_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The toy package built from a copy (the repo stays untouched) and installed without network."""
    pytest.importorskip("setuptools", reason="building the toy package needs setuptools in the environment")
    src = tmp_path_factory.mktemp("toy-src") / "toy"
    shutil.copytree(TOY, src)
    proc = _pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield src
    finally:
        _pip("uninstall", "-y", PACKAGE)


def _harness(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_REGISTRY": str(tmp / "registry.sqlite"), "HARNESS_CACHE_DIR": str(tmp / "cache")}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp)  # fmt: skip


def test_toy_benchmark_from_outside_the_repo_works_everywhere(toy_installed: Path, tmp_path: Path,
                                                              data_dir: Path) -> None:  # fmt: skip
    before = _git_status()
    # It is discovered, with its flag, and its items are decontamination references.
    helptext = _harness(tmp_path, "evaluate", "--help")
    assert helptext.returncode == 0 and "--toy-flag" in helptext.stdout and "toy" in helptext.stdout

    samples = tmp_path / "toy-samples.jsonl"
    rows = [
        {"task_id": "toy/0", "completion": "    return a + b\n"},
        {"task_id": "toy/1", "completion": "    return x + x\n"},  # wrong
        {"task_id": "toy/2", "completion": "    return s.upper() + '!'\n"},
    ]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ev = _harness(tmp_path, "evaluate", "--benchmark", "toy", "--toy-flag", "3", "--samples", str(samples),
                  "--output", str(tmp_path / "ev"), "--parallel", "2")  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    record = json.loads((tmp_path / "ev" / "run.json").read_text())
    assert record["schema_version"] == 2 and record["benchmark"] == "toy"
    assert record["options"] == {"toy_flag": 3}
    assert record["pass_at_k"]["base"]["pass@1"] == pytest.approx(2 / 3)
    assert record["tasks"]["toy/1"]["correct"] == {"base": 0}
    assert "AssertionError" in (record["tasks"]["toy/1"]["samples"][0]["reason"] or "")
    bad = _harness(tmp_path, "evaluate", "--benchmark", "toy", "--toy-flag", "0", "--samples", str(samples))
    assert bad.returncode == 2 and "--toy-flag" in bad.stderr  # its Options validate it

    oracle = _harness(tmp_path, "eval", "--model", "oracle", "--benchmarks", "toy", "--output", str(tmp_path / "or"),
                      "--parallel", "2")  # fmt: skip
    assert oracle.returncode == 0, oracle.stderr
    assert json.loads((tmp_path / "or" / "toy" / "run.json").read_text())["pass_at_k"]["base"]["pass@1"] == 1.0

    dataset = tmp_path / "train.jsonl"
    importlib.invalidate_caches()
    from toy_bench import TASKS  # the installed plugin's own data

    leaked = TASKS["toy/1"][0]  # its prompt, copied into an instruction
    dataset.write_text(json.dumps({"instruction": "Complete this:\n" + leaked, "response": "return 3 * x"}) + "\n"
                       + json.dumps({"instruction": "Sort a list of numbers.", "response": "sorted(xs)"}) + "\n")
    dc = _harness(tmp_path, "decontam", "--dataset", str(dataset), "--benchmarks", "all", "--output",
                  str(tmp_path / "dc"), "--data-dir", str(data_dir))  # fmt: skip
    assert dc.returncode == 0, dc.stderr
    report = json.loads((tmp_path / "dc" / "report.json").read_text())
    assert any(f["benchmark"] == "toy" and f["task_id"] == "toy/1" for f in report["flagged"]), report["summary"]

    lb = _harness(tmp_path, "leaderboard", "--format", "md")
    assert lb.returncode == 0, lb.stderr
    assert "Toy" in lb.stdout

    rp = _harness(tmp_path, "report", "--output", str(tmp_path / "report"))
    assert rp.returncode == 0, rp.stderr
    html = next((tmp_path / "report").rglob("*.html")).read_text()
    assert "Toy" in html
    assert _git_status() == before  # no file of this repository changed


def test_a_broken_plugin_is_named_and_does_not_break_the_others(tmp_path: Path) -> None:
    from harness import benchmark as registry

    class Broken:  # an entry point that fails to load looks like this to the registry
        name = "broken-example"
        value = "missing_module:Thing"

        def load(self) -> object:
            raise ImportError("No module named 'missing_module'")

    registry._scan()
    registry._ENTRY_POINTS["broken-example"] = Broken()
    try:
        assert "broken-example" not in registry.names()
        assert "missing_module" in registry.broken()["broken-example"]
        with pytest.raises(registry.ConfigError, match="failed to load"):
            registry.get("broken-example")
        assert registry.names()  # the installed benchmarks still load
    finally:
        registry._ENTRY_POINTS.pop("broken-example", None)
        registry._FAILED.pop("broken-example", None)
