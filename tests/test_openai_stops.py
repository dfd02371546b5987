"""The openai backend sends a server at most 4 stop strings (vLLM's and OpenAI's limit) and applies the rest itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from harness.engine import Engine, Job, Request, Sampling, create_engine
from harness.engine.backends.openai_api import MAX_SERVER_STOPS
from harness.engine.base import Backend, Emit
from harness.engine.types import Completion
from tests.openai_server import serve

pytest.importorskip("openai")

TEXT = "x = 1\nE tail\nB more"


class FixedText(Backend):
    """Answers every request with TEXT, cut at the first stop string it was given (as a server does)."""

    name = "fixed"

    def identity(self) -> dict[str, Any]:
        return {"model": "fixed"}

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        for j, job in enumerate(jobs):
            cuts = [p for p in (TEXT.find(s) for s in job.request.sampling.stop) if p >= 0]
            text, finish = (TEXT[: min(cuts)], "stop") if cuts else (TEXT, "length")
            for i in job.indices:
                emit(j, i, Completion(text, finish, 3, 5))


@pytest.mark.parametrize("path", ["completions", "chat"])
def test_more_stops_than_the_server_takes_are_applied_by_the_client(path: str) -> None:
    stops = ("\nA", "\nB", "\nC", "\nD", "\nE")  # "\nE" is the 5th: the server never sees it
    inner = Engine("fixed:x", FixedText("x", Backend.Options()), None)
    request = Request(prompt="p", sampling=Sampling(max_tokens=8, stop=stops))
    with serve(inner) as url:
        with create_engine("openai:tiny", {"base_url": url, "endpoint": path}, use_cache=False) as engine:
            result = engine.generate([request])[0]
        sent = url.server.bodies[-1][1]["stop"]
    assert MAX_SERVER_STOPS == 4 and sent == list(stops[:4])
    # The server cut at "\nB"; the client then cut at the unsent "\nE", as the hf backend would.
    assert result.completions[0].text == "x = 1" and result.completions[0].finish_reason == "stop"


def test_few_stops_are_all_sent_and_text_without_them_is_untouched() -> None:
    inner = Engine("fixed:x", FixedText("x", Backend.Options()), None)
    request = Request(prompt="p", sampling=Sampling(max_tokens=8, stop=("\nZ",)))
    with serve(inner) as url:
        with create_engine("openai:tiny", {"base_url": url}, use_cache=False) as engine:
            result = engine.generate([request])[0]
        assert url.server.bodies[-1][1]["stop"] == ["\nZ"]
    assert result.completions[0].text == TEXT and result.completions[0].finish_reason == "length"
