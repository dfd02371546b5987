"""LiveCodeBench: loading and selection, safe private tests, LiveCodeBench's grading rules, samples, prompts, CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from benchmarks.livecodebench import (
    NOTE_NO_PRIVATE,
    SYSTEM_MESSAGE,
    LiveCodeBench,
    compare_return,
    compare_stdout,
    decode_private,
    release_files,
)
from harness.benchmark import GradeOptions, Verdict
from harness.errors import HarnessError
from harness.store import load_run
from tests.test_cli import harness

DAY = "2025-01-04"  # abc387_b (stdin, 00:00), 3684 (functional, 06:30), 3702 (functional, 18:30) and 8 more

NINE_BY_NINE = "X = int(input())\nprint(sum(i * j for i in range(1, 10) for j in range(1, 10) if i * j != X))\n"
# Passes the three public tests of abc387_b by heart; a private test catches it.
BY_HEART = "X = int(input())\nprint({1: 2024, 11: 2025, 24: 1929}[X])\n"
MAX_LENGTH = """\
class Solution:
    def maxLength(self, nums: List[int]) -> int:
        best = 0
        for i in range(len(nums)):
            prod, g, l = 1, 0, 1
            for j in range(i, len(nums)):
                prod *= nums[j]
                g, l = gcd(g, nums[j]), lcm(l, nums[j])
                if prod == g * l:
                    best = max(best, j - i + 1)
        return best
"""
HAS_MATCH = """\
class Solution:
    def hasMatch(self, s: str, p: str) -> bool:
        left, right = p.split("*")
        i = s.find(left)
        return i >= 0 and s.find(right, i + len(left)) >= 0
"""


@pytest.fixture(scope="module")
def lcb_dir(data_dir: Path) -> Path:
    if not (data_dir / "livecodebench").is_dir():
        pytest.skip("no livecodebench folder in the data folder")
    return data_dir


@pytest.fixture(scope="module")
def day(lcb_dir: Path) -> LiveCodeBench:
    """The problems of one contest day, with a short time limit (tests only need a second)."""
    bench = LiveCodeBench(data_dir=lcb_dir, start_date=DAY, end_date=DAY)
    bench.time_limit = 1.0
    return bench


def grade(bench: LiveCodeBench, sandbox: Any, pairs: list[tuple[str, str]], **options: Any) -> list[Verdict]:
    problems = bench.problems()
    programs = [(tid, bench.program(problems[tid], code, None)) for tid, code in pairs]
    return bench.grade(sandbox, programs, GradeOptions(**options))


def reason(verdict: Verdict) -> str:
    return " | ".join(verdict.parts["base"].reasons.values())


def public_row(lcb_dir: Path, qid: str) -> dict[str, Any]:
    for line in (lcb_dir / "livecodebench" / "problems-v5v6-public.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["question_id"] == qid:
            return row
    raise AssertionError(qid)


def write_dataset(folder: Path, rows: list[dict[str, Any]], name: str = "mine.jsonl") -> Path:
    (folder / "livecodebench").mkdir(parents=True, exist_ok=True)
    path = folder / "livecodebench" / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def packed(obj: Any) -> str:
    """LiveCodeBench's private-test encoding: base64(zlib(pickle(...)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(obj))).decode()


# ---------------------------------------------------------------- grading
def test_correct_programs_pass_and_wrong_ones_fail(day: LiveCodeBench, sandbox: Any) -> None:
    verdicts = grade(day, sandbox, [
        ("abc387_b", NINE_BY_NINE),
        ("abc387_b", "print(2025)\n"),
        ("3702", MAX_LENGTH),
        ("3702", MAX_LENGTH.replace("best = max(best, j - i + 1)", "best = max(best, j - i)")),
        ("3684", HAS_MATCH),
        ("3684", "```python\n" + HAS_MATCH + "```\nThat is all."),  # fenced code is extracted
    ])  # fmt: skip
    assert [v.status for v in verdicts] == ["pass", "fail", "pass", "fail", "pass", "pass"]
    assert verdicts[1].parts["base"].failed == [0]
    assert reason(verdicts[1]) == "wrong answer on test 0 (public): line 1: got '2025', expected '2024'"
    assert reason(verdicts[3]) == "wrong answer on test 0 (public): returned 4, expected 5"


