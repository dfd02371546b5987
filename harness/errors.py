"""User-facing errors: one line that says what is wrong and how to fix it.

One small hierarchy: everything the harness reports without a traceback is a
:class:`HarnessError`; the subclasses say which part failed, so callers that
care (the CLI's exit codes, a retry loop) can tell them apart.
"""


class HarnessError(Exception):
    """An error caused by input or environment, reported without a traceback."""


class ConfigError(HarnessError):
    """A flag, option, config file or environment variable is wrong."""


class DataError(HarnessError):
    """A dataset, samples file or run record is missing or malformed."""


class SandboxError(HarnessError):
    """The sandbox itself could not work (not a verdict on a program)."""


class EngineError(HarnessError):
    """A model backend failed (load error, crashed server, engine died)."""
