"""The engine: one object per process that every stage generates text through.

``Engine`` wraps a ``Backend`` (vLLM, an OpenAI-compatible server,
transformers, replay, oracle) with the response cache, greedy de-duplication
and progress.  Backends only turn jobs into completions.
"""

from __future__ import annotations

import importlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.engine.cache import ResponseCache, sample_key
from harness.engine.types import Completion, Job, Request, Result
from harness.errors import HarnessError

#: backend name -> "module:Class"; modules are imported only when used.
_BACKENDS: dict[str, str] = {
    "hf": "harness.engine.backends.hf:HFBackend",
    "vllm": "harness.engine.backends.vllm:VLLMBackend",
    "openai": "harness.engine.backends.openai_api:OpenAIBackend",
    "replay": "harness.engine.backends.replay:ReplayBackend",
    "oracle": "harness.engine.backends.oracle:OracleBackend",
}

Emit = Callable[[int, int, Completion], None]
"""``emit(job_index, sample_index, completion)``: a backend reports each sample as soon as it has it."""


class BackendOptions(BaseModel):
    """Options every backend accepts; subclasses add their own (unknown names are refused)."""

    model_config = ConfigDict(extra="forbid")


class Backend(ABC):
    """Turns jobs (request + sample indices) into completions."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    #: Replay and oracle answers are already stored: never cache them.
    cacheable: ClassVar[bool] = True
    #: Greedy samples of a model are all the same text; stored answers (replay) are not.
    dedupe_greedy: ClassVar[bool] = True
    #: Honours ``Sampling.thinking_budget`` (``--thinking-budget``).
    supports_thinking_budget: ClassVar[bool] = False

    def __init__(self, identifier: str, options: BackendOptions) -> None:
        self.identifier = identifier
        self.options = options

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What determines this model's outputs (weights hash or revision, adapters); keys the cache."""

    @abstractmethod
    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        """Produce every sample index of every job, reporting each through ``emit``."""

    def default_style(self) -> str:
        """``instruct`` when the model has a chat template, else ``base``."""
        return "base"

    def describe(self) -> dict[str, Any]:
        """Settings for the run record (backend options, device)."""
        return self.options.model_dump(mode="json", exclude={"api_key"})

    # -- reasoning models: backends with a tokenizer (``self.tokenizer``) answer from its chat template --

    def thinking_switch(self) -> bool:
        """Whether the chat template has a thinking switch (``enable_thinking``) that requests can set."""
        tokenizer = getattr(self, "tokenizer", None)
        return tokenizer is not None and chat_thinking(tokenizer)[0]

    def thinks_by_default(self) -> bool:
        """Whether the model thinks unless told not to (``--reasoning auto``): its template's default."""
        tokenizer = getattr(self, "tokenizer", None)
        return tokenizer is not None and chat_thinking(tokenizer)[1]

    def opens_thinking(self, request: Request, open_tag: str) -> bool:
        """Whether the rendered prompt itself opens the thinking (the reply then starts inside it)."""
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None or request.messages is None or not getattr(tokenizer, "chat_template", None):
            return False
        try:
            text = render_chat(tokenizer, request) + request.response_prefix
        except Exception:  # noqa: BLE001 - a template that fails here fails with its own message in run()
            return False
        return text.rstrip().endswith(open_tag)

    def count_tokens(self, text: str) -> int | None:
        """Tokens of ``text`` in the model's tokenizer (thinking split from the text); None: no tokenizer."""
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            return None
        return len(tokenizer.encode(text, add_special_tokens=False))

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the model or connections."""


def render_chat(tokenizer: Any, request: Request) -> str:
    """The chat template applied to a request's messages, with its thinking switch where it has one."""
    kwargs: dict[str, Any] = {}
    if request.thinking is not None and chat_thinking(tokenizer)[0]:
        kwargs["enable_thinking"] = request.thinking
    return tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in request.messages or ()],
        tokenize=False,
        add_generation_prompt=True,
        **kwargs,
    )


_PROBE = [{"role": "user", "content": "x"}]


