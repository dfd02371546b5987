"""CRUXEval: 800 short Python functions; predict a call's output (CRUXEval-O) or an input for an output (CRUXEval-I).

Both tasks read CRUXEval's ``data/cruxeval.jsonl`` (``code``, ``input``,
``output``, ``id`` = ``sample_N``) and are graded as CRUXEval's
``evaluation/evaluate_generations.py`` grades them:

* a generation is text put into one assertion after the problem's code,
  ``{code}\\nassert {output} == {generation}``, for both tasks: a CRUXEval-O
  generation is the predicted output (a literal), a CRUXEval-I generation is a
  whole call ``f(...)``; the program passes when it runs to its end;
* CRUXEval's filter comes first: a CRUXEval-O generation that contains the
  call ``f({input})`` itself, and a CRUXEval-I generation without ``f(``, are
  not run and never pass;
* the program runs with CRUXEval's reliability guard (``exit``, ``quit``,
  ``help``, ``os.system`` and friends, ``shutil.rmtree``, ``subprocess.Popen``
  disabled), in a fresh namespace (CRUXEval ``exec``s it in ``{}``), under
  CRUXEval's 3 s limit; any exception, ``SystemExit`` included, is a failure;
* pass@1 and pass@5: the unbiased estimator per problem, averaged over
  problems (CRUXEval prints them x100).

Prompts are CRUXEval's (``prompts.py``): the direct prompts, or with
``--cot`` the chain-of-thought ones, with their few-shot examples.  ``base``
sends the prompt as a raw completion prompt, as CRUXEval's ``inference/``
does; ``instruct`` sends the same text as the user message with CRUXEval's
system prompt, as its ``openai/`` scripts do.  Both stop at ``[/ANSWER]``,
and replies are cut to the answer by CRUXEval's own rules for that path.

Deliberate differences from CRUXEval, each for a reason:

* The 3 s limit is CPU time (wall clock 3x that, plus 1 s), as everywhere in
  this harness: a busy machine does not turn answers into timeouts.
  CRUXEval's limit is 3 s of wall clock.
* Programs run in the sandbox, not in the evaluator's process tree; the
  guard is kept only so that verdicts match (``exit()`` fails there too).
* A generation that does not compile is failed without running it (reason:
  it does not parse).  CRUXEval runs it and gets the same failure.
* Counting filtered generations: CRUXEval drops them from a problem's
  generations when another generation of that problem passes (so ``n``
  shrinks) and counts them as failures otherwise.  The run record here has a
  verdict for every generation, so a filtered generation is a failure and
  ``n`` is always the number of generations.  ``eval_results.json`` is in
  CRUXEval's scored-results schema and carries CRUXEval's own numbers (its
  ``raw_scored_generations``, ``pass_at_1``, ``pass_at_5``, computed its way),
  so both are on record; they differ only where a problem has a filtered
  generation and a passing one.
* pass@5 with fewer than 5 generations: CRUXEval's estimator answers 1.0 for
  every problem; the run record leaves pass@k out where ``n < k`` (the core's
  rule), while ``eval_results.json`` keeps CRUXEval's value and says so.

The run record's ``pass_at_k`` holds pass@1 and pass@5 (``pass_at_k_values``;
pass@5 where every problem has 5 or more generations), with the same
estimator as CRUXEval's.  ``docs/benchmarks/cruxeval.md`` says all this at length.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

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
    shown_text,
)
from harness.errors import HarnessError
from harness.execution import ScriptJob, ScriptResult
from harness.passk import pass_at_k
from harness.samples import BadLine, Sample
from harness.samples import load_samples as load_jsonl_samples

#: The data file has not changed since CRUXEval's first commit; the URL is pinned to it.
DATA_COMMIT = "10d71b4ca99f2b6624bef9533ade5a0594ab7716"
CRUXEVAL_RELEASE = data.ReleaseFile(
    name="CRUXEval",
    version=DATA_COMMIT[:7],
    subdir="cruxeval",
    filename="cruxeval.jsonl",
    url=f"https://raw.githubusercontent.com/facebookresearch/cruxeval/{DATA_COMMIT}/data/cruxeval.jsonl",
)
#: MD5 of that file (800 problems).
CRUXEVAL_MD5 = "909218466adc7ef626ae886ddb79a42d"

#: CRUXEval's limit per program (``check_correctness(..., 3)``); here CPU seconds.
TIME_LIMIT = 3.0
#: Estimated seconds per program (measured: a few milliseconds, mostly the fork), for the scheduler.
PROGRAM_COST = 0.005
#: CRUXEval's stop word for every prompt (``inference/tasks``, ``openai/openai_run.py``).
STOP = ("[/ANSWER]",)
#: The system prompt of CRUXEval's chat-model runs (``openai/openai_prompt.py``).
SYSTEM_PROMPT = "You are an expert at Python programming, code execution, test case generation, and fuzzing."

# CRUXEval's reliability_guard (evaluation/utils_execute.py), as a sandbox prelude: it disables
# the same names, so programs that call them fail here as they fail there.  Not a security
# measure (the sandbox is one).  Unlike some graders' guards it leaves ``open`` alone, as CRUXEval does.
GUARD_PRELUDE = reliability_guard(builtins=("exit", "quit", "help"))

# The few-shot prompts of CRUXEval's prompts.py, word for word (the model sees exactly these).
_DIRECT_OUTPUT = """You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def f(n):
    return n
