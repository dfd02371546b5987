"""Harness side of the sandbox: worker processes, isolation, scheduling.

:class:`Sandbox` owns ``workers`` pre-started worker processes (see
:mod:`harness.execution.worker`), each in its own bubblewrap sandbox when
bubblewrap works here.  :meth:`Sandbox.run` runs three kinds of jobs, mixed,
through one priority queue, reporting each as it finishes:

* :class:`CallJob` - call a function of an untrusted program on a list of
  inputs, with a CPU-time limit per input; each output is decoded to plain
  data and judged by a trusted ``check`` callback in this process.  Inputs of
  one job are split across idle workers when the job is long (work stealing),
  so one slow sample does not serialise the run.
* :class:`ScriptJob` - run a whole Python program; it passes when it exits cleanly.
* :class:`CommandJob` - run programs of any language (compile, then run):
  each :class:`Step` is an ``argv`` executed in the job's fresh working
  directory with its own stdin, CPU, wall-clock and memory limits, under the
  same isolation and uid as Python programs.

Benchmark-specific behaviour (EvalPlus's guard, say) is a *prelude*: trusted
Python source a job carries, run in the program's process just before it.

Isolation (chosen once per process, reported by :func:`isolation_mode`):

* ``bwrap``: read-only root, private ``/tmp`` (size-capped tmpfs), new PID,
  network, IPC and UTS namespaces, killed with its parent;
* ``process``: no namespaces (bubblewrap missing or refused by the OS); the
  program still gets its own session, rlimits, working directory and, as
  root, its own uid.  Network and filesystem isolation are then absent.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from harness.errors import SandboxError
from harness.execution import codec, protocol
from harness.settings import current as current_settings

_PRELOAD = [
    "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
    "typing", "decimal", "fractions", "statistics", "operator", "copy", "random",
    "datetime", "hashlib", "numpy", "subprocess", "faulthandler",
]  # fmt: skip
_UID_BASE = 61000
_UID_SPAN = 4096
_UID_LOCKS = "/tmp/.harness-uids"
#: Times the unfinished part of one job moves off a lost worker (a Ray node gone) before it fails.
MAX_LOSSES = 3
#: A job over its whole time budget runs up to this many times in all before its timeout stands: timing
#: noise (caches, the other CPUs' load, the hypervisor) only ever adds CPU time, so the fastest of a few
#: runs is the program's own cost; one run's verdict on a budget it needs 80-100% of flips with that noise.
BUDGET_RUNS = 3
#: ... but only when the run that crossed the budget would have finished within this factor of it (its
#: CPU per second of expected cost so far, times the whole job's expected cost): a program far over the
#: budget is not run again.
BUDGET_NEAR = 1.5
#: The same for one input over its own limit, where that limit is within this factor of the input's
#: expected cost (EvalPlus's 4 x ground truth on a heavy input): such an input runs up to BUDGET_RUNS
#: times before its timeout stands. Over a limit far above its cost (EvalPlus's 1 s floor for a
#: millisecond input: an endless loop, mostly) one run decides, so endless loops cost one limit.
INPUT_NEAR = 5.0


def _wide_pipe(fd: int) -> None:
    """A 1 MiB pipe buffer (64 KiB by default): large outputs cross in fewer reads and wake-ups."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass  # beyond the system's pipe-max-size: the default works, only slower


