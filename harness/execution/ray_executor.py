"""Sandbox workers as Ray actors: grading past one machine (``--executor ray``).

Each Ray actor hosts one ordinary sandbox worker on its node: the same
fork server under bubblewrap, the same uid lease (``/tmp/.harness-uids`` of
*that* node), the same limits and sweep after every program.  The harness
keeps everything else: the scheduler, work stealing, judging outputs against
expected ones, the verdict cache and the run record.  A remote worker is a
proxy with the local worker's interface (frames in, frames out), so a job
runs remotely exactly as it runs here and gets the same verdict.

Transport: frames to the worker go through ``send`` calls numbered by the
proxy (a threaded actor may run calls out of order; the actor writes them in
number order); frames from the worker are read by a thread in the actor and
fetched in batches by ``recv``.  An inputs payload is put into the object
store once per run and shared by every actor that needs it.

Failures: a worker process that dies on its node is restarted there and the
program in it fails, as locally.  An actor that dies (its node was lost, or
Ray killed it) loses nothing: the harness runs the unfinished part of its job
on another worker (at most :data:`MAX_LOSSES` times per job), replaces the
actor where the cluster has a free CPU, and otherwise carries on with fewer
workers.  The worker processes of a lost actor die with it (parent-death
signal, bubblewrap's ``--die-with-parent``), and so do their programs.

Ray is optional (``pip install 'code-harness[ray]'``), imported only here.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from harness.errors import SandboxError
from harness.execution import protocol

#: How often the unfinished part of one job is moved off a lost worker before it fails.
MAX_LOSSES = 3
#: Seconds a replacement actor may take to start before the slot is given up.
REPLACE_TIMEOUT = 60.0
#: Seconds the first actors may take to start (a busy cluster queues them).
START_TIMEOUT = 300.0
_RECV_WAIT = 30.0  # seconds an actor's recv waits for a frame before returning empty (keeps calls short)


def require_ray() -> Any:
    """The ``ray`` module, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise SandboxError("--executor ray needs Ray, which is not installed: pip install 'code-harness[ray]'"
                           ) from None  # fmt: skip
    return ray


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (None: ``auto``, a cluster started here); True when we joined it.

    A process that already joined one (vLLM's engine with
    ``distributed_executor_backend=ray``, say) is left as it is: both share it.
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    _check_reachable(address)
    try:
        ray.init(address=address or "auto", namespace="harness", log_to_driver=False, logging_level="ERROR",
                 configure_logging=False)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "auto (a cluster started on this machine)"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise SandboxError(f"cannot join the Ray cluster at {where}: {first}; {_start_hint()}") from None
    return True


def _start_hint() -> str:
    return ("start one with `ray start --head` (and `ray start --address=HEAD:6379` on the other nodes), then pass "
            "--ray-address HEAD:6379 or set RAY_ADDRESS")  # fmt: skip


def _check_reachable(address: str | None) -> None:
    """Fail in seconds, naming the fix, where Ray itself would retry an unreachable head for minutes."""
    target = address
    if not target or target == "auto":
        # What `ray start --head` on this machine left behind (Ray's own record of the current cluster).
        try:
            with open(os.path.join(tempfile.gettempdir(), "ray", "ray_current_cluster")) as f:
                target = f.read().strip()
        except OSError:
            raise SandboxError(f"no Ray cluster runs on this machine; {_start_hint()}") from None
    if "://" in target:
        return  # a Ray Client address (ray://): Ray connects and reports on its own
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise SandboxError(f"Ray address {target!r} is not HOST:PORT; {_start_hint()}")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise SandboxError(f"cannot reach the Ray cluster at {target} ({exc.strerror or exc}); {_start_hint()}"
                           ) from None  # fmt: skip


def cluster_cpus() -> int:
    """CPUs of the whole cluster (the default number of remote workers)."""
    ray = require_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _version() -> str:
    from harness import __version__
    from harness.verdict_cache import GRADER_VERSION

    return f"{__version__}/{GRADER_VERSION}"


