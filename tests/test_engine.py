"""The engine: specs, options, the response cache, and the hf backend on the tiny local model."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine import (
    Completion,
    Engine,
    Message,
    Request,
    ResponseCache,
    Sampling,
    create_engine,
    parse_spec,
    require,
    sample_key,
)
from harness.engine.base import Backend, BackendOptions
from harness.errors import HarnessError


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch:model", "unknown backend 'nosuch'"),
        ("gpt-4o", "is not BACKEND:MODEL"),
        ("hf", "names no model; write hf:MODEL"),
        ("hf:", "names no model after 'hf:'"),
    ],
)
def test_bad_specs_name_the_fix(spec: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        parse_spec(spec)


def test_spec_forms() -> None:
    assert parse_spec("oracle") == ("oracle", "")
    assert parse_spec("hf:bigcode/starcoder2-3b") == ("hf", "bigcode/starcoder2-3b")
    assert parse_spec("openai:meta/llama:70b") == ("openai", "meta/llama:70b")


def test_missing_extra_names_the_install_command() -> None:
    with pytest.raises(HarnessError) as err:
        require("harness_no_such_module", "vllm", "the vllm backend")
    assert "pip install 'code-harness[vllm]'" in str(err.value)


def test_unknown_option_lists_the_backends_options(tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"task_id": "HumanEval/0", "completion": "pass"}\n')
    with pytest.raises(HarnessError, match="bad option for the replay backend.*its options: cycle"):
        create_engine(f"replay:{samples}", {"tensor_parallel": 2})


def test_cache_key_depends_only_on_what_changes_the_output() -> None:
    base = Request(prompt="def f():", sampling=Sampling(n=1, temperature=0.8, max_tokens=64, seed=1))
    more = Request(prompt="def f():", sampling=Sampling(n=10, temperature=0.8, max_tokens=64, seed=1))
    assert sample_key("m", base, 0) == sample_key("m", more, 0)  # n is not part of a sample's identity
    assert sample_key("m", base, 0) != sample_key("m", more, 1)
    assert sample_key("m", base, 0) != sample_key("other-model", base, 0)
    hotter = Request(prompt="def f():", sampling=Sampling(temperature=0.9, max_tokens=64, seed=1))
    assert sample_key("m", base, 0) != sample_key("m", hotter, 0)
    reseeded = Request(prompt="def f():", sampling=Sampling(temperature=0.8, max_tokens=64, seed=2))
    assert sample_key("m", base, 0) != sample_key("m", reseeded, 0)
    tagged = Request(prompt="def f():", sampling=base.sampling, task_id="HumanEval/0", benchmark="humaneval")
    assert sample_key("m", base, 0) == sample_key("m", tagged, 0)  # metadata never changes a sample
    greedy = Request(prompt="p", sampling=Sampling(n=5))
    assert len({sample_key("m", greedy, i) for i in range(5)}) == 1
    chat = Request(messages=(Message("user", "p"),), sampling=Sampling())
    assert sample_key("m", chat, 0) != sample_key("m", Request(prompt="p"), 0)
    prefixed = Request(messages=(Message("user", "p"),), response_prefix="```python\n")
    assert sample_key("m", chat, 0) != sample_key("m", prefixed, 0)


class _Counting(Backend):
    """Answers ``<prompt>#<index>``; fails after ``fail_after`` samples when set."""

    name = "counting"

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__("x", BackendOptions())
        self.calls = 0
        self.fail_after = fail_after

    def identity(self) -> dict[str, object]:
        return {"model": "counting"}

    def run(self, jobs, emit) -> None:  # type: ignore[no-untyped-def]
        for j, job in enumerate(jobs):
            for i in job.indices:
                if self.fail_after is not None and self.calls >= self.fail_after:
                    raise HarnessError("server fell over")
                self.calls += 1
                emit(j, i, Completion(f"{job.request.prompt}#{i}", "stop", 3, 2))


def test_cache_serves_reruns_and_resumes_after_a_failure(tmp_path: Path) -> None:
    reqs = [Request(prompt=f"p{k}", sampling=Sampling(n=3, temperature=1.0)) for k in range(4)]
    failing = Engine("counting:x", _Counting(fail_after=5), ResponseCache(tmp_path))
    with pytest.raises(HarnessError, match=r"server fell over \(5 of 12 samples done, 5 of them new, in the response"):
        failing.generate(reqs)
    failing.close()
    backend = _Counting()
    engine = Engine("counting:x", backend, ResponseCache(tmp_path))
    results = engine.generate(reqs)
    assert backend.calls == 7  # only what the failed run had not finished
    assert engine.stats.cached == 5 and engine.stats.generated == 7
    assert [c.text for c in results[1].completions] == ["p1#0", "p1#1", "p1#2"]
    again = engine.generate(reqs)
    assert backend.calls == 7 and all(c.cached for r in again for c in r.completions)
    engine.close()


