"""Grade samples of one benchmark: score, record, write results.

:func:`evaluate` is the core: samples in memory (``harness eval`` hands its
generations straight to it), verdicts from the one grading runner
(:mod:`harness.grading`), a v2 run record. :func:`evaluate_samples` reads a
samples file first (``harness evaluate``). Files are outputs only.
"""

from __future__ import annotations

import gc
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import benchmark as bench_registry
from harness import registry
from harness.benchmark import Benchmark, GradeOptions, Verdict
from harness.data import cache_dir
from harness.errors import ConfigError, DataError
from harness.execution import Sandbox, SandboxSettings
from harness.failure import GenerationFacts, classify_sample, count_modes, format_counts
from harness.grading import grade_programs
from harness.passk import mean_pass_at_k
from harness.progress import Bar
from harness.samples import Sample, file_sha256
from harness.store import (
    GenerationInfo,
    ProgramSpool,
    RunRecord,
    RunSettings,
    RunTimings,
    SampleResult,
    SkippedSample,
    TaskResult,
    VerdictSpool,
    git_commit,
    load_run,
    save_run_streaming,
    write_atomic,
    write_json_atomic,
    write_json_members,
)
from harness.verdict_cache import VerdictCache


def check_output(paths: Sequence[Path], overwrite: bool, samples: int = 0) -> None:
    """Fail before any work when results cannot be written, or would replace an earlier run's.

    The folder must be creatable and writable, with room for what the run
    writes (records grow with the samples); an existing run record there is
    kept unless ``overwrite``.
    """
    import shutil
    import tempfile

    folders = list(dict.fromkeys(p.parent for p in paths))
    existing = [p for p in paths if p.name.endswith("run.json") and p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} holds the results of an earlier run; pass --overwrite to replace them "
                          "(cached verdicts and generations make a rerun cheap) or choose another --output")  # fmt: skip
    need = (16 << 20) + 4096 * samples
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".harness-write-check-"):
                pass
            free = shutil.disk_usage(folder).free
        except OSError as exc:
            raise ConfigError(f"cannot write results to {folder}: {exc.strerror or exc}; choose another --output"
                              ) from None  # fmt: skip
        if free < need:
            raise ConfigError(f"{folder} has {free >> 20} MiB free, the results need about {need >> 20} MiB; free "
                              "some space or choose another --output")  # fmt: skip


