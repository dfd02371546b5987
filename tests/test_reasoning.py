"""Reasoning models end to end: thinking split from the answer, the template's switch, servers' reasoning fields,
thinking budgets, and EvalPlus's sanitizer as the official rule for replies that are prose around code."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.engine import create_engine
from harness.engine.base import Backend, BackendOptions, Emit, Engine
from harness.engine.types import Completion, Job, Message, Request, Sampling
from harness.errors import ConfigError
from harness.execution import SandboxSettings
from harness.extraction import evalplus_sanitize, has_code, last_fenced_block, longest_parsing_span
from harness.model_eval import EvalSettings, _plan, _requests, eval_model
from harness.reasoning import ThinkTags, split_reply
from tests.conftest import REFERENCE

SANDBOX = SandboxSettings(workers=2)


# ---------------------------------------------------------------- splitting thinking from the answer
@pytest.mark.parametrize(
    ("text", "reasoning", "opened", "thinking", "answer", "unclosed"),
    [
        ("<think>\nplan\n</think>\n\ncode", None, False, "plan", "code", False),
        ("plan</think>code", None, False, "plan", "code", False),  # the template opened the block
        ("<think>\nstill going", None, False, "still going", "", True),
        ("still going", None, True, "still going", "", True),
        ("no thinking here", None, False, None, "no thinking here", False),
        ("the answer", "the reasoning", False, "the reasoning", "the answer", False),
        ("a<think>x</think>b<think>y</think>c", None, False, "x\ny", "abc", False),
    ],
)
def test_replies_split_into_thinking_and_answer(text: str, reasoning: str | None, opened: bool,
                                                thinking: str | None, answer: str, unclosed: bool) -> None:  # fmt: skip
    reply = split_reply(text, reasoning, opened=opened)
    assert (reply.thinking, reply.answer, reply.unclosed) == (thinking, answer, unclosed)


def test_think_tags_are_configurable() -> None:
    tags = ThinkTags.parse("<reasoning>,</reasoning>")
    assert split_reply("<reasoning>r</reasoning>a", tags=tags).answer == "a"
    with pytest.raises(ConfigError, match="--think-tags"):
        ThinkTags.parse("<think>")
    with pytest.raises(ConfigError, match="two different"):
        ThinkTags.parse("<t>,<t>")


# ---------------------------------------------------------------- extraction rules of the official tools
def test_evalplus_sanitizer_rules() -> None:
    reply = ("Some words first\n```python\nimport math\nfrom os import path\n\nLIMIT = 3\n\ndef helper(x):\n"
             "    return math.sqrt(x) + LIMIT\n\ndef unused():\n    return 0\n\ndef solve(x):\n    return helper(x)\n\n"
             "def solve(x):\n    return -1\n\nprint(solve(4))\nassert solve(4) == 5\n```\nMore words\n")  # fmt: skip
    assert evalplus_sanitize(reply, "solve") == ("import math\nfrom os import path\nLIMIT = 3\ndef helper(x):\n"
                                                 "    return math.sqrt(x) + LIMIT\ndef solve(x):\n    return helper(x)")  # fmt: skip
    # Without an entry point every definition with a return stays; a function without one is dropped.
    assert "def unused" in evalplus_sanitize(reply) and "def noret" not in evalplus_sanitize(
        "```python\ndef noret():\n    pass\n\ndef f():\n    return 1\n```")  # fmt: skip
    assert longest_parsing_span("Some prose.\nx = 1\ny = 2\nmore prose here") == "x = 1\ny = 2"
    assert last_fenced_block("```python\na = 1\n```\ntext\n```\nb = 2\n```") == "b = 2"
    assert last_fenced_block("```python\nunclosed") == ""
    assert has_code("x = 1") and not has_code("Done") and not has_code("Sure, here it is.")


def test_a_degenerate_reply_is_searched_within_a_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.extraction as ex

    calls = []
    real = ex._failure_line
    monkeypatch.setattr(ex, "_failure_line", lambda code: calls.append(1) or real(code))
    text = "\n".join("x = (1," for _ in range(70)) + "\nprose at the end"  # every span fails, none at its start
    assert ex.evalplus_sanitize(text, "f") == "x = (1,"  # EvalPlus's answer when nothing parses: the first line
    assert ex.has_code(text) is False
    assert len(calls) <= ex.PARSE_BUDGET  # the same text is searched once (cached), and only so far


@pytest.mark.reference
def test_evalplus_sanitizer_equals_evalplus_itself(data_dir: Path) -> None:
    ref = pytest.importorskip("evalplus.sanitize", reason="EvalPlus 0.3.1 is the reference: pip install -e '.[reference]'")
    import gzip

    rows = [json.loads(x) for x in gzip.decompress((data_dir / "humanevalplus" / "HumanEvalPlus-v0.1.10.jsonl.gz")
                                                   .read_bytes()).decode().splitlines()]  # fmt: skip
    problems = {r["task_id"]: r for r in rows}
    cases = []
    for k, line in enumerate((data_dir / REFERENCE / "humaneval.jsonl").read_text().splitlines()[:6]):
        s = json.loads(line)
        p = problems[s["task_id"]]
        code, entry = p["prompt"] + s["completion"], p["entry_point"]
        cases += [(code, entry), (f"Here:\n```python\n{code}\n```\nTest:\n```python\nassert {entry}(1)\n```\n", entry)]
        lines = code.split("\n")
        cases.append(("\n".join(lines[: k % len(lines)]) + "\nOops, again:\n" + "\n".join(lines[k % len(lines):]), None))
        # Prose, broken code and fences around it: the errors the search skips over, and the ones it must not.
        junk = ["Let's think: it’s O(n log n).", "  indented prose", "x = (1,", "the 1st sort…", "def broken(:",
                '"""', "Note: don't", "    return 1", "```", "print('a')"]  # fmt: skip
        if k < 6:  # EvalPlus's own search is cubic in the lines: a few such cases keep this test short
            prose = "\n".join(junk[(k * 7 + m * 3) % len(junk)] for m in range(3 + k))
            cases.append((f"{prose}\n{code}\n{prose}", entry))
    for text, entry in cases:
        assert evalplus_sanitize(text, entry) == ref.sanitize(text, entry), text


# ---------------------------------------------------------------- the tiny model's thinking switch
def test_reasoning_flag_changes_the_rendered_prompt(tiny_model: Path, data_dir: Path) -> None:
    from harness import benchmark as registry

    engine = create_engine(f"hf:{tiny_model}", use_cache=False)
    backend = engine.backend
    assert backend.thinking_switch() and not backend.thinks_by_default()
    he = registry.get("humaneval", data_dir=data_dir)
    problem = he.problems()["HumanEval/0"]
    rendered = {}
    for mode in ("on", "off", "auto"):
        settings = EvalSettings(reasoning=mode)
        plan = _plan(engine, settings)
        (request,), (prompt,), _ = _requests(he, [problem], plan, settings)
        rendered[mode] = backend.render(request)[0]
        if mode == "on":
            assert request.thinking is True and request.response_prefix == "" and request.sampling.stop == ()
            assert plan.max_tokens == 32_000
        else:
            assert request.thinking is False and request.response_prefix == "```python\n"
            assert plan.max_tokens == 768
    assert rendered["on"].endswith("<|im_start|>assistant\n<think>\n")
    assert rendered["off"].endswith("<|im_start|>assistant\n```python\n") and rendered["auto"] == rendered["off"]
    assert backend.opens_thinking(_requests(he, [problem], _plan(engine, EvalSettings(reasoning="on")),
                                            EvalSettings(reasoning="on"))[0][0], "<think>")  # fmt: skip
    # A budget the backend cannot keep is refused before anything is generated.
    with pytest.raises(ConfigError, match="needs thinking"):
        _plan(engine, EvalSettings(thinking_budget=8))


