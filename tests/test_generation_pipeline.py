"""Self-OSS-Instruct, self-validation and selection: exemplars, prompts, a scripted end-to-end run, the tiny model.

The scripted engine answers each stage's prompt from the item at the end of
the prompt (the seed's function, the concepts line, the instruction), so
the stages run concepts -> select on seed rows written here and every
outcome is known in advance: a seed whose concepts are unparsable, one of
another language, an instruction whose responses all fail, a planted
HumanEval solution, a near-duplicate pair, and two clean pairs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.core import Context, PipelineConfig, StageFiles, load_funnel
from generation.exemplars import load_fewshot, parse_fewshot
from generation.instruct import concepts_prompt, parse_property, pick_exemplars, response_prompt
from generation.pipeline import run_stage
from generation.validate import extract, fenced_code
from harness.engine import Completion, Engine
from harness.engine.base import Backend, BackendOptions, Emit
from harness.engine.types import Job
from harness.errors import HarnessError

LATER_STAGES = ("concepts", "instructions", "responses", "validate", "select")


# ------------------------------------------------------------------ exemplars and prompts
def test_exemplars_are_enough_and_every_response_passes_its_own_tests(sandbox: Any) -> None:
    from harness.execution import ScriptJob

    fewshot = load_fewshot()
    assert len(fewshot.exemplars) >= 8
    assert len({e.instruction for e in fewshot.exemplars}) == len(fewshot.exemplars)
    for e in fewshot.exemplars:
        got = extract(f"{e.response}\n\n[Tests]\n{e.tests}")
        assert got.problem is None, (e.number, got.problem)
        assert parse_property(e.property).keys() == {"category", "language", "difficulty", "concepts"}
    results = sandbox.run_scripts([ScriptJob(e.program(), cpu_limit=10) for e in fewshot.exemplars])
    failed = {e.number: r.error for e, r in zip(fewshot.exemplars, results) if r.status != "pass"}
    assert failed == {}
    # the tests do test: a response with its code broken fails them
    broken = fewshot.exemplars[0].program().replace("i ^ (i >> 1)", "i")
    assert sandbox.run_scripts([ScriptJob(broken, cpu_limit=10)])[0].status == "fail"


def test_fewshot_layout_errors_name_the_example() -> None:
    text = "### System: S->C\na\n### System: C->I\nb\n### System: I->R\nc\n### Example 1\n[Code]\nx\n[Property]\ny\n"
    with pytest.raises(HarnessError, match="example 1 has sections"):
        parse_fewshot(text)


def test_prompts_end_in_the_section_the_model_writes() -> None:
    pool = load_fewshot().exemplars
    shots = pick_exemplars(pool, 3, seed=7)
    assert shots == pick_exemplars(pool, 3, seed=7) and len(shots) == 3
    p = concepts_prompt("def f(x):\n    return x", shots)
    assert p.endswith("### Example 4\n[Code]\ndef f(x):\n    return x\n\n[Property]\n")
    assert p.count("[Instruction]") == 0 and p.count("[Property]") == 4
    r = response_prompt("Write f.", shots)
    assert r.endswith("[Instruction]\nWrite f.\n\n[Response]\n") and r.count("\n[Tests]\n") == 3


def test_property_parsing_and_response_extraction() -> None:
    prop = parse_property("Category: Function Implementation\nlanguage: Python\nconcepts: a,  b ,, c.\n\nnoise")
    assert prop == {"category": "function implementation", "language": "Python", "concepts": "a, b, c"}
    assert parse_property("no property here") == {}
    ok = "Text.\n\n```python\ndef f():\n    return 1\n```\n\n[Tests]\nCheck:\n\n```python\nassert f() == 1\n```"
    got = extract(ok)
    assert got.problem is None and got.code == "def f():\n    return 1" and got.test_code == "assert f() == 1"
    assert got.response.endswith("```") and got.tests.startswith("Check:")
    assert extract("").problem == "empty"
    assert extract("No code at all.\n\n[Tests]\n```python\nassert 1\n```").problem == "no_code"
    assert extract("```python\nx = 1\n```\n").problem == "no_tests"
    assert extract("```python\nx = 1\n```\n[Tests]\n```python\nassert x ==\n```").problem == "syntax_error"
    assert extract("```python\nx = 1\n```\n[Tests]\n```python\nprint(x)\n```").problem == "no_asserts"
    assert extract("```python\nx = 1\n[Tests]\n```python\nassert x\n```").problem == "no_code"  # unclosed fence
    assert fenced_code("```bash\nls\n```\n```py\nx = 1\n```") == "x = 1"


# ------------------------------------------------------------------ the scripted engine
def _response(code: str, tests: str | None) -> str:
    text = f"The approach is short.\n\n```python\n{code.strip()}\n```\n"
    if tests is not None:
        text += f"\n[Tests]\nThese asserts check it:\n\n```python\n{tests.strip()}\n```\n"
    return text


SLUG_PASS = _response(
    """
