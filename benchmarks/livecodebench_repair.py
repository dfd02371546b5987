"""LiveCodeBench self-repair: the second turn over a ``livecodebench`` run of the same model.

LiveCodeBench's ``selfrepair`` scenario (``lcb_runner/runner/base_runner.py``
``run_main_repair``, ``lcb_runner/prompts/self_repair.py``): every program of
a code generation run is looked at again; one that passed keeps its output,
one that failed is shown to the model with the grader's feedback and the
model's fixed program is graded with code generation's rules.

* ``--first-run PATH``: the ``run.json`` of a ``livecodebench`` run (or its
  folder).  Its programs come from its samples file (``samples.jsonl`` beside
  it, as ``harness eval`` writes it, or the file the record names); its
  selection (release, window, filters), its per-test time limit and its
  ``--lcb-stdio`` mode are reused (``--lcb-stdio`` may override the mode),
  and the dataset must be the same (its hash is checked).
* Tasks: the first run's tasks, all of them, named by question id; when the
  first run drew several samples per task, one task per sample
  (``<question_id>/<k>``).
* A program that passed is not shown to the model again: its sample is the
  first run's program, graded again (LiveCodeBench re-grades the kept output
  too).  ``harness eval`` still sends every task a request, so a passed task
  gets a one-line placeholder prompt whose reply is ignored (a replay file must
  answer it too).
* A failed program gets LiveCodeBench's prompt (system message, ``###
  Question``, the program under ``### Answer``, the feedback, the stdin
  ``### Format`` line even for LeetCode problems, ``### Answer: (use the
  provided format with backticks)``, then for chat models the request to
  explain first).  The feedback is LiveCodeBench's ``get_check_prompt`` text
  for the first failing test: a wrong answer shows the input, the program's
  output and the expected output; a runtime error the input, the expected
  output and ``repr`` of the exception; a time limit ``TimeoutException()``,
  the input and the expected output; each value cut to 300 characters as
  LiveCodeBench cuts them.  The output and the exception are measured by
  running the failed program on that one test in the sandbox (the run record
  keeps only a one-line reason).
* The reply's code is LiveCodeBench's ``extract_code``: the last fenced block
  (empty without two fence lines); graded with :class:`LiveCodeBench`'s rules.
* Scores: pass@1 over the tasks (what LiveCodeBench reports for the
  scenario), and ``breakdown["repair"]``: the first run's pass@1, pass@1
  after repair, and the repair rate (repaired / failed in the first run).

Deliberate differences (``docs/benchmarks/livecodebench.md``):

* A program that failed to load (a syntax error) or whose problem cannot be
  graded: LiveCodeBench's feedback step raises (its metadata has no input);
  here it is reported as a runtime error on the first test.
* ``--lcb-stdio process``: a runtime error's text is the last line the test
  process wrote to stderr, not ``repr`` of the exception.
* ``base`` prompts (LiveCodeBench has no base style for this scenario): the
  text its ``StarCoderInstruct`` style sends, stopped at ``###``.
* The first run must be in this harness's record format; a repair run cannot
  follow its ``livecodebench`` run in the same ``harness eval`` command,
  because every benchmark's prompts are built before any generation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from benchmarks.livecodebench import (
    DEFAULT_TIME_LIMIT,
    LiveCodeBench,
    LiveCodeBenchOptions,
    _Suite,
    functional_code,
    stdin_code,
)
from harness.benchmark import Benchmark, BenchmarkOptions, GradeOptions, Problem, Prompt
from harness.errors import HarnessError
from harness.execution import CallJob, Sandbox, SandboxSettings, codec, encode_inputs
from harness.extraction import last_fenced_block
from harness.samples import BadLine, Sample
from harness.store import RunRecord, load_run

# LiveCodeBench's texts (lcb_runner/prompts/self_repair.py, PromptConstants), word for word.
SYSTEM_MESSAGE = (
    "You are a helpful programming assistant and an expert Python programmer. You are helping a user write a "
    "program to solve a problem. The user has written some code, but it has some errors and is not passing the "
    "tests. You will help the user by first giving a concise (at most 2-3 sentences) textual explanation of what "
    "is wrong with the code. After you have pointed out what is wrong with the code, you will then generate a "
    "fixed version of the program. You must put the entired fixed program within code delimiters only for once."
)
FORMATTING_REPEAT = (
    "First reason about the code providing a textual explanation of what is wrong with the code and then generate "
    "a fixed of the program enclosed code delimiters."
)
FORMATTING_WITHOUT_STARTER_CODE = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
    "sample inputs). Enclose your code within delimiters as follows."
)
#: What a passed task is asked instead (its reply is ignored): one line, so a model spends next to nothing on it.
PLACEHOLDER = "This program already passes every test; nothing to repair. Reply with OK."
#: LiveCodeBench cuts each value in the feedback to this many characters (``truncatefn``).
TRUNCATE = 300

# A failed program's behaviour on its first failing test, measured in the sandbox: the value it returned
# (functional) or printed (stdin), or repr() of what it raised, as LiveCodeBench's metadata records them.
_PROBE = '''

def __lcb_probe(*args):
    try:
        return ("ok", __lcb_target(*args))
    except BaseException as exc:
        return ("error", repr(exc))
'''


def truncate(value: Any, length: int = TRUNCATE) -> str:
    """LiveCodeBench's ``truncatefn``: ``str(value)``, its first and last halves around a marker when longer."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= length:
        return text
    return text[: length // 2] + "...(truncated) ..." + text[-length // 2 :]


def check_message(kind: str, inputs: str, expected: str, output: str = "", error: str = "") -> str:
    """LiveCodeBench's ``get_check_prompt`` for a wrong answer, a time limit or a runtime error."""
    if kind == "wrong":
        return (f"The above code is incorrect and got a wrong answer.\nInput: {inputs}\nGenerated Output: {output}\n"
                f"Expected: {expected}")  # fmt: skip
    if kind == "timeout":
        return f"The above code is incorrect and got time limit exceeded.\n{error}\nInput: {inputs}\nExpected: {expected}"
    return f"The above code is incorrect and got a runtime error.\nInput: {inputs}\nExpected: {expected}\n{error}"


def question_with_answer(question: str, code: str, feedback: str) -> str:
    """LiveCodeBench's ``get_generic_question_template_answer``."""
    return (f"### Question:\n{question}\n\n### Answer:\n```python\n{code}\n```\n\n{feedback}\n"
            f"### Format: {FORMATTING_WITHOUT_STARTER_CODE}\n```python\n# YOUR CODE HERE\n```\n\n"
            "### Answer: (use the provided format with backticks)\n\n")  # fmt: skip


# LiveCodeBench's ``extract_code`` (chat styles): the lines between the last two fence lines, else empty.
extract_last_block = last_fenced_block


def run_json(path: str | os.PathLike[str]) -> Path:
    """A run record's path from ``--first-run``: the file, or ``run.json`` in the folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "run.json"
    if not p.is_file():
        raise HarnessError(f"--first-run {path}: no run record there (pass the run.json of a livecodebench run, "
                           "or its folder)")  # fmt: skip
    return p


@dataclass(frozen=True)
class FirstSample:
    """One program of the first run and what its grading said."""

    task_id: str
    question_id: str
    index: int
    program: str
    passed: bool
    status: str
    reason: str
    failed_test: int | None


class RepairOptions(BenchmarkOptions):
    """The first run to repair, and optionally another way to run stdin programs."""

    first_run: str | None = Field(default=None, description="the run.json of a livecodebench run (or its folder) "
                                  "whose failed programs are repaired", json_schema_extra={"metavar": "PATH"})  # fmt: skip
    lcb_stdio: Literal["lcb", "process"] | None = Field(
        default=None, description="how stdin programs run (default: the first run's mode)"
    )


class LiveCodeBenchRepair(LiveCodeBench):
    """LiveCodeBench self-repair over a ``livecodebench`` run: failed programs, the grader's feedback, a fix."""

    name = "livecodebench-repair"
    title = "LiveCodeBench self-repair"
    display_order = 34
    Options = RepairOptions
    breakdowns = ("repair", "difficulty", "platform")
    selection_options = ()
    decontamination_reference = False  # its problems are livecodebench's
    # Not a dated benchmark of its own: its problems are the first run's (whose window chose them), and
    # `harness decontam --cutoff-date` reads benchmarks without options, where no first run is known.
    problem_date = Benchmark.problem_date

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> None:
        Benchmark.__init__(self, data_dir, **options)
        o: RepairOptions = self.options  # type: ignore[assignment]
        self.first_path: Path | None = None
        self.first: RunRecord | None = None
        base_options: dict[str, Any] = {}
        if o.first_run is not None:
            self.first_path = run_json(o.first_run).resolve()
            try:
                self.first = load_run(self.first_path)
            except HarnessError as exc:
                raise HarnessError(f"--first-run {self.first_path}: {exc}") from None
            if self.first.benchmark != "livecodebench":
                raise HarnessError(f"--first-run {self.first_path} is a {self.first.benchmark} run; self-repair "
                                   "needs a livecodebench run")  # fmt: skip
            base_options = {k: v for k, v in self.first.options.items() if k in LiveCodeBenchOptions.model_fields}
            self.time_limit = float(self.first.benchmark_options.get("time_limit_s", DEFAULT_TIME_LIMIT))
        # The first run's selection, set up as LiveCodeBench sets up its own (same files, same problems).
        base = LiveCodeBench(data_dir, **base_options)
        self._data_dir = data_dir
        self.release, self.start, self.end = base.release, base.start, base.end
        self.platforms, self.difficulties = base.platforms, base.difficulties
        self.prepare_seconds = 0.0
        self._outside_selection = 0
        self._dates_all = []

    def _need_first(self) -> RunRecord:
        if self.first is None:
            raise HarnessError("livecodebench-repair needs --first-run PATH: the run.json of a livecodebench run "
                               "(or its folder), e.g. --first-run runs/MODEL/livecodebench (the oracle cannot answer "
                               "it: LiveCodeBench publishes no reference solutions)")  # fmt: skip
        return self.first

    @property
    def stdio(self) -> str:
        """``--lcb-stdio`` when given, else the first run's mode."""
        given = getattr(self.options, "lcb_stdio", None)
        if given:
            return str(given)
        first = self.first.options.get("lcb_stdio") if self.first is not None else None
        return str(first or "lcb")

    # ---------------------------------------------------------- the first run
    @cached_property
    def first_samples(self) -> list[FirstSample]:
        """The first run's programs with their verdicts, in its task order."""
        first = self._need_first()
        dataset = self.dataset()
        if first.dataset.hash != dataset.hash:
            raise HarnessError(f"--first-run {self.first_path} was graded on dataset {first.dataset.hash}, the data "
                               f"here is {dataset.hash} ({dataset.path}); use the same files")  # fmt: skip
        path = self._first_samples_file()
        programs: dict[str, list[Sample]] = {}
        for s in LiveCodeBench.load_samples(self, path, skip_bad=True)[0]:
            programs.setdefault(s.task_id, []).append(s)
        self._outside_selection = 0  # the first run's file, not samples given to this run
        problems = LiveCodeBench.problems(self)
        counts = {tid: task.n for tid, task in first.tasks.items()}
        several = any(n > 1 for n in counts.values())
        out = []
        for qid, task in first.tasks.items():
            mine = programs.get(qid, [])
            if len(mine) != len(task.samples) or qid not in problems:
                raise HarnessError(f"--first-run {self.first_path}: {path} holds {len(mine)} sample(s) of {qid}, the "
                                   f"record {len(task.samples)}; is it that run's samples file?")  # fmt: skip
            for k, (sample, result) in enumerate(zip(mine, task.samples)):
                verdict = result.verdict
                part = verdict.parts.get("base")
                program = sample.program or self.program(problems[qid], sample.solution, sample.completion)
                out.append(FirstSample(
                    task_id=f"{qid}/{k}" if several else qid, question_id=qid, index=k, program=program,
                    passed=verdict.status == "pass", status=verdict.status,
                    reason=result.reason or verdict.reason() or verdict.status,
                    failed_test=part.failed[0] if part is not None and part.failed else None,
                ))  # fmt: skip
        return out

    def _first_samples_file(self) -> Path:
        first = self._need_first()
        assert self.first_path is not None
        beside = self.first_path.parent / "samples.jsonl"
        for candidate in ([Path(first.samples_file)] if first.samples_file else []) + [beside]:
            if candidate.is_file():
                return candidate
        raise HarnessError(f"--first-run {self.first_path}: its samples file is gone ({first.samples_file or beside}); "
                           "self-repair needs the programs (harness eval writes samples.jsonl beside run.json)")  # fmt: skip

    @cached_property
    def _by_task(self) -> dict[str, FirstSample]:
        return {fs.task_id: fs for fs in self.first_samples}

    # ---------------------------------------------------------------- data
    def problems(self) -> dict[str, Problem]:
        """One task per program of the first run (by question id; ``<question id>/<k>`` with several samples)."""
        base = LiveCodeBench.problems(self)
        out = {}
        for fs in self.first_samples:
            p = base[fs.question_id]
            extra = {**p.extra, "question_id": fs.question_id, "sample": fs.index, "first_passed": fs.passed,
                     "first_status": fs.status, "first_reason": fs.reason}  # fmt: skip
            out[fs.task_id] = Problem(fs.task_id, p.prompt, p.entry_point, "", extra)
        return out

    def open_task(self, task_id: str, options: GradeOptions) -> _Suite:
        """The question's tests (every sample of a question is graded on them)."""
        return self._suite(self._by_task[task_id].question_id)

    def describe(self) -> dict[str, Any]:
        """The first run (path, dataset hash, pass@1, failed programs), then LiveCodeBench's selection facts."""
        first = self._need_first()
        samples = self.first_samples
        failed = sum(not fs.passed for fs in samples)
        out: dict[str, Any] = {
            "first_run": str(self.first_path),
            "first_run_dataset_hash": first.dataset.hash,
            "first_run_model": first.model,
            "first_run_pass@1": first.pass_at_k.get("base", {}).get("pass@1"),
            "failed_in_first_run": failed,
        }
        out.update(super().describe())
        out["problems"] = len(samples)
        return out

    def notes(self) -> list[str]:
        """LiveCodeBench's notes (private tests), and that passed tasks keep the first run's program."""
        return [*super().notes(), "tasks that passed in the first run keep its program (re-graded); their replies "
                "are ignored"]  # fmt: skip

    def breakdown(self, passed: dict[str, list[bool]]) -> dict[str, Any]:
        """The repair table (first run, after repair, repair rate), then pass@1 by difficulty and platform."""
        by_task = self._by_task
        per_question: dict[str, list[bool]] = {}
        firsts: list[float] = []
        after: list[float] = []
        repaired: list[float] = []
        for tid, outcomes in passed.items():
            fs = by_task.get(tid)
            if fs is None or not outcomes:
                continue
            score = sum(outcomes) / len(outcomes)
            per_question.setdefault(fs.question_id, []).extend(outcomes)
            firsts.append(float(fs.passed))
            after.append(score)
            if not fs.passed:
                repaired.append(score)
        out: dict[str, Any] = {}
        if after:
            out["repair"] = {
                "first run": {"score": sum(firsts) / len(firsts), "n": len(firsts)},
                "after repair": {"score": sum(after) / len(after), "n": len(after)},
                "repair rate": {"score": sum(repaired) / len(repaired) if repaired else 0.0, "n": len(repaired)},
            }
        out.update(super().breakdown(per_question))
        return out

    # ----------------------------------------------------------- feedback
    @cached_property
    def feedback(self) -> dict[str, str]:
        """LiveCodeBench's feedback text per failed task (the failing test run again for its output)."""
        problems = self.problems()
        probes: list[tuple[str, CallJob]] = []
        facts: dict[str, tuple[str, str, str, str]] = {}  # task -> kind, inputs, expected, error
        for fs in self.first_samples:
            if fs.passed:
                continue
            suite = self._suite(fs.question_id)
            k = fs.failed_test if fs.failed_test is not None and 0 <= fs.failed_test < len(suite.tests) else 0
            if not suite.tests:
                facts[fs.task_id] = ("error", "", "", suite.error or fs.reason)
                continue
            inputs, expected = self._shown_test(suite, k)
            if fs.status == "timeout" and fs.failed_test is not None:
                facts[fs.task_id] = ("timeout", inputs, expected, "TimeoutException()")
            elif fs.failed_test is None or suite.error is not None:
                # Failed before any test (it does not load): LiveCodeBench's feedback step has no input to show.
                facts[fs.task_id] = ("error", inputs, expected, fs.reason)
            else:
                facts[fs.task_id] = ("probe", inputs, expected, fs.reason)
                probes.append((fs.task_id, self._probe_job(suite, k, fs.program)))
        measured = self._run_probes(probes)
        out = {}
        for tid, (kind, inputs, expected, error) in facts.items():
            if kind == "probe":
                got = measured.get(tid)
                if got is not None and got[0] == "ok":
                    value = got[1]
                    if problems[tid].entry_point and isinstance(value, tuple):
                        value = list(value)  # LiveCodeBench compares (and shows) a returned tuple as a list
                    out[tid] = check_message("wrong", inputs, expected, output=truncate(value))
                    continue
                kind, error = (got[0], got[1]) if got is not None else ("error", error)
            out[tid] = check_message("timeout" if kind == "timeout" else "error", inputs, expected, error=str(error))
        return out

    def _shown_test(self, suite: _Suite, k: int) -> tuple[str, str]:
        """A test's input and expected output as LiveCodeBench's metadata shows them."""
        test = suite.tests[k]
        if suite.functional and suite.error is None:
            args = codec.decode(suite.payload)[k]
            return truncate(list(args)), truncate(suite.expected[k])
        return truncate(test.input), truncate(test.output)

    def _probe_job(self, suite: _Suite, k: int, program: str) -> CallJob:
        if suite.functional:
            code = functional_code(program, suite.func_name) + "\n__lcb_target = __lcb_call\n" + _PROBE
            payload = encode_inputs([codec.decode(suite.payload)[k]])
        else:
            code = stdin_code(program, self.stdio, self.time_limit) + "\n__lcb_target = __lcb_stdin\n" + _PROBE
            payload = encode_inputs([[suite.tests[k].input]])
        return CallJob(code=code, entry_point="__lcb_probe", inputs_key=f"livecodebench-repair:{suite.task_id}:{k}",
                       inputs_payload=lambda: payload, limits=[self.time_limit], costs=[0.01],
                       budget=self.time_limit + 5.0, exec_limit=self.time_limit, keep_outputs=True)  # fmt: skip

    def _run_probes(self, probes: list[tuple[str, CallJob]]) -> dict[str, tuple[str, Any]]:
        if not probes:
            return {}
        workers = max(1, min(len(probes), os.cpu_count() or 1, 4))
        with Sandbox(SandboxSettings(workers=workers)) as sandbox:
            results = sandbox.run([job for _, job in probes])
        out: dict[str, tuple[str, Any]] = {}
        for (tid, _), res in zip(probes, results):
            if res.error:
                out[tid] = ("error", res.error)
            elif getattr(res, "outputs", None) and res.outputs[0] is not None:
                try:
                    tag, value = codec.decode(res.outputs[0])
                    out[tid] = (str(tag), value)
                except (ValueError, TypeError, RecursionError, OverflowError):
                    out[tid] = ("error", "output could not be decoded")
            elif res.failed:
                why = res.reasons.get(res.failed[0], "failed")
                out[tid] = ("timeout", "TimeoutException()") if why == "time limit exceeded" else ("error", why)
        return out

    # -------------------------------------------------------------- prompts
    def prompt(self, problem: Problem, style: str) -> Prompt:
        """LiveCodeBench's self-repair prompt for a failed program; a one-line placeholder for a passed one."""
        if style not in ("base", "instruct"):
            raise HarnessError(f"unknown prompt style {style!r} (base, instruct)")
        fs = self._by_task[problem.task_id]
        if fs.passed:
            if style == "instruct":
                return Prompt(instruction=PLACEHOLDER, stop=("\n",))
            return Prompt(text=PLACEHOLDER + "\n", stop=("\n",))
        body = question_with_answer(problem.prompt, fs.program, self.feedback[problem.task_id])
        if style == "instruct":
            return Prompt(instruction=body + "\n\n" + FORMATTING_REPEAT, system=SYSTEM_MESSAGE)
        return Prompt(text=f"{SYSTEM_MESSAGE}\n{body}", stop=("###",))

    def sample(self, problem: Problem, style: str, prompt: Prompt, text: str, field: str | None = None) -> dict[str, str]:
        """The fixed program (LiveCodeBench's extraction); a passed task's sample is the first run's program."""
        fs = self._by_task[problem.task_id]
        if fs.passed:
            return {"solution": fs.program}
        if field is not None:
            return {field: text}
        return {"solution": extract_last_block(text)}

    def reply_sample(self, problem: Problem, reply: str) -> dict[str, str]:
        """A whole reply (reasoning prompts, ``--extract official``): the same rule as :meth:`sample` (its
        prompt has no response prefix), not code generation's."""
        return self.sample(problem, "instruct", Prompt(), reply)

    def oracle_sample(self, problem: Problem) -> tuple[str, str]:
        """A passed program; LiveCodeBench publishes no reference solutions for the failed ones."""
        fs = self._by_task[problem.task_id]
        if fs.passed:
            return "solution", fs.program
        raise HarnessError("LiveCodeBench has no reference solutions; the oracle cannot repair a program")

    def load_samples(self, path: Path, skip_bad: bool = False) -> tuple[list[Sample], list[BadLine]]:
        """Repaired programs by task (LiveCodeBench's formats too); tasks that passed in the first run and have
        no sample in the file get the first run's program."""
        samples, bad = LiveCodeBench.load_samples(self, path, skip_bad)
        have = {s.task_id for s in samples}
        extra = [Sample(0, fs.task_id, fs.program, None) for fs in self.first_samples
                 if fs.passed and fs.task_id not in have]  # fmt: skip
        return samples + extra, bad