def _lease_uid() -> tuple[int, int]:
    """A program uid no other sandbox worker on this machine holds, with the lock fd that holds it.

    Workers of every harness process on the machine draw from one range;
    each uid is held by an exclusive ``flock`` for the worker's life, so two
    evaluations running at once never sweep (kill) each other's programs.
    """
    import fcntl

    os.makedirs(_UID_LOCKS, mode=0o700, exist_ok=True)
    for uid in range(_UID_BASE, _UID_BASE + _UID_SPAN):
        fd = os.open(os.path.join(_UID_LOCKS, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return uid, fd
    raise SandboxError(f"all {_UID_SPAN} sandbox uids are in use; too many sandbox workers on this machine")


EXECUTORS = ("local", "ray")
_SLOW_INPUT = 0.005  # seconds of expected cost before which a runner sends its pending results


@dataclass(frozen=True)
class SandboxSettings:
    """Limits and layout of the sandbox (every field has a safe default)."""

    workers: int = 0  # 0: one per CPU core
    memory_bytes: int = 4 << 30
    file_size_bytes: int = 64 << 20
    capture_bytes: int = 64 << 10
    max_output_bytes: int = 1 << 30
    max_processes: int = 64
    tmpfs_bytes: int = 1 << 30
    wall_factor: float = 3.0
    isolation: str = "auto"  # auto | bwrap | process
    split_min_seconds: float = 0.25
    #: Interpreter that runs programs (a managed environment's python); None: the harness's own.
    python: str | None = None
    #: Modules each worker imports once before forking programs (only fork-safe ones: no threads started).
    preload: tuple[str, ...] = ()
    #: Extra environment for programs (e.g. MPLBACKEND=Agg).
    env: tuple[tuple[str, str], ...] = ()
    #: Folders programs must read beyond the usual system ones: a toolchain installed under a home other
    #: users cannot enter (``rustc --print sysroot`` under /root, say).  Under bubblewrap, folders a
    #: program's uid may not enter are hidden and only these (and the Python runtime) are bound back.
    read_paths: tuple[str, ...] = ()
    #: Where workers run: ``local`` (processes of this machine), ``ray`` (Ray actors on every node of a
    #: cluster, each with the same isolation), ``auto`` (``HARNESS_EXECUTOR``, default local).
    executor: str = "auto"
    #: The Ray cluster to join (None: ``RAY_ADDRESS``, else a cluster started on this machine).
    ray_address: str | None = None

    def worker_count(self) -> int:
        """Number of worker processes to start (on Ray, 0 means one per CPU of the cluster)."""
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def resolved_executor(self) -> str:
        """``local`` or ``ray``: ``auto`` defers to ``HARNESS_EXECUTOR``; anything else is a SandboxError."""
        wanted = self.executor
        if wanted == "auto":
            wanted = current_settings().executor
        if wanted not in EXECUTORS:
            raise SandboxError(f"unknown sandbox executor {wanted!r}; use local or ray")
        return wanted

    def resolved_ray_address(self) -> str | None:
        """``ray_address``, else ``RAY_ADDRESS``."""
        return self.ray_address or current_settings().ray_address


@dataclass
class CallJob:
    """Call ``entry_point`` of ``code`` on each input, judged by ``check``."""

    code: str
    entry_point: str
    inputs_key: str
    inputs_payload: Callable[[], bytes]
    limits: list[float]
    costs: list[float]
    budget: float = 1e9
    exec_limit: float = 10.0
    fast: bool = True
    iterate_opaque: bool = False
    #: Trusted Python source run in the program's process (a namespace of its own) after the limits and the
    #: uid drop, just before the program: a benchmark's guard, say (``benchmarks.evalplus_guard``).
    prelude: str = ""
    check: Callable[[int, bytes], bool] | None = None  # judges an encoded output (see codec)
    keep_outputs: bool = False  # keep each output's encoded bytes in the result
    priority: int = 1  # lower runs first (expected outputs before the samples that need them)
    memory_free: int | None = None  # address space granted beyond what the runner maps; None: the sandbox's cap
    footprint: bool = False  # keep outputs alive and report the address space each adds
    resets: list[int] = field(default_factory=list)  # footprint jobs: inputs where kept outputs are dropped
    #: Workers forget the inputs once no unfinished job of this run uses them (large, one-use test sets).
    release_inputs: bool = False


@dataclass
class CallResult:
    """Outcome of a :class:`CallJob`."""

    status: str  # pass | fail | timeout
    failed: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    error: str | None = None
    cpu: float = 0.0
    times: list[float] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    footprints: list[int] = field(default_factory=list)  # footprint jobs: address space each kept output took
    #: Times the job ran: more than 1 when a run crossed the whole budget near its edge (see BUDGET_RUNS);
    #: the result is the last run's (a pass, or the last of BUDGET_RUNS runs over the budget).
    runs: int = 1


@dataclass
class ScriptJob:
    """Run a whole program as ``__main__``."""

    code: str
    cpu_limit: float = 10.0
    prelude: str = ""  # trusted source run just before the program (see CallJob.prelude)
    priority: int = 1  # lower runs first
    cost: float = 0.0  # estimated seconds: among equal priorities, expensive jobs start first


@dataclass
class ScriptResult:
    """Outcome of a :class:`ScriptJob`."""

    status: str  # pass | fail | timeout
    error: str | None
    stdout: str
    cpu: float


@dataclass
class Step:
    """One program run of a :class:`CommandJob` (a compiler, the compiled program, an interpreter).

    Limits apply to the step alone.  Threads count as processes against
    ``SandboxSettings.max_processes`` (the step's uid's RLIMIT_NPROC, as
    root): a small JVM program has about 15 with ``-XX:+UseSerialGC``,
    and the default collector adds threads per core.  The stack limit is
    the worker's (usually 8 MiB).
    """

    #: argv[0] is looked up on the steps' PATH (the worker's, unless the job's env sets one) unless it contains
    #: '/'; './x' is in the working directory.
    argv: Sequence[str]
    stdin: bytes | str = b""
    #: CPU seconds of the step's whole process tree (RLIMIT_CPU on each process, and the worker's watch of
    #: the tree's CPU: a compiler's children count).
    cpu_limit: float = 10.0
    #: None: ``cpu_limit * SandboxSettings.wall_factor + 1``.
    wall_limit: float | None = None
    #: RLIMIT_AS (and RLIMIT_DATA) of each process; None: the sandbox's cap; 0: none (JVMs and node
    #: reserve far more address space than they use).
    memory_bytes: int | None = None
    #: Bytes of stdout and of stderr kept; the rest is dropped (the file-size limit still applies).
    capture_bytes: int = 1 << 20


@dataclass
class CommandJob:
    """Programs of any language: ``steps`` run in order in one fresh working directory.

    ``files`` are written there first (relative paths inside it; a file whose
    content starts with ``#!`` is made executable).  The steps' environment
    is PATH (the worker's), HOME (the working directory), LANG=C.UTF-8, the
    sandbox's ``env``, then ``env``.  Running stops at the first step that
    does not succeed unless ``continue_on_failure``.
    """

    steps: Sequence[Step]
    files: Mapping[str, bytes | str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    continue_on_failure: bool = False
    priority: int = 1  # lower runs first
    cost: float = 0.0  # estimated seconds: among equal priorities, expensive jobs start first


@dataclass
class StepResult:
    """Outcome of one :class:`Step`."""

    #: ok | exit (non-zero exit) | signal | timeout (CPU or wall clock) | memory (failed at the memory cap, or
    #: killed by the kernel for memory) | output_limit (a file or the output hit the file-size limit) |
    #: error (could not start: binary missing, not executable) | aborted (the run was abandoned).
    status: str
    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes
    cpu: float
    wall: float
    reason: str  # one line for a person: "exit code 1", "CPU time limit 2 s exceeded", "g++: not found"


@dataclass
class CommandResult:
    """Outcome of a :class:`CommandJob`: ``steps`` holds the steps that ran."""

    status: str  # pass (every step ok) | fail | timeout (a step timed out)
    steps: list[StepResult]
    error: str | None
    cpu: float


Job = CallJob | ScriptJob | CommandJob
Result = CallResult | ScriptResult | CommandResult


def _check_command(job: CommandJob) -> None:
    """Refuse, before anything is sent, a command job that could not mean what it says."""
    for path, content in job.files.items():
        parts = str(path).split("/")
        if not path or path.startswith("/") or ".." in parts or "\0" in path or not path.strip("/"):
            raise SandboxError(f"command job file {path!r}: paths must be relative, inside the working directory")
        if not isinstance(content, (bytes, str)):
            raise SandboxError(f"command job file {path!r}: content must be bytes or str")
    for k, step in enumerate(job.steps):
        if not step.argv or not all(isinstance(a, str) and "\0" not in a for a in step.argv):
            raise SandboxError(f"command job step {k}: argv must be a non-empty list of strings without NUL")
        if step.cpu_limit <= 0 or (step.wall_limit is not None and step.wall_limit <= 0):
            raise SandboxError(f"command job step {k}: limits must be positive")
    for key, value in job.env.items():
        if not key or "=" in key or "\0" in key + value:
            raise SandboxError(f"command job env {key!r}: names must be non-empty without '=', no NUL anywhere")


@functools.lru_cache(maxsize=1)
def _bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox programs here, with the fix; None when it works."""
    exe = shutil.which("bwrap")
    if not exe:
        return "bubblewrap is not installed (install the `bubblewrap` package: apt-get install bubblewrap)"
    try:
        proc = subprocess.run(
            [exe, *_bwrap_args(1 << 20), sys.executable, "-c", "pass"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap ({exe}) does not start: {exc}"
    if proc.returncode == 0:
        return None
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    why = lines[-1] if lines else f"exit code {proc.returncode}"
    fix = (
        "run the harness as root, or allow unprivileged user namespaces "
        "(sysctl kernel.unprivileged_userns_clone=1; on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0)"
        if os.geteuid() != 0
        else "the OS refuses new namespaces to root too: inside a container, give it CAP_SYS_ADMIN or run it "
        "with seccomp/AppArmor profiles that allow unshare"
    )
    return f"bubblewrap ({exe}) is refused by the OS: {why}; to fix: {fix}"


def _bwrap_works() -> bool:
    return _bwrap_problem() is None


@functools.lru_cache(maxsize=8)
def _interpreter_paths(python: str) -> tuple[str, ...]:
    """Prefixes and import path of another interpreter (a managed environment's)."""
    probe = "import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]))"
    try:
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
        found = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise SandboxError(f"interpreter {python} does not run: {exc}") from None
    return (os.path.dirname(os.path.realpath(python)), os.path.dirname(os.path.abspath(python)), *found)


def _runtime_paths(python: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    """Folders the sandboxed interpreter must read: Python itself, its packages, the harness (and ``extra``)."""
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)), pkg_root}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    if python is not None:
        paths.update(p for p in _interpreter_paths(python) if p)
    paths.update(p for p in extra if p)
    return sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)})


def _hidden_ancestor(path: str) -> str | None:
    """The outermost folder above ``path`` that other users cannot enter, if any."""
    parts = path.strip("/").split("/")
    for k in range(1, len(parts) + 1):
        folder = "/" + "/".join(parts[:k])
        try:
            if not os.stat(folder).st_mode & 0o001:
                return folder
        except OSError:
            return None
    return None


