"""The one grading runner: every benchmark's programs are graded here.

A benchmark says *what* to run for a program (:meth:`Benchmark.jobs`: call,
script or command jobs) and the rule that turns the results into a verdict
(:meth:`Benchmark.verdict`). The runner does the rest, once for all:

* the verdict cache (a program graded before is not run again) and dedup of
  identical programs within a run, by program text and by normalised syntax
  tree (programs that differ only in comments, whitespace or formatting are
  one program; those hits are counted apart);
* setup jobs first (expected outputs): a task's programs start as soon as
  what they need exists, in the same sandbox run;
* a window of open tasks (tests decoded only for the tasks in flight);
* streaming: each verdict reaches the cache and the caller as soon as its
  jobs are done, so an interrupted run keeps what finished;
* scheduling, splitting long suites across idle workers and time budgets
  (the sandbox's work stealing over the jobs' cost estimates).
"""

from __future__ import annotations

import ast
import hashlib
import heapq
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.benchmark import Benchmark, GradeContext, GradeOptions, Verdict
from harness.errors import HarnessError
from harness.execution import CallJob, Sandbox, ScriptJob
from harness.samples import parse_quietly
from harness.verdict_cache import VerdictCache, verdict_key


@dataclass
class GradeOutcome:
    """Verdicts in program order, and where they came from."""

    verdicts: list[Verdict]
    cache_hits: int = 0
    graded: int = 0
    prepare_seconds: float = 0.0
    seconds: float = 0.0
    keys: list[str] = field(default_factory=list)
    #: Of ``cache_hits``: programs whose text was new but whose syntax tree was known (cache or this run).
    ast_hits: int = 0


def _ident(bench: Benchmark) -> str:
    salt = bench.verdict_salt()
    opts = bench.options.model_dump(mode="json")
    return f"{bench.name}|rules {bench.grader_version}|{salt}|{sorted(opts.items())!r}"


def cache_keys(bench: Benchmark, programs: Sequence[tuple[str, str]], options: GradeOptions, memory: int) -> list[str]:
    """Verdict-cache keys: the grader, benchmark, its options and salt, dataset, task, program, core options."""
    ident = _ident(bench)
    dataset = bench.dataset().hash
    return [verdict_key(ident, dataset, tid, prog, options, memory) for tid, prog in programs]


