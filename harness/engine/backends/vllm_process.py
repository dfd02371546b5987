"""The harness side of the vLLM worker process (``vllm_worker.py``): start it, talk to it, end it.

``WorkerLLM`` looks like the part of ``vllm.LLM`` the ``vllm`` backend uses
(``generate``, ``get_tokenizer``, ``llm_engine.model_config.max_model_len``),
so the backend drives an engine in another environment's Python exactly as
it would drive one in its own.  The worker leads its own session: ``close``
(or the interpreter's exit, or the backend being dropped) ends that whole
session, so vLLM's EngineCore and worker processes never outlive the run.
The worker's log is copied to this process's stderr and its tail kept, so a
failure is reported with its root cause (vLLM logs it in the EngineCore
process, not in the exception the client sees).
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("vllm_worker.py")
#: How long ``close`` waits for the worker to shut its engine down before ending its session by force.
CLOSE_TIMEOUT_S = 20.0

# An exception line of a traceback, perhaps behind vLLM's "(EngineCore pid=12) " process prefix.
_EXCEPTION_LINE = re.compile(r"^(?:\([\w:]+ pid=\d+\)\s*)?([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")
# Exceptions that only say that another one happened.
_GENERIC = ("EngineDeadError", "See root cause above", "See stack trace", "Engine core initialization failed")


class WorkerError(Exception):
    """The worker failed a request (or died); ``cause`` is the root cause found in its log, if any."""

    def __init__(self, kind: str, message: str, dead: bool, cause: str | None) -> None:
        super().__init__(message)
        self.kind, self.message, self.dead, self.cause = kind, message, dead, cause

    def describe(self) -> str:
        """One line: the root cause when the log had one, else the worker's own message."""
        if self.cause:
            return self.cause
        return f"{self.kind}: {self.message}" if self.kind else self.message


def root_cause(lines: Iterable[str]) -> str | None:
    """The last specific exception line of a log (``ValueError: head size 16 ...``), or None."""
    for line in reversed(list(lines)):
        match = _EXCEPTION_LINE.match(line.strip())
        if match and not any(g in match.group(0) for g in _GENERIC):
            text = f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2).strip()}"
            return text if len(text) <= 300 else text[:297] + "..."
    return None


def session_members(sid: int) -> set[int]:
    """Live (not zombie) processes of session ``sid``, from /proc (empty where there is none)."""
    found: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state != "Z" and os.getsid(int(entry)) == sid:
                found.add(int(entry))
        except (OSError, IndexError):
            continue
    return found