def _runtime_readable_by_others() -> bool:
    """Whether a program run under an unprivileged uid can import what we import."""
    return all(_hidden_ancestor(p) is None for p in _runtime_paths())


def _bwrap_args(tmpfs_bytes: int, python: str | None = None, read_paths: Sequence[str] = ()) -> list[str]:
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    args += ["--perms", "1777", "--size", str(tmpfs_bytes), "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", str(tmpfs_bytes), "--tmpfs", "/dev/shm"]
    # Programs run under their own uid: folders that uid may not enter (say,
    # a Python installed under /root) are replaced by an empty tmpfs with
    # just the runtime bound back, and anything the tmpfs above hid returns.
    covered = ["/tmp", "/dev/shm"]
    runtime = _runtime_paths(python, read_paths)
    for path in runtime:
        hidden = _hidden_ancestor(path)
        if hidden is not None and hidden not in covered:
            args += ["--tmpfs", hidden]
            covered.append(hidden)
    made: set[str] = set()
    for path in runtime:
        base = next((c for c in covered if path.startswith(c + "/")), None)
        if base is None:
            continue  # visible as it is, or a tmpfs root itself (a script folder like /tmp)
        # Folders bubblewrap creates on the way are private unless made 0755.
        parts = path[len(base) :].strip("/").split("/")[:-1]
        for k in range(1, len(parts) + 1):
            folder = base + "/" + "/".join(parts[:k])
            if folder not in made:
                made.add(folder)
                args += ["--perms", "0755", "--dir", folder]
        args += ["--ro-bind", path, path]
    args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--die-with-parent", "--new-session", "--as-pid-1"]
    if os.geteuid() == 0:
        # Root keeps the capabilities it needs to give each program its own uid.
        args += ["--cap-add", "ALL"]
    else:
        args += ["--unshare-user"]
    return args


def isolation_mode(settings: SandboxSettings | None = None) -> str:
    """``bwrap`` or ``process``: what this machine gives untrusted programs.

    ``SandboxSettings.isolation`` ``auto`` defers to ``HARNESS_ISOLATION``
    (:func:`harness.settings.current`); ``auto`` there too means bubblewrap
    when it works, else process isolation.  ``bwrap`` asked for but not
    working is a :class:`SandboxError` that says how to fix it.
    """
    wanted = (settings or SandboxSettings()).isolation
    if wanted == "auto":
        wanted = current_settings().isolation
    if wanted not in ("auto", "bwrap", "process"):
        raise SandboxError(f"unknown sandbox isolation {wanted!r}; use auto, bwrap or process")
    if wanted == "process":
        return "process"
    problem = _bwrap_problem()
    if problem is None:
        return "bwrap"
    if wanted == "bwrap":
        raise SandboxError(
            f"bwrap isolation was requested but {problem} (or accept weaker isolation: --isolation process)"
        )
    return "process"


class _Worker(protocol.Sender):
    """One worker process and the pipes to it."""

    def __init__(self, index: int, settings: SandboxSettings, mode: str, spawner: ThreadPoolExecutor) -> None:
        self.index = index
        # Worker processes are started from one long-lived thread: bubblewrap's
        # --die-with-parent follows the *thread* that spawned it, and the
        # threads that run jobs end with each run.
        self.spawner = spawner
        self.settings = settings
        self.mode = mode
        self.known_inputs: set[str] = set()
        self.send_lock = threading.Lock()
        self._tmp: str | None = None
        self._errlog: Any = None
        self._lease: tuple[int, int] | None = None
        #: Local workers are never lost or retired (a Ray worker's actor can be: see ray_executor).
        self.lost = False
        self.retired = False
        # Per-run figures (Sandbox.stats adds them up).
        self.busy, self.last_done, self.frames, self.bytes_in, self.judge = 0.0, 0.0, 0, 0, 0.0
        self.proc = spawner.submit(self._start).result()

    @property
    def program_uid(self) -> int | None:
        """The uid this worker's programs run under (None: the harness's own)."""
        return self._lease[0] if self._lease is not None else None

    def _start(self) -> subprocess.Popen[bytes]:
        s = self.settings
        if self.mode == "bwrap":
            root = f"/tmp/harness-w{self.index}"
        else:
            self._tmp = tempfile.mkdtemp(prefix=f"harness-w{self.index}-")
            os.chmod(self._tmp, 0o711)  # the program uid must reach its working directory inside
            root = os.path.join(self._tmp, "work")
        cfg = {
            "index": self.index,
            "uid": self._uid(),
            "command_uid": self._command_uid(),
            "private_tmp": self.mode == "bwrap",
            "program_env": [list(kv) for kv in s.env],
            "workdir_root": root,
            "memory": s.memory_bytes,
            "file_size": s.file_size_bytes,
            "capture": s.capture_bytes,
            "max_output": s.max_output_bytes,
            "nproc": s.max_processes,
            "wall_factor": s.wall_factor,
            "preload": _PRELOAD + [m for m in s.preload if m not in _PRELOAD],
        }
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        script = os.path.join(pkg_root, "harness", "execution", "worker.py")
        cmd = [s.python or sys.executable, script, json.dumps(cfg)]
        if self.mode == "bwrap":
            cmd = [shutil.which("bwrap") or "bwrap", *_bwrap_args(s.tmpfs_bytes, s.python, s.read_paths), *cmd]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": pkg_root,
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONHASHSEED": "0",
            "HOME": "/tmp",
            # The worker reads its own copy (it must not import the harness's settings).
            **({"HARNESS_TRACE": "1"} if current_settings().trace else {}),
            "LANG": "C.UTF-8",
        }
        for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(dict(s.env))
        self._errlog = None if current_settings().debug else tempfile.TemporaryFile()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errlog, env=env, cwd="/"
        )
        assert proc.stdin is not None and proc.stdout is not None
        self.out_fd = proc.stdout.fileno()
        _wide_pipe(self.out_fd)
        self.in_fd = proc.stdin.fileno()
        return proc

    def handshake(self) -> None:
        """Wait for the worker's greeting (workers start in parallel, greet in turn)."""
        try:
            hello = protocol.read_frame(self.out_fd)
        except (OSError, protocol.ProtocolError):
            hello = None
        errlog, self._errlog = self._errlog, None
        if hello is None or hello[0].get("ev") != "hello":
            self.proc.kill()
            self.proc.wait()
            why = ""
            if errlog is not None:
                errlog.seek(0)
                lines = errlog.read()[-2000:].decode(errors="replace").strip().splitlines()
                why = lines[-1] if lines else ""
            raise SandboxError(f"sandbox worker failed to start ({self.mode} isolation): {why or 'no output'}")
        if errlog is not None:
            errlog.close()  # later worker output is discarded

    def _command_uid(self) -> int | None:
        # As root, each worker's programs get a uid of their own (no signals
        # to the worker, the harness or other workers).
        if os.geteuid() != 0:
            return None
        if self._lease is None:
            self._lease = _lease_uid()
        return self._lease[0]

    def _uid(self) -> int | None:
        # Python programs run in a copy of the worker's interpreter: without
        # bubblewrap (which binds the runtime back) their uid must be able to
        # read the Python installation.  Command steps exec their own binary,
        # so they get the uid regardless.
        if self.mode != "bwrap" and not _runtime_readable_by_others():
            return None
        return self._command_uid()

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        with self.send_lock:
            protocol.write_frame(self.in_fd, header, payload)

    def send_inputs(self, key: str, make: Callable[[], bytes]) -> None:
        """Hand the worker an inputs payload it keeps under ``key``."""
        self.send({"op": "inputs", "key": key}, make())

    def recv(self) -> tuple[dict[str, Any], bytes] | None:
        try:
            return protocol.read_frame(self.out_fd)
        except (OSError, protocol.ProtocolError):
            return None

    def restart(self) -> bool:
        """Start a new worker process in place of a dead one; ``False``: this machine is never lost."""
        self.close(release=False)  # the new process keeps this worker's uid
        self.known_inputs.clear()
        self.proc = self.spawner.submit(self._start).result()
        self.handshake()
        return False

    def close(self, release: bool = True) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if release and self._lease is not None:
            os.close(self._lease[1])  # the worker is gone, and so are its programs (swept at exit)
            self._lease = None


