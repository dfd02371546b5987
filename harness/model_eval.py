"""``harness eval``: generate with a model, extract code, grade, record, summarise.

One engine serves every benchmark of the run: all prompts of all benchmarks
go to the backend in one ``generate`` call (so vLLM batches them), answered
from the response cache where possible.  Each benchmark then gets an
EvalPlus-format ``samples.jsonl``, the raw ``generations.jsonl``,
``eval_results.json`` and ``run.json`` under ``OUTPUT/<benchmark>/``, and
the run a ``summary.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import benchmark as registry
from harness.benchmark import Benchmark, Problem, Prompt
from harness.engine import Engine, Request, Result, Sampling, shared_engine
from harness.engine.types import Message
from harness.errors import HarnessError
from harness.evaluation import check_output, evaluate
from harness.execution import SandboxSettings
from harness.progress import Bar
from harness.samples import Sample
from harness.store import GenerationInfo, RunRecord, write_json_atomic

STYLES = ("auto", "base", "instruct")


@dataclass(frozen=True)
class EvalSettings:
    """Sampling and prompting for one ``harness eval`` run."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 768
    seed: int | None = None
    style: str = "auto"
    limit: int | None = None
    system: str | None = None
    test_details: bool = False
    use_verdict_cache: bool = True


def _requests(bench: Benchmark, problems: Sequence[Problem], style: str, settings: EvalSettings) -> tuple[list[Request], list[Prompt]]:  # fmt: skip
    requests, prompts = [], []
    for problem in problems:
        prompt = bench.prompt(problem, "base" if style == "replay" else style)
        sampling = Sampling(n=settings.n, temperature=settings.temperature, top_p=settings.top_p,
                            max_tokens=settings.max_tokens, stop=prompt.stop, seed=settings.seed)  # fmt: skip
        if prompt.instruction is not None:
            system = settings.system or prompt.system
            messages = ((Message("system", system),) if system else ()) + (Message("user", prompt.instruction),)
            req = Request(messages=messages, response_prefix=prompt.response_prefix, sampling=sampling,
                          task_id=problem.task_id, benchmark=bench.name)  # fmt: skip
        else:
            req = Request(prompt=prompt.text or "", sampling=sampling, task_id=problem.task_id, benchmark=bench.name)
        requests.append(req)
        prompts.append(prompt)
    return requests, prompts


def eval_model(
    model: str,
    benchmarks: Sequence[str] | None,
    output: str | Path,
    settings: EvalSettings = EvalSettings(),
    engine_options: Mapping[str, Any] | None = None,
    use_cache: bool = True,
    cache_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    parallel: int | None = None,
    sandbox_settings: SandboxSettings | None = None,
    echo: Callable[[str], None] = print,
    engine: Engine | None = None,
    bench_options: Mapping[str, Mapping[str, Any]] | None = None,
    overwrite: bool = True,
) -> dict[str, RunRecord]:
    """Generate, grade and record every benchmark (None: the registry's defaults); returns records by benchmark.

    ``bench_options``: per benchmark, the options the user set. The oracle is
    graded under each benchmark's :meth:`~harness.benchmark.Benchmark.oracle_options`
    unless the user set them.
    """
    out = Path(output)
    names = registry.parse_list(list(benchmarks) if benchmarks is not None else None)
    if settings.style not in STYLES:
        raise HarnessError(f"unknown --style {settings.style!r}; choose from {', '.join(STYLES)}")
    # Checked before any model loads (a load can take minutes).
    if settings.temperature < 0:
        raise HarnessError(f"--temperature must be >= 0, got {settings.temperature}")
    if not 0 < settings.top_p <= 1:
        raise HarnessError(f"--top-p must be in (0, 1], got {settings.top_p}")
    if settings.max_tokens < 1:
        raise HarnessError(f"--max-tokens must be >= 1, got {settings.max_tokens}")
    per = {name: dict((bench_options or {}).get(name, {})) for name in names}
    backend = model.split(":", 1)[0]
    for name in names:
        cls = registry.benchmark_class(name)
        extra, messages = cls.options_for_model(model, per[name])
        for message in messages:
            echo(message)
        if backend == "oracle":
            extra = {**cls.oracle_options(), **extra}
        per[name] = {**extra, **per[name]}
    benches = {name: registry.get(name, data_dir=data_dir, **per[name]) for name in names}
    # Before any generation: every result folder must be writable and must not hold an earlier run.
    check_output([out / name / "run.json" for name in names] + [out / "summary.json"], overwrite)
    options = dict(engine_options or {})
    if backend == "oracle" and data_dir is not None:
        options.setdefault("data_dir", str(data_dir))
    if engine is None:
        engine = shared_engine(model, options, cache_dir=cache_dir, use_cache=use_cache)
    style = engine.default_style() if settings.style == "auto" else settings.style
    if engine.default_style() == "replay":
        style = "replay"  # stored answers are used as stored, whatever the flag says
    echo(f"model {model} ({engine.name} backend), prompt style {style}, n={settings.n}, "
         f"temperature={settings.temperature}, max_tokens={settings.max_tokens}")  # fmt: skip

    plan: dict[str, tuple[list[Problem], list[Request], list[Prompt]]] = {}
    for name, bench in benches.items():
        problems = list(bench.problems().values())
        if settings.limit is not None:
            problems = problems[: settings.limit]
        reqs, prompts = _requests(bench, problems, style, settings)
        plan[name] = (problems, reqs, prompts)
    all_requests = [r for _, reqs, _ in plan.values() for r in reqs]
    before = (engine.stats.cached, engine.stats.generated, engine.stats.seconds)
    with Bar(sum(r.sampling.n for r in all_requests), "generating") as bar:
        results = engine.generate(all_requests, progress=bar.update)
    cached = engine.stats.cached - before[0]
    generated = engine.stats.generated - before[1]
    gen_seconds = engine.stats.seconds - before[2]
    echo(f"generation: {len(results)} prompts, {sum(len(r.completions) for r in results)} samples; "
         f"{cached} from the response cache, {generated} generated, {gen_seconds:.1f} s")  # fmt: skip

    records: dict[str, RunRecord] = {}
    offset = 0
    total_samples = sum(len(r.completions) for r in results) or 1
    for name, (problems, reqs, prompts) in plan.items():
        bench = benches[name]
        mine = results[offset : offset + len(reqs)]
        offset += len(reqs)
        folder = out / name
        samples, samples_path = _samples(folder, bench, problems, prompts, mine, style)
        # One engine call served every benchmark: each gets its share of the time by samples.
        share = gen_seconds * sum(len(r.completions) for r in mine) / total_samples
        info = _generation_info(engine, style, settings, mine, share)
        records[name] = evaluate(
            bench, samples, results_path=folder / "eval_results.json", run_path=folder / "run.json",
            parallel=parallel, test_details=settings.test_details, use_verdict_cache=settings.use_verdict_cache,
            sandbox_settings=sandbox_settings, echo=echo, generation=info, samples_file=samples_path,
        )  # fmt: skip
    _summary(out, model, records, echo)
    return records