def test_greedy_requests_generate_one_sample_and_copy_it(tmp_path: Path) -> None:
    backend = _Counting()
    engine = Engine("counting:x", backend, None)
    (result,) = engine.generate([Request(prompt="p", sampling=Sampling(n=4))])
    assert backend.calls == 1
    assert [c.text for c in result.completions] == ["p#0"] * 4


# -- the hf backend on the tiny local model --------------------------------------------------


@pytest.fixture(scope="module")
def hf_engine(tiny_model: Path) -> Engine:
    engine = create_engine(f"hf:{tiny_model}", {"batch_size": 4}, use_cache=False)
    yield engine
    engine.close()


def test_hf_batched_greedy_equals_one_at_a_time(hf_engine: Engine, tiny_model: Path) -> None:
    prompts = [f"def f{i}(x):\n" + "    y = x\n" * (i % 4) for i in range(6)]
    reqs = [Request(prompt=p, sampling=Sampling(max_tokens=12)) for p in prompts]
    batched = hf_engine.generate(reqs)
    single = create_engine(f"hf:{tiny_model}", {"batch_size": 1}, use_cache=False)
    alone = single.generate(reqs)
    assert [r.completions[0].text for r in batched] == [r.completions[0].text for r in alone]
    for r in batched:
        c = r.completions[0]
        assert c.finish_reason in ("stop", "length") and c.prompt_tokens > 0 and 0 < c.completion_tokens <= 12


def test_hf_stop_sequences_cut_the_text(hf_engine: Engine) -> None:
    (free,) = hf_engine.generate([Request(prompt="def f(x):\n", sampling=Sampling(max_tokens=16))])
    text = free.completions[0].text
    assert len(text) > 2
    stop = text[1:3]  # a string the model is known to produce here
    (cut,) = hf_engine.generate([Request(prompt="def f(x):\n", sampling=Sampling(max_tokens=16, stop=(stop,)))])
    assert cut.completions[0].text == text[: text.find(stop)]
    assert cut.completions[0].finish_reason == "stop"


def test_hf_chat_template_and_response_prefix(hf_engine: Engine) -> None:
    assert hf_engine.default_style() == "instruct"
    req = Request(messages=(Message("user", "Write f."),), response_prefix="```python\n", sampling=Sampling(max_tokens=4))
    text, templated = hf_engine.backend.render(req)  # type: ignore[attr-defined]
    assert templated and text.endswith("<|im_start|>assistant\n```python\n") and "Write f." in text
    (res,) = hf_engine.generate([req])
    assert res.completions[0].completion_tokens <= 4


def test_hf_seeded_sampling_is_reproducible(hf_engine: Engine, tiny_model: Path) -> None:
    req = Request(prompt="import ", sampling=Sampling(n=3, temperature=1.0, max_tokens=10, seed=7))
    first = [c.text for c in hf_engine.generate([req])[0].completions]
    other = create_engine(f"hf:{tiny_model}", {"batch_size": 4}, use_cache=False)
    assert [c.text for c in other.generate([req])[0].completions] == first
    assert len(set(first)) > 1  # sampled, not greedy


def test_hf_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="does not exist"):
        create_engine(f"hf:{tmp_path}/nope/model", use_cache=False)


def test_hf_identity_follows_the_weights(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    a = create_engine(f"hf:{tiny_model}", use_cache=False)
    b = create_engine(f"hf:{copy}", use_cache=False)
    assert a.identity == b.identity  # same weights, same cache entries wherever they live
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes()[:-8] + b"\0" * 8)
    c = create_engine(f"hf:{copy}", use_cache=False)
    assert c.identity != a.identity


def test_benchmark_prompts_follow_the_documented_conventions(data_dir: Path) -> None:
    import benchmarks  # noqa: F401
    from harness import benchmark as registry

    he = registry.get("humaneval", data_dir=data_dir)
    p0 = he.problems()["HumanEval/0"]
    base = he.prompt(p0, "base")
    assert base.text == p0.prompt.strip() + "\n"
    assert "\ndef " in base.stop and '\n"""' not in base.stop  # HumanEval's stops, not MBPP's
    chat = he.prompt(p0, "instruct")
    assert chat.instruction == f"Write a Python function to solve the following task:\n```python\n{p0.prompt.strip()}\n```"
    assert chat.response_prefix == "```python\n" and chat.stop == ("\n```",)
    mbpp = registry.get("mbpp", data_dir=data_dir)
    m2 = mbpp.problems()["Mbpp/2"]
    mchat = mbpp.prompt(m2, "instruct")
    assert mchat.instruction.startswith("Write a function to find the shared elements from the given two lists.\n\n"
                                        "Your code should pass the following assertion:\n```python\nassert ")  # fmt: skip
    assert '\n"""' in mbpp.prompt(m2, "base").stop
    # a reply that re-defines the function keeps the prompt's imports; a bare body is appended to the prompt
    full = he.sample(p0, "instruct", chat, "def has_close_elements(numbers: List[float], t: float) -> bool:\n    return False\n```")
    assert full["solution"].startswith("from typing import List\n") and "```" not in full["solution"]
    body = he.sample(p0, "instruct", chat, "    return False\n```")
    assert body["solution"] == p0.prompt + "    return False\n"
