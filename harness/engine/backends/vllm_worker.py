"""The vLLM worker: one ``vllm.LLM`` in its own process, driven by the ``vllm`` backend over a pipe.

This file runs under the Python of the environment that holds vLLM (the
managed one ``scripts/install_vllm.sh`` builds, or the harness's own when
vLLM is installed there), so it imports nothing but the standard library and
vLLM: the harness itself need not be installed there.

Protocol: one JSON object per line.  Requests arrive on stdin, replies leave
on the worker's original stdout, which is moved off fd 1 first; fd 1 then
points at stderr, so whatever vLLM and its EngineCore processes print lands
in the log, never in the protocol.  Every request gets exactly one reply,
``{"ok": value}`` or ``{"error": {"type", "message", "dead"}}``.

Operations: ``load`` (build the ``LLM``), ``chat`` and ``encode`` (its
tokenizer), ``generate`` (requests as ``SamplingParams`` keyword arguments,
LoRA adapters as ``[name, id, path]``), ``close`` (shut the engine core down
explicitly, then exit).  End of input means close.

The worker leads its own session (the backend starts it so), and a watchdog
ends the whole session, EngineCore and vLLM's workers included, if the
harness process that started it goes away without closing it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

# Python puts this file's folder first on sys.path, and the harness's own ``vllm.py`` (the backend)
# lives there: ``import vllm`` must find vLLM, so the folder goes (before anything imports vLLM;
# the processes vLLM spawns inherit the cleaned path).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

#: KV cache size on the CPU build when neither ``kv_cache_memory_bytes`` nor
#: ``VLLM_CPU_KVCACHE_SPACE`` says one: vLLM's own default reserves
#: ``gpu_memory_utilization`` (0.9) of all RAM, which a shared machine rarely has free.
CPU_DEFAULT_KV_CACHE_BYTES = 4 << 30


def _watch_parent(parent: int) -> None:
    """End this session (the worker and every process vLLM started) once the harness process is gone."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            try:
                os.killpg(os.getpgid(0), signal.SIGKILL)
            finally:
                os._exit(1)


class Worker:
    """Holds the ``LLM`` and answers requests."""

    def __init__(self) -> None:
        self.llm: Any = None
        self.tokenizer: Any = None
        self.vllm: Any = None

    def load(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Build the ``LLM``; returns what the backend needs to know of it."""
        import vllm
        from vllm.platforms import current_platform

        self.vllm = vllm
        kwargs = dict(msg["kwargs"])
        cpu = bool(current_platform.is_cpu())
        if cpu and kwargs.get("kv_cache_memory_bytes") is None and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
            kwargs["kv_cache_memory_bytes"] = CPU_DEFAULT_KV_CACHE_BYTES
        if cpu:
            # This worker is already a process apart from the harness: on the CPU build the engine core runs
            # here rather than in two more processes that would each import torch and vLLM again (about half
            # the start-up CPU time and 1 GiB).  VLLM_ENABLE_V1_MULTIPROCESSING=1 in the environment keeps them.
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if kwargs.get("kv_cache_memory_bytes") is None:
            kwargs.pop("kv_cache_memory_bytes", None)  # older vLLM releases do not know the argument
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        template = getattr(self.tokenizer, "chat_template", None)
        return {
            "version": getattr(vllm, "__version__", "?"),
            "device": "cpu" if cpu else str(getattr(current_platform, "device_type", "") or "gpu"),
            "max_model_len": getattr(config, "max_model_len", None),
            "chat_template": template if isinstance(template, str) else None,
            "kv_cache_memory_bytes": kwargs.get("kv_cache_memory_bytes"),
            "engine_core": "worker" if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0" else "processes",
        }

    def chat(self, msg: dict[str, Any]) -> str:
        """The chat template applied to ``messages``, with the generation prompt (and the template's own
        variables in ``kwargs``: ``enable_thinking``)."""
        return self.tokenizer.apply_chat_template(msg["messages"], tokenize=False, add_generation_prompt=True,
                                                  **(msg.get("kwargs") or {}))  # fmt: skip

    def encode(self, msg: dict[str, Any]) -> list[int]:
        """Token ids of ``text``."""
        return list(self.tokenizer.encode(msg["text"], add_special_tokens=bool(msg.get("add_special_tokens", True))))

    def generate(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        """One ``LLM.generate`` over every request of the message."""
        params = [self.vllm.SamplingParams(**kw) for kw in msg["params"]]
        loras = msg.get("lora")
        lora_requests = None
        if loras is not None:
            from vllm.lora.request import LoRARequest

            lora_requests = [LoRARequest(*entry) if entry else None for entry in loras]
        outputs = self.llm.generate(msg["prompts"], params, use_tqdm=bool(msg.get("use_tqdm")),
                                    lora_request=lora_requests)  # fmt: skip
        return [
            {
                "prompt_token_ids": list(out.prompt_token_ids or []),
                "outputs": [
                    {
                        "text": o.text,
                        "finish_reason": o.finish_reason,
                        "token_ids": list(o.token_ids or []),
                        # None: the model's EOS; a string: a stop string; an int: a stop token.
                        "stop_reason": o.stop_reason,
                    }
                    for o in out.outputs
                ],
            }
            for out in outputs
        ]

    def close(self) -> None:
        """Shut the engine core down explicitly (its processes outlive a dropped ``LLM`` otherwise)."""
        llm, self.llm = self.llm, None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()


def _reply(out: Any, value: Any = None, error: BaseException | None = None) -> None:
    if error is None:
        doc: dict[str, Any] = {"ok": value}
    else:
        dead = type(error).__name__ == "EngineDeadError"
        message = " ".join(str(error).split()) or type(error).__name__
        doc = {"error": {"type": type(error).__name__, "message": message[:2000], "dead": dead}}
    out.write(json.dumps(doc) + "\n")
    out.flush()


def main() -> int:
    """Serve requests until ``close`` or the end of input."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # vLLM's prints and every child process's stdout go to the log, not into the protocol
    sys.stdout = sys.stderr
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    worker = Worker()
    handlers = {"load": worker.load, "chat": worker.chat, "encode": worker.encode, "generate": worker.generate}
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        op = msg.get("op")
        if op == "close":
            try:
                worker.close()
            finally:
                _reply(proto, True)
            # The engine is shut down; an interpreter teardown of torch and vLLM (threads, atexit hooks)
            # only delays the exit, and the harness ends this session right after anyway.
            os._exit(0)
        try:
            handler = handlers[op]
        except KeyError:
            _reply(proto, error=ValueError(f"unknown operation {op!r}"))
            continue
        try:
            value = handler(msg)
        except Exception as exc:  # every failure is answered; the backend names it
            _reply(proto, error=exc)
        else:
            _reply(proto, value)
    worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
