"""Run the SelfCodeAlign stages, one or all, with one engine for every model call."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path

from generation.core import STAGES, Context, Funnel, PipelineConfig, save_funnel
from harness.errors import HarnessError

#: stage -> "module:function"; each function is ``run(ctx) -> Funnel``.
STAGE_FUNCS = {
    "seeds": "generation.seeds:run",
    "filter": "generation.filters:run",
    "dedup": "generation.dedup:run",
    "concepts": "generation.instruct:run_concepts",
    "instructions": "generation.instruct:run_instructions",
    "responses": "generation.instruct:run_responses",
    "validate": "generation.validate:run",
    "select": "generation.select:run",
}


def stage_function(stage: str) -> Callable[[Context], Funnel]:
    """The function that runs ``stage``."""
    if stage not in STAGE_FUNCS:
        raise HarnessError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    module, _, func = STAGE_FUNCS[stage].partition(":")
    return getattr(importlib.import_module(module), func)


def run_stage(ctx: Context, stage: str) -> Funnel:
    """Run one stage (resuming where an earlier run stopped) and record its funnel."""
    t0 = time.perf_counter()
    ctx.echo(f"[{stage}] starting")
    funnel = stage_function(stage)(ctx)
    funnel.seconds = round(funnel.seconds or time.perf_counter() - t0, 3)
    save_funnel(ctx.workdir, funnel)
    removed = ", ".join(f"{k} {v}" for k, v in sorted(funnel.removed.items(), key=lambda kv: -kv[1])) or "none"
    ctx.echo(f"[{stage}] in {funnel.input}, out {funnel.output}, removed: {removed}"
             f"{f', {funnel.skipped_done} done before' if funnel.skipped_done else ''}; {funnel.seconds:.1f} s"
             f"{f', {funnel.completion_tokens} tokens generated' if funnel.completion_tokens else ''}")  # fmt: skip
    return funnel


def run_pipeline(config: PipelineConfig, first: str | None = None, last: str | None = None,
                 echo: Callable[[str], None] = print) -> dict[str, Funnel]:  # fmt: skip
    """Run stages ``first`` .. ``last`` (default: all) in order."""
    names = list(STAGES)
    for label, value in (("--from", first), ("--until", last)):
        if value is not None and value not in names:
            raise HarnessError(f"{label} {value!r} is not a stage; stages: {', '.join(names)}")
    lo = names.index(first) if first else 0
    hi = names.index(last) if last else len(names) - 1
    ctx = Context(config, Path(config.workdir), echo)
    out: dict[str, Funnel] = {}
    try:
        for stage in names[lo : hi + 1]:
            out[stage] = run_stage(ctx, stage)
    finally:
        ctx.close()
    return out
