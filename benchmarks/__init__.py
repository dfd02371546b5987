"""Benchmark modules; importing this package registers them with the harness."""

from benchmarks import ds1000  # noqa: F401, I001  (one line per benchmark: parallel edits merge cleanly)
from benchmarks import evalplus  # noqa: F401  (registers humaneval, mbpp)
from benchmarks import livecodebench  # noqa: F401
