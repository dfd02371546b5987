"""LiveCodeBench stdin programs: every competitive-programming I/O idiom, in both ``--lcb-stdio`` modes.

``lcb`` is LiveCodeBench's grader (in-process, the program wrapped in a function, stdout captured until it
returns) with a real stdin and stdout; ``process`` is a judge's fresh process per test.  Each program below is
graded on a two-test problem (sum the numbers of line 2), so the second test also shows that nothing of the
first one's input or output leaks into it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.livecodebench import LiveCodeBench, stdin_code
from harness.benchmark import GradeOptions, Verdict
from harness.errors import ConfigError, HarnessError
from harness.store import load_run
from tests.test_cli import harness

TESTS = [{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"},
         {"input": "2\n10 20\n", "output": "30\n", "testtype": "stdin"}]  # fmt: skip
SUM = "print(sum(map(int, d[1:])))\n"
THREAD_MAIN = "def main():\n    input()\n    print(sum(map(int, input().split())))\n"

PASS = ("pass", "")
#: name -> (program, verdict in lcb mode, verdict in process mode); a verdict is (status, text in the reason).
IDIOMS: dict[str, tuple[str, tuple[str, str], tuple[str, str]]] = {
    "input()": ("input()\nprint(sum(map(int, input().split())))\n", PASS, PASS),
    "sys.stdin.buffer.read()": ("import sys\nd = sys.stdin.buffer.read().split()\n" + SUM, PASS, PASS),
    "readline then read the rest": (
        "import sys\nn = int(sys.stdin.readline())\nprint(sum(map(int, sys.stdin.read().split())))\n",
        PASS,
        PASS,
    ),
    "sys.stdin.buffer.readline": (
        "import sys\ninput = sys.stdin.buffer.readline\ninput()\nprint(sum(map(int, input().split())))\n",
        PASS,
        PASS,
    ),
    "open(0).read()": ("d = open(0).read().split()\n" + SUM, PASS, PASS),
    "open(0, 'rb')": ("d = open(0, 'rb').read().decode().split()\n" + SUM, PASS, PASS),
    "os.read(0, n)": ("import os\nd = os.read(0, 1 << 20).split()\n" + SUM, PASS, PASS),
    "sys.stdout.buffer.write": (
        "import sys\nd = sys.stdin.read().split()\nsys.stdout.buffer.write(b'%d\\n' % sum(map(int, d[1:])))\n",
        PASS,
        PASS,
    ),
    "print then stdout.buffer": (
        "import sys\nd = sys.stdin.read().split()\nprint(sum(map(int, d[1:])), end='')\n"
        "sys.stdout.buffer.write(b'\\n')\n",
        PASS,
        PASS,
    ),
    "os.write(1, ...)": (
        "import os\nd = open(0).read().split()\nos.write(1, b'%d\\n' % sum(map(int, d[1:])))\n",
        PASS,
        PASS,
    ),
    "a buffered writer on fd 1, never flushed": (
        "import sys\nout = open(1, 'w', buffering=1 << 16)\nd = sys.stdin.read().split()\n"
        "out.write(str(sum(map(int, d[1:]))) + '\\n')\n",
        PASS,
        PASS,
    ),
    "thread with a big stack": (
        "import sys, threading\nsys.setrecursionlimit(1 << 20)\nthreading.stack_size(1 << 26)\n"
        "def main():\n    input()\n    a = list(map(int, input().split()))\n"
        "    def f(i):\n        return 0 if i == len(a) else a[i] + f(i + 1)\n    print(f(0))\n"
        "t = threading.Thread(target=main)\nt.start()\nt.join()\n",
        PASS,
        PASS,
    ),
    "deep recursion in the main thread": (
        "import sys\nsys.setrecursionlimit(10 ** 6)\ndef depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\n"
        "assert depth(100000) == 100000\ninput()\nprint(sum(map(int, input().split())))\n",
        PASS,
        PASS,
    ),
    "print(..., flush=True)": ("input()\nprint(sum(map(int, input().split())), flush=True)\n", PASS, PASS),
    "for line in sys.stdin": (
        "import sys\nlines = [line for line in sys.stdin]\nprint(sum(map(int, lines[1].split())))\n",
        PASS,
        PASS,
    ),
    "input() until EOFError": (
        "lines = []\nwhile True:\n    try:\n        lines.append(input())\n    except EOFError:\n        break\n"
        "print(sum(map(int, lines[1].split())))\n",
        PASS,
        PASS,
    ),
    "input() past the end": (
        "while True:\n    input()\n",
        ("fail", "test 0 (public) raised EOFError: EOF when reading a line"),
        ("fail", "test 0 (public) raised EOFError: EOF when reading a line (exit status 1)"),
    ),
    "from sys import stdin": (
        "from sys import stdin\ninput = stdin.readline\ninput()\nprint(sum(map(int, input().split())))\n",
        PASS,
        PASS,
    ),
    "main guard": (
        'def main():\n    input()\n    print(sum(map(int, input().split())))\nif __name__ == "__main__":\n    main()\n',
        PASS,
        PASS,
    ),
    "exit() after the answer": ("input()\nprint(sum(map(int, input().split())))\nexit()\nprint('never')\n", PASS, PASS),
}

#: Where the two modes differ, on purpose (docs/benchmarks/livecodebench.md): LiveCodeBench's verdict, then a judge's.
DIFFERENCES: dict[str, tuple[str, tuple[str, str], tuple[str, str]]] = {
    # stdout is captured until the program's main code returns: a thread still running then loses its output.
    "thread outlives main": (
        "import threading, time\n"
        + THREAD_MAIN.replace("    input()\n", "    input()\n    time.sleep(0.3)\n")
        + "threading.Thread(target=main).start()\n",
        ("fail", "wrong answer on test 0 (public): line 1: got '', expected '6'"),
        PASS,
    ),
    # The program runs as the body of wrapped_function(): its top-level names are that function's locals.
    "global of a top-level name": (
        "total = 0\ndef add(x):\n    global total\n    total += x\ninput()\nfor x in input().split():\n"
        "    add(int(x))\nprint(total)\n",
        ("fail", "test 0 (public) raised NameError: name 'total' is not defined"),
        PASS,
    ),
    # Only a main guard that is the program's last statement is unwrapped; the module is tmp_sol, not __main__.
    "main guard not last": (
        THREAD_MAIN + "if __name__ == '__main__':\n    main()\nDONE = True\n",
        ("fail", "line 1: got '', expected '6'"),
        PASS,
    ),
    # A text mentioning class Solution is taken for a LeetCode class, stdin problem or not.
    "class Solution in a stdin program": (
        "class Solution:\n    def solve(self):\n        input()\n        print(sum(map(int, input().split())))\n"
        "Solution().solve()\n",
        ("fail", "module 'tmp_sol' has no attribute 'Solution'"),
        PASS,
    ),
    # SystemExit ends a test normally in LiveCodeBench whatever its code; a judge sees the exit status.
    "sys.exit(3) after the answer": (
        "import sys\ninput()\nprint(sum(map(int, input().split())))\nsys.exit(3)\n",
        PASS,
        ("fail", "test 0 (public) failed: exit status 3"),
    ),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with one stdin problem of two tests."""
    folder = tmp_path_factory.mktemp("lcb-stdio")
    row = {"question_id": "sum2", "question_title": "Sum", "question_content": "Print the sum of line 2.",
           "platform": "atcoder", "contest_date": "2025-01-01T00:00:00", "difficulty": "easy", "starter_code": "",
           "metadata": "{}", "public_test_cases": json.dumps(TESTS), "private_test_cases": ""}  # fmt: skip
    (folder / "livecodebench").mkdir()
    (folder / "livecodebench" / "sum.jsonl").write_text(json.dumps(row) + "\n")
    return folder