def test_thinking_budget_closes_the_thinking(tiny_model: Path) -> None:
    engine = create_engine(f"hf:{tiny_model}", use_cache=False)
    messages = (Message("user", "Write a function."),)
    request = Request(messages=messages, thinking=True, sampling=Sampling(max_tokens=24, thinking_budget=6))
    (result,) = engine.generate([request])
    text = result.completions[0].text
    assert "</think>" in text
    head = text.split("</think>")[0]
    assert len(engine.backend.tokenizer.encode(head, add_special_tokens=False)) <= 8  # budget + the forced newline
    free = engine.generate([Request(messages=messages, thinking=True, sampling=Sampling(max_tokens=24))])[0]
    assert "</think>" not in free.completions[0].text  # noise never closes on its own


# ---------------------------------------------------------------- OpenAI-compatible servers
class ThinkingScript(Backend):
    """A model that thinks, then answers each HumanEval prompt with its reference solution in a fence."""

    name = "thinking-script"
    cacheable = False
    solutions: dict[str, str] = {}

    def identity(self) -> dict[str, Any]:
        return {"script": 1}

    def default_style(self) -> str:
        return "instruct"

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        for j, job in enumerate(jobs):
            asked = "\n".join(m.content for m in job.request.messages or ())
            code = next(sol for key, sol in self.solutions.items() if key in asked)
            text = (f"<think>\nI should reuse the docstring's examples to check {len(code)} characters.\n</think>\n\n"
                    f"Here is the function:\n\n```python\n{code}\n```\n")  # fmt: skip
            for i in job.indices:
                emit(j, i, Completion(text, "stop", 50, 90))


