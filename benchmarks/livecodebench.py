"""LiveCodeBench code generation, graded with LiveCodeBench's own rules.

Data: the release files of ``livecodebench/code_generation_lite``
(``test.jsonl``, ``test2.jsonl`` ... ``test6.jsonl``; ``release_vN`` is the
first N files, ``vN`` the N-th alone, ``vA_vB`` files A..B), downloaded
through :mod:`harness.data`, or any local JSONL file with that schema under
``<data_dir>/livecodebench/``.  A dataset file is untrusted input: private
tests stored as base64(zlib(pickle(json))) are unpickled by an unpickler that
refuses every global and must yield a plain string.

Grading (``lcb_runner/evaluation/testing_util.py`` of LiveCodeBench): every
problem's tests are its public then its private tests, run in order until the
first failure, 6 s each (here CPU seconds, measured by the sandbox).

* Functional (LeetCode) problems, where ``metadata`` names ``func_name``: each
  test input holds one JSON value per line, the arguments.  The program runs
  after LiveCodeBench's import header; when its text contains
  ``class Solution`` one ``Solution()`` is made and its method called,
  otherwise the module-level function of that name.  A returned tuple becomes
  a list (only at the top level) and must ``==`` the JSON-decoded expected
  value.
* Stdin/stdout problems, ``--lcb-stdio lcb`` (the default): LiveCodeBench's
  ``grade_stdio``.  The program is rewritten as LiveCodeBench rewrites it (a
  trailing ``if __name__ == '__main__':`` unwrapped, top-level imports kept
  at module level after the import header, every other statement the body
  of ``wrapped_function()`` in a module named ``tmp_sol``; a program whose
  text mentions ``class Solution`` fails, as LiveCodeBench takes it for a
  LeetCode class), then ``wrapped_function()`` runs once per test in the
  grader's process, with stdout captured until it returns; ``SystemExit``
  (any code) ends the test normally, and what a thread prints after the
  function returned is lost.  Deliberate difference: the test input is a
  real file on fd 0 and ``sys.stdin``/``sys.stdout`` are real text files
  over fds 0 and 1, so ``sys.stdin.buffer``, ``open(0)``, ``os.read(0, n)``,
  ``for line in sys.stdin``, ``readline()`` then ``read()``,
  ``sys.stdout.buffer.write`` and ``os.write(1, ...)`` behave as on a judge
  (LiveCodeBench's mock stdin and its StringIO stdout break several of them: see
  ``docs/benchmarks/livecodebench.md``).
* Stdin/stdout problems, ``--lcb-stdio process``: a judge's semantics.  Each
  test runs in a fresh process (a fork of the sandbox's warm runner) with
  the input on fd 0; the import header and the program run as ``__main__``;
  the interpreter's shutdown is replayed (non-daemon threads joined, atexit
  handlers, streams flushed) and stdout is read from fd 1 after the process
  exited.  A non-zero exit status or a signal is a runtime error; the
  process's CPU time (threads and children included) is limited.
* Functional problems run as above in both modes.  Stdin outputs compare as
  LiveCodeBench compares them: both are stripped and split on ``"\\n"``,
  each line stripped; line counts must match and each line must be equal, or
  its whitespace-separated tokens must all parse as ``Decimal`` and be equal
  as numbers (``"1.0"`` equals ``"1.00000"``, ``"0.1"`` does not equal
  ``"0.10000001"``: there is no tolerance).
* A test input larger than the sandbox's file-size limit (64 MiB by default)
  cannot be put on fd 0 and is given through ``sys.stdin`` only.

Comparisons run in the harness on decoded plain data, never inside the
program's process (see :mod:`harness.execution.codec`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import pickle
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from benchmarks.guards import reliability_guard
from harness import data
from harness.benchmark import (
    Benchmark,
    BenchmarkOptions,
    DatasetInfo,
    FailureDetails,
    GradeContext,
    GradeOptions,
    PartVerdict,
    Problem,
    Prompt,
    Verdict,
    instruct_code,
    shown_text,
    shown_value,
)
from harness.errors import HarnessError
from harness.execution import CallJob, CallResult, codec, encode_inputs
from harness.samples import BadLine, Sample, extract_code, program_for

_HF_BASE = "https://huggingface.co/datasets/livecodebench/code_generation_lite/resolve/main"
_SUBDIR = "livecodebench"
_VERSIONS = 6
PLATFORMS = ("leetcode", "codeforces", "atcoder")
DIFFICULTIES = ("easy", "medium", "hard")

#: Seconds of CPU per test (LiveCodeBench's ``--timeout`` default).
DEFAULT_TIME_LIMIT = 6.0
#: Decompressed size above which a private-test field is refused (a zlib bomb would otherwise exhaust memory).
MAX_PRIVATE_BYTES = 2 << 30
#: Tasks whose tests are held decoded at once while grading (the rest wait; full releases hold gigabytes).
_TASK_WINDOW = 32

NOTE_NO_PRIVATE = (
    "private tests absent: graded on public tests only; scores are not comparable to the official leaderboard"
)

# LiveCodeBench's prompt texts (lcb_runner/prompts/code_generation.py, PromptConstants at main, 28fef95).
SYSTEM_MESSAGE = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will "
    "generate a correct Python program that matches the specification and passes all tests."
)
FORMAT_WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your code "
    "within delimiters."
)
FORMAT_WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
    "sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, "
    "it reads the inputs, runs the algorithm and writes output to STDOUT."
)
#: LiveCodeBench's runner stops generation at this (its ``--stop`` default).
BASE_STOP = ("###",)

# LiveCodeBench runs every program after this header (star imports, then the
# modules themselves, then a deep recursion limit), so a solution may use
# ``List``, ``defaultdict`` or ``gcd`` without importing them.
_STAR_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                 "statistics", "itertools", "functools", "operator", "io", "sys", "json", "builtins", "typing")  # fmt: skip
_PLAIN_MODULES = _STAR_MODULES[:-2]  # all but builtins and typing
IMPORT_HEADER = (
    "".join(f"from {m} import *\n" for m in _STAR_MODULES)
    + "".join(f"import {m}\n" for m in _PLAIN_MODULES)
    + "sys.setrecursionlimit(50000)\n"
)

# Trusted code around the program, run in the sandbox.  The guard disables
# what LiveCodeBench's reliability_guard disables (EvalPlus's list, but
# ``exit`` and ``open`` stay: LiveCodeBench leaves them, and a stdin program
# may end with ``exit()``); it keeps verdicts alike, the sandbox is the
# security boundary.
_GUARD_DEF = (
    "import builtins as __lcb_builtins\nimport sys as __lcb_sys\n\n\ndef __lcb_guard():\n"
    + reliability_guard(builtins=("quit", "help"), indent="    ")
    + "\n\n"
)
_PRELUDE = _GUARD_DEF + "\n\n__lcb_guard()\ndel __lcb_guard\n"

# The call target of a functional problem, as LiveCodeBench finds it: one
# ``Solution()`` when the program's text mentions ``class Solution``, else the
# module-level function.  Resolved while the module loads, so a missing class
# or method fails the program once, with a reason that names it.
_RESOLVE = '''

def __lcb_resolve(namespace, name, uses_class):
    if uses_class:
        cls = namespace.get("Solution")
        if cls is None:
            raise NameError("the program mentions class Solution but defines none")
        method = getattr(cls(), name, None)
        if method is None:
            raise AttributeError("class Solution has no method %r (the problem calls Solution().%s)" % (name, name))
        return method
    function = namespace.get(name)
    if function is None:
        raise NameError("the program defines neither class Solution nor a function %r" % (name,))
    return function
'''

# Shared by both stdin modes (trusted code, run in the sandbox): a test's
# input as a file on fd 0 and a real standard input over it.  A memfd holds
# the input (seekable, like a judge's input file); one larger than the
# sandbox's file-size limit cannot be written there and is given through
# ``sys.stdin`` alone (fd 0 then reads nothing).
_STDIO_COMMON = '''

import io as __lcb_io
import os as __lcb_os


def __lcb_input_fd(data, _os=__lcb_os):
    """A memfd holding ``data`` at offset 0, or None when it cannot hold it."""
    try:
        fd = _os.memfd_create("stdin", _os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return None
    try:
        view = memoryview(data)
        while len(view):
            view = view[_os.write(fd, view):]
        _os.lseek(fd, 0, 0)
    except OSError:  # over RLIMIT_FSIZE
        _os.close(fd)
        return None
    return fd


def __lcb_real_stdin(data, backed, _io=__lcb_io):
    """sys.stdin as Python makes it for a file: UTF-8, lines split at \\\\n, a .buffer and a fileno."""
    raw = _io.BufferedReader(_io.FileIO(0, "rb", closefd=False)) if backed else _io.BytesIO(data)
    return _io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="\\n")


def __lcb_read_fd(fd, _os=__lcb_os):
    size = _os.fstat(fd).st_size
    return _os.pread(fd, size, 0) if size else b""
'''

# --lcb-stdio lcb: LiveCodeBench's grader (grade_stdio of testing_util.py),
# in the program's own process (the runner), one test after another.  The
# program is rewritten as LiveCodeBench rewrites it: a trailing ``if __name__
# == '__main__':`` is unwrapped, top-level imports stay at module level after
# the import header, everything else becomes the body of
# ``wrapped_function()`` in a module named ``tmp_sol``; a text that mentions
# ``class Solution`` is taken for a LeetCode class and fails, as there.  Per
# test, ``wrapped_function()`` runs with stdout captured until it returns
# (``SystemExit`` ends it normally); output a thread prints later is lost.
# Unlike LiveCodeBench's mock stdin, fd 0 holds the test input and
# sys.stdin/sys.stdout are real text files over fds 0 and 1 (a memfd each),
# so every reading and writing idiom behaves as on a judge.
_STDIN_LCB = '''

import ast as __lcb_ast


def __lcb_wrapped(source, header):
    """LiveCodeBench's clean_if_name then make_function, on the program's text."""
    ast = __lcb_ast
    try:
        tree = ast.parse(source)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            source = ast.unparse(tree.body[:-1]) + "\\n" + ast.unparse(last.body)
    except Exception:
        pass
    try:
        tree = ast.parse(source)
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        rest = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        fields = {"name": "wrapped_function", "body": rest, "decorator_list": [], "lineno": -1,
                  "args": ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])}
        if "type_params" in ast.FunctionDef._fields:
            fields["type_params"] = []
        return header + "\\n" + ast.unparse(imports) + "\\n" + ast.unparse(ast.FunctionDef(**fields))
    except Exception as exc:
        # LiveCodeBench then runs the program as it is and finds no wrapped_function: the program fails.
        raise RuntimeError("LiveCodeBench's grader cannot wrap the program: %s: %s" % (type(exc).__name__, exc))


__lcb_text = __lcb_wrapped(__lcb_source, __lcb_header_text)
if "class Solution" in __lcb_text:
    # LiveCodeBench: compile_code takes any program mentioning class Solution for a LeetCode class.
    raise AttributeError("module 'tmp_sol' has no attribute 'Solution' (LiveCodeBench's grader instantiates "
                         "Solution when the program's text mentions class Solution, also for stdin problems)")
__lcb_module = compile(__lcb_text, "<solution>", "exec")
del __lcb_text, __lcb_source
__lcb_fds = []


def __lcb_stdin(text, _os=__lcb_os, _io=__lcb_io, _sys=__lcb_sys, _builtins=__lcb_builtins):
    """Run the program on one test; returns what it wrote to stdout until wrapped_function returned."""
    if not __lcb_fds:
        __lcb_fds.extend((_os.dup(0), _os.dup(1)))  # the runner's own stdin and stdout, restored after each test
    data = text.encode("utf-8", "surrogatepass")
    in_fd = __lcb_input_fd(data)
    out_fd = _os.memfd_create("stdout", _os.MFD_CLOEXEC)
    try:
        if in_fd is not None:
            _os.dup2(in_fd, 0)
            _os.close(in_fd)
        _os.dup2(out_fd, 1)
        stdin = __lcb_real_stdin(data, in_fd is not None)
        stdout = _io.TextIOWrapper(_io.BufferedWriter(_io.FileIO(1, "wb", closefd=False)), encoding="utf-8",
                                   newline="\\n", write_through=True)
        saved = _sys.stdin, _sys.stdout
        _sys.stdin, _sys.stdout = stdin, stdout
        try:
            namespace = {"__name__": "tmp_sol", "__builtins__": _builtins}
            exec(__lcb_module, namespace)
            namespace["wrapped_function"]()
        except SystemExit:  # exit() ends the test, its output counts
            pass
        finally:
            current = _sys.stdout
            _sys.stdin, _sys.stdout = saved
            if current is not stdout:
                del current  # a stdout the program installed flushes into fd 1 as it goes
        stdout.flush()
        return __lcb_read_fd(out_fd).decode("utf-8", "replace")
    finally:
        _os.dup2(__lcb_fds[0], 0)
        _os.dup2(__lcb_fds[1], 1)
        _os.close(out_fd)
'''

# --lcb-stdio process: a judge's process per test.  The runner forks a
# child per test (a fresh process of the warm interpreter, faster than
# starting one); the child gets the test input on fd 0 and memfds on fds 1
# and 2, applies the guard, and runs the import header and the program as
# ``__main__``; at its end the interpreter's shutdown is replayed (non-daemon
# threads joined, atexit handlers, stdout and stderr flushed, the program's
# globals released so files they hold flush) and the child exits with the
# program's exit status.  Its stdout is read after it exited, threads
# included.  A non-zero status or a signal is a runtime error (as on a
# judge); CPU time over the limit (the child's own and its children's) is a
# timeout.  The runner's own CPU stays near zero: the child's CPU is watched
# here and, from outside, by the sandbox worker, which counts a program's
# child processes.
_STDIN_PROCESS = '''

import select as __lcb_select
import signal as __lcb_signal
import time as __lcb_time

__lcb_fork = __lcb_os.fork


class LCBTimeLimitExceeded(Exception):
    """The test's process used more CPU than the limit."""


