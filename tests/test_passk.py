"""pass@k: the unbiased estimator against its combinatorial definition."""

from __future__ import annotations

from math import comb

import pytest

from harness.passk import mean_pass_at_k, pass_at_k


@pytest.mark.parametrize(
    ("n", "c", "k"), [(10, 0, 1), (10, 3, 1), (10, 3, 5), (200, 17, 10), (200, 17, 100), (5, 5, 5)]
)
def test_matches_definition(n: int, c: int, k: int) -> None:
    expected = 1 - comb(n - c, k) / comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_pass_at_1_is_fraction_correct() -> None:
    assert pass_at_k(20, 7, 1) == pytest.approx(7 / 20)


def test_mean_only_reports_k_that_every_task_allows() -> None:
    result = mean_pass_at_k([(1, 1), (1, 0)])
    assert result == {"pass@1": 0.5}
    assert set(mean_pass_at_k([(10, 1), (12, 3)])) == {"pass@1", "pass@10"}


def test_k_larger_than_n_is_an_error() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)
