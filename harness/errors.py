"""User-facing errors: one line that says what is wrong and how to fix it.

One small hierarchy: everything the harness reports without a traceback is a
:class:`HarnessError`; the subclasses say which part failed, so callers that
care (the CLI's exit codes, a retry loop) can tell them apart.
"""


#: The exit codes of every command (README "Exit codes").
EXIT_OK = 0
EXIT_REGRESSION = 1  # harness gate only: a significant regression
EXIT_USAGE = 2  # bad flags, input, data or environment: the message says what to fix
EXIT_INTERNAL = 3  # a bug or an unexpected failure: rerun with --debug and report it
EXIT_INCOMPLETE = 4  # harness gate only: the candidate lacks tasks the baseline graded
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """An error caused by input or environment, reported without a traceback."""

    exit_code: int = EXIT_USAGE


class ConfigError(HarnessError):
    """A flag, option, config file or environment variable is wrong."""


class DataError(HarnessError):
    """A dataset, samples file or run record is missing or malformed."""


class SandboxError(HarnessError):
    """The sandbox itself could not work (not a verdict on a program)."""


class EngineError(HarnessError):
    """A model backend failed (load error, crashed server, engine died)."""