class LCBRuntimeError(Exception):
    """The test's process ended with a non-zero status or a signal."""


def __lcb_exit_status(exc, _sys=__lcb_sys):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=_sys.stderr)
    except Exception:
        pass
    return 1


def __lcb_child(data, in_fd, out_fd, err_fd, _os=__lcb_os, _io=__lcb_io, _sys=__lcb_sys):
    status = 1
    try:
        import atexit
        import resource
        import threading
        import traceback
        import types

        _os.setpgid(0, 0)  # its own group: a timeout kills what it started too
        if in_fd is not None:
            _os.dup2(in_fd, 0)
        else:
            null = _os.open(_os.devnull, _os.O_RDONLY)
            _os.dup2(null, 0)
        _os.dup2(out_fd, 1)
        _os.dup2(err_fd, 2)
        _os.closerange(3, 65536)  # nothing of the runner's (its pipe to the worker) stays open
        soft = int(__lcb_limit) + 2
        try:  # a backstop: the runner watches the CPU more finely
            resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))
        except (ValueError, OSError):
            pass
        __lcb_signal.signal(__lcb_signal.SIGPIPE, __lcb_signal.SIG_IGN)  # as Python sets it up
        __lcb_signal.signal(__lcb_signal.SIGINT, __lcb_signal.default_int_handler)
        stdin = __lcb_real_stdin(data, in_fd is not None)
        stdout = _io.TextIOWrapper(_io.BufferedWriter(_io.FileIO(1, "wb", closefd=False)), encoding="utf-8",
                                   newline="\\n")
        stderr = _io.TextIOWrapper(_io.BufferedWriter(_io.FileIO(2, "wb", closefd=False)), encoding="utf-8",
                                   errors="backslashreplace", newline="\\n", line_buffering=True)
        _sys.stdin = _sys.__stdin__ = stdin
        _sys.stdout = _sys.__stdout__ = stdout
        _sys.stderr = _sys.__stderr__ = stderr
        _sys.argv = ["main.py"]
        atexit._clear()
        __lcb_guard()
        module = types.ModuleType("__main__")
        module.__dict__["__builtins__"] = __lcb_builtins
        _sys.modules["__main__"] = module
        status = 0
        try:
            exec(__lcb_header, module.__dict__)
            exec(__lcb_code, module.__dict__)
        except SystemExit as exc:
            status = __lcb_exit_status(exc)
        except BaseException:
            status = 1
            traceback.print_exc()
        # The interpreter's shutdown: wait for non-daemon threads, run atexit handlers, flush the
        # standard streams, release the program's objects (files it left open flush as they close).
        try:
            threading._shutdown()
        except BaseException:
            traceback.print_exc()
        atexit._run_exitfuncs()
        for stream in (_sys.stdout, _sys.stderr):
            try:
                stream.flush()
            except Exception:
                if stream is _sys.stdout:
                    status = status or 120  # Python's status when stdout cannot be flushed at exit
        module.__dict__.clear()  # what only the program's globals hold is released now (files flush)
        _sys.stdout = _sys.stderr = None
        for stream in (stdout, stderr):
            try:
                stream.flush()
            except Exception:
                pass
    except BaseException:
        pass
    finally:
        _os._exit(status)