def test_stdin_is_fed_every_way_and_exit_ends_a_test(day: LiveCodeBench, sandbox: Any) -> None:
    tail = "print(sum(i * j for i in range(1, 10) for j in range(1, 10) if i * j != X))\n"
    programs = {
        "input": NINE_BY_NINE,
        "read": "import sys\nX = int(sys.stdin.read())\n" + tail,
        "readline": "import sys\nX = int(sys.stdin.readline())\n" + tail,
        "iterate": "import sys\nfor line in sys.stdin:\n    X = int(line)\n" + tail,
        "main guard": "def main():\n    X = int(input())\n    " + tail + "if __name__ == '__main__':\n    main()\n",
        "exit": "X = int(input())\n" + tail + "exit()\nprint('never')\n",
        "sys.exit(3)": "import sys\nX = int(input())\n" + tail + "sys.exit(3)\nprint('never')\n",
        "write": "import sys\nX = int(input())\nsys.stdout.write(str(sum(i * j for i in range(1, 10) "
                 "for j in range(1, 10) if i * j != X)))\n",
    }
    verdicts = grade(day, sandbox, [("abc387_b", code) for code in programs.values()])
    statuses = dict(zip(programs, (v.status for v in verdicts)))
    assert statuses == {name: "pass" for name in programs}, [reason(v) for v in verdicts]


def test_whitespace_rule() -> None:
    # Both sides stripped, split on "\n", each line stripped: trailing spaces, blank tails and \r\n do not matter.
    assert compare_stdout("1 2 3   \n\n\n", "1 2 3")[0]
    assert compare_stdout("  a b\r\nc\r\n", "a b\nc")[0]
    assert compare_stdout("a\nb\n", "a\r\nb\r\n")[0]
    # ...but the count of lines does, blank lines inside included, and so does spacing inside a line.
    assert compare_stdout("a\n\nb", "a\nb") == (False, "3 output line(s), expected 2")
    assert not compare_stdout("a  b", "a b")[0]
    assert compare_stdout("", "")[0]


def test_numeric_rule_is_exact_decimal_equality() -> None:
    # LiveCodeBench compares the tokens of unequal lines as Decimal: equal values pass, nothing else does.
    assert compare_stdout("1.0", "1.00000")[0]
    assert compare_stdout("1 2.50", "1.0 2.5")[0]
    assert compare_stdout("1e2", "100")[0]
    assert compare_stdout("-0", "0")[0]
    assert not compare_stdout("0.1", "0.10000001")[0]  # no tolerance
    assert not compare_stdout("0.3333333333", "0.33333333333")[0]
    assert not compare_stdout("Yes 1.0", "Yes 1")[0]  # a word on the line: no numeric reading
    assert not compare_stdout("1 2", "1 2 3")[0]
    assert compare_stdout("Yes", "Yes")[0]
    assert compare_stdout("1.0\n2", "1\n2.0")[0]


def test_functional_rule_tuples_become_lists_at_the_top_only() -> None:
    assert compare_return((1, 2), [1, 2])
    assert not compare_return([(1, 2)], [[1, 2]])
    assert compare_return(True, True) and compare_return(1.0, 1)
    assert not compare_return("1", 1)


def test_returned_tuples_count_as_lists(lcb_dir: Path, sandbox: Any) -> None:
    bench = LiveCodeBench(data_dir=lcb_dir, start_date="2025-03-01", end_date="2025-03-01", platform="leetcode")
    body = "class Solution:\n    def transformArray(self, nums):\n        return {}\n"
    verdicts = grade(bench, sandbox, [
        ("3778", body.format("tuple(sorted(x % 2 for x in nums))")),
        ("3778", body.format("sorted(x % 2 for x in nums)")),
        ("3778", body.format("[tuple(sorted(x % 2 for x in nums))]")),  # only the top level is converted
        ("3778", body.format("set(x % 2 for x in nums)")),
    ])  # fmt: skip
    assert [v.status for v in verdicts] == ["pass", "pass", "fail", "fail"]


