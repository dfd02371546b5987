"""``harness eval``: generate with a model, extract code, grade, record, summarise.

One engine serves every benchmark of the run: all prompts of all benchmarks
go to the backend in one ``generate`` call (so vLLM batches them), answered
from the response cache where possible.  Each benchmark then gets an
EvalPlus-format ``samples.jsonl``, the raw ``generations.jsonl``,
``eval_results.json`` and ``run.json`` under ``OUTPUT/<benchmark>/``, and
the run a ``summary.json``.

Reasoning models (``--reasoning``): the chat template's thinking switch is set
where the tokenizer has one, prompts lose their response prefix (a
```` ```python ```` prefix after the assistant header suppresses thinking) and
their stops, the thinking is split from the answer (a server's
``reasoning_content`` or the model's think tags) before code extraction and
kept in ``generations.jsonl``, and thinking tokens are counted apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import benchmark as registry
from harness.benchmark import Benchmark, Problem, Prompt
from harness.engine import Engine, Request, Result, Sampling, shared_engine
from harness.engine.base import backend_class, parse_spec
from harness.engine.types import Completion, Message
from harness.errors import ConfigError, HarnessError
from harness.evaluation import check_output, evaluate
from harness.execution import SandboxSettings
from harness.extraction import evalplus_sanitize, has_code, last_fenced_block
from harness.failure import GenerationFacts, format_counts
from harness.progress import Bar
from harness.reasoning import (
    DEFAULT_MAX_TOKENS,
    REASONING_MAX_TOKENS,
    REASONING_MODES,
    Reply,
    ThinkTags,
    split_reply,
)
from harness.samples import Sample
from harness.store import GenerationInfo, RunRecord, write_json_atomic

STYLES = ("auto", "base", "instruct")
#: ``--extract`` rules (see the README's table): ``auto`` is the benchmark's official rule for a reply,
#: or the response-prefix rule when the reply continues a prefix.
EXTRACT_RULES = ("auto", "official", "evalplus", "lcb", "prefix", "raw")


@dataclass(frozen=True)
class EvalSettings:
    """Sampling and prompting for one ``harness eval`` run."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    #: None: 768, or 32,000 when reasoning is on (see :mod:`harness.reasoning`).
    max_tokens: int | None = None
    seed: int | None = None
    style: str = "auto"
    limit: int | None = None
    system: str | None = None
    test_details: bool = False
    use_verdict_cache: bool = True
    #: ``auto`` (the model's own default), ``off`` or ``on``.
    reasoning: str = "auto"
    #: Thinking tokens before the thinking is closed for the model (backends that support it: hf).
    thinking_budget: int | None = None
    #: ``"OPEN,CLOSE"`` think tags (None: ``<think>,</think>``).
    think_tags: str | None = None
    extract: str = "auto"


@dataclass(frozen=True)
class _Plan:
    """How the run prompts the model, decided once before generation."""

    style: str
    reasoning: bool
    #: The chat template's thinking switch to send (None: leave the template's default).
    thinking: bool | None
    max_tokens: int
    tags: ThinkTags


def _validate(settings: EvalSettings) -> None:
    """Checked before any model loads (a load can take minutes)."""
    if settings.style not in STYLES:
        raise HarnessError(f"unknown --style {settings.style!r}; choose from {', '.join(STYLES)}")
    if settings.temperature < 0:
        raise HarnessError(f"--temperature must be >= 0, got {settings.temperature}")
    if not 0 < settings.top_p <= 1:
        raise HarnessError(f"--top-p must be in (0, 1], got {settings.top_p}")
    if settings.max_tokens is not None and settings.max_tokens < 1:
        raise HarnessError(f"--max-tokens must be >= 1, got {settings.max_tokens}")
    if settings.reasoning not in REASONING_MODES:
        raise ConfigError(f"unknown --reasoning {settings.reasoning!r}; choose from {', '.join(REASONING_MODES)}")
    if settings.extract not in EXTRACT_RULES:
        raise ConfigError(f"unknown --extract {settings.extract!r}; choose from {', '.join(EXTRACT_RULES)}")
    if settings.thinking_budget is not None:
        if settings.thinking_budget < 1:
            raise ConfigError(f"--thinking-budget must be >= 1, got {settings.thinking_budget}")
        if settings.reasoning == "off":
            raise ConfigError("--thinking-budget needs thinking: drop --reasoning off (or the budget)")
    ThinkTags.parse(settings.think_tags)


