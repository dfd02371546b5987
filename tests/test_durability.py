"""What finished is on disk at once, and every command exits with a code from one table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from harness.engine.cache import ResponseCache
from harness.engine.types import Completion


def test_a_stored_sample_is_visible_to_another_process_at_once(tmp_path: Path) -> None:
    # It used to wait for a later write at least 0.5 s after the previous commit: a SIGKILL lost it.
    cache = ResponseCache(tmp_path)
    for k in range(3):
        cache.put(f"key{k}", Completion(f"text {k}", "stop", 3, 4))
    with sqlite3.connect(tmp_path / "responses.sqlite") as other:  # what a crash would leave
        assert other.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 3
    cache.close()


def test_unexpected_errors_exit_3_and_input_errors_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import harness.cli as cli
    from harness.errors import EXIT_INTERNAL, EXIT_USAGE, HarnessError

    def crash(args: object) -> int:
        raise RuntimeError("a bug")

    def bad(args: object) -> int:
        raise HarnessError("bad input; fix it")

    monkeypatch.setattr(cli, "_evaluate", crash)
    assert cli.main(["evaluate", "--benchmark", "humaneval", "--samples", "x.jsonl"]) == EXIT_INTERNAL == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "a bug" in err and "--debug" in err
    monkeypatch.setattr(cli, "_evaluate", bad)
    assert cli.main(["evaluate", "--benchmark", "humaneval", "--samples", "x.jsonl"]) == EXIT_USAGE == 2
    assert capsys.readouterr().err.strip() == "error: bad input; fix it"


def test_a_damaged_response_is_generated_again_not_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = ResponseCache(tmp_path)
    cache.put("good", Completion("kept", "stop", 1, 2))
    cache.put("bad", Completion("original", "stop", 1, 2))
    cache.close()
    with sqlite3.connect(tmp_path / "responses.sqlite") as db:  # one entry changed behind the cache's back
        db.execute("UPDATE samples SET text = 'tampered' WHERE key = 'bad'")
    again = ResponseCache(tmp_path)
    found = again.get_many(["good", "bad"])
    again.close()
    assert set(found) == {"good"} and found["good"].text == "kept"
    assert "failed their checksum" in capsys.readouterr().err
