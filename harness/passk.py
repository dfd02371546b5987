"""pass@k with the unbiased estimator of Chen et al. (2021), "Evaluating Large Language Models Trained on Code"."""

from __future__ import annotations

from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn from ``n`` (``c`` correct) passes.

    Computed as ``1 - C(n-c, k) / C(n, k)`` in the numerically stable product form.
    """
    if k <= 0 or n <= 0 or k > n:
        raise ValueError(f"pass@{k} needs 0 < k <= n (n={n})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: Sequence[tuple[int, int]], ks: Sequence[int] = (1, 10, 100)) -> dict[str, float]:
    """Mean pass@k over tasks given ``(n, c)`` per task, for each ``k`` every task's ``n`` allows."""
    if not counts:
        return {}
    min_n = min(n for n, _ in counts)
    return {f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in counts) / len(counts) for k in ks if k <= min_n}