class _JobState:
    def __init__(self, index: int, job: Job) -> None:
        self.index = index
        self.job: Any = job  # a CallJob unless ``single``
        #: Script and command jobs: one unit, never split; their result arrives whole.
        self.single = not isinstance(job, CallJob)
        self.costs: list[float] = [float(job.cost)] if self.single else job.costs  # type: ignore[union-attr]
        self.n = 1 if self.single else len(job.limits)  # type: ignore[union-attr]
        self.result: ScriptResult | CommandResult | None = None
        self.ok: dict[int, bool] = {}
        self.reasons: dict[int, str] = {}
        self.times: dict[int, float] = {}
        self.outputs: dict[int, Any] = {}
        self.first_fail: int | None = None
        self.units: set[_Unit] = set()  # units of this job not yet gone (queued or running)
        self.pending = 0
        self.timed_out = False
        self.over_budget = False  # timed out by the whole budget (not an input's limit, not loading)
        self.runs = 1
        self.error: str | None = None
        self.cpu = 0.0
        self.exec_counted = False
        self.finished = False
        self.reported = False  # its result went to the run's caller
        self.vm: dict[int, int] = {}
        self.losses = 0  # times a worker running this job was lost with its machine (Ray)
        self.input_runs: dict[int, int] = {}  # input -> runs that timed out on it (see INPUT_NEAR)

    def near_budget(self) -> bool:
        """Whether this run, stopped by the whole budget with no input failed, would have ended near it."""
        if self.single or not self.over_budget or self.error is not None or self.first_fail is not None:
            return False
        done = [i for i, ok in self.ok.items() if ok]
        expected_done, expected_all = sum(self.costs[i] for i in done), sum(self.costs)
        if expected_done <= 0 or expected_all <= 0:
            return False  # nothing finished: no rate to project from
        need = sum(self.times[i] for i in done) / expected_done * expected_all
        return bool(need <= self.job.budget * BUDGET_NEAR)

    def again(self) -> None:
        """Forget this run's records: the job runs again from its first input."""
        self.runs += 1
        self.ok, self.reasons, self.times, self.outputs, self.vm = {}, {}, {}, {}, {}
        self.first_fail, self.timed_out, self.over_budget = None, False, False
        self.cpu, self.exec_counted = 0.0, False
        self.input_runs = {}

    def forget(self) -> None:
        """Drop the per-input records of a reported job (the caller keeps what it needs)."""
        self.ok, self.reasons, self.times, self.outputs, self.vm = {}, {}, {}, {}, {}
        self.costs, self.units, self.result = [], set(), None

    def est(self, lo: int, hi: int) -> float:
        costs = self.costs
        return sum(costs[lo:hi])

    def slowdown(self) -> float:
        done = [i for i in self.times]
        gt = sum(self.costs[i] for i in done)
        used = sum(self.times[i] for i in done)
        return max(1.0, used / gt) if gt > 1e-6 else 1.0


class _Unit:
    _ids = itertools.count(1)

    def __init__(self, state: _JobState, start: int, end: int) -> None:
        self.id = next(self._ids)
        self.state = state
        self.start = start
        self.end = end
        self.next = start
        self.worker: _Worker | None = None
        self.cancelled = False
        state.units.add(self)


