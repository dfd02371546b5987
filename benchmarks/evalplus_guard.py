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

EVALPLUS_GUARD_PRELUDE = """\
import builtins
import faulthandler
import os
import shutil
import subprocess
import sys

faulthandler.disable()
os.environ["OMP_NUM_THREADS"] = "1"
builtins.exit = None
builtins.quit = None
builtins.help = None
builtins.open = None
for name in (
    "kill system putenv remove removedirs rmdir fchdir setuid fork forkpty killpg rename "
    "renames truncate replace unlink fchmod fchown chmod chown chroot lchflags lchmod "
    "lchown getcwd chdir"
).split():
    setattr(os, name, None)
shutil.rmtree = None
shutil.move = None
shutil.chown = None
subprocess.Popen = None
for mod in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
    sys.modules[mod] = None
"""
