"""LiveCodeBench's test output prediction and code execution scenarios, graded with LiveCodeBench's rules.

Two benchmarks (``lcb_runner`` of LiveCodeBench at 28fef95: ``benchmarks/``,
``prompts/``, ``utils/extraction_utils.py``, ``evaluation/``):

``livecodebench-testoutput`` (LiveCodeBench test output)
    Data: ``livecodebench/test_generation`` (``question_title``,
    ``question_content``, ``question_id``, ``contest_id``, ``contest_date``,
    ``difficulty``, ``test`` - a JSON list of ``{input, output, testtype}``
    of which the first is used -, ``starter_code``, ``function_name``,
    ``test_id``); one task per ``question_id`` and ``test_id``
    (``<question_id>_<test_id>``), in LiveCodeBench's order.  The model
    completes ``assert f(<input lines joined by ", ">) == # TODO`` for the
    function of the starter code.  Grading (``check_testcase_output``): the
    reply's last line that starts with ``assert`` (else the first fenced
    block) is the prediction; of a several-line prediction the first line
    holding ``assert`` counts; the right-hand side of its ``==`` is evaluated
    and must ``==`` the JSON-decoded expected output.  Literals are read with
    :func:`ast.literal_eval` here (the same value ``eval`` gives); any other
    expression is evaluated in the sandbox (3 s of CPU) and its value
    compared here.
``livecodebench-execution`` (LiveCodeBench execution)
    Data: ``livecodebench/execution-v2`` (``code``, ``input`` - a call -,
    ``output``, ``id`` = ``sample_N``, ``question_id``, ``contest_id``,
    ``contest_date``, ``difficulty``, ``function_name``, ``problem_id``,
    ``numsteps``); one task per ``id``.  The model predicts the output of the
    call; ``--cot`` uses LiveCodeBench's chain-of-thought prompt.  Grading
    (``compute_code_execution_metrics``): a prediction that contains the call
    itself is not run; otherwise ``<LiveCodeBench's imports>\\n<code>\\nassert
    <output> == <prediction>`` runs in the sandbox under LiveCodeBench's
    reliability guard, in a fresh namespace, for 3 s; it passes when it runs
    to its end.

Data files: the official ones from Hugging Face when online (through
:mod:`harness.data`, cached), or, offline, every ``*.jsonl`` / ``*.json`` /
``*.parquet`` file under ``<data dir>/livecodebench-testoutput/`` or
``<data dir>/livecodebench-execution/`` with the official schema.

Prompts: LiveCodeBench's, as its ``OpenAIChat`` style sends them (system
message and user message, no response prefix, no stop) for ``instruct``.
LiveCodeBench has no base-model style for these scenarios; ``base`` here sends
the text its ``StarCoderInstruct`` style sends (test output: system message, a
newline, the user message; execution: the user message), with a stop.

pass@1 and pass@5 (``pass_at_k_values``), LiveCodeBench's estimator.

Deliberate differences, each for a reason (``docs/benchmarks/livecodebench.md``):

* Time limits are CPU seconds (3 s), as everywhere in this harness; a busy
  machine does not turn answers into timeouts.  LiveCodeBench's execution
  limit is 3 s of wall clock; its test output prediction evaluates the
  predicted expression in its own process with no limit at all.
* A predicted expression is evaluated with the builtins only (LiveCodeBench's
  ``eval`` also sees its module's names, ``json`` and ``ast``, and the
  function's locals), and never in the harness's process.
* LiveCodeBench's import header for code execution imports ``numpy`` and
  ``pandas``; here a library missing from the sandbox's interpreter is left
  out instead of failing every program (the sandbox preloads both when
  present, as LiveCodeBench's evaluator has them imported).
* Code execution, filtered predictions (the call inside the prediction):
  LiveCodeBench drops them from a problem's generations when another one of
  that problem is run (so its ``n`` shrinks) and counts them as failures
  otherwise.  The run record has a verdict for every generation (a filtered
  one fails, ``n`` is the number of generations); LiveCodeBench's figure is
  ``breakdown["livecodebench"]["pass@1"]`` (equal with one generation per
  problem).  LiveCodeBench prints it x100.
* ``base`` prompts (LiveCodeBench has none): execution stops at
  ``[/ANSWER]``, which is put back on the reply before extraction; test
  output stops at a closing code fence.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from benchmarks.guards import reliability_guard
from harness import data
from harness.benchmark import (
    Benchmark,
    BenchmarkOptions,
    DatasetInfo,
    GradeContext,
    PartVerdict,
    Problem,
    Prompt,
    Verdict,
)
from harness.errors import HarnessError
from harness.execution import (
    CallJob,
    CallResult,
    SandboxSettings,
    ScriptJob,
    ScriptResult,
    codec,
    encode_inputs,
)
from harness.passk import pass_at_k
from harness.samples import BadLine, Sample
from harness.samples import load_samples as load_jsonl_samples

_HF = "https://huggingface.co/datasets/livecodebench"
#: ``livecodebench/test_generation``: one parquet file at the repository's root.
TESTOUTPUT_RELEASE = data.ReleaseFile(name="LiveCodeBench test output", version="main",
                                      subdir="livecodebench-testoutput", filename="test.parquet",
                                      url=f"{_HF}/test_generation/resolve/main/test.parquet")  # fmt: skip
#: ``livecodebench/execution-v2``: one parquet file under ``data/``.
EXECUTION_RELEASE = data.ReleaseFile(name="LiveCodeBench execution", version="execution-v2 main",
                                     subdir="livecodebench-execution", filename="test-00000-of-00001.parquet",
                                     url=f"{_HF}/execution-v2/resolve/main/data/test-00000-of-00001.parquet")  # fmt: skip

#: CPU seconds for a prediction's check (LiveCodeBench's code execution: 3 s of wall clock).
TIME_LIMIT = 3.0
#: Estimated seconds per check (a fork and a few imports cached by the worker), for the scheduler.
CHECK_COST = 0.005
DIFFICULTIES = ("easy", "medium", "hard")

# ------------------------------------------------------------------ prompts
# LiveCodeBench's texts (lcb_runner/prompts/test_output_prediction.py and code_execution.py), word for word:
# the model must see exactly these.
TESTOUTPUT_SYSTEM = (
    "You are a helpful programming assistant and an expert Python programmer. You are helping a user to write a "
    "test case to help to check the correctness of the function. The user has written a input for the testcase. "
    "You will calculate the output of the testcase and write the whole assertion statement in the markdown code "
    "block with the correct output."
)
EXECUTION_SYSTEM = "You are an expert at Python programming, code execution, test case generation, and fuzzing."

_EXECUTION_DIRECT = '''You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def repeatNumber(number : int) -> int:
    return number
assert repeatNumber(number = 17) == ??
[/PYTHON]
[ANSWER]
assert repeatNumber(number = 17) == 17
[/ANSWER]

[PYTHON]
def addCharacterA(string : str) -> str:
    return string + "a"
assert addCharacterA(string = "x9j") == ??
[/PYTHON]
[ANSWER]
assert addCharacterA(string = "x9j") == "x9ja"
[/ANSWER]

[PYTHON]
{code}
assert {input} == ??
[/PYTHON]
[ANSWER]
'''

_EXECUTION_COT = '''You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Execute the program step by step before arriving at an answer, and provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def performOperation(s):
    s = s + s
    return "b" + s + "a"
assert performOperation(s = "hi") == ??
[/PYTHON]
[THOUGHT]
Let's execute the code step by step:

1. The function performOperation is defined, which takes a single argument s.
2. The function is called with the argument "hi", so within the function, s is initially "hi".
3. Inside the function, s is concatenated with itself, so s becomes "hihi".
4. The function then returns a new string that starts with "b", followed by the value of s (which is now "hihi"), and ends with "a".
5. The return value of the function is therefore "bhihia".
[/THOUGHT]
[ANSWER]
assert performOperation(s = "hi") == "bhihia"
[/ANSWER]

[PYTHON]
{code}
assert {input} == ??
[/PYTHON]
[THOUGHT]
'''


def testoutput_user_message(question: str, starter_code: str, func_name: str, test_input: str) -> str:
    """LiveCodeBench's user message for one test (``get_generic_question_template_test_completion``).

    As there, the question runs straight into ``Function:`` (no newline between them), and the input's lines
    are joined with ``", "`` into the call.
    """
    args = ", ".join(test_input.split("\n"))
    call = f"assert {func_name}({args}) == # TODO"
    return (f"Problem:\n{question}Function:\n```\n{starter_code}\n```\nPlease complete the following test case:\n\n"
            f"```\n{call}\n```\n")  # fmt: skip


def execution_prompt(code: str, call: str, cot: bool) -> str:
    """LiveCodeBench's code execution prompt (direct, or chain of thought) for ``call`` on ``code``."""
    template = _EXECUTION_COT if cot else _EXECUTION_DIRECT
    return template.replace("{code}", code, 1).replace("{input}", call, 1)