class SandboxActor:
    """Runs on a Ray node: one sandbox worker process and the relay of its frames (see the module docs)."""

    def __init__(self, settings: dict[str, Any], index: int) -> None:
        from harness.execution.sandbox import SandboxSettings, _Worker, isolation_mode

        self.settings = SandboxSettings(**{**settings, "executor": "local"})
        self.mode = isolation_mode(self.settings)
        # One long-lived thread starts worker processes: bubblewrap's --die-with-parent follows it.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._pending: dict[int, tuple[dict[str, Any], Any]] = {}
        self._next = 0
        self._frames: deque[tuple[dict[str, Any], bytes]] = deque()
        self._eof = False
        self._generation = 0
        self.worker = _Worker(index, self.settings, self.mode, self._spawner)
        self.worker.handshake()
        self._start_reader()

    def _start_reader(self) -> None:
        self._generation += 1
        gen, fd = self._generation, self.worker.out_fd
        threading.Thread(target=self._read, args=(gen, fd), daemon=True).start()

    def _read(self, gen: int, fd: int) -> None:
        while True:
            try:
                frame = protocol.read_frame(fd)
            except (OSError, protocol.ProtocolError):
                frame = None
            with self._cond:
                if gen != self._generation:
                    return  # a restarted worker has a reader of its own
                if frame is None:
                    self._eof = True
                else:
                    self._frames.append((frame[0], bytes(frame[1])))
                self._cond.notify_all()
            if frame is None:
                return

    def info(self) -> dict[str, Any]:
        """Where this worker runs and how it isolates programs."""
        import ray

        lease = self.worker._lease
        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "mode": self.mode,
                "pid": os.getpid(), "worker_pid": self.worker.proc.pid, "uid": lease[0] if lease else None,
                "version": _version()}  # fmt: skip

    def send(self, seq: int, header: dict[str, Any], payload: Any = b"") -> None:
        """Frame number ``seq`` for the worker; frames are written in number order whatever order calls run in."""
        with self._cond:
            self._pending[seq] = (header, payload)
        with self._write_lock:  # one writer at a time drains what is in order
            while True:
                with self._cond:
                    item = self._pending.pop(self._next, None)
                    if item is None:
                        return
                    self._next += 1
                try:
                    self.worker.send(item[0], item[1])
                except OSError:
                    pass  # a dead worker shows as the end of its frames

    def recv(self, wait: float = _RECV_WAIT) -> tuple[list[tuple[dict[str, Any], bytes]], bool]:
        """Frames the worker sent since the last call (waiting up to ``wait`` s for one), and whether it ended."""
        deadline = time.monotonic() + wait
        with self._cond:
            while not self._frames and not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            frames = list(self._frames)
            self._frames.clear()
            return frames, self._eof and not frames

    def restart(self) -> dict[str, Any]:
        """Replace a worker process that died (same uid); frames of the old one are dropped."""
        with self._write_lock:
            self.worker.restart()
            with self._cond:
                self._frames.clear()
                self._eof = False
                self._pending.clear()
            self._start_reader()
        return self.info()

    def reset_sequence(self, seq: int) -> None:
        """The proxy's next frame number (after a restart)."""
        with self._cond:
            self._next = seq

    def close(self) -> None:
        """Stop the worker (and release its uid lease)."""
        self.worker.close()


_actor_class: Any = None


def _remote_class() -> Any:
    global _actor_class
    if _actor_class is None:
        ray = require_ray()
        _actor_class = ray.remote(SandboxActor)
    return _actor_class


class RemoteInputs:
    """Inputs payloads put into the object store once per run, shared by every actor."""

    def __init__(self) -> None:
        self._refs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def ref(self, key: str, make: Callable[[], bytes]) -> Any:
        with self._lock:
            ref = self._refs.get(key)
            if ref is None:
                ref = self._refs[key] = require_ray().put(make())
            return ref

    def drop(self, key: str) -> None:
        with self._lock:
            self._refs.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._refs.clear()