def _plan(engine: Engine, settings: EvalSettings) -> _Plan:
    backend = engine.backend
    style = engine.default_style() if settings.style == "auto" else settings.style
    if engine.default_style() == "replay":
        style = "replay"  # stored answers are used as stored, whatever the flag says
    if settings.reasoning == "auto":
        reasoning = backend.thinks_by_default()
    else:
        reasoning = settings.reasoning == "on"
    switch = backend.thinking_switch()
    thinking = reasoning if switch else None
    if settings.thinking_budget is not None:
        _budget_supported(backend.supports_thinking_budget, engine.name)
    if settings.thinking_budget is not None and not reasoning:
        raise ConfigError(f"--thinking-budget needs thinking, and {engine.spec} does not think by default; "
                          "add --reasoning on")  # fmt: skip
    max_tokens = settings.max_tokens or (REASONING_MAX_TOKENS if reasoning else DEFAULT_MAX_TOKENS)
    return _Plan(style, reasoning, thinking, max_tokens, ThinkTags.parse(settings.think_tags))


def _budget_supported(supported: bool, name: str) -> None:
    if not supported:
        raise ConfigError(f"--thinking-budget is not supported by the {name} backend (supported: hf); cap the "
                          "whole reply with --max-tokens instead")  # fmt: skip


def reasoning_prompt(prompt: Prompt) -> Prompt:
    """A chat prompt for a model that thinks first, in LiveCodeBench's reasoning-model style.

    No response prefix (after the assistant header a fence starts the answer and suppresses the thinking),
    no stop strings (LiveCodeBench stops only base models; a fence inside the thinking would end the reply).
    The benchmark's system message is folded into the user message (LiveCodeBench's o1/o3 and DeepSeek-R1
    styles: reasoning models are asked without a system turn); ``--system`` still sends one.
    """
    return Prompt(text=prompt.text, instruction=prompt.instruction, response_prefix="", stop=(),
                  system=prompt.system)  # fmt: skip


