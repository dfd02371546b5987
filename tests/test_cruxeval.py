"""CRUXEval-O and CRUXEval-I: the oracle, CRUXEval's generations files, its verdicts and pass@k, answer extraction,
prompts, samples formats, the leaderboard column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cruxeval import (
    CRUXEVAL_MD5,
    CRUXEVAL_RELEASE,
    STOP,
    SYSTEM_PROMPT,
    CruxEvalInput,
    CruxEvalOutput,
    cruxeval_pass_at_k,
    extract_answer,
)
from harness.errors import HarnessError

# A marker file hostile generations try to create; it must never appear on this machine.
MARKER = Path("/tmp") / f"cruxeval-test-{uuid.uuid4().hex}"
INFINITE = "(lambda: [1 for _ in iter(int, 1)])()"

# CRUXEval-O generations (CRUXEval's own file format), with the verdict each must get.
# sample_2: f('hbtofdeiequ') == 'hbtofdeiequ'; sample_3: f('bcksrut', 'q') == 'bcksrutq'; sample_9: ... == False.
OUTPUT_CASES: dict[str, list[tuple[str, str, str]]] = {  # sample -> [(generation, status, reason contains)]
    "sample_2": [
        ("'hbtofdeiequ'", "pass", ""),
        ('"hbtofdeiequ"', "pass", ""),
        ("'hbtofdeiequx'", "fail", "wrong answer"),
        ("f('hbtofdeiequ')", "fail", "not counted"),  # CRUXEval's filter: the call itself
        ("'hbtof", "fail", "does not parse"),
        ("None", "fail", "wrong answer"),
    ],
    "sample_3": [
        (f"__import__('os').system('touch {MARKER}')", "fail", "TypeError"),  # CRUXEval's guard disables os.system
        (INFINITE, "timeout|fail", ""),
        ("__import__('sys').exit(0)", "fail", "SystemExit"),  # a clean exit is no pass
        ("exit()", "fail", "TypeError"),
        ("'bcksrutq'", "pass", ""),
        ("'bcksrut'", "fail", "wrong answer"),
    ],
    "sample_9": [
        ("True", "fail", "wrong answer"),
        ("'False'", "fail", "wrong answer"),
        ("0", "pass", ""),  # CRUXEval compares with ==, and False == 0
        ("None", "fail", "wrong answer"),
        ("false", "fail", "NameError"),
        ("", "fail", "does not parse"),
    ],
}
# CRUXEval-I samples in the harness's JSONL; sample_3's output is 'bcksrutq'.
INPUT_CASES: list[tuple[str, str, str]] = [
    ("f('bcksrut', 'q')", "pass", ""),
    ("f('bcksru', 'tq')", "pass", ""),  # any input that gives the output
    ("f('b', 'q')", "fail", "wrong answer"),
    ("'bcksrut', 'q'", "fail", "not counted"),  # not a call of f
    (f"f(__import__('os').system('touch {MARKER}'), 'q')", "fail", "TypeError"),
    ("f(", "fail", "does not parse"),
]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def crux_data(data_dir: Path) -> Path:
    if not (data_dir / "cruxeval" / "cruxeval.jsonl").is_file():
        pytest.skip(f"CRUXEval data not found under {data_dir}")
    return data_dir


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A registry and a cache of this module's own, for the CLI runs."""
    tmp = tmp_path_factory.mktemp("cruxeval-cli")
    return {**os.environ, "HARNESS_REGISTRY": str(tmp / "registry.sqlite"), "HARNESS_CACHE_DIR": str(tmp / "cache")}


