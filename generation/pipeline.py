"""Run the SelfCodeAlign stages, one or all, with one engine for every model call.

Before any work the manifest (:mod:`generation.core`) is checked: a stage
whose outputs were made with other settings is refused with the changed keys
named; ``rerun_from`` moves that stage's outputs and every later stage's
aside and redoes them.  Each stage's record in ``manifest.json`` is written
when it starts and when it finishes.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path

from generation.core import (
    STAGES,
    Context,
    Funnel,
    PipelineConfig,
    check_manifest,
    record_stage,
    save_funnel,
    supersede,
)
from harness.errors import HarnessError

#: stage -> "module:function"; each function is ``run(ctx) -> Funnel``.
STAGE_FUNCS = {
    "seeds": "generation.seeds:run",
    "filter": "generation.filters:run",
    "dedup": "generation.dedup:run",
    "concepts": "generation.instruct:run_concepts",
    "instructions": "generation.instruct:run_instructions",
    "responses": "generation.instruct:run_responses",
    "validate": "generation.ablations:run_validate",
    "select": "generation.select:run",
}


def stage_function(stage: str) -> Callable[[Context], Funnel]:
    """The function that runs ``stage``."""
    if stage not in STAGE_FUNCS:
        raise HarnessError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    module, _, func = STAGE_FUNCS[stage].partition(":")
    return getattr(importlib.import_module(module), func)


def _check_stage_name(label: str, value: str | None) -> None:
    if value is not None and value not in STAGES:
        raise HarnessError(f"{label} {value!r} is not a stage; stages: {', '.join(STAGES)}")


def prepare(ctx: Context, last: str, rerun_from: str | None = None) -> None:
    """Check the manifest for the stages up to ``last`` (refusing stale outputs), then honour ``rerun_from``."""
    _check_stage_name("--rerun-from", rerun_from)
    for note in check_manifest(ctx.config, ctx.workdir, last, rerun_from):
        ctx.echo(f"note: {note}")
    if rerun_from is not None:
        supersede(ctx.config, ctx.workdir, rerun_from, ctx.echo)


def run_stage(ctx: Context, stage: str, rerun_from: str | None = None) -> Funnel:
    """Run one stage (resuming where an earlier run stopped) and record its funnel and manifest entry.

    Refused before any work when this stage or one before it has outputs made with other settings.
    """
    if stage not in STAGES:
        raise HarnessError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    if rerun_from is not None and STAGES.index(rerun_from) > STAGES.index(stage):
        raise HarnessError(f"--rerun-from {rerun_from} comes after the stage {stage}; name {stage} or an earlier stage")
    prepare(ctx, stage, rerun_from)
    t0 = time.perf_counter()
    ctx.echo(f"[{stage}] starting")
    record_stage(ctx, stage, finished=False)
    funnel = stage_function(stage)(ctx)
    funnel.seconds = round(funnel.seconds or time.perf_counter() - t0, 3)
    funnel.digest = record_stage(ctx, stage, finished=True)
    save_funnel(ctx.workdir, funnel)
    removed = ", ".join(f"{k} {v}" for k, v in sorted(funnel.removed.items(), key=lambda kv: -kv[1])) or "none"
    unit = f" {funnel.unit}" if funnel.unit else ""
    responses = ""
    if stage == "validate":  # instructions kept, and responses passed: two units, two numbers
        from generation.report import response_outcomes

        outcomes = response_outcomes(ctx.workdir, funnel)
        if outcomes:
            responses = f"; responses: {outcomes.get('pass', 0)} of {sum(outcomes.values())} passed"
    ctx.echo(f"[{stage}] in {funnel.input}{unit}, out {funnel.output}, removed: {removed}{responses}"
             f"{f', {funnel.skipped_done} done before' if funnel.skipped_done else ''}; {funnel.seconds:.1f} s"
             f"{f', {funnel.completion_tokens} tokens generated' if funnel.completion_tokens else ''}")  # fmt: skip
    return funnel


def run_pipeline(config: PipelineConfig, first: str | None = None, last: str | None = None,
                 echo: Callable[[str], None] = print, rerun_from: str | None = None,
                 context: Context | None = None) -> dict[str, Funnel]:  # fmt: skip
    """Run stages ``first`` .. ``last`` (default: all) in order.

    ``rerun_from`` (a stage in that range, or before ``first``) redoes that stage and every later one; without
    it, a stage whose outputs were made with other settings is refused before any work, naming the keys.
    """
    names = list(STAGES)
    for label, value in (("--from", first), ("--until", last), ("--rerun-from", rerun_from)):
        _check_stage_name(label, value)
    lo = names.index(first) if first else 0
    hi = names.index(last) if last else len(names) - 1
    if lo > hi:
        raise HarnessError(f"--from {names[lo]} comes after --until {names[hi]}")
    if rerun_from is not None and names.index(rerun_from) > hi:
        raise HarnessError(f"--rerun-from {rerun_from} comes after the last stage to run ({names[hi]})")
    if rerun_from is not None and names.index(rerun_from) < lo:
        lo = names.index(rerun_from)  # the stages it redoes must run
    ctx = context or Context(config, Path(config.workdir), echo)
    out: dict[str, Funnel] = {}
    try:
        prepare(ctx, names[hi], rerun_from)  # every stage checked before the first one starts
        for stage in names[lo : hi + 1]:
            out[stage] = run_stage(ctx, stage)
    finally:
        if context is None:
            ctx.close()
    return out