assert f(17) == ??
[/PYTHON]
[ANSWER]
assert f(17) == 17
[/ANSWER]

[PYTHON]
def f(s):
    return s + "a"
assert f("x9j") == ??
[/PYTHON]
[ANSWER]
assert f("x9j") == "x9ja"
[/ANSWER]

[PYTHON]
{code}
assert f({input}) == ??
[/PYTHON]
[ANSWER]
"""  # noqa: E501

_COT_OUTPUT = """You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Execute the program step by step before arriving at an answer, and provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def f(s):
    s = s + s
    return "b" + s + "a"
assert f("hi") == ??
[/PYTHON]
[THOUGHT]
Let's execute the code step by step:

1. The function f is defined, which takes a single argument s.
2. The function is called with the argument "hi", so within the function, s is initially "hi".
3. Inside the function, s is concatenated with itself, so s becomes "hihi".
4. The function then returns a new string that starts with "b", followed by the value of s (which is now "hihi"), and ends with "a".
5. The return value of the function is therefore "bhihia".
[/THOUGHT]
[ANSWER]
assert f("hi") == "bhihia"
[/ANSWER]

[PYTHON]
{code}
assert f({input}) == ??
[/PYTHON]
[THOUGHT]
"""  # noqa: E501

_DIRECT_INPUT = """You will be given a function f and an output in the form f(??) == output. Find any input such that executing f on the input leads to the given output. There may be multiple answers, but you should only output one. In [ANSWER] and [/ANSWER] tags, complete the assertion with one such input that will produce the output when executing the function.

[PYTHON]
def f(my_list):
    count = 0
    for i in my_list:
        if len(i) % 2 == 0:
            count += 1
    return count
assert f(??) == 3
[/PYTHON]
[ANSWER]
assert f(["mq", "px", "zy"]) == 3
[/ANSWER]

[PYTHON]
def f(s1, s2):
    return s1 + s2
assert f(??) == "banana"
[/PYTHON]
[ANSWER]
assert f("ba", "nana") == "banana"
[/ANSWER]

[PYTHON]
{code}
assert f(??) == {output}
[/PYTHON]
[ANSWER]
"""  # noqa: E501

# The trailing spaces (\x20) after "f(??) == 17." and "?? should be 16." are CRUXEval's own.
_COT_INPUT = """You will be given a function f and an output in the form f(??) == output. Your task is to find any input such that executing f on the input leads to the given output. There may be multiple answers, but only output one. First, think step by step. You MUST surround the answer with [ANSWER] and [/ANSWER] tags. Express your answer as a passing assertion containing the input and the given output.

[PYTHON]
def f(x):
    return x + 1
assert f(??) == 17
[/PYTHON]
[THOUGHT]
To find an input such that executing f on the input leads to the given output, we can work backwards from the given assertion. We know that f(??) == 17.\x20

Since the function f(x) returns x + 1, for f(??) to be equal to 17, the value of ?? should be 16.\x20
[/THOUGHT]
[ANSWER]
assert f(16) == 17
[/ANSWER]