def chat_thinking(tokenizer: Any) -> tuple[bool, bool]:
    """``(switch, default_on)`` of a tokenizer's chat template.

    ``switch``: the template reads ``enable_thinking`` and renders differently with it on and off (Qwen3).
    ``default_on``: without the switch set, the model thinks: the default renders as "on" does (Qwen3), or
    the generation prompt itself opens a think block (DeepSeek-R1 and QwQ templates).
    """
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or not template:
        return False, False
    cached = getattr(tokenizer, "_harness_thinking", None)
    if cached is not None and cached[0] == template:
        return cached[1]
    try:
        default = tokenizer.apply_chat_template(_PROBE, tokenize=False, add_generation_prompt=True)
        if "enable_thinking" in template:
            on = tokenizer.apply_chat_template(_PROBE, tokenize=False, add_generation_prompt=True, enable_thinking=True)
            off = tokenizer.apply_chat_template(_PROBE, tokenize=False, add_generation_prompt=True,
                                                enable_thinking=False)  # fmt: skip
            found = (on != off, on != off and default == on)
        else:
            found = (False, default.rstrip().endswith("<think>"))
    except Exception:  # noqa: BLE001 - a template that cannot render a probe has no usable switch
        found = (False, False)
    try:
        tokenizer._harness_thinking = (template, found)
    except AttributeError:
        pass
    return found


def backend_names() -> list[str]:
    """Registered backend names."""
    return sorted(_BACKENDS)


def register_backend(name: str, target: str) -> None:
    """Register a backend as ``"module:Class"`` (imported on first use)."""
    _BACKENDS[name] = target


