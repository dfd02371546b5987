"""Results stream to disk: verdicts are spooled while grading and written a task at a time.

``harness evaluate``'s memory must not grow with the number of samples
(issue 18): the files it writes are the ones it wrote when it held every
verdict, and the record it returns to the CLI has the counts without the
verdicts. Uses the toy benchmark (script jobs), a few seconds in all.
"""

from __future__ import annotations

import gc
import json
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest

from harness.benchmark import GradeOptions, PartVerdict, Verdict
from harness.evaluation import evaluate
from harness.execution import CallJob, encode_inputs
from harness.execution import sandbox as sandbox_module
from harness.grading import grade_programs
from harness.samples import Sample
from harness.store import ProgramSpool, VerdictSpool, load_run, save_run, save_run_streaming, write_json_members

sys.path.insert(0, str(Path(__file__).parent / "toy_benchmark"))
from toy_bench import Toy  # noqa: E402

PROGRAMS = [
    ("toy/0", "def add(a, b):\n    return a + b\n"),
    ("toy/0", "def add(a, b):\n    return a - b\n"),  # wrong answer
    ("toy/1", "def triple(x):\n    return 3 * x\n"),
    ("toy/1", "def triple(x) return"),  # syntax error
    ("toy/2", "def shout(s):\n    raise ValueError(s)\n"),  # runtime error
    ("toy/0", "def add(a, b):\n    return b + a\n"),
]


def _samples() -> list[Sample]:
    return [Sample(line=k + 1, task_id=tid, solution=prog, completion=None) for k, (tid, prog) in enumerate(PROGRAMS)]


def _plain(path: Path, drop: tuple[str, ...] = ("created", "date", "timings")) -> Any:
    doc = json.loads(path.read_text())
    return {k: v for k, v in doc.items() if k not in drop}


def test_members_are_written_as_json_dump_writes_the_whole_object() -> None:
    import io

    head = {"date": "2026-12-02", "nested": {"a": [1, 2.5, None, "é"]}, "nan": float("nan")}
    members = [("HumanEval/0", [{"status": "pass"}]), ("x\"y", {"k": [True, False]})]
    out = io.StringIO()
    write_json_members(out, head, "eval", iter(members))
    assert out.getvalue() == json.dumps({**head, "eval": dict(members)})
    empty = io.StringIO()
    write_json_members(empty, {}, "tasks", iter([]))
    assert json.loads(empty.getvalue()) == {"tasks": {}}


def test_the_spools_keep_records_in_a_file_no_one_else_sees(tmp_path: Path) -> None:
    verdicts = [Verdict(status="pass", parts={"base": PartVerdict(status="pass", cpu_seconds=0.5)}),
                Verdict(status="fail", parts={"base": PartVerdict(status="fail", failed=[3], reasons={3: "wrong"})}),
                Verdict(status="error", error="not graded")]  # fmt: skip
    with VerdictSpool(tmp_path) as spool:
        for k, v in enumerate(verdicts):
            spool.put_verdict(k, v)
        assert list(tmp_path.iterdir()) == []  # unlinked: nothing to clean up however the process ends
        assert [spool.verdict(k) for k in range(3)] == verdicts  # reasons' integer keys survive the round trip
        assert not spool.has(3) and spool.has(0) and not spool.has(9)
        with pytest.raises(KeyError):
            spool.verdict(3)
        spool.put_verdict(0, verdicts[1])  # a later verdict replaces the first
        assert [spool.verdict(k) for k in range(3)] == [verdicts[1], verdicts[1], verdicts[2]]
        spool.put_verdict(6, verdicts[0])  # past the end: the spool grows
        assert spool.verdict(6) == verdicts[0] and not spool.has(5)
    # Programs: any text a samples file can hold (JSON allows lone surrogates), read back as a sequence.
    texts = [("t/0", "def f():\n    return 'é'\n"), ("t/1", ""), ("t/0", "x = '\ud800'\n")]
    with ProgramSpool(tmp_path) as programs:
        for tid, text in texts:
            programs.append(tid, text)
        assert len(programs) == 3 and list(programs) == texts and programs[-1] == texts[2]
        assert programs[1:] == texts[1:] and programs.task(2) == "t/0"
        with pytest.raises(IndexError):
            programs[3]
        assert list(tmp_path.iterdir()) == []