def _end_session(proc: subprocess.Popen[str]) -> None:
    """Kill the worker's whole session (EngineCore, vLLM's workers, its resource tracker) and wait for it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    # A process that made its own group inside the session escapes killpg; and a killed process takes a
    # moment to go (freeing a model's memory): wait until the session is empty.
    deadline = time.monotonic() + 15
    while (left := session_members(proc.pid)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass


class RemoteTokenizer:
    """The worker's tokenizer: the calls the backend makes, answered by the worker."""

    def __init__(self, worker: WorkerLLM, chat_template: str | None) -> None:
        self._worker = worker
        self.chat_template = chat_template

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = True, **template_kwargs: Any) -> str:  # fmt: skip
        """The template applied by the worker (text only: the backend tokenizes separately); ``template_kwargs``
        are the template's own variables (``enable_thinking``)."""
        if tokenize or not add_generation_prompt:
            raise ValueError("the vLLM worker renders chat text with the generation prompt only")
        return self._worker.call({"op": "chat", "messages": messages, "kwargs": template_kwargs},
                                 "applying the chat template")  # fmt: skip

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``."""
        return self._worker.call({"op": "encode", "text": text, "add_special_tokens": add_special_tokens},
                                 "tokenizing a prompt")  # fmt: skip


class WorkerLLM:
    """A ``vllm.LLM`` in a worker process started with ``python``."""

    def __init__(self, python: str, kwargs: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.python = python
        self._tail: collections.deque[str] = collections.deque(maxlen=400)
        self._lock = threading.Lock()
        child_env = dict(os.environ)
        # vLLM's INFO lines are many per engine start; its warnings and tracebacks still come through.
        child_env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        child_env["PYTHONUNBUFFERED"] = "1"
        child_env.update(env or {})
        try:
            self.proc = subprocess.Popen(
                [python, str(WORKER_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=child_env, text=True, encoding="utf-8", errors="replace", bufsize=1, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise WorkerError("OSError", f"cannot start {python}: {exc.strerror or exc}", True, None) from None
        # Runs when the backend is dropped or the interpreter exits: no EngineCore left behind either way.
        self._finalizer = weakref.finalize(self, _end_session, self.proc)
        self._log_thread = threading.Thread(target=self._copy_log, name="vllm-worker-log", daemon=True)
        self._log_thread.start()
        try:
            self.info: dict[str, Any] = self.call({"op": "load", "kwargs": kwargs}, "loading the model")
        except BaseException:
            self.close(graceful=False)
            raise
        self.device: str = self.info.get("device") or "gpu"
        self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=self.info.get("max_model_len")))
        self._tokenizer = RemoteTokenizer(self, self.info.get("chat_template"))

    @property
    def pid(self) -> int:
        """The worker's process id (also its session and process-group id)."""
        return self.proc.pid

    def _copy_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._tail.append(line.rstrip("\n"))
            try:
                sys.stderr.write(line)
            except (OSError, ValueError):  # stderr closed at interpreter exit
                pass

    def log_tail(self) -> list[str]:
        """The last lines the worker (and vLLM's processes) logged."""
        return list(self._tail)

    def call(self, msg: dict[str, Any], doing: str) -> Any:
        """Send one request and wait for its reply; a failure or a dead worker raises ``WorkerError``."""
        with self._lock:
            proc = self.proc
            try:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(json.dumps(msg) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except (BrokenPipeError, ValueError, OSError):
                line = ""
            except BaseException:
                # Interrupted mid-call: the worker's state is unknown, so it goes, with everything it started.
                self._finalizer()
                raise
            if not line:
                try:
                    code = proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    code = None
                self._log_thread.join(timeout=2)  # the root cause is usually among the last lines
                self._finalizer()
                how = f"exited with code {code}" if code is not None else "stopped answering"
                raise WorkerError("", f"the vLLM worker {how} while {doing}", True, root_cause(self._tail))
            reply = json.loads(line)
        if "error" in reply:
            err = reply["error"]
            self._log_thread.join(timeout=0.5)  # let the traceback's last lines arrive
            raise WorkerError(err.get("type", ""), err.get("message", ""), bool(err.get("dead")),
                              root_cause(self._tail))  # fmt: skip
        return reply["ok"]

    def get_tokenizer(self) -> RemoteTokenizer:
        """The worker's tokenizer."""
        return self._tokenizer

    def generate(self, prompts: list[Any], params: list[dict[str, Any]], use_tqdm: bool = True,
                 lora_request: list[tuple[str, int, str] | None] | None = None) -> list[SimpleNamespace]:  # fmt: skip
        """``LLM.generate`` in the worker; params are ``SamplingParams`` keyword arguments, adapters tuples."""
        msg = {"op": "generate", "prompts": prompts, "params": params, "use_tqdm": use_tqdm,
               "lora": [list(r) if r else None for r in lora_request] if lora_request is not None else None}  # fmt: skip
        outputs = self.call(msg, "generating")
        return [
            SimpleNamespace(prompt_token_ids=out["prompt_token_ids"],
                            outputs=[SimpleNamespace(**o) for o in out["outputs"]])  # fmt: skip
            for out in outputs
        ]

    def close(self, graceful: bool = True) -> None:
        """Shut the engine down, then end the worker's session (nothing it started survives)."""
        if not self._finalizer.alive:
            return
        if graceful and self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "close"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=CLOSE_TIMEOUT_S)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self._finalizer()