def _requests(bench: Benchmark, problems: Sequence[Problem], plan: _Plan, settings: EvalSettings
              ) -> tuple[list[Request], list[Prompt], list[bool]]:  # fmt: skip
    """The requests, the prompts they were made from, and whether each reply is a whole reply to a prompt
    that lost its response prefix (reasoning): those take the benchmark's rule for whole replies."""
    requests, prompts, whole = [], [], []
    style = plan.style
    for problem in problems:
        prompt = bench.prompt(problem, "base" if style == "replay" else style)
        rewritten = plan.reasoning and prompt.instruction is not None and bool(prompt.response_prefix)
        if plan.reasoning and prompt.instruction is not None:
            prompt = reasoning_prompt(prompt)
        sampling = Sampling(n=settings.n, temperature=settings.temperature, top_p=settings.top_p,
                            max_tokens=plan.max_tokens, stop=prompt.stop, seed=settings.seed,
                            thinking_budget=settings.thinking_budget,
                            thinking_end=plan.tags.close)  # fmt: skip
        if prompt.instruction is not None:
            if settings.system:
                messages: tuple[Message, ...] = (Message("system", settings.system), Message("user", prompt.instruction))
            elif plan.reasoning and prompt.system:
                messages = (Message("user", f"{prompt.system}\n\n{prompt.instruction}"),)
            elif prompt.system:
                messages = (Message("system", prompt.system), Message("user", prompt.instruction))
            else:
                messages = (Message("user", prompt.instruction),)
            req = Request(messages=messages, response_prefix=prompt.response_prefix, sampling=sampling,
                          task_id=problem.task_id, benchmark=bench.name, thinking=plan.thinking)  # fmt: skip
        else:
            req = Request(prompt=prompt.text or "", sampling=sampling, task_id=problem.task_id, benchmark=bench.name)
        requests.append(req)
        prompts.append(prompt)
        whole.append(rewritten)
    return requests, prompts, whole


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
    _validate(settings)
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
        if settings.thinking_budget is not None:  # refused before a model loads (a vLLM start takes minutes)
            _budget_supported(backend_class(parse_spec(model)[0]).supports_thinking_budget, backend)
        engine = shared_engine(model, options, cache_dir=cache_dir, use_cache=use_cache)
    plan = _plan(engine, settings)
    thinking = "on" if plan.reasoning else "off"
    if plan.reasoning and settings.thinking_budget:
        thinking += f", thinking budget {settings.thinking_budget}"
    echo(f"model {model} ({engine.name} backend), prompt style {plan.style}, reasoning {thinking}, n={settings.n}, "
         f"temperature={settings.temperature}, max_tokens={plan.max_tokens}")  # fmt: skip

    work: dict[str, tuple[list[Problem], list[Request], list[Prompt], list[bool]]] = {}
    for name, bench in benches.items():
        problems = list(bench.problems().values())
        if settings.limit is not None:
            problems = problems[: settings.limit]
        reqs, prompts, whole = _requests(bench, problems, plan, settings)
        work[name] = (problems, reqs, prompts, whole)
    all_requests = [r for _, reqs, _, _ in work.values() for r in reqs]
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
    for name, (problems, reqs, prompts, whole) in work.items():
        bench = benches[name]
        mine = results[offset : offset + len(reqs)]
        offset += len(reqs)
        folder = out / name
        samples, samples_path, tally = _samples(folder, bench, problems, prompts, whole, mine, plan, settings,
                                                engine)  # fmt: skip
        # One engine call served every benchmark: each gets its share of the time by samples.
        share = gen_seconds * sum(len(r.completions) for r in mine) / total_samples
        info = _generation_info(engine, plan, settings, mine, share, tally)
        records[name] = evaluate(
            bench, samples, results_path=folder / "eval_results.json", run_path=folder / "run.json",
            parallel=parallel, test_details=settings.test_details, use_verdict_cache=settings.use_verdict_cache,
            sandbox_settings=sandbox_settings, echo=echo, generation=info, samples_file=samples_path,
        )  # fmt: skip
    _summary(out, model, records, echo)
    return records


@dataclass
class _Tally:
    """Thinking seen in one benchmark's samples."""

    with_thinking: int = 0
    unclosed: int = 0
    reasoning_tokens: int = 0
    sources: dict[str, int] | None = None

    def count(self, source: str) -> None:
        self.sources = self.sources or {}
        self.sources[source] = self.sources.get(source, 0) + 1


def _reasoning_tokens(c: Completion, reply: Reply, engine: Engine) -> tuple[int, str]:
    """Thinking tokens of a sample and where the number came from (reported, counted, estimated, none)."""
    # A zero count beside visible thinking is a server that fills the field without counting (not hidden).
    if c.reasoning_tokens is not None and (c.reasoning_tokens > 0 or not reply.thinking):
        return int(c.reasoning_tokens), "reported"
    if not reply.thinking:
        return 0, "none"
    counted = engine.backend.count_tokens(reply.thinking)
    if counted is not None:
        return min(counted, c.completion_tokens or counted), "counted"
    # No tokenizer here (a server that sent reasoning_content without a count): the thinking's share of the
    # reply's characters, applied to its completion tokens.
    chars = len(reply.thinking) + len(reply.answer)
    return (round(c.completion_tokens * len(reply.thinking) / chars) if chars else 0), "estimated"