class RayWorker(protocol.Sender):
    """Harness-side proxy of a remote worker with :class:`harness.execution.sandbox._Worker`'s interface."""

    def __init__(self, index: int, settings: Any, inputs: RemoteInputs, timeout: float = START_TIMEOUT) -> None:
        self.index = index
        self.settings = settings
        self.inputs = inputs
        self.known_inputs: set[str] = set()
        self.lost = False  # the actor died: its unit runs elsewhere
        self.retired = False  # lost and not replaced: this slot takes no more work
        # Per-run figures (Sandbox.stats adds them up).
        self.busy, self.last_done, self.frames, self.bytes_in, self.judge = 0.0, 0.0, 0, 0, 0.0
        self._lock = threading.Lock()
        self._frames: deque[tuple[dict[str, Any], bytes]] = deque()
        self._seq = 0
        self.actor: Any = None
        self.info: dict[str, Any] = {}
        self._create(timeout)

    def _create(self, timeout: float) -> None:
        ray = require_ray()
        options = {"num_cpus": 1, "max_concurrency": 8, "max_restarts": 0, "scheduling_strategy": "SPREAD"}
        settings = {k: v for k, v in self.settings.__dict__.items()}
        actor = _remote_class().options(**options).remote(settings, self.index)
        try:
            info = ray.get(actor.info.remote(), timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor)
            raise SandboxError(f"no Ray node took a sandbox worker within {timeout:.0f} s (each needs 1 free CPU); "
                               "pass a smaller --parallel or add nodes") from None  # fmt: skip
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            ray.kill(actor)
            cause = getattr(exc, "cause", None) or exc
            text = str(cause).strip().splitlines()
            why = next((line for line in reversed(text) if "SandboxError" in line), text[-1] if text else repr(exc))
            raise SandboxError(f"a sandbox worker failed to start on a Ray node: {why}") from None
        except ray.exceptions.RayError as exc:  # its node went down under it, say
            self._kill_quietly(actor)
            raise SandboxError(f"a sandbox worker could not start on a Ray node: {exc}") from None
        if info["version"] != _version():
            ray.kill(actor)
            raise SandboxError(f"Ray node {info['host']} runs harness {info['version']}, this one {_version()}: "
                               "install the same harness version on every node")  # fmt: skip
        self.actor, self.info = actor, info
        self.known_inputs.clear()
        self._frames.clear()
        self._seq = 0
        self.lost = False

    # ------------------------------------------------------ the worker interface
    @property
    def program_uid(self) -> int | None:
        """The uid this worker's programs run under on its node."""
        return self.info.get("uid")

    def handshake(self) -> None:
        """Nothing to wait for: the actor greeted when it was created."""

    def send(self, header: dict[str, Any], payload: Any = b"") -> None:
        if self.lost:
            raise OSError("the Ray worker was lost")
        with self._lock:
            seq = self._seq
            self._seq += 1
            try:
                self.actor.send.remote(seq, header, payload)
            except Exception as exc:  # noqa: BLE001 - a dead actor surfaces as a failed submission
                self.lost = True
                raise OSError(f"the Ray worker was lost: {exc}") from None

    def send_inputs(self, key: str, make: Callable[[], bytes]) -> None:
        """An inputs payload, through the object store (one copy per run, fetched once per node)."""
        self.send({"op": "inputs", "key": key}, self.inputs.ref(key, make))

    def recv(self) -> tuple[dict[str, Any], bytes] | None:
        ray = require_ray()
        while not self._frames:
            if self.lost:
                return None
            try:
                frames, eof = ray.get(self.actor.recv.remote())
            except ray.exceptions.RayTaskError:
                raise  # the relay's own code failed: a bug, not a lost machine
            except ray.exceptions.RayError:  # the actor, its node or its object's owner is gone
                self.lost = True
                return None
            self._frames.extend(frames)
            if eof and not self._frames:
                return None  # the worker process died on its node (the actor lives on)
        return self._frames.popleft()

    def restart(self) -> bool:
        """After a worker death: restart it on its node; after an actor loss: a new actor, or retire.

        Returns whether the worker's machine was lost (found so now, or before): then what it ran was not
        the program's doing and runs again elsewhere.
        """
        ray = require_ray()
        if not self.lost:
            try:
                with self._lock:
                    self.info = ray.get(self.actor.restart.remote(), timeout=REPLACE_TIMEOUT)
                    self._seq = 0
                    ray.get(self.actor.reset_sequence.remote(0), timeout=REPLACE_TIMEOUT)
                self.known_inputs.clear()
                self._frames.clear()
                return False
            except ray.exceptions.RayError:
                # The actor died, or its node is going down (the worker process went first, then a new
                # one could not start there: a RayTaskError from the node): a lost machine either way.
                self.lost = True
        self._forget_actor()
        if ray.available_resources().get("CPU", 0) < 1:
            self.retired = True  # no room for a replacement: the other workers take the rest
            return True
        try:
            self._create(REPLACE_TIMEOUT)
        except SandboxError:
            self.retired = True
        return True

    @staticmethod
    def _kill_quietly(actor: Any) -> None:
        try:
            require_ray().kill(actor)
        except Exception:  # noqa: BLE001 - already gone
            pass

    def _forget_actor(self) -> None:
        if self.actor is not None:
            self._kill_quietly(self.actor)
        self.actor = None

    def close(self, release: bool = True) -> None:
        ray = require_ray()
        if self.actor is None:
            return
        try:
            ray.get(self.actor.close.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - a lost actor has nothing left to close
            pass
        self._forget_actor()


def start_workers(settings: Any, inputs: RemoteInputs) -> tuple[list[RayWorker], str]:
    """Connect and start the remote workers; returns them and the isolation every node gives."""
    count = settings.workers if settings.workers > 0 else cluster_cpus()
    started: list[RayWorker] = []
    try:
        # Actors start in parallel: creating one returns at once, the first info() waits.
        pool = ThreadPoolExecutor(max_workers=min(32, count))
        futures = [pool.submit(RayWorker, k, settings, inputs) for k in range(count)]
        errors: list[BaseException] = []
        for fut in futures:
            try:
                started.append(fut.result())
            except BaseException as exc:  # noqa: BLE001 - reported after the others are stopped
                errors.append(exc)
        pool.shutdown()
        if errors:
            raise errors[0]
    except BaseException:
        for w in started:
            w.close()
        raise
    modes = {w.info["mode"]: w.info["host"] for w in started}
    if len(modes) > 1:
        for w in started:
            w.close()
        raise SandboxError(f"Ray nodes differ in isolation ({', '.join(f'{h}: {m}' for m, h in modes.items())}): "
                           "install bubblewrap on every node, or pass --isolation process")  # fmt: skip
    return started, next(iter(modes))


def describe(workers: Sequence[RayWorker]) -> str:
    """``N workers on M nodes``."""
    nodes = {w.info.get("node") for w in workers}
    return f"{len(workers)} workers on {len(nodes)} node{'s' if len(nodes) != 1 else ''}"


def settings_for(settings: Any, workers: int) -> Any:
    """``settings`` with the number of workers that actually started."""
    return replace(settings, workers=workers)