def starter_function(starter_code: str, fallback: str) -> str:
    """The function LiveCodeBench names in the assertion: the starter code's one ``def`` (else ``fallback``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(starter_code)
        except (SyntaxError, ValueError):
            return fallback
    names = [node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return names[0] if len(names) == 1 else fallback


# -------------------------------------------------------------- extraction
def extract_test_output(reply: str) -> str:
    """LiveCodeBench's ``extract_test_output_code``: the last line starting with ``assert``, else a fenced block."""
    lines = reply.split("\n")
    asserts = [k for k, line in enumerate(lines) if line.startswith("assert")]
    if asserts:
        return lines[asserts[-1]]
    fences = [k for k, line in enumerate(lines) if "```" in line]
    python = [k for k, line in enumerate(lines) if "```python" in line or "```Python" in line]
    if python:  # from the first python fence to the next fence
        fences = [python[0]] + [k for k in fences if k > python[0]]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[0] + 1 : fences[1]])


def extract_execution(reply: str, cot: bool) -> str:
    """LiveCodeBench's ``extract_execution_code``: after ``[ANSWER]`` (CoT), after the first ``==``,
    up to ``[/ANSWER]`` (else the first line)."""
    text = reply
    if cot and "[ANSWER]" in text:
        text = text.split("[ANSWER]")[1].strip()
    if "==" in text:
        text = text.split("==")[1].strip()
    if "[/ANSWER]" in text:
        text = text.split("[/ANSWER]")[0].strip()
    else:
        text = text.split("\n")[0].strip()
    return text.strip()


