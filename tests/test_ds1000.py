"""DS-1000: answer formats, post-processing, prompts, the managed environment, grading, the CLI.

The grading tests use a small managed environment (numpy, pandas, scipy,
scikit-learn, matplotlib) built once and kept across runs under the harness
cache (``HARNESS_DS1000_TEST_ENV`` overrides the folder); problems needing
the other libraries are "not graded" there, which is what the skip tests check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import envs
from harness.data import cache_dir
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]
SMALL_LIBRARIES = ["numpy", "pandas", "scipy", "scikit-learn", "matplotlib"]
# Resolved at import, before the session fixture points HARNESS_CACHE_DIR at a temporary folder.
TEST_ENV = Path(os.environ.get("HARNESS_DS1000_TEST_ENV") or cache_dir() / "envs" / "ds1000-test")
PER_LIBRARY = 3


@pytest.fixture(scope="session")
def ds_data(data_dir: Path) -> Path:
    if not (data_dir / "ds1000" / "ds1000.jsonl.gz").is_file():
        pytest.skip(f"DS-1000 data not found under {data_dir}")
    return data_dir


def ensure_small_env() -> tuple[envs.EnvInfo, float | None]:
    """The small managed environment at ``TEST_ENV``, built (pip) unless it holds every library already;
    with the seconds the build took (None when it was there).  ``scripts/setup.sh`` calls it too."""
    info = envs.load("ds1000", TEST_ENV)
    if info is not None and all(d in info.installed for d in SMALL_LIBRARIES):
        return info, None
    t0 = time.perf_counter()
    info = envs.create("ds1000", path=TEST_ENV, libraries=SMALL_LIBRARIES, echo=lambda _: None)
    return info, time.perf_counter() - t0


@pytest.fixture(scope="session")
def small_env() -> envs.EnvInfo:
    """The small managed environment, built on first use (pip) and reused afterwards."""
    try:
        info, seconds = ensure_small_env()
    except HarnessError as exc:
        pytest.fail(f"could not build the DS-1000 test environment at {TEST_ENV} with pip: {exc}", pytrace=False)
    if seconds is not None:
        print(f"\nbuilt the DS-1000 test environment in {seconds:.0f} s")
    return info


@pytest.fixture(scope="session")
def bench(ds_data: Path, small_env: envs.EnvInfo):
    from benchmarks.ds1000 import DS1000

    return DS1000(data_dir=ds_data, env=small_env.path)


@pytest.fixture(scope="session")
def offline_bench(ds_data: Path):
    """The benchmark without an environment: data, prompts and formats only."""
    from benchmarks.ds1000 import DS1000

    return DS1000(data_dir=ds_data, env=ds_data / "no-such-env", require_env=False)


@pytest.fixture(scope="session")
def ds_sandbox(bench):
    from harness.execution import Sandbox, SandboxSettings

    with Sandbox(bench.sandbox_settings(SandboxSettings(workers=2))) as sb:
        yield sb


def _pick(bench, per_library: int = PER_LIBRARY) -> list[str]:
    """The first gradable problems of each library the environment has, each of another perturbation type."""
    from benchmarks.ds1000 import downloads_data

    chosen: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    problems = bench.problems()
    for tid, p in problems.items():
        lib, kind = p.extra["library"], p.extra["perturbation_type"]
        if bench.missing_modules(tid) or downloads_data(p.extra["code_context"]):
            continue  # not gradable here, or needs the network
        if (lib, kind) not in seen and len(chosen.get(lib, [])) < per_library:
            seen.add((lib, kind))
            chosen.setdefault(lib, []).append(tid)
    return [tid for tids in chosen.values() for tid in tids]


# ---------------------------------------------------------------- pure functions


def test_postprocess_follows_ds1000_rules() -> None:
    from benchmarks.ds1000 import postprocess

    assert postprocess("x = 1\n</code>\nEND SOLUTION\nmore") == "x = 1\n"
    assert postprocess("<code>\nx = 1\n</code>") == "\nx = 1\n"
    assert postprocess("```python\nx = 1\n```\ntext after") == "\nx = 1\n"
    assert postprocess("x = 1\n```\nprint(2)") == "x = 1\n"
    assert postprocess("x = 1\nEND SOLUTION\ny = 2") == "x = 1"
    assert postprocess("x = 1  # END SOLUTION stays mid-line") == "x = 1  # END SOLUTION stays mid-line"
    assert postprocess(["first = 1", "second = 2"]) == "first = 1"
    # Order matters: </code> first, so a fence after it is never reached.
    assert postprocess("a = 1</code>```python\nb = 2```") == "a = 1"


def test_program_runs_tests_and_string_checks(offline_bench) -> None:
    problems = offline_bench.problems()
    with_string = next(p for p in problems.values() if "def test_string(" in p.extra["code_context"])
    without = problems["0"]
    prog = offline_bench.program(with_string, "<code>x = 1</code>", None)
    assert prog.count("test_execution(_ds1000_answer)") == 1 and "test_string(_ds1000_answer)" in prog
    compile(prog, "<program>", "exec")
    assert "_ds1000_answer = 'x = 1'" in prog
    assert "test_string(_ds1000_answer)" not in offline_bench.program(without, "x = 1", None)


def test_required_modules_cover_the_answer_context(offline_bench) -> None:
    from benchmarks.ds1000 import required_modules

    ctx = "import numpy as np\nfrom scipy import sparse\nexec_context = r'''\nimport seaborn as sns, torch.nn\n'''"
    assert required_modules(ctx) == {"numpy", "scipy", "seaborn", "torch"}
    assert "seaborn" in required_modules(offline_bench.problems()["511"].extra["code_context"])


def test_load_samples_accepts_both_formats(offline_bench, tmp_path: Path) -> None:
    published = tmp_path / "answers.jsonl"
    published.write_text(
        json.dumps({"code": "result = 1\n", "metadata": {"problem_id": 0, "library": "Pandas"}}) + "\n"
        + json.dumps({"id": 1, "code": ["a = 1", "a = 2"], "metadata": {"problem_id": 1}}) + "\n"
        + json.dumps({"task_id": "2", "solution": "<code>b = 1</code>"}) + "\n"
        + json.dumps({"task_id": "3", "completion": "c = 1"}) + "\n"
    )  # fmt: skip
    rows, bad = offline_bench.load_samples(published)
    assert not bad
    assert [(s.task_id, s.solution) for s in rows] == [
        ("0", "result = 1\n"), ("1", "a = 1"), ("1", "a = 2"), ("2", "<code>b = 1</code>"), ("3", "c = 1"),
    ]  # fmt: skip
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"code": 3, "id": 0}\nnot json\n' + json.dumps({"id": 4, "code": "x"}) + "\n")
    with pytest.raises(HarnessError, match="2 malformed line"):
        offline_bench.load_samples(broken)
    rows, bad = offline_bench.load_samples(broken, skip_bad=True)
    assert [s.task_id for s in rows] == ["4"] and [b.line for b in bad] == [1, 2]


def test_prompts_and_samples(offline_bench) -> None:
    problems = offline_bench.problems()
    p = problems["0"]
    base = offline_bench.prompt(p, "base")
    assert base.text == p.prompt and "</code>" in base.stop
    chat = offline_bench.prompt(p, "instruct")
    assert chat.response_prefix.startswith("```python\n") and chat.response_prefix.endswith("# Solution\n")
    assert "df = pd.DataFrame" in chat.response_prefix and "<code>" not in (chat.instruction or "")
    assert "```" in chat.stop
    func = offline_bench.prompt(problems["4"], "instruct")
    assert "def f(df=example_df):" in func.response_prefix and func.response_prefix.endswith("    # Solution\n")
    plot = offline_bench.prompt(problems["511"], "instruct")
    assert plot.instruction.startswith("Write a solution") and "# SOLUTION START" not in plot.response_prefix
    for prob in problems.values():  # every prompt converts
        assert offline_bench.prompt(prob, "instruct").response_prefix
    reply = "result = df.iloc[List]\n```\nThis reorders the rows."
    assert offline_bench.sample(p, "instruct", chat, reply) == {"solution": "result = df.iloc[List]\n"}
    assert offline_bench.sample(p, "base", base, "x = 1\n</code>") == {"solution": "x = 1\n"}
    assert offline_bench.oracle_sample(p) == ("solution", p.canonical_solution)


def test_breakdown_has_the_published_shape(offline_bench) -> None:
    problems = offline_bench.problems()
    passed = {"0": [True], "1": [False], "300": [True, False]}
    out = offline_bench.breakdown(passed)
    assert out["overall"] == {"score": 0.5, "n": 3}
    assert out["library"]["Pandas"] == {"score": 0.5, "n": 2}
    assert out["library"]["Numpy"] == {"score": 0.5, "n": 1}
    kinds = {problems[t].extra["perturbation_type"] for t in passed}
    assert set(out["perturbation_type"]) == kinds


def test_missing_environment_is_one_clear_error(ds_data: Path, tmp_path: Path) -> None:
    from benchmarks.ds1000 import DS1000

    with pytest.raises(HarnessError, match="harness env create ds1000"):
        DS1000(data_dir=ds_data, env=tmp_path / "absent")
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "0", "solution": "result = 1"}) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "evaluate", "--benchmark", "ds1000", "--samples", str(samples),
         "--data-dir", str(ds_data), "--env", str(tmp_path / "absent")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "harness env create ds1000" in lines[0], proc.stderr


def test_env_spec_names_and_subsets() -> None:
    assert envs.DS1000.requirement("sklearn").dist == "scikit-learn"
    assert envs.DS1000.requirement("PyTorch").dist == "torch"
    assert envs.DS1000.requirement("tensorflow").dist == "tensorflow-cpu"
    with pytest.raises(HarnessError, match="no library"):
        envs.DS1000.requirement("lmfit")


# ---------------------------------------------------------------- the managed environment


def test_small_env_records_versions(small_env: envs.EnvInfo) -> None:
    doc = json.loads((small_env.path / envs.VERSIONS_FILE).read_text())
    assert set(SMALL_LIBRARIES) <= set(doc["installed"])
    assert doc["python_version"] and doc["created"]
    assert doc["modules"]["numpy"] and not doc["modules"]["torch"] and not doc["modules"]["seaborn"]
    deviations = small_env.deviations(envs.DS1000)
    assert any(d.startswith("torch") and "absent" in d for d in deviations)
    proc = subprocess.run([sys.executable, "-m", "harness", "env", "show", "ds1000", "--path", str(small_env.path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "numpy" in proc.stdout and "pinned 1.26.4" in proc.stdout


def test_settings_use_the_environment(bench, small_env: envs.EnvInfo) -> None:
    from harness.execution import SandboxSettings

    s = bench.sandbox_settings(SandboxSettings(workers=2))
    assert s.python == small_env.python
    assert "pandas" in s.preload and "torch" not in s.preload and "tensorflow" not in s.preload
    assert dict(s.env)["MPLBACKEND"] == "Agg"
    assert any("not graded" in n for n in bench.notes())


# ---------------------------------------------------------------- grading


def test_references_pass_and_wrong_answers_fail(bench, ds_sandbox) -> None:
    from harness.benchmark import GradeOptions

    problems = bench.problems()
    tids = _pick(bench)
    libs = {problems[t].extra["library"] for t in tids}
    assert {"Pandas", "Numpy", "Scipy", "Sklearn", "Matplotlib"} <= libs
    programs = [(t, bench.program(problems[t], problems[t].canonical_solution, None)) for t in tids]
    programs += [(t, bench.program(problems[t], "result = None\n", None)) for t in tids]
    verdicts = bench.grade(ds_sandbox, programs, GradeOptions())
    n = len(tids)
    refs = {t: v for t, v in zip(tids, verdicts[:n])}
    failing = {t: v.error for t, v in refs.items() if v.status != "pass"}
    assert not failing, failing
    wrong = {t: v.status for t, v in zip(tids, verdicts[n:])}
    # A plotting test may accept an empty answer when the oracle's figure has no check that fails.
    assert sum(s == "pass" for s in wrong.values()) <= 1, wrong
    assert all(v.parts["base"].reasons for v in verdicts[n:] if v.status != "pass")


def test_hostile_and_crashing_answers_are_contained(ds_data: Path, small_env: envs.EnvInfo) -> None:
    from benchmarks.ds1000 import DS1000
    from harness.benchmark import GradeOptions
    from harness.execution import Sandbox, SandboxSettings

    bench = DS1000(data_dir=ds_data, env=small_env.path, time_limit=2.0)
    p = bench.problems()["0"]
    answers = {
        "segfault": "import ctypes\nctypes.string_at(0)\nresult = df.iloc[List]",
        "exit0": "import sys\nsys.exit(0)",
        "hard_exit": "import os\nos._exit(0)",
        "spin": "while True:\n    pass",
        "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nresult = df.iloc[List]",
        "fork_bomb_lite": "import os\nfor _ in range(100):\n    try:\n        os.fork()\n    except OSError:\n        break",
    }
    answers["good"] = p.canonical_solution
    with Sandbox(bench.sandbox_settings(SandboxSettings(workers=2))) as sb:
        verdicts = bench.grade(sb, [("0", bench.program(p, a, None)) for a in answers.values()], GradeOptions())
        again = bench.grade(sb, [("0", bench.program(p, p.canonical_solution, None))], GradeOptions())
    got = dict(zip(answers, (v.status for v in verdicts)))
    assert got["segfault"] == "fail" and got["exit0"] == "fail" and got["hard_exit"] == "fail"
    assert got["spin"] == "timeout"
    assert got["good"] == "pass" and again[0].status == "pass"  # the sandbox survived all of it


def test_cli_evaluate_writes_breakdown(bench, ds_data: Path, small_env: envs.EnvInfo, tmp_path: Path) -> None:
    problems = bench.problems()
    tids = _pick(bench, per_library=2)
    rows = [{"task_id": t, "solution": problems[t].canonical_solution} for t in tids]
    rows.append({"code": "result = None\n", "metadata": {"problem_id": int(tids[0])}})  # published format
    not_gradable = next(t for t, p in problems.items() if bench.missing_modules(t))
    rows.append({"task_id": not_gradable, "solution": problems[not_gradable].canonical_solution})
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "evaluate", "--benchmark", "ds1000", "--samples", str(samples),
         "--output", str(out), "--data-dir", str(ds_data), "--env", str(small_env.path), "--parallel", "2"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = json.loads((out / "run.json").read_text())
    bd = run["breakdown"]
    n = len(tids)
    assert bd["overall"]["n"] == n and bd["overall"]["score"] == pytest.approx((n - 0.5) / n, abs=1e-3)
    assert sum(c["n"] for c in bd["library"].values()) == n
    assert sum(c["n"] for c in bd["perturbation_type"].values()) == n
    assert run["pass_at_k"]["base"]["pass@1"] == pytest.approx(bd["overall"]["score"], abs=1e-3)
    skipped = [s for s in run["skipped"] if s["task_id"] == not_gradable]
    assert skipped and "not graded" in skipped[0]["reason"]
    assert any("not graded" in note for note in run["notes"])
    assert (out / "eval_results.json").is_file()
    assert "library:" in proc.stdout and "perturbation_type:" in proc.stdout