def normalised_ast(program: str) -> str | None:
    """A digest of ``program``'s syntax tree (comments, whitespace and formatting left out); None: no tree.

    Two programs with the same tree compile to the same code but for line
    numbers, so they get the same verdict.  The interpreter's version is
    part of the digest (trees differ between versions).
    """
    tree = parse_quietly(program)
    if tree is None:
        return None
    try:
        text = ast.dump(tree)  # field names kept: a positional dump of optional fields is ambiguous
    except RecursionError:
        return None
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return hashlib.sha256(f"{version}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


def ast_keys(bench: Benchmark, programs: Sequence[tuple[str, str]], options: GradeOptions, memory: int
             ) -> list[str | None]:  # fmt: skip
    """Verdict-cache keys by normalised syntax tree (None where a program does not parse)."""
    ident = _ident(bench) + "|ast"
    dataset = bench.dataset().hash
    keys: list[str | None] = []
    for tid, prog in programs:
        tree = normalised_ast(prog)
        keys.append(None if tree is None else verdict_key(ident, dataset, tid, "ast:" + tree, options, memory))
    return keys


def _release(job: Any) -> None:
    # The sandbox keeps every job object until its run ends; a finished job
    # lets go of its program and inputs (large test sets, many samples).
    if isinstance(job, CallJob):
        job.code, job.inputs_payload, job.check = "", _no_payload, None
    elif isinstance(job, ScriptJob):
        job.code = ""
    elif hasattr(job, "files"):
        job.files = {}
    if isinstance(job, CallJob):
        job.limits, job.costs = [], []  # per-input lists: the biggest part of a finished job


def _no_payload() -> bytes:
    return b""


#: Room for program ranks inside a job's priority (a benchmark's own priority stays the major key).
_RANKS = 1 << 40


def _cost(job: Any) -> float:
    """Estimated seconds of a job (its inputs' ground-truth times, or its declared cost)."""
    costs = getattr(job, "costs", None)
    if costs is not None:
        return float(sum(costs))
    return float(getattr(job, "cost", 0.0) or 0.0)


def grade_programs(
    bench: Benchmark,
    sandbox: Sandbox,
    programs: Sequence[tuple[str, str]],
    options: GradeOptions,
    *,
    cache: VerdictCache | None = None,
    on_verdict: Callable[[int, Verdict], None] | None = None,
    on_graded: Callable[[], None] | None = None,
    keep: bool = True,
) -> GradeOutcome:
    """Grade ``(task_id, program)`` pairs; verdicts come back in the same order.

    ``on_verdict(k, verdict)`` is called for each program as soon as it is
    known (cached verdicts first, then as jobs finish); ``on_graded()`` once per
    program actually run (progress bars). With ``cache``, verdicts are read
    from and written to it and identical programs are graded once. With
    ``keep`` False the verdicts only reach ``on_verdict`` (which keeps them
    where it likes: ``harness evaluate`` spools them to disk) and the
    outcome's list is empty: what the runner holds does not grow with them.
    """
    t0 = time.perf_counter()
    n = len(programs)
    verdicts: list[Verdict | None] = [None] * n if keep else []
    known = bytearray(n)  # programs whose verdict was published
    ctxs: dict[int, GradeContext] = {}
    hits = 0
    tree_hits = 0
    keys: list[str] = []
    trees: list[str | None] = []
    todo: list[int] = list(range(n))
    copies: dict[int, list[int]] = {}  # program graded -> identical programs that take its verdict

    def publish(k: int, verdict: Verdict) -> None:
        known[k] = 1
        if keep:
            verdicts[k] = verdict
        if on_verdict is not None:
            on_verdict(k, verdict)

    if cache is not None:
        memory = sandbox.settings.memory_bytes
        keys = cache_keys(bench, programs, options, memory)
        found = cache.get_many(keys)
        damaged = cache.damaged_keys  # said to be graded again: no other entry stands in for them
        missing = [k for k, key in enumerate(keys) if key not in found and key not in damaged]
        # The syntax-tree key only where the text missed (parsing costs more than hashing).
        trees = [None] * n
        for k, tkey in zip(missing, ast_keys(bench, [programs[k] for k in missing], options, memory)):
            trees[k] = tkey
        found_tree = cache.get_many([t for t in trees if t is not None], table="trees")
        todo = []
        first_of: dict[str, int] = {}
        for k, key in enumerate(keys):
            tkey = trees[k]
            if key in found:
                hits += 1
                publish(k, found[key].model_copy(update={"cached": True}))
            elif tkey is not None and tkey in found_tree:
                hits += 1
                tree_hits += 1
                verdict = found_tree[tkey]
                cache.put(key, verdict)  # the text key too: the next run finds it without parsing
                publish(k, verdict.model_copy(update={"cached": True}))
            elif key in first_of:
                hits += 1
                copies.setdefault(first_of[key], []).append(k)  # an identical program is graded once
            elif tkey is not None and tkey in first_of:
                hits += 1
                tree_hits += 1
                copies.setdefault(first_of[tkey], []).append(k)  # the same program but for comments or layout
                first_of[key] = first_of[tkey]  # this text again is a text hit
            else:
                first_of[key] = k
                if tkey is not None:
                    first_of[tkey] = k
                todo.append(k)

    by_task: dict[str, list[int]] = {}
    for k in todo:
        by_task.setdefault(programs[k][0], []).append(k)
    ready: deque[str] = deque()
    pending_setup: set[str] = set(by_task)
    opened: dict[str, Any] = {}
    left: dict[str, int] = {}
    # Per sandbox job index, until it is done: ("setup", SetupJob, -1, -1) or ("program", None, k, slot).
    owners: dict[int, tuple[str, Any, int, int]] = {}
    submitted = [0]  # sandbox job indices handed out so far (the sandbox numbers jobs in submission order)
    results: dict[int, list[Any]] = {}
    needed: dict[int, int] = {}
    prepare = [0.0]
    setup_left = [0]
    window = bench.task_window

    aborted = [False]

    def finish_program(k: int) -> None:
        if aborted[0]:
            return  # results after an interruption come from workers being torn down: never a verdict
        tid, program = programs[k]
        running.discard(k)
        got = results.pop(k, [])
        try:
            verdict = bench.verdict(tid, program, opened.get(tid), got, ctxs[k])
        finally:
            needed.pop(k, None)
            ctxs.pop(k, None)
        if cache is not None:
            cache.put(keys[k], verdict)
            if trees[k] is not None:
                cache.put(trees[k], verdict, table="trees")
        publish(k, verdict)
        for j in copies.pop(k, []):  # identical programs take the verdict of the one graded
            if cache is not None and keys[j] != keys[k]:
                cache.put(keys[j], verdict)
            publish(j, verdict.model_copy(update={"cached": True}))
        if on_graded is not None:
            on_graded()
        left[tid] -= 1
        if left[tid] == 0:
            state = opened.pop(tid, None)
            bench.close_task(tid, state)

    order = [0]
    # Programs of open tasks wait in a backlog, costliest first, and only about `cap` of them are in the
    # sandbox at a time: their jobs (program text, per-input limits and costs) are made when they are
    # submitted, so what the runner holds does not grow with the number of samples.
    backlog: list[tuple[float, int, int]] = []  # (-estimated seconds, arrival, program)
    prepared: dict[int, list[Any]] = {}  # jobs made to learn a task's cost, kept for its first program
    running: set[int] = set()
    cap = max(64, 16 * sandbox.settings.worker_count())
    arrival = [0]

    def jobs_of(k: int) -> list[Any]:
        tid = programs[k][0]
        t = time.perf_counter()
        ctxs[k] = GradeContext(options=options, memory_bytes=sandbox.settings.memory_bytes)
        mine = list(bench.jobs(tid, programs[k][1], opened.get(tid), ctxs[k]))
        results[k] = [None] * len(mine)
        needed[k] = len(mine)
        prepare[0] += time.perf_counter() - t
        return mine

    def open_more() -> list[Any]:
        while ready and (window is None or len(opened) < window):
            tid = ready.popleft()
            t = time.perf_counter()
            opened[tid] = bench.open_task(tid, options)
            left[tid] = len(by_task[tid])
            prepare[0] += time.perf_counter() - t
            # A task's programs run the same tests: the first one's jobs estimate the cost of all.
            first_k = by_task[tid][0]
            prepared[first_k] = jobs_of(first_k)
            cost = sum(_cost(j) for j in prepared[first_k])
            for k in by_task[tid]:
                arrival[0] += 1
                heapq.heappush(backlog, (-cost, arrival[0], k))
        # Programs run whole and costliest first: a program's jobs share one rank, so finished
        # verdicts accumulate from the start (an interrupted run keeps them) and the slowest
        # programs still start early (the sandbox splits their long suites across idle workers).
        jobs: list[Any] = []
        while backlog and len(running) < cap:
            _, _, k = heapq.heappop(backlog)
            mine = prepared.pop(k) if k in prepared else jobs_of(k)
            if not mine:
                finish_program(k)  # decided without running anything (a task without tests)
                continue
            running.add(k)
            order[0] += 1
            for slot, job in enumerate(mine):
                job.priority = int(getattr(job, "priority", 1)) * _RANKS + order[0]
                owners[submitted[0]] = ("program", None, k, slot)
                submitted[0] += 1
                jobs.append(job)
        return jobs

    def release_tasks(tids: Sequence[str]) -> None:
        for tid in tids:
            if tid in pending_setup:
                pending_setup.discard(tid)
                ready.append(tid)

    setup = bench.setup_jobs(sandbox, list(by_task), options) if by_task else []
    first: list[Any] = []
    if setup:
        setup_left[0] = len(setup)
        for s in setup:
            owners[submitted[0]] = ("setup", s, -1, -1)
            submitted[0] += 1
            first.append(s.job)
    else:
        release_tasks(list(by_task))
        first = open_more()

    def done(j: int, res: Any) -> list[Any] | None:
        kind, setup_job, k, slot = owners.pop(j)
        if kind == "setup":
            release_tasks(setup_job.done(res))
            setup_left[0] -= 1
            if setup_left[0] == 0:
                prepare[0] += time.perf_counter() - t0
                release_tasks(sorted(pending_setup))  # whatever setup did not name is ready now
        else:
            results[k][slot] = res
            needed[k] -= 1
            if needed[k] == 0:
                finish_program(k)
        more = open_more()
        return more or None

    if first:
        # Jobs not yet done, by sandbox index: a finished job lets go of its program, inputs and limits
        # at once, so what the runner holds stays flat however many samples there are.
        live: dict[int, Any] = dict(enumerate(first))

        def on_done(j: int, res: Any) -> list[Any] | None:
            try:
                more = done(j, res)
            finally:
                job = live.pop(j, None)
                if job is not None:
                    _release(job)
            if more:
                for off, job in enumerate(more):
                    live[j_next[0] + off] = job
                j_next[0] += len(more)
            return more

        j_next = [len(first)]
        try:
            sandbox.run(first, on_done=on_done, keep=False)
        except BaseException:
            # Interrupted (Ctrl-C) or failed: jobs still finishing in worker threads while the
            # sandbox shuts down must not become verdicts (nor enter the cache).
            aborted[0] = True
            raise
    # Programs still open after the run ended (nothing left to schedule) are decided now.
    while ready:
        extra = open_more()
        if extra:
            raise HarnessError(f"{bench.name}: tasks became ready after the sandbox run ended")  # a runner bug
    missing = [k for k in range(n) if not known[k]]
    for k in missing:
        publish(k, Verdict(status="error", error="not graded"))
    bench.prepare_seconds = prepare[0]
    return GradeOutcome(
        verdicts=[v for v in verdicts if v is not None],
        cache_hits=hits,
        graded=len(todo),
        prepare_seconds=prepare[0],
        seconds=time.perf_counter() - t0,
        keys=keys,
        ast_hits=tree_hits,
    )