def bench(data: Path, mode: str) -> LiveCodeBench:
    b = LiveCodeBench(data_dir=data, lcb_stdio=mode)
    b.time_limit = 1.0
    return b


def check(verdicts: list[Verdict], table: dict[str, tuple[str, tuple[str, str], tuple[str, str]]], mode: str) -> None:
    got = {}
    for name, verdict in zip(table, verdicts):
        status, text = table[name][1 if mode == "lcb" else 2]
        reason = verdict.reason() or ""
        got[name] = (verdict.status, text in reason)
        assert got[name] == (status, True), f"{name}: {verdict.status} {reason!r}, expected {status} {text!r}"


@pytest.mark.parametrize("mode", ["lcb", "process"])
def test_every_idiom_works(data: Path, sandbox: Any, mode: str) -> None:
    b = bench(data, mode)
    verdicts = b.grade(sandbox, [("sum2", code) for code, _, _ in IDIOMS.values()], GradeOptions())
    check(verdicts, IDIOMS, mode)


@pytest.mark.parametrize("mode", ["lcb", "process"])
def test_where_livecodebench_and_a_judge_differ(data: Path, sandbox: Any, mode: str) -> None:
    b = bench(data, mode)
    verdicts = b.grade(sandbox, [("sum2", code) for code, _, _ in DIFFERENCES.values()], GradeOptions())
    check(verdicts, DIFFERENCES, mode)


def test_failures_in_a_test_process(data: Path, sandbox: Any) -> None:
    b = bench(data, "process")
    spin, crash, exit_text, late = b.grade(sandbox, [
        ("sum2", "while True:\n    pass\n"),
        ("sum2", "import os, signal\nos.abort()\n"),
        ("sum2", "import sys\nsys.exit('no answer')\n"),
        ("sum2", "input()\nif input() == '10 20':\n    raise ValueError('second test')\nprint(6)\n"),
    ], GradeOptions())  # fmt: skip
    assert spin.status == "timeout" and spin.reason() == "timeout on test 0 (public): over 1 s of CPU"
    assert crash.status == "fail" and crash.reason() == "test 0 (public) failed: killed by SIGABRT"
    assert exit_text.reason() == "test 0 (public) raised no answer (exit status 1)"  # the message goes to stderr
    assert late.parts["base"].failed == [1]
    assert late.reason() == "test 1 (public) raised ValueError: second test (exit status 1)"


def test_mode_is_an_option_recorded_and_salted(data: Path) -> None:
    lcb, process = bench(data, "lcb"), bench(data, "process")
    assert LiveCodeBench(data_dir=data).stdio == "lcb"  # the default
    assert lcb.describe()["stdio"] == "lcb" and process.describe()["stdio"] == "process"
    assert lcb.verdict_salt() != process.verdict_salt()
    with pytest.raises(ConfigError, match="--lcb-stdio"):
        LiveCodeBench(data_dir=data, lcb_stdio="subprocess")
    with pytest.raises(HarnessError, match="unknown --lcb-stdio mode"):
        stdin_code("print(1)", "threads")


def test_cli_flag(data: Path, tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"question_id": "sum2", "code": DIFFERENCES["thread outlives main"][0]}) + "\n")
    for mode, score in (("lcb", 0.0), ("process", 1.0)):
        out = tmp_path / mode
        proc = harness("evaluate", "--benchmark", "livecodebench", "--samples", str(samples), "--data-dir", str(data),
                       "--output", str(out), "--lcb-stdio", mode, "--parallel", "1")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        record = load_run(out / "run.json")
        assert record.options["lcb_stdio"] == mode and record.benchmark_options["stdio"] == mode
        assert record.pass_at_k["base"]["pass@1"] == score