class _Scheduler:
    """Assigns units to workers; splits long units when a worker idles."""

    def __init__(self, states: list[_JobState], split_min: float) -> None:
        self.cond = threading.Condition()
        self.queue: list[tuple[int, float, int, _Unit]] = []
        self.active: set[_Unit] = set()
        self.split_min = split_min
        self.remaining = len(states)
        self.just_finished: list[_JobState] = []
        self.stopped = False
        self.last_pop = 0.0  # when a unit last left the queue (what follows is the run's tail)
        self.popped = 0
        self.on_finished: Callable[[_JobState], None] = lambda st: None
        for st in states:
            if st.n == 0:
                st.finished = True
                self.remaining -= 1
                continue
            self._push(_Unit(st, 0, st.n))

    def _push(self, unit: _Unit) -> None:
        unit.state.pending += 1
        cost = unit.state.est(unit.start, unit.end)
        heapq.heappush(self.queue, (unit.state.job.priority, -cost, unit.id, unit))

    def add(self, states: list[_JobState]) -> None:
        """Schedule more jobs while the run is in progress."""
        with self.cond:
            for st in states:
                self.remaining += 1
                if st.n == 0:
                    st.finished = True
                    self.remaining -= 1
                    continue
                self._push(_Unit(st, 0, st.n))
            self.cond.notify_all()

    def acquire(self, worker: _Worker) -> _Unit | None:
        """The next unit for ``worker``; ``_FLUSH`` when finished jobs await reporting."""
        with self.cond:
            while True:
                while self.queue:
                    unit = heapq.heappop(self.queue)[-1]
                    if unit.cancelled:
                        self._unit_gone(unit)
                        continue
                    unit.worker = worker
                    self.active.add(unit)
                    self.last_pop = time.monotonic()
                    self.popped += 1
                    return unit
                if self.stopped:
                    return None
                if self.just_finished:
                    return _FLUSH
                if self.remaining <= 0:
                    return None
                stolen = self._steal(worker)
                if stolen is not None:
                    self.popped += 1
                    return stolen
                self.cond.wait(0.05)

    def stop(self) -> None:
        """Abandon the run (an error happened): abort every running unit."""
        with self.cond:
            self.stopped = True
            for unit in list(self.active):
                unit.cancelled = True
                if unit.worker is not None:
                    unit.worker.try_send({"op": "abort", "unit": unit.id})
            self.cond.notify_all()

    def _steal(self, worker: _Worker) -> _Unit | None:
        best, best_cost = None, self.split_min
        for unit in self.active:
            if unit.cancelled or unit.worker is worker or unit.state.single:
                continue
            st = unit.state
            lo = unit.next + 1  # the input in progress stays where it is
            if unit.end - lo < 1:
                continue
            cost = st.est(unit.next, unit.end) * st.slowdown()
            if cost > best_cost:
                best, best_cost = unit, cost
        if best is None:
            return None
        st = best.state
        total = st.est(best.next, best.end)
        acc, split = 0.0, best.end - 1
        for i in range(best.next, best.end):
            acc += st.costs[i]
            if acc >= total / 2:
                split = i + 1
                break
        split = max(best.next + 1, min(split, best.end - 1))
        new = _Unit(st, split, best.end)
        best.end = split
        if best.worker is not None:
            best.worker.try_send({"op": "set_end", "unit": best.id, "end": split})
        st.pending += 1
        new.worker = worker
        self.active.add(new)
        return new

    def _unit_gone(self, unit: _Unit) -> None:
        st = unit.state
        st.units.discard(unit)
        st.pending -= 1
        self.active.discard(unit)
        if st.pending == 0 and not st.finished:
            if not self.stopped and st.runs < BUDGET_RUNS and st.near_budget():
                st.again()
                self._push(_Unit(st, 0, st.n))
                self.cond.notify_all()
                return
            st.finished = True
            self.just_finished.append(st)
            self.cond.notify_all()

    def flush_finished(self) -> None:
        """Report finished jobs (outside the lock: callbacks may add jobs)."""
        while True:
            with self.cond:
                if not self.just_finished:
                    return
                st = self.just_finished.pop(0)
            self.on_finished(st)
            with self.cond:
                self.remaining -= 1
                self.cond.notify_all()

    # ---------------------------------------------------------- events
    def record_many(self, unit: _Unit, records: list[tuple[int, bool, float, str | None, Any]]) -> None:
        """Record judged outputs ``(input, ok, cpu, reason, output)`` of a unit."""
        with self.cond:
            for i, ok, cpu, reason, output in records:
                self._record(unit, i, ok, cpu, reason, output)

    def _record(self, unit: _Unit, i: int, ok: bool, cpu: float, reason: str | None, output: Any) -> None:
        st = unit.state
        if i >= unit.next:
            unit.next = i + 1
        if i in st.ok:
            return  # a duplicate from a unit that was split under it
        if not ok and reason == "time limit exceeded" and self._time_again(st, i, i, i + 1):
            return  # it finished, just over its limit: it runs again by itself
        st.ok[i] = ok
        st.times[i] = cpu
        st.cpu += cpu
        if st.job.keep_outputs:
            st.outputs[i] = output
        if not ok:
            st.reasons[i] = _over_limit(st, i) if reason == "time limit exceeded" else reason or "wrong output"
            if st.first_fail is None or i < st.first_fail:
                st.first_fail = i
                if st.job.fast:
                    # Only a new first failure cuts anything: past an earlier one everything is cut already.
                    self._prune(st, i)
        if st.cpu > st.job.budget and not st.timed_out:
            st.timed_out = st.over_budget = True
            self._prune(st, -1)

    def _prune(self, st: _JobState, fail: int) -> None:
        """Stop work past a failure at ``fail`` (``-1``: stop everything)."""
        for unit in list(st.units):  # this job's units only (a scan of the whole queue grew with the run)
            if unit.cancelled:
                continue
            if unit.start > fail:
                unit.cancelled = True
                if unit.worker is not None:
                    unit.worker.try_send({"op": "abort", "unit": unit.id})
            elif unit.end > fail + 1:
                unit.end = fail + 1
                if unit.worker is not None:
                    unit.worker.try_send({"op": "set_end", "unit": unit.id, "end": fail + 1})

    def finish_single(self, unit: _Unit, result: ScriptResult | CommandResult) -> None:
        """A script or command unit ended with ``result``."""
        with self.cond:
            st = unit.state
            if st.result is None:
                st.result = result
                st.cpu = result.cpu
            self._unit_gone(unit)

    def requeue_single(self, unit: _Unit) -> None:
        """A script or command unit whose worker was lost: run it again elsewhere (a few times at most)."""
        with self.cond:
            st = unit.state
            st.losses += 1
            if not unit.cancelled and st.result is None:
                if st.losses <= MAX_LOSSES:
                    self._push(_Unit(st, 0, 1))
                elif isinstance(st.job, ScriptJob):
                    st.result = ScriptResult("fail", "sandbox worker died: its machine was lost, again and again",
                                             "", 0.0)  # fmt: skip
                else:
                    st.result = CommandResult("fail", [], "sandbox worker died: its machine was lost, again and again",
                                              0.0)  # fmt: skip
            self._unit_gone(unit)

    def exec_done(self, unit: _Unit, cpu: float) -> None:
        with self.cond:
            st = unit.state
            if not st.exec_counted:
                st.exec_counted = True
                st.cpu += cpu

    def finish(self, unit: _Unit, header: dict[str, Any]) -> None:
        with self.cond:
            st = unit.state
            reason = header.get("reason")
            i = int(header.get("i", unit.next))
            if not unit.cancelled:
                if reason in ("exec_error", "exec_timeout") or (
                    reason == "crashed" and unit.next == unit.start and "ready_seen" not in header
                ):
                    if reason == "exec_timeout":
                        st.timed_out = True
                    st.error = st.error or str(header.get("error") or reason)
                    self._prune(st, -1)
                elif reason == "budget":
                    st.timed_out = st.over_budget = True
                    self._prune(st, -1)
                elif reason == "lost":
                    st.losses += 1
                    if st.losses > MAX_LOSSES:
                        self._record_locked(st, unit, i, "sandbox worker died: its machine was lost, again and again")
                    elif unit.next < unit.end:
                        self._push(_Unit(st, unit.next, unit.end))
                elif reason == "timeout" and i < unit.end and self._time_again(
                    st, i, min(int(header.get("next", unit.next)), i), unit.end  # with what it had not sent
                ):
                    pass  # it runs again
                elif reason in ("timeout", "crashed", "output_too_large", "protocol", "worker_died") and i < unit.end:
                    why = {
                        "timeout": _over_limit(st, i),
                        "crashed": f"program died ({_death(header)})",
                    }.get(reason, str(reason).replace("_", " "))
                    self._record_locked(st, unit, i, why)
                    # Results computed before the failure but not yet sent
                    # died with the program: those inputs run again.
                    lo = min(int(header.get("next", unit.next)), i)
                    if lo < i and not st.timed_out:
                        self._push(_Unit(st, lo, i))
                    if not st.job.fast and i + 1 < unit.end and not st.timed_out:
                        self._push(_Unit(st, i + 1, unit.end))
                elif unit.next < unit.end and reason in ("done", "shrunk"):
                    if unit.next > unit.start or reason == "shrunk":
                        # Stopped early (its end moved, or results were still
                        # in its buffer): the rest runs again.
                        self._push(_Unit(st, unit.next, unit.end))
                    else:
                        # Ended without producing anything: never retried.
                        for j in range(unit.next, unit.end):
                            self._record_locked(st, unit, j, "no output")
            self._unit_gone(unit)

    def _time_again(self, st: _JobState, i: int, lo: int, hi: int) -> bool:
        """Input ``i`` ran out its limit: run inputs ``lo:hi`` again when that limit is near its expected cost
        and it has not timed out BUDGET_RUNS times; False: the timeout stands."""
        runs = st.input_runs.get(i, 0) + 1
        st.input_runs[i] = runs
        if self.stopped or st.timed_out or runs >= BUDGET_RUNS or st.job.limits[i] > INPUT_NEAR * st.costs[i]:
            return False
        self._push(_Unit(st, lo, hi))
        self.cond.notify_all()
        return True

    def _record_locked(self, st: _JobState, unit: _Unit, i: int, why: str) -> None:
        if i in st.ok:
            return
        st.ok[i] = False
        st.reasons[i] = why
        if st.first_fail is None or i < st.first_fail:
            st.first_fail = i
            if st.job.fast:
                self._prune(st, i)


_FLUSH = object.__new__(_Unit)


def _over_limit(st: _JobState, i: int) -> str:
    """The reason of input ``i``'s timeout that stands, with the runs it took when there were more."""
    runs = st.input_runs.get(i, 0)
    return "time limit exceeded" + (f" in each of {runs} runs" if runs > 1 else "")