def __lcb_signal_name(sig, _signal=__lcb_signal):
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return "signal %d" % sig


def __lcb_wait(pid, _os=__lcb_os, _time=__lcb_time, _select=__lcb_select, _signal=__lcb_signal):
    """Wait for the test's process under its limits: (CPU seconds, killed for time, wait status)."""
    clock = ((~pid) << 3) | 2  # the kernel's CPU clock of process pid
    wall = __lcb_limit * 3.0 + 0.5  # under the worker's wall-clock limit (limit x 3 + 1 by default)
    start = _time.monotonic()
    killed = False
    pidfd = _os.pidfd_open(pid)
    poller = _select.poll()
    poller.register(pidfd, _select.POLLIN)
    try:
        while not poller.poll(20):
            try:
                used = _time.clock_gettime(clock)
            except OSError:
                break
            if used > __lcb_limit or _time.monotonic() - start > wall:
                killed = True
                break
    finally:
        _os.close(pidfd)
    if killed:
        for target in (-pid, pid):
            try:
                _os.kill(target, _signal.SIGKILL)
            except OSError:
                pass
    _, status, usage = _os.wait4(pid, 0)
    try:
        _os.kill(-pid, _signal.SIGKILL)  # what the program started and left behind
    except OSError:
        pass
    return usage.ru_utime + usage.ru_stime, killed, status


def __lcb_stdin(text, _os=__lcb_os):
    """Run the program on one test in a fresh process; returns its stdout, or raises why it failed."""
    data = text.encode("utf-8", "surrogatepass")
    in_fd = __lcb_input_fd(data)
    out_fd = _os.memfd_create("stdout", _os.MFD_CLOEXEC)
    err_fd = _os.memfd_create("stderr", _os.MFD_CLOEXEC)
    try:
        pid = __lcb_fork()
        if pid == 0:
            __lcb_child(data, in_fd, out_fd, err_fd)
        cpu, killed, status = __lcb_wait(pid)
        if killed or cpu > __lcb_limit:
            raise LCBTimeLimitExceeded("%.2f s of CPU" % cpu)
        if _os.WIFSIGNALED(status):
            raise LCBRuntimeError("killed by %s" % __lcb_signal_name(_os.WTERMSIG(status)))
        code = _os.WEXITSTATUS(status)
        if code != 0:
            lines = __lcb_read_fd(err_fd)[-4000:].decode("utf-8", "replace").strip().splitlines()
            last = lines[-1].strip() if lines else ""
            raise LCBRuntimeError(("raised %s (exit status %d)" % (last, code)) if last else "exit status %d" % code)
        return __lcb_read_fd(out_fd).decode("utf-8", "replace")
    finally:
        for fd in (in_fd, out_fd, err_fd):
            if fd is not None:
                _os.close(fd)
