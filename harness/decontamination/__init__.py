"""Decontamination: prove a training set does not contain the benchmarks it will be scored on.

A library first (``audit``), the ``harness decontam`` command second, and a
stage of the data pipeline.  Methods: exact substrings (whitespace-insensitive,
BigCode's check), n-gram overlap (GPT-3 / lm-evaluation-harness), 50-character
probes (GPT-4), MinHash near-duplicates (datasketch), and optionally
embedding neighbours judged by a model (LLM Decontaminator).
"""

from harness.decontamination.audit import (
    DEFAULT_METHODS,
    METHODS,
    AuditOptions,
    Flag,
    audit,
    write_clean,
    write_report,
)
from harness.decontamination.index import IndexParams

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "AuditOptions",
    "Flag",
    "IndexParams",
    "audit",
    "write_clean",
    "write_report",
]
