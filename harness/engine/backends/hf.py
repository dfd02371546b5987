"""The ``hf`` backend: transformers generation on CPU or GPU, batched with left padding.

This is what the test suite and CPU users run.  Prompts are sorted by
length and generated in batches of ``batch_size`` with left padding; stop
sequences end a row as soon as its decoded tail contains one, and the text is
cut before the stop (as vLLM and OpenAI servers return it).  With a seed,
torch's generator is seeded from the first sample of each batch, so the same
batch gives the same draws; the response cache makes reruns identical in any
case.  LoRA adapters (peft) are loaded onto the one base model and switched per
batch.  The chat template's thinking switch is set per request, and a thinking
budget closes the thinking for the model: once a row has generated that many
tokens inside an open think block, the close tag's tokens are forced (the way
Qwen3's documentation budgets thinking), so the answer still gets written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.engine.base import Backend, BackendOptions, Emit, render_chat, require
from harness.engine.types import Completion, Job, Request, Sampling
from harness.errors import HarnessError


class HFOptions(BackendOptions):
    """Options of the ``hf`` backend (``--engine-arg key=value``)."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 16
    revision: str | None = None
    tokenizer: str | None = None
    trust_remote_code: bool = False
    adapters: dict[str, str] = {}


class HFBackend(Backend):
    """transformers ``generate`` with batching and left padding."""

    name = "hf"
    Options = HFOptions
    supports_thinking_budget = True

    def __init__(self, identifier: str, options: BackendOptions) -> None:
        super().__init__(identifier, options)
        opts: HFOptions = options  # type: ignore[assignment]
        self.torch = require("torch", "hf", "the hf backend")
        transformers = require("transformers", "hf", "the hf backend")
        transformers.utils.logging.disable_progress_bar()  # one bar per weight file is noise in run logs
        if opts.batch_size < 1:
            raise HarnessError("hf backend: batch_size must be at least 1")
        local = Path(identifier).expanduser()
        if not local.exists() and (identifier.startswith((".", "/", "~")) or identifier.count("/") > 1):
            raise HarnessError(f"model path {identifier} does not exist; pass hf:PATH to a saved model or a hub id")
        self.local = local if local.exists() else None
        if self.local is not None and self.local.is_dir() and not (self.local / "config.json").is_file():
            raise HarnessError(f"{identifier} holds no transformers model (no config.json); pass hf:PATH to a folder "
                               "written by save_pretrained, or a hub id")  # fmt: skip
        source = str(local) if self.local else identifier
        if opts.device == "auto":
            self.device = "cuda" if self.torch.cuda.is_available() else "cpu"
        else:
            self.device = opts.device
        if opts.dtype == "auto":
            dtype = self.torch.bfloat16 if self.device.startswith("cuda") else self.torch.float32
        else:
            dtype = getattr(self.torch, opts.dtype, None)
            if not isinstance(dtype, self.torch.dtype):
                raise HarnessError(f"hf backend: unknown dtype {opts.dtype!r} (float32, bfloat16, float16)")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                opts.tokenizer or source, revision=opts.revision, trust_remote_code=opts.trust_remote_code
            )
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                source, revision=opts.revision, dtype=dtype, trust_remote_code=opts.trust_remote_code
            )
        except (OSError, ValueError) as exc:  # tokenizer libraries raise ValueError for unusable folders
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HarnessError(f"cannot load model {identifier!r}: {first}") from None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.adapters = dict(opts.adapters)
        if self.adapters:
            peft = require("peft", "train", "LoRA adapters on the hf backend")
            first = True
            for name, path in self.adapters.items():
                if first:
                    self.model = peft.PeftModel.from_pretrained(self.model, path, adapter_name=name)
                    first = False
                else:
                    self.model.load_adapter(path, adapter_name=name)
        self.model.to(self.device)
        self.model.eval()
        self.eos_ids = _eos_ids(self.model, self.tokenizer)

    def identity(self) -> dict[str, Any]:
        """Weights digest for a local folder, else hub id + commit; adapters by digest."""
        from harness.engine.identity import model_dir_digest

        opts: HFOptions = self.options  # type: ignore[assignment]
        if self.local is not None:
            ident: dict[str, Any] = {"weights": model_dir_digest(self.local)}
        else:
            commit = getattr(self.model.config, "_commit_hash", None)
            ident = {"model": self.identifier, "revision": opts.revision, "commit": commit}
        if opts.tokenizer:
            tok = Path(opts.tokenizer)
            ident["tokenizer"] = model_dir_digest(tok) if tok.exists() else opts.tokenizer
        if self.adapters:
            ident["adapters"] = {n: model_dir_digest(Path(p)) for n, p in sorted(self.adapters.items())}
        return ident

    def default_style(self) -> str:
        """Instruct when the tokenizer carries a chat template."""
        return "instruct" if getattr(self.tokenizer, "chat_template", None) else "base"

    def describe(self) -> dict[str, Any]:
        """Options plus the device actually used."""
        return {**super().describe(), "device": self.device}

    def render(self, request: Request) -> tuple[str, bool]:
        """The text the model continues, and whether it already holds the template's special tokens."""
        if request.messages is None:
            return (request.prompt or "") + request.response_prefix, False
        if not getattr(self.tokenizer, "chat_template", None):
            raise HarnessError(f"model {self.identifier} has no chat template; use --style base")
        return render_chat(self.tokenizer, request) + request.response_prefix, True

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        """Group by sampling settings and adapter, sort by length, generate batch by batch."""
        units: list[tuple[int, int, str, bool]] = []
        for j, job in enumerate(jobs):
            text, templated = self.render(job.request)
            units.extend((j, i, text, templated) for i in job.indices)
        groups: dict[tuple[Any, ...], list[tuple[int, int, str, bool]]] = {}
        for unit in units:
            req = jobs[unit[0]].request
            if req.adapter is not None and req.adapter not in self.adapters:
                raise HarnessError(
                    f"adapter {req.adapter!r} is not loaded; configured: {', '.join(self.adapters) or 'none'}"
                    " (--engine-arg adapters='{\"name\": \"PATH\"}')"
                )
            key = (json.dumps(req.sampling.key_fields(), sort_keys=True), req.adapter, unit[3])
            groups.setdefault(key, []).append(unit)
        opts: HFOptions = self.options  # type: ignore[assignment]
        for group in groups.values():
            group.sort(key=lambda u: -len(u[2]))
            for start in range(0, len(group), opts.batch_size):
                batch = group[start : start + opts.batch_size]
                request = jobs[batch[0][0]].request
                outputs = self._generate([u[2] for u in batch], request, batch[0][1], templated=batch[0][3])
                for (j, i, _, _), completion in zip(batch, outputs):
                    emit(j, i, completion)

    def _generate(self, texts: list[str], request: Request, first_index: int, templated: bool) -> list[Completion]:
        torch = self.torch
        sampling: Sampling = request.sampling
        if self.adapters:
            if request.adapter is None:
                ctx: Any = self.model.disable_adapter()
            else:
                self.model.set_adapter(request.adapter)
                ctx = _null()
        else:
            ctx = _null()
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not templated)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        prompt_len = enc["input_ids"].shape[1]
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "pad_token_id": self.tokenizer.pad_token_id,
                                  "eos_token_id": self.eos_ids}  # fmt: skip
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=None)
            seed = sampling.sample_seed(first_index)
            if seed is not None:
                torch.manual_seed(seed)
        if sampling.stop:
            kwargs["stopping_criteria"] = [_StopOnText(self.tokenizer, sampling.stop, prompt_len, torch)]
        if sampling.thinking_budget is not None:
            kwargs["logits_processor"] = [_ThinkingBudget(self.tokenizer, sampling, prompt_len, texts)]
        with torch.inference_mode(), ctx:
            out = self.model.generate(**enc, **kwargs)
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        completions = []
        for row, ptok in zip(out[:, prompt_len:].tolist(), prompt_tokens):
            ids, hit_eos = _until_eos(row, self.eos_ids, self.tokenizer.pad_token_id)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            cut = _first_stop(text, sampling.stop)
            if cut is not None:
                text, finish = text[:cut], "stop"
            else:
                finish = "stop" if hit_eos else "length"
            completions.append(Completion(text, finish, int(ptok), len(ids)))
        return completions

    def close(self) -> None:
        """Drop the model (frees GPU memory)."""
        self.model = None
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    found = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in found:
        found.append(tokenizer.eos_token_id)
    return found


