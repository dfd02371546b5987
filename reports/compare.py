"""Comparing two runs of one benchmark: flipped tasks, a paired bootstrap interval, an exact McNemar test, the gate.

Definitions (also in ``reports/README.md``):

* Per task, a run's **pass fraction** is ``correct[suite] / n`` over its samples (with one sample per task: 1 or 0).
  A run's pass@1 is the mean pass fraction (the unbiased pass@1 estimator), over the tasks both runs graded.
* **Difference** = pass@1(B) - pass@1(A) over the common tasks; negative means B is worse.
* **Paired bootstrap**: resample the common tasks with replacement (``resamples`` times, seeded numpy
  generator, vectorised), take the mean per-task difference of each resample; the interval is the
  percentile interval at the requested confidence. Resampling tasks (not samples) keeps each task's pair
  together, which is what makes the test paired.
* **McNemar (exact)**: each task is a pass or a fail per run. With one sample per task that is the verdict;
  with several it is the **majority** (more than half of the task's samples pass; a tie counts as a fail),
  so the test asks whether the set of mostly-solved tasks changed, while the bootstrap uses the fractions.
  ``b`` = tasks passing in A only, ``c`` = in B only; p = min(1, 2 * P(X <= min(b, c))) with X ~ Bin(b + c, 1/2),
  computed exactly with integers (p = 1 when no task is discordant).
* **Flipped tasks** are the discordant tasks of the McNemar table: pass->fail (A only) and fail->pass (B only).
* **Failure modes** (``RunRecord.failure_modes``, one per sample, see ``harness.failure``) are counted over the
  samples of the common tasks; the movement is B's count minus A's per mode ("12 more truncated, 3 fewer wrong
  answers"). When truncation (``truncated``, ``truncated_thinking``) moved more than every other failure mode
  together, the comparison says the change is truncation: a token limit, not the model, made the difference.
* **Gate** (baseline A, candidate B, ``max_drop`` as a fraction, ``alpha``): a regression is
  (drop > max_drop AND McNemar p < alpha) OR (the whole (1 - alpha) bootstrap interval of B - A lies below
  -max_drop), where drop = pass@1(A) - pass@1(B). The first rule catches a clear drop that the flips make
  significant; the second catches a drop whose size alone is certain even when McNemar has few discordant
  tasks (e.g. many small per-task fraction losses with n > 1).

Runs are comparable only on the same benchmark, dataset name, version and hash, and the same selection
(LiveCodeBench's date window, release, platform, difficulty); otherwise comparing them is refused
(``NotComparable``) unless the caller explicitly allows it, in which case the result says so. The gate also
refuses a candidate that lacks baseline tasks (``MissingTasks``) unless told to gate on the common tasks.

Suites are the records' own (``RunRecord.suites``, grading order): a task's count for a suite is the samples
that passed it and every suite before it (``TaskResult.correct``), so every suite both runs graded compares
the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from harness.errors import EXIT_INCOMPLETE, HarnessError
from harness.failure import describe_movement, movement_text
from harness.registry import RunEntry
from harness.store import RunRecord, TaskResult

DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
# Bootstrap work per chunk (resamples x tasks indices): bounds memory for 1,000-task benchmarks.
_CHUNK_CELLS = 2_000_000


class NotComparable(HarnessError):
    """The two runs were scored on different datasets or selections."""


class MissingTasks(HarnessError):
    """The gate's candidate did not grade every task the baseline graded."""

    exit_code = EXIT_INCOMPLETE


def incomparable_reasons(a: RunEntry, b: RunEntry) -> list[str]:
    """Why runs ``a`` and ``b`` cannot be compared (empty when they can)."""
    reasons = []
    if a.benchmark != b.benchmark:
        reasons.append(f"different benchmarks ({a.benchmark} vs {b.benchmark})")
    if a.dataset_name != b.dataset_name or a.dataset_version != b.dataset_version:
        reasons.append(f"different dataset versions ({a.dataset_name} {a.dataset_version} vs "
                       f"{b.dataset_name} {b.dataset_version})")  # fmt: skip
    if a.dataset_hash != b.dataset_hash:
        reasons.append(f"different dataset hashes ({a.dataset_hash} vs {b.dataset_hash})")
    if a.selection != b.selection:
        reasons.append(f"different problem selections ({_selection_text(a.selection)} vs "
                       f"{_selection_text(b.selection)})")  # fmt: skip
    return reasons


