"""Every sample gets a failure mode: real-shaped replies replayed and graded, compare says what moved.

``tests/fixtures/reasoning/*.jsonl`` hold reasoning-model replies as ``generations.jsonl`` stores them (``text``,
``finish_reason``, ``reasoning_content``, token counts) with the mode each must get (``expect``): a closed
think block then code, a think block cut by the token limit, ``reasoning_content`` beside the content, code only
inside the thinking, several fenced blocks, and one of every failure the grader can tell apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.benchmark import PartVerdict, Verdict
from harness.engine.base import Backend, BackendOptions, Emit, Engine
from harness.engine.types import Completion, Job
from harness.execution import SandboxSettings
from harness.failure import GenerationFacts, classify, describe_movement, movement_text
from harness.model_eval import EvalSettings, eval_model
from harness.registry import load_entry
from reports.compare import compare, format_comparison

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reasoning"
DAY = "2025-01-04"
QUIET = {"echo": lambda _: None}
SANDBOX = SandboxSettings(workers=2)


def _fixture(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def _modes(record: Any) -> dict[str, tuple[str | None, str | None]]:
    return {tid: (t.samples[0].failure_mode, t.samples[0].exception) for tid, t in record.tasks.items()}


def test_reasoning_replies_on_humaneval_get_their_modes(data_dir: Path, tmp_path: Path) -> None:
    rows = _fixture("humaneval.jsonl")
    replay = tmp_path / "replies.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    lines: list[str] = []
    records = eval_model(f"replay:{replay}", ["humaneval"], out, EvalSettings(limit=len(rows)), data_dir=data_dir,
                         parallel=2, sandbox_settings=SANDBOX, echo=lines.append)  # fmt: skip
    record = records["humaneval"]
    got = _modes(record)
    want = {r["task_id"]: (r["expect"], r.get("exception")) for r in rows}
    assert got == want
    assert record.failure_modes["pass"] == 3 and sum(record.failure_modes.values()) == len(rows)
    assert any(line.startswith("humaneval") and "failure modes: 3 pass" in line for line in lines), lines
    gen = record.generation
    assert gen is not None and gen.unclosed_thinking == 2 and gen.samples_with_thinking >= 10
    assert gen.reasoning_tokens > 30 and gen.answer_tokens == gen.completion_tokens - gen.reasoning_tokens
    assert gen.reasoning_tokens_source["reported"] == 1  # HumanEval/2's server count
    raw = {g["task_id"]: g for g in map(json.loads, (out / "humaneval" / "generations.jsonl").read_text().splitlines())}
    assert raw["HumanEval/2"]["reasoning_content"].startswith("The integer part")
    assert raw["HumanEval/2"]["reasoning_tokens"] == 30 and raw["HumanEval/2"]["answer_tokens"] == 50
    assert raw["HumanEval/1"]["thinking_closed"] is False and raw["HumanEval/0"]["thinking"].startswith("I compare")
    assert "<think>" in raw["HumanEval/0"]["text"]  # the raw reply is kept whole
    samples = {s["task_id"]: s["solution"] for s in map(json.loads, (out / "humaneval" / "samples.jsonl")
                                                         .read_text().splitlines())}  # fmt: skip
    # EvalPlus's sanitizer: the reachable definitions of the biggest block, imports kept, the print dropped.
    assert samples["HumanEval/4"].startswith("from typing import List\ndef _mean(xs):")
    assert "print(" not in samples["HumanEval/4"] and "return True" not in samples["HumanEval/0"]
    # Stored in the run record as read back from disk.
    from harness.store import load_run

    again = load_run(out / "humaneval" / "run.json")
    assert _modes(again) == want and again.failure_modes == record.failure_modes


def test_reasoning_replies_on_livecodebench_get_their_modes(data_dir: Path, tmp_path: Path) -> None:
    if not (data_dir / "livecodebench").is_dir():
        pytest.skip("no livecodebench folder in the data folder")
    from benchmarks.livecodebench import LiveCodeBench

    rows = _fixture("livecodebench.jsonl")
    mine = {r["task_id"] for r in rows}
    problems = list(LiveCodeBench(data_dir=data_dir, start_date=DAY, end_date=DAY).problems())
    # Every other problem of the day gets an empty reply (a refusal).
    replies = rows + [{"task_id": tid, "text": "", "finish_reason": "stop"} for tid in problems if tid not in mine]
    replay = tmp_path / "replies.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in replies))
    records = eval_model(f"replay:{replay}", ["livecodebench"], tmp_path / "run", EvalSettings(), data_dir=data_dir,
                         parallel=2, sandbox_settings=SANDBOX,
                         bench_options={"livecodebench": {"start_date": DAY, "end_date": DAY}}, **QUIET)  # fmt: skip
    got = _modes(records["livecodebench"])
    assert {tid: got[tid][0] for tid in mine} == {r["task_id"]: r["expect"] for r in rows}
    assert {got[tid][0] for tid in problems if tid not in mine} == {"refused"}


def test_extract_override_changes_the_rule(data_dir: Path) -> None:
    from harness import benchmark as registry
    from harness.model_eval import extract
    from harness.reasoning import split_reply

    he = registry.get("humaneval", data_dir=data_dir)
    problem = he.problems()["HumanEval/4"]
    prompt = he.prompt(problem, "instruct")
    answer = split_reply(next(r for r in _fixture("humaneval.jsonl") if r["task_id"] == "HumanEval/4")["text"]).answer
    rules = {rule: extract(he, problem, "instruct", prompt, answer, rule, "")["solution"]
             for rule in ("auto", "official", "evalplus", "lcb", "raw")}  # fmt: skip
    assert rules["auto"] == rules["official"] == rules["evalplus"]  # EvalPlus's sanitizer is HumanEval+'s rule
    # LiveCodeBench's rule takes the last fenced block: here the example run, not the code.
    assert rules["lcb"] == ">>> mean_absolute_deviation([1.0, 2.0])\n0.5" and rules["raw"] == answer
    # A reply that continues the ```python prefix: the prefix rule (up to the closing fence, prompt imports).
    cont = extract(he, problem, "instruct", prompt, "def mean_absolute_deviation(numbers):\n    return 0.0\n```\nok",
                   "auto", "```python\n")["solution"]  # fmt: skip
    assert cont.startswith("from typing import List\n") and "```" not in cont
    # Stored samples (replay, oracle) pass through as stored under auto.
    assert extract(he, problem, "replay", prompt, "x", "auto", "", stored_field="completion") == {"completion": "x"}
    # ... and any other rule re-extracts them: a stored completion is the prompt's function body.
    body = "    return 0.0\n"
    for rule in ("evalplus", "official"):
        again = extract(he, problem, "replay", prompt, body, rule, "", stored_field="completion")["solution"]
        assert again.startswith("from typing import List\ndef mean_absolute_deviation(") and again.endswith("return 0.0")
    assert extract(he, problem, "replay", prompt, body, "raw", "", stored_field="completion") == {"completion": body}


# ---------------------------------------------------------------- classification rules, no sandbox
def _v(status: str, reason: str | None = None, error: str | None = None) -> Verdict:
    parts = {"base": PartVerdict(status="pass" if status == "pass" else ("timeout" if status == "timeout" else "fail"),
                                 failed=[0] if reason else [], reasons={0: reason} if reason else {})}  # fmt: skip
    return Verdict(status=status, parts=parts, error=error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("verdict", "program", "facts", "mode", "exception"),
    [
        (_v("pass"), "def f():\n    return 1", GenerationFacts(finish_reason="length"), "pass", None),
        (_v("fail", "wrong output"), "def f():\n    return 1", None, "wrong_answer", None),
        (_v("fail", "raised ValueError: no"), "def f():\n    raise ValueError", None, "runtime_error", "ValueError"),
        (_v("fail", "raised MemoryError: "), "def f():\n    return [0] * 10**12", None, "memory", None),
        (_v("fail", "time limit exceeded"), "def f():\n    while 1: pass", None, "timeout", None),
        (_v("timeout"), "def f():\n    while 1: pass", None, "timeout", None),
        (_v("fail", "program died (signal 9)"), "def f():\n    pass", None, "memory", None),
        (_v("fail", error="KeyError: 'f'"), "def g():\n    return 1", None, "wrong_signature", None),
        (_v("fail", error="SyntaxError: invalid syntax"), "def f(:\n", None, "syntax_error", None),
        (_v("fail", "wrong output"), "def f(:", GenerationFacts(finish_reason="length"), "truncated", None),
        (_v("fail"), "x", GenerationFacts(thinking_unclosed=True, finish_reason="length"), "truncated_thinking", None),
        (_v("fail"), "", GenerationFacts(no_code=True), "no_code", None),
        (_v("fail"), "I cannot", GenerationFacts(no_code=True, answer_head="I cannot help with that."), "refused", None),
        (_v("fail"), "", GenerationFacts(empty_answer=True, no_code=True), "refused", None),
        (_v("fail"), "", GenerationFacts(finish_reason="error"), "error", None),
        (Verdict(status="error", error="not graded"), "x", None, "error", None),
        # LiveCodeBench's wording: the benchmark's phrase first, the program's output after it is not read.
        (_v("fail", "wrong answer on test 2 (public): got 'raised KeyError'"), "def f():\n    print(1)", None,
         "wrong_answer", None),
        (_v("fail", "test 0 (public) raised IndexError: list index out of range"), "print(1)", None,
         "runtime_error", "IndexError"),
        (_v("fail", "test 0 (public) raised NameError: name 'h' is not defined"), "def f():\n    h()", None,
         "runtime_error", "NameError"),
        # A script's traceback (DS-1000, CRUXEval): its last line names the exception; a failed assertion is
        # the tests saying no.
        (_v("fail", error="Traceback (most recent call last):\n  File x\nKeyError: 'a'\n"), "f = 1", None,
         "runtime_error", "KeyError"),
        (_v("fail", error="Traceback (most recent call last):\n  File x\nAssertionError\n"), "f = 1", None,
         "wrong_answer", None),
    ],
)
def test_failure_modes_follow_the_grader(verdict: Verdict, program: str, facts: GenerationFacts | None, mode: str,
                                         exception: str | None) -> None:  # fmt: skip
    found = classify(verdict, program, entry_point="f", facts=facts)
    assert (found.mode, found.exception) == (mode, exception)


def test_signature_of_a_class_method_and_old_records() -> None:
    lcb = _v("fail", "program failed to load: AttributeError: type object 'Solution' has no attribute 'hasMatch'")
    assert classify(lcb, "class Solution:\n    def has_match(self, s, p):\n        return True",
                    required=("hasMatch",)).mode == "wrong_signature"  # fmt: skip
    ok = "class Solution:\n    def hasMatch(self, s, p):\n        return s.x"
    assert classify(lcb, ok, required=("hasMatch",)).mode == "runtime_error"
    from harness.store import SampleResult

    # A record written before failure modes existed gets one from its verdict when read.
    old = SampleResult.model_validate({"line": 1, "verdict": _v("timeout").model_dump()})
    assert old.failure_mode == "timeout"


def test_movement_is_told_in_words() -> None:
    moved = describe_movement({"pass": 10, "wrong_answer": 5, "truncated": 1},
                              {"pass": 6, "wrong_answer": 2, "truncated": 13})  # fmt: skip
    assert moved == [("truncated", 12), ("wrong_answer", -3)]
    assert movement_text(moved) == "12 more truncated, 3 fewer wrong answers"
    assert movement_text([("timeout", 1)]) == "1 more timeout"


# ---------------------------------------------------------------- compare: a lower --max-tokens is truncation
class ClippedBackend(Backend):
    """A model that answers each HumanEval task with its reference solution, cut at ``max_tokens`` words."""

    name = "clipped"
    cacheable = False
    replies: dict[str, str] = {}

    def identity(self) -> dict[str, Any]:
        return {"clipped": 1}

    def default_style(self) -> str:
        return "instruct"

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        for j, job in enumerate(jobs):
            words = self.replies[job.request.task_id or ""].split(" ")
            limit = job.request.sampling.max_tokens
            text = " ".join(words[:limit]) + ("" if len(words) > limit else "\n```")
            for i in job.indices:
                emit(j, i, Completion(text, "length" if len(words) > limit else "stop", 10, min(limit, len(words))))


def test_compare_of_runs_that_differ_in_max_tokens_says_truncation(data_dir: Path, tmp_path: Path) -> None:
    from harness import benchmark as registry

    he = registry.get("humaneval", data_dir=data_dir)
    ClippedBackend.replies = {tid: p.prompt + p.canonical_solution for tid, p in list(he.problems().items())[:4]}
    runs = {}
    for tokens in (2000, 40):
        engine = Engine("clipped:x", ClippedBackend("x", BackendOptions()), None)
        out = tmp_path / f"t{tokens}"
        eval_model("clipped:x", ["humaneval"], out, EvalSettings(limit=4, max_tokens=tokens), data_dir=data_dir,
                   parallel=2, engine=engine, sandbox_settings=SANDBOX, **QUIET)  # fmt: skip
        runs[tokens] = load_entry(out / "humaneval" / "run.json")
    result = compare(runs[2000], runs[40])
    doc = result.to_json()["failure_modes"]
    from tests.test_cli import harness

    # The command line says the same (the runs are in this session's registry, under its cache).
    proc = harness("compare", runs[2000].id, runs[40].id, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["failure_modes"] == doc
    assert doc["a"] == {"pass": 4} and doc["b"] == {"truncated": 4}
    assert doc["truncation"] is True and doc["settings_differ"] == {"max_tokens": [2000, 40]}
    text = format_comparison(result)
    assert f"{doc['b']['truncated']} more truncated" in text and "the change is truncation" in text
    assert "max_tokens 2000 vs 40" in text


def test_whole_replies_in_other_languages_keep_their_block(data_dir: Path) -> None:
    if not (data_dir / "humaneval-x" / "humaneval_cpp.jsonl.gz").is_file():
        pytest.skip(f"HumanEval-X data not found under {data_dir}/humaneval-x")
    from harness import benchmark as registry

    cpp = registry.reader("humaneval-x-cpp", data_dir)
    problem = cpp.problems()["CPP/53"]
    reply = ("Add them.\n\n```cpp\n#include<stdio.h>\nint add(int x,int y){\n    return x+y;\n}\n```\n\nUsage:\n\n"
             "```python\nprint(add(1, 2))\n```\n")  # fmt: skip
    assert cpp.reply_sample(problem, reply) == {"solution": "#include<stdio.h>\nint add(int x,int y){\n    return x+y;\n}\n"}