def test_a_streamed_record_is_the_record_save_run_writes(tmp_path: Path) -> None:
    full = evaluate(Toy(), _samples(), results_path=tmp_path / "a" / "eval_results.json",
                    run_path=tmp_path / "a" / "run.json", use_verdict_cache=False, parallel=2, echo=lambda _m: None)  # fmt: skip
    assert sum(len(t.samples) for t in full.tasks.values()) == len(PROGRAMS)
    save_run(tmp_path / "whole.json", full)
    light = full.model_copy(update={"tasks": {tid: t.model_copy(update={"samples": []}) for tid, t in full.tasks.items()}})
    save_run_streaming(tmp_path / "streamed.json", light, iter(full.tasks.items()))
    assert json.loads((tmp_path / "streamed.json").read_text()) == json.loads((tmp_path / "whole.json").read_text())
    assert load_run(tmp_path / "streamed.json") == full


def test_evaluate_writes_the_same_files_with_or_without_returning_the_verdicts(tmp_path: Path) -> None:
    def run(folder: str, full_record: bool) -> Any:
        return evaluate(Toy(), _samples(), results_path=tmp_path / folder / "eval_results.json",
                        run_path=tmp_path / folder / "run.json", use_verdict_cache=False, parallel=2,
                        echo=lambda _m: None, full_record=full_record)  # fmt: skip

    full, light = run("full", True), run("light", False)
    # The full record is the file, read back; sample order and task order are the samples file's.
    assert full == load_run(tmp_path / "full" / "run.json")
    assert list(full.tasks) == ["toy/0", "toy/1", "toy/2"]
    assert [s.line for s in full.tasks["toy/0"].samples] == [1, 2, 6]
    assert [s.failure_mode for s in full.tasks["toy/0"].samples] == ["pass", "wrong_answer", "pass"]
    assert [s.failure_mode for s in full.tasks["toy/1"].samples] == ["pass", "syntax_error"]
    assert full.tasks["toy/2"].samples[0].failure_mode == "runtime_error"
    assert full.tasks["toy/2"].samples[0].exception == "ValueError"
    assert full.failure_modes == {"pass": 3, "wrong_answer": 1, "syntax_error": 1, "runtime_error": 1}
    assert {tid: (t.n, t.correct) for tid, t in full.tasks.items()} == {
        "toy/0": (3, {"base": 2}), "toy/1": (2, {"base": 1}), "toy/2": (1, {"base": 0})}  # fmt: skip
    # The CLI's record: every count, no verdicts; the files are the same.
    assert all(t.samples == [] for t in light.tasks.values())
    assert {tid: (t.n, t.correct) for tid, t in light.tasks.items()} == {
        tid: (t.n, t.correct) for tid, t in full.tasks.items()}  # fmt: skip
    assert (light.pass_at_k, light.failure_modes, light.n_samples) == (full.pass_at_k, full.failure_modes, 6)

    def cpu_free(doc: Any) -> Any:  # CPU seconds differ from run to run
        if isinstance(doc, dict):
            return {k: cpu_free(v) for k, v in doc.items() if k != "cpu_seconds"}
        return [cpu_free(v) for v in doc] if isinstance(doc, list) else doc

    for name in ("run.json", "eval_results.json"):
        a, b = _plain(tmp_path / "full" / name), _plain(tmp_path / "light" / name)
        assert cpu_free(a) == cpu_free(b), name
    entries = _plain(tmp_path / "full" / "eval_results.json")["eval"]
    assert [e["status"] for e in entries["toy/0"]] == ["pass", "fail", "pass"]
    assert not [p for p in (tmp_path / "full").iterdir() if p.name.startswith(".")]  # no spool left behind


class _WholeDocument(Toy):
    """A benchmark whose results file needs every verdict at once (as CRUXEval's scores do)."""

    name = "toy-whole"

    def results_document(self, dataset_hash: str, programs: list[tuple[str, str]], verdicts: list[Verdict]
                         ) -> dict[str, Any]:  # fmt: skip
        doc = super().results_document(dataset_hash, programs, verdicts)
        return {**doc, "passed": sum(v.status == "pass" for v in verdicts)}


