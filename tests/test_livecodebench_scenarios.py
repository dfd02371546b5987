"""LiveCodeBench's test output prediction and code execution: data, prompts, extraction, grading, the oracle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.livecodebench_scenarios import (
    EXECUTION_SYSTEM,
    TESTOUTPUT_SYSTEM,
    LiveCodeBenchExecution,
    LiveCodeBenchTestOutput,
    extract_execution,
    extract_test_output,
    predicted_expression,
    python_literal,
)
from harness.benchmark import GradeOptions, Verdict
from harness.errors import HarnessError
from harness.store import load_run

ROOT = Path(__file__).resolve().parents[1]

#: Hand-written code execution items in execution-v2's schema.
EXECUTION_ITEMS = [
    {"code": "def addOne(x: int) -> int:\n    return x + 1", "input": "addOne(x = 41)", "output": "42"},
    {"code": "def rev(s: str) -> str:\n    return s[::-1]", "input": "rev(s = 'abc')", "output": "'cba'"},
    {"code": "def pairs(n: int) -> List[List[int]]:\n    return [[i, i * i] for i in range(n)]",
     "input": "pairs(n = 3)", "output": "[[0, 0], [1, 1], [2, 4]]"},
    {"code": "def count(nums: List[int]) -> int:\n    return len(Counter(nums))", "input": "count(nums = [1, 1, 2])",
     "output": "2"},
    {"code": "def flag(a: int) -> bool:\n    return a % 2 == 0", "input": "flag(a = 7)", "output": "False"},
    {"code": "def spin(k: int) -> int:\n    while k:\n        pass\n    return k", "input": "spin(k = 0)", "output": "0"},
]  # fmt: skip


def execution_rows() -> list[dict[str, Any]]:
    rows = []
    for k, item in enumerate(EXECUTION_ITEMS):
        rows.append({**item, "id": f"sample_{k}", "question_id": str(3000 + k), "contest_id": "weekly-contest-1",
                     "contest_date": "2024-01-01T00:00:00", "difficulty": ["easy", "medium"][k % 2],
                     "function_name": item["input"].split("(")[0], "problem_id": f"{3000 + k}_0", "numsteps": 10})  # fmt: skip
    return rows


def build_testoutput_rows(public: Path) -> list[dict[str, Any]]:
    """test_generation's schema from the functional problems' public tests: one row per test."""
    rows = []
    for line in public.read_text().splitlines():
        problem = json.loads(line)
        func = json.loads(problem["metadata"]).get("func_name")
        if not func:
            continue
        for k, test in enumerate(json.loads(problem["public_test_cases"])):
            rows.append({"question_title": problem["question_title"], "question_content": problem["question_content"],
                         "question_id": problem["question_id"], "contest_id": problem["contest_id"],
                         "contest_date": problem["contest_date"], "difficulty": problem["difficulty"],
                         "test": json.dumps([test]), "starter_code": problem["starter_code"], "function_name": func,
                         "test_id": k})  # fmt: skip
    return rows


def write(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def folder(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    public = data_dir / "livecodebench" / "problems-v5v6-public.jsonl"
    if not public.is_file():
        pytest.skip("no LiveCodeBench public file in the data folder")
    root = tmp_path_factory.mktemp("lcb-scenarios")
    write(root, "livecodebench-testoutput", build_testoutput_rows(public))
    return write(root, "livecodebench-execution", execution_rows())


@pytest.fixture(scope="module")
def testoutput(folder: Path) -> LiveCodeBenchTestOutput:
    return LiveCodeBenchTestOutput(data_dir=folder)


@pytest.fixture(scope="module")
def execution(folder: Path) -> LiveCodeBenchExecution:
    bench = LiveCodeBenchExecution(data_dir=folder)
    bench.time_limit = 1.0
    return bench


def grade(bench: Any, sandbox: Any, pairs: list[tuple[str, str]]) -> list[Verdict]:
    return bench.grade(sandbox, pairs, GradeOptions())


def reason(verdict: Verdict) -> str:
    return verdict.reason() or ""


# ------------------------------------------------------------------ oracle
def test_oracle_scores_one_through_harness_eval(folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_REGISTRY": str(tmp_path / "registry.sqlite"), "HARNESS_CACHE_DIR": str(tmp_path / "c")}
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "eval", "--model", "oracle", "--benchmarks",
         "livecodebench-testoutput,livecodebench-execution", "--data-dir", str(folder), "--output", str(out),
         "--parallel", "2"],
        capture_output=True, text=True, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    to = load_run(out / "livecodebench-testoutput" / "run.json")
    ex = load_run(out / "livecodebench-execution" / "run.json")
    assert to.title == "LiveCodeBench test output" and ex.title == "LiveCodeBench execution"
    assert to.n_tasks == len(LiveCodeBenchTestOutput(data_dir=folder).problems()) > 250
    assert ex.n_tasks == len(EXECUTION_ITEMS)
    failed = [(t, s.reason) for t, r in to.tasks.items() for s in r.samples if s.verdict.status != "pass"]
    assert failed == [] and to.pass_at_k["base"]["pass@1"] == 1.0
    assert ex.pass_at_k["base"]["pass@1"] == 1.0 and ex.breakdown["livecodebench"]["pass@1"]["score"] == 1.0
    assert to.dataset.name == "LiveCodeBench test output" and to.dataset.version == "items.jsonl"


# ------------------------------------------------------------- test output
def test_testoutput_prompt_is_livecodebenchs(testoutput: LiveCodeBenchTestOutput) -> None:
    problem = testoutput.problems()["3708_0"]
    prompt = testoutput.prompt(problem, "instruct")
    assert prompt.system == TESTOUTPUT_SYSTEM and prompt.response_prefix == "" and prompt.stop == ()
    text = prompt.instruction or ""
    # As LiveCodeBench writes it: the question runs straight into "Function:".
    assert text.startswith("Problem:\nYou are given an m x n 2D array grid")
    assert "1 <= grid[i][j] <= 2500Function:\n```\nclass Solution:\n    def zigzagTraversal" in text
    assert text.endswith("Please complete the following test case:\n\n```\n"
                         "assert zigzagTraversal([[1, 2], [3, 4]]) == # TODO\n```\n")  # fmt: skip
    base = testoutput.prompt(problem, "base")
    assert base.text == f"{TESTOUTPUT_SYSTEM}\n{text}"
    # Several input lines become several arguments.
    two = next(p for p in testoutput.problems().values() if "\n" in p.extra["input"])
    args = ", ".join(two.extra["input"].split("\n"))
    assert f"assert {two.entry_point}({args}) == # TODO" in (testoutput.prompt(two, "instruct").instruction or "")


def test_testoutput_extraction() -> None:
    assert extract_test_output("So:\n```python\nassert f(1) == 2\n```\nassert f(1) == 3 # sure") == (
        "assert f(1) == 3 # sure")  # fmt: skip
    assert extract_test_output("```python\nf(1) == 2\n```") == "f(1) == 2"
    assert extract_test_output("```\nx\n```\n```python\ny\n```") == "y"  # the python fence wins
    assert extract_test_output("The answer is 2.") == ""
    assert predicted_expression("assert f(1) == [1, 2]") == ("[1, 2]", None)
    assert predicted_expression("# assert f(0) == 0\nassert f(1) == 5\n") == ("5", None)
    assert predicted_expression("[1, 2]") == ("[1, 2]", None)  # no assert: the text itself
    assert predicted_expression("assert f(1) != 2")[1] == "the assertion is not an equality (==)"
    assert predicted_expression("assert f(1) ==")[1] == "the assertion does not parse"
    assert python_literal(json.loads('[true, null, {"a": 1.5}]')) == "[True, None, {'a': 1.5}]"


def test_testoutput_grading(testoutput: LiveCodeBenchTestOutput, sandbox: Any) -> None:
    tid = "3708_0"  # expected [1, 4]
    cases = {
        "literal": ("assert zigzagTraversal([[1, 2], [3, 4]]) == [1, 4]", "pass", ""),
        "bare value": ("[1, 4]", "pass", ""),
        "expression": ("assert zigzagTraversal([[1, 2], [3, 4]]) == [1] + [2 * 2]", "pass", ""),
        "wrong": ("assert zigzagTraversal([[1, 2], [3, 4]]) == [1, 3]", "fail", "predicted [1, 3], expected [1, 4]"),
        "tuple": ("assert zigzagTraversal([[1, 2], [3, 4]]) == (1, 4)", "fail", "predicted (1, 4)"),
        "wrong expression": ("assert f(0) == list(range(2))", "fail", "predicted [0, 1], expected [1, 4]"),
        "unparsable": ("assert zigzagTraversal([[1, 2]]) == [1,", "fail", "the assertion does not parse"),
        "not equality": ("assert zigzagTraversal([[1, 2]]) in [[1, 4]]", "fail", "not an equality"),
        "empty": ("", "fail", "no prediction"),
        "name error": ("zigzag", "fail", "does not evaluate: NameError: name 'zigzag' is not defined"),
        "too slow": ("sum(range(10 ** 12))", "timeout", "took over"),
    }
    testoutput.time_limit = 1.0
    try:
        verdicts = grade(testoutput, sandbox, [(tid, text) for text, _, _ in cases.values()])
    finally:
        testoutput.time_limit = 3.0
    got = {name: (v.status, why in reason(v)) for (name, (_, _, why)), v in zip(cases.items(), verdicts)}
    assert got == {name: (status, True) for name, (_, status, _) in cases.items()}, [reason(v) for v in verdicts]


def test_json_literals_of_the_dataset(testoutput: LiveCodeBenchTestOutput, sandbox: Any) -> None:
    boolean = next(t for t, p in testoutput.problems().items() if p.extra["output"] in ("true", "false"))
    right = python_literal(json.loads(testoutput.problems()[boolean].extra["output"]))
    ok, as_json = grade(testoutput, sandbox, [(boolean, f"assert f() == {right}"),
                                              (boolean, f"assert f() == {testoutput.problems()[boolean].extra['output']}")])  # fmt: skip
    assert ok.status == "pass"
    assert as_json.status == "fail" and "is not defined" in reason(as_json)  # JSON's true is not Python


def test_livecodebench_output_files_are_samples(testoutput: LiveCodeBenchTestOutput, tmp_path: Path) -> None:
    path = tmp_path / "lcb.json"
    path.write_text(json.dumps([{"question_id": "3708", "test_id": 0, "output_list": ["..."],
                                 "pred_list": ["assert f() == [1, 4]", "assert f() == 0"]}]))  # fmt: skip
    samples, bad = testoutput.load_samples(path)
    assert [(s.task_id, s.solution) for s in samples] == [("3708_0", "assert f() == [1, 4]"), ("3708_0", "assert f() == 0")]
    assert bad == []


# --------------------------------------------------------------- execution
def test_execution_prompts_are_livecodebenchs(execution: LiveCodeBenchExecution, folder: Path) -> None:
    problem = execution.problems()["sample_0"]
    direct = execution.prompt(problem, "instruct")
    assert direct.system == EXECUTION_SYSTEM and direct.stop == () and direct.response_prefix == ""
    text = direct.instruction or ""
    assert text.startswith("You are given a Python function and an assertion containing an input to the function.")
    assert "assert repeatNumber(number = 17) == 17\n[/ANSWER]" in text
    assert text.endswith("[PYTHON]\ndef addOne(x: int) -> int:\n    return x + 1\nassert addOne(x = 41) == ??\n"
                         "[/PYTHON]\n[ANSWER]\n")  # fmt: skip
    cot = LiveCodeBenchExecution(data_dir=folder, cot=True)
    text = cot.prompt(problem, "instruct").instruction or ""
    assert "Execute the program step by step before arriving at an answer" in text
    assert text.endswith("assert addOne(x = 41) == ??\n[/PYTHON]\n[THOUGHT]\n")
    assert cot.describe()["cot"] is True
    assert list(execution.problems()) == [f"sample_{k}" for k in range(len(EXECUTION_ITEMS))]


def test_execution_extraction(execution: LiveCodeBenchExecution) -> None:
    assert extract_execution("assert addOne(x = 41) == 42\n[/ANSWER]", cot=False) == "42"
    assert extract_execution("[THOUGHT]x == y[/THOUGHT]\n[ANSWER]\nassert f(1) == [1,\n 2]\n[/ANSWER]", cot=True) == (
        "[1,\n 2]")  # fmt: skip
    assert extract_execution("42\nmore text", cot=False) == "42"  # no [/ANSWER]: the first line
    problem = execution.problems()["sample_0"]
    base = execution.prompt(problem, "base")
    assert base.stop == ("[/ANSWER]",) and base.text == execution.prompt(problem, "instruct").instruction
    assert execution.sample(problem, "base", base, "assert addOne(x = 41) == 42\n") == {"solution": "42"}


def test_execution_grading(execution: LiveCodeBenchExecution, sandbox: Any) -> None:
    cases = [
        ("sample_0", "42", "pass", ""),
        ("sample_0", "41", "fail", "wrong prediction '41', expected 42"),
        ("sample_1", '"cba"', "pass", ""),
        ("sample_2", "[[0, 0], [1, 1], [2, 4]]", "pass", ""),
        ("sample_2", "[(0, 0), (1, 1), (2, 4)]", "fail", "wrong prediction"),
        ("sample_3", "2", "pass", ""),  # the code uses Counter and List from LiveCodeBench's imports
        ("sample_4", "0", "pass", ""),  # False == 0, as the assertion says
        ("sample_0", "addOne(x = 41)", "fail", "contains the call itself"),
        ("sample_0", "42 +", "fail", "the prediction does not parse"),
        ("sample_0", "exit()", "fail", "the check raised TypeError: 'NoneType' object is not callable"),
        ("sample_0", "__import__('sys').exit(0)", "fail", "the check raised RuntimeError: SystemExit(0)"),
        ("sample_5", "0 if spin(k = 0) == 0 else 1", "fail", "contains the call"),
        ("sample_5", "spin(k = 1)", "timeout", "took over 1 s of CPU"),
    ]
    verdicts = grade(execution, sandbox, [(t, p) for t, p, _, _ in cases])
    got = [(v.status, why in reason(v)) for (_, _, _, why), v in zip(cases, verdicts)]
    assert got == [(status, True) for _, _, status, _ in cases], [reason(v) for v in verdicts]


def test_livecodebench_pass_at_1_drops_filtered_predictions(folder: Path) -> None:
    bench = LiveCodeBenchExecution(data_dir=folder)
    problem = bench.problems()["sample_0"]
    prompt = bench.prompt(problem, "instruct")
    for reply in ("assert addOne(x = 41) == 42", "assert addOne(x = 41) == addOne(x = 41)"):
        bench.sample(problem, "instruct", prompt, reply)
    out = bench.breakdown({"sample_0": [True, False], "sample_1": [False, False]})
    # LiveCodeBench: sample_0 has 1 of 1 counted generations right; the harness's record says 1 of 2.
    assert out["livecodebench"]["pass@1"] == {"score": 0.5, "n": 2} and out["difficulty"]["easy"] == {"score": 0.5, "n": 1}
    assert bench.describe()["filtered_predictions"] == 1


def test_missing_data_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    with pytest.raises(HarnessError, match="livecodebench-execution/test-00000-of-00001.parquet"):
        LiveCodeBenchExecution(data_dir=tmp_path).problems()
    with pytest.raises(HarnessError, match="resolve/main/test.parquet"):
        LiveCodeBenchTestOutput(data_dir=tmp_path).problems()
    (tmp_path / "livecodebench-execution").mkdir()
    (tmp_path / "livecodebench-execution" / "bad.jsonl").write_text(json.dumps({"id": "sample_0", "code": "x"}) + "\n")
    with pytest.raises(HarnessError, match="lacks a string 'input'"):
        LiveCodeBenchExecution(data_dir=tmp_path).problems()


def test_parquet_files_as_published(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import datetime

    import pyarrow as pa

    rows = execution_rows()[:2]
    for row in rows:
        row["contest_date"] = datetime.datetime(2024, 1, 1, 0, 0)  # the published files hold timestamps
    (tmp_path / "livecodebench-execution").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "livecodebench-execution" / "test-00000-of-00001.parquet")
    bench = LiveCodeBenchExecution(data_dir=tmp_path)
    assert list(bench.problems()) == ["sample_0", "sample_1"]
    assert bench.problems()["sample_0"].extra["contest_date"] == "2024-01-01T00:00:00"
    info = bench.dataset()
    assert info.version == "execution-v2 main" and info.name == "LiveCodeBench execution"