def _samples(folder: Path, bench: Benchmark, problems: Sequence[Problem], prompts: Sequence[Prompt],
             results: Sequence[Result], style: str) -> tuple[list[Sample], Path]:  # fmt: skip
    """The generated samples, in memory with their programs (extracted once), and as files (outputs only)."""
    folder.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    samples_lines, raw_lines = [], []
    for problem, prompt, result in zip(problems, prompts, results):
        for index, c in enumerate(result.completions):
            fields = bench.sample(problem, style, prompt, c.text, field=c.sample_field)
            solution, completion = fields.get("solution"), fields.get("completion")
            program = bench.program(problem, solution, completion)
            samples.append(Sample(len(samples) + 1, problem.task_id, solution, completion, program=program))
            samples_lines.append(json.dumps({"task_id": problem.task_id, **fields}))
            raw_lines.append(json.dumps({"task_id": problem.task_id, "index": index, "text": c.text,
                                         "response_prefix": result.request.response_prefix,
                                         "finish_reason": c.finish_reason, "prompt_tokens": c.prompt_tokens,
                                         "completion_tokens": c.completion_tokens, "cached": c.cached}))  # fmt: skip
    _write_lines(folder / "generations.jsonl", raw_lines)
    return samples, _write_lines(folder / "samples.jsonl", samples_lines)


def _write_lines(path: Path, lines: list[str]) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise HarnessError(f"cannot write {path}: {exc.strerror or exc}; free some space or choose another --output"
                           ) from None  # fmt: skip
    return path


def _generation_info(engine: Engine, style: str, settings: EvalSettings, results: Sequence[Result],
                     seconds: float) -> GenerationInfo:  # fmt: skip
    desc = engine.describe()
    comps = [c for r in results for c in r.completions]
    finish: dict[str, int] = {}
    for c in comps:
        finish[c.finish_reason] = finish.get(c.finish_reason, 0) + 1
    return GenerationInfo(
        model=engine.spec, backend=engine.name, identity=desc["identity"], options=desc["options"], style=style,
        sampling={"n": settings.n, "temperature": settings.temperature, "top_p": settings.top_p,
                  "max_tokens": settings.max_tokens, "seed": settings.seed, "limit": settings.limit},
        n_requests=len(results), cached_samples=sum(c.cached for c in comps),
        generated_samples=sum(not c.cached for c in comps), prompt_tokens=sum(c.prompt_tokens for c in comps),
        completion_tokens=sum(c.completion_tokens for c in comps), finish_reasons=finish, seconds=round(seconds, 3),
    )  # fmt: skip


def _summary(out: Path, model: str, records: Mapping[str, RunRecord], echo: Callable[[str], None]) -> None:
    rows = []
    for name, rec in records.items():
        first = {suite: rec.pass_at_k.get(suite, {}).get("pass@1") for suite in rec.suites}
        rows.append({"benchmark": name, "dataset": f"{rec.dataset.name} {rec.dataset.version}",
                     "pass@1": first, "titles": rec.suite_titles(),
                     "base_pass@1": first.get("base"), "plus_pass@1": first.get("plus"),
                     "pass_at_k": rec.pass_at_k, "n_tasks": rec.n_tasks, "n_samples": rec.n_samples,
                     "cached_samples": rec.generation.cached_samples if rec.generation else 0,
                     "run": str((out / name / "run.json").resolve())})  # fmt: skip
    write_json_atomic(out / "summary.json", {"model": model, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                             "benchmarks": rows})  # fmt: skip
    cells = [[(r["titles"].get(s, s), v) for s, v in r["pass@1"].items()] for r in rows]
    width = max(len(r["benchmark"]) for r in rows) + 2
    echo("")
    echo(f"{'benchmark'.ljust(width)}{'pass@1 per suite':<40}{'tasks':>7}{'samples':>9}{'cached':>8}")
    for r, mine in zip(rows, cells):
        text = "  ".join(f"{title} {v:.3f}" if v is not None else f"{title} -" for title, v in mine)
        echo(f"{r['benchmark'].ljust(width)}{text:<40}{r['n_tasks']:>7}{r['n_samples']:>9}{r['cached_samples']:>8}")
    echo(f"summary: {out / 'summary.json'}")