[PYTHON]
{code}
assert f(??) == {output}
[/PYTHON]
[THOUGHT]
"""  # noqa: E501

_PROMPTS: dict[tuple[str, bool], str] = {
    ("output", False): _DIRECT_OUTPUT,
    ("output", True): _COT_OUTPUT,
    ("input", False): _DIRECT_INPUT,
    ("input", True): _COT_INPUT,
}

_FIELD = re.compile(r"\{(code|input|output)\}")

Mode = Literal["output", "input"]
Style = Literal["base", "instruct"]


def make_prompt(mode: Mode, cot: bool, code: str, inp: str, out: str) -> str:
    """CRUXEval's prompt for one problem (``make_{direct,cot}_{output,input}_prompt`` of its ``prompts.py``)."""
    # One pass over the template's own fields (as CRUXEval's f-strings): the code may hold braces or "{input}".
    values = {"code": code, "input": inp, "output": out}
    return _FIELD.sub(lambda m: values[m.group(1)], _PROMPTS[(mode, cot)])


def extract_answer(mode: Mode, cot: bool, reply: str, style: Style = "base") -> str:
    """The generation CRUXEval keeps from a model's reply (the text after the prompt).

    ``base``: ``inference/tasks/{output,input}_prediction.py``'s
    ``postprocess_generation``; ``instruct``: ``openai/openai_prompt.py``'s
    ``extract_answer_*``.  Both cut at the stop word ``[/ANSWER]`` (the
    generation stopped there).  With CoT the answer is the text after the first
    ``[ANSWER]``; a CoT reply without one is kept whole (``base``) or reduced to
    its last line (``instruct``).  Then CRUXEval-O keeps what follows the first
    ``==`` up to the next one; CRUXEval-I keeps what precedes the first ``==``
    and, from ``assert f`` on, ``f`` plus the rest (the call).
    """
    gen = reply.split(STOP[0], 1)[0]
    if cot:
        if "[ANSWER]" in gen:
            gen = gen.split("[ANSWER]")[1].strip()
        elif style == "instruct":
            return gen.split("\n")[-1].strip()
    if mode == "output":
        if "==" in gen:
            gen = gen.split("==")[1].strip()
        return gen.strip()
    if "==" in gen:
        gen = gen.split("==")[0].strip()
    if "assert f" in gen:
        gen = "f" + gen.split("assert f")[1].strip()
    return gen.strip()


def check_program(code: str, output: str, generation: str) -> str:
    """CRUXEval's program for a generation: the code, then ``assert {output} == {generation}`` (both tasks)."""
    return f"{code}\nassert {output} == {generation}"


def filtered(mode: Mode, inp: str, generation: str) -> bool:
    """Whether CRUXEval's filter drops a generation before running it.

    CRUXEval-O: the generation contains the call ``f(<input>)`` (it would pass
    by calling the function); CRUXEval-I: it contains no ``f(`` (not a call).
    """
    if mode == "input":
        return "f(" not in generation
    return f"f({inp})" in generation


def cruxeval_pass_at_k(n: int, c: int, k: int) -> float:
    """CRUXEval's ``pass_at_k``: the unbiased estimator, and 1.0 whenever ``n - c < k`` (so also when ``n < k``)."""
    if n - c < k:
        return 1.0
    return pass_at_k(n, c, k)


def cruxeval_scores(mode: Mode, inputs: dict[str, str], generations: dict[str, list[str]],
                    passed: dict[str, list[bool]]) -> tuple[dict[str, list[bool]], float, float]:  # fmt: skip
    """``(raw_scored_generations, pass_at_1, pass_at_5)`` exactly as CRUXEval's ``evaluate_generations.py``.

    ``passed`` holds one verdict per generation; CRUXEval's score list leaves
    out the generations its filter drops, unless none of the problem's
    generations passes, when it is all ``False`` (one per generation).  The
    scores are percentages, averaged over the problems given.
    """
    scored: dict[str, list[bool]] = {}
    for sid, gens in generations.items():
        kept = [ok for g, ok in zip(gens, passed[sid]) if not filtered(mode, inputs[sid], g)]
        scored[sid] = kept if True in kept else [False] * len(gens)
    if not scored:
        return scored, 0.0, 0.0
    p1 = [cruxeval_pass_at_k(len(r), r.count(True), 1) for r in scored.values()]
    p5 = [cruxeval_pass_at_k(len(r), r.count(True), 5) for r in scored.values()]
    return scored, sum(p1) / len(p1) * 100, sum(p5) / len(p5) * 100