def _until_eos(row: list[int], eos: list[int], pad: int | None) -> tuple[list[int], bool]:
    for k, tok in enumerate(row):
        if tok in eos:
            return row[:k], True
    while row and pad is not None and row[-1] == pad and pad not in eos:
        row = row[:-1]
    return row, False


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    positions = [p for p in (text.find(s) for s in stops if s) if p >= 0]
    return min(positions) if positions else None


class _ThinkingBudget:
    """Forces the close tag once a row has thought for ``thinking_budget`` tokens without closing.

    A row counts as thinking when its prompt ends with an open tag or its text so far holds one; the decision
    is taken once, when the budget is reached, by decoding the row (cheap: once per row).
    """

    OPEN_TAGS = ("<think>", "<thinking>", "<reasoning>")

    def __init__(self, tokenizer: Any, sampling: Sampling, prompt_len: int, prompts: Sequence[str]) -> None:
        self.tokenizer, self.prompt_len = tokenizer, prompt_len
        self.budget, self.end = int(sampling.thinking_budget or 0), sampling.thinking_end
        self.end_ids: list[int] = tokenizer.encode("\n" + self.end + "\n\n", add_special_tokens=False)
        self.opened = [p.rstrip().endswith(self.OPEN_TAGS) for p in prompts]
        self.forcing: list[bool] | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        k = input_ids.shape[1] - self.prompt_len - self.budget
        if k < 0 or not self.end_ids:
            return scores
        if self.forcing is None:
            texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=False)
            self.forcing = [
                (opened or any(tag in t for tag in self.OPEN_TAGS)) and self.end not in t
                for opened, t in zip(self.opened, texts)
            ]
        if k >= len(self.end_ids):
            return scores
        for row, force in enumerate(self.forcing):
            if force:
                scores[row, :] = float("-inf")
                scores[row, self.end_ids[k]] = 0.0
        return scores


class _StopOnText:
    """Ends a row once its generated text contains a stop sequence (checked on a decoded tail)."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_len: int, torch: Any) -> None:
        self.tokenizer, self.stops, self.prompt_len, self.torch = tokenizer, [s for s in stops if s], prompt_len, torch
        # A stop string of c characters spans at most c tokens, plus one for a partial token on each side.
        self.window = max((len(s) for s in self.stops), default=1) + 2

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        gen = input_ids[:, self.prompt_len :]
        tails = self.tokenizer.batch_decode(gen[:, -self.window :], skip_special_tokens=True)
        return self.torch.tensor([any(s in t for s in self.stops) for t in tails], device=input_ids.device)
