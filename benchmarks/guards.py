"""The official graders' ``reliability_guard``, as trusted source the sandbox runs before a program.

EvalPlus, LiveCodeBench and CRUXEval each run a program after a
``reliability_guard`` that sets the same ``os``, ``shutil`` and
``subprocess`` functions to None and hides the same modules; they differ
in the builtins they remove (EvalPlus: ``exit``, ``quit``, ``help`` and
``open``; CRUXEval and LiveCodeBench's code execution: all but ``open``;
LiveCodeBench's code generation keeps ``exit`` and ``open``). One builder,
:func:`reliability_guard`, gives each its variant, so a program that calls
these fails here as it fails there.

It is not a security measure (the sandbox is one): it keeps verdicts
identical to the official tools' for programs that, say, open files, call
``os.getcwd`` or ``exit()``.
"""

from __future__ import annotations

from collections.abc import Sequence

#: ``os`` functions every guard sets to None.
OS_FUNCTIONS = (
    "kill system putenv remove removedirs rmdir fchdir setuid fork forkpty killpg rename renames truncate replace "
    "unlink fchmod fchown chmod chown chroot lchflags lchmod lchown getcwd chdir"
).split()
#: Modules every guard hides (``sys.modules[name] = None``: importing them fails).
HIDDEN_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter")
#: EvalPlus's removed builtins; CRUXEval and LiveCodeBench's code execution leave ``open``.
EVALPLUS_BUILTINS = ("exit", "quit", "help", "open")


def reliability_guard(builtins: Sequence[str] = EVALPLUS_BUILTINS, indent: str = "") -> str:
    """Python statements that disable what the official ``reliability_guard`` disables.

    ``builtins``: the builtins set to None (the graders differ only there). ``indent``: put before each line,
    for a guard that runs as a function's body. Imports are local to where the statements run.
    """
    lines = [
        "import builtins",
        "import faulthandler",
        "import os",
        "import shutil",
        "import subprocess",
        "import sys",
        "",
        "faulthandler.disable()",
        'os.environ["OMP_NUM_THREADS"] = "1"  # before putenv goes',
        *(f"builtins.{name} = None" for name in builtins),
        f"for name in {' '.join(OS_FUNCTIONS)!r}.split():",
        "    setattr(os, name, None)",
        "shutil.rmtree = shutil.move = shutil.chown = None",
        "subprocess.Popen = None",
        f"for name in {HIDDEN_MODULES!r}:",
        "    sys.modules[name] = None",
    ]
    return "".join(f"{indent}{line}\n" if line else "\n" for line in lines)