_DETECTED = re.compile(r"\s*\(detected at line \d+\)")
#: How the driver words an exit (the verdict's reason shows it without the exception class around it).
_EXITED = "the program exited (SystemExit: "


def _driver(program: str) -> str:
    """The script the sandbox runs: CRUXEval's program, ``exec``'d in a fresh namespace as CRUXEval does.

    CRUXEval counts every exception as a failure, ``SystemExit`` too; the
    sandbox would take a clean ``sys.exit(0)`` for a passing script, so the
    driver turns it into an error (with the class it bound before the program ran).  ``dont_inherit``:
    the worker's own ``__future__`` flags (postponed annotations) must not reach the program; CRUXEval's
    evaluator has none.
    """
    return (
        "_cruxeval_error = RuntimeError\n"
        f"_cruxeval_source = {program!r}\n"
        "try:\n"
        "    exec(compile(_cruxeval_source, '<cruxeval>', 'exec', dont_inherit=True), {})\n"
        "except SystemExit as _cruxeval_exit:\n"
        f"    raise _cruxeval_error(f'{_EXITED}{{_cruxeval_exit.code!r}})') from None\n"
    )


def _parse_error(program: str) -> str | None:
    """Why the program does not compile (the message only), or None.  Compiling runs nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences and the like in model output
        try:
            compile(program, "<cruxeval>", "exec", dont_inherit=True)
        except SyntaxError as exc:
            # The message only: its "(detected at line N)" counts the problem's code, not the answer's lines.
            return f"{type(exc).__name__}: {_DETECTED.sub('', exc.msg)}"
        except (ValueError, OverflowError, RecursionError, MemoryError, UnicodeError) as exc:
            return f"{type(exc).__name__}: {exc}"
    return None


class CruxEvalOptions(BenchmarkOptions):
    """How a model is prompted (grading is the same either way)."""

    cot: bool = Field(default=False, description="CRUXEval's chain-of-thought prompt instead of the direct one")


class CruxEvalBenchmark(Benchmark):
    """CRUXEval's 800 problems, one task per subclass (output or input prediction)."""

    reference_grader = "CRUXEval's evaluator"

    mode: ClassVar[Mode] = "output"
    Options = CruxEvalOptions
    suites = ("base",)
    default = False
    decontamination_reference = True
    pass_at_k_values = (1, 5)  # what CRUXEval reports

    def __init__(self, data_dir: str | Path | None = None, **options: Any) -> None:
        """``data_dir``: offline data folder holding ``cruxeval/cruxeval.jsonl``; ``options``: ``cot``."""
        super().__init__(data_dir, **options)
        self._data_dir = data_dir
        self.time_limit = TIME_LIMIT

    # ------------------------------------------------------------ data
    @cached_property
    def path(self) -> Path:
        """Local path of ``cruxeval.jsonl`` (data folder, cache, or a download)."""
        return data.resolve(CRUXEVAL_RELEASE, self._data_dir)

    @cached_property
    def _rows(self) -> dict[str, dict[str, str]]:
        rows: dict[str, dict[str, str]] = {}
        try:
            for line in data.read_text(self.path).splitlines():
                if line.strip():
                    row = json.loads(line)
                    rows[str(row["id"])] = row
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{self.path} is not a readable CRUXEval file ({exc}); delete it to re-download"
                               ) from None  # fmt: skip
        for sid, row in rows.items():
            for key in ("code", "input", "output"):
                if not isinstance(row.get(key), str):
                    raise HarnessError(f"{self.path}: {sid} lacks {key!r}; is this CRUXEval's cruxeval.jsonl?")
        if not rows:
            raise HarnessError(f"{self.path} holds no problems; delete it to re-download")
        return rows

    def problems(self) -> dict[str, Problem]:
        """All problems by CRUXEval's id (``sample_0`` .. ``sample_799``), in dataset order.

        ``prompt`` is the question (the code and the assertion with ``??``),
        ``canonical_solution`` the right answer as a generation, ``extra`` the
        row's ``code``, ``input`` and ``output``.
        """
        return dict(self._problems)  # built once: callers (the oracle) ask for every request

    @cached_property
    def _problems(self) -> dict[str, Problem]:
        out = {}
        for sid, r in self._rows.items():
            code, inp, outp = r["code"], r["input"], r["output"]
            question = f"{code}\nassert f({inp}) == ??" if self.mode == "output" else f"{code}\nassert f(??) == {outp}"
            out[sid] = Problem(sid, question, "f", self._answer(inp, outp), {"code": code, "input": inp, "output": outp})
        return out

    def _answer(self, inp: str, out: str) -> str:
        return out if self.mode == "output" else f"f({inp})"

    @cached_property
    def _hash(self) -> str:
        return data.content_md5(self.path)

    def dataset(self) -> DatasetInfo:
        """The dataset file in use; its hash is the MD5 of the file."""
        return DatasetInfo(name=CRUXEVAL_RELEASE.name, version=CRUXEVAL_RELEASE.version, hash=self._hash,
                           path=str(self.path))  # fmt: skip

    def notes(self) -> list[str]:
        """A dataset file other than CRUXEval's published one is worth a word."""
        if self._hash != CRUXEVAL_MD5:
            return [f"{self.path} (MD5 {self._hash}) is not CRUXEval's published cruxeval.jsonl (MD5 {CRUXEVAL_MD5})"]
        return []

    def reference_items(self) -> list[tuple[str, str, str]]:
        """Each problem's code, input and output (the same items for both tasks)."""
        items = []
        for sid, r in self._rows.items():
            items += [(sid, "code", r["code"]), (sid, "input", r["input"]), (sid, "output", r["output"])]
        return items

    # ------------------------------------------------------------ samples
    def load_samples(self, path: Path, skip_bad: bool = False) -> tuple[list[Sample], list[BadLine]]:
        """CRUXEval's generations file, or the harness's JSONL (``task_id`` + ``solution``).

        CRUXEval's file is one JSON object ``{"sample_0": ["generation", ...],
        ...}``: each generation is a sample of that problem, in order (its line
        in the file is the sample's line).  The harness's file holds one
        generation per line in ``solution`` (or ``completion``).
        """
        p = Path(path)
        if not p.is_file():
            raise HarnessError(f"samples file {p} does not exist" if not p.exists() else f"{p} is not a file")
        text = p.read_text(encoding="utf-8", errors="replace")
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None  # several JSON values: JSON lines
        if isinstance(whole, list):
            raise HarnessError(f"{p} holds a JSON list; expected CRUXEval's generations ({{\"sample_0\": "
                               "[generation, ...], ...}) or JSONL samples (task_id + solution)")  # fmt: skip
        if not isinstance(whole, dict) or "task_id" in whole:
            return load_jsonl_samples(p, skip_bad=skip_bad)
        samples, bad = _generations_file(text)
        if bad and not skip_bad:
            shown = "; ".join(f"line {b.line} ({b.task_id}): {b.reason}" for b in bad[:3])
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            raise HarnessError(f"{p} has {len(bad)} malformed entr(ies): {shown}{more}; fix them or pass "
                               "--skip-bad-samples")  # fmt: skip
        if not samples:
            raise HarnessError(f"{p} contains no generations; expected {{\"sample_0\": [generation, ...], ...}}")
        return samples, bad

    def program(self, problem: Problem, solution: str | None, completion: str | None) -> str:
        """CRUXEval's program for the generation (``solution``, else ``completion``), as its evaluator builds it."""
        generation = solution if solution is not None else completion or ""
        return check_program(problem.extra["code"], problem.extra["output"], generation)

    def _generation(self, problem: Problem, program: str) -> str | None:
        """The generation inside a program :meth:`program` built (None for any other program)."""
        head = check_program(problem.extra["code"], problem.extra["output"], "")
        return program[len(head):] if program.startswith(head) else None

    # ------------------------------------------------------------ grading
    def jobs(self, task_id: str, program: str, state: Any, ctx: GradeContext) -> list[ScriptJob]:
        """One script (CRUXEval's program under its guard), or none when the filter or the parser decides."""
        problem = self._problems[task_id]
        generation = self._generation(problem, program)
        if generation is not None and filtered(self.mode, problem.extra["input"], generation):
            ctx.memo["decided"] = self._filtered_reason(problem)
            return []
        why = _parse_error(program)
        if why is not None:
            ctx.memo["decided"] = f"the answer does not parse ({why})"
            return []
        ctx.memo["generation"] = generation
        return [ScriptJob(_driver(program), cpu_limit=self.time_limit, prelude=GUARD_PRELUDE, cost=PROGRAM_COST)]

    def _filtered_reason(self, problem: Problem) -> str:
        if self.mode == "input":
            return "not counted: the answer is not a call of f (CRUXEval-I counts only answers containing 'f(')"
        return (f"not counted: the answer contains the call f({problem.extra['input']}) itself "
                "(CRUXEval-O does not run such answers)")[:300]  # fmt: skip

    def verdict(self, task_id: str, program: str, state: Any, results: Sequence[ScriptResult], ctx: GradeContext
                ) -> Verdict:  # fmt: skip
        """Passes when the program runs to its end; otherwise why not, in one line."""
        decided = ctx.memo.get("decided")
        if decided is not None:
            return _failed("fail", decided, 0.0)
        res = results[0]
        if res.status == "pass":
            return Verdict(status="pass", parts={"base": PartVerdict(status="pass", cpu_seconds=res.cpu)})
        if res.status == "timeout":
            return _failed("timeout", f"time limit exceeded ({self.time_limit:g} s CPU)", res.cpu)
        problem = self._problems[task_id]
        generation = ctx.memo.get("generation")
        verdict = _failed("fail", _reason(res.error or "", problem, generation), res.cpu)
        if generation is not None and verdict.parts["base"].reasons[0].startswith("wrong answer"):
            # What the report shows beside the reason: the call, the value it returns, the model's answer.
            if self.mode == "output":
                details = {"input": shown_text(f"f({problem.extra['input']})"), "answer": shown_text(generation)}
            else:
                details = {"input": shown_text(generation)}
            verdict.parts["base"].details[0] = {**details, "expected": shown_text(problem.extra["output"])}
        return verdict

    # ------------------------------------------------------------ reporting
    def verdict_salt(self) -> str:
        """The limit, the guard and the driver change verdicts: the verdict cache keys on them."""
        digest = hashlib.sha256((GUARD_PRELUDE + _driver("")).encode()).hexdigest()[:16]
        return f"time_limit={self.time_limit};guard+driver={digest}"

    def results_document(self, dataset_hash: str, programs: list[tuple[str, str]], verdicts: list[Verdict]
                         ) -> dict[str, Any]:  # fmt: skip
        """CRUXEval's scored-results schema (``raw_generations``, ``raw_scored_generations``, ``pass_at_1``,
        ``pass_at_5``, computed CRUXEval's way), plus the harness's per-sample ``eval`` entries."""
        gens: dict[str, list[str]] = {}
        passed: dict[str, list[bool]] = {}
        for (tid, program), verdict in zip(programs, verdicts):
            problem = self._problems.get(tid)
            generation = self._generation(problem, program) if problem is not None else None
            gens.setdefault(tid, []).append(program if generation is None else generation)
            passed.setdefault(tid, []).append(verdict.status == "pass")
        inputs = {sid: self._rows[sid]["input"] for sid in gens if sid in self._rows}
        scored, p1, p5 = cruxeval_scores(self.mode, inputs, {s: g for s, g in gens.items() if s in inputs}, passed)
        doc = super().results_document(dataset_hash, programs, verdicts)
        few = [sid for sid, r in scored.items() if len(r) < 5]
        return {
            "date": doc["date"], "hash": dataset_hash, "mode": self.mode,
            "raw_generations": gens, "raw_scored_generations": scored, "pass_at_1": p1, "pass_at_5": p5,
            "note": (f"{len(few)} problem(s) have fewer than 5 scored generations: CRUXEval's pass_at_5 counts "
                     "them as 1.0" if few else None),
            "eval": doc["eval"],
        }  # fmt: skip

    # ------------------------------------------------------------ prompting
    def prompt(self, problem: Problem, style: str) -> Prompt:
        """CRUXEval's prompt: ``base`` as a raw completion prompt, ``instruct`` as the user message."""
        text = make_prompt(self.mode, self.options.cot, problem.extra["code"], problem.extra["input"],  # type: ignore[attr-defined]
                           problem.extra["output"])  # fmt: skip
        if style == "base":
            return Prompt(text=text, stop=STOP)
        if style == "instruct":
            return Prompt(instruction=text, stop=STOP, system=SYSTEM_PROMPT)
        raise HarnessError(f"unknown prompt style {style!r} (base, instruct)")

    def sample(self, problem: Problem, style: str, prompt: Prompt, text: str, field: str | None = None) -> dict[str, str]:
        """The generation CRUXEval keeps from the reply (``solution``); stored samples are kept as they are."""
        if field is not None:  # replay / oracle
            return {field: text}
        how: Style = "instruct" if style == "instruct" else "base"
        return {"solution": extract_answer(self.mode, self.options.cot, text, how)}  # type: ignore[attr-defined]

    def oracle_sample(self, problem: Problem) -> tuple[str, str]:
        """The right answer as a generation: the output (CRUXEval-O) or the call ``f(<input>)`` (CRUXEval-I)."""
        return "solution", problem.canonical_solution


