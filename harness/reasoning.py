"""Reasoning ("thinking") models: splitting the thinking from the answer, and the settings that go with it.

A thinking model's reply holds its reasoning in one of three shapes:

* think tags in the text (DeepSeek-R1, Qwen3, QwQ): ``<think> ... </think>`` then the answer; templates
  that open the block themselves leave only the closing tag in the reply;
* a separate field beside the content (``reasoning_content`` from ``vllm serve --reasoning-parser``,
  SGLang, DeepSeek's API; ``reasoning`` from newer servers);
* hidden reasoning with only a token count (OpenAI o-series: ``usage.completion_tokens_details``).

:func:`split_reply` turns any of them into :class:`Reply`: the thinking (kept in ``generations.jsonl``),
the answer that code extraction reads, and whether the thinking was left open (a reply whose thinking
never closed is ``truncated_thinking``, never a wrong answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.errors import ConfigError

ReasoningMode = Literal["auto", "off", "on"]
REASONING_MODES: tuple[str, ...] = ("auto", "off", "on")
DEFAULT_OPEN_TAG = "<think>"
DEFAULT_CLOSE_TAG = "</think>"
#: ``--max-tokens`` when reasoning is on and the flag is not given: LiveCodeBench's reasoning-model runs give
#: the whole reply 32,000 tokens (its Claude thinking runner: ``max_tokens`` 32000, thinking budget 24000;
#: o1-preview: ``max_completion_tokens`` 25000).  768 tokens cut nearly every reasoning reply.
REASONING_MAX_TOKENS = 32_000
#: ``--max-tokens`` otherwise (instruct and base prompts).
DEFAULT_MAX_TOKENS = 768


@dataclass(frozen=True)
class ThinkTags:
    """The tags around a model's thinking in its text (configurable: ``--think-tags OPEN,CLOSE``)."""

    open: str = DEFAULT_OPEN_TAG
    close: str = DEFAULT_CLOSE_TAG

    def __post_init__(self) -> None:
        if not self.open.strip() or not self.close.strip() or self.open == self.close:
            raise ConfigError(
                f"think tags must be two different non-empty strings, got {self.open!r} and {self.close!r};"
                " pass --think-tags OPEN,CLOSE (e.g. --think-tags '<think>,</think>')"
            )

    @classmethod
    def parse(cls, text: str | None) -> ThinkTags:
        """``"OPEN,CLOSE"`` (None: ``<think>,</think>``)."""
        if text is None:
            return cls()
        open_tag, sep, close_tag = text.partition(",")
        if not sep:
            raise ConfigError(f"--think-tags {text!r} is not OPEN,CLOSE; e.g. --think-tags '<think>,</think>'")
        return cls(open_tag.strip(), close_tag.strip())


@dataclass(frozen=True)
class Reply:
    """A reply split into thinking and answer."""

    #: The thinking text (None: the reply showed none).
    thinking: str | None
    #: What code extraction reads: the reply without its thinking.
    answer: str
    #: The thinking was opened and never closed (the answer is then empty).
    unclosed: bool = False


def split_reply(text: str, reasoning: str | None = None, tags: ThinkTags = ThinkTags(),
                opened: bool = False) -> Reply:  # fmt: skip
    """Split a reply into its thinking and its answer.

    ``reasoning`` is a server's separate reasoning field (``reasoning_content``): the content is then the
    answer, though think blocks left in it (a server without a reasoning parser) are still removed.
    ``opened``: the prompt itself ended with the open tag (templates that start the thinking for the
    model), so the text starts inside the thinking.  Closed blocks are removed wherever they are; an open
    tag with no close after it makes the rest thinking (``unclosed``).
    """
    thoughts: list[str] = [reasoning] if reasoning else []
    rest = text
    answer_parts: list[str] = []
    inside = opened and not reasoning
    while True:
        if inside:
            end = rest.find(tags.close)
            if end < 0:
                thoughts.append(rest)
                return Reply(_join(thoughts), "".join(answer_parts).strip("\n"), unclosed=True)
            thoughts.append(rest[:end])
            rest = rest[end + len(tags.close):]
            inside = False
            continue
        start = rest.find(tags.open)
        close = rest.find(tags.close)
        if close >= 0 and (start < 0 or close < start) and not answer_parts and not thoughts:
            # Only a close tag: the template opened the block in the prompt (DeepSeek-R1, QwQ).
            thoughts.append(rest[:close])
            rest = rest[close + len(tags.close):]
            continue
        if start < 0:
            answer_parts.append(rest)
            break
        answer_parts.append(rest[:start])
        rest = rest[start + len(tags.open):]
        inside = True
    return Reply(_join(thoughts), "".join(answer_parts).strip("\n") if thoughts else text)


def _join(parts: list[str]) -> str | None:
    kept = [p.strip("\n") for p in parts if p is not None]
    return "\n".join(kept) if kept else None