def _selection_text(sel: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sel.items()) or "all problems"


def fractions(task: TaskResult, suite: str) -> float:
    """A task's pass fraction in ``suite`` (samples that passed it and every suite before it, over n)."""
    return task.correct.get(suite, 0) / task.n if task.n else 0.0


def majority(task: TaskResult, suite: str) -> bool:
    """Whether more than half of the task's samples pass (the McNemar outcome; a tie is a fail)."""
    return 2 * task.correct.get(suite, 0) > task.n


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (exact integer arithmetic)."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def paired_bootstrap(diffs: np.ndarray, resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95,
                     seed: int = DEFAULT_SEED) -> tuple[float, float]:  # fmt: skip
    """Percentile interval of the mean of ``diffs`` (per-task B - A) over task resamples with replacement."""
    if not 0 < confidence < 1:
        raise HarnessError(f"confidence must be between 0 and 1, got {confidence}")
    if resamples < 1:
        raise HarnessError(f"resamples must be at least 1, got {resamples}")
    values = np.asarray(diffs, dtype=np.float64)
    t = len(values)
    if t == 0:
        raise HarnessError("no common tasks to resample")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    chunk = max(1, _CHUNK_CELLS // t)
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        idx = rng.integers(0, t, size=(m, t))
        means[start : start + m] = values[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


@dataclass
class SuiteComparison:
    """One suite of a comparison."""

    suite: str
    label: str
    tasks: int
    pass1_a: float
    pass1_b: float
    diff: float
    ci: tuple[float, float]
    confidence: float
    resamples: int
    seed: int
    pass_to_fail: list[str]
    fail_to_pass: list[str]
    p_value: float
    fraction_changes: list[tuple[str, float, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data (for ``--json`` and the report)."""
        return {"suite": self.suite, "label": self.label, "tasks": self.tasks, "pass@1_a": self.pass1_a,
                "pass@1_b": self.pass1_b, "difference": self.diff, "ci": list(self.ci),
                "confidence": self.confidence, "resamples": self.resamples, "seed": self.seed,
                "pass_to_fail": self.pass_to_fail, "fail_to_pass": self.fail_to_pass,
                "mcnemar_p": self.p_value,
                "fraction_changes": [{"task": t, "a": x, "b": y} for t, x, y in self.fraction_changes]}  # fmt: skip


@dataclass
class Comparison:
    """Run B against run A."""

    a: RunEntry
    b: RunEntry
    reasons: list[str]
    suites: dict[str, SuiteComparison]
    only_a: list[str]
    only_b: list[str]
    samples_a: tuple[int, int]
    samples_b: tuple[int, int]
    failures: FailureMovement | None = None

    @property
    def comparable(self) -> bool:
        """Same dataset and selection."""
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"a": _run_json(self.a), "b": _run_json(self.b), "comparable": self.comparable,
                "not_comparable_because": self.reasons, "tasks_only_in_a": self.only_a,
                "tasks_only_in_b": self.only_b, "samples_per_task_a": list(self.samples_a),
                "samples_per_task_b": list(self.samples_b),
                "suites": {k: v.to_json() for k, v in self.suites.items()},
                "failure_modes": self.failures.to_json() if self.failures else None}  # fmt: skip


#: Failure modes that a token limit causes.
TRUNCATION_MODES = ("truncated", "truncated_thinking")


@dataclass
class FailureMovement:
    """How the failure modes moved from run A to run B, over the samples of the tasks both graded."""

    a: dict[str, int]
    b: dict[str, int]
    #: ``[(mode, B - A)]``, biggest change first; ``pass`` left out.
    moved: list[tuple[str, int]]
    #: Generation settings that differ between the runs (``max_tokens``: [A, B]).
    settings: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """``"12 more truncated, 3 fewer wrong answers"``."""
        return movement_text(self.moved)

    @property
    def truncation(self) -> bool:
        """Truncation moved more samples than every other failure mode together."""
        trunc = sum(abs(d) for m, d in self.moved if m in TRUNCATION_MODES)
        other = sum(abs(d) for m, d in self.moved if m not in TRUNCATION_MODES)
        return trunc > 0 and trunc > other

    def cause(self) -> str | None:
        """One sentence naming a truncation change, with the token settings that differ; None otherwise."""
        if not self.truncation:
            return None
        what = [f"{k} {a} vs {b}" for k, (a, b) in self.settings.items() if k in ("max_tokens", "thinking_budget")]
        grew = sum(d for m, d in self.moved if m in TRUNCATION_MODES) > 0
        why = f" (generation settings differ: {', '.join(what)})" if what else ""
        return (f"the change is truncation: {'more' if grew else 'fewer'} samples of B were cut at the token "
                f"limit{why}, not a change in the model's answers")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """Plain data (``--json``)."""
        return {"a": self.a, "b": self.b, "change": dict(self.moved), "summary": self.text,
                "truncation": self.truncation, "cause": self.cause(), "settings_differ": self.settings}  # fmt: skip


def failure_movement(ra: RunRecord, rb: RunRecord, tasks: list[str]) -> FailureMovement:
    """Failure-mode counts of both runs over ``tasks`` and how they moved."""
    a, b = ra.count_failure_modes(tasks), rb.count_failure_modes(tasks)
    settings: dict[str, list[Any]] = {}
    if ra.generation is not None and rb.generation is not None:
        sa, sb = ra.generation.sampling, rb.generation.sampling
        for key in sorted(set(sa) | set(sb)):
            if key != "limit" and sa.get(key) != sb.get(key):
                settings[key] = [sa.get(key), sb.get(key)]
        for key in ("reasoning", "style", "extract"):
            va, vb = getattr(ra.generation, key, None), getattr(rb.generation, key, None)
            if va != vb:
                settings[key] = [va, vb]
    return FailureMovement(a=a, b=b, moved=describe_movement(a, b), settings=settings)


def _run_json(e: RunEntry) -> dict[str, Any]:
    return {"id": e.id, "model": e.model, "benchmark": e.benchmark, "dataset": e.dataset_label(),
            "created": e.created, "path": e.path}  # fmt: skip


def suite_label(entry: RunEntry, suite: str) -> str:
    """The suite's column title as the run's record gives it (``HumanEval`` for base, ``HumanEval+`` for plus)."""
    return entry.suite_titles().get(suite, suite)


def shared_suites(a: RunRecord, b: RunRecord) -> list[str]:
    """The suites both records graded, in A's grading order."""
    return [s for s in a.suites if s in b.suites]


def compare(
    a: RunEntry,
    b: RunEntry,
    *,
    allow_incomparable: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
    suites: list[str] | None = None,
) -> Comparison:
    """Compare run B with run A on their common tasks (raises ``NotComparable`` unless allowed)."""
    reasons = incomparable_reasons(a, b)
    if reasons and (not allow_incomparable or a.benchmark != b.benchmark):
        raise NotComparable(f"runs {a.id} and {b.id} are not comparable: {'; '.join(reasons)}")
    ra, rb = a.record(), b.record()
    common = sorted(set(ra.tasks) & set(rb.tasks), key=_task_order)
    if not common:
        raise HarnessError(f"runs {a.id} and {b.id} share no graded task")
    only_a = sorted(set(ra.tasks) - set(rb.tasks), key=_task_order)
    only_b = sorted(set(rb.tasks) - set(ra.tasks), key=_task_order)
    available = shared_suites(ra, rb)
    if not available:
        raise HarnessError(f"runs {a.id} and {b.id} share no graded suite ({', '.join(ra.suites)} vs "
                           f"{', '.join(rb.suites)})")  # fmt: skip
    wanted = list(dict.fromkeys(suites)) if suites else available
    missing = [s for s in wanted if s not in available]
    if missing:
        raise HarnessError(f"suite {', '.join(missing)} is not in both runs (available: {', '.join(available)})")
    out: dict[str, SuiteComparison] = {}
    for suite in wanted:
        fa = np.array([fractions(ra.tasks[t], suite) for t in common])
        fb = np.array([fractions(rb.tasks[t], suite) for t in common])
        ma = [majority(ra.tasks[t], suite) for t in common]
        mb = [majority(rb.tasks[t], suite) for t in common]
        p2f = [t for t, x, y in zip(common, ma, mb) if x and not y]
        f2p = [t for t, x, y in zip(common, ma, mb) if y and not x]
        changes = [(t, float(x), float(y)) for t, x, y in zip(common, fa, fb) if x != y]
        out[suite] = SuiteComparison(
            suite=suite, label=suite_label(a, suite), tasks=len(common), pass1_a=float(fa.mean()),
            pass1_b=float(fb.mean()), diff=float((fb - fa).mean()),
            ci=paired_bootstrap(fb - fa, resamples, confidence, seed), confidence=confidence, resamples=resamples,
            seed=seed, pass_to_fail=p2f, fail_to_pass=f2p, p_value=mcnemar_exact(len(p2f), len(f2p)),
            fraction_changes=changes,
        )  # fmt: skip
    return Comparison(a=a, b=b, reasons=reasons, suites=out, only_a=only_a, only_b=only_b,
                      samples_a=_n_range(ra), samples_b=_n_range(rb),
                      failures=failure_movement(ra, rb, common))  # fmt: skip


def _n_range(rec: RunRecord) -> tuple[int, int]:
    ns = [t.n for t in rec.tasks.values()] or [0]
    return min(ns), max(ns)


def _task_order(task_id: str) -> tuple[str, int, str]:
    """``HumanEval/2`` before ``HumanEval/10``: sort by prefix, then number."""
    head, _, tail = task_id.rpartition("/")
    return (head, int(tail), "") if tail.isdigit() else (task_id, -1, task_id)


def _pts(x: float) -> str:
    return f"{x * 100:+.1f}"


def format_comparison(c: Comparison, max_list: int | None = None) -> str:
    """The comparison as text."""
    lines = [f"A: {c.a.id}  {c.a.model}  {c.a.benchmark}  {c.a.dataset_label()}  {c.a.created}",
             f"B: {c.b.id}  {c.b.model}  {c.b.benchmark}  {c.b.dataset_label()}  {c.b.created}"]  # fmt: skip
    if c.reasons:
        lines.append("NOT COMPARABLE: " + "; ".join(c.reasons) + " (compared anyway, as asked)")
    if c.only_a or c.only_b:
        lines.append(f"compared on the {_common(c)} tasks both "
                     f"graded; {len(c.only_a)} only in A, {len(c.only_b)} only in B")  # fmt: skip
    na, nb = c.samples_a, c.samples_b
    multi = max(na[1], nb[1]) > 1
    lines.append(f"samples per task: A {_range_text(na)}, B {_range_text(nb)}"
                 + ("; McNemar and flips use each task's majority outcome" if multi else ""))  # fmt: skip
    for s in c.suites.values():
        lo, hi = s.ci
        lines += [
            "",
            f"{s.label} ({s.suite} tests), {s.tasks} tasks:",
            f"  pass@1  A {s.pass1_a * 100:.1f}%  B {s.pass1_b * 100:.1f}%  difference B-A {_pts(s.diff)} points, "
            f"{s.confidence:.0%} CI [{_pts(lo)}, {_pts(hi)}] (paired bootstrap over tasks, {s.resamples} resamples, "
            f"seed {s.seed})",
            f"  McNemar exact: {len(s.pass_to_fail)} pass->fail, {len(s.fail_to_pass)} fail->pass, "
            f"p = {s.p_value:.4g}",
            f"  pass->fail ({len(s.pass_to_fail)}): {_list(s.pass_to_fail, max_list)}",
            f"  fail->pass ({len(s.fail_to_pass)}): {_list(s.fail_to_pass, max_list)}",
        ]  # fmt: skip
        if multi:
            lines.append(f"  tasks whose pass fraction changed: {len(s.fraction_changes)}")
    if c.failures is not None:
        f = c.failures
        lines += ["", f"failure modes over the common tasks' samples (B - A): {f.text}",
                  f"  A: {_counts(f.a)}", f"  B: {_counts(f.b)}"]  # fmt: skip
        cause = f.cause()
        if cause:
            lines.append(f"  {cause}")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _common(c: Comparison) -> int:
    return next(iter(c.suites.values())).tasks


def _range_text(r: tuple[int, int]) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"


def _list(items: list[str], max_list: int | None) -> str:
    if not items:
        return "-"
    if max_list is not None and len(items) > max_list:
        return ", ".join(items[:max_list]) + f", ... ({len(items) - max_list} more)"
    return ", ".join(items)


@dataclass
class GateResult:
    """The gate's decision and the numbers behind it."""

    regression: bool
    reasons: list[str]
    suite: SuiteComparison
    comparison: Comparison
    max_drop: float
    alpha: float

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"regression": self.regression, "why": self.reasons, "max_drop": self.max_drop, "alpha": self.alpha,
                "suite": self.suite.to_json(), "baseline": _run_json(self.comparison.a),
                "candidate": _run_json(self.comparison.b)}  # fmt: skip


def gate(
    baseline: RunEntry,
    candidate: RunEntry,
    max_drop: float = 0.01,
    alpha: float = 0.05,
    suite: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    allow_missing: bool = False,
) -> GateResult:
    """Decide whether ``candidate`` regressed from ``baseline`` (see the module docstring for the rule).

    ``suite`` defaults to the last suite both runs graded (it counts the samples that passed every suite:
    the strictest tests, EvalPlus's plus). The interval is the (1 - alpha) paired bootstrap interval, so both
    rules work at the same level. A candidate that lacks baseline tasks is refused (``MissingTasks``): a
    partial run would be gated on a few tasks and pass; ``allow_missing`` gates on the common tasks instead.
    """
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha must be between 0 and 1, got {alpha}")
    if max_drop < 0:
        raise HarnessError(f"--max-drop must be at least 0, got {max_drop}")
    ra, rb = baseline.record(), candidate.record()
    available = shared_suites(ra, rb)
    chosen = suite or (available[-1] if available else ra.suites[-1])
    comp = compare(baseline, candidate, resamples=resamples, confidence=1 - alpha, seed=seed, suites=[chosen])
    if comp.only_a and not allow_missing:
        common = len(set(ra.tasks) & set(rb.tasks))
        raise MissingTasks(
            f"candidate {candidate.id} lacks {len(comp.only_a)} of the baseline's {len(ra.tasks)} tasks (it graded "
            f"{common} of them): rerun the candidate on every task (harness eval without --limit, or harness "
            f"evaluate on samples for all tasks), or pass --allow-missing to gate on the {common} common tasks"
        )
    s = comp.suites[chosen]
    drop = -s.diff
    lo, hi = s.ci
    rule_sig = drop > max_drop and s.p_value < alpha
    rule_ci = hi < -max_drop
    why = [f"{s.label}: baseline {s.pass1_a * 100:.2f}%, candidate {s.pass1_b * 100:.2f}% over {s.tasks} tasks; "
           f"change {_pts(s.diff)} points, {1 - alpha:.0%} CI [{_pts(lo)}, {_pts(hi)}]; "
           f"{len(s.pass_to_fail)} pass->fail, {len(s.fail_to_pass)} fail->pass, "
           f"McNemar p = {s.p_value:.4g}"]  # fmt: skip
    limit = f"{max_drop * 100:.2f} points"
    if rule_sig:
        why.append(f"REGRESSION: the drop of {drop * 100:.2f} points exceeds --max-drop ({limit}) and is significant "
                   f"(p = {s.p_value:.4g} < alpha {alpha})")  # fmt: skip
    if rule_ci:
        why.append(f"REGRESSION: the whole {1 - alpha:.0%} interval lies below -{limit}")
    if not (rule_sig or rule_ci):
        if drop > max_drop:
            why.append(f"ok: the drop of {drop * 100:.2f} points exceeds --max-drop ({limit}) but is not significant "
                       f"(p = {s.p_value:.4g} >= alpha {alpha}) and the interval reaches above -{limit}")  # fmt: skip
        else:
            why.append(f"ok: no drop beyond --max-drop ({limit})")
    if comp.only_a or comp.only_b:
        why.append(f"note: {len(comp.only_a)} baseline-only and {len(comp.only_b)} candidate-only tasks were left out")
    return GateResult(regression=rule_sig or rule_ci, reasons=why, suite=s, comparison=comp, max_drop=max_drop,
                      alpha=alpha)  # fmt: skip
