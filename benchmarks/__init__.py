"""Benchmark modules; importing this package registers them with the harness."""

from benchmarks import evalplus  # noqa: F401  (registers humaneval, mbpp)
