"""Benchmark modules; importing this package registers them with the harness."""

from benchmarks import (  # noqa: F401  (importing registers them)
    ds1000,  # ds1000
    evalplus,  # humaneval, mbpp
    livecodebench,  # livecodebench
)
