"""A small OpenAI-compatible HTTP server for tests, answering through a ``harness.engine.Engine``.

It serves ``POST /v1/completions``, ``POST /v1/chat/completions`` and
``GET /v1/models`` on 127.0.0.1 (a free port), in the shapes vLLM returns,
including ``continue_final_message`` for a chat request that ends with an
assistant prefix.  Faults can be injected to exercise a client's retries:

* ``fail_first=K``: the first K generation requests get HTTP ``fail_status`` (500).
* ``fail_after=K``: the first K succeed, every later one gets ``fail_status``.
* ``always_fail=True``: every generation request gets ``fail_status``.
* ``rate_limit_first=K``: the first K get HTTP 429 with ``Retry-After: retry_after``.
* ``delay=S``: sleep S seconds before answering (longer than a client's timeout).
* ``max_choices=K``: return at most K choices whatever ``n`` asks (llama.cpp's server returns one).

Reasoning models (``reasoning=``, not a fault): ``"parser"`` answers as ``vllm serve --reasoning-parser``
does, the engine's ``<think>...</think>`` moved out of ``content`` into ``reasoning_content``; ``"hidden"`` as
OpenAI's o-series, the thinking dropped and only counted in ``usage.completion_tokens_details.reasoning_tokens``
(one token per word here).  ``chat_template_kwargs.enable_thinking`` becomes the request's thinking switch.

Usage::

    with serve(engine, fail_first=2) as url:
        create_engine("openai:tiny", {"base_url": url})
        url.server.received  # generation requests seen so far
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.engine import Engine, Message, Request, Sampling
from harness.errors import HarnessError


@dataclass
class Faults:
    """What the server does wrong, counted over generation requests (``GET /models`` never fails)."""

    fail_first: int = 0
    fail_after: int | None = None
    always_fail: bool = False
    fail_status: int = 500
    rate_limit_first: int = 0
    retry_after: float = 0.05
    delay: float = 0.0
    max_choices: int | None = None


class BaseURL(str):
    """The server's base URL (``http://127.0.0.1:PORT/v1``), carrying the server for counters."""

    server: OpenAIServer


class _QuietHTTPServer(ThreadingHTTPServer):
    # Handler threads may sleep past a client's timeout; they must not hold up shutdown.
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, closed pools) are expected here; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class OpenAIServer:
    """A threaded HTTP server answering OpenAI-style requests through ``engine`` (one at a time)."""

    def __init__(
        self,
        engine: Engine,
        models: Sequence[str] = ("tiny",),
        adapters: Sequence[str] = (),
        faults: Faults | None = None,
        reasoning: str | None = None,
    ) -> None:
        if reasoning not in (None, "parser", "hidden"):
            raise ValueError(f"reasoning must be None, 'parser' or 'hidden', got {reasoning!r}")
        self.engine = engine
        self.models = list(models)
        self.adapters = list(adapters)
        self.faults = faults or Faults()
        self.reasoning = reasoning
        #: Generation requests received (including the ones answered with an injected fault).
        self.received = 0
        #: (path, JSON body) of every generation request, in arrival order.
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        #: Generation requests being handled now, and the most there ever were at once.
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        # Engines are not thread-safe (and a real model runs one batch at a time).
        self._engine_lock = threading.Lock()
        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits for the next poll, and tests start and stop many servers.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="openai-test-server", daemon=True
        )

    @property
    def base_url(self) -> BaseURL:
        """``http://127.0.0.1:PORT/v1``."""
        url = BaseURL(f"http://127.0.0.1:{self._httpd.server_address[1]}/v1")
        url.server = self
        return url

    def start(self) -> OpenAIServer:
        """Begin serving on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- request handling ---------------------------------------------------------------------------------------

    def fault(self) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        """Count a generation request; the injected error to answer it with, if any."""
        f = self.faults
        with self._lock:
            self.received += 1
            count = self.received
        if f.rate_limit_first and count <= f.rate_limit_first:
            return 429, {"Retry-After": f"{f.retry_after:g}"}, _error("rate limited: simulated", "RateLimitError", 429)
        # The rate-limited requests come first; ``fail_first`` counts the ones after them.
        failing = f.always_fail or count <= f.rate_limit_first + f.fail_first
        if failing or (f.fail_after is not None and count > f.fail_after):
            return f.fail_status, {}, _error("boom: simulated server failure", "InternalServerError", f.fail_status)
        return None

    def generate(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one completions or chat request."""
        model = body.get("model")
        if model not in self.models and model not in self.adapters:
            return 404, _error(f"The model `{model}` does not exist.", "NotFoundError", 404)
        try:
            request = _request(path, body, adapter=model if model in self.adapters else None)
        except (HarnessError, TypeError, ValueError, KeyError) as exc:
            return 400, _error(f"bad request: {exc}", "BadRequestError", 400)
        with self._engine_lock:
            result = self.engine.generate([request])[0]
        chat = path.endswith("/chat/completions")
        choices = []
        kept = result.completions[: self.faults.max_choices]
        hidden = 0
        for k, c in enumerate(kept):
            choice: dict[str, Any] = {"index": k, "finish_reason": c.finish_reason, "logprobs": None}
            text, thinking = c.text, None
            if self.reasoning is not None and chat:
                thinking, text = _split_think(text)
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
                if self.reasoning == "parser":
                    choice["message"]["reasoning_content"] = thinking
                elif thinking:
                    hidden += len(thinking.split())
            else:
                choice["text"] = text
            choices.append(choice)
        prompt_tokens = result.completions[0].prompt_tokens
        completion_tokens = sum(c.completion_tokens for c in kept)
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip
        if self.reasoning == "hidden":
            usage["completion_tokens_details"] = {"reasoning_tokens": hidden}
        return 200, {
            "id": f"cmpl-{self.received}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": usage,
        }


