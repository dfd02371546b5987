"""The sandbox worker: a pre-started fork server that runs untrusted programs.

One worker process runs per parallel slot, inside bubblewrap when available.
It reads commands from stdin and answers on stdout (frames of
:mod:`harness.execution.protocol`).  For each program it forks a *runner*
from its warm interpreter (no interpreter start per program), which:

* becomes its own session and process group, moves to a fresh working
  directory, gets ``/dev/null`` as stdin and a capped file as stdout/stderr;
* gets resource limits (address space, file size, core dumps, processes) and,
  when the worker runs as root, a user id of its own so it cannot signal the
  worker, the harness or other runners;
* runs the job's *prelude* (trusted source the harness supplies, such as a
  benchmark's guard), then executes the program and streams each function
  result (tagged JSON, see :mod:`harness.execution.codec`) back through a
  pipe.

Command jobs (op ``command``: compilers and programs in any language) get
the same isolation: for each step the worker forks a child that becomes its
own session, gets the rlimits and the program uid, and execs the step's
``argv`` in the job's fresh working directory; the worker supervises the
step's whole process tree (CPU, wall clock) itself.

The worker measures each runner's CPU time through the kernel's per-process
CPU clock, enforces per-input CPU limits and a wall-clock safety limit, and
afterwards kills every process the program left behind and deletes what the
program's uid left in ``/tmp`` and ``/dev/shm``.  It never compares outputs:
the harness does that on decoded plain data.

This module imports only the standard library plus the two sibling modules,
and must stay importable without the rest of the harness.
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import gc
import json
import mmap
import os
import resource
import selectors
import shutil
import signal
import stat as stat_mod
import struct
import sys
import time
import traceback
from typing import Any

if __package__ in (None, ""):  # run as a script inside the sandbox
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from harness.execution import codec, protocol  # noqa: E402

# Shared with the runner: end (set by the worker; the runner stops there),
# then the input in progress, its CPU start and wall start (ns), published
# by the runner so the worker can enforce per-input limits.
_SHARED = struct.Struct("qqqq")
_INDEX = struct.Struct("q")
_INDEX_AT = 8
_PROGRESS = struct.Struct("qq")
_PROGRESS_AT = 16
_BATCH_BYTES = 256 << 10
_BATCH_SECONDS = 0.002
_PIPE_BYTES = 1 << 20
_OUT_FILE = "stdout.txt"
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_TREE_POLL = 0.05  # seconds between looks at the CPU of a Python program's child processes
_TREE_NOISE = 0.03  # below this the children's CPU is clock-tick noise of the runner's own figure
#: A runner that has been in one input this long while results of earlier inputs wait in its batch is
#: told to send them (``_FLUSH_SIGNAL``): one of them may fail its suite, which would stop the input at
#: once, as EvalPlus stops at the first wrong output; held back, they would arrive at that input's limit.
_FLUSH_AFTER = 0.003
#: Ignored by default (a runner that has not set its handler yet, or a program that reset it, loses
#: nothing but the early stop); a program has no use for it (no terminal, no sockets to the outside).
_FLUSH_SIGNAL = signal.SIGURG
_STEP_POLL = 0.02  # seconds between looks at a command step's process tree (exit is seen at once)
_MEMORY_NEAR = 0.9  # a step that fails after reaching this share of its address-space cap failed for memory
# Top-level folders other programs could write to: what the program uid leaves there is removed.
_SHARED_TMP = ("/tmp", "/dev/shm", "/var/tmp")
_IPC_RMID = 0
_SHM_INFO, _MSG_INFO, _SEM_INFO = 14, 12, 19  # <sys/shm.h>, <sys/msg.h>, <sys/sem.h> (Linux)


def _cpu_clock(pid: int) -> int:
    # The kernel's CPU clock id of another process (CPUCLOCK_SCHED of a pid).
    return ((~pid) << 3) | 2


def _read_proc(path: str) -> bytes | None:
    """A small /proc file's content (plain syscalls: this runs once per program)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def _vm_bytes() -> int:
    """This process's mapped address space (what RLIMIT_AS limits)."""
    statm = _read_proc("/proc/self/statm")
    if statm is None:
        raise OSError("/proc/self/statm is not readable")
    return int(statm.split()[0]) * mmap.PAGESIZE