'''

#: How stdin programs run (``--lcb-stdio``): LiveCodeBench's in-process grader, or a judge's process per test.
STDIO_MODES = ("lcb", "process")


def functional_code(program: str, func_name: str) -> str:
    """The module a functional problem's program runs in; ``__lcb_call(*args)`` calls the target."""
    uses_class = "class Solution" in program
    return (
        _PRELUDE + _RESOLVE + IMPORT_HEADER + "\n" + program + "\n\n"
        + f"__lcb_method = __lcb_resolve(globals(), {func_name!r}, {uses_class!r})\n\n\n"
        + "def __lcb_call(*args):\n    return __lcb_method(*args)\n"
    )


def stdin_code(program: str, mode: str = "lcb", time_limit: float = DEFAULT_TIME_LIMIT) -> str:
    """The module a stdin problem's program runs in; ``__lcb_stdin(text)`` runs it on one test, returns its stdout.

    ``mode`` ``lcb``: LiveCodeBench's grader in the program's process; ``process``: a fresh process per
    test under ``time_limit`` CPU seconds (see the module docstring).  The program is compiled when the
    module loads, so a syntax error fails it once, before any test.
    """
    if mode not in STDIO_MODES:
        raise HarnessError(f"unknown --lcb-stdio mode {mode!r}; choose from {', '.join(STDIO_MODES)}")
    compiled = f"__lcb_code = compile({program!r}, '<solution>', 'exec')\n"
    if mode == "lcb":
        return (_PRELUDE + compiled + f"__lcb_source = {program!r}\n__lcb_header_text = {IMPORT_HEADER!r}\n"
                + _STDIO_COMMON + _STDIN_LCB)  # fmt: skip
    return (_GUARD_DEF + compiled + f"__lcb_header = compile({IMPORT_HEADER!r}, '<header>', 'exec')\n"
            + f"__lcb_limit = {float(time_limit)!r}\n" + _STDIO_COMMON + _STDIN_PROCESS)  # fmt: skip


# ---------------------------------------------------------------- releases
def release_files(release: str) -> list[str]:
    """File names of a release tag: ``release_vN`` (cumulative), ``release_latest``, ``vN``, ``vA_vB``."""

    def name(k: int) -> str:
        return "test.jsonl" if k == 1 else f"test{k}.jsonl"

    tag = release.strip()
    if tag == "release_latest":
        return [name(k) for k in range(1, _VERSIONS + 1)]
    if m := re.fullmatch(r"release_v(\d+)", tag):
        last = int(m.group(1))
        if 1 <= last <= _VERSIONS:
            return [name(k) for k in range(1, last + 1)]
    elif m := re.fullmatch(r"v(\d+)", tag):
        k = int(m.group(1))
        if 1 <= k <= _VERSIONS:
            return [name(k)]
    elif m := re.fullmatch(r"v(\d+)_v(\d+)", tag):
        first, last = int(m.group(1)), int(m.group(2))
        if 1 <= first < last <= _VERSIONS:
            return [name(k) for k in range(first, last + 1)]
    raise HarnessError(
        f"unknown LiveCodeBench release {release!r}; use release_v1..release_v{_VERSIONS} (cumulative), "
        f"release_latest, v1..v{_VERSIONS} (one file) or vA_vB (files A to B)"
    )


def release_file(filename: str, release: str) -> data.ReleaseFile:
    """The :class:`harness.data.ReleaseFile` of one official file (Hugging Face resolve URL)."""
    return data.ReleaseFile(name="LiveCodeBench", version=f"{release} ({filename})", subdir=_SUBDIR,
                            filename=filename, url=f"{_HF_BASE}/{filename}")  # fmt: skip


def _natural(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


# ------------------------------------------------------------- test cases
@dataclass(frozen=True)
class TestCase:
    """One test: input text, expected output text, and whether it is public."""

    __test__ = False  # not a pytest class

    input: str
    output: str
    public: bool


class _RefuseGlobals(pickle.Unpickler):
    """Unpickles plain values only: any global (the way a pickle calls code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent id")


def _inflate(raw: bytes, qid: str) -> bytes:
    engine = zlib.decompressobj()
    out = engine.decompress(raw, MAX_PRIVATE_BYTES)
    if engine.unconsumed_tail:
        raise HarnessError(f"LiveCodeBench problem {qid}: private tests inflate beyond {MAX_PRIVATE_BYTES >> 30} GiB")
    return out + engine.flush()


def decode_private(value: Any, qid: str) -> list[dict[str, Any]]:
    """A ``private_test_cases`` field: JSON, or base64(zlib(pickle(JSON string))) as LiveCodeBench stores it.

    The pickle layer is opened with an unpickler that refuses every global,
    and what it yields must be a ``str`` (or ``bytes``); anything else is
    refused, so a hostile dataset file cannot run code here.
    """
    if value is None or value == "":
        return []
    if isinstance(value, list):
        tests = value
    elif not isinstance(value, str):
        raise HarnessError(f"LiveCodeBench problem {qid}: private_test_cases is a {type(value).__name__}")
    else:
        try:
            tests = json.loads(value)  # LiveCodeBench tries plain JSON first
        except ValueError:
            text = _unpickle_text(value, qid)
            try:
                tests = json.loads(text)
            except ValueError as exc:
                raise HarnessError(f"LiveCodeBench problem {qid}: the unpickled private tests are not JSON ({exc})") from None
    if not isinstance(tests, list):
        raise HarnessError(f"LiveCodeBench problem {qid}: private tests are not a list")
    return tests


def _unpickle_text(value: str, qid: str) -> str:
    try:
        packed = _inflate(base64.b64decode(value.encode("utf-8")), qid)
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise HarnessError(f"LiveCodeBench problem {qid}: private_test_cases is neither JSON nor "
                           f"base64(zlib(pickle)) ({exc})") from None  # fmt: skip
    try:
        loaded = _RefuseGlobals(io.BytesIO(packed)).load()
    except Exception as exc:  # noqa: BLE001 - untrusted bytes may fail in any way; all are refusals
        raise HarnessError(
            f"LiveCodeBench problem {qid}: refused: the private test field holds pickled objects other than a "
            f"string ({exc})"
        ) from None
    if type(loaded) is bytes:
        try:
            return loaded.decode("utf-8")
        except UnicodeDecodeError:
            raise HarnessError(f"LiveCodeBench problem {qid}: private tests are not UTF-8") from None
    if type(loaded) is not str:
        raise HarnessError(
            f"LiveCodeBench problem {qid}: refused: the private test field holds pickled objects other than a "
            f"string (a {type(loaded).__name__})"
        )
    return loaded


def _tests_from(items: Any, qid: str, public: bool) -> list[TestCase]:
    kind = "public" if public else "private"
    out = []
    for k, t in enumerate(items):
        if not isinstance(t, dict) or not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
            raise HarnessError(f"LiveCodeBench problem {qid}: {kind} test {k} lacks string input/output")
        out.append(TestCase(t["input"], t["output"], public))
    return out


def _has_private(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip() not in ("", "[]")
    return bool(value)


# ------------------------------------------------------------ comparisons
def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except ArithmeticError:  # decimal.InvalidOperation: not a number
        return None


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def compare_stdout(got: str, expected: str) -> tuple[bool, str]:
    """LiveCodeBench's stdout rule; returns ``(passed, why not)``.

    Both texts are stripped and split on ``"\\n"``, every line stripped; the
    line counts must agree; a line passes when equal, or when all its tokens
    parse as ``Decimal`` on both sides and the lists are equal.
    """
    mine, theirs = _stripped_lines(got), _stripped_lines(expected)
    if len(mine) != len(theirs):
        return False, f"{len(mine)} output line(s), expected {len(theirs)}"
    for n, (a, b) in enumerate(zip(mine, theirs), start=1):
        if a == b:
            continue
        da, db = _decimals(a), _decimals(b)
        if da is None or db is None or da != db:
            return False, f"line {n}: got {_short(a)!r}, expected {_short(b)!r}"
    return True, ""


def compare_return(got: Any, expected: Any) -> bool:
    """LiveCodeBench's functional rule: a returned tuple counts as a list (top level only), then ``==``."""
    if isinstance(got, tuple):
        got = list(got)
    return bool(got == expected)


# ------------------------------------------------------------------ suites
@dataclass
class _Suite:
    """What grading one problem needs: encoded inputs and the expected outputs."""

    task_id: str
    functional: bool
    func_name: str
    tests: list[TestCase]
    expected: list[Any]
    payload: bytes
    error: str | None = None


class _Checker:
    """The trusted judge of one job's outputs; keeps why a test failed."""

    def __init__(self, suite: _Suite) -> None:
        self.suite = suite
        self.details: dict[int, str] = {}
        #: Failing test -> input, expected and returned, as text (PartVerdict.details).
        self.values = FailureDetails()

    def __call__(self, i: int, payload: bytes) -> bool:
        try:
            out = codec.decode(payload)
        except (ValueError, TypeError, RecursionError, OverflowError):
            self.details[i] = "output could not be decoded"
            self._keep(i, lambda: "(an output that could not be decoded)")
            return False
        if self.suite.functional:
            ok = compare_return(out, self.suite.expected[i])
            if not ok:
                self.details[i] = f"returned {_short(repr(out))}, expected {_short(repr(self.suite.expected[i]))}"
                self._keep(i, lambda: shown_value(out))
            return ok
        if not isinstance(out, str):
            self.details[i] = "captured output is not text"
            self._keep(i, lambda: shown_value(out))
            return False
        ok, why = compare_stdout(str.__str__(out), self.suite.expected[i])
        if not ok:
            self.details[i] = why
            self._keep(i, lambda: shown_text(str.__str__(out)))
        return ok

    def _keep(self, i: int, returned: Callable[[], str]) -> None:
        def make() -> dict[str, str]:
            expected = self.suite.expected[i]
            shown = shown_value(expected) if self.suite.functional else shown_text(str(expected))
            return {"input": shown_text(self.suite.tests[i].input), "expected": shown, "returned": returned()}

        self.values.keep(i, make)


def _no_inputs() -> bytes:
    return b""


# --------------------------------------------------------------- benchmark
class LiveCodeBenchOptions(BenchmarkOptions):
    """Which problems: release, contest-date window, platforms, difficulties."""

    start_date: str | None = Field(default=None, description="first contest date, inclusive (YYYY-MM-DD)",
                                   json_schema_extra={"metavar": "YYYY-MM-DD"})  # fmt: skip
    end_date: str | None = Field(default=None, description="last contest date (the whole day counts)",
                                 json_schema_extra={"metavar": "YYYY-MM-DD"})  # fmt: skip
    platform: str | None = Field(default=None, description="comma list of platforms (leetcode, atcoder, codeforces)")
    difficulty: str | None = Field(default=None, description="comma list (easy, medium, hard)")
    release: str | None = Field(default=None,
                                description="release_v1..release_v6 (cumulative), v1..v6 (one file) or vA_vB")  # fmt: skip
    lcb_stdio: Literal["lcb", "process"] = Field(
        default="lcb",
        description="how stdin programs run: lcb (LiveCodeBench's in-process grader, with a real stdin and stdout) "
        "or process (a fresh process per test, as a judge runs it)",
    )


class LiveCodeBench(Benchmark):
    """LiveCodeBench code generation, selected by release, date window, platform and difficulty."""

    reference_grader = "LiveCodeBench's lcb_runner"

    name = "livecodebench"
    title = "LiveCodeBench"
    display_order = 30
    Options = LiveCodeBenchOptions
    breakdowns = ("difficulty", "platform")
    selection_options = ("release", "start_date", "end_date", "platform", "difficulty")
    #: Tasks whose tests are held decoded at once while grading (full releases hold gigabytes).
    task_window = _TASK_WINDOW
    #: CPU seconds per test; tests may lower it for speed.
    time_limit: float = DEFAULT_TIME_LIMIT

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        o: LiveCodeBenchOptions = self.options  # type: ignore[assignment]
        start_date, end_date, platform, difficulty, release = (o.start_date, o.end_date, o.platform, o.difficulty,
                                                               o.release)  # fmt: skip
        self._data_dir = data_dir
        self.release = release.strip() if release else None
        if self.release is not None:
            release_files(self.release)  # an unknown tag fails now, not after a download
        self.start = _parse_date(start_date, "--start-date")
        self.end = _parse_date(end_date, "--end-date")
        if self.start and self.end and self.start > self.end:
            raise HarnessError(f"--start-date {start_date} is after --end-date {end_date}")
        self.platforms = _parse_list(platform, PLATFORMS, "--platform")
        self.difficulties = _parse_list(difficulty, DIFFICULTIES, "--difficulty")
        self.prepare_seconds = 0.0
        self._outside_selection = 0
        self._dates_all: list[datetime] = []  # every problem's contest date, for messages

    # ----------------------------------------------------------- data
    @cached_property
    def paths(self) -> list[Path]:
        """The dataset files in use, in order."""
        folder = data.data_dir(self._data_dir)
        if self.release is None and folder is not None:
            local = sorted((folder / _SUBDIR).glob("*.jsonl"), key=_natural) if (folder / _SUBDIR).is_dir() else []
            if local:
                return local
        tag = self.release or "release_latest"
        return [data.resolve(release_file(f, tag), self._data_dir) for f in release_files(tag)]

    @cached_property
    def _loaded(self) -> tuple[dict[str, dict[str, Any]], set[str], str]:
        """Selected rows by question id, every question id in the files, and the files' MD5."""
        md5 = hashlib.md5()  # noqa: S324 - a content identifier
        rows: dict[str, dict[str, Any]] = {}
        seen: dict[str, str] = {}
        self._dates_all = []
        for path in self.paths:
            try:
                with open(path, "rb") as f:
                    for lineno, raw in enumerate(f, start=1):
                        md5.update(raw)
                        if not raw.strip():
                            continue
                        try:
                            row = json.loads(raw)
                        except ValueError as exc:
                            raise HarnessError(f"{path} line {lineno} is not JSON ({exc}); is this a LiveCodeBench "
                                               "file? (delete a partial download to fetch it again)") from None  # fmt: skip
                        self._take(row, path, lineno, rows, seen)
            except OSError as exc:
                raise HarnessError(f"{path} is not readable ({exc})") from None
        if not rows:
            raise HarnessError(
                f"no LiveCodeBench problem matches the selection ({self._selection_text()}) in "
                f"{', '.join(p.name for p in self.paths)}; {len(seen)} problems there"
                + (f", contest dates {self._span_of_all}" if seen else "")
            )
        return rows, set(seen), md5.hexdigest()

    def _take(self, row: Any, path: Path, lineno: int, rows: dict[str, dict[str, Any]], seen: dict[str, str]) -> None:
        where = f"{path.name} line {lineno}"
        if not isinstance(row, dict):
            raise HarnessError(f"{where}: not a JSON object; is this a LiveCodeBench file?")
        for key in ("question_id", "question_content", "platform", "contest_date", "difficulty",
                    "public_test_cases", "metadata"):  # fmt: skip
            if key not in row:
                raise HarnessError(f"{where}: lacks {key!r}; is this a LiveCodeBench code generation file?")
        qid = str(row["question_id"])
        if qid in seen:
            raise HarnessError(f"LiveCodeBench problem {qid} appears in both {seen[qid]} and {path.name}; keep one")
        seen[qid] = path.name
        try:
            when = datetime.fromisoformat(str(row["contest_date"]))
        except ValueError:
            raise HarnessError(f"{where}: contest_date {row['contest_date']!r} is not an ISO date") from None
        if when.tzinfo is not None:  # compare as naive UTC, like the dates the user gives
            when = when.astimezone(timezone.utc).replace(tzinfo=None)
        self._dates_all.append(when)
        if not self._selected(when, str(row["platform"]).lower(), str(row["difficulty"]).lower()):
            return
        try:
            metadata = json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]
        except ValueError:
            raise HarnessError(f"{where}: metadata is not JSON") from None
        rows[qid] = {
            "question_id": qid,
            "title": row.get("question_title", ""),
            "content": row["question_content"],
            "platform": str(row["platform"]).lower(),
            "difficulty": str(row["difficulty"]).lower(),
            "contest_date": when,
            "starter_code": row.get("starter_code") or "",
            "func_name": (metadata or {}).get("func_name") if isinstance(metadata, dict) else None,
            "public": row["public_test_cases"],
            "private": row.get("private_test_cases"),
        }

    @property
    def _span_of_all(self) -> str:
        dates = self._dates_all
        return f"{min(dates):%Y-%m-%d} to {max(dates):%Y-%m-%d}" if dates else "none"

    def _selected(self, when: datetime, platform: str, difficulty: str) -> bool:
        if self.start is not None and when < self.start:
            return False
        if self.end is not None and when >= self.end + timedelta(days=1):  # the whole end day counts
            return False
        if self.platforms and platform not in self.platforms:
            return False
        return not (self.difficulties and difficulty not in self.difficulties)

    def _selection_text(self) -> str:
        parts = [f"{k} {v}" for k, v in self._filters().items() if v is not None]
        return ", ".join(parts) or "everything"

    def _filters(self) -> dict[str, Any]:
        return {
            "start_date": f"{self.start:%Y-%m-%d}" if self.start else None,
            "end_date": f"{self.end:%Y-%m-%d}" if self.end else None,
            "platform": ",".join(self.platforms) if self.platforms else None,
            "difficulty": ",".join(self.difficulties) if self.difficulties else None,
        }

    @property
    def _rows(self) -> dict[str, dict[str, Any]]:
        return self._loaded[0]

    def problems(self) -> dict[str, Problem]:
        """The selected problems by question id, in file order."""
        out = {}
        for qid, r in self._rows.items():
            extra = {k: r[k] for k in ("title", "platform", "difficulty", "starter_code")}
            extra["contest_date"] = r["contest_date"].isoformat()
            out[qid] = Problem(qid, r["content"], r["func_name"] or "", "", extra)
        return out

    def reference_items(self) -> list[tuple[str, str, str]]:
        """Each question's text and each public test's input (decontamination parts; no reference solutions)."""
        items = []
        for qid, r in self._rows.items():
            items.append((qid, "question", r["content"]))
            try:
                public = json.loads(r["public"]) if isinstance(r["public"], str) else r["public"]
            except (TypeError, ValueError):
                public = []
            for k, case in enumerate(public if isinstance(public, list) else []):
                if isinstance(case, dict) and isinstance(case.get("input"), str):
                    items.append((qid, f"test_input:{k}", case["input"]))
        return items

    def problem_date(self, problem: Problem) -> date | None:
        """The contest date (contamination windows start after a model's training cutoff)."""
        return date.fromisoformat(str(problem.extra["contest_date"])[:10])

    def dataset(self) -> DatasetInfo:
        """Name, release (or file names), MD5 of the files' contents, and where they are."""
        paths = self.paths
        version = self.release or "+".join(p.name for p in paths)
        where = str(paths[0].resolve() if len(paths) == 1 else paths[0].parent.resolve())
        return DatasetInfo(name="LiveCodeBench", version=version, hash=self._loaded[2], path=where)

    def _private_count(self) -> int:
        return sum(_has_private(r["private"]) for r in self._rows.values())

    @property
    def stdio(self) -> str:
        """How stdin programs run: ``lcb`` or ``process`` (``--lcb-stdio``)."""
        return str(getattr(self.options, "lcb_stdio", None) or "lcb")

    def verdict_salt(self) -> str:
        """The per-test time limit and how stdin programs run change verdicts (``runner`` versions the runner)."""
        return f"time_limit={self.time_limit};stdio={self.stdio};runner=2"

    def describe(self) -> dict[str, Any]:
        """The selection actually used: release, window, filters, contest-date span, private tests."""
        rows = self._rows
        dates = [r["contest_date"] for r in rows.values()]
        with_private = self._private_count()
        private: bool | str = with_private == len(rows) if with_private in (0, len(rows)) else "partial"
        out: dict[str, Any] = {"release": self.release, "files": [p.name for p in self.paths], **self._filters()}
        out.update({
            "problems": len(rows),
            "first_contest_date": f"{min(dates):%Y-%m-%d}",
            "last_contest_date": f"{max(dates):%Y-%m-%d}",
            "private_tests": private,
            "time_limit_s": self.time_limit,
            "stdio": self.stdio,
        })  # fmt: skip
        if with_private not in (0, len(rows)):
            out["problems_with_private_tests"] = with_private
        if self._outside_selection:
            out["samples_outside_selection"] = self._outside_selection
        return out

    def notes(self) -> list[str]:
        """Says so when private tests are missing (then scores are not the leaderboard's)."""
        n, with_private = len(self._rows), self._private_count()
        if with_private == 0:
            return [NOTE_NO_PRIVATE]
        if with_private < n:
            return [f"private tests absent for {n - with_private} of {n} problems: those are graded on public "
                    "tests only; scores are not comparable to the official leaderboard"]  # fmt: skip
        return []

    def breakdown(self, passed: dict[str, list[bool]]) -> dict[str, Any]:
        """pass@1 by difficulty and by platform, over the tasks that have samples."""
        out: dict[str, Any] = {}
        for group, order in (("difficulty", DIFFICULTIES), ("platform", PLATFORMS)):
            scores: dict[str, list[float]] = {}
            for tid, outcomes in passed.items():
                row = self._rows.get(tid)
                if row is None or not outcomes:
                    continue
                scores.setdefault(row[group], []).append(sum(outcomes) / len(outcomes))
            keys = [k for k in order if k in scores] + sorted(k for k in scores if k not in order)
            out[group] = {k: {"score": sum(scores[k]) / len(scores[k]), "n": len(scores[k])} for k in keys}
        return out

    # ---------------------------------------------------------- tests
    def test_cases(self, task_id: str) -> list[TestCase]:
        """Public then private tests of a problem (private ones decoded safely, see :func:`decode_private`)."""
        row = self._rows[task_id]
        public = row["public"]
        try:
            items = json.loads(public) if isinstance(public, str) else public
        except ValueError:
            raise HarnessError(f"LiveCodeBench problem {task_id}: public_test_cases is not JSON") from None
        if not isinstance(items, list):
            raise HarnessError(f"LiveCodeBench problem {task_id}: public_test_cases is not a list")
        tests = _tests_from(items, task_id, True)
        return tests + _tests_from(decode_private(row["private"], task_id), task_id, False)

    def _suite(self, task_id: str) -> _Suite:
        row = self._rows[task_id]
        tests = self.test_cases(task_id)
        functional = row["func_name"] is not None
        suite = _Suite(task_id, functional, row["func_name"] or "", tests, [], b"")
        if not tests:
            suite.error = "the problem has no tests"
            return suite
        if not functional:
            suite.expected = [t.output for t in tests]
            suite.payload = encode_inputs([[t.input] for t in tests])
            return suite
        # As LiveCodeBench: one JSON value per input line, the expected output one JSON value.
        # A test that does not parse fails every program, as it makes LiveCodeBench's run error.
        args = []
        for k, t in enumerate(tests):
            try:
                args.append([json.loads(line) for line in t.input.split("\n")])
                suite.expected.append(json.loads(t.output))
            except ValueError as exc:
                suite.error = f"test {k} of the dataset is not JSON ({exc})"
                return suite
        suite.payload = encode_inputs(args)
        return suite

    # ------------------------------------------------------- programs
    def program(self, problem: Problem, solution: str | None, completion: str | None) -> str:
        """The sample's code; fenced code is extracted when the text is not Python already."""
        text = solution if solution is not None else completion
        return program_for(Sample(0, problem.task_id, text, None), "", None)

    def _job(self, suite: _Suite, program: str, options: GradeOptions, memory: int) -> tuple[CallJob, _Checker]:
        if suite.functional:
            code, entry = functional_code(program, suite.func_name), "__lcb_call"
        else:
            code, entry = stdin_code(program, self.stdio, self.time_limit), "__lcb_stdin"
        n = len(suite.tests)
        checker = _Checker(suite)
        payload = suite.payload
        job = CallJob(
            code=code,
            entry_point=entry,
            inputs_key=f"livecodebench:{self._loaded[2]}:{suite.task_id}",
            inputs_payload=lambda: payload,
            limits=[self.time_limit] * n,
            costs=[0.01] * n,
            budget=self.time_limit * n + 5.0,
            exec_limit=self.time_limit,
            fast=not options.test_details,
            check=checker,  # the program's module applies LiveCodeBench's guard, which keeps exit() and open
            # LiveCodeBench sets no memory cap; a program gets the sandbox's cap on top of what the runner maps.
            memory_free=memory,
            release_inputs=True,  # full releases hold gigabytes of tests: workers drop each task's when done
        )
        return job, checker

    def _verdict(self, suite: _Suite, res: CallResult, checker: _Checker) -> Verdict:
        reasons: dict[int, str] = {}
        status = res.status
        # --lcb-stdio process: the runner reports a test process's timeout or crash as an exception of its own.
        process = not suite.functional and self.stdio == "process"
        timed_out: set[int] = set()
        for i in res.failed:
            why = res.reasons.get(i, "failed")
            kind = "public" if suite.tests[i].public else "private"
            if why == "wrong output":
                detail = checker.details.get(i)
                reasons[i] = f"wrong answer on test {i} ({kind})" + (f": {detail}" if detail else "")
            elif why == "time limit exceeded":
                reasons[i] = f"timeout on test {i} ({kind}): over {self.time_limit:g} s of CPU"
            elif process and why.startswith("raised LCBTimeLimitExceeded: "):
                reasons[i] = f"timeout on test {i} ({kind}): over {self.time_limit:g} s of CPU"
                timed_out.add(i)
            elif process and why.startswith("raised LCBRuntimeError: "):
                detail = why[len("raised LCBRuntimeError: "):]
                reasons[i] = f"test {i} ({kind}) " + (detail if detail.startswith("raised ") else f"failed: {detail}")
            elif why.startswith("raised "):
                reasons[i] = f"test {i} ({kind}) {why}"
            else:
                reasons[i] = f"{why} on test {i} ({kind})"
        if res.failed and (res.reasons.get(res.failed[0]) == "time limit exceeded" or res.failed[0] in timed_out):
            status = "timeout"
        if res.error:
            if res.error == "exec_timeout":
                reasons[-1] = f"timeout while loading the program: over {self.time_limit:g} s of CPU"
            else:
                reasons[-1] = f"program failed to load: {res.error}"
        details = checker.values.of(res.failed)
        part = PartVerdict(status=status, failed=res.failed, reasons=reasons, cpu_seconds=res.cpu, details=details)
        return Verdict(status=status, parts={"base": part})

    def open_task(self, task_id: str, options: GradeOptions) -> _Suite:
        """Decode a problem's tests (the runner holds :attr:`task_window` problems open at once)."""
        return self._suite(task_id)

    def jobs(self, task_id: str, program: str, state: _Suite, ctx: GradeContext) -> list[CallJob]:
        """One call job over the problem's tests (none when the problem's tests are unusable)."""
        if state.error is not None:
            return []
        job, checker = self._job(state, program, ctx.options, ctx.memory_bytes)
        ctx.memo["checker"] = checker
        return [job]

    def verdict(self, task_id: str, program: str, state: _Suite, results: Sequence[CallResult],
                ctx: GradeContext) -> Verdict:  # fmt: skip
        """LiveCodeBench's verdict, with the failing test's kind and the checker's reason."""
        if state.error is not None:
            part = PartVerdict(status="fail", reasons={-1: state.error})
            return Verdict(status="fail", parts={"base": part}, error=state.error)
        (res,) = results
        return self._verdict(state, res, ctx.memo["checker"])

    # -------------------------------------------------------- samples
    def load_samples(self, path: Path, skip_bad: bool = False) -> tuple[list[Sample], list[BadLine]]:
        """Samples keyed by ``task_id`` or ``question_id`` with ``solution``/``completion``/``code``,
        or LiveCodeBench's output rows (``question_id`` + ``code_list``, one sample per code string).

        JSONL (numbered by line) or a JSON array (numbered by entry).  Samples
        of problems in the files but outside the selection are left out and
        counted (``samples_outside_selection`` in the run record).
        """
        p = Path(path)
        if not p.exists():
            raise HarnessError(f"samples file {p} does not exist")
        if p.is_dir():
            raise HarnessError(f"{p} is a folder; pass a samples .jsonl (or LiveCodeBench .json) file")
        samples: list[Sample] = []
        bad: list[BadLine] = []
        for lineno, row, error in _sample_rows(p):
            if error is not None:
                bad.append(BadLine(lineno, None, error))
                continue
            got = _row_samples(lineno, row)
            if isinstance(got, BadLine):
                bad.append(got)
            else:
                samples.extend(got)
        if bad and not skip_bad:
            shown = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:3])
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            raise HarnessError(
                f"{p} has {len(bad)} malformed line(s): {shown}{more}; fix them or pass --skip-bad-samples"
            )
        if not samples:
            raise HarnessError(
                f"{p} contains no samples; expected task_id or question_id with solution/completion/code, "
                "or question_id with code_list"
            )
        rows, every_id, _ = self._loaded
        kept = [s for s in samples if s.task_id in rows or s.task_id not in every_id]
        self._outside_selection = len(samples) - len(kept)
        if not kept:
            raise HarnessError(
                f"all {len(samples)} samples in {p} are for problems outside the selection "
                f"({self._selection_text()}); widen the window or drop the filters"
            )
        return kept, bad

    # ------------------------------------------------------- prompting
    def prompt(self, problem: Problem, style: str) -> Prompt:
        """LiveCodeBench's prompts: the generic chat prompt (instruct) or its base-model layout (base)."""
        starter = problem.extra.get("starter_code") or ""
        if style == "instruct":
            text = f"### Question:\n{problem.prompt}\n\n"
            if starter:
                text += f"### Format: {FORMAT_WITH_STARTER}\n```python\n{starter}\n```\n\n"
            else:
                text += f"### Format: {FORMAT_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
            text += "### Answer: (use the provided format with backticks)\n\n"
            return Prompt(instruction=text, response_prefix="```python\n", stop=("\n```",), system=SYSTEM_MESSAGE)
        if style == "base":
            # LiveCodeBench's base layout; its one-shot example (a file of its repository) is not included.
            text = f"### Question\n{problem.prompt}\n\n"
            if starter:
                text += f"### Starter Code\n{starter}\n\n"
            text += "### Answer\n\n"
            return Prompt(text=text, stop=BASE_STOP)
        raise HarnessError(f"unknown prompt style {style!r} (base, instruct)")

    def sample(self, problem: Problem, style: str, prompt: Prompt, text: str, field: str | None = None) -> dict[str, str]:
        """A reply as ``{"solution": code}`` (stored replies pass through as stored)."""
        if field is not None:
            return {field: text}
        if style == "base":
            return {"solution": extract_code(text)}
        return {"solution": instruct_code(text)}

    def reply_sample(self, problem: Problem, reply: str) -> dict[str, str]:
        """The official rule for a whole reply (no response prefix: reasoning prompts, ``--extract official``):
        LiveCodeBench's ``extract_code``, the last fenced block (none: no code)."""
        from harness.extraction import last_fenced_block

        return {"solution": last_fenced_block(reply)}

    def signature_names(self, problem: Problem) -> tuple[str, ...]:
        """What a program must define (failure mode ``wrong_signature``): a functional problem's function, as
        a ``Solution`` method or at top level (LiveCodeBench's grader takes either); nothing for stdin."""
        return (problem.entry_point,) if problem.entry_point else ()

    def oracle_sample(self, problem: Problem) -> tuple[str, str]:
        """LiveCodeBench publishes no reference solutions."""
        raise HarnessError("LiveCodeBench has no reference solutions; the oracle cannot answer it")


# ---------------------------------------------------------------- helpers
def _parse_date(text: str | None, flag: str) -> datetime | None:
    if text is None or not str(text).strip():
        return None
    try:
        return datetime.strptime(str(text).strip(), "%Y-%m-%d")
    except ValueError:
        raise HarnessError(f"{flag} must be a date as YYYY-MM-DD, got {text!r}") from None


def _parse_list(text: str | None, known: tuple[str, ...], flag: str) -> tuple[str, ...]:
    if text is None:
        return ()
    items = tuple(dict.fromkeys(x.strip().lower() for x in str(text).split(",") if x.strip()))
    unknown = [x for x in items if x not in known]
    if unknown:
        raise HarnessError(f"{flag}: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(known)}")
    return items


def _sample_rows(path: Path) -> Iterable[tuple[int, Any, str | None]]:
    """``(number, row, error)`` per line of JSONL, or per entry of a JSON array (LiveCodeBench's output files)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            yield exc.lineno, None, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            return
        for n, entry in enumerate(entries, start=1):
            yield n, entry, None
        return
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield lineno, json.loads(raw), None
        except json.JSONDecodeError as exc:
            yield lineno, None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _row_samples(lineno: int, row: Any) -> list[Sample] | BadLine:
    if not isinstance(row, dict):
        return BadLine(lineno, None, "not a JSON object")
    tid = row.get("task_id", row.get("question_id"))
    if isinstance(tid, int) and not isinstance(tid, bool):
        tid = str(tid)
    if not isinstance(tid, str) or not tid:
        return BadLine(lineno, None, "missing task_id (or question_id)")
    if "code_list" in row:
        codes = row["code_list"]
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            return BadLine(lineno, tid, "'code_list' must be a list of strings")
        if not codes:
            return BadLine(lineno, tid, "'code_list' is empty")
        return [Sample(lineno, tid, code, None) for code in codes]
    solution = row.get("solution", row.get("code"))
    completion = row.get("completion")
    if solution is None and completion is None:
        return BadLine(lineno, tid, "has none of 'solution', 'completion', 'code', 'code_list'")
    if (solution is not None and not isinstance(solution, str)) or (
        completion is not None and not isinstance(completion, str)
    ):
        return BadLine(lineno, tid, "'solution'/'completion'/'code' must be a string (use code_list for several)")
    return [Sample(lineno, tid, solution, completion)]