def parse_spec(spec: str) -> tuple[str, str]:
    """``backend:identifier`` -> ``(backend, identifier)``; ``oracle`` alone is allowed."""
    example = "e.g. hf:bigcode/starcoder2-3b, vllm:/models/ckpt, openai:gpt-4o, replay:samples.jsonl, oracle"
    text = spec.strip()
    backend, sep, identifier = text.partition(":")
    if not sep:
        if text in _BACKENDS and text == "oracle":
            return text, ""
        if text in _BACKENDS:
            raise HarnessError(f"model spec {spec!r} names no model; write {text}:MODEL ({example})")
        raise HarnessError(f"model spec {spec!r} is not BACKEND:MODEL ({example})")
    if backend not in _BACKENDS:
        raise HarnessError(f"unknown backend {backend!r} in model spec {spec!r}; known: {', '.join(backend_names())}")
    if not identifier and backend != "oracle":
        raise HarnessError(f"model spec {spec!r} names no model after '{backend}:' ({example})")
    return backend, identifier


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name``."""
    try:
        target = _BACKENDS[name]
    except KeyError:
        raise HarnessError(f"unknown backend {name!r}; known: {', '.join(backend_names())}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def parse_options(cls: type[Backend], options: Mapping[str, Any] | None) -> BackendOptions:
    """Validate backend options (``--engine-arg key=value``) against the backend's own option model."""
    try:
        return cls.Options.model_validate(dict(options or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors()
        )
        known = ", ".join(cls.Options.model_fields) or "none"
        raise HarnessError(f"bad option for the {cls.name} backend: {problems} (its options: {known})") from None


@dataclass
class EngineStats:
    """What the engine did, for run records and the cache-hit line."""

    requests: int = 0
    samples: int = 0
    cached: int = 0
    generated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data."""
        return dict(self.__dict__)


class Engine:
    """A backend plus the response cache; ``generate`` is the one entry point every stage uses."""

    def __init__(self, spec: str, backend: Backend, cache: ResponseCache | None) -> None:
        self.spec = spec
        self.backend = backend
        self.cache = cache if backend.cacheable else None
        self.identity = json.dumps({"backend": backend.name, **backend.identity()}, sort_keys=True)
        self.stats = EngineStats()

    @property
    def name(self) -> str:
        """The backend's name (``hf``, ``vllm``, ...)."""
        return self.backend.name

    def default_style(self) -> str:
        """The prompting style this model expects."""
        return self.backend.default_style()

    def generate(
        self, requests: Sequence[Request], progress: Callable[[int], None] | None = None
    ) -> list[Result]:
        """Every sample of every request, from the cache where possible; results in request order.

        ``progress(k)`` is called as ``k`` more samples are ready.  When the
        backend fails part-way, what it produced is already in the cache and
        the error says so.
        """
        t0 = time.perf_counter()
        slots: list[list[Completion | None]] = [[None] * r.sampling.n for r in requests]
        keys: list[list[str]] = []
        if self.cache is not None:
            keys = [[sample_key(self.identity, r, i) for i in range(r.sampling.n)] for r in requests]
            found = self.cache.get_many(k for ks in keys for k in ks)
            for j, ks in enumerate(keys):
                for i, key in enumerate(ks):
                    hit = found.get(key)
                    if hit is not None:
                        slots[j][i] = hit
        jobs: list[Job] = []
        owners: list[int] = []
        for j, r in enumerate(requests):
            missing = tuple(i for i, c in enumerate(slots[j]) if c is None)
            if not missing:
                continue
            # Greedy samples are identical: generate one, copy it to the rest.
            jobs.append(Job(r, missing[:1] if self._copies(r) else missing))
            owners.append(j)
        cached = sum(c is not None for s in slots for c in s)
        self.stats.requests += len(requests)
        self.stats.samples += sum(len(s) for s in slots)
        self.stats.cached += cached
        if progress is not None and cached:
            progress(cached)
        generated = 0

        def emit(job_index: int, sample_index: int, completion: Completion) -> None:
            nonlocal generated
            j = owners[job_index]
            request = requests[j]
            targets = [i for i, c in enumerate(slots[j]) if c is None] if self._copies(request) else [sample_index]
            for i in targets:
                slots[j][i] = completion
                if self.cache is not None:
                    self.cache.put(keys[j][i], completion)
            generated += len(targets)
            self.stats.generated += len(targets)
            self.stats.prompt_tokens += completion.prompt_tokens
            self.stats.completion_tokens += completion.completion_tokens
            self.stats.finish[completion.finish_reason] = self.stats.finish.get(completion.finish_reason, 0) + 1
            if progress is not None:
                progress(len(targets))

        try:
            if jobs:
                self.backend.run(jobs, emit)
        except HarnessError as exc:
            raise HarnessError(f"{exc} ({self._kept(generated, slots)})") from None
        except KeyboardInterrupt:
            raise
        finally:
            if self.cache is not None:
                self.cache.flush()
            self.stats.seconds += time.perf_counter() - t0
        lost = [(j, i) for j, s in enumerate(slots) for i, c in enumerate(s) if c is None]
        if lost:
            j, i = lost[0]
            raise HarnessError(
                f"the {self.backend.name} backend returned no sample {i} for request {j}"
                f" ({len(lost)} missing; {self._kept(generated, slots)})"
            )
        return [Result(r, [c for c in s if c is not None]) for r, s in zip(requests, slots)]

    def _copies(self, request: Request) -> bool:
        return request.sampling.greedy and self.backend.dedupe_greedy

    def _kept(self, generated: int, slots: list[list[Completion | None]]) -> str:
        done = sum(c is not None for s in slots for c in s)
        total = sum(len(s) for s in slots)
        where = f"in the response cache {self.cache.path}" if self.cache is not None else "not cached (--no-cache)"
        return f"{done} of {total} samples done, {generated} of them new, {where}; rerun to resume"

    def describe(self) -> dict[str, Any]:
        """Model spec, identity and backend settings, for the run record."""
        return {"spec": self.spec, "backend": self.backend.name, "identity": json.loads(self.identity),
                "options": self.backend.describe()}  # fmt: skip

    def close(self) -> None:
        """Release the backend and commit the cache."""
        try:
            self.backend.close()
        finally:
            if self.cache is not None:
                self.cache.close()
                self.cache = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_SHARED: dict[tuple[str, str, str | None], Engine] = {}


def create_engine(
    spec: str,
    options: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> Engine:
    """Build an engine from ``backend:identifier`` and the backend's options."""
    from harness.data import cache_dir as default_cache_dir

    name, identifier = parse_spec(spec)
    cls = backend_class(name)
    opts = parse_options(cls, options)
    backend = cls(identifier, opts)
    cache = ResponseCache(Path(cache_dir) if cache_dir else default_cache_dir()) if use_cache and cls.cacheable else None
    return Engine(spec, backend, cache)


def shared_engine(
    spec: str,
    options: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> Engine:
    """The process's engine for ``spec``: created once, then reused by every stage that asks."""
    key = (spec, json.dumps(dict(options or {}), sort_keys=True, default=str), str(cache_dir) if use_cache else None)
    engine = _SHARED.get(key)
    if engine is None or engine.backend is None:
        engine = _SHARED[key] = create_engine(spec, options, cache_dir, use_cache)
    return engine


def require(module: str, extra: str, what: str) -> Any:
    """Import a heavy dependency or fail naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise HarnessError(
            f"{what} needs the '{module.split('.')[0]}' package ({exc.msg}); install it with "
            f"pip install 'code-harness[{extra}]' (or pip install -e '.[{extra}]' in a checkout)"
        ) from None