class CruxEvalOutput(CruxEvalBenchmark):
    """CRUXEval-O: predict the output of ``f`` on the given input."""

    name = "cruxeval-o"
    title = "CRUXEval-O"
    display_order = 50
    mode = "output"


class CruxEvalInput(CruxEvalBenchmark):
    """CRUXEval-I: give an input on which ``f`` returns the given output (a call ``f(...)``)."""

    name = "cruxeval-i"
    title = "CRUXEval-I"
    display_order = 51
    mode = "input"


def _failed(status: Literal["fail", "timeout"], reason: str, cpu: float) -> Verdict:
    part = PartVerdict(status=status, failed=[0], reasons={0: reason}, cpu_seconds=cpu)
    return Verdict(status=status, parts={"base": part})


def _reason(error: str, problem: Problem, generation: str | None) -> str:
    """One line: a wrong answer (the assertion failed), the exception the program raised, or how it died."""
    lines = [ln for ln in error.strip().splitlines() if ln.strip()]
    if not any(ln.startswith("Traceback") for ln in lines):
        return (lines[-1] if lines else "failed")[:300]  # no exception: killed, or the sandbox's own word
    # The exception follows the last indented traceback line.
    last_frame = max((i for i, ln in enumerate(lines) if ln.startswith(" ")), default=-1)
    exc = " | ".join(ln.strip() for ln in lines[last_frame + 1 :][:3]) or (lines[-1] if lines else "failed")
    if exc == "AssertionError" and generation is not None:
        shown = generation if len(generation) <= 120 else generation[:117] + "..."
        return f"wrong answer: {problem.extra['output'][:120]} != {shown}"[:300]
    if exc.startswith(f"RuntimeError: {_EXITED}"):
        return exc[len("RuntimeError: "):] + ", which CRUXEval counts as a failure"
    return f"the program raised {exc}"[:300]


