"""What a failing program returned: graders that judge outputs keep the input, the expected and the returned value.

The values are judged in the harness (never in the program's process), so the judge also keeps, for the first
failing inputs, bounded text of each: the run record carries them (``PartVerdict.details``), the verdict cache
keeps them, and the report site shows them. Run records also name the grader's version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.benchmark import DETAIL_CHARS, shown_text, shown_value
from harness.evaluation import evaluate_samples
from harness.execution import SandboxSettings, codec
from harness.store import load_run

SANDBOX = SandboxSettings(workers=2)
QUIET = {"echo": lambda _: None}

HUMANEVAL = [
    # HumanEval/0: has_close_elements; base input 0 expects True, input 1 False.
    {"task_id": "HumanEval/0", "solution": "def has_close_elements(numbers, threshold):\n    return True\n"},
    # HumanEval/2: truncate_number returns the number itself.
    {"task_id": "HumanEval/2", "solution": "def truncate_number(number):\n    return number\n"},
    # HumanEval/4 raises: no returned value, the reason says what it raised.
    {"task_id": "HumanEval/4", "solution": "def mean_absolute_deviation(numbers):\n    raise KeyError('boom')\n"},
    # HumanEval/7 returns a huge list: shown bounded, with its length.
    {"task_id": "HumanEval/7", "solution": "def filter_by_substring(strings, substring):\n"
                                           "    return list(range(100000))\n"},  # fmt: skip
    {"task_id": "HumanEval/12", "solution": "def longest(strings):\n    return None if not strings else "
                                            "max(strings, key=len)\n"},  # fmt: skip
]


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _first(record, tid: str) -> tuple[str, int, dict[str, str]]:  # type: ignore[no-untyped-def]
    verdict = record.tasks[tid].samples[0].verdict
    for suite, part in verdict.parts.items():
        if part.status != "pass":
            return suite, part.failed[0], part.details.get(part.failed[0], {})
    raise AssertionError(f"{tid} passed")


def test_shown_values_are_bounded_and_never_raise() -> None:
    assert shown_value([1, 2]) == "[1, 2]" and shown_value(None) == "None" and shown_value(True) == "True"
    big = shown_value(list(range(100_000)))
    assert big.startswith("[0, 1, 2") and big.endswith("(100,000 items)") and len(big) < 200
    assert shown_value(10**100_000).startswith("<int of ")  # its full text is refused past 4,300 digits
    assert len(shown_value("x" * 1_000_000)) < 200
    nested: list = []
    for _ in range(1000):
        nested = [nested]
    assert len(shown_value(nested)) < DETAIL_CHARS + 40
    foreign = codec.decode(codec.encode(type("Sneaky", (list,), {"__eq__": lambda s, o: True})([1, 2])))
    assert shown_value(foreign).endswith("Sneaky([1, 2])")  # a subclass is named, shown as its base value
    assert shown_text("a\nb") == "a\nb" and shown_text("y" * 5000).endswith("(5,000 characters)")


def test_humaneval_failures_record_input_expected_and_returned(data_dir: Path, tmp_path: Path) -> None:
    samples = _write(tmp_path / "samples.jsonl", HUMANEVAL)
    record = evaluate_samples("humaneval", samples, tmp_path / "out", data_dir=data_dir, sandbox_settings=SANDBOX,
                              **QUIET)  # fmt: skip
    suite, index, d = _first(record, "HumanEval/0")
    assert (suite, index) == ("base", 1)
    assert d == {"input": "has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05)", "expected": "False",
                 "returned": "True"}  # fmt: skip
    _, _, d = _first(record, "HumanEval/2")
    assert d["returned"] == "3.5" and d["expected"] == "0.5" and d["input"] == "truncate_number(3.5)"
    _, _, d = _first(record, "HumanEval/7")
    assert d["returned"].endswith("(100,000 items)") and len(d["returned"]) <= DETAIL_CHARS + 30
    # A raised exception is the reason, not a returned value.
    verdict = record.tasks["HumanEval/4"].samples[0].verdict
    assert not verdict.parts["base"].details and "KeyError" in (verdict.reason() or "")
    # A passing program has no details.
    parts = record.tasks["HumanEval/12"].samples[0].verdict.parts
    assert all(p.status == "pass" and not p.details for p in parts.values())
    # The run record on disk carries them (integer keys back), and names the grader.
    again = load_run(tmp_path / "out" / "run.json")
    assert _first(again, "HumanEval/0")[2] == _first(record, "HumanEval/0")[2]
    assert again.settings.grader_version is not None
    assert again.settings.grader_version.startswith("harness grader 4, humaneval rules 2 (EvalPlus 0.3.1)")
    # A second run takes every verdict from the verdict cache, details and all.
    second = evaluate_samples("humaneval", samples, tmp_path / "out2", data_dir=data_dir, sandbox_settings=SANDBOX,
                              **QUIET)  # fmt: skip
    assert second.timings.verdict_cache_hits == len(HUMANEVAL)
    assert _first(second, "HumanEval/2")[2] == _first(record, "HumanEval/2")[2]


def test_test_details_keeps_the_first_failing_inputs(data_dir: Path, tmp_path: Path) -> None:
    samples = _write(tmp_path / "samples.jsonl", HUMANEVAL[1:2])
    record = evaluate_samples("humaneval", samples, tmp_path / "out", data_dir=data_dir, sandbox_settings=SANDBOX,
                              test_details=True, use_verdict_cache=False, **QUIET)  # fmt: skip
    plus = record.tasks["HumanEval/2"].samples[0].verdict.parts["plus"]
    assert len(plus.failed) > 8
    assert sorted(plus.details) == plus.failed[:8]  # the first eight, whichever worker judged them first
    for i in plus.failed[:8]:
        assert plus.details[i]["input"].startswith("truncate_number(")


def test_livecodebench_failures_record_stdin_and_functional_values(data_dir: Path, tmp_path: Path) -> None:
    if not (data_dir / "livecodebench").is_dir():
        pytest.skip("no livecodebench folder in the data folder")
    day = "2025-01-04"
    rows = [
        {"task_id": "abc387_b", "solution": "X = int(input())\nprint(2024 - X - 1)\n"},
        {"task_id": "3684", "solution": "class Solution:\n    def hasMatch(self, s: str, p: str) -> bool:\n"
                                        "        return False\n"},  # fmt: skip
    ]
    samples = _write(tmp_path / "samples.jsonl", rows)
    record = evaluate_samples("livecodebench", samples, tmp_path / "out", data_dir=data_dir, sandbox_settings=SANDBOX,
                              bench_options={"start_date": day, "end_date": day}, **QUIET)  # fmt: skip
    _, index, d = _first(record, "abc387_b")
    assert index == 0 and d["input"].strip() == "1" and d["expected"].strip() == "2024"
    assert d["returned"].strip() == "2022"  # what the program printed, as text
    _, index, d = _first(record, "3684")
    assert d == {"input": '"leetcode"\n"ee*e"', "expected": "True", "returned": "False"}
    assert record.settings.grader_version and "LiveCodeBench" in record.settings.grader_version


def test_cruxeval_wrong_answers_record_the_call_the_expected_value_and_the_answer(data_dir: Path,
                                                                                   tmp_path: Path) -> None:  # fmt: skip
    if not (data_dir / "cruxeval" / "cruxeval.jsonl").is_file():
        pytest.skip("no CRUXEval data in the data folder")
    # sample_3: f('bcksrut', 'q') == 'bcksrutq'.
    out_samples = _write(tmp_path / "o.jsonl", [{"task_id": "sample_3", "solution": "'bcksrut'"},
                                                {"task_id": "sample_2", "solution": "undefined_name"}])  # fmt: skip
    record = evaluate_samples("cruxeval-o", out_samples, tmp_path / "o", data_dir=data_dir, sandbox_settings=SANDBOX,
                              **QUIET)  # fmt: skip
    _, index, d = _first(record, "sample_3")
    assert d == {"input": "f('bcksrut', 'q')", "answer": "'bcksrut'", "expected": "'bcksrutq'"}
    assert not record.tasks["sample_2"].samples[0].verdict.parts["base"].details  # it raised: the reason says so
    in_samples = _write(tmp_path / "i.jsonl", [{"task_id": "sample_3", "solution": "f('b', 'q')"}])
    record = evaluate_samples("cruxeval-i", in_samples, tmp_path / "i", data_dir=data_dir, sandbox_settings=SANDBOX,
                              **QUIET)  # fmt: skip
    assert _first(record, "sample_3")[2] == {"input": "f('b', 'q')", "expected": "'bcksrutq'"}
