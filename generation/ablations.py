"""SelfCodeAlign's execution-filter ablation around the validate stage (``validate.execution``).

* ``filter`` (default): :func:`generation.validate.run` as it is: one passing
  response per instruction; instructions without one are removed.
* ``off``: nothing runs.  Each instruction keeps one well-formed response
  (it has code and tests that parse: what validation would have run), drawn
  with the same recorded seed as validation's choice; ``passed`` is None.
* ``keep_failed``: validation runs as usual; then every instruction it
  removed although some of its responses ran (they all failed) gets one of
  those responses, drawn the same way, in ``validate.failed.jsonl`` with
  ``passed = 0``.  Selection takes these after the passing pairs
  (SelfCodeAlign's ``include_left_failed``), so a failing pair never
  displaces a passing near-duplicate.

The other ablation switches live where they act: ``filter.enabled``
(unfiltered seeds), ``instruct.mode`` (S->I), ``select.responses`` (every
passing response, not one).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from generation.core import Context, Funnel, StageFiles, append_rows, stage_input
from generation.instruct import carried, derive_seed, pending, read_rows, stage_funnel

FAILED_FILE = "validate.failed.jsonl"


def run_validate(ctx: Context) -> Funnel:
    """The validate stage under ``validate.execution``."""
    mode = ctx.config.validate_.execution
    if mode == "off":
        return run_unexecuted(ctx)
    from generation import validate

    funnel = validate.run(ctx)
    funnel.extra["execution"] = mode
    if mode == "keep_failed":
        kept = keep_failed(ctx)
        funnel.extra["kept_failed"] = kept
        funnel.notes.append(f"validate.execution = keep_failed: {kept} instruction(s) whose responses all failed "
                            f"are kept with a failing response in {FAILED_FILE} (selected after the passing ones)")  # fmt: skip
    return funnel


def _pick(ctx: Context, key: str, candidates: list[int]) -> tuple[int, int]:
    choice_seed = derive_seed(ctx.config.seed, "validate", key)
    return random.Random(choice_seed).choice(candidates), choice_seed


def _row(ctx: Context, row: dict[str, Any], extracted: list[Any], candidates: list[int], passed: int | None,
         outcomes: dict[str, int], **more: Any) -> dict[str, Any]:  # fmt: skip
    chosen, choice_seed = _pick(ctx, row["key"], candidates)
    e = extracted[chosen]
    base = {k: v for k, v in carried(row).items() if k != "responses"}
    return {**base, "response": e.response, "tests": e.tests, "code": e.code, "test_code": e.test_code,
            "passed": passed, "sampled": len(extracted), "chosen": chosen, "choice_seed": choice_seed,
            "outcomes": outcomes, **more}  # fmt: skip


def run_unexecuted(ctx: Context) -> Funnel:
    """``validate.execution = "off"``: keep one well-formed response per instruction, run nothing."""
    from generation.validate import extract

    rows = stage_input(ctx.workdir, "responses")
    files = StageFiles(ctx.workdir, "validate")
    todo, skipped = pending(rows, files, "responses")
    files.append([])
    outputs, removals = [], []
    for row in todo:
        extracted = [extract(t) for t in row.get("responses") or []]
        counts = dict(Counter(e.problem or "not_run" for e in extracted))
        ok = [k for k, e in enumerate(extracted) if e.problem is None]
        if ok:
            outputs.append(_row(ctx, row, extracted, ok, None, counts, executed=False))
        else:
            removals.append((row["key"], "no_code_or_tests", {"outcomes": counts, "sampled": len(extracted)}))
    files.append(outputs)
    files.remove(removals)
    totals: Counter[str] = Counter()
    for r in [*files.rows(), *read_rows(files.removed)]:
        totals.update(r.get("outcomes") or {})
    return stage_funnel("validate", files, len(rows), skipped,
                        extra={"execution": "off", "responses": dict(totals), "responses_total": sum(totals.values()),
                               "response_pass_rate": None},
                        notes=["validate.execution = off: nothing ran; one well-formed response per instruction "
                               "is kept (not_run counts responses that would have run)"])  # fmt: skip


def keep_failed(ctx: Context) -> int:
    """Write ``validate.failed.jsonl``: one failing response for each instruction whose responses all failed."""
    from generation.validate import extract

    removed = {r["key"]: r for r in read_rows(ctx.workdir / "validate.removed.jsonl")}
    path = ctx.workdir / FAILED_FILE
    done = {r["key"] for r in read_rows(path)}
    new = []
    for row in stage_input(ctx.workdir, "responses"):
        gone = removed.get(row.get("key", ""))
        if gone is None or row["key"] in done:
            continue
        outcomes = gone.get("outcomes") or {}
        extracted = [extract(t) for t in row.get("responses") or []]
        ran = [k for k, e in enumerate(extracted) if e.problem is None]
        # only instructions whose responses really ran and failed (not ones that never had code and tests)
        if not ran or not any(v for o, v in outcomes.items() if o not in ("empty", "no_code", "no_tests",
                                                                          "syntax_error", "no_asserts")):  # fmt: skip
            continue
        new.append(_row(ctx, row, extracted, ran, 0, outcomes, kept_failed=True))
        done.add(row["key"])
    if new:
        append_rows(path, new)
    return len(done)
