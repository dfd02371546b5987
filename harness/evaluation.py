"""Evaluate an EvalPlus-format samples file: grade, score, write results."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import benchmark as bench_registry
from harness import registry
from harness.benchmark import Benchmark, GradeOptions, Verdict
from harness.data import cache_dir
from harness.errors import HarnessError
from harness.execution import Sandbox, SandboxSettings
from harness.passk import mean_pass_at_k
from harness.progress import Bar
from harness.samples import file_sha256
from harness.store import (
    GenerationInfo,
    RunRecord,
    RunSettings,
    RunTimings,
    SampleResult,
    SkippedSample,
    TaskResult,
    git_commit,
    save_run,
    write_json_atomic,
)
from harness.verdict_cache import VerdictCache, verdict_key


def output_paths(samples: Path, output: Path | None) -> tuple[Path, Path]:
    """``(eval_results.json, run.json)``; next to the samples file (EvalPlus naming) without ``--output``."""
    if output is not None:
        return output / "eval_results.json", output / "run.json"
    stem = samples.name[: -len(".jsonl")] if samples.name.endswith(".jsonl") else samples.stem
    return samples.parent / f"{stem}_eval_results.json", samples.parent / f"{stem}_run.json"


def evaluate_samples(
    benchmark: str,
    samples: str | Path,
    output: str | Path | None = None,
    parallel: int | None = None,
    data_dir: str | Path | None = None,
    test_details: bool = False,
    base_only: bool = False,
    use_verdict_cache: bool = True,
    skip_bad: bool = False,
    memory_accounting: str = "evalplus",
    sandbox_settings: SandboxSettings | None = None,
    echo: Callable[[str], None] = print,
    generation: GenerationInfo | None = None,
    bench: Benchmark | None = None,
    bench_options: dict[str, Any] | None = None,
) -> RunRecord:
    """Grade a samples file and write ``eval_results.json`` and ``run.json``.

    ``generation`` (from ``harness eval``) records how the samples were made;
    ``bench`` reuses an already loaded benchmark.
    """
    t0 = time.perf_counter()
    samples_path = Path(samples)
    if bench is None:
        bench = bench_registry.get(benchmark, data_dir=data_dir, **(bench_options or {}))
    problems = bench.problems()
    dataset = bench.dataset()
    # The dataset (hundreds of thousands of inputs) lives as long as the run:
    # keep the cyclic collector from walking it again and again.
    gc.collect()
    gc.freeze()
    rows, bad = bench.load_samples(samples_path, skip_bad=skip_bad)
    skipped = [SkippedSample(line=b.line, task_id=b.task_id, reason=b.reason) for b in bad]
    graded = []
    for s in rows:
        if s.task_id not in problems:
            skipped.append(
                SkippedSample(line=s.line, task_id=s.task_id, reason=f"task not in {dataset.name} {dataset.version}")
            )
        else:
            graded.append(s)
    if not graded:
        raise HarnessError(
            f"none of the {len(rows)} samples in {samples_path} belongs to {dataset.name} {dataset.version}"
            f" (first task_id: {rows[0].task_id!r}); is --benchmark right?"
        )
    for sk in skipped:
        echo(f"warning: skipped line {sk.line} ({sk.task_id}): {sk.reason}")
    programs = [(s.task_id, bench.program(problems[s.task_id], s.solution, s.completion)) for s in graded]
    options = GradeOptions(test_details=test_details, base_only=base_only, memory_accounting=memory_accounting)
    base = sandbox_settings or SandboxSettings()
    settings = bench.sandbox_settings(SandboxSettings(**{**base.__dict__, "workers": parallel or base.workers}))
    verdicts: list[Verdict | None] = [None] * len(programs)
    cache = VerdictCache(cache_dir() / "verdicts.sqlite") if use_verdict_cache else None
    keys: list[str] = []
    hits = 0
    try:
        with Sandbox(settings) as sandbox:
            t_grade = time.perf_counter()
            todo: list[int] = list(range(len(programs)))
            if cache is not None:
                salted = f"{bench.name}|{bench.verdict_salt()}" if bench.verdict_salt() else bench.name
                keys = [
                    verdict_key(salted, dataset.hash, tid, prog, options, settings.memory_bytes)
                    for tid, prog in programs
                ]
                found = cache.get_many(keys)
                todo = []
                first_of: dict[str, int] = {}
                for k, key in enumerate(keys):
                    if key in found:
                        verdicts[k] = found[key].model_copy(update={"cached": True})
                        hits += 1
                    elif key in first_of:
                        continue  # an identical program is graded once
                    else:
                        first_of[key] = k
                        todo.append(k)
            progress = Bar(len(todo), f"grading {bench.name}")

            def done(j: int, verdict: Verdict) -> None:
                progress.step()
                if cache is not None:
                    cache.put(keys[todo[j]], verdict)

            try:
                fresh = bench.grade(sandbox, [programs[k] for k in todo], options, on_done=done)
            finally:
                progress.close()
            for k, verdict in zip(todo, fresh):
                verdicts[k] = verdict
            if cache is not None:
                by_key = {keys[k]: verdicts[k] for k in todo}
                for k, key in enumerate(keys):
                    if verdicts[k] is None:
                        verdicts[k] = by_key[key].model_copy(update={"cached": True})  # type: ignore[union-attr]
                        hits += 1
            grading_s = time.perf_counter() - t_grade
            prep = bench.prepare_seconds
            isolation = sandbox.mode
    finally:
        if cache is not None:
            cache.close()  # keeps every verdict graded so far, even when interrupted
    final = [v for v in verdicts if v is not None]
    record = _record(
        bench, dataset, samples_path, graded, programs, final, skipped, options, settings, isolation,
        RunTimings(expected_outputs=prep, grading=grading_s, total=time.perf_counter() - t0,
                   verdict_cache_hits=hits, graded_programs=len(todo)),
        use_verdict_cache,
    )  # fmt: skip
    if generation is not None:
        record.model, record.generation = generation.model, generation
    results_path, run_path = output_paths(samples_path, Path(output) if output else None)
    write_json_atomic(results_path, bench.results_document(dataset.hash, programs, final, base_only))
    save_run(run_path, record)
    registry.index_run(run_path, record)  # never fails the run; a problem is a warning
    _summary(record, results_path, run_path, echo)
    return record


def _record(bench: Benchmark, dataset: Any, samples_path: Path, graded: list[Any], programs: list[tuple[str, str]],
            verdicts: list[Verdict], skipped: list[SkippedSample], options: GradeOptions,
            settings: SandboxSettings, isolation: str, timings: RunTimings, use_cache: bool) -> RunRecord:  # fmt: skip
    has_plus = "plus" in bench.suites and not options.base_only
    tasks: dict[str, TaskResult] = {}
    for sample, verdict in zip(graded, verdicts):
        t = tasks.setdefault(
            sample.task_id, TaskResult(n=0, base_correct=0, plus_correct=0 if has_plus else None, samples=[])
        )
        t.n += 1
        base = verdict.parts.get("base")
        if base is not None and base.status == "pass":
            t.base_correct += 1
        if has_plus and verdict.status == "pass":
            t.plus_correct = (t.plus_correct or 0) + 1
        t.samples.append(SampleResult(line=sample.line, verdict=verdict))
    pak = {"base": mean_pass_at_k([(t.n, t.base_correct) for t in tasks.values()])}
    if has_plus:
        pak["plus"] = mean_pass_at_k([(t.n, t.plus_correct or 0) for t in tasks.values()])
    missing = [tid for tid in bench.problems() if tid not in tasks]
    passed = {tid: [s.verdict.parts.get("base") is not None and s.verdict.parts["base"].status == "pass"
                    for s in t.samples] for tid, t in tasks.items()}  # fmt: skip
    return RunRecord(
        benchmark=bench.name,
        dataset=dataset,
        benchmark_options=bench.describe(),
        notes=bench.notes(),
        breakdown=bench.breakdown(passed),
        samples_file=str(samples_path.resolve()),
        samples_sha256=file_sha256(samples_path),
        git_commit=git_commit(),
        settings=RunSettings(
            parallel=settings.worker_count(),
            min_time_limit=options.min_time_limit,
            time_limit_factor=options.time_limit_factor,
            base_only=options.base_only,
            test_details=options.test_details,
            verdict_cache=use_cache,
            isolation=isolation,
            memory_limit_bytes=settings.memory_bytes,
            memory_accounting=options.memory_accounting,
        ),
        pass_at_k=pak,
        n_tasks=len(tasks),
        n_samples=len(verdicts),
        missing_tasks=missing,
        skipped=skipped,
        tasks=tasks,
        timings=timings,
    )


def _summary(record: RunRecord, results_path: Path, run_path: Path, echo: Callable[[str], None]) -> None:
    name = record.dataset.name
    base = record.pass_at_k.get("base", {})
    plus = record.pass_at_k.get("plus", {})
    base_label = name.rstrip("+")
    echo(f"{base_label} (base tests)  " + "  ".join(f"{k}: {v:.3f}" for k, v in base.items()))
    if plus:
        echo(f"{name} (base + extra tests)  " + "  ".join(f"{k}: {v:.3f}" for k, v in plus.items()))
    t = record.timings
    echo(
        f"{record.n_samples} samples over {record.n_tasks} tasks; {len(record.skipped)} skipped; "
        f"{len(record.missing_tasks)} tasks without samples; {t.total:.1f} s "
        f"(expected outputs {t.expected_outputs:.1f} s, grading {t.grading:.1f} s, {t.verdict_cache_hits} cached)"
    )
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
