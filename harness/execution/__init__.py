"""Sandboxed execution of untrusted programs (see :mod:`harness.execution.sandbox`)."""

from harness.execution.sandbox import (
    CallJob,
    CallResult,
    CommandJob,
    CommandResult,
    Job,
    Result,
    Sandbox,
    SandboxError,
    SandboxSettings,
    ScriptJob,
    ScriptResult,
    Step,
    StepResult,
    encode_inputs,
    isolation_mode,
)

__all__ = [
    "CallJob",
    "CallResult",
    "CommandJob",
    "CommandResult",
    "Job",
    "Result",
    "Sandbox",
    "SandboxError",
    "SandboxSettings",
    "ScriptJob",
    "ScriptResult",
    "Step",
    "StepResult",
    "encode_inputs",
    "isolation_mode",
]
