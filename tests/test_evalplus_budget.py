"""EvalPlus's whole-suite budget, and where this harness differs from it (README, "Differences").

EvalPlus stops a suite after ``min(60 s, sum of the per-input limits) + 1 s`` of wall-clock time.  The
per-input limits follow the ground truth measured on the grading machine; the 60 s cap does not, so on a
machine slow enough that the ground truth alone needs most of 60 s (Mbpp/599's: 56-60 CPU s on a slow
day of this VM) a sample as fast as the ground truth times out.  Here the cap is never below
``time_limit_factor`` times the suite's ground-truth time.
"""

from __future__ import annotations

import pytest

from benchmarks.evalplus import EvalPlusOptions, suite_budget

OPTIONS = EvalPlusOptions()


def test_the_sum_of_the_limits_bounds_a_small_suite() -> None:
    # 3 cheap inputs: 1 s floors each, under the cap; +2 s as before (EvalPlus's +1 s, and the harness's
    # extra second for the module's own load, README).
    assert suite_budget([1.0, 1.0, 1.0], [0.001] * 3, OPTIONS) == 5.0
    assert suite_budget([1.0, 1.0, 1.0], [0.001] * 3, OPTIONS, details=True) == 6.0


def test_the_60_s_cap_binds_a_suite_of_many_cheap_inputs() -> None:
    # 100 inputs of 1 ms: 100 s of 1 s floors, 0.4 s of ground truth x 4: EvalPlus's 60 s cap decides.
    assert suite_budget([1.0] * 100, [0.001] * 100, OPTIONS) == 62.0


def test_the_cap_never_falls_below_the_factor_times_the_ground_truth() -> None:
    # Mbpp/599 on a slow machine: 88 inputs whose ground truth takes 56 CPU s in all.
    truth = [56.0 / 88] * 88
    limits = [max(1.0, 4 * t) for t in truth]
    assert suite_budget(limits, truth, OPTIONS) == pytest.approx(4 * 56.0 + 2.0)
    # A user's own factor counts the same way.
    assert suite_budget([max(1.0, 2 * t) for t in truth], truth, EvalPlusOptions(time_limit_factor=2.0)) == (
        pytest.approx(2 * 56.0 + 2.0)
    )


def test_the_cap_is_an_option() -> None:
    # EvalPlus reads its cap from EVALPLUS_TIMEOUT_PER_TASK; here it is the benchmark option suite_cap.
    assert suite_budget([1.0] * 100, [0.001] * 100, EvalPlusOptions(suite_cap=30.0)) == 32.0
