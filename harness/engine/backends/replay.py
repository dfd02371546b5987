"""The ``replay`` backend: completions read from a file instead of a model.

``replay:SAMPLES.jsonl`` answers benchmark requests from an EvalPlus-style
samples file (``task_id`` + ``solution`` or ``completion``): sample ``i`` of a
task is the task's ``i``-th line.  Lines that carry a ``prompt`` (or chat
``messages``) and a ``completion`` instead answer any request with that exact
text, which makes scripted whole-pipeline tests possible.  Nothing is cached:
the file is the cache.

A line with ``task_id`` and ``text`` is a raw model reply (the shape of
``harness eval``'s ``generations.jsonl``): its code is extracted as a fresh
reply's would be, and its ``finish_reason``, ``reasoning_content``, token
counts and ``response_prefix`` are replayed with it, so a reasoning model's
stored replies (thinking, truncation) are graded as they were generated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.engine.base import Backend, BackendOptions, Emit
from harness.engine.types import Completion, Job, Request
from harness.errors import HarnessError
from harness.samples import file_sha256


class ReplayOptions(BackendOptions):
    """Options of the ``replay`` backend."""

    #: Answer requests with more samples than the file holds by cycling (default: refuse).
    cycle: bool = False


def _prompt_key(request: Request) -> str:
    return hashlib.sha256(json.dumps(request.content_key(), sort_keys=True).encode()).hexdigest()


class ReplayBackend(Backend):
    """Stored completions, by task id or by prompt."""

    name = "replay"
    Options = ReplayOptions
    cacheable = False
    dedupe_greedy = False

    def __init__(self, identifier: str, options: BackendOptions) -> None:
        super().__init__(identifier, options)
        self.path = Path(identifier).expanduser()
        if not self.path.is_file():
            raise HarnessError(f"replay file {self.path} does not exist; pass replay:PATH to a samples .jsonl file")
        self.by_task: dict[str, list[tuple[str | None, str]]] = {}
        #: Raw replies (``text`` lines): what else they carry, by (task, index in the task's list).
        self.meta: dict[tuple[str, int], dict[str, Any]] = {}
        self.by_prompt: dict[str, list[str]] = {}
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for lineno, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                self._add(lineno, raw)
        if not self.by_task and not self.by_prompt:
            raise HarnessError(f"replay file {self.path} holds no samples")

    def _add(self, lineno: int, raw: str) -> None:
        where = f"replay file {self.path} line {lineno}"
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{where} is not valid JSON ({exc.msg}); fix or remove the line") from None
        if not isinstance(row, dict):
            raise HarnessError(f"{where} is not a JSON object")
        if isinstance(row.get("task_id"), str) and isinstance(row.get("text"), str):
            entries = self.by_task.setdefault(row["task_id"], [])
            self.meta[(row["task_id"], len(entries))] = _reply_meta(where, row)
            entries.append((None, row["text"]))
            return
        if isinstance(row.get("task_id"), str):
            for field in ("solution", "completion"):
                if isinstance(row.get(field), str):
                    self.by_task.setdefault(row["task_id"], []).append((field, row[field]))
                    return
            raise HarnessError(f"{where}: task {row['task_id']} has no string 'solution', 'completion' or 'text'")
        if ("prompt" in row or "messages" in row) and isinstance(row.get("completion"), str):
            try:
                request = Request(
                    prompt=row.get("prompt"),
                    messages=tuple(row["messages"]) if "messages" in row else None,
                    response_prefix=row.get("response_prefix", ""),
                )
            except (TypeError, HarnessError) as exc:
                raise HarnessError(f"{where}: bad prompt/messages ({exc})") from None
            self.by_prompt.setdefault(_prompt_key(request), []).append(row["completion"])
            return
        raise HarnessError(f"{where} has neither task_id + solution/completion nor prompt + completion")

    def identity(self) -> dict[str, Any]:
        """The file's content hash."""
        return {"file": file_sha256(self.path)}

    def default_style(self) -> str:
        """Replayed text is used as stored."""
        return "replay"

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        """Look each sample up; a request the file cannot answer is an error naming it."""
        cycle = self.options.cycle  # type: ignore[attr-defined]
        for j, job in enumerate(jobs):
            req = job.request
            if req.task_id is not None and self.by_task:
                stored = self.by_task.get(req.task_id)
                if not stored:
                    raise HarnessError(f"replay file {self.path} has no sample for task {req.task_id}")
                entries: list[tuple[str | None, str]] = list(stored)
            else:
                texts = self.by_prompt.get(_prompt_key(req))
                if not texts:
                    shown = (req.prompt or str(req.messages))[:60]
                    raise HarnessError(f"replay file {self.path} has no completion for the prompt {shown!r}")
                entries = [(None, t) for t in texts]
            for i in job.indices:
                if i >= len(entries) and not cycle:
                    what = req.task_id or "this prompt"
                    raise HarnessError(
                        f"replay file {self.path} holds {len(entries)} sample(s) for {what}, sample {i + 1} was "
                        f"requested; lower --n to {len(entries)} (or --engine-arg cycle=true)"
                    )
                field, text = entries[i % len(entries)]
                meta = self.meta.get((req.task_id or "", i % len(entries))) if field is None else None
                if meta is not None:
                    emit(j, i, Completion(text, **meta))
                else:
                    emit(j, i, Completion(text, "replay", 0, 0, sample_field=field))


#: Finish reasons a stored reply may carry (what the backends write in ``generations.jsonl``).
_FINISH = ("stop", "length", "error")


def _reply_meta(where: str, row: dict[str, Any]) -> dict[str, Any]:
    """Completion fields of a stored raw reply, checked (a wrong type names the line and the field)."""
    finish = row.get("finish_reason", "stop")
    if finish not in _FINISH:
        raise HarnessError(f"{where}: finish_reason {finish!r} is not one of {', '.join(_FINISH)}")
    meta: dict[str, Any] = {"finish_reason": finish}
    for key in ("prompt_tokens", "completion_tokens", "reasoning_tokens"):
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise HarnessError(f"{where}: {key} must be a whole number >= 0, got {value!r}")
        meta[key] = value
    for key, name in (("reasoning_content", "reasoning"), ("response_prefix", "response_prefix")):
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise HarnessError(f"{where}: {key} must be a string, got {type(value).__name__}")
        if value is not None:
            meta[name] = value
    meta.setdefault("response_prefix", "")
    return meta