def _death(header: dict[str, Any]) -> str:
    if "signal" in header:
        return f"signal {header['signal']}"
    return f"exit code {header.get('exit')}"


@dataclass
class SandboxStats:
    """Where a sandbox's time went (cumulative over its runs; see ``tests/perf/eval_speed.py``)."""

    runs: int = 0
    jobs: int = 0
    units: int = 0  # call units (a job's inputs, or a stolen part of them) and script/command jobs run
    frames: int = 0  # result frames received from workers
    bytes_in: int = 0  # encoded outputs received from workers
    judge_seconds: float = 0.0  # this process's CPU judging outputs (decoding, comparing)
    busy_seconds: float = 0.0  # worker-seconds with a unit in progress
    wall_seconds: float = 0.0  # the runs' wall time
    tail_seconds: float = 0.0  # from the last unit taken from the queue to the end of each run, summed
    tail_idle_seconds: float = 0.0  # worker-seconds idle in those tails
    lost_workers: int = 0  # workers lost with their machine (Ray) and replaced or retired


class Sandbox:
    """A pool of sandboxed workers; create once per process and reuse.

    With ``SandboxSettings.executor`` ``ray`` the workers are Ray actors on
    the nodes of a cluster (:mod:`harness.execution.ray_executor`), started
    here at once so that :attr:`mode` is what every node gives.
    """

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self.executor = self.settings.resolved_executor()
        self._workers: list[Any] = []
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.stats = SandboxStats()
        self.done_jobs = 0  # jobs reported so far, over all runs (a live progress figure)
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
        self._ray: Any = None  # ray_executor state: (joined the cluster here, shared inputs)
        if self.executor == "ray":
            self.mode = self._start_ray()
        else:
            self.mode = isolation_mode(self.settings)

    def _start_ray(self) -> str:
        from harness.execution import ray_executor

        joined = ray_executor.connect(self.settings.resolved_ray_address())
        inputs = ray_executor.RemoteInputs()
        self._ray = (joined, inputs)
        try:
            workers, mode = ray_executor.start_workers(self.settings, inputs)
        except BaseException:
            self._disconnect()
            raise
        self._workers = workers
        self.settings = ray_executor.settings_for(self.settings, len(workers))
        return mode

    def _disconnect(self) -> None:
        if self._ray is not None:
            joined, inputs = self._ray
            inputs.clear()
            self._ray = None
            if joined:
                import ray

                ray.shutdown()

    def describe(self) -> str:
        """Where the workers run, for a person: ``2 local workers`` or ``8 workers on 2 Ray nodes``."""
        if self.executor == "ray":
            from harness.execution import ray_executor

            return "Ray: " + ray_executor.describe([w for w in self._workers if not w.retired])
        return f"{self.settings.worker_count()} local workers"

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def program_uids(self) -> list[int]:
        """The uids this sandbox's programs run under (empty when programs share the harness's uid)."""
        return [uid for w in self._workers if (uid := w.program_uid) is not None]

    def _ensure_workers(self) -> list[Any]:
        with self._lock:
            if self.executor == "ray":
                self._workers = [w for w in self._workers if not w.retired]
                if not self._workers:
                    raise SandboxError("every sandbox worker was lost with its Ray node; rerun when the cluster has "
                                       "room again (finished verdicts are kept)")  # fmt: skip
                return self._workers
            if not self._workers:
                started: list[_Worker] = []
                try:
                    for k in range(self.settings.worker_count()):
                        started.append(_Worker(k, self.settings, self.mode, self._spawner))
                    for w in started:
                        w.handshake()
                except (OSError, SandboxError) as exc:
                    for w in started:
                        w.close()
                    raise SandboxError(f"could not start sandbox workers: {exc}") from exc
                self._workers = started
            return self._workers

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        with self._lock:
            for w in self._workers:
                w.close()
            self._workers = []
            self._disconnect()

    # ------------------------------------------------------------- runs
    def run(
        self,
        jobs: Sequence[Job],
        on_done: Callable[[int, Any], Sequence[Job] | None] | None = None,
        keep: bool = True,
    ) -> list[Result]:
        """Run call, script and command jobs (mixed) in parallel; results come back in job order.

        One priority queue serves every kind: lower ``priority`` first, then
        higher estimated cost first.  Call jobs are split across idle workers
        when long (work stealing); script and command jobs are single units.
        ``on_done(index, result)`` is called as each job finishes (from a
        worker thread, one call at a time) and may return further jobs,
        which join the same run (their indices follow).  With ``keep`` False
        results only reach ``on_done`` and are forgotten after it (memory
        stays flat however many jobs stream through); the list returned is empty.
        """
        for job in jobs:
            _check_job(job)
        workers = self._ensure_workers()
        started = time.monotonic()
        first = [_JobState(k, job) for k, job in enumerate(jobs)]
        sched = _Scheduler(first, self.settings.split_min_seconds)
        # Every job's state, for the list returned; a streaming run keeps none (a reported job's state
        # goes with its report, the scheduler holds the unfinished ones).
        states = list(first) if keep else []
        count = [len(jobs)]  # jobs in this run so far: the next one's index
        results: dict[int, Result] = {}
        report_lock = threading.RLock()  # report() recurses for jobs with no inputs
        users: dict[str, int] = {}  # inputs key -> unfinished jobs using it (release_inputs jobs only)
        for job in jobs:
            if isinstance(job, CallJob) and job.release_inputs:
                users[job.inputs_key] = users.get(job.inputs_key, 0) + 1
        errors: list[BaseException] = []

        def report(st: _JobState) -> None:
            # Called once per job, from the worker thread that finished it.
            with report_lock:
                if st.reported:
                    return
                st.reported = True
                if sched.stopped:
                    # The run was abandoned (an error, its callback's own included): a job still running
                    # then was aborted, and what it leaves is no result (a suite cut short reads as a fail).
                    return
                self.done_jobs += 1
                result = _result(st)
                if keep:
                    results[st.index] = result
                more = on_done(st.index, result) if on_done is not None else None
                if more:
                    for job in more:
                        _check_job(job)
                    new = [_JobState(count[0] + k, job) for k, job in enumerate(more)]
                    count[0] += len(new)
                    for st2 in new:
                        if not st2.single and st2.job.release_inputs:
                            users[st2.job.inputs_key] = users.get(st2.job.inputs_key, 0) + 1
                    if keep:
                        states.extend(new)
                    sched.add(new)
                    for st2 in new:
                        if st2.finished:
                            report(st2)
                if not st.single and st.job.release_inputs:
                    key = st.job.inputs_key
                    users[key] -= 1
                    if users[key] == 0:
                        del users[key]
                        self._forget_inputs(workers, key)
                if not keep:
                    st.forget()

        sched.on_finished = report
        alive = [len(workers)]

        def loop(worker: Any) -> None:
            try:
                while not worker.retired:
                    sched.flush_finished()
                    unit = sched.acquire(worker)
                    if unit is None:
                        return
                    if unit is _FLUSH:
                        continue
                    t0 = time.monotonic()
                    if unit.state.single:
                        self._run_single(worker, unit, sched)
                    else:
                        self._run_unit(worker, unit, sched)
                    worker.busy += time.monotonic() - t0
                    worker.last_done = time.monotonic()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(exc)
                sched.stop()
            finally:
                with sched.cond:
                    alive[0] -= 1
                    if alive[0] == 0 and sched.remaining > 0 and not sched.stopped:
                        # Every worker was lost with its machine and none could be replaced.
                        errors.append(SandboxError("every sandbox worker was lost with its Ray node; rerun when the "
                                                   "cluster has room again (finished verdicts are kept)"))  # fmt: skip
                        sched.stopped = True
                        sched.cond.notify_all()

        for st in first:
            if st.finished:
                report(st)
        for w in workers:
            w.busy, w.last_done, w.frames, w.bytes_in, w.judge = 0.0, started, 0, 0, 0.0
        threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._account(workers, sched, count[0], started)
        if errors:
            if isinstance(errors[0], Exception) and not isinstance(errors[0], OSError):
                raise errors[0]  # an error of the caller's callback, e.g. a HarnessError
            raise SandboxError(f"sandbox failure: {errors[0]!r}") from errors[0]
        if self._ray is not None:
            self._ray[1].clear()  # the object store's copies of this run's inputs (the actors keep theirs)
        if not keep:
            return []
        return [results[k] if k in results else _result(st) for k, st in enumerate(states)]

    def _account(self, workers: Sequence[Any], sched: _Scheduler, jobs: int, started: float) -> None:
        end = time.monotonic()
        last_pop = sched.last_pop or started
        with self._stats_lock:
            st = self.stats
            st.runs += 1
            st.jobs += jobs
            st.units += sched.popped
            st.wall_seconds += end - started
            st.tail_seconds += max(0.0, end - last_pop)
            for w in workers:
                st.busy_seconds += w.busy
                st.frames += w.frames
                st.bytes_in += w.bytes_in
                st.judge_seconds += w.judge
                st.tail_idle_seconds += max(0.0, end - max(w.last_done, last_pop))

    # ------------------------------------------------------------ calls
    def run_calls(
        self,
        jobs: Sequence[CallJob],
        on_done: Callable[[int, CallResult], Sequence[CallJob] | None] | None = None,
    ) -> list[CallResult]:
        """Run function-call jobs in parallel; results come back in job order.

        ``on_done(index, result)`` is called as each job finishes and may
        return further jobs, which join the same run (their indices follow).
        """
        return cast("list[CallResult]", self.run(jobs, on_done))

    def _forget_inputs(self, workers: Sequence[Any], key: str) -> None:
        if self._ray is not None:
            self._ray[1].drop(key)
        for w in workers:
            if key in w.known_inputs:
                w.known_inputs.discard(key)
                try:
                    w.send({"op": "drop_inputs", "key": key})
                except OSError:
                    pass  # a dead worker forgets everything anyway

    def _run_unit(self, worker: _Worker, unit: _Unit, sched: _Scheduler) -> None:
        job = unit.state.job
        header = {
            "op": "call",
            "unit": unit.id,
            "entry": job.entry_point,
            "inputs": job.inputs_key,
            "start": unit.start,
            "end": unit.end,
            "limits": job.limits[unit.start : unit.end],
            "exec_limit": job.exec_limit,
            "budget": job.budget,
            "iterate_opaque": job.iterate_opaque,
            "stop_on_error": job.fast,
            "prelude": job.prelude,
            "memory_free": job.memory_free,
            "footprint": job.footprint,
        }
        if job.footprint:
            header["resets"] = [i for i in job.resets if unit.start <= i < unit.end]
        try:
            if job.inputs_key not in worker.known_inputs:
                worker.send_inputs(job.inputs_key, job.inputs_payload)
                worker.known_inputs.add(job.inputs_key)
            with sched.cond:
                if unit.cancelled:
                    sched._unit_gone(unit)
                    return
                header["end"] = unit.end
                header["limits"] = job.limits[unit.start : unit.end]
                header["slow"] = [i for i in range(unit.start, unit.end) if job.costs[i] >= _SLOW_INPUT]
            worker.send(header, job.code.encode("utf-8", "surrogatepass"))
        except OSError:
            self._worker_died(worker, unit, sched)
            return
        ready = False
        while True:
            frame = worker.recv()
            if frame is None:
                self._worker_died(worker, unit, sched)
                return
            ev, payload = frame
            if ev.get("unit") != unit.id:
                continue
            kind = ev.get("ev")
            worker.frames += 1
            worker.bytes_in += len(payload)
            if kind == "ready":
                ready = True
                sched.exec_done(unit, float(ev.get("cpu", 0.0)))
            elif kind == "outs":
                records = []
                offset = 0
                items = ev["items"]
                view = memoryview(payload)
                c0 = time.thread_time()
                for item in items:
                    i, what, cpu, size = int(item[0]), item[1], float(item[2]), int(item[3])
                    if len(items) == 1:
                        data: Any = payload
                    else:
                        data = bytes(view[offset : offset + size])  # one copy (a bytearray slice is two)
                    offset += size
                    if what == "err":
                        msg = item[4] if len(item) > 4 else ""
                        records.append((i, False, cpu, f"raised {msg}", None))
                    elif cpu > job.limits[i]:
                        records.append((i, False, cpu, "time limit exceeded", None))
                    else:
                        ok, reason, value = self._judge(job, i, data)
                        records.append((i, ok, cpu, reason, value))
                        if job.footprint and len(item) > 4:
                            unit.state.vm[i] = int(item[4])
                worker.judge += time.thread_time() - c0
                sched.record_many(unit, records)
            elif kind == "end":
                if ready:
                    ev["ready_seen"] = True
                sched.finish(unit, ev)
                return

    @staticmethod
    def _judge(job: CallJob, i: int, payload: bytes) -> tuple[bool, str | None, Any]:
        """Apply the job's trusted check to an encoded output (here, never in the sandbox)."""
        if job.check is None:
            return True, None, payload
        try:
            ok = bool(job.check(i, payload))
        except Exception as exc:  # noqa: BLE001 - a check on hostile data may raise
            return False, f"comparison raised {type(exc).__name__}", None
        return ok, None if ok else "wrong output", payload if job.keep_outputs else None

    def _worker_died(self, worker: _Worker, unit: _Unit, sched: _Scheduler) -> None:
        if worker.lost:
            # The worker's machine (a Ray node) is gone: not the program's doing, so what the
            # unit had not finished runs again on another worker; then a replacement, if there is room.
            sched.finish(unit, {"reason": "lost", "i": unit.next, "ready_seen": True})
            self._replace(worker)
            return
        if self._restart(worker):
            sched.finish(unit, {"reason": "lost", "i": unit.next, "ready_seen": True})  # as above
            return
        sched.finish(unit, {"reason": "worker_died", "i": unit.next, "ready_seen": True})

    def _restart(self, worker: _Worker) -> bool:
        """Restart a dead worker in place; ``True`` when its machine turned out to be going down (a Ray node
        whose worker process died first): then it is replaced already and its work was not the program's."""
        if worker.restart():
            with self._stats_lock:
                self.stats.lost_workers += 1
            return True
        return False

    def _replace(self, worker: _Worker) -> None:
        with self._stats_lock:
            self.stats.lost_workers += 1
        worker.restart()

    # ---------------------------------------------------------- scripts
    def run_scripts(
        self,
        jobs: Sequence[ScriptJob],
        on_done: Callable[[int, ScriptResult], Sequence[ScriptJob] | None] | None = None,
    ) -> list[ScriptResult]:
        """Run whole programs in parallel; results come back in job order.

        ``on_done(index, result)`` is called as each program finishes (see :meth:`run`).
        """
        return cast("list[ScriptResult]", self.run(jobs, on_done))

    def run_commands(
        self,
        jobs: Sequence[CommandJob],
        on_done: Callable[[int, CommandResult], Sequence[CommandJob] | None] | None = None,
    ) -> list[CommandResult]:
        """Run command jobs in parallel; results come back in job order (see :meth:`run`)."""
        return cast("list[CommandResult]", self.run(jobs, on_done))

    def _run_single(self, worker: _Worker, unit: _Unit, sched: _Scheduler) -> None:
        with sched.cond:
            if unit.cancelled:
                sched._unit_gone(unit)
                return
        job = unit.state.job
        result: ScriptResult | CommandResult | None
        if isinstance(job, ScriptJob):
            result = self._run_script(worker, job, unit.id)
        else:
            result = self._run_command(worker, job, unit.id)
        if result is None:  # the worker died
            if worker.lost or self._restart(worker):  # with its machine: the job runs again elsewhere
                sched.requeue_single(unit)
                if worker.lost:
                    self._replace(worker)
                return
            result = (ScriptResult("fail", "sandbox worker died", "", 0.0) if isinstance(job, ScriptJob)
                      else CommandResult("fail", [], "sandbox worker died", 0.0))  # fmt: skip
        sched.finish_single(unit, result)

    def _run_script(self, worker: _Worker, job: ScriptJob, unit: int) -> ScriptResult | None:
        """The script's result; None when the worker died or was lost (see :meth:`_run_single`)."""
        header = {"op": "script", "unit": unit, "exec_limit": job.cpu_limit, "prelude": job.prelude}
        try:
            worker.send(header, job.code.encode("utf-8", "surrogatepass"))
        except OSError:
            return None
        while True:
            frame = worker.recv()
            if frame is None:
                return None
            ev, _ = frame
            if ev.get("unit") != unit or ev.get("ev") != "end":
                continue
            reason = ev.get("reason")
            cpu = float(ev.get("cpu", 0.0))
            stdout = str(ev.get("stdout", ""))
            if reason in ("timeout", "exec_timeout"):
                return ScriptResult("timeout", "time limit exceeded", stdout, cpu)
            if reason == "done" and ev.get("status") == "ok":
                return ScriptResult("pass", None, stdout, cpu)
            if reason == "done":
                return ScriptResult("fail", str(ev.get("msg", "")), stdout, cpu)
            return ScriptResult("fail", f"{reason} ({_death(ev)})", stdout, cpu)

    def _run_command(self, worker: _Worker, job: CommandJob, unit: int) -> CommandResult | None:
        s = self.settings
        blobs: list[bytes] = []
        files = []
        for path, content in job.files.items():
            data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else bytes(content)
            files.append([path, len(data), data.startswith(b"#!")])
            blobs.append(data)
        steps = []
        for step in job.steps:
            stdin = step.stdin.encode("utf-8", "surrogatepass") if isinstance(step.stdin, str) else bytes(step.stdin)
            blobs.append(stdin)
            wall = step.wall_limit if step.wall_limit is not None else step.cpu_limit * s.wall_factor + 1.0
            memory = s.memory_bytes if step.memory_bytes is None else step.memory_bytes
            steps.append({"argv": list(step.argv), "stdin": len(stdin), "cpu": step.cpu_limit, "wall": wall,
                          "memory": memory, "capture": step.capture_bytes})  # fmt: skip
        header = {"op": "command", "unit": unit, "files": files, "steps": steps, "env": dict(job.env),
                  "continue": job.continue_on_failure}  # fmt: skip
        try:
            worker.send(header, b"".join(blobs))
        except OSError:
            return None
        while True:
            frame = worker.recv()
            if frame is None:
                return None
            ev, payload = frame
            if ev.get("unit") == unit and ev.get("ev") == "end":
                return _command_result(job, ev, payload)