_WS = re.compile(r"\s*")


def _generations_file(text: str) -> tuple[list[Sample], list[BadLine]]:
    """Samples of a CRUXEval generations object (valid JSON), each with the line of its generation.

    The object is walked value by value (``raw_decode``) to know where each
    generation starts: CRUXEval writes these files indented (a generation per
    line) or on one line.
    """
    dec = json.JSONDecoder()
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())

    def line_at(pos: int) -> int:
        lo, hi = 0, len(starts)
        while hi - lo > 1:  # the last line start at or before pos
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if starts[mid] <= pos else (lo, mid)
        return lo + 1

    samples: list[Sample] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    i = _WS.match(text, 0).end() + 1  # type: ignore[union-attr]  # past "{"
    while True:
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i] == "}":
            break
        key_line = line_at(i)
        key, i = dec.raw_decode(text, i)
        i = _WS.match(text, i).end() + 1  # type: ignore[union-attr]  # past ":"
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        value_at = i
        value, i = dec.raw_decode(text, i)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i] == ",":
            i += 1
        if key in seen:
            bad.append(BadLine(key_line, key, "appears twice"))
            continue
        seen.add(key)
        if not isinstance(value, list) or not value:
            bad.append(BadLine(key_line, key, "must be a non-empty list of generations (strings)"))
            continue
        if not all(isinstance(g, str) for g in value):
            bad.append(BadLine(key_line, key, "every generation must be a string"))
            continue
        samples.extend(Sample(line, key, g, None) for line, g in zip(_element_lines(text, value_at, line_at), value))
    return samples, bad


def _element_lines(text: str, at: int, line_at: Any) -> list[int]:
    """The line of each element of the JSON list starting at ``at`` (valid JSON)."""
    dec = json.JSONDecoder()
    lines = []
    i = at + 1
    while True:
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i] == "]":
            return lines
        lines.append(line_at(i))
        _, i = dec.raw_decode(text, i)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i] == ",":
            i += 1
