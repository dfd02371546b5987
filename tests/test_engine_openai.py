"""The ``openai`` backend against real HTTP servers on loopback (tests/openai_server.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.engine import Backend, BackendOptions, Completion, Engine, Job, Message, Request, Sampling, create_engine
from harness.engine.backends.openai_api import _Balancer, _Server, resolve_base_urls
from harness.errors import HarnessError
from tests.openai_server import serve

pytest.importorskip("openai")

#: Fast retries: the tests exercise the retry paths, not the waiting.
FAST = {"retry_backoff": 0.01, "timeout": 5.0}


class EchoBackend(Backend):
    """Deterministic text from the request: what it saw, the sample index, the seed; stops and limits applied."""

    name = "echo"

    def identity(self) -> dict[str, Any]:
        """The identifier is the whole model."""
        return {"model": self.identifier}

    def default_style(self) -> str:
        """Echo takes messages as happily as prompts."""
        return "instruct"

    def run(self, jobs: Sequence[Job], emit: Any) -> None:
        """One completion per index, emitted in order."""
        for j, job in enumerate(jobs):
            r, s = job.request, job.request.sampling
            if r.messages is not None:
                seen = " | ".join(f"{m.role}:{m.content}" for m in r.messages)
            else:
                seen = r.prompt or ""
            for i in job.indices:
                text = f"[{r.adapter or 'base'}] {seen} prefix={r.response_prefix!r} #{i} seed={s.sample_seed(i)}"
                finish = "stop"
                cuts = [p for p in (text.find(stop) for stop in s.stop) if p >= 0]
                if cuts:
                    text = text[: min(cuts)]
                words = text.split(" ")
                if len(words) > s.max_tokens:
                    text, finish = " ".join(words[: s.max_tokens]), "length"
                emit(j, i, Completion(text, finish, len(seen.split()), len(text.split())))


@pytest.fixture
def echo() -> Iterator[Engine]:
    """An uncached echo engine to stand behind a test server."""
    engine = Engine("echo:x", EchoBackend("x", BackendOptions()), cache=None)
    yield engine
    engine.close()


def client(url: str | list[str], tmp_path: Path, model: str = "tiny", **options: Any) -> Engine:
    """An ``openai`` engine with fast retries and a response cache under ``tmp_path``."""
    return create_engine(f"openai:{model}", {"base_url": url, **FAST, **options}, cache_dir=tmp_path)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prompt(text: str, **sampling: Any) -> Request:
    """A raw-prompt request."""
    return Request(prompt=text, sampling=Sampling(**sampling))


def chat(text: str, prefix: str = "", **sampling: Any) -> Request:
    """A one-message chat request."""
    return Request(messages=(Message("user", text),), sampling=Sampling(**sampling), response_prefix=prefix)


# -- endpoints and request mapping ------------------------------------------------------------------------------


def test_completions_endpoint(echo: Engine, tmp_path: Path) -> None:
    with serve(echo) as url, client(url, tmp_path) as engine:
        [result] = engine.generate([prompt("def add(a, b):", max_tokens=64)])
        path, body = url.server.bodies[0]
    assert path == "/v1/completions"
    assert body["model"] == "tiny" and body["prompt"] == "def add(a, b):" and "stop" not in body
    [c] = result.completions
    assert c.text.startswith("[base] def add(a, b): prefix='' #0")
    assert c.finish_reason == "stop" and c.prompt_tokens == 3 and c.completion_tokens == len(c.text.split())
    assert engine.default_style() == "instruct"


def test_completions_prompt_carries_response_prefix(echo: Engine, tmp_path: Path) -> None:
    request = Request(prompt="Write add.", response_prefix="```python\n", sampling=Sampling(max_tokens=64))
    with serve(echo) as url, client(url, tmp_path) as engine:
        [result] = engine.generate([request])
        _, body = url.server.bodies[0]
    assert body["prompt"] == "Write add.```python\n"
    assert result.completions[0].text.startswith("[base] Write add.```python\n prefix=''")


def test_chat_endpoint(echo: Engine, tmp_path: Path) -> None:
    with serve(echo) as url, client(url, tmp_path) as engine:
        [result] = engine.generate([chat("hello there", max_tokens=64)])
        path, body = url.server.bodies[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": "hello there"}]
    assert "continue_final_message" not in body
    assert result.completions[0].text.startswith("[base] user:hello there prefix='' #0")


def test_chat_response_prefix_continues_the_assistant_turn(echo: Engine, tmp_path: Path) -> None:
    with serve(echo) as url, client(url, tmp_path) as engine:
        [result] = engine.generate([chat("Write add.", prefix="```python\n", max_tokens=64)])
        _, body = url.server.bodies[0]
    assert body["messages"][-1] == {"role": "assistant", "content": "```python\n"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    # The server saw the prefix as the start of the reply, not as a message of the conversation.
    assert result.completions[0].text.startswith("[base] user:Write add. prefix='```python\\n'")


def test_endpoint_option(echo: Engine, tmp_path: Path) -> None:
    with serve(echo) as url:
        with client(url, tmp_path, endpoint="chat") as engine:
            engine.generate([prompt("raw text", max_tokens=64)])
            assert url.server.bodies[-1][0] == "/v1/chat/completions"
            assert url.server.bodies[-1][1]["messages"] == [{"role": "user", "content": "raw text"}]
        with client(url, tmp_path, endpoint="completions") as engine:
            assert engine.default_style() == "base"
            with pytest.raises(HarnessError, match="endpoint=completions takes raw prompts"):
                engine.generate([chat("hi")])


def test_n_without_seed_is_one_call(echo: Engine, tmp_path: Path) -> None:
    with serve(echo) as url, client(url, tmp_path) as engine:
        [result] = engine.generate([prompt("p", n=3, temperature=0.8, max_tokens=64)])
        assert url.server.received == 1
        assert url.server.bodies[0][1]["n"] == 3 and "seed" not in url.server.bodies[0][1]
        total = engine.stats.completion_tokens
    texts = [c.text for c in result.completions]
    assert [t.split("#")[1].split()[0] for t in texts] == ["0", "1", "2"]
    # Usage is per response: the completion tokens are shared out and still add up.
    assert total == sum(len(t.split()) for t in texts)


def test_n_with_seed_is_one_call_per_sample(echo: Engine, tmp_path: Path) -> None:
    sampling = Sampling(n=3, temperature=0.8, seed=7, max_tokens=64)
    with serve(echo) as url, client(url, tmp_path) as engine:
        [result] = engine.generate([Request(prompt="p", sampling=sampling)])
        bodies = [b for _, b in url.server.bodies]
    assert len(bodies) == 3 and all(b["n"] == 1 for b in bodies)
    assert sorted(b["seed"] for b in bodies) == sorted(sampling.sample_seed(i) for i in range(3))
    texts = [c.text for c in result.completions]
    assert len(set(texts)) == 3


def test_fewer_choices_than_n_are_asked_again(echo: Engine, tmp_path: Path) -> None:
    with serve(echo, max_choices=1) as url, client(url, tmp_path) as engine:
        [result] = engine.generate([prompt("p", n=3, temperature=0.8, max_tokens=64)])
        assert [b["n"] for _, b in url.server.bodies] == [3, 2, 1]
    assert len(result.completions) == 3


def test_concurrency_is_bounded(echo: Engine, tmp_path: Path) -> None:
    requests = [prompt(f"task {k}", max_tokens=64) for k in range(9)]
    with serve(echo, delay=0.1) as url, client(url, tmp_path, concurrency=3) as engine:
        engine.generate(requests)
        assert 2 <= url.server.peak_in_flight <= 3


def test_stop_sequences_and_length(echo: Engine, tmp_path: Path) -> None:
    with serve(echo) as url, client(url, tmp_path) as engine:
        [stopped, cut] = engine.generate(
            [
                prompt("keep this\nSTOP not this", stop=("\nSTOP", "never"), max_tokens=64),
                prompt("a b c d e", max_tokens=3),
            ]
        )
        bodies = {b["prompt"]: b for _, b in url.server.bodies}
    assert bodies["keep this\nSTOP not this"]["stop"] == ["\nSTOP", "never"]
    assert stopped.completions[0].text == "[base] keep this" and stopped.completions[0].finish_reason == "stop"
    assert cut.completions[0].text == "[base] a b" and cut.completions[0].finish_reason == "length"


def test_adapter_is_the_model_name(echo: Engine, tmp_path: Path) -> None:
    request = Request(prompt="p", adapter="lora1", sampling=Sampling(max_tokens=64))
    with serve(echo, adapters=("lora1",)) as url, client(url, tmp_path) as engine:
        [result] = engine.generate([request])
        assert url.server.bodies[0][1]["model"] == "lora1"
        assert result.completions[0].text.startswith("[lora1] p")
        with pytest.raises(HarnessError, match=r"does not serve model 'lora2'.*tiny, lora1.*--lora-modules"):
            engine.generate([Request(prompt="p", adapter="lora2")])


def test_identity_and_cache_ignore_the_url(echo: Engine, tmp_path: Path) -> None:
    with serve(echo) as first, serve(echo) as second:
        with client(first, tmp_path, revision="r1") as engine:
            assert engine.identity == '{"backend": "openai", "model": "tiny", "revision": "r1"}'
            engine.generate([prompt("p", max_tokens=64)])
        with client(second, tmp_path, revision="r1") as engine:
            [result] = engine.generate([prompt("p", max_tokens=64)])
        assert result.completions[0].cached and second.server.received == 0


# -- retries and errors --------------------------------------------------------------------------------------------


def test_transient_500s_are_retried(echo: Engine, tmp_path: Path) -> None:
    with serve(echo, fail_first=2) as url, client(url, tmp_path, max_retries=3) as engine:
        [result] = engine.generate([prompt("p", max_tokens=64)])
        assert url.server.received == 3
    assert result.completions[0].text.startswith("[base] p")


def test_429_honours_retry_after(echo: Engine, tmp_path: Path) -> None:
    # A backoff of 30 s would blow the test's time: finishing fast means Retry-After (0.05 s) was used.
    with serve(echo, rate_limit_first=2, retry_after=0.05) as url, client(url, tmp_path, retry_backoff=30) as engine:
        t0 = time.monotonic()
        [result] = engine.generate([prompt("p", max_tokens=64)])
        elapsed = time.monotonic() - t0
        assert url.server.received == 3
    assert 0.1 <= elapsed < 5 and result.completions[0].text.startswith("[base] p")


def test_server_that_always_fails(echo: Engine, tmp_path: Path) -> None:
    with serve(echo, always_fail=True) as url, client(url, tmp_path, max_retries=2) as engine:
        with pytest.raises(HarnessError) as info:
            engine.generate([prompt("p")])
        assert url.server.received == 3
    message = str(info.value)
    assert "\n" not in message
    assert f"server at {url} kept failing with HTTP 500 after 3 attempts" in message
    assert "boom: simulated server failure" in message


def test_finished_samples_survive_a_failure(echo: Engine, tmp_path: Path) -> None:
    requests = [prompt(f"task {k}", max_tokens=64) for k in range(4)]
    # One call at a time: the first two succeed, then the server breaks for good.
    with serve(echo, fail_after=2) as url, client(url, tmp_path, max_retries=1, concurrency=1) as engine:
        with pytest.raises(HarnessError, match="HTTP 500.*2 of 4 samples done"):
            engine.generate(requests)
        assert engine.cache is not None and engine.cache.count() == 2
        # No new work started after the failure: 2 successes + the failing call and its one retry.
        assert url.server.received == 4
    with serve(echo) as url, client(url, tmp_path) as engine:
        results = engine.generate(requests)
        assert url.server.received == 2
    assert [r.completions[0].cached for r in results] == [True, True, False, False]


def test_in_flight_calls_finish_when_one_fails(echo: Engine, tmp_path: Path) -> None:
    # Request 1 is a 404 at once; the others are slow but in flight already, so they finish and are cached.
    requests = [prompt(f"task {k}", max_tokens=64) for k in range(3)]
    requests.insert(1, Request(prompt="x", adapter="missing"))
    with serve(echo, delay=0.3) as url, client(url, tmp_path, concurrency=8) as engine:
        with pytest.raises(HarnessError, match="does not serve model 'missing'"):
            engine.generate(requests)
        assert engine.cache is not None and engine.cache.count() == 3


def test_server_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with client(url, tmp_path, max_retries=1) as engine:
        with pytest.raises(HarnessError) as info:
            engine.generate([prompt("p")])
    message = str(info.value)
    assert "\n" not in message
    assert f"cannot reach the OpenAI-compatible server at {url} (connection refused" in message
    assert "vllm serve tiny" in message and "--base-url" in message


def test_timeout(echo: Engine, tmp_path: Path) -> None:
    with serve(echo, delay=1.0) as url, client(url, tmp_path, timeout=0.2, max_retries=1) as engine:
        with pytest.raises(HarnessError, match=r"did not answer within 0.2s \(2 attempts\).*timeout=SECONDS"):
            engine.generate([prompt("p")])


def test_unknown_model_lists_served_models(echo: Engine, tmp_path: Path) -> None:
    with serve(echo, models=("tiny", "other")) as url, client(url, tmp_path, model="nope") as engine:
        with pytest.raises(HarnessError, match=r"does not serve model 'nope' \(it serves: tiny, other\)"):
            engine.generate([prompt("p")])
        assert url.server.received == 1  # a 404 is not retried


def test_other_4xx_is_not_retried(echo: Engine, tmp_path: Path) -> None:
    with serve(echo, always_fail=True, fail_status=400) as url, client(url, tmp_path) as engine:
        with pytest.raises(HarnessError, match="refused the request with HTTP 400: boom: simulated"):
            engine.generate([prompt("p")])
        assert url.server.received == 1


def test_unknown_option_lists_options() -> None:
    with pytest.raises(HarnessError, match=r"bogus.*its options: base_url, api_key, concurrency"):
        create_engine("openai:tiny", {"bogus": 1}, use_cache=False)
    with pytest.raises(HarnessError, match="endpoint"):
        create_engine("openai:tiny", {"endpoint": "embeddings"}, use_cache=False)


def test_base_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert resolve_base_urls(None) == ["http://localhost:8000/v1"]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu1:8000/v1")
    assert resolve_base_urls(None) == ["http://gpu1:8000/v1"]
    assert resolve_base_urls("http://a:1, http://b:2/v1/") == ["http://a:1/v1", "http://b:2/v1"]
    with pytest.raises(HarnessError, match="not http"):
        resolve_base_urls("localhost:8000")


# -- several servers -----------------------------------------------------------------------------------------------


def test_two_servers_share_the_load(echo: Engine, tmp_path: Path) -> None:
    requests = [prompt(f"task {k}", max_tokens=64) for k in range(12)]
    with serve(echo, delay=0.02) as a, serve(echo, delay=0.02) as b:
        with client([a, b], tmp_path, concurrency=4) as engine:
            results = engine.generate(requests)
        assert a.server.received > 0 and b.server.received > 0
        assert a.server.received + b.server.received == 12
    assert all(r.completions[0].text.startswith(f"[base] task {k} ") for k, r in enumerate(results))


def test_unreachable_server_is_skipped(echo: Engine, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    requests = [prompt(f"task {k}", max_tokens=64) for k in range(6)]
    with serve(echo) as up, client([down, up], tmp_path, max_retries=0, concurrency=2) as engine:
        results = engine.generate(requests)
        assert up.server.received == 6
    assert len(results) == 6


def test_balancer_picks_least_busy_then_round_robin() -> None:
    balancer = _Balancer([_Server(f"u{k}", None) for k in range(3)])
    assert [balancer.acquire() for _ in range(3)] == [0, 1, 2]
    balancer.release(1, reachable=True)
    assert balancer.acquire() == 1  # the only idle one
    for k in range(3):
        balancer.release(k, reachable=True)
    assert [balancer.acquire() for _ in range(3)] == [2, 0, 1]  # all idle: carry on round-robin
    for k in range(3):
        balancer.release(k, reachable=k != 0)
    assert [balancer.acquire() for _ in range(3)] == [2, 1, 2]  # server 0 is set aside while it cools down
    assert balancer.acquire(avoid={1, 2}) == 0


# -- a real model behind the server --------------------------------------------------------------------------------


def test_tiny_hf_model_through_the_server(tiny_model: Path, tmp_path: Path) -> None:
    hf = create_engine(f"hf:{tiny_model}", {"device": "cpu"}, use_cache=False)
    requests = [
        prompt("def add(a, b):", max_tokens=8),
        chat("Write a function.", prefix="```python\n", n=2, temperature=0.8, seed=1, max_tokens=8),
    ]
    try:
        direct = hf.generate(requests)
        with serve(hf) as url, client(url, tmp_path) as engine:
            served = engine.generate(requests)
            paths = sorted({p for p, _ in url.server.bodies})
    finally:
        hf.close()
    assert paths == ["/v1/chat/completions", "/v1/completions"]
    # Greedy is the same text whichever way it is asked for.
    assert served[0].completions[0].text == direct[0].completions[0].text
    assert served[0].completions[0].prompt_tokens == direct[0].completions[0].prompt_tokens
    assert len(served[1].completions) == 2
    assert all(c.completion_tokens <= 8 and c.finish_reason in ("stop", "length") for c in served[1].completions)
