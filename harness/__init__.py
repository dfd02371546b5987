"""The reference harness for code language models: evaluate, generate, train, audit, report."""

__version__ = "0.1.0"