def test_timeout_is_a_timeout_verdict_within_the_limit(day: LiveCodeBench, sandbox: Any) -> None:
    start = time.monotonic()
    verdicts = grade(day, sandbox, [
        ("3702", "class Solution:\n    def maxLength(self, nums):\n        while True:\n            pass\n"),
        ("abc387_b", "while True:\n    pass\n"),
    ])  # fmt: skip
    assert time.monotonic() - start < 15
    for v in verdicts:
        assert v.status == "timeout"
        assert v.parts["base"].failed == [0]
        assert reason(v) == "timeout on test 0 (public): over 1 s of CPU"


def test_extra_output_lines_fail(day: LiveCodeBench, sandbox: Any) -> None:
    (v,) = grade(day, sandbox, [("abc387_b", NINE_BY_NINE + "print()\nprint('debug')\n")])
    assert v.status == "fail"
    assert reason(v) == "wrong answer on test 0 (public): 3 output line(s), expected 1"


def test_wrong_method_or_missing_class_fails_with_a_clear_reason(day: LiveCodeBench, sandbox: Any) -> None:
    verdicts = grade(day, sandbox, [
        ("3702", MAX_LENGTH.replace("def maxLength", "def max_length")),
        ("3702", "def helper():\n    return 1\n"),
        ("3702", "def maxLength(nums):\n    return 5\n"),  # LiveCodeBench calls a module function without the class
        ("3702", "class Solution:\n    def maxLength(self, nums):\n        raise ValueError('no idea')\n"),
    ])  # fmt: skip
    assert [v.status for v in verdicts[:2]] == ["fail", "fail"]
    assert "class Solution has no method 'maxLength'" in reason(verdicts[0])
    assert "defines neither class Solution nor a function 'maxLength'" in reason(verdicts[1])
    assert verdicts[2].parts["base"].failed == [1]
    assert reason(verdicts[3]) == "test 0 (public) raised ValueError: no idea"


def test_syntax_error_fails_at_load(day: LiveCodeBench, sandbox: Any) -> None:
    (v,) = grade(day, sandbox, [("abc387_b", "def (:\n")])
    assert v.status == "fail" and "program failed to load: SyntaxError" in reason(v)


# ---------------------------------------------------------- private tests
def test_hostile_pickle_is_refused_and_never_runs(lcb_dir: Path, tmp_path: Path, sandbox: Any) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return os.system, (f"touch {marker}",)

    row = public_row(lcb_dir, "abc387_b") | {"private_test_cases": packed(Payload())}
    bench = LiveCodeBench(data_dir=write_dataset(tmp_path / "data", [row]))
    assert bench.describe()["private_tests"] is True and bench.notes() == []
    with pytest.raises(HarnessError, match="abc387_b: refused: the private test field holds pickled objects other"):
        grade(bench, sandbox, [("abc387_b", NINE_BY_NINE)])
    with pytest.raises(HarnessError, match="refused"):
        decode_private(packed(Payload()), "q1")
    assert not marker.exists()
    # No global at all, but not a string either: refused as well.
    with pytest.raises(HarnessError, match="other than a string \\(a list\\)"):
        decode_private(packed([{"input": "1", "output": "2"}]), "q2")


def test_private_fields_decode_and_are_graded(lcb_dir: Path, tmp_path: Path, sandbox: Any) -> None:
    private = [{"input": "81", "output": "1944", "testtype": "stdin"}]
    assert decode_private(json.dumps(private), "q") == private  # some rows hold plain JSON
    assert decode_private(packed(json.dumps(private)), "q") == private  # pickled string
    assert decode_private(packed(json.dumps(private).encode()), "q") == private  # pickled bytes
    assert decode_private("", "q") == [] and decode_private(None, "q") == []
    with pytest.raises(HarnessError, match="neither JSON nor base64"):
        decode_private("not-base64-%%%", "q")
    row = public_row(lcb_dir, "abc387_b") | {"private_test_cases": packed(json.dumps(private))}
    bench = LiveCodeBench(data_dir=write_dataset(tmp_path, [row]))
    tests = bench.test_cases("abc387_b")
    assert [t.public for t in tests] == [True, True, True, False]
    right, by_heart = grade(bench, sandbox, [("abc387_b", NINE_BY_NINE), ("abc387_b", BY_HEART)])
    assert right.status == "pass"
    assert by_heart.status == "fail" and by_heart.parts["base"].failed == [3]
    assert reason(by_heart).startswith("test 3 (private) raised KeyError")
    assert bench.describe()["private_tests"] is True and bench.notes() == []


