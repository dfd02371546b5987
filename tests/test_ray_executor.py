"""Grading on a Ray cluster (``--executor ray``): two simulated nodes on this machine.

One cluster for the module: a head without CPUs (the harness's own node) and
two worker nodes of 2 CPUs each, so the four sandbox workers (Ray actors)
spread over both.  The HumanEval+ reference samples are graded locally and
then through ``harness evaluate --executor ray`` while one node is removed
mid-run: the verdicts must be the local ones, every program graded, and the
lost node's worker processes gone (and with them every program they ran).
``harness generate validate`` gets the same treatment on a third node.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.store import load_run

from .conftest import REFERENCE

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed (scripts/setup.sh installs it)")


def test_bad_executor_settings_are_one_line_errors(data_dir: Path, tmp_path: Path, capsys: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    samples = data_dir / REFERENCE / "humaneval.jsonl"
    base = ["evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--data-dir", str(data_dir)]
    t0 = time.monotonic()
    assert main([*base, "--output", str(tmp_path / "a"), "--executor", "ray", "--ray-address", "127.0.0.1:9"]) == 2
    assert time.monotonic() - t0 < 60  # Ray itself retries an unreachable head for minutes
    err = capsys.readouterr().err
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in err and "ray start --head" in err
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if the extra were not installed
    assert main([*base, "--output", str(tmp_path / "b"), "--executor", "ray"]) == 2
    assert "pip install 'code-harness[ray]'" in capsys.readouterr().err
    monkeypatch.setenv("HARNESS_EXECUTOR", "rya")
    assert main([*base, "--output", str(tmp_path / "c")]) == 2
    assert "HARNESS_EXECUTOR='rya'; use one of local, ray" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    small = {"object_store_memory": 256 << 20}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **small})
    try:
        for _ in range(2):
            c.add_node(num_cpus=2, **small)
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _descendants(pid: int) -> set[int]:
    """``pid`` and every process below it, now."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    parents[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p in found:
            continue
        found.add(p)
        todo.extend(c for c, pp in parents.items() if pp == p)
    return found


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                    out.add(p)
        except OSError:
            pass
    return out


class _Killer:
    """Removes the node of a remote worker once ``after`` jobs are done; remembers the processes it had."""

    def __init__(self, cluster: Any, after: int, monkeypatch: pytest.MonkeyPatch) -> None:
        from harness.execution import Sandbox

        self.cluster, self.after = cluster, after
        self.sandboxes: list[Any] = []
        self.done = threading.Event()
        self.pids: set[int] = set()
        self.uids: list[int] = []
        self.lost_at = -1
        real = Sandbox.run

        def run(sb: Any, *args: Any, **kwargs: Any) -> Any:
            self.sandboxes.append(sb)
            return real(sb, *args, **kwargs)

        monkeypatch.setattr(Sandbox, "run", run)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not (self.sandboxes and self.sandboxes[-1].done_jobs >= self.after):
            time.sleep(0.02)
        if not self.sandboxes:
            return
        sb = self.sandboxes[-1]
        workers = [w for w in sb._workers if not w.lost]
        node_id = workers[-1].info["node"]
        for w in workers:
            if w.info["node"] == node_id:
                self.pids |= _descendants(w.info["pid"])
                if w.info["uid"] is not None:
                    self.uids.append(w.info["uid"])
        node = next(n for n in self.cluster.list_all_nodes() if n.node_id == node_id)
        self.lost_at = sb.done_jobs
        self.cluster.remove_node(node, allow_graceful=False)
        self.done.set()


