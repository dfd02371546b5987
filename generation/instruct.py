"""Self-OSS-Instruct: seed -> concepts (S->C), concepts -> instruction (C->I), instruction -> responses (I->R).

Each stage is a few-shot completion prompt for a base model: the stage's
system paragraph, ``InstructConfig.fewshot`` of the project's exemplars
(:mod:`generation.exemplars`, drawn per item with a seed derived from
``PipelineConfig.seed``) shown as ``### Example N`` blocks, and the item
itself as the last block, ending in the header of the section the model
writes.  Generation stops at the next section or example marker.

* S->C ends in ``[Property]``: the model writes ``category``, ``language``,
  ``difficulty`` and ``concepts`` lines.
* C->I ends in ``[Instruction]`` after the property block.
* I->R ends in ``[Response]`` after the instruction: the model writes the
  response and a ``[Tests]`` section; ``responses_per_instruction`` samples
  per instruction (one request with ``Sampling(n=...)``).

Every stage sends its input through ``ctx.engine.generate`` one batch of
``InstructConfig.batch`` requests at a time and appends that batch's rows
before the next, so an interrupted run loses one batch at most; a rerun
skips keys already written or removed.  Rows keep the seed row's fields
(``key`` is the seed's key throughout) and add their own.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.core import Context, Funnel, StageFiles, stage_input
from generation.exemplars import EXAMPLE_MARK, Exemplar, load_fewshot, render
from harness.errors import HarnessError

CATEGORIES = ("function implementation", "class implementation", "program implementation")
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


def response_prompt(instruction: str, shots: Sequence[Exemplar]) -> str:
    """I->R: exemplars' instruction, response and tests; the instruction, then an open ``[Response]``."""
    return _prompt("I->R", shots, ("Instruction", "Response", "Tests"), {"Instruction": instruction}, "Response")


def format_property(prop: dict[str, str]) -> str:
    """The ``[Property]`` block: one ``name: value`` line per field."""
    return "\n".join(f"{k}: {prop[k]}" for k in PROPERTY_KEYS if prop.get(k))


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


# ------------------------------------------------------------------ the stage runner
@dataclass
class Outcome:
    """What one input item became: an output row, or a removal with its reason."""

    row: dict[str, Any] | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenStage:
    """One generation stage: where its input comes from, how it prompts, samples and parses."""

    name: str
    source: str
    prompt: Callable[[dict[str, Any], list[Exemplar]], str]
    parse: Callable[[dict[str, Any], list[str], random.Random], Outcome]
    max_tokens: int
    n: int = 1


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
    finish: dict[str, int] = {}
    batches = (len(todo) + cfg.batch - 1) // cfg.batch
    for b, start in enumerate(range(0, len(todo), cfg.batch), start=1):
        batch = todo[start : start + cfg.batch]
        requests = []
        for row in batch:
            shots = pick_exemplars(pool, cfg.fewshot, derive_seed(ctx.config.seed, stage.name, "shots", row["key"]))
            requests.append(Request(prompt=stage.prompt(row, shots), sampling=sampling))
        results = ctx.engine.generate(requests)
        outputs: list[dict[str, Any]] = []
        removals: list[tuple[str, str, dict[str, Any]]] = []
        for row, result in zip(batch, results):
            comps = result.completions
            gen = {"prompt_tokens": sum(c.prompt_tokens for c in comps),
                   "completion_tokens": sum(c.completion_tokens for c in comps),
                   "finish": [c.finish_reason for c in comps]}  # fmt: skip
            for c in comps:
                finish[c.finish_reason] = finish.get(c.finish_reason, 0) + 1
            rng = random.Random(derive_seed(ctx.config.seed, stage.name, "fill", row["key"]))
            outcome = stage.parse(row, [c.text for c in comps], rng)
            if outcome.row is not None:
                outputs.append({**carried(row), **outcome.row, "gen": gen})
            else:
                removals.append((row["key"], outcome.reason or "unparsable", {**outcome.detail, "gen": gen}))
        files.append(outputs)
        files.remove(removals)
        ctx.echo(f"[{stage.name}] batch {b}/{batches}: {len(outputs)} kept, {len(removals)} removed")
    return stage_funnel(stage.name, files, len(rows), skipped,
                        extra={"finish_this_run": finish, "samples_per_item": stage.n})  # fmt: skip


def _excerpt(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ S->C
def _concepts_prompt(row: dict[str, Any], shots: list[Exemplar]) -> str:
    seed = row.get("seed")
    if not isinstance(seed, str):
        raise HarnessError(f"dedup row {row.get('key')} has no 'seed' (function source); rerun the dedup stage")
    return concepts_prompt(seed.rstrip(), shots)


def _parse_concepts(row: dict[str, Any], texts: list[str], rng: random.Random) -> Outcome:
    text = texts[0] if texts else ""
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
    """S->C over the deduplicated seeds."""
    cfg = ctx.config.instruct
    return _run(ctx, GenStage("concepts", "dedup", _concepts_prompt, _parse_concepts, cfg.concepts_max_tokens))


# ------------------------------------------------------------------ C->I
def _parse_instruction(row: dict[str, Any], texts: list[str], rng: random.Random) -> Outcome:
    text = (texts[0] if texts else "").strip()
    if not text:
        return Outcome(reason="empty_output")
    if len(text) < MIN_INSTRUCTION_CHARS:
        return Outcome(reason="too_short", detail={"output": text})
    return Outcome(row={"instruction": text})


def run_instructions(ctx: Context) -> Funnel:
    """C->I over the concepts."""
    cfg = ctx.config.instruct
    return _run(ctx, GenStage("instructions", "concepts", lambda row, shots: instruction_prompt(row["property"], shots),
                              _parse_instruction, cfg.instruction_max_tokens))  # fmt: skip


# ------------------------------------------------------------------ I->R
def _parse_responses(row: dict[str, Any], texts: list[str], rng: random.Random) -> Outcome:
    responses = [t.rstrip() for t in texts]
    if not any(t.strip() for t in responses):
        return Outcome(reason="empty_output", detail={"sampled": len(texts)})
    # Empty samples stay in place: sample i of the list is sample i of the request.
    return Outcome(row={"responses": responses, "sampled": len(responses)})


def run_responses(ctx: Context) -> Funnel:
    """I->R over the instructions, ``responses_per_instruction`` samples each."""
    cfg = ctx.config.instruct
    if cfg.responses_per_instruction < 1:
        raise HarnessError("instruct.responses_per_instruction must be at least 1")
    return _run(ctx, GenStage("responses", "instructions", lambda row, shots: response_prompt(row["instruction"], shots),
                              _parse_responses, cfg.response_max_tokens, n=cfg.responses_per_instruction))  # fmt: skip