def _write_proc(path: str, data: bytes) -> None:
    """Write a small /proc file (plain syscalls: the io stack costs more than the write, once per program)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, data)
    except OSError:
        pass
    finally:
        os.close(fd)


_libc_handle: Any = None


def _libc() -> Any:
    """The C library (loaded once; runners and step children inherit it from the worker)."""
    global _libc_handle
    if _libc_handle is None:
        _libc_handle = ctypes.CDLL(None, use_errno=True)
    return _libc_handle


_fork_handle: Any = None


def _fork() -> int:
    """Fork a runner; in a single-threaded worker without Python's at-fork work (about 0.5 ms less each).

    ``os.fork`` re-initialises the interpreter's thread state in the child
    and runs every ``os.register_at_fork`` hook; ``threading``'s alone costs
    about 0.45 ms of CPU per fork, most of it copy-on-write faults.  With one
    thread (the worker's normal state) that work changes nothing: no lock is
    held by another thread, the thread identity is the same.  So the C
    library's ``fork`` is called directly, holding the GIL (``PyDLL``), and
    the one hook with an effect a program can see, ``random``'s reseeding,
    runs by hand.  With more threads (a preloaded library started some),
    ``os.fork`` does it all as usual.
    """
    stat = _read_proc("/proc/self/stat")
    try:
        threads = int(stat[stat.rfind(b")") + 2 :].split()[17]) if stat else 0
    except (ValueError, IndexError):
        threads = 0
    if threads != 1:
        return os.fork()
    if _fork_handle is None:
        _fork_handle_ready()
    pid = int(_fork_handle())
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    if pid == 0:
        rand = sys.modules.get("random")
        if rand is not None:
            rand.seed()  # what random's at-fork hook does: each program gets fresh randomness
    return pid


def _fork_handle_ready() -> None:
    """Look the C library's fork up once, before any fork (each runner inherits it)."""
    global _fork_handle
    _fork_handle = ctypes.PyDLL(None, use_errno=True).fork
    _fork_handle.restype = ctypes.c_int
    _fork_handle.argtypes = []


def _prctl(option: int, arg: int) -> None:
    try:
        _libc().prctl(option, arg, 0, 0, 0)
    except OSError:
        pass


class _Sink:
    """Stand-in for sys.stdout/sys.stderr: keeps the first bytes, drops the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0

    def write(self, s: Any) -> int:
        s = str(s)
        room = self.cap - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        return len(s)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def text(self) -> str:
        return "".join(self.parts)


class _NoInput:
    """Stand-in for sys.stdin: reading raises, as in EvalPlus."""

    def read(self, *a: Any, **k: Any) -> str:
        raise OSError("stdin is not available to sandboxed programs")

    readline = read
    readlines = read

    def readable(self) -> bool:
        return False

    def __iter__(self) -> Any:
        raise OSError("stdin is not available to sandboxed programs")


def _oom_kills() -> int:
    """How many processes the kernel's OOM killer has killed since boot (``oom_kill`` of /proc/vmstat)."""
    try:
        with builtins.open("/proc/vmstat", "rb") as f:
            for line in f:
                if line.startswith(b"oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _wide_pipe(fd: int) -> None:
    """Give a pipe a 1 MiB buffer (64 KiB by default): big outputs cross in 16x fewer reads and wake-ups."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except (ImportError, OSError):
        pass  # over the system's pipe-max-size: the default buffer works, only slower


def _rmtree(path: str) -> None:
    """Remove a tree a program made (never following its symlinks), even folders it made unreadable."""
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path) or os.geteuid() == 0:
        return  # root needs no permission: what is left could not be removed at all
    try:
        if stat_mod.S_ISDIR(os.lstat(path).st_mode):
            os.chmod(path, 0o700)
    except OSError:
        pass
    # Top-down: each folder is made enterable before os.walk enters it.
    for folder, dirs, _ in os.walk(path):  # os.walk does not follow symlinks
        for d in dirs:
            sub = os.path.join(folder, d)
            try:
                # Its processes are dead: nothing can swap the folder for a symlink after the check.
                if stat_mod.S_ISDIR(os.lstat(sub).st_mode):
                    os.chmod(sub, 0o700)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


def _remove_workdir(path: str) -> None:
    """Remove a runner's working directory: the usual case (only its output file) in two system calls.

    Its processes are dead (swept) when this runs; anything else the
    program left there (files, folders, changed permissions) takes the full
    removal.
    """
    try:
        os.unlink(os.path.join(path, _OUT_FILE))  # a symlink there is removed itself, never followed
    except OSError:
        pass
    try:
        os.rmdir(path)
        return
    except OSError:
        pass
    _rmtree(path)


def _safe_relative(path: str) -> bool:
    """Whether ``path`` names a place inside a folder (relative, no ``..``, no NUL)."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and "\0" not in path and ".." not in parts and path.strip("/") != ""


class Worker:
    """State of one worker process."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        #: Uid of Python programs (None: they keep the worker's).
        self.uid: int | None = cfg.get("uid")
        #: Uid of command steps: they need no Python installation they can read, so as root they always get one.
        self.command_uid: int | None = cfg.get("command_uid", self.uid)
        self.pid1 = os.getpid() == 1
        self.root = cfg["workdir_root"]
        #: /tmp is this worker's alone (bubblewrap): whatever appears there after the start is the programs'.
        self.private_tmp = bool(cfg.get("private_tmp"))
        self.tmp_at_start = self._tmp_entries()
        self.inputs: dict[str, bytes] = {}
        self.preludes: dict[str, Any] = {}
        self.out_fd = 1
        self.in_fd = 0
        self.counter = 0
        #: What ``ping`` reports (tests/perf/eval_speed.py --breakdown): runners' whole CPU, and that of
        #: runners stopped at a limit (their inputs' own work, which no result reports); the CPU runners had
        #: used when they were ready for their first input (fork, setup, inputs decoded, guard, program
        #: loaded), of all and of those stopped at a limit; the runners' kernel time and page faults.
        self.stats = {"units": 0, "runner_cpu": 0.0, "limit_cpu": 0.0, "ready_cpu": 0.0, "limit_ready_cpu": 0.0,
                      "runner_sys": 0.0, "runner_minflt": 0}  # fmt: skip

    # ------------------------------------------------------------------ io
    def send(self, header: dict[str, Any], *payload: bytes | bytearray | memoryview) -> None:
        protocol.write_frame(self.out_fd, header, *payload)

    def serve(self) -> None:
        """Main loop: one command at a time until stdin closes."""
        while True:
            frame = protocol.read_frame(self.in_fd)
            if frame is None:
                return
            header, payload = frame
            op = header.get("op")
            if op == "inputs":
                # Kept encoded: a lean worker forks fast, and each runner
                # decodes only the inputs of its own job.
                self.inputs[header["key"]] = bytes(payload)
            elif op == "drop_inputs":
                self.inputs.pop(header["key"], None)
            elif op in ("call", "script"):
                self.run_unit(header, payload)
            elif op == "command":
                self.run_command(header, payload)
            elif op == "ping":
                me = resource.getrusage(resource.RUSAGE_SELF)
                self.send({"ev": "pong", "pid": os.getpid(), "uid": self.uid, "cpu": me.ru_utime + me.ru_stime,
                           "sys": me.ru_stime, "minflt": me.ru_minflt, "stats": self.stats})  # fmt: skip
            elif op in ("abort", "set_end"):
                pass  # the unit already ended
            else:
                self.send({"ev": "error", "message": f"unknown op {op!r}"})

    def control(self, unit: int) -> bool:
        """Read one control frame that arrived while ``unit`` runs; True when the unit must stop."""
        frame = protocol.read_frame(self.in_fd)
        if frame is None:
            return True  # the harness is gone
        ctl, _ = frame
        if ctl.get("op") == "drop_inputs":
            self.inputs.pop(ctl.get("key"), None)
        return ctl.get("unit") == unit and ctl.get("op") == "abort"

    def prelude(self, text: str) -> Any:
        """The compiled prelude (trusted source, compiled once per worker), or the error compiling it."""
        code = self.preludes.get(text)
        if code is None:
            try:
                code = compile(text, "<prelude>", "exec")
            except SyntaxError as exc:
                code = f"prelude does not compile: {exc}"
            self.preludes[text] = code
        return code

    # ------------------------------------------------------------- a unit
    def run_unit(self, job: dict[str, Any], payload: bytes) -> None:
        self.counter += 1
        unit = job["unit"]
        workdir = os.path.join(self.root, f"u{self.counter}")
        os.makedirs(workdir, mode=0o700)
        if self.uid is not None:
            os.chown(workdir, self.uid, self.uid)
        prelude = self.prelude(job["prelude"]) if job.get("prelude") else None
        end_map = mmap.mmap(-1, _SHARED.size)
        _SHARED.pack_into(end_map, 0, int(job.get("end", 0)), -1, 0, 0)
        rfd, wfd = os.pipe()
        _wide_pipe(wfd)
        pid = _fork()
        if pid == 0:  # the runner
            code = 98
            try:
                os.close(rfd)
                self._runner(job, payload, workdir, end_map, wfd, prelude)
                code = 0
            except BaseException:  # noqa: BLE001 - the runner must never return
                code = 99
            finally:
                os._exit(code)
        os.close(wfd)
        try:
            self._supervise(job, unit, pid, rfd, end_map)
        finally:
            os.close(rfd)
            self._sweep(pid, self.uid)
            _remove_workdir(workdir)
            self._clean_tmp(self.uid)
            end_map.close()

    def _supervise(self, job: dict[str, Any], unit: int, pid: int, rfd: int, shared: mmap.mmap) -> None:
        is_call = job["op"] == "call"
        start = int(job.get("start", 0))
        limits: list[float] = job.get("limits", [])
        exec_limit = float(job.get("exec_limit", 10.0))
        budget = float(job.get("budget", 1e9))
        wall_factor = float(self.cfg.get("wall_factor", 3.0))
        clock = _cpu_clock(pid)
        pidfd = os.pidfd_open(pid)
        sel = selectors.DefaultSelector()
        sel.register(rfd, selectors.EVENT_READ, "out")
        sel.register(pidfd, selectors.EVENT_READ, "exit")
        sel.register(self.in_fd, selectors.EVENT_READ, "ctl")
        reader = protocol.FrameReader(int(self.cfg.get("max_output", 1 << 30)))
        os.set_blocking(rfd, False)
        ready = False
        current = start  # first input whose result has not arrived
        end = int(job.get("end", 0))
        ready_cpu = 0.0
        started_wall = time.monotonic()
        finished_reason: str | None = None
        done_info: dict[str, Any] = {}
        exited = False
        last_cpu = 0.0
        last_result = [0.0, 0.0]  # runner CPU and wall clock when its last result arrived
        # CPU of the processes the program started (a fork bomb through posix.fork spins in children,
        # which the runner's own clock never sees): measured every _TREE_POLL s, counted with the runner's.
        tree = {"extra": 0.0, "at": time.monotonic(), "input": -1, "input_extra": 0.0}
        flushed_at = -1  # the input during which the runner was last told to send its batch

        def extra_cpu() -> float:
            now = time.monotonic()
            if now - tree["at"] >= _TREE_POLL:
                tree["at"] = now
                total, _ = self._tree_usage(pid, self.uid)
                # The tree's figure includes the runner's own ticks (10 ms grain): what is left is the children's.
                others = total - cpu_now()
                if others > _TREE_NOISE:
                    tree["extra"] = max(tree["extra"], others)
            return tree["extra"]

        def cpu_now() -> float:
            nonlocal last_cpu
            try:
                last_cpu = time.clock_gettime(clock)
            except OSError:
                pass
            return last_cpu

        def kill_runner() -> None:
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass

        def in_progress() -> tuple[int, float, float]:
            """(input, its CPU start, its wall start) as the runner published them.

            The index may lie beyond ``end`` when the harness moved the end
            under a runner that had already gone past it."""
            _, idx, cpu_ns, wall_ns = _SHARED.unpack_from(shared, 0)
            if idx < current:
                # The runner sent that input's result and has not published
                # the next one yet (on a busy machine it may wait to be
                # scheduled): count from when its last result arrived.
                return current, last_result[0], last_result[1]
            # Never count time from before the last result arrived.
            return idx, max(cpu_ns / 1e9, last_result[0]), max(wall_ns / 1e9, last_result[1])

        def handle(header: dict[str, Any], data: bytearray) -> str | None:
            nonlocal ready, current, ready_cpu
            kind = header.get("k")
            if kind == "ready" and not ready:
                ready = True
                ready_cpu = cpu_now()
                last_result[0], last_result[1] = ready_cpu, time.monotonic()
                self.send({"ev": "ready", "unit": unit, "cpu": ready_cpu})
                return None
            if kind == "xerr" and not ready:
                done_info["error"] = str(header.get("msg", ""))[:4000]
                return "exec_error"
            if kind == "outs" and ready and is_call:
                items = header["items"]
                total = 0
                for k, item in enumerate(items):
                    if item[0] != current + k or item[1] not in ("out", "err"):
                        return "protocol"
                    total += int(item[3])
                if total != len(data):
                    return "protocol"
                last_result[0], last_result[1] = cpu_now(), time.monotonic()
                keep = [it for it in items if it[0] < end]
                if keep:
                    self.send(
                        {"ev": "outs", "unit": unit, "items": keep},
                        data if len(keep) == len(items) else data[: sum(int(it[3]) for it in keep)],
                    )
                current += len(keep)
                return "done" if len(keep) < len(items) else None
            if kind == "done":
                done_info.update({k: header[k] for k in ("status", "msg", "stdout") if k in header})
                return "done"
            return "protocol"

        def pump() -> tuple[str | None, bool]:
            try:
                frames, eof = reader.read_from(rfd)
            except protocol.ProtocolError:
                return "output_too_large", True
            except OSError:
                return None, True
            for header, data in frames:
                try:
                    why = handle(header, data)
                except (ValueError, TypeError, KeyError, IndexError):
                    why = "protocol"
                if why:
                    return why, eof
            return None, eof

        def over_limit() -> tuple[str | None, float]:
            """Why the runner must stop now, or how long to wait before checking again."""
            nonlocal flushed_at
            cpu, wall = cpu_now(), time.monotonic()
            extra = extra_cpu()
            flush_wait = 1.0
            if not ready:
                limit, used, waited = exec_limit, cpu + extra, wall - started_wall
                reason = "exec_timeout"
            elif not is_call:
                limit, used, waited = exec_limit, cpu - ready_cpu + extra, wall - started_wall
                reason = "timeout"
            else:
                if cpu - ready_cpu + extra > budget:
                    return "budget", 0.0
                idx, cpu_start, wall_start = in_progress()
                if idx != tree["input"]:
                    tree["input"], tree["input_extra"] = idx, extra
                if idx >= end:
                    # Working on inputs another unit now owns; what it has not
                    # sent yet is run again (see the harness's requeue).
                    return "shrunk", 0.0
                # An implausible index (only a hostile program publishes one)
                # gets the most generous limit; the budget still bounds it.
                limit = limits[idx - start] if idx - start < len(limits) else max(limits, default=exec_limit)
                used = cpu - min(max(cpu_start, ready_cpu), cpu) + (extra - tree["input_extra"])
                waited = wall - min(max(wall_start, started_wall), wall)
                reason = "timeout"
                if current < idx and flushed_at != idx:
                    # Results of inputs before ``idx`` wait in the runner's batch (or are on their way).
                    flush_wait = _FLUSH_AFTER - waited
                    if flush_wait <= 0:
                        flushed_at, flush_wait = idx, 1.0
                        try:
                            os.kill(pid, _FLUSH_SIGNAL)
                        except OSError:
                            pass
                elif flushed_at != idx:
                    # Nothing waits now, but the runner moves on to later inputs without a word until
                    # its batch fills: look again within a quarter of the time this input has taken.
                    flush_wait = max(_FLUSH_AFTER, 0.25 * waited)
            # CPU limits keep verdicts stable on a busy machine; the wall
            # limit only stops programs that sleep or block.
            wall_limit = limit * wall_factor + 1.0
            if used > limit or waited > wall_limit:
                if os.environ.get("HARNESS_TRACE"):
                    print(
                        f"kill unit={unit} reason={reason} used={used:.3f} limit={limit:.3f} waited={waited:.3f} "
                        f"state={_SHARED.unpack_from(shared, 0)} current={current} cpu={cpu:.3f} wall={wall:.3f}",
                        file=sys.stderr,
                    )
                return reason, 0.0
            wait = max(0.002, min(limit - used, wall_limit - waited, 1.0))
            return None, min(wait, max(0.0005, flush_wait))

        while finished_reason is None:
            if is_call:
                end = _SHARED.unpack_from(shared, 0)[0]
                if ready and current >= end:
                    finished_reason = "done"
                    break
            why, wait = (None, 0.05) if exited else over_limit()
            if why is not None and is_call and ready and why == "timeout":
                # The runner publishes (input, start) in two writes: confirm.
                time.sleep(0.001)
                why, wait = over_limit()
            if why is not None:
                finished_reason = why
                break
            for key, _ in sel.select(wait):
                if key.data == "out":
                    finished_reason, eof = pump()
                    if eof and finished_reason is None:
                        sel.unregister(rfd)
                    if finished_reason:
                        break
                elif key.data == "exit":
                    exited = True
                    sel.unregister(pidfd)
                    # Take what the runner wrote before it exited.
                    finished_reason, _ = pump()
                    if finished_reason is None:
                        finished_reason = "crashed"
                    break
                else:  # control message while the unit runs
                    frame = protocol.read_frame(self.in_fd)
                    if frame is None:
                        finished_reason = "aborted"
                        break
                    ctl, _ = frame
                    if ctl.get("op") == "drop_inputs":
                        self.inputs.pop(ctl.get("key"), None)
                    if ctl.get("unit") == unit and ctl.get("op") == "abort":
                        finished_reason = "aborted"
                        break
                    if ctl.get("unit") == unit and ctl.get("op") == "set_end":
                        end = min(end, int(ctl["end"]))
                        _INDEX.pack_into(shared, 0, end)  # the end field only
        kill_runner()
        failed_at = in_progress()[0] if finished_reason in ("timeout", "crashed") else current
        sel.close()
        status = 0
        try:
            # The runner's own CPU clock dies with it: its rusage gives the final figure (the polled
            # clock is only as fresh as the last poll, nearly zero for a short program).
            _, status, usage = os.wait4(pid, 0)
            last_cpu = max(last_cpu, usage.ru_utime + usage.ru_stime)
            self.stats["runner_sys"] += usage.ru_stime
            self.stats["runner_minflt"] += usage.ru_minflt
        except ChildProcessError:
            pass
        os.close(pidfd)
        self.stats["units"] += 1
        self.stats["runner_cpu"] += last_cpu
        before_first = ready_cpu if ready else last_cpu  # a runner never ready spent it all loading
        self.stats["ready_cpu"] += before_first
        if finished_reason in ("timeout", "budget", "exec_timeout"):
            self.stats["limit_cpu"] += last_cpu
            self.stats["limit_ready_cpu"] += before_first
        info: dict[str, Any] = {"ev": "end", "unit": unit, "reason": finished_reason, "i": failed_at, "next": current}
        info.update(done_info)
        info["cpu"] = last_cpu
        if os.WIFSIGNALED(status):
            info["signal"] = os.WTERMSIG(status)
        elif os.WIFEXITED(status):
            info["exit"] = os.WEXITSTATUS(status)
        self.send(info)

    # ----------------------------------------------------------- commands
    def run_command(self, job: dict[str, Any], payload: bytes) -> None:
        """Run a command job: write its files into a fresh working directory, then run its steps in order.

        The header lists ``files`` as ``[path, size, executable]`` and
        ``steps`` (argv, stdin size, limits); the payload holds the files'
        contents, then each step's stdin.  The answer is one ``end`` frame
        with a record per step that ran; its payload is each step's
        captured stdout then stderr.
        """
        self.counter += 1
        unit = job["unit"]
        uid = self.command_uid
        workdir = os.path.join(self.root, f"u{self.counter}")
        os.makedirs(workdir, mode=0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
        view = memoryview(payload)
        offset = 0

        def take(size: int) -> memoryview:
            nonlocal offset
            part = view[offset : offset + size]
            offset += size
            return part

        records: list[dict[str, Any]] = []
        blobs: list[bytes] = []
        error: str | None = None
        try:
            files = [(str(path), take(int(size)), bool(exe)) for path, size, exe in job.get("files", [])]
            stdins = [take(int(step.get("stdin", 0))) for step in job["steps"]]
            error = self._write_files(workdir, files, uid)
            env = self._step_env(workdir, job.get("env") or {})
            for step, stdin in zip(job["steps"] if error is None else [], stdins):
                record, out, err = self._run_step(unit, step, stdin, env, workdir, uid)
                records.append(record)
                blobs += [out, err]
                if record["status"] == "aborted":
                    error = "aborted"
                    break
                if record["status"] != "ok" and not job.get("continue"):
                    break
        except (KeyError, TypeError, ValueError) as exc:
            error = f"bad command job: {exc!r}"
        except OSError as exc:  # fork or memfd refused: the machine is short of something
            error = f"could not run the step: {exc}"
        finally:
            self._reap()
            _rmtree(workdir)
            self._clean_tmp(uid)
        for record, k in zip(records, range(0, len(blobs), 2)):
            record["out"], record["err"] = len(blobs[k]), len(blobs[k + 1])
        self.send({"ev": "end", "unit": unit, "reason": "done", "steps": records, "error": error}, *blobs)

    def _write_files(self, workdir: str, files: list[tuple[str, memoryview, bool]], uid: int | None) -> str | None:
        """Write a job's files (the folder is fresh: no program ran in it yet); an error message or None."""
        for path, data, exe in files:
            if not _safe_relative(path):
                return f"refused file path {path!r}: it must be relative and stay inside the working directory"
            target = os.path.join(workdir, path)
            try:
                parent = os.path.dirname(target)
                if not os.path.isdir(parent):
                    made = workdir
                    for part in os.path.relpath(parent, workdir).split("/"):
                        made = os.path.join(made, part)
                        if not os.path.isdir(made):
                            os.mkdir(made, 0o755)
                            if uid is not None:
                                os.chown(made, uid, uid)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755 if exe else 0o644)
                try:
                    while len(data):
                        data = data[os.write(fd, data) :]
                    if uid is not None:
                        os.fchown(fd, uid, uid)
                finally:
                    os.close(fd)
            except OSError as exc:
                return f"could not write {path!r}: {exc.strerror or exc}"
        return None

    def _step_env(self, workdir: str, extra: dict[str, str]) -> dict[bytes, bytes]:
        """The steps' environment: PATH (the worker's), HOME (the working directory), LANG, then the job's."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "LANG": "C.UTF-8"}
        env.update({str(k): str(v) for k, v in self.cfg.get("program_env", [])})
        env.update({str(k): str(v) for k, v in extra.items()})
        return {os.fsencode(k): os.fsencode(v) for k, v in env.items() if "=" not in k and "\0" not in k + v}

    def _run_step(
        self, unit: int, step: dict[str, Any], stdin: memoryview, env: dict[bytes, bytes], workdir: str, uid: int | None
    ) -> tuple[dict[str, Any], bytes, bytes]:
        """Run one step to its end under its limits; its record, captured stdout and stderr."""
        argv = [os.fsencode(str(a)) for a in step["argv"]]
        cpu_limit = float(step["cpu"])
        wall_limit = float(step["wall"])
        memory = int(step["memory"])
        capture = int(step["capture"])
        file_size = int(self.cfg.get("file_size", 64 << 20))
        out_fd = os.memfd_create("stdout", os.MFD_CLOEXEC)
        err_fd = os.memfd_create("stderr", os.MFD_CLOEXEC)
        if len(stdin):
            in_fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
            data = stdin
            while len(data):
                data = data[os.write(in_fd, data) :]
            os.lseek(in_fd, 0, os.SEEK_SET)
        else:
            in_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        # Every name argv[0] may stand for, resolved here: the child only execs.
        name = argv[0]
        if b"/" in name:
            candidates = [name]
        else:
            candidates = [os.path.join(d or b".", name) for d in env.get(b"PATH", b"").split(b":")]
        status_r, status_w = os.pipe()  # close-on-exec: end of file means the exec worked
        oom_before = _oom_kills()
        started = time.monotonic()
        try:
            try:
                pid = os.fork()
            except OSError:
                for fd in (status_r, status_w, in_fd):
                    os.close(fd)
                raise
            if pid == 0:
                os.close(status_r)
                self._exec_step(argv, candidates, env, workdir, uid, cpu_limit, memory, file_size,
                                (in_fd, out_fd, err_fd, status_w))  # fmt: skip
            os.close(status_w)
            os.close(in_fd)
            failure = b""
            while True:
                chunk = os.read(status_r, 4096)
                if not chunk:
                    break
                failure += chunk
            os.close(status_r)
            why: str | None = None
            cpu, peak = 0.0, 0
            aborted = False
            if failure:
                _, status, usage = os.wait4(pid, 0)
            else:
                cpu, peak, why, aborted = self._watch_step(unit, pid, uid, cpu_limit, wall_limit, started)
                _, status, usage = os.wait4(pid, 0)
            wall = time.monotonic() - started
            self._sweep(pid, uid, force=uid is not None and not self.pid1)
            cpu = max(cpu, usage.ru_utime + usage.ru_stime)
            peak = max(peak, usage.ru_maxrss * 1024)
            out, out_size = self._captured(out_fd, capture)
            err, err_size = self._captured(err_fd, capture)
        finally:
            os.close(out_fd)
            os.close(err_fd)
        record: dict[str, Any] = {"cpu": cpu, "wall": wall, "exit": None, "signal": None}
        if os.WIFSIGNALED(status):
            record["signal"] = os.WTERMSIG(status)
        elif os.WIFEXITED(status):
            record["exit"] = os.WEXITSTATUS(status)
        if failure:
            record.update(status="error", reason=self._exec_failure(name, failure), exit=None)
        elif aborted:
            record.update(status="aborted", reason="aborted")
        elif why is not None:
            record.update(status="timeout", reason=why)
        else:
            record.update(self._classify(record, cpu_limit, memory, file_size, max(out_size, err_size), peak,
                                         oom_before))  # fmt: skip
        return record, out, err

    @staticmethod
    def _captured(fd: int, capture: int) -> tuple[bytes, int]:
        size = os.fstat(fd).st_size
        return os.pread(fd, min(size, capture), 0), size

    @staticmethod
    def _exec_failure(name: bytes, failure: bytes) -> str:
        shown = os.fsdecode(name)
        text = failure.decode(errors="replace")
        if text.startswith("errno "):
            try:
                code = int(text.split()[1])
            except (IndexError, ValueError):
                code = 0
            if code == errno.ENOENT:
                return f"{shown}: not found"
            if code == errno.EACCES:
                return f"{shown}: permission denied"
            if code == errno.ENOMEM:
                return f"{shown}: could not start: not enough memory under the step's memory limit"
            return f"{shown}: could not start: {os.strerror(code)}"
        return f"{shown}: could not start: {text}"

    def _classify(
        self,
        record: dict[str, Any],
        cpu_limit: float,
        memory: int,
        file_size: int,
        output: int,
        peak: int,
        oom_before: int,
    ) -> dict[str, Any]:
        """Status and one-line reason of a step that ended by itself."""
        sig, code = record["signal"], record["exit"]
        if sig is not None:
            base = f"killed by signal {sig} ({_signal_name(sig)})"
        else:
            base = f"exit code {code}"
        near_cap = memory > 0 and peak >= _MEMORY_NEAR * memory
        if sig == signal.SIGXCPU or record["cpu"] > cpu_limit:
            # Also a step that ended by itself between two looks, having used more than its CPU time.
            return {"status": "timeout", "reason": f"CPU time limit {cpu_limit:g} s exceeded"}
        if sig == signal.SIGXFSZ or (output >= file_size and code != 0):
            return {"status": "output_limit", "reason": f"file size limit {file_size >> 20} MiB exceeded ({base})"}
        if sig == signal.SIGKILL and oom_before >= 0 and _oom_kills() > oom_before:
            return {"status": "memory", "reason": f"{base}: killed by the kernel for memory"}
        if code == 0:
            if output >= file_size:
                return {
                    "status": "output_limit",
                    "reason": f"output reached the file size limit of {file_size >> 20} MiB",
                }
            return {"status": "ok", "reason": ""}
        if near_cap:
            return {"status": "memory", "reason": f"{base} at the memory limit ({memory >> 20} MiB of address space)"}
        return {"status": "signal" if sig is not None else "exit", "reason": base}

    def _watch_step(
        self, unit: int, pid: int, uid: int | None, cpu_limit: float, wall_limit: float, started: float
    ) -> tuple[float, int, str | None, bool]:
        """Supervise a running step until it exits or must stop: (CPU, peak address space, timeout, aborted)."""
        pidfd = os.pidfd_open(pid)
        sel = selectors.DefaultSelector()
        sel.register(pidfd, selectors.EVENT_READ, "exit")
        sel.register(self.in_fd, selectors.EVENT_READ, "ctl")
        cpu, peak = 0.0, 0
        why: str | None = None
        aborted = exited = False
        try:
            while not (exited or aborted):
                looked = time.monotonic()
                used, vm = self._tree_usage(pid, uid)
                cpu, peak = max(cpu, used), max(peak, vm)
                waited = time.monotonic() - started
                # Without a namespace of its own the scan covers the whole machine: look less often then.
                pause = max(_STEP_POLL, 10 * (time.monotonic() - looked))
                if cpu > cpu_limit:
                    why = f"CPU time limit {cpu_limit:g} s exceeded"
                elif waited > wall_limit:
                    why = f"wall-clock limit {wall_limit:g} s exceeded"
                if why is not None:
                    if os.environ.get("HARNESS_TRACE"):
                        print(f"kill unit={unit} step pid={pid} reason={why!r} cpu={cpu:.3f} wall={waited:.3f}",
                              file=sys.stderr)  # fmt: skip
                    break
                for key, _ in sel.select(max(0.001, min(pause, wall_limit - waited))):
                    if key.data == "exit":
                        exited = True
                    elif self.control(unit):
                        aborted = True
        finally:
            sel.close()
            os.close(pidfd)
        if why is not None or aborted:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return cpu, peak, why, aborted

    def _step_pids(self, main: int, uid: int | None) -> list[int]:
        """The processes of the running step: in a namespace of its own, all but this worker; else its uid's."""
        if self.pid1:
            return [int(n) for n in os.listdir("/proc") if n.isdigit() and n != "1"]
        if uid is not None:
            pids = self._uid_pids(uid)
            return pids if main in pids else [*pids, main]  # a non-dumpable process shows as root's
        return self._descendants()  # no uid and no namespace of its own

    def _tree_usage(self, main: int, uid: int | None) -> tuple[float, int]:
        """CPU seconds of the step's processes (with the children they reaped) and the largest address space."""
        ticks, peak = 0, 0
        for p in self._step_pids(main, uid):
            stat = _read_proc(f"/proc/{p}/stat")
            if not stat:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            try:
                # utime, stime, cutime, cstime (ticks), then vsize (bytes).
                ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
                peak = max(peak, int(fields[20]))
            except (ValueError, IndexError):
                continue
        return ticks / _CLK_TCK, peak

    def _exec_step(
        self,
        argv: list[bytes],
        candidates: list[bytes],
        env: dict[bytes, bytes],
        workdir: str,
        uid: int | None,
        cpu_limit: float,
        memory: int,
        file_size: int,
        fds: tuple[int, int, int, int],
    ) -> None:
        """In the forked child: isolate, limit, exec the step; never returns."""
        report = fds[3]
        try:
            os.setsid()
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            # Python ignores SIGPIPE and SIGXFSZ, and ignored signals stay ignored across exec.
            for sig in signal.valid_signals():
                if sig not in (signal.SIGKILL, signal.SIGSTOP):
                    try:
                        signal.signal(sig, signal.SIG_DFL)
                    except (OSError, ValueError, RuntimeError):
                        pass
            os.chdir(workdir)
            in_fd, out_fd, err_fd, _ = fds
            os.dup2(in_fd, 0)
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            if report != 3:
                os.dup2(report, 3, inheritable=False)
                report = 3
            os.closerange(4, 65536)
            # RLIMIT_CPU backs up the worker's watch of the whole tree (one process cannot outrun it).
            cpu_cap = int(cpu_limit) + 2
            limits = [
                (resource.RLIMIT_CORE, 0, 0),
                (resource.RLIMIT_FSIZE, file_size, file_size),
                (resource.RLIMIT_CPU, cpu_cap, cpu_cap + 1),
            ]
            if uid is not None:
                nproc = int(self.cfg.get("nproc", 64))
                limits.append((resource.RLIMIT_NPROC, nproc, nproc))
            for res, soft, hard in limits:
                try:
                    resource.setrlimit(res, (soft, hard))
                except (ValueError, OSError):
                    top = resource.getrlimit(res)[1]
                    resource.setrlimit(res, (min(soft, top), min(hard, top)))
            try:
                with builtins.open("/proc/self/oom_score_adj", "w") as f:
                    f.write("1000")
            except OSError:
                pass
            if uid is not None:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            _prctl(_PR_SET_NO_NEW_PRIVS, 1)
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if len(candidates) > 1:
                # A PATH folder this uid may not enter (a toolchain under /root) hides nothing: "not found",
                # not "permission denied", when the name is nowhere else.
                candidates = [c for c in candidates if os.access(os.path.dirname(c) or b".", os.X_OK)]
            # From here on only C calls on prepared arrays: under a small address-space cap this
            # process (a copy of the worker) may not allocate anything more.
            libc = _libc()
            c_argv = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
            c_env = (ctypes.c_char_p * (len(env) + 1))(*[k + b"=" + v for k, v in env.items()], None)
            c_paths = [ctypes.c_char_p(c) for c in candidates]
            rlim = (ctypes.c_ulong * 2)(memory, memory)
            missing = (errno.ENOENT, errno.ENOTDIR)
            failure = errno.ENOENT  # as execvp: the first error other than "not there" is the one to report
            if memory > 0:
                libc.setrlimit(resource.RLIMIT_AS, rlim)
                libc.setrlimit(resource.RLIMIT_DATA, rlim)
            for path in c_paths:
                libc.execve(path, c_argv, c_env)
                err = ctypes.get_errno()
                if failure == errno.ENOENT and err not in missing:
                    failure = err
            os.write(report, b"errno %d" % failure)
        except BaseException as exc:  # noqa: BLE001 - the child must never return
            try:
                os.write(report, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:2000])
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(127)

    # ------------------------------------------------------------ cleanup
    def _sweep(self, runner_pid: int, uid: int | None, force: bool = False) -> None:
        """Kill everything the program started; none may outlive it.

        ``force``: send the uid-wide kill at least once even when no process
        of the uid shows in /proc (a non-dumpable process shows as root's).
        """
        try:
            os.killpg(runner_pid, signal.SIGKILL)
        except OSError:
            pass
        for attempt in range(200):
            self._reap()
            if self.pid1:
                # The namespace holds nothing but this worker and what its programs
                # started: whatever else lives is theirs, whatever its uid says.
                others = [p for p in self._live_pids() if p != 1]
                if not others:
                    return
                os.kill(-1, signal.SIGKILL)  # pid 1 of its namespace: all but itself
            elif uid is not None:
                pids = self._pids_of_uid(uid)
                if not pids and not (force and attempt == 0):
                    return
                helper = os.fork()
                if helper == 0:
                    try:
                        os.setgroups([])
                        os.setresgid(uid, uid, uid)
                        os.setresuid(uid, uid, uid)
                        # As the program's own uid, -1 reaches exactly its processes.
                        os.kill(-1, signal.SIGKILL)
                    finally:
                        os._exit(0)
                os.waitpid(helper, 0)
            else:
                kids = self._descendants()  # not only children: a grandchild in a session of its own too
                if not kids:
                    return
                for p in kids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
            time.sleep(0.001)

    def _tmp_entries(self) -> set[tuple[str, str]]:
        """The top-level entries of the shared temporary folders now (what programs must not remove)."""
        found = set()
        for base in _SHARED_TMP:
            try:
                found.update((base, name) for name in os.listdir(base))
            except OSError:
                pass
        return found

    @staticmethod
    def _clean_ipc(uid: int | None) -> None:
        """Remove System V shared memory, message queues and semaphores of ``uid`` (None: all there are).

        They outlive their creator: left alone, they would carry memory and
        data over to the next program.  None is only passed in a private
        IPC namespace (bubblewrap), where everything is the programs'.
        """
        # How many of each exist, one syscall each (SHM_INFO, MSG_INFO, SEM_INFO): usually none, and
        # then the /proc listings (slow to generate) are not read.
        libc = _libc()
        info = (ctypes.c_int * 64)()
        counts = {}
        try:
            counts["shm"] = info[0] if libc.shmctl(0, _SHM_INFO, info) >= 0 else 1
            counts["msg"] = info[0] if libc.msgctl(0, _MSG_INFO, info) >= 0 else 1
            counts["sem"] = info[7] if libc.semctl(0, 0, _SEM_INFO, info) >= 0 else 1
        except (AttributeError, OSError):
            counts = {"shm": 1, "msg": 1, "sem": 1}
        for kind in ("shm", "msg", "sem"):
            if not counts[kind]:
                continue
            try:
                with builtins.open(f"/proc/sysvipc/{kind}", "rb") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            if len(lines) < 2:
                continue
            head = lines[0].split()
            try:
                owner, creator = head.index(b"uid"), head.index(b"cuid")
            except ValueError:
                continue
            for line in lines[1:]:
                cols = line.split()
                try:
                    if uid is not None and uid not in (int(cols[owner]), int(cols[creator])):
                        continue
                    ident = int(cols[1])
                except (ValueError, IndexError):
                    continue
                if kind == "shm":
                    libc.shmctl(ident, _IPC_RMID, None)
                elif kind == "msg":
                    libc.msgctl(ident, _IPC_RMID, None)
                else:
                    libc.semctl(ident, 0, _IPC_RMID)

    def _clean_tmp(self, uid: int | None) -> None:
        """Delete what the program left in /tmp, /dev/shm and /var/tmp (and its System V IPC objects).

        Only top-level entries of the program's uid (or, in a private /tmp,
        entries that were not there when the worker started) are removed;
        symlinks are removed, never followed.  Without a uid of its own and
        a private /tmp, a program's files cannot be told from others' and
        stay (process isolation is documented as weaker).
        """
        if uid is None and not self.private_tmp:
            return
        self._clean_ipc(uid)
        for base in _SHARED_TMP:
            if self.private_tmp and base == "/var/tmp":
                continue  # read-only under bubblewrap
            try:
                with os.scandir(base) as it:
                    entries = list(it)
            except OSError:
                continue
            for entry in entries:
                path = entry.path
                if path == self.root or self.root.startswith(path + "/"):
                    continue  # this worker's own folders
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if uid is not None:
                    if info.st_uid != uid:
                        continue
                elif (base, entry.name) in self.tmp_at_start:
                    continue
                try:
                    if stat_mod.S_ISDIR(info.st_mode):
                        _rmtree(path)
                    else:
                        os.unlink(path)
                except OSError:
                    pass

    @staticmethod
    def _reap() -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    @staticmethod
    def _live_pids() -> list[int]:
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = _read_proc(f"/proc/{name}/stat")
                if stat is None:
                    continue
                state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
                if state not in (b"Z", b"X"):
                    out.append(int(name))
        return out

    @staticmethod
    def _uid_pids(uid: int) -> list[int]:
        """Processes of ``uid``, zombies included (one stat per process)."""
        found = []
        with os.scandir("/proc") as entries:
            for entry in entries:
                if entry.name.isdigit():
                    try:
                        if entry.stat(follow_symlinks=False).st_uid == uid:
                            found.append(int(entry.name))
                    except OSError:
                        pass
        return found

    def _pids_of_uid(self, uid: int) -> list[int]:
        # One stat per process (the owner of /proc/PID is its effective uid);
        # only the program's own processes get a closer look (zombies are
        # gone already, they just await reaping).
        candidates = []
        with os.scandir("/proc") as entries:
            for entry in entries:
                if entry.name.isdigit():
                    try:
                        if entry.stat(follow_symlinks=False).st_uid == uid:
                            candidates.append(int(entry.name))
                    except OSError:
                        pass
        if not candidates:
            return []
        live = set(self._live_pids())
        return [p for p in candidates if p in live]

    @staticmethod
    def _descendants() -> list[int]:
        """Live processes below this worker (one read per process; orphans come back to it, a subreaper)."""
        parents: dict[int, int] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = _read_proc(f"/proc/{name}/stat")
                if not stat:
                    continue
                fields = stat[stat.rfind(b")") + 2 :].split()
                try:
                    if fields[0] not in (b"Z", b"X"):
                        parents[int(name)] = int(fields[1])
                except (ValueError, IndexError):
                    pass
        me = os.getpid()
        found = []
        for pid in parents:
            q, hops = parents[pid], 0
            while q != me and q in parents and hops < 4096:
                q, hops = parents[q], hops + 1
            if q == me:
                found.append(pid)
        return found

    # ------------------------------------------------------------- runner
    def _runner(
        self, job: dict[str, Any], payload: bytes, workdir: str, end_map: mmap.mmap, wfd: int, prelude: Any
    ) -> None:
        """Runs in the forked child; never returns normally to the server loop."""
        cfg = self.cfg
        os.setsid()
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        os.chdir(workdir)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(_OUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.uid is not None:
            os.fchown(out, self.uid, self.uid)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        keep = os.dup(wfd)
        for fd in (null, out, wfd):
            os.close(fd)
        os.closerange(3, keep)
        os.closerange(keep + 1, 65536)
        wfd = keep
        # Only the dispositions that differ are set (a look costs no system call).
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGALRM, signal.SIGCHLD):
            if signal.getsignal(sig) is not signal.SIG_DFL:
                signal.signal(sig, signal.SIG_DFL)
        if signal.getsignal(signal.SIGXFSZ) is not signal.SIG_IGN:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        mem = int(job.get("memory", cfg.get("memory", 4 << 30)))
        if job.get("memory_free") is not None:
            # Cap = what this process already maps + the free space granted.
            mem = _vm_bytes() + max(0, int(job["memory_free"]))
        limits = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_FSIZE, int(cfg.get("file_size", 64 << 20))),
        ]
        if mem > 0:
            limits += [(resource.RLIMIT_AS, mem), (resource.RLIMIT_DATA, mem)]
        if self.uid is not None:
            limits.append((resource.RLIMIT_NPROC, int(cfg.get("nproc", 64))))
        for res, value in limits:
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                resource.setrlimit(res, (min(value, resource.getrlimit(res)[1]),) * 2)
        if mem > 0:
            try:  # as EvalPlus does: deep recursion may use a big stack
                resource.setrlimit(resource.RLIMIT_STACK, (mem, mem))
            except (ValueError, OSError):
                pass
        _write_proc("/proc/self/oom_score_adj", b"1000")
        if self.uid is not None:
            os.setgroups([])
            os.setresgid(self.uid, self.uid, self.uid)
            os.setresuid(self.uid, self.uid, self.uid)
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # a change of credentials clears it
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)

        write_frame = protocol.write_frame
        encode = codec.encode

        def send(header: dict[str, Any], data: bytes = b"") -> None:
            write_frame(wfd, header, data)

        sink = _Sink(int(cfg.get("capture", 64 << 10)))
        sys.stdout = sys.stderr = sink  # type: ignore[assignment]
        sys.stdin = _NoInput()  # type: ignore[assignment]
        program = payload.decode()

        if job["op"] == "script":
            self._run_script(program, send, sink, prelude)
            return

        try:
            inputs = codec.decode(self.inputs[job["inputs"]])
        except (KeyError, ValueError) as exc:
            send({"k": "xerr", "msg": f"inputs unavailable: {exc}"})
            return
        entry = job["entry"]
        iterate = bool(job.get("iterate_opaque"))
        stop_on_error = bool(job.get("stop_on_error", True))
        if prelude is not None:
            # Trusted code the benchmark supplies (a guard, say), in a namespace of its own.
            try:
                if isinstance(prelude, str):
                    raise RuntimeError(prelude)
                exec(prelude, {"__name__": "__prelude__"})  # noqa: S102 - trusted
            except BaseException as exc:  # noqa: BLE001
                send({"k": "xerr", "msg": f"prelude raised {type(exc).__name__}: {exc}"})
                return
        env: dict[str, Any] = {}
        try:
            exec(compile(program, "<solution>", "exec"), env)  # noqa: S102 - sandboxed
            fn = env[entry]
        except BaseException as exc:  # noqa: BLE001
            send({"k": "xerr", "msg": f"{type(exc).__name__}: {exc}"})
            return
        send({"k": "ready"})
        # Expected-output runs keep outputs alive and report the address space
        # each one added, as a grader holding them would; ``resets`` marks
        # where the outputs of one task end and those of the next begin.
        keep: list[Any] | None = [] if job.get("footprint") else None
        resets = frozenset(job.get("resets", ()))
        statm = os.open("/proc/self/statm", os.O_RDONLY) if keep is not None else -1
        pread = os.pread

        def vm_now() -> int:
            return int(pread(statm, 64, 0).split(None, 1)[0]) * mmap.PAGESIZE

        # Results go out in batches (a frame per input would cost more than
        # most inputs); each input's CPU time is measured here and its start
        # published in shared memory, where the worker enforces the limit.
        items: list[list[Any]] = []
        bufs: list[bytes] = []
        size = 0
        batch_start = time.monotonic()
        cpu_ns = time.process_time_ns
        wall_ns = time.monotonic_ns
        publish = _PROGRESS.pack_into

        def flush() -> None:
            nonlocal items, bufs, size, batch_start
            if items:
                write_frame(wfd, {"k": "outs", "items": items}, *bufs)
            items, bufs, size, batch_start = [], [], 0, time.monotonic()

        # The worker asks for the batch when an input runs long while results
        # wait in it (_FLUSH_AFTER): sent from the handler only while the
        # program's function runs, never in the middle of this loop's own
        # writes, and never from inside itself.
        calling = False

        def on_flush_signal(_sig: int, _frame: Any) -> None:
            nonlocal calling
            if calling and items:
                calling = False
                try:
                    flush()
                finally:
                    calling = True

        signal.signal(_FLUSH_SIGNAL, on_flush_signal)
        # Results wait in the batch at most until an input expected to be
        # slow starts, so the harness's view of progress stays current.
        slow = frozenset(job.get("slow", ()))
        i = int(job["start"])
        while i < _SHARED.unpack_from(end_map, 0)[0]:
            if items and i in slow:
                flush()
            if keep is not None:
                if i in resets:
                    keep.clear()
                vm_before = vm_now()
            c0 = cpu_ns()
            publish(end_map, _PROGRESS_AT, c0, wall_ns())
            _INDEX.pack_into(end_map, _INDEX_AT, i)
            try:
                calling = True
                result = fn(*inputs[i])
                calling = False
                data = encode(result, iterate)
            except BaseException as exc:  # noqa: BLE001
                calling = False
                items.append([i, "err", (cpu_ns() - c0) / 1e9, 0, f"{type(exc).__name__}: {exc}"[:2000]])
                if stop_on_error:
                    break
            else:
                if items and len(data) >= _BATCH_BYTES:
                    flush()  # a big output travels in a frame of its own: relayed and judged without copies
                item = [i, "out", (cpu_ns() - c0) / 1e9, len(data)]
                bufs.append(data)
                size += len(data)
                if keep is not None:
                    keep.append(result)
                    item.append(vm_now() - vm_before)
                items.append(item)
            i += 1
            if size >= _BATCH_BYTES or time.monotonic() - batch_start >= _BATCH_SECONDS:
                flush()
        flush()
        send({"k": "done", "status": "ok"})

    @staticmethod
    def _run_script(program: str, send: Any, sink: _Sink, prelude: Any) -> None:
        status, msg = "ok", ""
        send({"k": "ready"})
        try:
            if isinstance(prelude, str):
                raise RuntimeError(prelude)
            if prelude is not None:
                exec(prelude, {"__name__": "__prelude__"})  # noqa: S102 - trusted
            exec(compile(program, "<program>", "exec"), {"__name__": "__main__"})  # noqa: S102
        except SystemExit as exc:
            if exc.code not in (None, 0):
                status, msg = "error", f"SystemExit: {exc.code}"
        except BaseException:  # noqa: BLE001
            status, msg = "error", traceback.format_exc(limit=8)[-4000:]
        try:
            text = sink.text()[-16000:]
        except BaseException:  # noqa: BLE001
            text = ""
        send({"k": "done", "status": status, "msg": msg, "stdout": text})


def main() -> None:
    """Entry point: ``python worker.py CONFIG_JSON``."""
    cfg = json.loads(sys.argv[1])
    # Protocol frames own fd 1; anything printed by accident goes to stderr.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.makedirs(cfg["workdir_root"], exist_ok=True)
    os.chmod(cfg["workdir_root"], 0o711)
    if os.getpid() != 1:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # orphans come back to us to be reaped
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        with builtins.open("/proc/self/oom_score_adj", "w") as f:
            f.write("-500")
    except OSError:
        pass
    for name in cfg.get("preload", []):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional module is fine
            pass
    _libc()  # loaded once, before any fork
    _fork_handle_ready()
    gc.collect()
    gc.freeze()
    worker = Worker(cfg)
    worker.out_fd = out_fd
    try:
        worker.send({"ev": "hello", "pid": os.getpid(), "uid": worker.uid, "pid1": worker.pid1})
        worker.serve()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise


if __name__ == "__main__":
    main()
