"""EvalPlus's reliability guard, as a sandbox prelude.

:data:`EVALPLUS_GUARD_PRELUDE` is trusted Python source for
``CallJob(prelude=...)`` / ``ScriptJob(prelude=...)``: the sandbox runs it
in the program's process (in a namespace of its own) after the resource
limits and the uid drop, immediately before the program.  It disables what
EvalPlus's ``reliability_guard`` disables.

It is not a security measure (the sandbox is one): it keeps verdicts
identical to EvalPlus's for programs that, say, open files, call
``os.getcwd`` or ``exit()``.
"""

from __future__ import annotations

from benchmarks.guards import reliability_guard

EVALPLUS_GUARD_PRELUDE = reliability_guard()