# --------------------------------------------------------- data, selection
def test_public_file_loads_with_its_hash_and_the_note(lcb_dir: Path) -> None:
    bench = LiveCodeBench(data_dir=lcb_dir)
    path = lcb_dir / "livecodebench" / "problems-v5v6-public.jsonl"
    info = bench.dataset()
    assert (info.name, info.version) == ("LiveCodeBench", "problems-v5v6-public.jsonl")
    assert info.hash == hashlib.md5(path.read_bytes()).hexdigest()
    assert len(bench.problems()) == 342
    described = bench.describe()
    assert described["private_tests"] is False
    assert (described["first_contest_date"], described["last_contest_date"]) == ("2024-09-22", "2025-04-06")
    assert bench.notes() == [NOTE_NO_PRIVATE]
    problem = bench.problems()["3702"]
    assert problem.entry_point == "maxLength" and problem.extra["platform"] == "leetcode"


def test_date_window_includes_the_whole_end_day(lcb_dir: Path) -> None:
    # 3708 is a LeetCode problem of 2025-01-11 at 18:30: an end date of 2025-01-11 includes it.
    ids = set(LiveCodeBench(data_dir=lcb_dir, start_date="2025-01-11", end_date="2025-01-11").problems())
    assert "3708" in ids and len(ids) == 11
    later = LiveCodeBench(data_dir=lcb_dir, start_date="2025-01-12", end_date="2025-01-12")
    assert "3708" not in later.problems() and len(later.problems()) == 3
    described = LiveCodeBench(data_dir=lcb_dir, end_date="2024-10-05").describe()
    assert described["end_date"] == "2024-10-05" and described["start_date"] is None
    assert (described["problems"], described["last_contest_date"]) == (10, "2024-10-05")