def test_a_benchmark_that_builds_its_whole_results_file_still_gets_it(tmp_path: Path) -> None:
    bench = _WholeDocument()
    assert not bench.streams_results() and Toy().streams_results()
    evaluate(bench, _samples(), results_path=tmp_path / "eval_results.json", run_path=tmp_path / "run.json",
             use_verdict_cache=False, parallel=2, echo=lambda _m: None)  # fmt: skip
    doc = json.loads((tmp_path / "eval_results.json").read_text())
    assert doc["passed"] == 3 and len(doc["eval"]["toy/0"]) == 3


def test_verdicts_not_kept_reach_only_the_callback(sandbox: Any) -> None:
    seen: dict[int, weakref.ref[Verdict]] = {}
    statuses: dict[int, str] = {}

    def on_verdict(k: int, verdict: Verdict) -> None:
        statuses[k] = verdict.status
        seen[k] = weakref.ref(verdict)

    outcome = grade_programs(Toy(), sandbox, PROGRAMS, GradeOptions(), on_verdict=on_verdict, keep=False)
    gc.collect()
    assert outcome.verdicts == [] and outcome.graded == len(PROGRAMS)
    assert [statuses[k] for k in range(len(PROGRAMS))] == ["pass", "fail", "pass", "fail", "fail", "pass"]
    assert all(ref() is None for ref in seen.values())  # the runner kept none of them


def test_a_streaming_run_holds_only_its_unfinished_jobs(sandbox: Any) -> None:
    inputs = encode_inputs([(i,) for i in range(20)])

    def job(k: int) -> CallJob:
        return CallJob(code="def f(x):\n    return x + 1\n", entry_point="f", inputs_key="stream-states",
                       inputs_payload=lambda: inputs, limits=[1.0] * 20, costs=[1e-4] * 20)  # fmt: skip

    alive: list[int] = []

    def on_done(k: int, res: Any) -> list[CallJob] | None:
        gc.collect()
        alive.append(sum(isinstance(o, sandbox_module._JobState) for o in gc.get_objects()))
        return [job(k + 1), job(k + 2)] if k % 2 == 0 and k < 40 else None  # the run grows as it goes

    assert sandbox.run([job(0)], on_done=on_done, keep=False) == []
    assert len(alive) == 41
    assert max(alive) <= 4  # the job reporting and the few still queued, not every job of the run


def test_a_full_disk_while_spooling_says_so_and_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    from harness.errors import HarnessError

    def full(*_a: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with VerdictSpool(tmp_path) as spool:
        monkeypatch.setattr("harness.store.os.pwrite", full)
        with pytest.raises(HarnessError, match="No space left on device; free some space or choose another --output"):
            spool.put_verdict(0, Verdict(status="pass"))
        assert not spool.has(0)  # nothing half-kept


def test_a_run_abandoned_by_its_callback_hands_over_no_cut_short_result(sandbox: Any) -> None:
    # A callback that raises (a full disk under the verdict spool) abandons the run: the jobs still running
    # are aborted, and what they leave is not a result (a suite cut short would read as a failure and go
    # into the verdict cache as the program's verdict).
    inputs = encode_inputs([(i,) for i in range(8)])
    slow = "import time\ndef f(x):\n    t = time.process_time()\n    while time.process_time() - t < 0.25:\n        pass\n    return x\n"
    jobs = [CallJob(code=slow if k else "def f(x):\n    return x\n", entry_point="f", inputs_key="abandoned",
                    inputs_payload=lambda: inputs, limits=[5.0] * 8, costs=[0.25] * 8, priority=k)
            for k in range(4)]  # fmt: skip
    seen: list[tuple[int, str]] = []

    def on_done(k: int, res: Any) -> None:
        seen.append((k, res.status))
        raise RuntimeError("no space left for the verdict")

    with pytest.raises(RuntimeError, match="no space left"):
        sandbox.run(jobs, on_done=on_done, keep=False)
    assert seen == [(0, "pass")]  # the quick job, then nothing from the aborted ones
