"""Sandboxed execution of untrusted programs (see :mod:`harness.execution.sandbox`)."""

from harness.execution.sandbox import (
    CallJob,
    CallResult,
    Sandbox,
    SandboxError,
    SandboxSettings,
    ScriptJob,
    ScriptResult,
    encode_inputs,
    isolation_mode,
)

__all__ = [
    "CallJob",
    "CallResult",
    "Sandbox",
    "SandboxError",
    "SandboxSettings",
    "ScriptJob",
    "ScriptResult",
    "encode_inputs",
    "isolation_mode",
]