@pytest.mark.parametrize("shape", ["parser", "hidden"])
def test_server_reasoning_is_recorded_and_counted(shape: str, data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("openai")
    from harness import benchmark as registry
    from tests.openai_server import serve

    he = registry.get("humaneval", data_dir=data_dir)
    ThinkingScript.solutions = {p.prompt.strip(): p.prompt + p.canonical_solution
                                for p in list(he.problems().values())[:3]}  # fmt: skip
    script = Engine("thinking-script:x", ThinkingScript("x", BackendOptions()), None)
    with serve(script, reasoning=shape) as url:
        out = tmp_path / shape
        records = eval_model("openai:tiny", ["humaneval"], out, EvalSettings(limit=3, reasoning="on", max_tokens=4000),
                             engine_options={"base_url": url, "thinking_switch": True}, use_cache=False,
                             data_dir=data_dir, parallel=2, sandbox_settings=SANDBOX, echo=lambda _: None)  # fmt: skip
        bodies = [body for _, body in url.server.bodies]
    record = records["humaneval"]
    assert record.failure_modes == {"pass": 3}
    assert all(b["chat_template_kwargs"] == {"enable_thinking": True} and b["max_tokens"] == 4000 for b in bodies)
    assert all(b["messages"][-1]["role"] == "user" for b in bodies)  # no response prefix: the model thinks first
    gens = [json.loads(x) for x in (out / "humaneval" / "generations.jsonl").read_text().splitlines()]
    gen = record.generation
    assert gen is not None and gen.reasoning == "on" and gen.samples_with_thinking == 3
    if shape == "parser":  # vllm serve --reasoning-parser: the thinking arrives as reasoning_content
        assert all(g["reasoning_content"].startswith("I should reuse") and "<think>" not in g["text"] for g in gens)
        assert gen.reasoning_tokens_source == {"estimated": 3} and 0 < gen.reasoning_tokens < gen.completion_tokens
    else:  # o-series: hidden reasoning, only its token count
        assert all(g["reasoning_content"] is None and g["reasoning_tokens"] == 10 for g in gens)
        assert gen.reasoning_tokens == 30 and gen.answer_tokens == 3 * 90 - 30
        assert gen.reasoning_tokens_source == {"reported": 3}


def test_reasoning_content_survives_the_response_cache(tmp_path: Path) -> None:
    from harness.engine.cache import ResponseCache

    with ResponseCache(tmp_path) as cache:
        cache.put("k", Completion("answer", "stop", 3, 9, reasoning="thoughts", reasoning_tokens=5))
        cache.put("plain", Completion("x", "stop", 1, 1))
    with ResponseCache(tmp_path) as cache:
        found = cache.get_many(["k", "plain"])
    assert (found["k"].reasoning, found["k"].reasoning_tokens) == ("thoughts", 5)
    assert (found["plain"].reasoning, found["plain"].reasoning_tokens) == (None, None)


def test_cli_flags_reach_the_run(tmp_path: Path, data_dir: Path) -> None:
    from tests.test_cli import harness

    bad = harness("eval", "--model", "oracle", "--reasoning", "maybe", "--output", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--reasoning" in bad.stderr
    proc = harness("eval", "--model", "oracle", "--benchmarks", "humaneval", "--limit", "2", "--thinking-budget", "9",
                   "--data-dir", str(data_dir), "--output", str(tmp_path / "y"))  # fmt: skip
    assert proc.returncode == 2 and re.search(r"--thinking-budget is not supported by the oracle backend", proc.stderr)