def test_platform_and_difficulty_filters(lcb_dir: Path) -> None:
    bench = LiveCodeBench(data_dir=lcb_dir, start_date=DAY, end_date=DAY, platform="leetcode", difficulty="Easy")
    assert set(bench.problems()) == {"3702", "3684"}
    assert bench.describe()["platform"] == "leetcode" and bench.describe()["difficulty"] == "easy"
    assert len(LiveCodeBench(data_dir=lcb_dir, platform="atcoder,leetcode").problems()) == 342


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start_date": "2025-13-01"}, "--start-date must be a date as YYYY-MM-DD"),
        ({"end_date": "yesterday"}, "--end-date must be a date as YYYY-MM-DD"),
        ({"start_date": "2025-02-01", "end_date": "2025-01-01"}, "is after --end-date"),
        ({"platform": "topcoder"}, "--platform: unknown 'topcoder'"),
        ({"difficulty": "brutal"}, "--difficulty: unknown 'brutal'"),
        ({"release": "release_v9"}, "unknown LiveCodeBench release 'release_v9'"),
    ],
)
def test_bad_options_are_clear_errors(lcb_dir: Path, options: dict[str, str], message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        LiveCodeBench(data_dir=lcb_dir, **options)


def test_empty_selection_is_a_clear_error(lcb_dir: Path) -> None:
    bench = LiveCodeBench(data_dir=lcb_dir, start_date="2023-01-01", end_date="2023-02-01")
    with pytest.raises(HarnessError, match="no LiveCodeBench problem matches .* contest dates 2024-09-22 to 2025-04-06"):
        bench.problems()


def test_releases_map_to_official_files(tmp_path: Path, lcb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert release_files("release_v1") == ["test.jsonl"]
    assert release_files("release_v3") == ["test.jsonl", "test2.jsonl", "test3.jsonl"]
    assert release_files("v1") == ["test.jsonl"] and release_files("v6") == ["test6.jsonl"]
    assert release_files("v5_v6") == ["test5.jsonl", "test6.jsonl"]
    assert len(release_files("release_latest")) == 6
    # A release is looked up file by file in the data folder (then the cache, then Hugging Face).
    folder = write_dataset(tmp_path, [public_row(lcb_dir, "abc387_b")], name="test5.jsonl")
    bench = LiveCodeBench(data_dir=folder, release="v5")
    assert bench.dataset().version == "v5" and list(bench.problems()) == ["abc387_b"]
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    with pytest.raises(HarnessError, match="resolve/main/test.jsonl"):
        LiveCodeBench(data_dir=folder, release="release_v1").problems()


def test_breakdown_by_difficulty_and_platform(day: LiveCodeBench) -> None:
    out = day.breakdown({"abc387_b": [True, False], "3702": [True], "3684": [False]})
    assert out["difficulty"] == {"easy": {"score": 0.5, "n": 3}}
    assert out["platform"] == {"leetcode": {"score": 0.5, "n": 2}, "atcoder": {"score": 0.5, "n": 1}}


# ----------------------------------------------------------------- samples
def test_sample_formats_and_line_numbers(day: LiveCodeBench, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join([
        json.dumps({"task_id": "abc387_b", "solution": "a"}),
        json.dumps({"question_id": "3702", "code": "b"}),
        json.dumps({"question_id": "3684", "code_list": ["c", "d"]}),
        json.dumps({"question_id": "3708", "code": "outside the day"}),
    ]) + "\n")  # fmt: skip
    samples, bad = day.load_samples(path)
    assert [(s.line, s.task_id, s.solution) for s in samples] == [
        (1, "abc387_b", "a"), (2, "3702", "b"), (3, "3684", "c"), (3, "3684", "d")
    ]  # fmt: skip
    assert bad == [] and day.describe()["samples_outside_selection"] == 1
    # LiveCodeBench's own output file: a JSON array of rows with code_list.
    (tmp_path / "lcb.json").write_text(json.dumps([{"question_id": "abc387_b", "code_list": ["x", "y"]}]))
    assert [s.solution for s in day.load_samples(tmp_path / "lcb.json")[0]] == ["x", "y"]
    path.write_text('{"question_id": "3702", "code": "ok"}\nnot json\n{"question_id": "3702"}\n'
                    '{"question_id": "3702", "code_list": "nope"}\n')  # fmt: skip
    with pytest.raises(HarnessError, match="4 malformed line|3 malformed line") as err:
        day.load_samples(path)
    assert "line 2: not valid JSON" in str(err.value) and "line 3: has none of" in str(err.value)
    samples, bad = day.load_samples(path, skip_bad=True)
    assert len(samples) == 1 and [b.line for b in bad] == [2, 3, 4]


# ---------------------------------------------------------------- prompts
def test_prompts_follow_livecodebench(day: LiveCodeBench) -> None:
    problems = day.problems()
    functional = day.prompt(problems["3702"], "instruct")
    assert functional.system == SYSTEM_MESSAGE and functional.response_prefix == "```python\n"
    assert functional.stop == ("\n```",)
    assert functional.instruction is not None and functional.instruction.startswith("### Question:\nYou are given")
    assert "### Format: You will use the following starter code" in functional.instruction
    assert "```python\nclass Solution:\n    def maxLength" in functional.instruction
    assert functional.instruction.endswith("### Answer: (use the provided format with backticks)\n\n")
    stdin = day.prompt(problems["abc387_b"], "instruct")
    assert "### Format: Read the inputs from stdin solve the problem" in (stdin.instruction or "")
    assert "```python\n# YOUR CODE HERE\n```" in (stdin.instruction or "")
    base = day.prompt(problems["3702"], "base")
    assert base.text is not None and base.text.startswith("### Question\n")
    assert "### Starter Code\nclass Solution:" in base.text and base.text.endswith("### Answer\n\n")
    assert base.stop == ("###",)
    reply = "X = int(input())\nprint(X)\n```\nExplanation..."
    assert day.sample(problems["abc387_b"], "instruct", stdin, reply) == {"solution": "X = int(input())\nprint(X)\n"}
    assert day.sample(problems["abc387_b"], "base", base, "```python\nprint(1)\n```\n") == {"solution": "print(1)\n"}
    with pytest.raises(HarnessError, match="no reference solutions"):
        day.oracle_sample(problems["3702"])


# --------------------------------------------------------------------- CLI
def test_cli_evaluate_writes_the_run_record(lcb_dir: Path, tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in [
        {"question_id": "abc387_b", "code": NINE_BY_NINE},
        {"question_id": "3702", "code_list": [MAX_LENGTH, "class Solution:\n    pass\n"]},
        {"question_id": "3708", "code": "print(1)"},  # 2025-01-11: outside the window, left out
    ]))  # fmt: skip
    out = tmp_path / "out"
    proc = harness("evaluate", "--benchmark", "livecodebench", "--samples", str(samples), "--output", str(out),
                   "--data-dir", str(lcb_dir), "--start-date", DAY, "--end-date", DAY, "--parallel", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = load_run(out / "run.json")
    assert record.benchmark == "livecodebench" and record.n_tasks == 2 and record.n_samples == 3
    assert record.pass_at_k["base"]["pass@1"] == pytest.approx(0.75)
    options = record.benchmark_options
    assert (options["start_date"], options["end_date"], options["private_tests"]) == (DAY, DAY, False)
    assert options["samples_outside_selection"] == 1
    assert record.notes == [NOTE_NO_PRIVATE]
    assert record.breakdown["difficulty"]["easy"] == {"score": 0.75, "n": 2}
    assert "note: private tests absent" in proc.stdout and "pass@1: 0.750" in proc.stdout
    bad = harness("evaluate", "--benchmark", "livecodebench", "--samples", str(samples), "--data-dir", str(lcb_dir),
                  "--start-date", "2025-1-4x")  # fmt: skip
    assert bad.returncode == 2 and "--start-date must be a date as YYYY-MM-DD" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_eval_replay_by_task_id(lcb_dir: Path, tmp_path: Path) -> None:
    replay = tmp_path / "replay.jsonl"
    replay.write_text(json.dumps({"task_id": "3702", "solution": MAX_LENGTH}) + "\n"
                      + json.dumps({"task_id": "3684", "solution": "class Solution:\n    pass\n"}) + "\n")  # fmt: skip
    out = tmp_path / "run"
    proc = harness("eval", "--model", f"replay:{replay}", "--benchmarks", "livecodebench", "--data-dir", str(lcb_dir),
                   "--start-date", DAY, "--end-date", DAY, "--platform", "leetcode", "--difficulty", "easy",
                   "--output", str(out), "--parallel", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = load_run(out / "livecodebench" / "run.json")
    assert record.pass_at_k["base"]["pass@1"] == pytest.approx(0.5) and record.n_tasks == 2
    assert record.generation is not None and record.generation.backend == "replay"
    assert record.notes == [NOTE_NO_PRIVATE]
    rows = [json.loads(x) for x in (out / "livecodebench" / "samples.jsonl").read_text().splitlines()]
    assert {r["task_id"] for r in rows} == {"3702", "3684"}


# ------------------------------------------------------------- self-repair
# The day's four easy problems: one program passes, two give wrong answers, one raises.
SUM_SQUARED = "A, B = map(int, input().split())\nprint((A + B) ** 2)\n"
FIRST_PROGRAMS = {
    "abc387_b": NINE_BY_NINE,
    "abc387_a": "A, B = map(int, input().split())\nprint(A + B)\n",
    "3702": "class Solution:\n    def maxLength(self, nums):\n        return 4\n",
    "3684": "class Solution:\n    def hasMatch(self, s, p):\n        raise ValueError('no idea')\n",
}


def replay_file(path: Path, programs: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"task_id": t, "solution": code}) + "\n" for t, code in programs.items()))
    return path


