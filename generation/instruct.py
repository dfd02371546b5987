"""Self-OSS-Instruct: seed -> concepts (S->C), concepts -> instruction (C->I), instruction -> responses (I->R).

Each stage is a few-shot completion prompt for a base model: the stage's
system paragraph, exemplars of the project's own (:mod:`generation.exemplars`,
drawn per item with a seed derived from ``PipelineConfig.seed`` and the
item's key; ``InstructConfig.fewshot`` for S->C and C->I,
``fewshot_responses`` for I->R, as SelfCodeAlign's 8 and 1) shown as
``### Example N`` blocks, and the item itself as the last block, ending in
the header of the section the model writes.  Generation stops at the next
section or example marker.

* S->C ends in ``[Property]``: the model writes ``category``, ``language``,
  ``difficulty`` and ``concepts`` lines; the concepts are what C->I uses.
* C->I ends in ``[Instruction]`` after a property block whose category
  (function implementation twice as likely as class or program
  implementation) and difficulty (easy, medium, hard) are drawn at random per
  item, as SelfCodeAlign does, with the seed's concepts.
* ``instruct.mode = "S->I"`` (the ablation) skips S->C: the concepts stage
  passes the seeds through, and the instruction is written from the seed's
  code directly (``### System: S->I``).
* I->R ends in ``[Response]`` after the instruction: the model writes the
  response and a ``[Tests]`` section; ``responses_per_instruction`` samples
  per instruction (one request with ``Sampling(n=...)``).

A completion that stopped on the token limit (finish reason ``length``) is
dropped with its own reason (``stopped_on_length``), and so is one the engine cut
short (``cut_short_by_the_engine``) or one holding control characters
(``control_characters``: binary garbage); an I->R sample
of either kind is dropped from the instruction's samples and counted in the
funnel, and an instruction left with none is removed.

Requests go to ``ctx.engine.generate`` in batches of at most
``InstructConfig.batch`` requests and ``batch_tokens`` tokens (prompt plus
``n`` x the new-token limit per request), and each batch's rows are appended
before the next, so an interrupted run loses one batch at most; a rerun skips
keys already written or removed.  Before the first batch, the longest prompt
plus the new-token limit is checked against the model's context length
(when the engine or ``instruct.context_length`` tells it).  Rows keep the
seed row's fields (``key`` is the seed's key throughout) and add their own.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.core import Context, Funnel, Progress, StageFiles, stage_input
from generation.exemplars import EXAMPLE_MARK, Exemplar, load_fewshot, render
from harness.errors import HarnessError

CATEGORIES = ("function implementation", "class implementation", "program implementation")
#: SelfCodeAlign's draw for C->I: function implementation is listed twice.
CATEGORY_DRAW = ("function implementation", "function implementation", "class implementation",
                 "program implementation")  # fmt: skip
DIFFICULTIES = ("easy", "medium", "hard")
PROPERTY_KEYS = ("category", "language", "difficulty", "concepts")

# The model continues an example; anything after the section it was asked for belongs to the next one.
STOPS: dict[str, tuple[str, ...]] = {
    "concepts": (f"\n{EXAMPLE_MARK}", "\n[Instruction]", "\n[Code]"),
    "instructions": (f"\n{EXAMPLE_MARK}", "\n[Response]", "\n[Property]", "\n[Code]"),
    "responses": (f"\n{EXAMPLE_MARK}", "\n[Instruction]", "\n[Property]", "\n[Code]"),
}
MIN_INSTRUCTION_CHARS = 20
#: Fields of an earlier stage that are not provenance and do not travel on.
_NOT_CARRIED = ("gen",)
#: C0 controls other than tab, newline and carriage return, DEL, and C1 controls: never in honest text.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Characters per token assumed for batching when the engine has no tokenizer to ask (code: about 3-4).
CHARS_PER_TOKEN = 3.0


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from the pipeline seed and labels (stage, key): stable across runs and machines."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a stage's JSONL file (missing file: none; a torn last line is skipped, as the stage files do)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def stage_funnel(stage: str, files: StageFiles, inputs: int, skipped: int,
                 extra: dict[str, Any] | None = None, notes: list[str] | None = None) -> Funnel:  # fmt: skip
    """A stage's funnel over every run so far: outputs, removals by reason, and tokens recorded in the rows."""
    out_rows = files.rows()
    prompt = completion = 0
    for row in [*out_rows, *read_rows(files.removed)]:
        gen = row.get("gen") or {}
        prompt += int(gen.get("prompt_tokens", 0))
        completion += int(gen.get("completion_tokens", 0))
    return Funnel(stage=stage, input=inputs, output=len(out_rows), removed=files.removed_counts(),
                  skipped_done=skipped, prompt_tokens=prompt, completion_tokens=completion,
                  notes=notes or [], extra=extra or {})  # fmt: skip