def make_slug(text):
    kept = "".join(c for c in text.lower() if c.isalnum() or c.isspace())
    return "-".join(kept.split())
""",
    """
assert make_slug("Hello, World!") == "hello-world"
assert make_slug("  a  b ") == "a-b"
""",
)
SLUG_FAIL = SLUG_PASS.replace('return "-".join', 'return "_".join')
SLUG_NO_TESTS = _response('def make_slug(text):\n    return "-".join(text.lower().split())', None)
CLAMP_PASS = _response(
    """
def clamp_all(values, low, high):
    if low > high:
        raise ValueError("low > high")
    return [min(max(v, low), high) for v in values]
""",
    """
assert clamp_all([-5, 3, 12], 0, 10) == [0, 3, 10]
assert clamp_all([], 1, 2) == []
""",
)
CLAMP_SYNTAX = CLAMP_PASS.replace("def clamp_all(values, low, high):", "def clamp_all(values, low, high)")
SPLIT_FAIL = _response(
    """
def split_evenly(items, parts):
    size = len(items) // parts
    return [items[i * size:(i + 1) * size] for i in range(parts)]
""",
    "assert split_evenly([1, 2, 3], 2) == [[1, 2], [3]]",
)
SPLIT_LOOPS = _response(
    "def split_evenly(items, parts):\n    while True:\n        pass", "assert split_evenly([1], 1) == [[1]]"
)

SLUG_INSTRUCTION = ("Write a Python function `make_slug(text)` that lower-cases text, keeps only letters, digits and "
                    "spaces, and joins the words with single hyphens.")  # fmt: skip


def _seed(name: str, code: str) -> dict[str, Any]:
    return {"key": f"stdlib/{name}.py::{name}", "seed": code, "name": name, "path": f"Lib/{name}.py",
            "licence": "PSF-2.0", "docstring": re.search(r'"""(.*?)"""', code, re.S).group(1)}  # type: ignore[union-attr]  # fmt: skip


def _script(planted_code: str) -> dict[str, dict[str, Any]]:
    """Per seed function: the property the model 'writes', its instruction and its response samples (cycled)."""
    prop = "category: function implementation\nlanguage: Python\ndifficulty: easy\nconcepts: {}\n"
    return {
        "slugify": {
            "concepts": prop.format("string normalisation, splitting on whitespace, joining with a separator"),
            "instruction": SLUG_INSTRUCTION,
            "responses": [SLUG_PASS, SLUG_FAIL, SLUG_NO_TESTS, SLUG_PASS],
        },
        "clamp": {
            "concepts": prop.format("min and max composition, range validation, list comprehension"),
            "instruction": "Write a Python function `clamp_all(values, low, high)` that limits every value "
            "to the range from low to high, raising ValueError when low is greater than high.",
            "responses": [CLAMP_PASS, CLAMP_SYNTAX],
        },
        "closest_gap": {
            "concepts": prop.format("sorting, pairwise comparison of neighbours, thresholds"),
            "instruction": "Write a Python function `has_close_elements(numbers, threshold)` that tells "
            "whether any two numbers of a list are closer to each other than threshold.",
            "responses": [
                _response(
                    planted_code,
                    "assert has_close_elements([1.0, 2.8, 3.0], 0.3)\nassert not has_close_elements([1.0, 2.0], 0.5)",
                )
            ],
        },
        "chunks": {
            "concepts": prop.format("slicing, integer division, list comprehension"),
            "instruction": "Write a Python function `split_evenly(items, parts)` that splits a list into "
            "`parts` lists whose lengths differ by at most one.",
            "responses": [SPLIT_FAIL, SPLIT_LOOPS],
        },
        # the same pair as slugify's but for one word: a near-duplicate that selection removes
        "slug_title": {
            "concepts": prop.format("string normalisation, splitting on whitespace, hyphen joining"),
            "instruction": SLUG_INSTRUCTION.replace("the words", "the resulting words"),
            "responses": [SLUG_PASS],
        },
        "noise": {"concepts": "I cannot tell what this snippet does.\n"},
        "js_like": {"concepts": prop.replace("Python", "JavaScript").format("closures, callbacks")},
    }


SEED_CODE = {
    "slugify": 'def slugify(title):\n    """Lower-case a title and join its words with hyphens."""\n'
               '    return "-".join(title.lower().split())\n',
    "clamp": 'def clamp(value, low, high):\n    """Limit value to the closed range [low, high]."""\n'
             "    return max(low, min(value, high))\n",
    "closest_gap": 'def closest_gap(values):\n    """Smallest difference between two of the values."""\n'
                   "    ordered = sorted(values)\n    return min(b - a for a, b in zip(ordered, ordered[1:]))\n",
    "chunks": 'def chunks(items, size):\n    """Split items into lists of at most size elements."""\n'
              "    return [items[i:i + size] for i in range(0, len(items), size)]\n",
    "slug_title": 'def slug_title(title):\n    """Title-case words joined with hyphens."""\n'
                  '    return "-".join(w.capitalize() for w in title.split())\n',
    "noise": 'def noise(x):\n    """Return x unchanged."""\n    return x\n',
    "js_like": 'def js_like(callback):\n    """Call callback with no arguments."""\n    return callback()\n',
}  # fmt: skip


class Scripted(Backend):
    """Answers Self-OSS-Instruct prompts from a script keyed by the seed function; counts requests."""

    name = "scripted"

    def __init__(self, script: dict[str, dict[str, Any]]) -> None:
        super().__init__("scripted", BackendOptions())
        self.script = script
        self.prompts: list[str] = []
        self.by_concepts = {parse_property(s["concepts"]).get("concepts"): n for n, s in script.items()}
        self.by_instruction = {s["instruction"]: n for n, s in script.items() if "instruction" in s}

    def identity(self) -> dict[str, Any]:
        return {"model": "scripted"}

    def answer(self, prompt: str, index: int) -> str:
        last = prompt.rsplit("### Example", 1)[1]
        if prompt.endswith("[Property]\n"):
            return self.script[re.search(r"def (\w+)", last).group(1)]["concepts"]  # type: ignore[union-attr]
        if prompt.endswith("[Instruction]\n"):
            name = self.by_concepts[parse_property(last)["concepts"]]
            return self.script[name]["instruction"]
        if prompt.endswith("[Response]\n"):
            instruction = last.split("[Instruction]\n", 1)[1].rsplit("\n\n[Response]", 1)[0]
            samples = self.script[self.by_instruction[instruction]]["responses"]
            return samples[index % len(samples)]
        raise AssertionError(f"unexpected prompt ending {prompt[-60:]!r}")

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        for j, job in enumerate(jobs):
            self.prompts.append(job.request.prompt or "")
            for i in job.indices:
                emit(j, i, Completion(self.answer(job.request.prompt or "", i), "stop", 100, 20))


def _config(workdir: Path, data_dir: Path, model: str, **sections: Any) -> PipelineConfig:
    doc: dict[str, Any] = {"model": model, "workdir": str(workdir), "data_dir": str(data_dir), "seed": 3,
                           "validate": {"timeout": 1.0, "parallel": 2, "memory_mb": 1024}, **sections}  # fmt: skip
    return PipelineConfig.model_validate(doc)


def _run_all(ctx: Context) -> dict[str, Any]:
    return {stage: run_stage(ctx, stage) for stage in LATER_STAGES}


def _sizes(workdir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in workdir.glob("*.jsonl")}


@pytest.fixture(scope="module")
def scripted_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from harness import benchmark as registry

    he = registry.get("humaneval", data_dir=data_dir).problems()["HumanEval/0"]
    backend = Scripted(_script(he.prompt + he.canonical_solution))
    workdir = tmp_path_factory.mktemp("scripted-pipeline")
    seeds = [_seed(name, code) for name, code in SEED_CODE.items()]
    StageFiles(workdir, "dedup").append(seeds)
    config = _config(workdir, data_dir, "scripted:x", instruct={"batch": 3})
    log: list[str] = []
    ctx = Context(config, workdir, echo=log.append)
    ctx._engine = Engine("scripted:x", backend, None)
    try:
        funnels = _run_all(ctx)
        first = {"sizes": _sizes(workdir), "prompts": len(backend.prompts)}
        again = _run_all(ctx)
    finally:
        ctx.close()
    return {"workdir": workdir, "seeds": {s["key"]: s for s in seeds}, "backend": backend, "funnels": funnels,
            "again": again, "first": first, "log": log}  # fmt: skip


def _key(name: str) -> str:
    return f"stdlib/{name}.py::{name}"


def _removed(workdir: Path, stage: str) -> dict[str, dict[str, Any]]:
    path = workdir / f"{stage}.removed.jsonl"
    return {r["key"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_scripted_run_removes_what_it_should_and_keeps_the_rest(scripted_run: dict[str, Any]) -> None:
    workdir, f = scripted_run["workdir"], scripted_run["funnels"]
    concepts = _removed(workdir, "concepts")
    assert {k: r["reason"] for k, r in concepts.items()} == {_key("noise"): "no_concepts",
                                                             _key("js_like"): "not_python"}  # fmt: skip
    assert (f["concepts"].input, f["concepts"].output) == (7, 5)
    assert f["concepts"].completion_tokens == 7 * 20 and f["responses"].completion_tokens == 5 * 10 * 20
    validate = _removed(workdir, "validate")
    assert {k: r["reason"] for k, r in validate.items()} == {_key("chunks"): "no_passing_response"}
    assert validate[_key("chunks")]["outcomes"] == {"fail": 5, "timeout": 5}
    assert f["validate"].extra["responses"]["no_tests"] == 2 and f["validate"].extra["responses"]["syntax_error"] == 5
    select = _removed(workdir, "select")
    # contaminated_<benchmarks>: HumanEval's, and any installed benchmark sharing its problem (HumanEval-X)
    reason = select[_key("closest_gap")]["reason"]
    assert reason.startswith("contaminated_") and "humaneval" in reason.removeprefix("contaminated_").split("_")
    assert any(x["task_id"] == "HumanEval/0" for x in select[_key("closest_gap")]["findings"])
    near = select[_key("slug_title")]
    assert (near["reason"], near["of"]) == ("near_duplicate", _key("slugify")) and near["field"] in ("instruction",
                                                                                                  "response")  # fmt: skip
    # S->C and C->I prompts carry the configured 8 exemplars before the item, I->R prompts 1 (SelfCodeAlign's)
    prompts = scripted_run["backend"].prompts
    ir = [p for p in prompts if p.endswith("[Response]\n")]
    assert ir and all("### Example 2\n" in p and "### Example 3" not in p for p in ir)
    assert all("### Example 9\n" in p and "### Example 10" not in p for p in prompts if p not in ir)
    # a line per batch off a terminal, with the rate and the time left
    assert any(re.match(r"\[concepts\] batch 1/3: \d+ kept, \d+ removed; 3/7 items \(43%\), .*ETA", x)
               for x in scripted_run["log"]), scripted_run["log"]


def test_dataset_rows_trace_back_to_their_seeds(scripted_run: dict[str, Any]) -> None:
    import datasets

    workdir, seeds = scripted_run["workdir"], scripted_run["seeds"]
    rows = [json.loads(line) for line in (workdir / "dataset.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == [_key("clamp"), _key("slugify")]  # one per instruction
    by_key = {r["key"]: r for r in rows}
    for key, row in by_key.items():
        seed = seeds[key]
        assert (row["seed"], row["name"], row["path"], row["licence"]) == \
            (seed["seed"], seed["name"], seed["path"], seed["licence"])  # fmt: skip
        assert row["language"] == "Python" and row["concepts"] and row["instruction"]
        assert row["sampled"] == 10 and "```python" in row["response"] and "assert" in row["tests"]
    slug = by_key[_key("slugify")]
    assert slug["passed"] == 5 and '"-".join(kept.split())' in slug["code"]  # failing samples dropped
    assert slug["instruction"] == SLUG_INSTRUCTION and "make_slug" in slug["test_code"]
    assert by_key[_key("clamp")]["passed"] == 5
    loaded = datasets.load_from_disk(str(workdir / "dataset"))
    assert len(loaded) == 2 and sorted(loaded["key"]) == sorted(by_key)
    assert set(loaded.column_names) >= {"key", "seed", "concepts", "instruction", "response", "tests", "passed"}


def test_funnel_has_every_stage_and_a_rerun_writes_nothing(scripted_run: dict[str, Any]) -> None:
    from generation.report import report

    workdir = scripted_run["workdir"]
    funnel = load_funnel(workdir)
    assert set(LATER_STAGES) <= set(funnel)
    assert funnel["select"].output == 2 and funnel["select"].extra["dataset_rows"] == 2
    assert _sizes(workdir) == scripted_run["first"]["sizes"]
    assert len(scripted_run["backend"].prompts) == scripted_run["first"]["prompts"]  # no request on the rerun
    for stage, f in scripted_run["again"].items():
        assert f.skipped_done == f.input, stage
        assert (f.output, f.removed) == (scripted_run["funnels"][stage].output, scripted_run["funnels"][stage].removed)
    paths = report(workdir)
    assert sorted(p.suffix for p in paths) == [".md", ".png", ".svg"]
    png = next(p for p in paths if p.suffix == ".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in next(p for p in paths if p.suffix == ".svg").read_text()
    md = (workdir / "funnel.md").read_text()
    assert all(f"| {s} |" in md for s in LATER_STAGES) and re.search(r"contaminated_humaneval\S* 1", md)


class _FailsOnSecondCall(Scripted):
    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        if self.prompts:
            raise HarnessError("the server went away")
        super().run(jobs, emit)


def test_an_interrupted_stage_resumes_without_redoing_its_batches(tmp_path: Path, data_dir: Path) -> None:
    StageFiles(tmp_path, "dedup").append([_seed(name, code) for name, code in SEED_CODE.items()])
    config = _config(tmp_path, data_dir, "scripted:x", instruct={"batch": 3})
    flaky = _FailsOnSecondCall(_script(""))
    ctx = Context(config, tmp_path, echo=lambda _: None)
    ctx._engine = Engine("scripted:x", flaky, None)
    with pytest.raises(HarnessError, match="went away"):
        run_stage(ctx, "concepts")
    first_batch = StageFiles(tmp_path, "concepts").done_keys()
    assert len(first_batch) == 3  # the batch before the failure is on disk
    steady = Scripted(_script(""))
    ctx._engine = Engine("scripted:x", steady, None)
    funnel = run_stage(ctx, "concepts")
    assert funnel.skipped_done == 3 and len(steady.prompts) == 4  # only the other four seeds were asked for
    assert (funnel.output, sum(funnel.removed.values())) == (5, 2)
    keys = [r["key"] for r in StageFiles(tmp_path, "concepts").rows()]
    assert len(keys) == len(set(keys)) == 5


def test_a_stage_before_its_input_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    ctx = Context(_config(tmp_path, data_dir, "scripted:x"), tmp_path, echo=lambda _: None)
    with pytest.raises(HarnessError, match="run `harness generate responses`"):
        run_stage(ctx, "validate")


# ------------------------------------------------------------------ the tiny model, end to end
def test_tiny_model_runs_end_to_end_and_reports_what_survives(tiny_model: Path, data_dir: Path, tmp_path: Path) -> None:
    instruct = {"fewshot": 1, "concepts_max_tokens": 24, "instruction_max_tokens": 24, "response_max_tokens": 32,
                "responses_per_instruction": 2, "batch": 8}  # fmt: skip
    seeds = [_seed(name, SEED_CODE[name]) for name in ("slugify", "clamp", "chunks")]
    # Its noise rarely makes a property block or stops before the token limit (such outputs are dropped), so a
    # second work folder starts from written instructions: the tiny model then writes responses too, and what
    # survives is validated.
    script = _script("")
    instructions = [{**s, "instruction": script[s["name"]]["instruction"]} for s in seeds]
    for workdir, source, rows in ((tmp_path / "from-seeds", "dedup", seeds),
                                  (tmp_path / "from-instructions", "instructions", instructions)):  # fmt: skip
        StageFiles(workdir, source).append(rows)
        ctx = Context(_config(workdir, data_dir, f"hf:{tiny_model}", instruct=instruct), workdir, echo=lambda _: None)
        stages = LATER_STAGES[LATER_STAGES.index(source) + 1 :] if source != "dedup" else LATER_STAGES
        try:
            funnels = {stage: run_stage(ctx, stage) for stage in stages}
        finally:
            ctx.close()
        first = funnels[stages[0]]
        assert first.input == 3 and first.completion_tokens > 0
        survivors = funnels["select"].output
        assert survivors <= funnels["validate"].output <= 3
        assert len((workdir / "dataset.jsonl").read_text().splitlines()) == survivors
        if survivors == 0:
            assert "no pair survived" in " ".join(funnels["select"].notes)
        assert set(stages) <= set(load_funnel(workdir))
    # from the written instructions, the model's responses were generated; those that stopped on the token
    # limit are counted as such
    assert funnels["responses"].completion_tokens > 0
    assert funnels["validate"].input + sum(funnels["responses"].removed.values()) == 3


# ------------------------------------------------------------------ truncated and garbage outputs, batches, context
def test_outputs_stopped_on_length_or_holding_control_characters_are_dropped_with_their_reason() -> None:
    from generation.instruct import Sample, _parse_concepts, _parse_instruction, _parse_responses

    rng = __import__("random").Random(0)
    good = "Write a Python function `f(x)` that doubles x and rejects negative input."
    assert _parse_instruction({}, [Sample(good, "stop")], rng).row == {"instruction": good}
    assert _parse_instruction({}, [Sample(good, "length")], rng).reason == "stopped_on_length"
    assert _parse_instruction({}, [Sample(good[:30], "error")], rng).reason == "cut_short_by_the_engine"
    assert _parse_instruction({}, [Sample(good + "\x00\x1b[2J", "stop")], rng).reason == "control_characters"
    assert _parse_instruction({}, [Sample(good + "\tand\r\nmore", "stop")], rng).row is not None  # tabs, newlines
    prop = "category: function implementation\nlanguage: Python\ndifficulty: easy\nconcepts: a, b\n"
    assert _parse_concepts({"seed": "def f(): pass"}, [Sample(prop, "length")], rng).reason == "stopped_on_length"
    samples = [Sample(SLUG_PASS, "stop"), Sample(SLUG_PASS[:40], "length"), Sample("\x07" + SLUG_PASS, "stop"),
               Sample(SLUG_FAIL, "stop")]  # fmt: skip
    out = _parse_responses({}, samples, rng).row
    assert out is not None and out["responses"] == [SLUG_PASS.rstrip(), SLUG_FAIL.rstrip()]
    assert out["sample_indices"] == [0, 3] and out["generated"] == 4 and out["sampled"] == 2
    assert out["dropped_samples"] == {"stopped_on_length": 1, "control_characters": 1}
    gone = _parse_responses({}, [Sample("x", "length")] * 2, rng)
    assert gone.row is None and gone.reason == "stopped_on_length"


def test_batches_are_sized_by_tokens_and_prompts_are_checked_against_the_context(tmp_path: Path, data_dir: Path) -> None:
    from generation.instruct import check_context, token_batches

    assert token_batches([10, 10, 10, 10], 3, 100) == [(0, 3), (3, 4)]
    assert token_batches([60, 60, 30, 200, 5], 10, 100) == [(0, 1), (1, 3), (3, 4), (4, 5)]
    assert token_batches([], 4, 10) == []
    ctx = Context(_config(tmp_path, data_dir, "scripted:x", instruct={"context_length": 2048}), tmp_path,
                  echo=lambda _: None)  # fmt: skip
    ctx._engine = Engine("scripted:x", Scripted(_script("")), None)
    long_prompt = response_prompt("Write f. " * 700, pick_exemplars(load_fewshot().exemplars, 1, 0))
    with pytest.raises(HarnessError, match=r"\[responses\] the longest prompt is [\d,]+ tokens and "
                       r"instruct.response_max_tokens is 1,536: [\d,]+ tokens do not fit the model's 2,048-token "
                       r"context; lower instruct.fewshot_responses \(now 1\) or instruct.response_max_tokens"):
        check_context(ctx, "responses", ["short", long_prompt], 1536)
    assert check_context(ctx, "responses", ["short"], 1536) is not None