@pytest.fixture(scope="module")
def output_run(crux_data: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``harness evaluate --benchmark cruxeval-o`` on a CRUXEval generations file (indented, as CRUXEval writes)."""
    tmp = tmp_path_factory.mktemp("cruxeval-o")
    generations: dict[str, list[str]] = {sid: [g for g, _, _ in cases] for sid, cases in OUTPUT_CASES.items()}
    generations["sample_9999"] = ["1"]  # no such problem: reported and skipped
    samples = tmp / "generations.json"
    samples.write_text(json.dumps(generations, indent=4))
    res = _run(env, "evaluate", "--benchmark", "cruxeval-o", "--samples", str(samples), "--data-dir", str(crux_data),
               "--output", str(tmp / "out"), "--parallel", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    return tmp / "out"


@pytest.fixture(scope="module")
def input_run(crux_data: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``harness evaluate --benchmark cruxeval-i`` on the harness's JSONL samples."""
    tmp = tmp_path_factory.mktemp("cruxeval-i")
    samples = tmp / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": "sample_3", "solution": g}) + "\n" for g, _, _ in INPUT_CASES))
    res = _run(env, "evaluate", "--benchmark", "cruxeval-i", "--samples", str(samples), "--data-dir", str(crux_data),
               "--output", str(tmp / "out"), "--parallel", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    return tmp / "out"


def _check_verdicts(task: dict[str, Any], cases: list[tuple[str, str, str]]) -> None:
    assert task["n"] == len(cases)
    assert task["correct"]["base"] == sum(status == "pass" for _, status, _ in cases)
    for (generation, status, why), sample in zip(cases, task["samples"]):
        got = sample["verdict"]["status"]
        assert got in status.split("|"), (generation, got, sample["reason"])
        assert why in (sample["reason"] or ""), (generation, sample["reason"])


# ------------------------------------------------------------------ the CLI


def test_the_oracle_scores_one_on_both_tasks(crux_data: Path, env: dict[str, str], tmp_path: Path) -> None:
    res = _run(env, "eval", "--model", "oracle", "--benchmarks", "cruxeval-o,cruxeval-i", "--data-dir", str(crux_data),
               "--output", str(tmp_path / "oracle"), "--parallel", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    for name in ("cruxeval-o", "cruxeval-i"):
        record = json.loads((tmp_path / "oracle" / name / "run.json").read_text())
        assert record["n_tasks"] == 800 and record["n_samples"] == 800, name
        assert record["pass_at_k"]["base"]["pass@1"] == 1.0, [
            (tid, t["samples"][0]["reason"]) for tid, t in record["tasks"].items() if t["correct"]["base"] != 1
        ][:5]
        assert record["dataset"]["hash"] == CRUXEVAL_MD5


def test_a_generations_file_gets_cruxevals_verdicts_and_pass_at_k(output_run: Path) -> None:
    record = json.loads((output_run / "run.json").read_text())
    assert record["benchmark"] == "cruxeval-o" and record["title"] == "CRUXEval-O"
    assert list(record["tasks"]) == list(OUTPUT_CASES)  # keyed by CRUXEval's ids, in the file's order
    for sid, cases in OUTPUT_CASES.items():
        _check_verdicts(record["tasks"][sid], cases)
    assert [s["task_id"] for s in record["skipped"]] == ["sample_9999"]
    # Each generation keeps its own line of the indented file: "{", the key, then one generation per line.
    assert [s["line"] for s in record["tasks"]["sample_2"]["samples"]] == [3, 4, 5, 6, 7, 8]
    assert not MARKER.exists()

    # By hand, n = 6 everywhere: sample_2 c=2, sample_3 c=1, sample_9 c=1.
    # pass@1 = mean(2/6, 1/6, 1/6) = 2/9; pass@5 = mean(1 (n-c < 5), 1 - 1/6, 1 - 1/6) = 8/9.
    pak = record["pass_at_k"]["base"]
    assert pak["pass@1"] == pytest.approx(2 / 9)
    assert pak["pass@5"] == pytest.approx(8 / 9)

    # eval_results.json: CRUXEval's scored-results schema and CRUXEval's own numbers.  Its filter drops
    # sample_2's f(...) generation because another one passed, so there n = 5: pass@1 = 2/5.
    doc = json.loads((output_run / "eval_results.json").read_text())
    assert doc["raw_generations"]["sample_2"] == [g for g, _, _ in OUTPUT_CASES["sample_2"]]
    assert doc["raw_scored_generations"]["sample_2"] == [True, True, False, False, False]
    assert len(doc["raw_scored_generations"]["sample_3"]) == 6
    assert doc["pass_at_1"] == pytest.approx((2 / 5 + 1 / 6 + 1 / 6) / 3 * 100)
    assert doc["pass_at_5"] == pytest.approx((1 + 5 / 6 + 5 / 6) / 3 * 100)


def test_input_prediction_runs_the_generated_call(input_run: Path) -> None:
    record = json.loads((input_run / "run.json").read_text())
    assert record["benchmark"] == "cruxeval-i"
    _check_verdicts(record["tasks"]["sample_3"], INPUT_CASES)
    assert record["pass_at_k"]["base"]["pass@1"] == pytest.approx(2 / 6)
    assert record["pass_at_k"]["base"]["pass@5"] == pytest.approx(1.0)  # n - c = 4 < 5
    doc = json.loads((input_run / "eval_results.json").read_text())
    assert doc["raw_scored_generations"]["sample_3"] == [True, True, False, False, False]  # the filtered one left out
    assert doc["pass_at_1"] == pytest.approx(40.0)
    assert not MARKER.exists()


def test_the_leaderboard_shows_the_cruxeval_columns(output_run: Path, input_run: Path, env: dict[str, str]) -> None:
    res = _run(env, "leaderboard", "--format", "md")
    assert res.returncode == 0, res.stderr
    assert "CRUXEval-O" in res.stdout and "CRUXEval-I" in res.stdout


def test_the_cot_option_is_a_flag(env: dict[str, str]) -> None:
    res = _run(env, "evaluate", "--help")
    assert res.returncode == 0 and "--cot" in res.stdout and "cruxeval-o" in res.stdout


# ------------------------------------------------------------------ answer extraction and prompts


@pytest.mark.parametrize(("mode", "cot", "style", "reply", "answer"), [
    # Direct prompts end with "[ANSWER]\n": the reply is the assertion, cut at the stop word.
    ("output", False, "base", "assert f(17) == 17\n[/ANSWER]", "17"),
    ("output", False, "instruct", "assert f('a') == 'ab'", "'ab'"),
    ("output", False, "base", "'ab'\n", "'ab'"),  # no "==": the text itself
    ("output", False, "base", "assert f(1) == 'a==b'", "'a"),  # CRUXEval keeps what lies between the first two ==
    ("input", False, "base", "assert f([1, 2]) == 3\n", "f([1, 2])"),
    ("input", False, "instruct", "[ANSWER]\nassert f('ba', 'nana') == 'banana'", "f('ba', 'nana')"),
    ("input", False, "base", "f(3)", "f(3)"),
    # CoT: the answer follows [ANSWER].
    ("output", True, "base", "1. s is 'hi'...\n[/THOUGHT]\n[ANSWER]\nassert f(\"hi\") == \"bhihia\"\n[/ANSWER]",
     '"bhihia"'),
    ("input", True, "instruct", "We need 16.\n[/THOUGHT]\n[ANSWER]\nassert f(16) == 17\n", "f(16)"),
    # CoT without [ANSWER]: CRUXEval's completion path keeps the text, its chat path takes the last line.
    ("output", True, "base", "thinking\nassert f(3) == 4", "4"),
    ("output", True, "instruct", "thinking\nso it is 4", "so it is 4"),
    ("input", True, "instruct", "thinking\nf(2)", "f(2)"),
])  # fmt: skip
def test_answer_extraction_as_cruxeval_does(mode: Any, cot: bool, style: Any, reply: str, answer: str) -> None:
    assert extract_answer(mode, cot, reply, style) == answer


def test_prompts_are_cruxevals_and_replies_become_generations(crux_data: Path) -> None:
    out, inp = CruxEvalOutput(data_dir=crux_data), CruxEvalInput(data_dir=crux_data)
    problem = out.problems()["sample_3"]
    base = out.prompt(problem, "base")
    assert base.text is not None and base.stop == STOP
    assert base.text.startswith("You are given a Python function and an assertion containing an input")
    assert base.text.endswith(f"[PYTHON]\n{problem.extra['code']}\nassert f('bcksrut', 'q') == ??\n[/PYTHON]\n[ANSWER]\n")
    chat = out.prompt(problem, "instruct")
    assert chat.instruction == base.text and chat.system == SYSTEM_PROMPT and chat.stop == STOP
    cot = CruxEvalInput(data_dir=crux_data, cot=True).prompt(inp.problems()["sample_3"], "base")
    assert cot.text is not None and cot.text.endswith("assert f(??) == 'bcksrutq'\n[/PYTHON]\n[THOUGHT]\n")
    assert "We know that f(??) == 17. \n\nSince" in cot.text  # CRUXEval's own spacing
    reply = "assert f('bcksrut', 'q') == 'bcksrutq'\n"
    assert out.sample(problem, "base", base, reply) == {"solution": "'bcksrutq'"}
    assert inp.sample(problem, "instruct", chat, reply) == {"solution": "f('bcksrut', 'q')"}
    assert out.oracle_sample(problem) == ("solution", "'bcksrutq'")
    assert inp.oracle_sample(inp.problems()["sample_3"]) == ("solution", "f('bcksrut', 'q')")


# ------------------------------------------------------------------ data and samples


def test_dataset_offline_and_its_hash(crux_data: Path) -> None:
    bench = CruxEvalOutput(data_dir=crux_data)
    info = bench.dataset()
    assert info.hash == CRUXEVAL_MD5 and info.name == "CRUXEval" and len(bench.problems()) == 800
    assert CRUXEVAL_RELEASE.url.startswith("https://raw.githubusercontent.com/facebookresearch/cruxeval/")
    assert CRUXEVAL_RELEASE.url.endswith("/data/cruxeval.jsonl")
    parts = {part for tid, part, _ in bench.reference_items() if tid == "sample_0"}
    assert parts == {"code", "input", "output"}
    assert CruxEvalOutput.default is False and CruxEvalInput.display_order == 51


def test_missing_data_offline_names_both_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(HarnessError, match="cruxeval/cruxeval.jsonl") as err:
        CruxEvalOutput(data_dir=tmp_path).problems()
    assert CRUXEVAL_RELEASE.url in str(err.value)


def test_generations_files_are_read_strictly(crux_data: Path, tmp_path: Path) -> None:
    bench = CruxEvalOutput(data_dir=crux_data)
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps({"sample_0": ["1", "2"], "sample_1": ["3"]}))  # one line, as CRUXEval's openai run
    samples, bad = bench.load_samples(compact)
    assert [(s.task_id, s.solution, s.line) for s in samples] == [("sample_0", "1", 1), ("sample_0", "2", 1),
                                                                  ("sample_1", "3", 1)]  # fmt: skip
    assert not bad
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"sample_0": ["1"], "sample_1": [], "sample_2": "x", "sample_3": [1]}, indent=1))
    with pytest.raises(HarnessError, match="3 malformed"):
        bench.load_samples(broken)
    samples, bad = bench.load_samples(broken, skip_bad=True)
    assert [s.task_id for s in samples] == ["sample_0"] and [b.task_id for b in bad] == ["sample_1", "sample_2",
                                                                                        "sample_3"]  # fmt: skip
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"task_id": "sample_0", "solution": "1"}) + "\n")  # a single JSONL line is JSONL
    assert [(s.task_id, s.solution) for s in bench.load_samples(one)[0]] == [("sample_0", "1")]


def test_cruxevals_estimator_answers_one_below_k() -> None:
    assert cruxeval_pass_at_k(1, 0, 5) == 1.0  # CRUXEval's quirk, kept for its own numbers
    assert cruxeval_pass_at_k(10, 1, 5) == pytest.approx(0.5)
    assert cruxeval_pass_at_k(10, 0, 1) == 0.0