def _check_job(job: Job) -> None:
    if isinstance(job, CommandJob):
        _check_command(job)
    elif not isinstance(job, (CallJob, ScriptJob)):
        raise SandboxError(f"not a sandbox job: {type(job).__name__}")


def _command_result(job: CommandJob, ev: dict[str, Any], payload: bytes) -> CommandResult:
    """Decode a command job's ``end`` frame: per-step records, their stdout and stderr in the payload."""
    view = memoryview(payload)
    offset = 0
    steps: list[StepResult] = []
    for rec in ev.get("steps", []):
        out_size, err_size = int(rec.get("out", 0)), int(rec.get("err", 0))
        out = bytes(view[offset : offset + out_size])
        err = bytes(view[offset + out_size : offset + out_size + err_size])
        offset += out_size + err_size
        exit_code = rec.get("exit")
        sig = rec.get("signal")
        steps.append(
            StepResult(
                status=str(rec.get("status", "error")),
                exit_code=None if exit_code is None else int(exit_code),
                signal=None if sig is None else int(sig),
                stdout=out,
                stderr=err,
                cpu=float(rec.get("cpu", 0.0)),
                wall=float(rec.get("wall", 0.0)),
                reason=str(rec.get("reason", "")),
            )
        )
    cpu = sum(st.cpu for st in steps)
    error = ev.get("error")
    bad = next((k for k, st in enumerate(steps) if st.status != "ok"), None)
    if error is None and bad is None and len(steps) == len(job.steps):
        return CommandResult("pass", steps, None, cpu)
    if bad is not None:
        argv0 = os.path.basename(str(job.steps[bad].argv[0])) if bad < len(job.steps) else "?"
        reason = steps[bad].reason
        error = error or (f"step {bad + 1}: {reason}" if argv0 in reason else f"step {bad + 1} ({argv0}): {reason}")
    status = "timeout" if any(st.status == "timeout" for st in steps) else "fail"
    return CommandResult(status, steps, str(error or "not every step ran"), cpu)