def _assert_gone(killer: _Killer) -> None:
    assert killer.done.is_set(), "the node was never removed (the run ended first)"
    deadline = time.monotonic() + 20
    while _alive(killer.pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(killer.pids), "processes of the removed node's workers outlived it"
    # Their uid leases went with them (a flock dies with its holder; on a shared machine another sandbox may
    # take such a uid at once, so the lock itself proves nothing here).


def _last_lines(err: str, n: int = 6) -> str:
    """The end of a command's stderr as one line (what a failed assertion's summary shows)."""
    return " | ".join(line.strip() for line in err.strip().splitlines()[-n:])


def test_a_worker_that_cannot_restart_on_a_dying_node_counts_as_lost(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node going down can kill its sandbox worker process before the actor: the harness sees the
    # worker's end, asks the actor to restart it, and the restart fails there (a RayTaskError) or the
    # actor dies under the call. Either is a lost machine, never an internal error (the CI run of
    # 2026-12-01 ended with exit code 3 there) nor the program's fault.
    from harness.execution import SandboxSettings
    from harness.execution.ray_executor import RayWorker, RemoteInputs

    ray.init(address=cluster.address, ignore_reinit_error=True)
    worker = RayWorker(0, SandboxSettings(workers=1), RemoteInputs())
    first = worker.info["pid"]
    real_get = ray.get

    def get(ref: Any, *args: Any, **kwargs: Any) -> Any:
        if calls:
            calls.pop()
            raise ray.exceptions.RayTaskError("restart", "SandboxError: the node is shutting down", RuntimeError())
        return real_get(ref, *args, **kwargs)

    calls = [1]
    monkeypatch.setattr(ray, "get", get)
    try:
        assert worker.restart() is True  # lost, and replaced at once by a new actor
        assert not worker.lost and not worker.retired and worker.info["pid"] != first
        assert worker.restart() is False  # a plain worker death restarts in place
    finally:
        monkeypatch.undo()
        worker.close()
        ray.shutdown()  # the commands of the next tests join the cluster themselves


def _verdicts(run: Path) -> dict[tuple[str, int], Any]:
    record = load_run(run / "run.json")
    out = {}
    for tid, task in record.tasks.items():
        for s in task.samples:
            v = s.verdict
            out[(tid, s.line)] = (v.status, {k: (p.status, p.failed, p.reasons) for k, p in v.parts.items()})
    return out


def test_ray_grading_equals_local_and_survives_a_lost_node(
    cluster: Any, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference_grading: Any,
    capsys: Any,
) -> None:
    samples = data_dir / REFERENCE / "humaneval.jsonl"
    # The local run: the session's no-cache grading of these samples, parallel 2 beside the oracle run or two CPU
    # hogs (conftest.py's heavy_gradings; the parity tests share it).
    local_dir, _ = reference_grading("humaneval")
    local = _verdicts(local_dir)

    killer = _Killer(cluster, after=60, monkeypatch=monkeypatch)  # of 328 jobs (two suites per sample)
    code = main(["evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--data-dir", str(data_dir),
                 "--output", str(tmp_path / "ray"), "--no-verdict-cache", "--executor", "ray",
                 "--ray-address", cluster.address, "--parallel", "4"])  # fmt: skip
    assert code == 0, _last_lines(capsys.readouterr().err)  # on one line: CI logs keep the summary
    _assert_gone(killer)
    sb = killer.sandboxes[-1]
    assert killer.lost_at < sb.done_jobs and sb.stats.lost_workers >= 1  # lost mid-run, and noticed
    remote = _verdicts(tmp_path / "ray")
    assert len(remote) == len(local) == 164
    assert {k: (v, local.get(k)) for k, v in remote.items() if local.get(k) != v} == {}
    record, mine = load_run(tmp_path / "ray" / "run.json"), load_run(local_dir / "run.json")
    assert (record.settings.executor, mine.settings.executor) == ("ray", "local")
    assert record.settings.isolation == mine.settings.isolation


def test_generate_validate_on_ray_survives_a_lost_node(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from generation.core import StageFiles

    cluster.add_node(num_cpus=2, object_store_memory=256 << 20)  # the node the first test took away, again
    cluster.wait_for_nodes()
    rows = []
    for k in range(40):
        # Responses that take a moment and pass or fail by their index: every outcome is known.
        slow = (f"```python\ndef f{k}(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n```\n\n"
                f"[Tests]\n```python\nassert f{k}(300000) == {sum(range(300000))}\n```")
        quick = (f"```python\ndef g{k}(n):\n    return n\n```\n\n"
                 f"[Tests]\n```python\nassert g{k}(3) == {3 if k % 3 else 4}\n```")
        rows.append({"key": f"item-{k}", "instruction": f"Write f{k}.", "responses": [slow, quick]})
    outcomes = {}
    killer = None
    for name in ("local", "ray"):
        work = tmp_path / name
        StageFiles(work, "responses").append(rows)
        argv = ["generate", "validate", "--model", "replay:/dev/null", "--workdir", str(work)]
        if name == "ray":
            for var in ("HARNESS_EXECUTOR", "RAY_ADDRESS"):  # the command sets them for this process
                monkeypatch.setenv(var, os.environ.get(var, ""))
            killer = _Killer(cluster, after=12, monkeypatch=monkeypatch)
            argv += ["--executor", "ray", "--ray-address", cluster.address]
        assert main(argv) == 0, _last_lines(capsys.readouterr().err)
        kept = [json.loads(line) for line in (work / "validate.jsonl").read_text().splitlines()]
        gone = [json.loads(line) for line in (work / "validate.removed.jsonl").read_text().splitlines()]
        outcomes[name] = {r["key"]: r["outcomes"] for r in kept + gone}
    assert killer is not None
    _assert_gone(killer)
    assert killer.lost_at < killer.sandboxes[-1].done_jobs
    assert len(outcomes["local"]) == 40 and outcomes["ray"] == outcomes["local"]
    assert any(o.get("fail") for o in outcomes["local"].values())  # both kinds of outcome are there


def test_generate_filter_type_checks_on_ray(cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generation import filters
    from generation.core import StageFiles
    from harness.errors import HarnessError
    from harness.execution import Sandbox

    try:
        filters.find_checker()
    except HarnessError as exc:
        pytest.skip(f"no type checker: {exc}")
    # The tests before this one each took a node away: give the cluster a node with free CPUs again.
    cluster.add_node(num_cpus=2, object_store_memory=256 << 20)
    cluster.wait_for_nodes()
    executors: list[str] = []
    real = Sandbox.run

    def run(sb: Any, *args: Any, **kwargs: Any) -> Any:
        executors.append(sb.executor)
        return real(sb, *args, **kwargs)

    monkeypatch.setattr(Sandbox, "run", run)
    for var in ("HARNESS_EXECUTOR", "RAY_ADDRESS"):  # the command sets them for this process
        monkeypatch.setenv(var, os.environ.get(var, ""))
    doc = '    """Doc."""\n'
    rows = [{"key": "a-ok", "seed": f"def mean(xs: list[float]) -> float:\n{doc}    return sum(xs) / len(xs)\n"},
            {"key": "b-bad", "seed": f"def shout(text: str) -> int:\n{doc}    return text.upper()\n"},
            {"key": "c-helper", "seed": f"def total(xs):\n{doc}    return _helper(xs)\n",
             "module_names": {"_helper": "function"}}]  # fmt: skip
    work = tmp_path / "work"
    StageFiles(work, "seeds").append([{"name": r["key"], "imports": [], **r} for r in rows])
    sets = ["filter.judge=false", "filter.decontaminate=false"]
    argv = ["generate", "filter", "--model", "replay:/dev/null", "--workdir", str(work),
            *(x for s in sets for x in ("--set", s)), "--executor", "ray", "--ray-address", cluster.address]  # fmt: skip
    assert main(argv) == 0
    assert executors and set(executors) == {"ray"}  # every checker batch went to the cluster's actors
    kept = [json.loads(line)["key"] for line in (work / "filter.jsonl").read_text().splitlines()]
    gone = [json.loads(line) for line in (work / "filter.removed.jsonl").read_text().splitlines()]
    assert kept == ["a-ok", "c-helper"] and [(r["key"], r["reason"]) for r in gone] == [("b-bad", "type error")]
    funnel = json.loads((work / "funnel.json").read_text())["filter"]
    assert funnel["extra"]["typecheck"] == {"scope": "module", "checked": 3, "errors_with_module_names": 1,
                                            "errors_seed_alone": 2}  # fmt: skip
