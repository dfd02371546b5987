"""What flows through the engine: requests, sampling settings, completions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import HarnessError

FinishReason = Literal["stop", "length", "error", "replay"]


@dataclass(frozen=True)
class Sampling:
    """Sampling settings of a request (``n`` samples per prompt)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    #: Thinking tokens after which the backend closes the thinking for the model (``--thinking-budget``).
    thinking_budget: int | None = None
    #: What closes the thinking when the budget runs out (the model's close tag).
    thinking_end: str = "</think>"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise HarnessError(f"n must be at least 1, got {self.n}")
        if self.temperature < 0:
            raise HarnessError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise HarnessError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise HarnessError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if isinstance(self.stop, (str, list)):
            object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str) else tuple(self.stop))
        if self.thinking_budget is not None and self.thinking_budget < 1:
            raise HarnessError(f"thinking_budget must be at least 1, got {self.thinking_budget}")

    @property
    def greedy(self) -> bool:
        """Temperature 0: every sample of a prompt is the same text."""
        return self.temperature == 0.0

    def sample_seed(self, index: int) -> int | None:
        """The seed of sample ``index``: fixed per index, so a resumed run regenerates the same draw."""
        if self.seed is None:
            return None
        digest = hashlib.sha256(f"{self.seed}:{index}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

    def key_fields(self) -> dict[str, Any]:
        """What of these settings changes a sample (``n`` does not: each sample is keyed by its index)."""
        fields = {
            "temperature": self.temperature,
            "top_p": self.top_p if not self.greedy else 1.0,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed if not self.greedy else None,
        }
        if self.thinking_budget is not None:  # only then: keys of runs without a budget stay what they were
            fields["thinking_budget"] = [self.thinking_budget, self.thinking_end]
        return fields


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: str
    content: str


@dataclass(frozen=True)
class Request:
    """A prompt (raw text) or chat messages, plus sampling settings.

    ``response_prefix`` is appended after the chat template's assistant header
    (StarCoder2-Instruct's evaluation starts the reply with a code fence);
    completions hold only the generated text after it.  ``task_id`` names
    the benchmark task for backends that answer by task (replay, oracle) and
    never enters the cache key, nor does ``benchmark``.  ``adapter`` selects a LoRA adapter on
    backends that serve several from one base model.  ``thinking`` is the chat
    template's thinking switch (``enable_thinking``); None leaves the template's
    default.
    """

    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    sampling: Sampling = field(default_factory=Sampling)
    response_prefix: str = ""
    task_id: str | None = None
    benchmark: str | None = None
    adapter: str | None = None
    thinking: bool | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise HarnessError("a request needs exactly one of prompt or messages")
        if self.messages is not None:
            msgs = tuple(m if isinstance(m, Message) else Message(**m) for m in self.messages)  # type: ignore[arg-type]
            if not msgs:
                raise HarnessError("a chat request needs at least one message")
            object.__setattr__(self, "messages", msgs)

    @property
    def is_chat(self) -> bool:
        """Chat messages (templated by the model) rather than a raw prompt."""
        return self.messages is not None

    def content_key(self) -> dict[str, Any]:
        """What of the request's text changes the output."""
        if self.messages is not None:
            body: dict[str, Any] = {"messages": [[m.role, m.content] for m in self.messages]}
        else:
            body = {"prompt": self.prompt}
        body["response_prefix"] = self.response_prefix
        body["adapter"] = self.adapter
        if self.thinking is not None:  # only when set: requests without it keep their cache keys
            body["thinking"] = self.thinking
        return body


@dataclass
class Completion:
    """One generated sample.

    ``completion_tokens`` counts every generated token, thinking included (as OpenAI's ``usage`` does);
    ``reasoning_tokens`` is the thinking's share where the backend reports it (None: not reported).
    """

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    #: For replay/oracle: which samples-file field the text is ("solution" or "completion").
    sample_field: str | None = None
    #: A server's reasoning beside the content (``reasoning_content``); None: none was sent.
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    #: For replay of ``generations.jsonl``: the response prefix the stored text continues.
    response_prefix: str | None = None


@dataclass
class Result:
    """The samples of one request, in sample-index order."""

    request: Request
    completions: list[Completion]


@dataclass(frozen=True)
class Job:
    """What a backend must produce: these sample indices of this request."""

    request: Request
    indices: tuple[int, ...]