def _result(st: _JobState) -> Result:
    if st.single:
        if st.result is not None:
            return st.result
        if isinstance(st.job, ScriptJob):
            return ScriptResult("fail", "not run", "", 0.0)
        return CommandResult("fail", [], "not run", 0.0)
    if st.timed_out:
        status = "timeout"
    elif st.error is not None:
        status = "fail"
    elif st.first_fail is not None:
        status = "fail"
    elif len(st.ok) == st.n and all(st.ok.values()):
        status = "pass"
    else:
        status = "fail"
    failed = sorted(i for i, ok in st.ok.items() if not ok)
    if st.job.fast and failed:
        failed = failed[:1]
    times = [st.times.get(i, 0.0) for i in range(st.n)]
    outputs = [st.outputs.get(i) for i in range(st.n)] if st.job.keep_outputs else []
    reasons = {i: st.reasons[i] for i in failed if i in st.reasons}
    if st.timed_out and st.over_budget:
        each = f" in each of {st.runs} runs" if st.runs > 1 else ""
        reasons[-1] = f"time budget of the whole suite ({st.job.budget:g} s of CPU) exceeded{each}"
    footprints = [st.vm.get(i, 0) for i in range(st.n)] if st.job.footprint else []
    return CallResult(status, failed, reasons, st.error, st.cpu, times, outputs, footprints, st.runs)


def encode_inputs(inputs: Sequence[Any]) -> bytes:
    """Encode a list of argument tuples for :class:`CallJob.inputs_payload`."""
    return codec.encode([list(args) for args in inputs])