def predicted_expression(prediction: str) -> tuple[str, str | None]:
    """LiveCodeBench's ``check_testcase_output`` up to its ``eval``: the expression it evaluates, and why it
    cannot be a value when its parse step already failed (None when it may be).

    Of a several-line prediction the first line holding ``assert`` (not a comment) counts; an assertion
    gives the right-hand side of its first ``==``; text without ``assert`` is the expression itself.
    """
    text = prediction
    if len(text.splitlines()) > 1:
        for line in text.splitlines():
            if not line.startswith("#") and "assert" in line:
                text = line
                break
    text = text.strip()
    if "assert" not in text:
        return text, None if text else "no prediction (no assertion in the reply)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(text, mode="exec")
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return "", "the assertion does not parse"
    if not tree.body:
        return "", "the assertion is empty"
    statement = tree.body[0]
    if not isinstance(statement, ast.Assert):
        return "", "the prediction is not an assert statement"
    test = statement.test
    if not isinstance(test, ast.Compare) or not isinstance(test.ops[0], ast.Eq):
        return "", "the assertion is not an equality (==)"
    return str(ast.get_source_segment(text, test.comparators[0])), None


def literal_value(expression: str) -> tuple[bool, Any, str | None]:
    """``(known, value, error)``: a literal's value read without running anything; ``known`` False when the
    expression needs evaluating (a call, an operator); ``error`` when it does not parse at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return True, ast.literal_eval(expression), None
        except SyntaxError:
            return True, None, "the predicted value does not parse"
        except (ValueError, TypeError, MemoryError, RecursionError):
            return False, None, None


def python_literal(value: Any) -> str:
    """Python source for a JSON-decoded value (``true`` is ``True``; infinities and NaN as ``float(...)``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _short(text: str, width: int = 80) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 3] + "..."