def cap_parallel(requested: int | None, echo: Callable[[str], None] = print) -> int | None:
    """``--parallel`` within what the machine holds: a few workers per core, about 256 MiB of memory each."""
    import os

    if requested is None:
        return None
    cores = os.cpu_count() or 1
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        avail = 0
    limit = 4 * cores
    if avail:
        limit = max(1, min(limit, avail // (256 << 20)))
    if requested > limit:
        echo(f"warning: --parallel {requested} capped to {limit} (this machine: {cores} cores, "
             f"{avail >> 30} GiB memory available)")  # fmt: skip
        return limit
    return requested


def output_paths(samples: Path, output: Path | None) -> tuple[Path, Path]:
    """``(eval_results.json, run.json)``; next to the samples file (EvalPlus naming) without ``--output``."""
    if output is not None:
        return output / "eval_results.json", output / "run.json"
    stem = samples.name[: -len(".jsonl")] if samples.name.endswith(".jsonl") else samples.stem
    return samples.parent / f"{stem}_eval_results.json", samples.parent / f"{stem}_run.json"


def evaluate_samples(
    benchmark: str | Benchmark,
    samples: str | Path,
    output: str | Path | None = None,
    parallel: int | None = None,
    data_dir: str | Path | None = None,
    test_details: bool = False,
    use_verdict_cache: bool = True,
    skip_bad: bool = False,
    sandbox_settings: SandboxSettings | None = None,
    echo: Callable[[str], None] = print,
    generation: GenerationInfo | None = None,
    bench: Benchmark | None = None,
    bench_options: Mapping[str, Any] | None = None,
    overwrite: bool = True,
    full_record: bool = True,
    **options: Any,
) -> RunRecord:
    """Read a samples file and grade it (:func:`evaluate`); writes ``eval_results.json`` and ``run.json``.

    ``benchmark`` is a registered name (or a loaded benchmark); ``bench_options``
    and any further keyword arguments are the benchmark's own options (say
    ``memory_accounting="program"`` for EvalPlus), validated by its ``Options``.
    ``full_record`` False: the record returned has counts but no samples (see :func:`evaluate`).
    """
    samples_path = Path(samples)
    results_path, run_path = output_paths(samples_path, Path(output) if output else None)
    check_output([results_path, run_path], overwrite)
    if isinstance(benchmark, Benchmark):
        bench = benchmark
    if bench is None:
        bench = bench_registry.get(str(benchmark), data_dir=data_dir, **{**dict(bench_options or {}), **options})
    elif options or bench_options:
        bench.options = bench.make_options({**bench.options.model_dump(), **dict(bench_options or {}), **options})
    rows, bad = bench.load_samples(samples_path, skip_bad=skip_bad)
    skipped = [SkippedSample(line=b.line, task_id=b.task_id, reason=b.reason) for b in bad]
    return evaluate(
        bench, _drain(rows), results_path=results_path, run_path=run_path, skipped=skipped, parallel=parallel,
        test_details=test_details, use_verdict_cache=use_verdict_cache, sandbox_settings=sandbox_settings,
        echo=echo, generation=generation, samples_file=samples_path, full_record=full_record,
    )  # fmt: skip


def evaluate(
    bench: Benchmark,
    samples: Iterable[Sample],
    *,
    results_path: Path,
    run_path: Path,
    skipped: Sequence[SkippedSample] = (),
    parallel: int | None = None,
    test_details: bool = False,
    use_verdict_cache: bool = True,
    sandbox_settings: SandboxSettings | None = None,
    echo: Callable[[str], None] = print,
    generation: GenerationInfo | None = None,
    samples_file: Path | None = None,
    model: str | None = None,
    full_record: bool = True,
) -> RunRecord:
    """Grade samples, score them, write ``results_path`` and ``run_path``, index the run.

    ``samples`` is read once (an iterator that lets each sample go, as ``evaluate_samples`` passes, keeps
    memory flat; ``harness eval`` passes its generations).

    Returns the run record as written (read back from ``run_path``). With ``full_record`` False (the CLI,
    which needs only the counts) it returns the record without its samples' verdicts: every task's counts
    and pass@k, its ``samples`` list empty; this process then never holds all verdicts at once.
    """
    t0 = time.perf_counter()
    problems = bench.problems()
    dataset = bench.dataset()
    # The dataset (hundreds of thousands of inputs) lives as long as the run:
    # keep the cyclic collector from walking it again and again.
    gc.collect()
    gc.freeze()
    skipped = list(skipped)
    folder = run_path.parent
    # Programs and verdicts live on disk while the run goes on (only offsets, task ids and line numbers
    # stay in memory): this process holds the same whatever the number of samples.
    with ProgramSpool(folder) as programs, VerdictSpool(folder) as spool:
        graded = _take(bench, problems, dataset, samples, programs, skipped, samples_file)
        for sk in skipped:
            echo(f"warning: skipped line {sk.line} ({sk.task_id}): {sk.reason}")
        options = GradeOptions(test_details=test_details)
        base = sandbox_settings or SandboxSettings()
        if base.resolved_executor() == "local":  # a Ray cluster's size is not this machine's
            parallel = cap_parallel(parallel, echo)
        settings = bench.sandbox_settings(SandboxSettings(**{**base.__dict__, "workers": parallel or base.workers}))
        cache = VerdictCache(cache_dir() / "verdicts.sqlite") if use_verdict_cache else None
        try:
            with Sandbox(settings) as sandbox:
                isolation = sandbox.mode
                settings = sandbox.settings  # on Ray: as many workers as started
                progress = Bar(len(programs), f"grading {bench.name}")

                def keep(k: int, verdict: Verdict) -> None:
                    spool.put_verdict(k, verdict)
                    progress.step()

                try:
                    outcome = grade_programs(bench, sandbox, programs, options, cache=cache, on_verdict=keep,
                                             keep=False)  # fmt: skip
                finally:
                    progress.close()
        finally:
            if cache is not None:
                cache.close()  # keeps every verdict graded so far, even when interrupted
        by_task: dict[str, list[int]] = {}
        for k in range(len(programs)):
            by_task.setdefault(programs.task(k), []).append(k)
        # One pass writes the results file and notes what the run record counts of each sample (how many
        # suites it passed in a row, its failure mode); a second writes the run record, a task at a time.
        suites = [s for s in bench.suites if s in _graded_suites(bench)]
        tally = _Tally(bench, suites, graded, problems, len(programs))
        _write_results(bench, results_path, dataset.hash, programs, by_task, spool, tally)
        record = build_record(
            bench, dataset, graded, tally, by_task, skipped, options, settings, isolation,
            RunTimings(expected_outputs=outcome.prepare_seconds, grading=outcome.seconds,
                       total=time.perf_counter() - t0, verdict_cache_hits=outcome.cache_hits,
                       graded_programs=outcome.graded, same_ast_hits=outcome.ast_hits),
            use_verdict_cache, samples_file,
        )  # fmt: skip
        if generation is not None:
            record.model, record.generation = generation.model, generation
        if model is not None:
            record.model = model

        def task(tid: str) -> TaskResult:
            rows = []
            for k in by_task[tid]:
                verdict = spool.verdict(k)
                mode, exception = tally.modes[k]
                rows.append(SampleResult(line=graded.lines[k], verdict=verdict, reason=verdict.reason(),
                                            failure_mode=mode, exception=exception))  # fmt: skip
            head = record.tasks[tid]
            return TaskResult(n=head.n, correct=head.correct, samples=rows)

        save_run_streaming(run_path, record, ((tid, task(tid)) for tid in by_task))
    registry.index_run(run_path, record)  # never fails the run; a problem is a warning
    _summary(record, results_path, run_path, echo)
    return load_run(run_path) if full_record else record


@dataclass
class _Graded:
    """What a run keeps in memory of each graded sample: its line and what generation knew of it."""

    lines: array[int] = field(default_factory=lambda: array("q"))
    facts: dict[int, GenerationFacts] = field(default_factory=dict)  # only samples with facts


def _take(bench: Benchmark, problems: Mapping[str, Any], dataset: Any, samples: Iterable[Sample],
          programs: ProgramSpool, skipped: list[SkippedSample], samples_file: Path | None) -> _Graded:  # fmt: skip
    """Each sample's program into ``programs`` (code extraction happens once: a sample made in memory carries
    its program), samples of other tasks into ``skipped``; ``samples`` is read once, so a draining iterator
    lets each sample go as soon as its program is spooled."""
    graded = _Graded()
    count, first = 0, None
    for s in samples:
        count += 1
        first = s.task_id if first is None else first
        if s.task_id not in problems:
            reason = f"task not in {dataset.name} {dataset.version}"
            skipped.append(SkippedSample(line=s.line, task_id=s.task_id, reason=reason))
            continue
        if s.facts is not None:
            graded.facts[len(programs)] = s.facts
        programs.append(sys.intern(s.task_id), _program(bench, problems[s.task_id], s))
        graded.lines.append(s.line)
    if not len(programs):
        where = f" in {samples_file}" if samples_file else ""
        shown = f" (first task_id: {first!r})" if first is not None else ""
        raise DataError(f"none of the {count} samples{where} belongs to {dataset.name} {dataset.version}{shown}; "
                        "is --benchmark right?")  # fmt: skip
    return graded


def _drain(rows: list[Sample]) -> Iterator[Sample]:
    """``rows`` one by one, each let go as it is taken (the list is empty afterwards)."""
    rows.reverse()
    while rows:
        yield rows.pop()


def _program(bench: Benchmark, problem: Any, sample: Sample) -> str:
    """The program a sample grades; the sample's own text where extraction left it as it was (one string
    in memory per sample, not two)."""
    if sample.program is not None:
        return sample.program
    program = bench.program(problem, sample.solution, sample.completion)
    return sample.solution if sample.solution is not None and program == sample.solution else program


class _Tally:
    """What the run record counts of each sample, noted as its verdict is read back: the suites it passed
    in a row (EvalPlus: base, then base + plus) and its failure mode (:func:`classify_sample`)."""

    def __init__(self, bench: Benchmark, suites: Sequence[str], graded: _Graded, problems: Mapping[str, Any],
                 n: int) -> None:  # fmt: skip
        self.bench, self.suites, self.graded, self.problems = bench, suites, graded, problems
        self.passed = bytearray(n)  # suites passed in a row
        self.modes: list[tuple[str, str | None]] = [("error", None)] * n
        self._distinct: dict[tuple[str, str | None], tuple[str, str | None]] = {}  # one tuple per mode

    def note(self, k: int, task_id: str, program: str, verdict: Verdict) -> Verdict:
        """Count program ``k``'s verdict; returns it."""
        row = 0
        for suite in self.suites:
            part = verdict.parts.get(suite)
            if part is None or part.status != "pass":
                break
            row += 1
        self.passed[k] = row
        found = classify_sample(self.bench, self.problems[task_id], program, verdict, self.graded.facts.get(k))
        pair = (found.mode, found.exception)
        self.modes[k] = self._distinct.setdefault(pair, pair)
        return verdict


def _write_results(bench: Benchmark, path: Path, dataset_hash: str, programs: Sequence[tuple[str, str]],
                   by_task: Mapping[str, list[int]], spool: VerdictSpool, tally: _Tally) -> None:  # fmt: skip
    """Write ``eval_results.json`` from the spooled verdicts, a task at a time, noting each in ``tally``."""
    def noted(k: int) -> tuple[str, str, Verdict]:
        tid, program = programs[k]  # one read of each program and verdict
        return tid, program, tally.note(k, tid, program, spool.verdict(k))

    if bench.streams_results():
        def entries() -> Iterator[tuple[str, list[dict[str, Any]]]]:
            for tid, ks in by_task.items():
                yield tid, [bench.results_entry(*noted(k)) for k in ks]

        write_atomic(path, lambda f: write_json_members(f, bench.results_head(dataset_hash), "eval", entries()))
    else:  # the benchmark's file needs every verdict at once (CRUXEval's scores)
        rows = [noted(k) for k in range(len(programs))]
        write_json_atomic(path, bench.results_document(dataset_hash, [(t, p) for t, p, _ in rows],
                                                       [v for _, _, v in rows]))  # fmt: skip


def build_record(bench: Benchmark, dataset: Any, graded: _Graded, tally: _Tally,
                 by_task: Mapping[str, list[int]], skipped: list[SkippedSample], options: GradeOptions,
                 settings: SandboxSettings, isolation: str, timings: RunTimings, use_cache: bool,
                 samples_file: Path | None) -> RunRecord:  # fmt: skip
    """The v2 run record of graded samples, but for their verdicts: per-suite counts, pass@k per suite,
    failure modes, the benchmark's options; each task's ``samples`` list is left empty
    (:func:`harness.store.save_run_streaming` writes them from the spool)."""
    suites = list(tally.suites)
    tasks: dict[str, TaskResult] = {}
    passed: dict[str, list[bool]] = {}
    for tid, ks in by_task.items():
        rows = [tally.passed[k] for k in ks]
        tasks[tid] = TaskResult(n=len(ks), correct={s: sum(r > i for r in rows) for i, s in enumerate(suites)},
                                samples=[])  # fmt: skip
        passed[tid] = [r > 0 for r in rows]
    pak = {s: mean_pass_at_k([(t.n, t.correct[s]) for t in tasks.values()], bench.pass_at_k_values) for s in suites}
    missing = [tid for tid in bench.problems() if tid not in tasks]
    columns = [c for c in bench.leaderboard_columns() if c.suite in suites]
    return RunRecord(
        benchmark=bench.name,
        title=bench.display_title(),
        suites=suites,
        columns=columns,
        dataset=dataset,
        options=bench.options.model_dump(mode="json"),
        selection=bench.selection(),
        benchmark_options=bench.describe(),
        notes=bench.notes(),
        breakdown=bench.breakdown(passed),
        samples_file=str(samples_file.resolve()) if samples_file else None,
        samples_sha256=file_sha256(samples_file) if samples_file and samples_file.is_file() else None,
        git_commit=git_commit(),
        settings=RunSettings(
            parallel=settings.worker_count(),
            test_details=options.test_details,
            verdict_cache=use_cache,
            isolation=isolation,
            memory_limit_bytes=settings.memory_bytes,
            executor=settings.resolved_executor(),
            grader_version=bench.grader_label(),
            grader_salt=bench.verdict_salt() or None,
        ),
        pass_at_k=pak,
        n_tasks=len(tasks),
        n_samples=len(graded.lines),
        missing_tasks=missing,
        skipped=skipped,
        tasks=tasks,
        timings=timings,
        failure_modes=count_modes(tally.modes[k][0] for ks in by_task.values() for k in ks),
    )


def _graded_suites(bench: Benchmark) -> tuple[str, ...]:
    phases = getattr(bench, "phases", None)  # a benchmark may grade fewer suites than it has (EvalPlus base_only)
    return tuple(phases()) if callable(phases) else bench.suites


def _summary(record: RunRecord, results_path: Path, run_path: Path, echo: Callable[[str], None]) -> None:
    titles = record.suite_titles()
    for idx, suite in enumerate(record.suites):
        values = record.pass_at_k.get(suite, {})
        which = "base tests" if idx == 0 else f"{' + '.join(record.suites[:idx])} + extra tests"
        echo(f"{titles[suite]} ({which})  " + "  ".join(f"{k}: {v:.3f}" for k, v in values.items()))
    t = record.timings
    echo(
        f"{record.n_samples} samples over {record.n_tasks} tasks; {len(record.skipped)} skipped; "
        f"{len(record.missing_tasks)} tasks without samples; {t.total:.1f} s "
        f"(expected outputs {t.expected_outputs:.1f} s, grading {t.grading:.1f} s, {t.verdict_cache_hits} cached, {t.same_ast_hits} of them by syntax tree); "
        f"isolation {record.settings.isolation}"
    )
    echo(f"failure modes: {format_counts(record.failure_modes)}")
    for key, value in record.benchmark_options.items():
        echo(f"  {key}: {value}")
    if record.breakdown:
        echo(format_breakdown(record.breakdown))
    for note in record.notes:
        echo(f"note: {note}")
    echo(f"results: {results_path}")
    echo(f"run record: {run_path}")


def format_breakdown(breakdown: dict[str, Any]) -> str:
    """A breakdown (``{"library": {"Pandas": {"score": 0.4, "n": 291}}}``) as aligned text tables."""
    lines: list[str] = []
    for group, rows in breakdown.items():
        if not isinstance(rows, dict) or not rows:
            continue
        width = max(len(str(k)) for k in rows) + 2
        lines.append(f"{group}:")
        for key, row in rows.items():
            if isinstance(row, dict):
                lines.append(f"  {str(key).ljust(width)}{row.get('score', 0.0):.3f}  (n={row.get('n', '?')})")
            else:
                lines.append(f"  {str(key).ljust(width)}{row}")
    return "\n".join(lines)
