"""User-facing errors: one line that says what is wrong and how to fix it."""


class HarnessError(Exception):
    """An error caused by input or environment, reported without a traceback."""