def pending(rows: Sequence[dict[str, Any]], files: StageFiles, source: str) -> tuple[list[dict[str, Any]], int]:
    """Input rows not yet handled (each key once), and how many an earlier run already handled."""
    done = files.done_keys()
    todo: list[dict[str, Any]] = []
    seen: set[str] = set()
    skipped = 0
    for lineno, row in enumerate(rows, start=1):
        key = row.get("key")
        if not isinstance(key, str):
            raise HarnessError(f"{source}.jsonl row {lineno} has no string 'key'; rerun the {source} stage")
        if key in done:
            skipped += 1
        elif key not in seen:
            seen.add(key)
            todo.append(row)
    return todo, skipped


def carried(row: dict[str, Any]) -> dict[str, Any]:
    """The provenance of an input row that an output row keeps."""
    return {k: v for k, v in row.items() if k not in _NOT_CARRIED}


# ------------------------------------------------------------------ prompts
def pick_exemplars(pool: Sequence[Exemplar], k: int, seed: int) -> list[Exemplar]:
    """``k`` exemplars in a seeded random order (all of them when ``k`` exceeds the pool)."""
    return random.Random(seed).sample(list(pool), min(max(k, 0), len(pool)))


def _prompt(
    mode: str, shots: Sequence[Exemplar], shown: Sequence[str], query: dict[str, str], open_section: str
) -> str:
    fewshot = load_fewshot()
    if mode not in fewshot.systems:
        raise HarnessError(f"the few-shot file has no '### System: {mode}' paragraph, which instruct.mode needs")
    blocks = [fewshot.systems[mode]]
    blocks += [render({name: ex.section(name) for name in shown}, i) for i, ex in enumerate(shots, start=1)]
    blocks.append(render(query, len(shots) + 1, open_section))
    return "\n".join(b if b.endswith("\n") else b + "\n" for b in blocks)


def concepts_prompt(seed_code: str, shots: Sequence[Exemplar]) -> str:
    """S->C: exemplars' code and property; the seed's code, then an open ``[Property]``."""
    return _prompt("S->C", shots, ("Code", "Property"), {"Code": seed_code}, "Property")


def instruction_prompt(prop: dict[str, str], shots: Sequence[Exemplar]) -> str:
    """C->I: exemplars' property and instruction; the property, then an open ``[Instruction]``."""
    return _prompt("C->I", shots, ("Property", "Instruction"), {"Property": format_property(prop)}, "Instruction")


def seed_instruction_prompt(seed_code: str, shots: Sequence[Exemplar]) -> str:
    """S->I (the ablation): exemplars' code and instruction; the seed's code, then an open ``[Instruction]``."""
    return _prompt("S->I", shots, ("Code", "Instruction"), {"Code": seed_code}, "Instruction")


def response_prompt(instruction: str, shots: Sequence[Exemplar]) -> str:
    """I->R: exemplars' instruction, response and tests; the instruction, then an open ``[Response]``."""
    return _prompt("I->R", shots, ("Instruction", "Response", "Tests"), {"Instruction": instruction}, "Response")


def format_property(prop: dict[str, str]) -> str:
    """The ``[Property]`` block: one ``name: value`` line per field."""
    return "\n".join(f"{k}: {prop[k]}" for k in PROPERTY_KEYS if prop.get(k))


