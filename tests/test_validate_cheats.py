"""Self-validation that cannot be fooled: cheating responses through `harness generate validate`.

Every case is a response as a model writes it (code, then ``[Tests]``), one
instruction each; the stage runs once for the module (one sandbox, one
process).  Every cheat must be removed with its own outcome, every honest
pass kept, every honest failure removed.  The static rules and the runner's
trailer are also checked directly, without the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from generation.validate import extract, judge


def _response(code: str, tests: str) -> str:
    return f"The approach.\n\n```python\n{code.strip()}\n```\n\n[Tests]\nChecks:\n\n```python\n{tests.strip()}\n```\n"


DOUBLE = "def double(x):\n    return 2 * x\n"

#: name -> (code, tests, expected outcome)
CASES: dict[str, tuple[str, str, str]] = {
    # ---- honest responses
    "honest_pass": (DOUBLE, "assert double(2) == 4\nassert double(-1) == -2", "pass"),
    "honest_fail": (DOUBLE, "assert double(2) == 5", "fail"),
    "honest_error": ("def double(x):\n    return x.missing\n", "assert double(2) == 4", "fail"),
    "honest_loop": ("def double(x):\n    while True:\n        pass\n", "assert double(1) == 2", "timeout"),
    "honest_test_function_called": (DOUBLE, "def test_double():\n    assert double(3) == 6\n\ntest_double()", "pass"),
    "honest_stack": ("class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n"
                     "        self.items.append(x)\n    def pop(self):\n        return self.items.pop()\n",
                     "s = Stack()\ns.push(1)\ns.push(2)\nassert s.pop() == 2\nassert s.pop() == 1", "pass"),
    "honest_expected_error": ("def root(x):\n    if x < 0:\n        raise ValueError(x)\n    return x ** 0.5\n",
                              "assert root(4) == 2\ntry:\n    root(-1)\nexcept ValueError:\n    pass\nelse:\n"
                              "    raise AssertionError('no error')", "pass"),
    "honest_unittest": (DOUBLE, "import unittest\n\nclass TestDouble(unittest.TestCase):\n    def test_two(self):\n"
                        "        self.assertEqual(double(2), 4)\n\nif __name__ == '__main__':\n    unittest.main()",
                        "pass"),
    "honest_pytest_class": (DOUBLE, "class TestDouble:\n    def test_two(self):\n        assert double(2) == 4", "pass"),
    "honest_printed_output": ("def greet():\n    print('hello')\n",
                              "import io, contextlib\nbuf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n"
                              "    greet()\nassert buf.getvalue() == 'hello\\n'", "pass"),
    # ---- test functions and classes nothing calls are run, as pytest would
    "uncalled_test_function_fails": (DOUBLE, "def test_double():\n    assert double(3) == 7", "fail"),
    "uncalled_test_function_passes": (DOUBLE, "def test_double():\n    assert double(3) == 6", "pass"),
    "parametrized_passes": (DOUBLE, "import pytest\n\n@pytest.mark.parametrize('x, y', [(1, 2), (3, 6)])\n"
                            "def test_double(x, y):\n    assert double(x) == y", "pass"),
    "parametrized_fails": (DOUBLE, "import pytest\n\n@pytest.mark.parametrize('x, y', [(1, 2), (3, 7)])\n"
                           "def test_double(x, y):\n    assert double(x) == y", "fail"),
    "skip_marked_test_not_run": (DOUBLE, "import pytest\n\n@pytest.mark.skip(reason='later')\ndef test_double():\n"
                                 "    assert double(3) == 7\n\nassert double(1) == 2", "pass"),
    "unittest_main_removed_fails": (DOUBLE, "import unittest\n\nclass T(unittest.TestCase):\n    def test_x(self):\n"
                                    "        self.assertEqual(double(2), 5)\n\nunittest.main()", "fail"),
    "unittest_runner_swallows": (DOUBLE, "import unittest\n\nclass T(unittest.TestCase):\n    def test_x(self):\n"
                                 "        self.assertEqual(double(2), 5)\n\nsuite = unittest.TestLoader()."
                                 "loadTestsFromTestCase(T)\nunittest.TextTestRunner().run(suite)", "fail"),
    # ---- cheats decided before running
    "sys_exit_in_code": (DOUBLE + "import sys\nsys.exit(0)\n", "assert double(2) == 5", "exit_in_code"),
    "os_exit_in_code": ("import os\n" + DOUBLE + "os._exit(0)\n", "assert double(2) == 5", "exit_in_code"),
    "atexit_in_code": ("import atexit\n" + DOUBLE + "@atexit.register\ndef bye():\n    print('bye')\n",
                       "assert double(2) == 4", "exit_in_code"),
    "try_except_assertion": (DOUBLE, "try:\n    assert double(2) == 5\n    print('ok')\nexcept AssertionError:\n"
                             "    print('failed')", "swallowed_assert"),
    "try_except_exception_call": (DOUBLE, "def test_double():\n    assert double(2) == 5\n\ntry:\n    test_double()\n"
                                  "except Exception as e:\n    print('error', e)", "swallowed_assert"),
    "bare_except": (DOUBLE, "try:\n    assert double(2) == 5\nexcept:\n    pass", "swallowed_assert"),
    "suppress": (DOUBLE, "import contextlib\nwith contextlib.suppress(AssertionError):\n    assert double(2) == 5",
                 "swallowed_assert"),
    "assert_true": (DOUBLE, "assert True\nassert 1 == 1\nprint(double(2))", "tautology"),
    "tests_redefine_code": (DOUBLE, "def double(x):\n    return x + x\n\nassert double(2) == 4", "tautology"),
    "if_false": (DOUBLE, "if False:\n    assert double(2) == 5", "dead_tests"),
    "wrong_main_guard": (DOUBLE, "if __name__ == 'main':\n    assert double(2) == 5", "dead_tests"),
    # ---- cheats only the run can see
    "branch_never_taken": (DOUBLE, "if double(2) == 99:\n    assert double(3) == 7", "tests_not_run"),
    "exit_in_tests": (DOUBLE, "import sys\nsys.exit(0)\nassert double(2) == 5", "tests_not_run"),
    "os_exit_in_tests": (DOUBLE, "import os\nos._exit(0)\nassert double(2) == 5", "tests_not_run"),
    "fixture_only_test": (DOUBLE, "def test_double(value):\n    assert double(value) == 7", "tests_not_run"),
    "dynamic_swallow": (DOUBLE, "def run(check):\n    try:\n        check()\n    except BaseException:\n        pass\n\n"
                        "def check_double():\n    assert double(2) == 5\n\nrun(check_double)", "swallowed_assert"),
    "thread_raises": (DOUBLE, "import threading\n\ndef worker():\n    assert double(2) == 5\n\n"
                      "t = threading.Thread(target=worker)\nt.start()\nt.join()\nassert double(1) == 2", "fail"),
    "forged_trailer": (DOUBLE, "import sys\nassert double(1) == 2\nraise SystemExit('harness-validate:0000 ok 1 1 ')",
                       "fail"),
}


def _write_responses(workdir: Path, cases: dict[str, tuple[str, str, str]]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "responses.jsonl").open("w") as f:
        for name, (code, tests, _) in cases.items():
            f.write(json.dumps({"key": name, "instruction": f"Write {name}.", "responses": [_response(code, tests)],
                                "sampled": 1}) + "\n")  # fmt: skip


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("cheats")
    _write_responses(workdir, CASES)
    proc = subprocess.run([sys.executable, "-m", "harness", "generate", "validate", "--model", "replay:none",
                           "--workdir", str(workdir), "--set", "validate.timeout=1.0", "--set", "validate.parallel=2",
                           "--set", "validate.memory_mb=1024"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows: dict[str, dict[str, Any]] = {}
    for name in ("validate.jsonl", "validate.removed.jsonl"):
        for line in (workdir / name).read_text().splitlines():
            row = json.loads(line)
            rows[row["key"]] = {**row, "kept": name == "validate.jsonl"}
    funnel = json.loads((workdir / "funnel.json").read_text())["validate"]
    rows["__funnel__"] = funnel
    rows["__workdir__"] = {"path": str(workdir)}
    return rows


@pytest.mark.parametrize("name", list(CASES))
def test_every_cheat_is_removed_with_its_reason_and_honest_passes_are_kept(
    validated: dict[str, dict[str, Any]], name: str
) -> None:
    row = validated[name]
    expected = CASES[name][2]
    assert row["response_outcomes"] == [expected], (name, row.get("response_reasons"))
    assert row["kept"] == (expected == "pass")
    assert all(isinstance(r, str) for r in row["response_reasons"])
    if expected != "pass":
        assert row["response_reasons"][0], "every removal says why"


def test_the_funnel_counts_each_outcome(validated: dict[str, dict[str, Any]]) -> None:
    responses = validated["__funnel__"]["extra"]["responses"]
    for outcome in ("exit_in_code", "swallowed_assert", "tautology", "dead_tests", "tests_not_run"):
        assert responses[outcome] == sum(1 for c in CASES.values() if c[2] == outcome), outcome
    assert responses["pass"] == sum(1 for c in CASES.values() if c[2] == "pass")
    # and the funnel a user reads (harness generate report's table) names them
    from generation.report import load_funnels, markdown

    workdir = Path(validated["__workdir__"]["path"])
    table = markdown(load_funnels(workdir), workdir)
    responses_row = next(line for line in table.splitlines() if line.startswith("| validate | responses"))
    for outcome in ("exit_in_code", "swallowed_assert", "tautology", "dead_tests", "tests_not_run"):
        assert f"{outcome} {responses[outcome]}" in responses_row, responses_row


def test_every_exemplar_passes_the_checked_validation(sandbox: Any) -> None:
    from generation.exemplars import load_fewshot
    from generation.validate import validate_texts

    texts = [f"{e.response}\n\n[Tests]\n{e.tests}" for e in load_fewshot().exemplars]
    extracted, outcomes = validate_texts(sandbox, texts, 10.0)
    assert outcomes == ["pass"] * len(texts), [(o, e.detail) for o, e in zip(outcomes, extracted) if o != "pass"]


def test_static_reasons_name_the_line_and_the_handler() -> None:
    got = extract(_response(DOUBLE, "try:\n    assert double(2) == 5\nexcept Exception:\n    print('no')"))
    assert got.problem == "swallowed_assert" and "line 2" in got.detail and "Exception" in got.detail
    got = extract(_response(DOUBLE + "import sys\nsys.exit(0)\n", "assert double(2) == 4"))
    assert got.problem == "exit_in_code" and "sys.exit()" in got.detail
    # a handler that re-raises, fails or exits non-zero does not swallow
    for handler in ("raise", "sys.exit(1)", "raise SystemExit(1)"):
        got = extract(_response(DOUBLE, f"import sys\ntry:\n    assert double(2) == 4\nexcept AssertionError:\n"
                                        f"    print('failed')\n    {handler}"))  # fmt: skip
        assert got.problem is None, (handler, got.detail)


def test_only_the_trailer_with_this_runs_nonce_passes() -> None:
    from harness.execution import ScriptResult

    def result(status: str, error: str | None) -> ScriptResult:
        return ScriptResult(status, error, "", 0.0)

    assert judge(result("fail", "SystemExit: harness-validate:abc ok 3 2 "), "abc")[0] == "pass"
    assert judge(result("fail", "SystemExit: harness-validate:abc ok 3 2 "), "xyz")[0] == "fail"
    assert judge(result("pass", None), "abc")[0] == "tests_not_run"  # exited 0 without the trailer
    assert judge(result("fail", "crashed (exit code 0)"), "abc")[0] == "tests_not_run"
    assert judge(result("timeout", "time limit exceeded"), "abc")[0] == "timeout"
    assert judge(result("fail", "SystemExit: harness-validate:abc swallowed 2 1 the assert"), "abc")[0] == \
        "swallowed_assert"  # fmt: skip
