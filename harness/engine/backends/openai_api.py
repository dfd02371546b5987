"""The ``openai`` backend: any OpenAI-compatible server (``vllm serve``, SGLang, llama.cpp server, TGI).

``openai:MODEL`` sends raw prompts to ``/completions`` (prompt + response
prefix) and chat messages to ``/chat/completions``.  A chat request with a
response prefix ends with an assistant message holding the prefix, sent with
``continue_final_message=true, add_generation_prompt=false``: the vLLM and
SGLang way of continuing an assistant turn instead of starting a new one.
Servers that ignore the two fields start a fresh assistant turn after the
prefix (the completion is then not a continuation of it); the OpenAI API
itself refuses them, so use prompts without a response prefix there.  A LoRA adapter is sent as the model
name, since vLLM serves each adapter (``--lora-modules NAME=PATH``) under its
own name.

Several base URLs are used together: each HTTP call goes to the server with
the fewest calls in flight (round-robin on ties), and a server that cannot be
reached is set aside for a while and the call moves to another.  429, 5xx,
timeouts and connection errors are retried with exponential backoff and
jitter (honouring ``Retry-After``); other 4xx answers fail at once.  When a
call fails for good, no new calls start, the ones in flight finish and their
samples are emitted (so the response cache keeps them), then the error is
raised.

With a seed, every sample is its own call with ``n=1`` and the sample's own
seed, so sample ``i`` is the same draw however many samples are asked for;
without one, a job is a single call with ``n`` choices.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from harness.engine.base import Backend, BackendOptions, Emit, require
from harness.engine.types import Completion, Job, Request
from harness.errors import HarnessError

DEFAULT_BASE_URL = "http://localhost:8000/v1"
#: How a user points the backend at another server (named in error messages).
BASE_URL_HINT = "--base-url URL"
#: Longest wait between retries, and longest ``Retry-After`` honoured (longer ones fall back to backoff).
MAX_DELAY_S = 60.0
#: 4xx statuses worth retrying (a request timeout, rate limiting); every 5xx is retried too.
_RETRY_STATUSES = frozenset({408, 429})
#: Stop strings a request may carry: vLLM's server (``VLLM_MAX_STOP_STRINGS``) and OpenAI's API refuse more
#: with HTTP 400; the rest are applied to the returned text here, as the hf backend applies them all.
MAX_SERVER_STOPS = 4


class OpenAIOptions(BackendOptions):
    """Options of the ``openai`` backend (``--engine-arg key=value``)."""

    #: One URL, several (a list or comma-separated), or None for $OPENAI_BASE_URL, else localhost:8000/v1.
    base_url: list[str] | str | None = None
    #: None: $OPENAI_API_KEY, else "EMPTY" (local servers ignore it).
    api_key: str | None = None
    concurrency: int = Field(32, ge=1)
    timeout: float = Field(600.0, gt=0)
    max_retries: int = Field(5, ge=0)
    #: First retry waits about this many seconds; each further retry doubles it.
    retry_backoff: float = Field(1.0, ge=0)
    endpoint: Literal["auto", "completions", "chat"] = "auto"
    #: A label for what the server serves (its weights cannot be hashed from here); part of the cache key.
    revision: str | None = None
    #: The server's chat template reads ``enable_thinking`` (Qwen3 on vLLM or SGLang): ``--reasoning on/off`` is
    #: sent as ``chat_template_kwargs``.  Off by default: the OpenAI API itself refuses the field.
    thinking_switch: bool = False


def resolve_base_urls(value: list[str] | str | None) -> list[str]:
    """The server URLs to use: the option, else $OPENAI_BASE_URL, else localhost:8000/v1.

    A URL without a path gets ``/v1`` (what vLLM, SGLang and llama.cpp serve under).
    """
    if value is None:
        value = os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    items = value.split(",") if isinstance(value, str) else list(value)
    urls: list[str] = []
    for item in items:
        url = item.strip().rstrip("/")
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise HarnessError(f"openai backend: base URL {item!r} is not http(s)://HOST:PORT/v1; fix {BASE_URL_HINT}")
        if not parts.path:
            url += "/v1"
        if url not in urls:
            urls.append(url)
    if not urls:
        raise HarnessError(f"openai backend: no base URL given; pass {BASE_URL_HINT}")
    return urls


@dataclass
class _Server:
    url: str
    client: Any
    busy: int = 0
    #: Connection failures in a row; a failing server is avoided until ``down_until``.
    failures: int = 0
    down_until: float = 0.0


class _Balancer:
    """Picks the server for each HTTP call: least busy, round-robin on ties, unreachable ones last."""

    #: Longest a server that refused connections is set aside before it is tried again.
    MAX_COOLDOWN_S = 30.0

    def __init__(self, servers: Sequence[_Server]) -> None:
        self.servers = list(servers)
        self._lock = threading.Lock()
        self._next = 0

    def acquire(self, avoid: set[int] | frozenset[int] = frozenset()) -> int:
        """Reserve a server (prefer ones not in ``avoid``); pair with ``release``."""
        with self._lock:
            n = len(self.servers)
            order = [(self._next + k) % n for k in range(n)]
            candidates = [i for i in order if i not in avoid] or order
            now = time.monotonic()
            # min() keeps the first of equals, and ``order`` starts after the last pick: round-robin on ties.
            best = min(candidates, key=lambda i: (self.servers[i].down_until > now, self.servers[i].busy))
            self._next = (best + 1) % n
            self.servers[best].busy += 1
            return best

    def release(self, index: int, reachable: bool) -> None:
        """Return a server; an unreachable one is set aside for a cooldown that grows with each failure."""
        with self._lock:
            server = self.servers[index]
            server.busy -= 1
            if reachable:
                server.failures = 0
                server.down_until = 0.0
            else:
                server.failures += 1
                cooldown = min(2.0 ** (server.failures - 1), self.MAX_COOLDOWN_S)
                server.down_until = time.monotonic() + cooldown


@dataclass(frozen=True)
class _Call:
    """One HTTP call: these sample indices of job ``job`` (one index when seeded)."""

    job: int
    request: Request
    indices: tuple[int, ...]
    seed: int | None


class _Aborted(Exception):
    """Another call failed for good; this one stopped instead of retrying."""


class OpenAIBackend(Backend):
    """Generation through an OpenAI-compatible HTTP server (or several, load-balanced)."""

    name = "openai"
    Options = OpenAIOptions

    def __init__(self, identifier: str, options: BackendOptions) -> None:
        super().__init__(identifier, options)
        self.opts: OpenAIOptions = options  # type: ignore[assignment]
        self.openai = require("openai", "openai", "the openai backend")
        self.urls = resolve_base_urls(self.opts.base_url)
        api_key = self.opts.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        # The client's own retries are off: ours move a call to another server and honour the abort flag.
        self._balancer = _Balancer(
            [
                _Server(
                    url, self.openai.OpenAI(base_url=url, api_key=api_key, timeout=self.opts.timeout, max_retries=0)
                )
                for url in self.urls
            ]
        )

    def identity(self) -> dict[str, Any]:
        """Model name and the user's revision label; not the URL, since several servers may serve one model."""
        return {"model": self.identifier, "revision": self.opts.revision}

    def default_style(self) -> str:
        """Chat servers take messages; only ``endpoint=completions`` means a base model."""
        return "base" if self.opts.endpoint == "completions" else "instruct"

    def describe(self) -> dict[str, Any]:
        """Options with the base URLs actually used."""
        return {**super().describe(), "base_url": list(self.urls)}

    def thinking_switch(self) -> bool:
        """Whether requests may set the server's template switch (``--engine-arg thinking_switch=true``)."""
        return self.opts.thinking_switch

    def close(self) -> None:
        """Close the HTTP connection pools."""
        for server in self._balancer.servers:
            server.client.close()

    # -- running jobs -------------------------------------------------------------------------------------------

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        """Send every call through a bounded pool of threads; emit samples on this thread as calls return."""
        calls = self._plan(jobs)
        if not calls:
            return
        abort = threading.Event()
        todo: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        for call in calls:
            todo.put(call)
        # Workers hand samples to this thread, so emit (cache writes, progress bars) never runs concurrently.
        ready: queue.SimpleQueue[tuple[int, int, Completion] | None] = queue.SimpleQueue()
        errors: list[BaseException] = []

        def work() -> None:
            while True:
                try:
                    call = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    if not abort.is_set():  # once a call failed for good, the rest are dropped unsent
                        for item in self._produce(call, abort):
                            ready.put(item)
                except _Aborted:
                    pass
                except BaseException as exc:  # re-raised on the calling thread below
                    errors.append(exc)
                    abort.set()
                finally:
                    ready.put(None)

        # Daemon threads rather than a ThreadPoolExecutor, whose workers the interpreter joins at exit:
        # after Ctrl-C that would wait out every HTTP call in flight (up to ``timeout`` seconds).
        for k in range(min(self.opts.concurrency, len(calls))):
            threading.Thread(target=work, name=f"openai-{k}", daemon=True).start()
        try:
            remaining = len(calls)
            while remaining:
                item = ready.get()
                if item is None:
                    remaining -= 1
                else:
                    emit(*item)
        except BaseException:
            # Interrupted, or emit failed: start nothing more; calls in flight end on their own.
            abort.set()
            raise
        if errors:
            raise self._as_harness_error(errors[0])

    def _plan(self, jobs: Sequence[Job]) -> list[_Call]:
        calls: list[_Call] = []
        for j, job in enumerate(jobs):
            request = job.request
            if request.is_chat and self.opts.endpoint == "completions":
                raise HarnessError(
                    "openai backend: endpoint=completions takes raw prompts but these requests are chat messages;"
                    " use --style base or --engine-arg endpoint=auto"
                )
            sampling = request.sampling
            if sampling.seed is not None:
                calls.extend(_Call(j, request, (i,), sampling.sample_seed(i)) for i in job.indices)
            elif job.indices:
                calls.append(_Call(j, request, tuple(job.indices), None))
        return calls

    def _produce(self, call: _Call, abort: threading.Event) -> Iterator[tuple[int, int, Completion]]:
        """Samples of one call; asks again for the rest when a server returns fewer choices than ``n``."""
        remaining = list(call.indices)
        chat = self._uses_chat(call.request)
        while remaining:
            if abort.is_set():
                raise _Aborted
            response, url = self._send(call.request, len(remaining), call.seed, chat, abort)
            completions = _cut_at_stops(_completions(response, chat, url), call.request.sampling.stop)
            # llama.cpp's server, for one, ignores n and returns a single choice.
            for index, completion in zip(remaining, completions):
                yield call.job, index, completion
            remaining = remaining[len(completions) :]

    def _uses_chat(self, request: Request) -> bool:
        if self.opts.endpoint == "auto":
            return request.is_chat
        return self.opts.endpoint == "chat"

    def _create(self, client: Any, request: Request, n: int, seed: int | None, chat: bool) -> Any:
        sampling = request.sampling
        kwargs: dict[str, Any] = {
            "model": request.adapter or self.identifier,
            "n": n,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)[:MAX_SERVER_STOPS]
        if seed is not None:
            kwargs["seed"] = seed
        if not chat:
            return client.completions.create(prompt=(request.prompt or "") + request.response_prefix, **kwargs)
        if request.messages is not None:
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
        else:
            messages = [{"role": "user", "content": request.prompt or ""}]
        extra: dict[str, Any] = {}
        if request.response_prefix:
            messages.append({"role": "assistant", "content": request.response_prefix})
            extra.update(continue_final_message=True, add_generation_prompt=False)
        if request.thinking is not None and self.opts.thinking_switch:
            # vLLM and SGLang pass these to the chat template (Qwen3's enable_thinking).
            extra["chat_template_kwargs"] = {"enable_thinking": request.thinking}
        if extra:
            kwargs["extra_body"] = extra
        return client.chat.completions.create(messages=messages, **kwargs)

    def _send(self, request: Request, n: int, seed: int | None, chat: bool, abort: threading.Event) -> tuple[Any, str]:
        """One call with retries; returns the response and the URL that answered it."""
        openai = self.openai
        unreachable: set[int] = set()
        tries = retries = 0
        while True:
            index = self._balancer.acquire(avoid=unreachable)
            server = self._balancer.servers[index]
            retry_after: float | None = None
            tries += 1
            try:
                response = self._create(server.client, request, n, seed, chat)
            except openai.APIConnectionError as exc:
                self._balancer.release(index, reachable=False)
                unreachable.add(index)
                failure: Exception = exc
                if len(unreachable) < len(self._balancer.servers):
                    # Fail over at once to a server this call has not tried: not a retry of the same thing.
                    if abort.is_set():
                        raise _Aborted from None
                    continue
            except openai.APIStatusError as exc:
                self._balancer.release(index, reachable=True)
                if not _retryable(exc.status_code):
                    raise self._refused(server, exc, request, chat) from None
                failure, retry_after = exc, _retry_after(exc)
            except BaseException:
                self._balancer.release(index, reachable=True)
                raise
            else:
                self._balancer.release(index, reachable=True)
                return response, server.url
            if retries >= self.opts.max_retries:
                raise self._gave_up(server, failure, tries, unreachable) from None
            retries += 1
            if retry_after is not None:
                delay = retry_after
            else:
                base = min(self.opts.retry_backoff * 2.0 ** (retries - 1), MAX_DELAY_S)
                delay = base * random.uniform(0.5, 1.0)  # jitter: retries of many calls do not land together
            if abort.wait(delay):
                raise _Aborted

    # -- errors ------------------------------------------------------------------------------------------------

    def _gave_up(self, server: _Server, exc: Exception, attempts: int, unreachable: set[int]) -> HarnessError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, self.openai.APITimeoutError):
            return HarnessError(
                f"the OpenAI-compatible server at {server.url} did not answer within {self.opts.timeout:g}s"
                f" ({tries}); raise --engine-arg timeout=SECONDS or lower max_tokens or concurrency"
            )
        if isinstance(exc, self.openai.APIConnectionError):
            urls = [self._balancer.servers[i].url for i in sorted(unreachable)] or [server.url]
            where = f"server at {urls[0]}" if len(urls) == 1 else f"servers at {', '.join(urls)}"
            return HarnessError(
                f"cannot reach the OpenAI-compatible {where} ({_connection_reason(exc)}, {tries});"
                f" start it (e.g. `vllm serve {self.identifier}`) or pass {BASE_URL_HINT}"
            )
        status = getattr(exc, "status_code", "?")
        if status == 429:
            return HarnessError(
                f"the OpenAI-compatible server at {server.url} kept answering HTTP 429 (rate limited) after {tries}:"
                f" {_excerpt(exc)}; lower --engine-arg concurrency or raise max_retries"
            )
        return HarnessError(
            f"the OpenAI-compatible server at {server.url} kept failing with HTTP {status} after {tries}:"
            f" {_excerpt(exc)}; check the server's log"
        )

    def _refused(self, server: _Server, exc: Any, request: Request, chat: bool) -> HarnessError:
        """A 4xx that retrying cannot fix, as one line naming the fix."""
        status, detail = exc.status_code, _excerpt(exc)
        model = request.adapter or self.identifier
        where = f"the OpenAI-compatible server at {server.url}"
        if status in (401, 403):
            return HarnessError(
                f"{where} refused the API key (HTTP {status}: {detail}); set OPENAI_API_KEY or --engine-arg api_key=KEY"
            )
        if status == 404:
            served = self._served_models(server)
            if served is not None and model not in served:
                fix = (
                    f"load the adapter on the server (vllm serve ... --lora-modules {model}=PATH)"
                    if request.adapter
                    else "pass openai:NAME with one of those names"
                )
                return HarnessError(
                    f"{where} does not serve model {model!r} (it serves: {', '.join(served) or 'nothing'}); {fix}"
                )
            return HarnessError(
                f"{where} answered HTTP 404 for model {model!r}: {detail}; check that {BASE_URL_HINT} ends in /v1"
            )
        if chat and "chat template" in detail.lower():
            return HarnessError(
                f"{where} cannot template chat messages for {model!r} (HTTP {status}: {detail});"
                " use --style base or --engine-arg endpoint=completions"
            )
        return HarnessError(
            f"{where} refused the request with HTTP {status}: {detail};"
            " fix the request (prompt length, sampling settings) or the server's settings"
        )

    def _served_models(self, server: _Server) -> list[str] | None:
        """Model names the server lists, or None when it will not say (never raises)."""
        try:
            page = server.client.with_options(timeout=min(self.opts.timeout, 10.0)).models.list()
            return [m.id for m in page.data]
        except Exception:  # the listing only improves an error message
            return None

    def _as_harness_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, HarnessError):
            return exc
        if isinstance(exc, self.openai.OpenAIError):
            return HarnessError(f"openai backend: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return exc


def _completions(response: Any, chat: bool, url: str) -> list[Completion]:
    """The response's choices in index order, with token counts from ``usage``."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise HarnessError(
            f"the server at {url} returned no choices (is it OpenAI-compatible? {BASE_URL_HINT} usually ends in /v1)"
        )
    choices = sorted(choices, key=lambda c: getattr(c, "index", 0) or 0)
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    # Servers report completion tokens for all choices together: share them out so the sum stays right.
    share, extra = divmod(int(getattr(usage, "completion_tokens", 0) or 0), len(choices))
    # Hidden reasoning (OpenAI's o-series) is only a count, inside the completion tokens; shared out the same way.
    hidden = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None)
    r_share, r_extra = divmod(int(hidden), len(choices)) if isinstance(hidden, int) else (0, 0)
    completions = []
    for k, choice in enumerate(choices):
        reasoning = None
        if chat:
            message = getattr(choice, "message", None)
            text = getattr(message, "content", None) or ""
            # vllm serve --reasoning-parser, SGLang and DeepSeek's API: reasoning_content; newer servers: reasoning.
            found = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
            reasoning = found if isinstance(found, str) and found else None
        else:
            text = getattr(choice, "text", None) or ""
        # Every sample saw the whole prompt, as on the other backends.
        completions.append(Completion(text, _finish(choice.finish_reason), prompt_tokens, share + (k < extra),
                                      reasoning=reasoning,
                                      reasoning_tokens=r_share + (k < r_extra) if isinstance(hidden, int) else None))
    return completions


def _cut_at_stops(completions: list[Completion], stops: Sequence[str]) -> list[Completion]:
    """Each text cut before its first stop string (the server saw only the first ``MAX_SERVER_STOPS``)."""
    if len(stops) <= MAX_SERVER_STOPS:
        return completions
    out = []
    for c in completions:
        cuts = [p for p in (c.text.find(s) for s in stops if s) if p >= 0]
        out.append(replace(c, text=c.text[: min(cuts)], finish_reason="stop") if cuts else c)
    return out


def _finish(reason: str | None) -> str:
    if reason == "length":
        return "length"
    if reason in ("abort", "error"):
        return "error"  # cut short by the server: never cached
    return "stop"


def _retryable(status: int) -> bool:
    return status in _RETRY_STATUSES or status >= 500


def _retry_after(exc: Any) -> float | None:
    """The server's requested wait in seconds, if it gave a usable one."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    seconds: float | None = None
    try:
        if headers.get("retry-after-ms") is not None:
            seconds = float(headers["retry-after-ms"]) / 1000
        elif headers.get("retry-after") is not None:
            value = headers["retry-after"]
            try:
                seconds = float(value)
            except ValueError:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
    if seconds is None or not 0 <= seconds <= MAX_DELAY_S:
        return None
    return seconds


def _excerpt(exc: Any, limit: int = 200) -> str:
    """The server's error message, on one line and short."""
    body = getattr(exc, "body", None)
    message: Any = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error")
    elif isinstance(body, str):
        message = body
    if not message:
        try:
            message = exc.response.text
        except Exception:  # fall back to the client's own message
            message = getattr(exc, "message", "") or str(exc)
    text = " ".join(str(message).split()) or "(empty body)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _connection_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (from the socket error under the client's)."""
    seen: BaseException | None = exc
    text = ""
    for _ in range(10):  # a chain is short; the bound only guards against a self-referencing one
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        name = type(seen).__name__
        if name == "gaierror":
            return "unknown host"
        text = str(seen) or text
        seen = seen.__cause__ or seen.__context__
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low:
        return "unknown host"
    return " ".join(text.split())[:120] or "connection error"