def draw_property(concepts: str, rng: random.Random) -> dict[str, str]:
    """C->I's property: a random category (function implementation weighted twice) and difficulty."""
    return {"category": rng.choice(CATEGORY_DRAW), "language": "Python", "difficulty": rng.choice(DIFFICULTIES),
            "concepts": concepts}  # fmt: skip


_PROP_LINE = re.compile(r"^\s*(category|language|difficulty|concepts)\s*:\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)


def parse_property(text: str) -> dict[str, str]:
    """The ``name: value`` lines a model wrote for ``[Property]`` (the first of each name; concepts normalised)."""
    found: dict[str, str] = {}
    for m in _PROP_LINE.finditer(text):
        found.setdefault(m.group(1).lower(), m.group(2))
    if "concepts" in found:
        parts = [p.strip(" .;") for p in found["concepts"].split(",")]
        found["concepts"] = ", ".join(p for p in parts if p)
    for k in ("category", "difficulty"):
        if k in found:
            found[k] = found[k].lower()
    return {k: v for k, v in found.items() if v}


# ------------------------------------------------------------------ context length and token counts
def _backend(ctx: Context) -> Any:
    engine = ctx.engine
    return getattr(engine, "backend", None)


def context_length(ctx: Context) -> int | None:
    """The model's context length: ``instruct.context_length``, else what the backend's model says, else None."""
    if ctx.config.instruct.context_length:
        return ctx.config.instruct.context_length
    backend = _backend(ctx)
    try:  # vLLM
        return int(backend.llm.llm_engine.model_config.max_model_len)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - not a vLLM backend, or a vLLM without that attribute
        pass
    config = getattr(getattr(backend, "model", None), "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def token_counter(ctx: Context) -> Callable[[str], int] | None:
    """A function counting a prompt's tokens with the model's tokenizer, when the backend has one."""
    tokenizer = getattr(_backend(ctx), "tokenizer", None)
    if tokenizer is None or not callable(getattr(tokenizer, "encode", None)):
        return None

    def count(text: str) -> int:
        return len(tokenizer.encode(text))

    return count


def estimate_tokens(text: str) -> int:
    """A prompt's tokens when no tokenizer can be asked."""
    return int(len(text) / CHARS_PER_TOKEN) + 1


_MAX_TOKEN_KEYS = {"concepts": "instruct.concepts_max_tokens", "instructions": "instruct.instruction_max_tokens",
                   "responses": "instruct.response_max_tokens"}  # fmt: skip
_SHOT_KEYS = {"concepts": "instruct.fewshot", "instructions": "instruct.fewshot", "responses": "instruct.fewshot_responses"}


def check_context(ctx: Context, stage: str, prompts: Sequence[str], max_tokens: int) -> int | None:
    """Refuse, before any generation, a stage whose longest prompt plus ``max_tokens`` exceeds the context."""
    limit = context_length(ctx)
    if limit is None or not prompts:
        return None
    count = token_counter(ctx) or estimate_tokens
    longest = sorted(prompts, key=len, reverse=True)[:16]  # token counts follow character counts closely
    worst = max(count(p) for p in longest)
    if worst + max_tokens > limit:
        shots = ctx.config.instruct.fewshot_responses if stage == "responses" else ctx.config.instruct.fewshot
        raise HarnessError(
            f"[{stage}] the longest prompt is {worst:,} tokens and {_MAX_TOKEN_KEYS[stage]} is {max_tokens:,}: "
            f"{worst + max_tokens:,} tokens do not fit the model's {limit:,}-token context; lower "
            f"{_SHOT_KEYS[stage]} (now {shots}) or {_MAX_TOKEN_KEYS[stage]}, or use a model with a longer context"
            + ("" if ctx.config.instruct.context_length is None else " (instruct.context_length says "
               f"{ctx.config.instruct.context_length})"))  # fmt: skip
    return worst


def token_batches(costs: Sequence[int], max_requests: int, max_tokens: int) -> list[tuple[int, int]]:
    """``(start, stop)`` spans of consecutive requests: at most ``max_requests`` and ``max_tokens`` each (a
    request costlier than ``max_tokens`` goes alone)."""
    spans: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, c in enumerate(costs):
        if i > start and (i - start >= max_requests or used + c > max_tokens):
            spans.append((start, i))
            start, used = i, 0
        used += c
    if start < len(costs):
        spans.append((start, len(costs)))
    return spans


# ------------------------------------------------------------------ the stage runner
@dataclass
class Outcome:
    """What one input item became: an output row, or a removal with its reason."""

    row: dict[str, Any] | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    """One completion as a parser sees it."""

    text: str
    finish: str


@dataclass
class GenStage:
    """One generation stage: where its input comes from, how it prompts, samples and parses."""

    name: str
    source: str
    prompt: Callable[[dict[str, Any], list[Exemplar]], str]
    parse: Callable[[dict[str, Any], list[Sample], random.Random], Outcome]
    max_tokens: int
    n: int = 1
    shots: int = 8


def _run(ctx: Context, stage: GenStage) -> Funnel:
    from harness.engine import Request, Sampling

    cfg = ctx.config.instruct
    rows = stage_input(ctx.workdir, stage.source)
    files = StageFiles(ctx.workdir, stage.name)
    todo, skipped = pending(rows, files, stage.source)
    files.append([])  # the output file exists even when nothing survives, so the next stage can run
    pool = load_fewshot().exemplars
    # One seed per stage (not per item) so that backends that batch by sampling settings (hf) can batch.
    sampling = Sampling(n=stage.n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=stage.max_tokens,
                        stop=STOPS[stage.name], seed=derive_seed(ctx.config.seed, stage.name))  # fmt: skip

    def prompt_of(row: dict[str, Any]) -> str:
        shots = pick_exemplars(pool, stage.shots, derive_seed(ctx.config.seed, stage.name, "shots", row["key"]))
        return stage.prompt(row, shots)

    # Prompts are built again per batch rather than kept: a big stage's prompts would not fit in memory.
    lengths: list[int] = []
    longest: list[tuple[int, int, str]] = []  # the 16 longest prompts (a min-heap on length)
    for i, row in enumerate(todo):
        p = prompt_of(row)
        lengths.append(len(p))
        if len(longest) < 16:
            heapq.heappush(longest, (len(p), i, p))
        elif len(p) > longest[0][0]:
            heapq.heapreplace(longest, (len(p), i, p))
    notes: list[str] = []
    chars_per_token = CHARS_PER_TOKEN
    if todo:
        worst = check_context(ctx, stage.name, [p for _, _, p in longest], stage.max_tokens)
        if worst is not None:
            notes.append(f"longest prompt {worst:,} tokens + {stage.max_tokens:,} new fits the context")
        count = token_counter(ctx)
        if count is not None:  # calibrate the batch sizes on the model's own tokenizer
            sample = [p for _, _, p in longest]
            chars_per_token = max(1.0, sum(map(len, sample)) / max(1, sum(count(p) for p in sample)))
    costs = [int(n / chars_per_token) + 1 + stage.n * stage.max_tokens for n in lengths]
    spans = token_batches(costs, cfg.batch, cfg.batch_tokens)
    finish: dict[str, int] = {}
    dropped: dict[str, int] = {}
    progress = Progress(ctx.echo, stage.name, len(todo), "items", "samples", len(todo) * stage.n)
    try:
        for start, stop in spans:
            batch = todo[start:stop]
            requests = [Request(prompt=prompt_of(row), sampling=sampling) for row in batch]
            results = ctx.engine.generate(requests, progress=progress.tick)
            outputs: list[dict[str, Any]] = []
            removals: list[tuple[str, str, dict[str, Any]]] = []
            tokens = 0
            for row, result in zip(batch, results):
                comps = result.completions
                gen = {"prompt_tokens": sum(c.prompt_tokens for c in comps),
                       "completion_tokens": sum(c.completion_tokens for c in comps),
                       "finish": [c.finish_reason for c in comps]}  # fmt: skip
                tokens += gen["completion_tokens"]
                for c in comps:
                    finish[c.finish_reason] = finish.get(c.finish_reason, 0) + 1
                rng = random.Random(derive_seed(ctx.config.seed, stage.name, "fill", row["key"]))
                outcome = stage.parse(row, [Sample(c.text, c.finish_reason) for c in comps], rng)
                for why, k in (outcome.row or {}).get("dropped_samples", {}).items():
                    dropped[why] = dropped.get(why, 0) + k
                if outcome.row is not None:
                    outputs.append({**carried(row), **outcome.row, "gen": gen})
                else:
                    removals.append((row["key"], outcome.reason or "unparsable", {**outcome.detail, "gen": gen}))
            files.append(outputs)
            files.remove(removals)
            progress.batch(len(batch), f"{len(outputs)} kept, {len(removals)} removed", tokens, of=len(spans))
    finally:
        progress.close()
    extra: dict[str, Any] = {"finish_this_run": finish, "samples_per_item": stage.n, "fewshot": stage.shots,
                             "batches_this_run": len(spans)}  # fmt: skip
    if stage.n > 1:
        extra["samples_dropped"] = _dropped_samples(files)
    return stage_funnel(stage.name, files, len(rows), skipped, extra=extra, notes=notes)


def _dropped_samples(files: StageFiles) -> dict[str, int]:
    """Samples dropped from kept rows, by reason, over every run so far."""
    total: dict[str, int] = {}
    for row in files.rows():
        for why, k in (row.get("dropped_samples") or {}).items():
            total[why] = total.get(why, 0) + int(k)
    return total


def _excerpt(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bad_sample(sample: Sample) -> str | None:
    """Why a completion cannot be used at all: it stopped on the token limit, the server cut it short, or it
    holds control characters."""
    if sample.finish == "length":
        return "stopped_on_length"
    if sample.finish == "error":
        return "cut_short_by_the_engine"
    if CONTROL_CHARS.search(sample.text):
        return "control_characters"
    return None


# ------------------------------------------------------------------ S->C
def _seed_code(row: dict[str, Any]) -> str:
    seed = row.get("seed")
    if not isinstance(seed, str):
        raise HarnessError(f"dedup row {row.get('key')} has no 'seed' (function source); rerun the dedup stage")
    return seed.rstrip()


def _concepts_prompt(row: dict[str, Any], shots: list[Exemplar]) -> str:
    return concepts_prompt(_seed_code(row), shots)


def _parse_concepts(row: dict[str, Any], samples: list[Sample], rng: random.Random) -> Outcome:
    sample = samples[0] if samples else Sample("", "stop")
    text = sample.text
    bad = _bad_sample(sample)
    if bad:
        return Outcome(reason=bad, detail={"output": _excerpt(text)})
    if not text.strip():
        return Outcome(reason="empty_output")
    prop = parse_property(text)
    if not prop.get("concepts"):
        return Outcome(reason="no_concepts", detail={"output": _excerpt(text)})
    language = prop.get("language", "")
    if language and language.lower() != "python":
        # Validation runs Python only: another language's task could never pass.
        return Outcome(reason="not_python", detail={"language": language})
    filled = []
    if prop.get("category") not in CATEGORIES:
        prop["category"] = "class implementation" if row.get("seed", "").lstrip().startswith("class ") else \
            "function implementation"  # fmt: skip
        filled.append("category")
    if prop.get("difficulty") not in DIFFICULTIES:
        prop["difficulty"] = rng.choice(DIFFICULTIES)
        filled.append("difficulty")
    if not language:
        filled.append("language")
    prop["language"] = "Python"
    ordered = {k: prop[k] for k in PROPERTY_KEYS}
    return Outcome(row={"property": ordered, "concepts": ordered["concepts"], "property_filled": filled})


def run_concepts(ctx: Context) -> Funnel:
    """S->C over the deduplicated seeds (in S->I mode: the seeds pass through, no model call)."""
    cfg = ctx.config.instruct
    if cfg.mode == "S->I":
        return _pass_through(ctx)
    return _run(ctx, GenStage("concepts", "dedup", _concepts_prompt, _parse_concepts, cfg.concepts_max_tokens,
                              shots=cfg.fewshot))  # fmt: skip


def _pass_through(ctx: Context) -> Funnel:
    rows = stage_input(ctx.workdir, "dedup")
    files = StageFiles(ctx.workdir, "concepts")
    todo, skipped = pending(rows, files, "dedup")
    files.append([{**carried(r), "property": None, "concepts": None} for r in todo])
    return stage_funnel("concepts", files, len(rows), skipped, extra={"mode": "S->I"},
                        notes=["instruct.mode = S->I: no concepts asked for; instructions come from the seeds"])  # fmt: skip


# ------------------------------------------------------------------ C->I (and S->I)
def _instruction_prompt(ctx: Context) -> Callable[[dict[str, Any], list[Exemplar]], str]:
    def prompt(row: dict[str, Any], shots: list[Exemplar]) -> str:
        if ctx.config.instruct.mode == "S->I":
            return seed_instruction_prompt(_seed_code(row), shots)
        return instruction_prompt(_drawn_property(ctx, row), shots)

    return prompt


def _drawn_property(ctx: Context, row: dict[str, Any]) -> dict[str, str]:
    concepts = row.get("concepts") or (row.get("property") or {}).get("concepts")
    if not isinstance(concepts, str) or not concepts:
        raise HarnessError(f"concepts row {row.get('key')} has no concepts; rerun the concepts stage "
                           "(--rerun-from concepts)")  # fmt: skip
    return draw_property(concepts, random.Random(derive_seed(ctx.config.seed, "instructions", "property", row["key"])))


def _parse_instruction(row: dict[str, Any], samples: list[Sample], rng: random.Random) -> Outcome:
    sample = samples[0] if samples else Sample("", "stop")
    bad = _bad_sample(sample)
    if bad:
        return Outcome(reason=bad, detail={"output": _excerpt(sample.text)})
    text = sample.text.strip()
    if not text:
        return Outcome(reason="empty_output")
    if len(text) < MIN_INSTRUCTION_CHARS:
        return Outcome(reason="too_short", detail={"output": text})
    return Outcome(row={"instruction": text})


def run_instructions(ctx: Context) -> Funnel:
    """C->I over the concepts (S->I over the seeds in that mode)."""
    cfg = ctx.config.instruct
    prompt = _instruction_prompt(ctx)

    def parse(row: dict[str, Any], samples: list[Sample], rng: random.Random) -> Outcome:
        out = _parse_instruction(row, samples, rng)
        if out.row is not None and cfg.mode != "S->I":
            out.row["property"] = _drawn_property(ctx, row)  # what the instruction was asked for
        return out

    return _run(ctx, GenStage("instructions", "concepts", prompt, parse, cfg.instruction_max_tokens,
                              shots=cfg.fewshot))  # fmt: skip


# ------------------------------------------------------------------ I->R
def _parse_responses(row: dict[str, Any], samples: list[Sample], rng: random.Random) -> Outcome:
    kept: list[str] = []
    indices: list[int] = []
    dropped: dict[str, int] = {}
    for i, s in enumerate(samples):
        bad = _bad_sample(s)
        if bad:
            dropped[bad] = dropped.get(bad, 0) + 1
            continue
        kept.append(s.text.rstrip())
        indices.append(i)
    if not kept:
        reason = next(iter(dropped)) if len(dropped) == 1 else "no_usable_response"
        return Outcome(reason=reason if dropped else "empty_output",
                       detail={"sampled": len(samples), "dropped_samples": dropped})  # fmt: skip
    if not any(t.strip() for t in kept):
        return Outcome(reason="empty_output", detail={"sampled": len(samples), "dropped_samples": dropped})
    # Empty samples stay in place: validation counts them as such.
    return Outcome(row={"responses": kept, "sampled": len(kept), "generated": len(samples),
                        "sample_indices": indices, "dropped_samples": dropped})  # fmt: skip


def run_responses(ctx: Context) -> Funnel:
    """I->R over the instructions, ``responses_per_instruction`` samples each."""
    cfg = ctx.config.instruct
    return _run(ctx, GenStage("responses", "instructions", lambda row, shots: response_prompt(row["instruction"], shots),
                              _parse_responses, cfg.response_max_tokens, n=cfg.responses_per_instruction,
                              shots=cfg.fewshot_responses))  # fmt: skip