def _split_think(text: str) -> tuple[str | None, str]:
    """``(thinking, content)`` as vLLM's DeepSeek-R1 reasoning parser splits a reply (no think block: no
    reasoning); a block that never closes is all reasoning."""
    start = text.find("<think>")
    head = text[start + len("<think>"):] if start >= 0 else text
    end = head.find("</think>")
    if end < 0:
        return (head, "") if start >= 0 else (None, text)
    return head[:end].strip("\n"), head[end + len("</think>"):].lstrip("\n")


def _error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _request(path: str, body: dict[str, Any], adapter: str | None) -> Request:
    """The engine request an OpenAI-style body asks for."""
    stop = body.get("stop") or ()
    sampling = Sampling(
        n=int(body.get("n") or 1),
        temperature=float(body.get("temperature", 1.0)),
        top_p=float(body.get("top_p", 1.0)),
        max_tokens=int(body.get("max_tokens") or 16),
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        seed=body.get("seed"),
    )
    if path.endswith("/chat/completions"):
        messages = [Message(m["role"], m["content"]) for m in body["messages"]]
        prefix = ""
        # vLLM's way to continue an assistant turn: the last message is the start of the reply.
        if body.get("continue_final_message") and messages and messages[-1].role == "assistant":
            prefix = messages.pop().content
        thinking = (body.get("chat_template_kwargs") or {}).get("enable_thinking")
        return Request(messages=tuple(messages), sampling=sampling, response_prefix=prefix, adapter=adapter,
                       thinking=thinking if isinstance(thinking, bool) else None)  # fmt: skip
    prompt = body["prompt"]
    if not isinstance(prompt, str):
        raise ValueError("this test server takes one string prompt")
    return Request(prompt=prompt, sampling=sampling, adapter=adapter)


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                data = [{"id": m, "object": "model", "owned_by": "test"} for m in server.models + server.adapters]
                self._send(200, {"object": "list", "data": data})
            else:
                self._send(404, _error(f"no route {self.path}", "NotFoundError", 404))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path not in ("/v1/completions", "/v1/chat/completions"):
                self._send(404, _error(f"no route {self.path}", "NotFoundError", 404))
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, _error("body is not JSON", "BadRequestError", 400))
                return
            with server._lock:
                server.bodies.append((self.path, body))
                server.in_flight += 1
                server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
            try:
                if server.faults.delay:
                    time.sleep(server.faults.delay)
                fault = server.fault()
                if fault is not None:
                    status, headers, payload = fault
                    self._send(status, payload, headers)
                    return
                status, payload = server.generate(self.path, body)
                self._send(status, payload)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests); nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def serve(
    engine: Engine, models: Sequence[str] = ("tiny",), adapters: Sequence[str] = (), reasoning: str | None = None,
    **faults: Any,
) -> Iterator[BaseURL]:
    """Serve ``engine`` on loopback; yields the base URL (``url.server`` has the counters)."""
    with OpenAIServer(engine, models, adapters, Faults(**faults), reasoning=reasoning) as server:
        yield server.base_url
