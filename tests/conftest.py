"""Shared fixtures: the offline data folder, an isolated cache, one sandbox per session.

Opt-in parallel runs: ``pytest -n 2 --dist loadfile --no-loadscope-reorder`` (pytest-xdist, in the dev extra)
gives each worker one test file at a time, so module fixtures (a vLLM engine, a Ray cluster, a graded
benchmark) start once.  Under xdist, files are handed out costliest first (:data:`COSTLIEST_FIRST`) so the
long ones do not finish last on one worker, and the workers share one expected-outputs cache, warmed once
under a lock.  Not the default: measured 2026-12-01 at load 5-11 (others' runs), 1,838 s against 1,408 s
serial at load 3-4; verdicts are no longer shared between files on different workers (the canonical
solutions were graded twice), and the doubled load broke a wall-clock bound in
tests/test_sandbox_hostile.py (spread_bomb) once.  Without xdist none of this changes anything.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "reference-samples/starcoder2-15b-instruct-v0.1"

#: Test files by measured cost, most expensive first (``--durations``, 2026-12-01, seconds at load 3-4:
#: parity 362, eval_cli 158, vllm_real 123, humaneval_x 101, decontam 84, resume 77, ray 72, bad_input 53,
#: report_site 44); the others keep their order after these.  With ``--dist loadfile --no-loadscope-reorder``
#: the workers take files in this order.
COSTLIEST_FIRST = (
    "test_evalplus_parity.py", "test_eval_cli.py", "test_vllm_real.py", "test_humaneval_x.py", "test_decontam.py",
    "test_resume.py", "test_ray_executor.py", "test_bad_input.py", "test_report_site.py", "test_evalplus_edges.py",
    "test_livecodebench.py", "test_cruxeval.py", "test_sandbox_command.py", "test_plugin.py",
)  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, costliest files first (a stable sort: tests keep their order within a file, the rest theirs)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a serial run keeps the files' order: later files reuse what earlier ones cached
    rank = {name: k for k, name in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


#: Files that grade HumanEval+ or MBPP+ (so need their expected outputs); under xdist, a run that holds any of
#: them warms the shared expected-outputs cache once, first.
EVALPLUS_USERS = frozenset({
    "test_bad_input.py", "test_cli.py", "test_eval_cli.py", "test_evalplus_edges.py", "test_evalplus_parity.py",
    "test_failure_modes.py", "test_ray_executor.py", "test_reasoning.py", "test_report_site.py", "test_reports.py",
    "test_resume.py", "test_vllm_real.py",
})  # fmt: skip


def _xdist_shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Under pytest-xdist, a folder every worker of this run shares (the base temp's parent); None otherwise."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return tmp_path_factory.getbasetemp().parent


def _warm_expected_outputs() -> None:
    """Compute the HumanEval+ and MBPP+ expected outputs into the cache unless they are there already.

    Called under a lock shared by the xdist workers, so the first worker that needs them computes them (on
    both cores) while the other waits, instead of both computing them at once.
    """
    path = Path(os.environ.get("HARNESS_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
    if not (path / "humanevalplus").is_dir():
        return  # the tests that need the data skip
    from harness.benchmark import get
    from harness.execution import Sandbox, SandboxSettings

    for name in ("humaneval", "mbpp"):
        bench = get(name, data_dir=path)
        if bench.expected_cache_path().is_file():
            continue
        with Sandbox(bench.sandbox_settings(SandboxSettings(workers=2))) as sb:
            bench.prepare(sb)
        bench.wait_saved()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder (``HARNESS_DATA_DIR``, else ``../shared/data``)."""
    path = Path(os.environ.get("HARNESS_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
    if not (path / "humanevalplus").is_dir():
        pytest.skip(f"benchmark data not found at {path}; set HARNESS_DATA_DIR")
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Expected outputs and verdicts are cached per test session, never in the user's cache."""
    path = tmp_path_factory.mktemp("harness-cache")
    old = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = str(path)
    shared = _xdist_shared_root(tmp_path_factory)
    if shared is not None:
        # Expected outputs depend on the dataset alone and are written atomically: one folder for all workers.
        # Verdicts and responses stay per worker, as they are per session without xdist.
        (shared / "harness-expected").mkdir(exist_ok=True)
        (path / "expected").symlink_to(shared / "harness-expected", target_is_directory=True)
        if EVALPLUS_USERS & {item.path.name for item in request.session.items}:
            with open(shared / "harness-expected.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    _warm_expected_outputs()
                except Exception as exc:  # noqa: BLE001 - only a warm-up: the tests that grade report the real error
                    print(f"[conftest] expected outputs not warmed: {exc}")
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
    yield path
    if old is None:
        os.environ.pop("HARNESS_CACHE_DIR", None)
    else:
        os.environ["HARNESS_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    """A two-worker sandbox shared by the tests that only need to run programs."""
    from harness.execution import Sandbox, SandboxSettings

    with Sandbox(SandboxSettings(workers=2, memory_bytes=1 << 30)) as sb:
        yield sb


@pytest.fixture(scope="session")
def sc2_humaneval(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The StarCoder2-15B-Instruct HumanEval+ reference samples graded once per session; the run.json path.

    Shared by the report tests (tests/test_reports.py, tests/test_report_site.py): copy the file to index
    it under another path, never write beside it.
    """
    from harness.evaluation import evaluate_samples

    out = tmp_path_factory.mktemp("sc2-humaneval")
    evaluate_samples("humaneval", data_dir / REFERENCE / "humaneval.jsonl", output=out, data_dir=data_dir,
                     use_verdict_cache=True, echo=lambda _: None, parallel=2)  # fmt: skip
    return out / "run.json"


@pytest.fixture(scope="session")
def reference_grading(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, dict]]:
    """The reference samples of a benchmark (humaneval, mbpp) graded once per session without the verdict cache.

    A function: benchmark -> (output folder, ``{task: [base_status, plus_status]}``).  Shared by the EvalPlus
    parity tests and the Ray test's local run (which graded them the same way); read it, never write beside it.
    """
    from harness.evaluation import evaluate_samples

    done: dict[str, tuple[Path, dict]] = {}

    def graded(bench: str) -> tuple[Path, dict]:
        if bench not in done:
            out = tmp_path_factory.mktemp(f"{bench}-reference")
            evaluate_samples(bench, data_dir / REFERENCE / f"{bench}.jsonl", output=out, parallel=2, data_dir=data_dir,
                             use_verdict_cache=False, echo=lambda _: None)  # fmt: skip
            results = json.loads((out / "eval_results.json").read_text())
            done[bench] = (out, {t: [rows[0]["base_status"], rows[0]["plus_status"]] for t, rows in results["eval"].items()})
        return done[bench]

    return graded


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny local Llama with a locally trained tokenizer and a chat template (``hf:PATH`` loads it)."""
    pytest.importorskip("torch", reason="the tiny model needs torch (installed by scripts/setup.sh)")
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