@pytest.fixture(scope="module")
def first_run(lcb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A livecodebench run (harness eval, replayed) of the day's easy problems: its folder."""
    tmp = tmp_path_factory.mktemp("lcb-first-run")
    proc = harness("eval", "--model", f"replay:{replay_file(tmp / 'first.jsonl', FIRST_PROGRAMS)}", "--benchmarks",
                   "livecodebench", "--data-dir", str(lcb_dir), "--start-date", DAY, "--end-date", DAY,
                   "--difficulty", "easy", "--output", str(tmp / "run"), "--parallel", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return tmp / "run" / "livecodebench"


def test_repair_prompts_carry_livecodebenchs_feedback(lcb_dir: Path, first_run: Path) -> None:
    from benchmarks.livecodebench_repair import FORMATTING_REPEAT, PLACEHOLDER, SYSTEM_MESSAGE, LiveCodeBenchRepair

    bench = LiveCodeBenchRepair(data_dir=lcb_dir, first_run=str(first_run))
    problems = bench.problems()
    assert list(problems) == list(FIRST_PROGRAMS)
    assert bench.prompt(problems["abc387_b"], "instruct").instruction == PLACEHOLDER  # passed: not asked again
    prompts = {t: bench.prompt(problems[t], "instruct") for t in ("abc387_a", "3702", "3684")}
    for tid, prompt in prompts.items():
        text = prompt.instruction or ""
        assert prompt.system == SYSTEM_MESSAGE and prompt.response_prefix == ""
        assert text.startswith("### Question:\n" + problems[tid].prompt + "\n\n### Answer:\n```python\n"
                               + FIRST_PROGRAMS[tid] + "\n```\n\n")  # fmt: skip
        assert "\n### Format: Read the inputs from stdin solve the problem" in text  # for LeetCode problems too
        assert text.endswith("### Answer: (use the provided format with backticks)\n\n\n\n" + FORMATTING_REPEAT)
    # LiveCodeBench's metadata: raw stdin text; the parsed arguments and value of a functional problem.
    assert ("The above code is incorrect and got a wrong answer.\nInput: 20 25\nGenerated Output: 45\n\n"
            "Expected: 2025\n### Format") in (prompts["abc387_a"].instruction or "")  # fmt: skip
    assert ("got a wrong answer.\nInput: [[1, 2, 1, 2, 1, 1, 1]]\nGenerated Output: 4\nExpected: 5\n"
            in (prompts["3702"].instruction or ""))  # fmt: skip
    assert ("The above code is incorrect and got a runtime error.\nInput: ['leetcode', 'ee*e']\nExpected: True\n"
            "ValueError('no idea')\n" in (prompts["3684"].instruction or ""))  # fmt: skip
    described = bench.describe()
    assert described["first_run"] == str((first_run / "run.json").resolve())
    assert described["first_run_dataset_hash"] == load_run(first_run / "run.json").dataset.hash
    assert (described["failed_in_first_run"], described["first_run_pass@1"]) == (3, 0.25)
    assert bench.sample(problems["abc387_b"], "instruct", prompts["3702"], "anything") == {"solution": NINE_BY_NINE}
    reply = "It returns a constant.\n```python\nprint(1)\n```\nThen:\n```python\nprint(2)\n```\n"
    assert bench.sample(problems["3702"], "instruct", prompts["3702"], reply) == {"solution": "print(2)"}


def test_repair_feedback_texts() -> None:
    from benchmarks.livecodebench_repair import check_message, extract_last_block, truncate

    assert check_message("timeout", "3", "4", error="TimeoutException()") == (
        "The above code is incorrect and got time limit exceeded.\nTimeoutException()\nInput: 3\nExpected: 4")
    assert truncate("x" * 300) == "x" * 300
    assert truncate("a" * 150 + "b" * 151) == "a" * 150 + "...(truncated) ..." + "b" * 150
    assert truncate([1, 2]) == "[1, 2]"
    assert extract_last_block("no code") == "" and extract_last_block("```\nx\n```") == "x"


def test_repair_end_to_end_with_scripted_repairs(lcb_dir: Path, first_run: Path, tmp_path: Path) -> None:
    repairs = {
        "abc387_b": "print('ignored: this task passed in the first run')\n",
        "abc387_a": "Wrong operator.\n```python\n" + SUM_SQUARED + "```\n",  # repaired
        "3702": "class Solution:\n    def maxLength(self, nums):\n        return 5\n",  # still wrong on test 1
        "3684": HAS_MATCH,  # repaired
    }
    out = tmp_path / "repair"
    proc = harness("eval", "--model", f"replay:{replay_file(tmp_path / 'r.jsonl', repairs)}", "--benchmarks",
                   "livecodebench-repair", "--first-run", str(first_run), "--data-dir", str(lcb_dir),
                   "--output", str(out), "--parallel", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = load_run(out / "livecodebench-repair" / "run.json")
    assert record.title == "LiveCodeBench self-repair" and record.n_tasks == 4
    assert record.pass_at_k["base"]["pass@1"] == pytest.approx(0.75)
    assert {t: r.correct["base"] for t, r in record.tasks.items()} == {"abc387_b": 1, "abc387_a": 1, "3702": 0,
                                                                       "3684": 1}  # fmt: skip
    repair = record.breakdown["repair"]
    assert repair["first run"] == {"score": 0.25, "n": 4} and repair["after repair"] == {"score": 0.75, "n": 4}
    assert repair["repair rate"] == {"score": pytest.approx(2 / 3), "n": 3}
    assert record.benchmark_options["first_run"] == str((first_run / "run.json").resolve())
    assert record.benchmark_options["first_run_dataset_hash"] == record.dataset.hash
    rows = [json.loads(x) for x in (out / "livecodebench-repair" / "samples.jsonl").read_text().splitlines()]
    assert rows[0] == {"task_id": "abc387_b", "solution": NINE_BY_NINE}  # the first run's program, graded again
    assert "repair rate   0.667  (n=3)" in proc.stdout


def test_repair_with_the_tiny_model(lcb_dir: Path, first_run: Path, tmp_path: Path, tiny_model: Path) -> None:
    out = tmp_path / "tiny"
    proc = harness("eval", "--model", f"hf:{tiny_model}", "--benchmarks", "livecodebench-repair", "--first-run",
                   str(first_run / "run.json"), "--data-dir", str(lcb_dir), "--output", str(out), "--max-tokens", "8",
                   "--parallel", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = load_run(out / "livecodebench-repair" / "run.json")
    assert record.generation is not None and record.generation.backend == "hf" and record.n_tasks == 4
    assert record.benchmark_options["first_run"] == str((first_run / "run.json").resolve())
    assert record.tasks["abc387_b"].correct["base"] == 1  # kept from the first run


def test_repair_needs_a_livecodebench_first_run(lcb_dir: Path, first_run: Path, tmp_path: Path) -> None:
    from benchmarks.livecodebench_repair import LiveCodeBenchRepair

    with pytest.raises(HarnessError, match="needs --first-run PATH"):
        LiveCodeBenchRepair(data_dir=lcb_dir).problems()
    with pytest.raises(HarnessError, match="no run record there"):
        LiveCodeBenchRepair(data_dir=lcb_dir, first_run=str(tmp_path))
    other = tmp_path / "other.json"
    other.write_text((first_run / "run.json").read_text().replace('"benchmark": "livecodebench"',
                                                                  '"benchmark": "humaneval"', 1))  # fmt: skip
    with pytest.raises(HarnessError, match="is a humaneval run"):
        LiveCodeBenchRepair(data_dir=lcb_dir, first_run=str(other))
    # The first run's dataset, and only it: other files (even with the same problems) are refused.
    copy = write_dataset(tmp_path / "data", [public_row(lcb_dir, qid) for qid in FIRST_PROGRAMS])
    with pytest.raises(HarnessError, match="was graded on dataset"):
        LiveCodeBenchRepair(data_dir=copy, first_run=str(first_run)).problems()
    # The first run's stdio mode unless --lcb-stdio says otherwise.
    bench = LiveCodeBenchRepair(data_dir=lcb_dir, first_run=str(first_run), lcb_stdio="process")
    assert bench.stdio == "process" and LiveCodeBenchRepair(data_dir=lcb_dir, first_run=str(first_run)).stdio == "lcb"