# -------------------------------------------------------------------- data
def _natural(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _read_rows(path: Path) -> tuple[list[dict[str, Any]], bytes]:
    """Rows of a JSONL, JSON-array or parquet file, and the file's bytes (its hash)."""
    raw = path.read_bytes()
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise HarnessError(f"{path} is parquet, which needs pyarrow: pip install 'code-harness[data]', or give "
                               "the file as JSONL") from None  # fmt: skip
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file fails in many ways
            raise HarnessError(f"{path} is not a readable parquet file ({exc}); delete a partial download") from None
        return rows, raw
    text = raw.decode("utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise HarnessError(f"{path} is not valid JSON ({exc})") from None
        return list(rows), raw
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise HarnessError(f"{path} line {lineno} is not JSON ({exc})") from None
    return rows, raw


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


class _Scenario(Benchmark):
    """What both scenarios share: the data files, LiveCodeBench's output files as samples, a difficulty table."""

    release: ClassVar[data.ReleaseFile]
    decontamination_reference = False  # the problems are LiveCodeBench's, already references through livecodebench
    breakdowns = ("difficulty",)
    pass_at_k_values = (1, 5)  # what LiveCodeBench reports
    #: CPU seconds per check; tests may lower it.
    time_limit: float = TIME_LIMIT

    @cached_property
    def paths(self) -> list[Path]:
        """The dataset files: the local folder's, else the official file (data folder, cache, download)."""
        folder = data.data_dir(self.data_dir)
        local = folder / self.release.subdir if folder is not None else None
        if local is not None and local.is_dir():
            found = sorted((p for p in local.iterdir() if p.suffix in (".jsonl", ".json", ".parquet")), key=_natural)
            if found:
                return found
        return [data.resolve(self.release, self.data_dir)]

    @cached_property
    def _loaded(self) -> tuple[dict[str, Problem], str]:
        md5 = hashlib.md5()  # noqa: S324 - a content identifier
        rows: list[tuple[Path, int, dict[str, Any]]] = []
        for path in self.paths:
            got, raw = _read_rows(path)
            md5.update(raw)
            rows += [(path, k, row) for k, row in enumerate(got)]
        problems: dict[str, Problem] = {}
        for path, k, row in rows:
            if not isinstance(row, dict):
                raise HarnessError(f"{path.name} row {k + 1}: not an object; is this a {self.release.name} file?")
            problem = self._problem(row, f"{path.name} row {k + 1}")
            if problem.task_id in problems:
                raise HarnessError(f"{self.release.name}: task {problem.task_id} appears twice ({path.name})")
            problems[problem.task_id] = problem
        if not problems:
            raise HarnessError(f"no {self.release.name} problems in {', '.join(p.name for p in self.paths)}")
        return dict(sorted(problems.items(), key=lambda kv: self._order(kv[1]))), md5.hexdigest()

    def _problem(self, row: dict[str, Any], where: str) -> Problem:
        raise NotImplementedError

    def _order(self, problem: Problem) -> Any:
        return problem.task_id

    def problems(self) -> dict[str, Problem]:
        """Every task, in LiveCodeBench's order."""
        return self._loaded[0]

    def dataset(self) -> DatasetInfo:
        """Name, file names, MD5 of the files' bytes, and where they are."""
        paths = self.paths
        where = str(paths[0].resolve() if len(paths) == 1 else paths[0].parent.resolve())
        version = "+".join(p.name for p in paths) if paths[0].name != self.release.filename else self.release.version
        return DatasetInfo(name=self.release.name, version=version, hash=self._loaded[1], path=where)

    def program(self, problem: Problem, solution: str | None, completion: str | None) -> str:
        """The prediction as the sample holds it (extraction happened when the reply became a sample)."""
        return solution if solution is not None else (completion or "")

    def breakdown(self, passed: dict[str, list[bool]]) -> dict[str, Any]:
        """pass@1 by difficulty."""
        scores: dict[str, list[float]] = {}
        problems = self.problems()
        for tid, outcomes in passed.items():
            if tid in problems and outcomes:
                level = str(problems[tid].extra.get("difficulty") or "unknown").lower()
                scores.setdefault(level, []).append(sum(outcomes) / len(outcomes))
        keys = [k for k in DIFFICULTIES if k in scores] + sorted(k for k in scores if k not in DIFFICULTIES)
        return {"difficulty": {k: {"score": sum(scores[k]) / len(scores[k]), "n": len(scores[k])} for k in keys}}

    def describe(self) -> dict[str, Any]:
        """Files, problem count and the check's time limit."""
        return {"files": [p.name for p in self.paths], "problems": len(self.problems()), "time_limit_s": self.time_limit}

    def load_samples(self, path: Path, skip_bad: bool = False) -> tuple[list[Sample], list[BadLine]]:
        """The harness's samples (``task_id`` + ``solution``), or LiveCodeBench's output file for the scenario
        (a JSON array or JSONL of rows with ``pred_list``, the extracted predictions)."""
        p = Path(path)
        head = p.read_text(encoding="utf-8", errors="replace")[:4096].lstrip() if p.is_file() else ""
        if not head.startswith("[") and '"pred_list"' not in head:
            samples, bad = load_jsonl_samples(p, skip_bad=skip_bad)
            self._seen_samples(samples)
            return samples, bad
        rows, _ = _read_rows(p)
        samples = []
        bad = []
        for n, row in enumerate(rows, start=1):
            tid = self._row_task(row) if isinstance(row, dict) else None
            preds = row.get("pred_list") if isinstance(row, dict) else None
            if tid is None or not isinstance(preds, list) or not all(isinstance(x, str) for x in preds):
                bad.append(BadLine(n, tid, "expected a task's ids and 'pred_list' (a list of strings)"))
                continue
            samples += [Sample(n, tid, pred, None) for pred in preds]
        if bad and not skip_bad:
            raise HarnessError(f"{p} has {len(bad)} malformed row(s), the first at {bad[0].line}: {bad[0].reason}")
        if not samples:
            raise HarnessError(f"{p} holds no predictions")
        self._seen_samples(samples)
        return samples, bad

    def _row_task(self, row: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def _seen_samples(self, samples: Iterable[Sample]) -> None:
        """Hook: samples about to be graded (code execution counts its filtered predictions)."""

    @staticmethod
    def _failed(reason: str, status: str = "fail", cpu: float = 0.0) -> Verdict:
        part = PartVerdict(status=status, failed=[0], reasons={0: reason}, cpu_seconds=cpu)  # type: ignore[arg-type]
        return Verdict(status=status, parts={"base": part})  # type: ignore[arg-type]

    @staticmethod
    def _passed(cpu: float = 0.0) -> Verdict:
        return Verdict(status="pass", parts={"base": PartVerdict(status="pass", cpu_seconds=cpu)})


# ---------------------------------------------------------- test output
# Evaluates a predicted expression that is not a literal, in the sandbox; the value is compared in the harness.
_EVAL_CODE = """\
import builtins as __lcb_builtins


def __lcb_eval(expression):
    return eval(expression, {"__builtins__": __lcb_builtins})
"""


class TestOutputOptions(BenchmarkOptions):
    """LiveCodeBench's test output prediction has no options."""


class LiveCodeBenchTestOutput(_Scenario):
    """LiveCodeBench test output prediction: complete ``assert f(input) == ...`` with the function's output."""

    __test__ = False  # not a pytest class
    name = "livecodebench-testoutput"
    title = "LiveCodeBench test output"
    display_order = 32
    Options = TestOutputOptions
    release = TESTOUTPUT_RELEASE

    def _problem(self, row: dict[str, Any], where: str) -> Problem:
        for key in ("question_id", "question_content", "starter_code", "test", "test_id"):
            if key not in row:
                raise HarnessError(f"{where}: lacks {key!r}; is this a livecodebench/test_generation file?")
        tests = row["test"]
        try:
            tests = json.loads(tests) if isinstance(tests, str) else tests
        except ValueError:
            raise HarnessError(f"{where}: 'test' is not JSON") from None
        if not isinstance(tests, list) or not tests or not isinstance(tests[0], dict) or not all(
            isinstance(tests[0].get(k), str) for k in ("input", "output")
        ):
            raise HarnessError(f"{where}: 'test' must be a list of {{input, output}} strings")
        qid, test_id = str(row["question_id"]), row["test_id"]
        func = starter_function(str(row["starter_code"]), str(row.get("function_name") or ""))
        extra = {
            "question_id": qid, "test_id": test_id, "title": row.get("question_title", ""),
            "starter_code": str(row["starter_code"]), "function_name": func, "input": tests[0]["input"],
            "output": tests[0]["output"], "difficulty": str(row.get("difficulty") or "").lower(),
            "contest_date": _iso(row.get("contest_date")),
        }  # fmt: skip
        return Problem(f"{qid}_{test_id}", str(row["question_content"]), func, "", extra)

    def _order(self, problem: Problem) -> Any:
        test_id = problem.extra["test_id"]
        return problem.extra["question_id"], (0, test_id, "") if isinstance(test_id, int) else (1, 0, str(test_id))

    def _row_task(self, row: dict[str, Any]) -> str | None:
        if "question_id" in row and "test_id" in row:
            return f"{row['question_id']}_{row['test_id']}"
        return row.get("task_id") if isinstance(row.get("task_id"), str) else None

    def reference_items(self) -> list[tuple[str, str, str]]:
        """Questions and the tests' inputs."""
        return [(t, part, p.prompt if part == "prompt" else p.extra["input"])
                for t, p in self.problems().items() for part in ("prompt", "test")]  # fmt: skip

    # -------------------------------------------------------- prompting
    def prompt(self, problem: Problem, style: str) -> Prompt:
        """LiveCodeBench's prompt: its system message and the test to complete."""
        user = testoutput_user_message(problem.prompt, problem.extra["starter_code"], problem.extra["function_name"],
                                       problem.extra["input"])  # fmt: skip
        if style == "instruct":
            return Prompt(instruction=user, system=TESTOUTPUT_SYSTEM)
        if style == "base":
            return Prompt(text=f"{TESTOUTPUT_SYSTEM}\n{user}", stop=("\n```",))
        raise HarnessError(f"unknown prompt style {style!r} (base, instruct)")

    def sample(self, problem: Problem, style: str, prompt: Prompt, text: str, field: str | None = None) -> dict[str, str]:
        """The prediction LiveCodeBench extracts from a reply (stored samples pass through as stored)."""
        if field is not None:
            return {field: text}
        return {"solution": extract_test_output(text)}

    def oracle_sample(self, problem: Problem) -> tuple[str, str]:
        """The assertion with the expected output written as a Python literal."""
        value = json.loads(problem.extra["output"])
        call = ", ".join(problem.extra["input"].split("\n"))
        return "solution", f"assert {problem.extra['function_name']}({call}) == {python_literal(value)}"

    # ---------------------------------------------------------- grading
    def verdict_salt(self) -> str:
        """The evaluation's limit and the grading rule's version."""
        return f"testoutput=1;time_limit={self.time_limit}"

    def jobs(self, task_id: str, program: str, state: Any, ctx: GradeContext) -> list[CallJob]:
        """None when the prediction is a literal (or does not parse); else one evaluation in the sandbox."""
        problem = self.problems()[task_id]
        try:
            expected = json.loads(problem.extra["output"])
        except ValueError:
            ctx.memo["decided"] = self._failed("the dataset's expected output is not JSON")
            return []
        expression, why = predicted_expression(program)
        if why is None:
            known, value, why = literal_value(expression)
            if known and why is None:
                ctx.memo["decided"] = self._compared(value, expected)
                return []
        if why is not None:
            ctx.memo["decided"] = self._failed(f"{why}: {_short(program)!r}")
            return []
        seen: dict[str, Any] = {}

        def check(i: int, payload: bytes) -> bool:
            try:
                seen["value"] = codec.decode(payload)
            except (ValueError, TypeError, RecursionError, OverflowError):
                seen["value"] = codec.Opaque("undecodable")
            return bool(seen["value"] == expected)

        ctx.memo.update(seen=seen, expected=expected)
        payload = encode_inputs([[expression]])
        key = hashlib.sha256(payload).hexdigest()[:24]
        return [CallJob(code=_EVAL_CODE, entry_point="__lcb_eval", inputs_key=f"lcb-testoutput:{key}",
                        inputs_payload=lambda: payload, limits=[self.time_limit], costs=[CHECK_COST],
                        budget=self.time_limit + 1.0, exec_limit=self.time_limit, check=check)]  # fmt: skip

    def _compared(self, value: Any, expected: Any, cpu: float = 0.0) -> Verdict:
        if value == expected:
            return self._passed(cpu)
        return self._failed(f"predicted {_short(repr(value))}, expected {_short(repr(expected))}", cpu=cpu)

    def verdict(self, task_id: str, program: str, state: Any, results: Sequence[CallResult],
                ctx: GradeContext) -> Verdict:  # fmt: skip
        """Equal to the expected output (LiveCodeBench's ``==`` after ``eval`` and ``json.loads``)."""
        if "decided" in ctx.memo:
            return ctx.memo["decided"]
        (res,) = results
        if res.status == "pass":
            return self._passed(res.cpu)
        if res.status == "timeout" or res.reasons.get(0) == "time limit exceeded":
            return self._failed(f"evaluating the prediction took over {self.time_limit:g} s of CPU", "timeout", res.cpu)
        if res.error or (res.failed and res.reasons.get(0, "").startswith("raised ")):
            why = res.error or res.reasons[0][len("raised ") :]
            return self._failed(f"the predicted value does not evaluate: {_short(why, 200)}", cpu=res.cpu)
        if "value" in ctx.memo["seen"]:
            return self._compared(ctx.memo["seen"]["value"], ctx.memo["expected"], res.cpu)
        return self._failed(res.reasons.get(0, "failed"), cpu=res.cpu)


# ------------------------------------------------------------ execution
# LiveCodeBench's import header for code execution (BASE_IMPORTS of lcb_runner/evaluation/utils_execute.py),
# the same names in the same order; numpy and pandas are optional here (see the module docstring).
_EXECUTION_IMPORTS = [
    "from itertools import accumulate, chain, combinations, count, permutations, product, groupby, islice, repeat",
    "from copy import deepcopy",
    "from string import ascii_lowercase",
    "from math import floor, log2, log10, sqrt, comb, gcd, ceil, inf, isqrt",
    "from collections import defaultdict, deque, Counter",
    "from bisect import bisect, bisect_left, bisect_right, insort",
    "from heapq import heappush, heappop, heapify, merge",
    "from functools import reduce, cache, lru_cache",
    "from random import randrange, shuffle",
    "from operator import itemgetter, sub",
    "from re import search as re_search",
    "from os.path import commonprefix",
    "from typing import List, Tuple, Dict, Set, Optional, Union, Any, Callable, Iterable, Iterator, Generator",
    *(f"import {m}" for m in ("copy", "string", "math", "collections", "bisect", "heapq", "functools", "random",
                              "itertools", "operator", "re")),
    "try:\n    import numpy as np\nexcept ImportError:\n    pass",
    "try:\n    import pandas as pd\nexcept ImportError:\n    pass",
    "from math import log, prod",
    "from collections import deque, defaultdict, Counter, OrderedDict",
    "from itertools import accumulate, permutations, combinations, product, groupby, islice, chain, repeat, "
    "zip_longest, cycle",
    "from functools import lru_cache, reduce, partial",
    "from operator import iand",
    "import sys",
]  # fmt: skip
EXECUTION_HEADER = "\n".join(_EXECUTION_IMPORTS) + "\n"

#: LiveCodeBench's reliability_guard for code execution (utils_execute.py): ``exit`` goes too.  It keeps verdicts
#: alike (a program calling these fails as it fails there); the sandbox is the security boundary.
EXECUTION_GUARD = reliability_guard(builtins=("exit", "quit", "help"))


def execution_check(code: str, output: str, prediction: str) -> str:
    """The program LiveCodeBench runs for a prediction: its imports, the code, ``assert output == prediction``."""
    return f"{EXECUTION_HEADER}\n{code}\nassert {output} == {prediction}"


def _execution_script(check: str) -> str:
    # LiveCodeBench exec()s the check in a fresh, empty namespace and fails on any exception, SystemExit
    # included (the sandbox's script runner would take exit(0) for success); a syntax error is told apart.
    return (f"__lcb_check = {check!r}\n"
            "try:\n    __lcb_code = compile(__lcb_check, '<check>', 'exec')\n"
            "except SyntaxError as exc:\n    raise SystemExit('the check does not parse: %s' % (exc.msg,))\n"
            "try:\n    exec(__lcb_code, {})\n"
            "except SystemExit as exc:\n    raise RuntimeError('SystemExit(%r)' % (exc.code,)) from None\n")  # fmt: skip


class ExecutionOptions(BenchmarkOptions):
    """LiveCodeBench's code execution: the direct prompt, or with ``--cot`` the chain-of-thought one."""

    cot: bool = Field(default=False, description="LiveCodeBench's chain-of-thought prompt (--cot_code_execution)")


class LiveCodeBenchExecution(_Scenario):
    """LiveCodeBench code execution: predict the output of a call on a LeetCode solution."""

    name = "livecodebench-execution"
    title = "LiveCodeBench execution"
    display_order = 33
    Options = ExecutionOptions
    release = EXECUTION_RELEASE

    def __init__(self, data_dir: str | Path | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        #: Per task, predictions seen that contain the call (LiveCodeBench drops them from its count).
        self._filtered: dict[str, int] = {}

    @property
    def cot(self) -> bool:
        """Chain-of-thought prompt and extraction."""
        return bool(getattr(self.options, "cot", False))

    def _problem(self, row: dict[str, Any], where: str) -> Problem:
        for key in ("code", "input", "output"):
            if not isinstance(row.get(key), str):
                raise HarnessError(f"{where}: lacks a string {key!r}; is this a livecodebench/execution-v2 file?")
        tid = str(row.get("id") or "")
        if not tid:
            raise HarnessError(f"{where}: lacks 'id' (sample_N)")
        extra = {k: row[k] for k in ("code", "input", "output")}
        extra.update({k: row.get(k) for k in ("question_id", "contest_id", "function_name", "problem_id", "numsteps")})
        extra.update(difficulty=str(row.get("difficulty") or "").lower(), contest_date=_iso(row.get("contest_date")))
        return Problem(tid, execution_prompt(row["code"], row["input"], False), str(row.get("function_name") or ""),
                       row["output"], extra)  # fmt: skip

    def _order(self, problem: Problem) -> Any:
        number = problem.task_id.rsplit("_", 1)[-1]
        return (0, int(number), "") if number.isdigit() else (1, 0, problem.task_id)

    def _row_task(self, row: dict[str, Any]) -> str | None:
        for key in ("id", "task_id"):
            if isinstance(row.get(key), str):
                return row[key]
        return None

    def reference_items(self) -> list[tuple[str, str, str]]:
        """The code and the call of every item."""
        return [(t, "code", p.extra["code"] + "\n" + p.extra["input"]) for t, p in self.problems().items()]

    def sandbox_settings(self, base: SandboxSettings) -> SandboxSettings:
        """Workers preload numpy and pandas: LiveCodeBench's evaluator has them imported when it forks a check."""
        extra = tuple(m for m in ("numpy", "pandas") if m not in base.preload)
        return SandboxSettings(**{**base.__dict__, "preload": base.preload + extra})

    # -------------------------------------------------------- prompting
    def prompt(self, problem: Problem, style: str) -> Prompt:
        """LiveCodeBench's direct or chain-of-thought prompt, with its system message for chat models."""
        text = execution_prompt(problem.extra["code"], problem.extra["input"], self.cot)
        if style == "instruct":
            return Prompt(instruction=text, system=EXECUTION_SYSTEM)
        if style == "base":
            return Prompt(text=text, stop=("[/ANSWER]",))
        raise HarnessError(f"unknown prompt style {style!r} (base, instruct)")

    def sample(self, problem: Problem, style: str, prompt: Prompt, text: str, field: str | None = None) -> dict[str, str]:
        """The prediction LiveCodeBench extracts from a reply (stored samples pass through as stored)."""
        if field is not None:
            prediction = text
        else:
            if style == "base":
                text += "[/ANSWER]"  # the stop cut it off; LiveCodeBench's extraction reads up to it
            prediction = extract_execution(text, self.cot)
        self._seen_samples([Sample(0, problem.task_id, prediction, None)])
        return {"solution": prediction} if field is None else {field: text}

    def oracle_sample(self, problem: Problem) -> tuple[str, str]:
        """The expected output literal."""
        return "solution", problem.extra["output"]

    def _seen_samples(self, samples: Iterable[Sample]) -> None:
        problems = self.problems()
        for s in samples:
            problem = problems.get(s.task_id)
            text = s.solution if s.solution is not None else (s.completion or "")
            if problem is not None and problem.extra["input"] in text:
                self._filtered[s.task_id] = self._filtered.get(s.task_id, 0) + 1

    # ---------------------------------------------------------- grading
    def verdict_salt(self) -> str:
        """The check's limit, header and guard."""
        digest = hashlib.sha256((EXECUTION_HEADER + EXECUTION_GUARD + _execution_script("")).encode()).hexdigest()
        return f"execution=1;time_limit={self.time_limit};{digest[:16]}"

    def jobs(self, task_id: str, program: str, state: Any, ctx: GradeContext) -> list[ScriptJob]:
        """The check program, unless the prediction contains the call (LiveCodeBench does not run those)."""
        problem = self.problems()[task_id]
        if problem.extra["input"] in program:
            ctx.memo["decided"] = self._failed("the prediction contains the call itself; LiveCodeBench does not run "
                                               f"such a prediction: {_short(program)!r}")  # fmt: skip
            return []
        check = execution_check(problem.extra["code"], problem.extra["output"], program)
        return [ScriptJob(_execution_script(check), cpu_limit=self.time_limit, prelude=EXECUTION_GUARD, cost=CHECK_COST)]

    def verdict(self, task_id: str, program: str, state: Any, results: Sequence[ScriptResult],
                ctx: GradeContext) -> Verdict:  # fmt: skip
        """Passes when the check runs to its end (any exception, SystemExit included, fails)."""
        if "decided" in ctx.memo:
            return ctx.memo["decided"]
        (res,) = results
        if res.status == "pass":
            return self._passed(res.cpu)
        if res.status == "timeout":
            return self._failed(f"the check took over {self.time_limit:g} s of CPU", "timeout", res.cpu)
        lines = [ln for ln in (res.error or "").strip().splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else "failed"
        if last.startswith("SystemExit: the check does not parse"):
            why = "the prediction does not parse" + last[len("SystemExit: the check does not parse") :]
        elif last == "AssertionError":
            why = f"wrong prediction {_short(program)!r}, expected {_short(self.problems()[task_id].extra['output'])}"
        else:
            why = f"the check raised {_short(last, 200)}"
        return self._failed(why, cpu=res.cpu)

    def describe(self) -> dict[str, Any]:
        """Files, problem count, limit, the prompt (cot) and filtered predictions seen."""
        out = {**super().describe(), "cot": self.cot}
        if self._filtered:
            out["filtered_predictions"] = sum(self._filtered.values())
        return out

    def breakdown(self, passed: dict[str, list[bool]]) -> dict[str, Any]:
        """pass@1 by difficulty, and pass@1 as LiveCodeBench counts it (filtered predictions dropped from ``n``)."""
        out = super().breakdown(passed)
        scores = []
        for tid, outcomes in passed.items():
            n = len(outcomes) - self._filtered.get(tid, 0)
            scores.append(pass_at_k(n, sum(outcomes), 1) if n > 0 else 0.0)
        if scores:
            out["livecodebench"] = {"pass@1": {"score": sum(scores) / len(scores), "n": len(scores)}}
        return out