def extract(bench: Benchmark, problem: Problem, style: str, prompt: Prompt, answer: str, rule: str,
            prefix: str, stored_field: str | None = None, whole_reply: bool = True) -> dict[str, str]:  # fmt: skip
    """The samples-file fields for a reply's answer under an ``--extract`` rule (README: "Code extraction").

    ``prefix`` is the response prefix the answer continues ('' for a reasoning prompt); ``whole_reply``: the
    reply answers a prompt that lost its prefix (reasoning) or a stored raw reply, so ``auto`` takes the
    benchmark's rule for whole replies; otherwise ``auto`` is the benchmark's own rule for its own prompt.
    """
    if stored_field is not None and rule == "auto":
        # Replay / oracle: as the file had it (the benchmark may still decide: a repair keeps passed programs).
        return bench.sample(problem, style, prompt, answer, field=stored_field)
    entry = problem.entry_point or None
    continued = stored_field is None and style == "base"  # a base model continued the prompt's text
    if rule == "raw":
        if stored_field is not None:
            return {stored_field: answer}
        return {"completion": answer} if continued else {"solution": answer}
    if rule == "evalplus":
        # EvalPlus sanitizes prompt + completion (base models, stored completions), a chat reply as it is.
        if continued:
            text = (prompt.text or "") + answer
        elif stored_field == "completion":
            text = problem.prompt + "\n" + answer
        else:
            text = answer
        return {"solution": evalplus_sanitize(text, entry)}
    if rule == "lcb":
        # LiveCodeBench: a base model's output stripped; a chat reply's last fenced block.
        if continued:
            return {"solution": answer.strip()}
        return {"solution": last_fenced_block(prefix + answer)}
    if continued:
        return bench.sample(problem, "base", prompt, answer)
    if rule == "prefix" or (rule == "auto" and prefix):
        prefixed = prompt if prompt.response_prefix else replace(prompt, response_prefix=prefix or "```python\n")
        return bench.sample(problem, "instruct", prefixed, answer)
    if rule == "auto" and not whole_reply:
        return bench.sample(problem, "instruct", prompt, answer)  # its own prompt had no prefix: its own rule
    # official (or auto without a prefix): the benchmark's rule for a whole reply, where it has one.
    official = getattr(bench, "reply_sample", None)
    if callable(official):
        return official(problem, problem.prompt + "\n" + answer if stored_field == "completion" else answer)
    return bench.sample(problem, "instruct", prompt, answer)


def _samples(folder: Path, bench: Benchmark, problems: Sequence[Problem], prompts: Sequence[Prompt],
             whole: Sequence[bool], results: Sequence[Result], plan: _Plan, settings: EvalSettings, engine: Engine
             ) -> tuple[list[Sample], Path, _Tally]:  # fmt: skip
    """The generated samples, in memory with their programs (extracted once), and as files (outputs only)."""
    folder.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    samples_lines, raw_lines = [], []
    tally = _Tally()
    for problem, prompt, whole_reply, result in zip(problems, prompts, whole, results):
        request = result.request
        opened = plan.reasoning and engine.backend.opens_thinking(request, plan.tags.open)
        for index, c in enumerate(result.completions):
            reply = split_reply(c.text, c.reasoning, plan.tags, opened=opened)
            if c.reasoning and not reply.answer.strip() and c.finish_reason == "length":
                # A server's reasoning parser puts a reply whose thinking never closed wholly in
                # reasoning_content (vLLM's DeepSeek-R1 parser): cut at the limit with no answer.
                reply = replace(reply, unclosed=True)
            prefix = c.response_prefix if c.response_prefix is not None else request.response_prefix
            fields = extract(bench, problem, plan.style, prompt, reply.answer, settings.extract, prefix,
                             stored_field=c.sample_field, whole_reply=whole_reply or c.response_prefix == "")  # fmt: skip
            solution, completion = fields.get("solution"), fields.get("completion")
            program = bench.program(problem, solution, completion)
            code = solution if solution is not None else completion or ""
            stored = c.sample_field is not None and settings.extract == "auto"
            # Nothing extractable: the extracted text is no code and the answer shows none either (a fenced but
            # broken block is a syntax error, not this).
            no_code = not stored and (not code.strip() or (not has_code(code) and "```" not in reply.answer
                                                             and not has_code(reply.answer)))
            facts = GenerationFacts(
                finish_reason=c.finish_reason, thinking_unclosed=reply.unclosed,
                empty_answer=not reply.answer.strip() and not stored, no_code=no_code,
                answer_head=reply.answer.lstrip()[:200],
            )  # fmt: skip
            tokens, source = _reasoning_tokens(c, reply, engine)
            if reply.thinking is not None or c.reasoning_tokens:
                tally.with_thinking += 1
                tally.reasoning_tokens += tokens
                tally.count(source)
            tally.unclosed += reply.unclosed
            samples.append(Sample(len(samples) + 1, problem.task_id, solution, completion, program=program,
                                  facts=facts))  # fmt: skip
            samples_lines.append(json.dumps({"task_id": problem.task_id, **fields}))
            raw_lines.append(json.dumps({
                "task_id": problem.task_id, "index": index, "text": c.text, "response_prefix": prefix,
                "finish_reason": c.finish_reason, "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens, "reasoning_tokens": tokens,
                "reasoning_tokens_source": source, "answer_tokens": max(0, c.completion_tokens - tokens),
                "reasoning_content": c.reasoning, "thinking": reply.thinking, "thinking_closed":
                None if reply.thinking is None else not reply.unclosed, "extract": settings.extract,
                "cached": c.cached,
            }))  # fmt: skip
    _write_lines(folder / "generations.jsonl", raw_lines)
    return samples, _write_lines(folder / "samples.jsonl", samples_lines), tally


