"""Benchmark modules, one per benchmark (or family), each found through its ``harness.benchmarks`` entry point."""