def _write_lines(path: Path, lines: list[str]) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise HarnessError(f"cannot write {path}: {exc.strerror or exc}; free some space or choose another --output"
                           ) from None  # fmt: skip
    return path


def _generation_info(engine: Engine, plan: _Plan, settings: EvalSettings, results: Sequence[Result],
                     seconds: float, tally: _Tally) -> GenerationInfo:  # fmt: skip
    desc = engine.describe()
    comps = [c for r in results for c in r.completions]
    finish: dict[str, int] = {}
    for c in comps:
        finish[c.finish_reason] = finish.get(c.finish_reason, 0) + 1
    completion_tokens = sum(c.completion_tokens for c in comps)
    return GenerationInfo(
        model=engine.spec, backend=engine.name, identity=desc["identity"], options=desc["options"], style=plan.style,
        sampling={"n": settings.n, "temperature": settings.temperature, "top_p": settings.top_p,
                  "max_tokens": plan.max_tokens, "seed": settings.seed, "limit": settings.limit,
                  "thinking_budget": settings.thinking_budget},
        n_requests=len(results), cached_samples=sum(c.cached for c in comps),
        generated_samples=sum(not c.cached for c in comps), prompt_tokens=sum(c.prompt_tokens for c in comps),
        completion_tokens=completion_tokens, finish_reasons=finish, seconds=round(seconds, 3),
        reasoning="on" if plan.reasoning else "off", thinking_switch=plan.thinking,
        think_tags=[plan.tags.open, plan.tags.close], extract=settings.extract,
        reasoning_tokens=tally.reasoning_tokens, answer_tokens=max(0, completion_tokens - tally.reasoning_tokens),
        reasoning_tokens_source=tally.sources or {}, samples_with_thinking=tally.with_thinking,
        unclosed_thinking=tally.unclosed,
    )  # fmt: skip


def _summary(out: Path, model: str, records: Mapping[str, RunRecord], echo: Callable[[str], None]) -> None:
    rows = []
    for name, rec in records.items():
        first = {suite: rec.pass_at_k.get(suite, {}).get("pass@1") for suite in rec.suites}
        gen = rec.generation
        rows.append({"benchmark": name, "dataset": f"{rec.dataset.name} {rec.dataset.version}",
                     "pass@1": first, "titles": rec.suite_titles(),
                     "base_pass@1": first.get("base"), "plus_pass@1": first.get("plus"),
                     "pass_at_k": rec.pass_at_k, "n_tasks": rec.n_tasks, "n_samples": rec.n_samples,
                     "cached_samples": gen.cached_samples if gen else 0,
                     "failure_modes": dict(rec.failure_modes),
                     "reasoning_tokens": gen.reasoning_tokens if gen else 0,
                     "answer_tokens": gen.answer_tokens if gen else 0,
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
    for r in rows:
        echo(f"{r['benchmark'].ljust(width)}failure modes: {format_counts(r['failure_modes'])}")
    echo(f"summary: {out / 'summary.json'}")
