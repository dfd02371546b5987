"""The ``harness`` command line: the front door that wires the subsystems together."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.cliargs import add_benchmark_flags, benchmark_flag_values, key_value, positive_int
from harness.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, HarnessError


def _parser() -> argparse.ArgumentParser:
    from harness.benchmark import names

    parser = argparse.ArgumentParser(prog="harness", description="Evaluate, generate for, train and audit code models.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ev = sub.add_parser(
        "evaluate",
        help="grade a samples file",
        description="Grade stored samples (EvalPlus JSONL: task_id + solution or completion, or the benchmark's "
        "own format) in the sandbox, with the benchmark's official verdict rules. Writes eval_results.json and "
        "run.json.",
    )
    ev.add_argument("--benchmark", required=True, choices=names(), help="benchmark to grade against")
    ev.add_argument("--samples", required=True, type=Path, help="samples JSONL file")
    ev.add_argument("--output", type=Path, help="result folder (default: next to the samples file, EvalPlus naming)")
    ev.add_argument("--skip-bad-samples", action="store_true", help="skip malformed sample lines instead of stopping")
    _grading_flags(ev)
    add_benchmark_flags(ev, names())
    _eval_parser(sub, names())
    _decontam_parser(sub)
    _generate_parser(sub)
    from training.cli import add_parser as _train_parser

    _train_parser(sub)
    from reports.cli import add_parsers as reports_parsers

    reports_parsers(sub)
    _env_parser(sub)
    return parser


def _grading_flags(p: argparse.ArgumentParser) -> None:
    """Flags of the core grader, the same for every benchmark (evaluate and eval)."""
    p.add_argument("--parallel", type=positive_int, help="sandbox workers (default: one per CPU core)")
    p.add_argument("--data-dir", type=Path, help="offline dataset folder (default: $HARNESS_DATA_DIR, else download)")
    p.add_argument("--test-details", action="store_true", help="run every input and record every failing one")
    p.add_argument("--no-verdict-cache", action="store_true", help="re-grade programs even when a verdict is cached")
    p.add_argument("--memory-limit", type=positive_int, metavar="MIB", default=4096,
                   help="address-space cap per program (MiB, default 4096)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --output")
    p.add_argument("--isolation", choices=["auto", "bwrap", "process"], default=None,
                   help="sandbox isolation: bwrap (fails when bubblewrap cannot start), process (no namespaces), "
                   "auto (default, or $HARNESS_ISOLATION): bwrap when it works here")  # fmt: skip
    _executor_flags(p)


def _executor_flags(p: argparse.ArgumentParser) -> None:
    """Where sandbox workers run (grading, and the pipeline's filter and validate stages)."""
    p.add_argument("--executor", choices=["local", "ray"], default=None,
                   help="sandbox workers on this machine (local, default or $HARNESS_EXECUTOR) or as Ray actors on "
                   "every node of a cluster (ray; pip install 'code-harness[ray]'); --parallel counts them")
    p.add_argument("--ray-address", metavar="HOST:PORT", default=None,
                   help="the Ray cluster to join (default: $RAY_ADDRESS, else one started on this machine)")


def _executor_env(args: argparse.Namespace) -> None:
    """``--executor``/``--ray-address`` as the settings every sandbox of this process reads (the pipeline's)."""
    if getattr(args, "executor", None):
        os.environ["HARNESS_EXECUTOR"] = args.executor
    if getattr(args, "ray_address", None):
        os.environ["RAY_ADDRESS"] = args.ray_address


def _sandbox_settings(args: argparse.Namespace) -> object:
    from harness.execution import SandboxSettings

    kwargs: dict[str, object] = {"memory_bytes": args.memory_limit << 20}
    if args.isolation:
        kwargs["isolation"] = args.isolation
    if args.executor:
        kwargs["executor"] = args.executor
    if args.ray_address:
        kwargs["ray_address"] = args.ray_address
    return SandboxSettings(**kwargs)  # type: ignore[arg-type]


def _decontam_parser(sub: argparse._SubParsersAction) -> None:
    from harness.benchmark import references
    from harness.decontamination import DEFAULT_METHODS, METHODS

    dc = sub.add_parser(
        "decontam",
        help="audit a training set against the benchmarks (and clean it)",
        description="Check every text field of a dataset (JSONL, Parquet, or a saved `datasets` folder) against "
        "the benchmarks' prompts, solutions, tests and questions. Methods: substring (lowercased, whitespace "
        "removed, trivial strings ignored), ngram (13-gram overlap of normalised tokens, flagged when the shared "
        "n-grams cover --ngram-threshold of an item's), probe (GPT-4's 50-character probes), minhash (near "
        f"duplicates, datasketch LSH), embedding (nearest item judged by a model). Default methods: "
        f"{', '.join(DEFAULT_METHODS)}. Writes DIR/report.json and DIR/report.md.",
    )
    dc.add_argument("--dataset", type=Path, help="JSONL, .parquet, or a datasets.save_to_disk folder")
    dc.add_argument("--fields", help="comma list of fields to check (default: every string field)")
    dc.add_argument("--benchmarks", default="all",
                    help=f"comma list or 'all' (the decontamination references: {', '.join(references())})")
    dc.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help=f"comma list of {', '.join(METHODS)} (default: {', '.join(DEFAULT_METHODS)})")
    dc.add_argument("--output", required=True, type=Path, help="report folder")
    dc.add_argument("--write-clean", type=Path, metavar="PATH",
                    help="write the dataset without flagged rows; dropped rows go to PATH.dropped.jsonl")
    dc.add_argument("--ngram", type=positive_int, default=13, help="n of the n-gram method (default 13)")
    dc.add_argument("--ngram-threshold", type=float, default=0.5,
                    help="flag when shared n-grams cover this fraction of a benchmark item's n-grams (default 0.5)")
    dc.add_argument("--minhash-threshold", type=float, default=0.5, help="Jaccard threshold (default 0.5)")
    dc.add_argument("--min-chars", type=positive_int, default=40,
                    help="substring method: ignore benchmark strings shorter than this, whitespace removed (40)")
    dc.add_argument("--embedding-model", help="embedding method: a transformers model folder or hub id")
    dc.add_argument("--judge-model", metavar="SPEC", help="embedding method: the model that judges neighbours")
    dc.add_argument("--data-dir", type=Path, help="offline dataset folder (default: $HARNESS_DATA_DIR, else download)")
    dc.add_argument("--no-index-cache", action="store_true", help="rebuild the benchmark index")
    dc.add_argument("--cutoff-date", metavar="YYYY-MM-DD",
                    help="a model's training cutoff: report the problems of dated benchmarks published after it "
                    "(the contamination-free window); with --model, later `harness eval` runs of that model on "
                    "those benchmarks default to this window")
    dc.add_argument("--model", metavar="SPEC", help="the model whose --cutoff-date this is")


def _decontam(args: argparse.Namespace) -> int:
    from harness.benchmark import parse_list
    from harness.data import cache_dir
    from harness.decontamination import (
        AuditOptions,
        IndexParams,
        audit,
        window,
        write_clean,
        write_report,
    )

    if args.model and not args.cutoff_date:
        raise HarnessError("--model needs --cutoff-date (the model's training cutoff)")
    win = None
    if args.cutoff_date:
        dated = None if args.benchmarks == "all" else parse_list(args.benchmarks)
        win = window.window_report(window.parse_day(args.cutoff_date), args.data_dir, dated)
        for w in win["benchmarks"].values():
            print(f"{w['title']} after {win['cutoff']}: {w['problems_after_cutoff']} problems "
                  f"({w['first_date']} .. {w['last_date']}), {w['problems_on_or_before_cutoff']} on or before it")
        if args.model:
            where = window.remember(args.model, win)
            print(f"remembered: runs of {args.model} on {', '.join(win['benchmarks']) or 'dated benchmarks'} now "
                  f"default to --start-date {win['start_date']} ({where})")  # fmt: skip
    if args.dataset is None:
        if win is None:
            raise HarnessError("nothing to do: pass --dataset FILE to audit (and/or --cutoff-date for the window)")
        from harness.store import write_json_atomic

        write_json_atomic(args.output / "window.json", win)
        print(f"window: {args.output / 'window.json'}")
        return 0

    # "all": every reference benchmark whose data is here (the others are named in the report); a list: exactly those.
    benches = None if args.benchmarks.strip() == "all" else parse_list(args.benchmarks)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    judge = None
    if args.judge_model:
        from harness.engine import shared_engine

        judge = shared_engine(args.judge_model)
    opts = AuditOptions(methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
                        ngram_threshold=args.ngram_threshold, minhash_threshold=args.minhash_threshold,
                        embedding_model=args.embedding_model, judge=judge)  # fmt: skip
    params = IndexParams(ngram=args.ngram, min_substring_chars=args.min_chars, minhash_threshold=args.minhash_threshold)
    report = audit(args.dataset, fields, benches, opts, params, data_dir=args.data_dir,
                   cache_dir=None if args.no_index_cache else cache_dir(), echo=print)  # fmt: skip
    if win is not None:
        report["window"] = win
    if args.write_clean:
        report["clean"] = write_clean(report, args.dataset, fields, args.write_clean)
    json_path, md_path = write_report(report, args.output)
    print(f"{report['dataset']['rows']} rows; {report['contaminated_rows']} flagged "
          f"({report['contamination_rate']:.2%})")  # fmt: skip
    for b, s in report["summary"].items():
        by = ", ".join(f"{m} {v['rows']}" for m, v in s["by_method"].items())
        print(f"  {b}: {s['rows']} rows ({s['rate']:.2%}), {s['tasks']} tasks; {by}")
    for field, count in report["dataset"]["non_text_values"].items():
        print(f"note: field {field!r} holds non-text values in {count} rows (skipped)")
    if "clean" in report:
        c = report["clean"]
        print(f"clean dataset: {c['clean']} ({c['kept']} rows); dropped {c['dropped']} rows -> {c['dropped_file']}")
    print(f"report: {json_path}, {md_path}")
    return 0


def _generate_parser(sub: argparse._SubParsersAction) -> None:
    from generation.core import STAGES

    gen = sub.add_parser(
        "generate",
        help="the SelfCodeAlign data pipeline (seeds to a validated instruction dataset)",
        description="Stages: " + ", ".join(STAGES) + ". `run` runs them in order (resuming where a previous run "
        "stopped); a stage name runs that stage alone on the previous stage's output in the work folder; "
        "`report` draws the funnel.",
    )
    gen.add_argument("action", choices=[*STAGES, "run", "report"], help="a stage, run (all), or report")
    gen.add_argument("--config", type=Path, help="TOML or JSON pipeline config (see README)")
    gen.add_argument("--workdir", help="work folder (overrides the config's)")
    gen.add_argument("--model", metavar="SPEC", help="engine for every model call (overrides the config's)")
    gen.add_argument("--set", dest="overrides", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set instruct.responses_per_instruction=4")
    gen.add_argument("--from", dest="first", metavar="STAGE", help="run: first stage")
    gen.add_argument("--until", dest="last", metavar="STAGE", help="run: last stage")
    gen.add_argument("--rerun-from", metavar="STAGE", help="redo STAGE and every later stage (their earlier outputs "
                     "move to WORKDIR/superseded/); needed when settings changed since those outputs were made")
    gen.add_argument("--compare", nargs="+", type=Path, metavar="WORKDIR", default=[],
                     help="report: also write comparison.md, these work folders (and --workdir) side by side")
    gen.add_argument("--data-dir", help="offline benchmark data (decontamination)")
    _executor_flags(gen)


def _generate(args: argparse.Namespace) -> int:
    from generation.core import Context, load_config
    from generation.pipeline import run_pipeline, run_stage

    overrides = dict(args.overrides)
    if args.workdir:
        overrides["workdir"] = args.workdir
    if args.model:
        overrides["model"] = args.model
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.action == "report":
        from generation.report import compare, report

        workdir = Path(args.workdir or load_config(args.config, overrides).workdir) \
            if args.workdir or args.config or not args.compare else None  # fmt: skip
        if workdir is not None:
            for path in report(workdir):
                print(path)
        if args.compare:
            folders = [*([workdir] if workdir is not None else []), *args.compare]
            table = compare(folders)
            out = folders[0] / "comparison.md"
            out.write_text(table, encoding="utf-8")
            print(table, end="")
            print(out)
        return 0
    if "model" not in overrides and args.config is None:
        raise HarnessError("name the model: --model SPEC or a --config file with model = ...")
    config = load_config(args.config, overrides)
    _executor_env(args)
    if args.action == "run":
        run_pipeline(config, args.first, args.last, rerun_from=args.rerun_from)
        return 0
    ctx = Context(config, Path(config.workdir))
    try:
        run_stage(ctx, args.action, rerun_from=args.rerun_from)
    finally:
        ctx.close()
    return 0


def _eval_parser(sub: argparse._SubParsersAction, known: list[str]) -> None:
    from harness.benchmark import defaults
    from harness.engine import backend_names

    ev = sub.add_parser(
        "eval",
        help="generate with a model and grade it on benchmarks",
        description="Generate completions with a model (BACKEND:MODEL; backends: "
        f"{', '.join(backend_names())}), extract code, grade in the sandbox, write a run record per benchmark "
        "and a summary. Samples come from the response cache when the same model, prompt and settings "
        "were generated before, so an interrupted run resumes where it stopped.",
    )
    ev.add_argument("--model", required=True, metavar="SPEC",
                    help="hf:PATH_OR_ID, vllm:PATH_OR_ID, openai:NAME, replay:SAMPLES.jsonl or oracle")
    ev.add_argument("--benchmarks", default=None,
                    help=f"comma list (default: {','.join(defaults())}; known: {', '.join(known)})")
    ev.add_argument("--n", type=positive_int, default=1, help="samples per task (default 1)")
    ev.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    ev.add_argument("--top-p", type=float, default=1.0)
    ev.add_argument("--max-tokens", type=positive_int, default=None,
                    help="new tokens per sample, thinking included (default 768; 32000 with reasoning on)")
    ev.add_argument("--seed", type=int, help="sampling seed (per-sample seeds derive from it)")
    ev.add_argument("--style", choices=["auto", "base", "instruct"], default="auto",
                    help="base: continue the benchmark prompt; instruct: chat template + response prefix; "
                    "auto (default): instruct when the model has a chat template")
    ev.add_argument("--system", help="system message for instruct prompts")
    ev.add_argument("--reasoning", choices=["auto", "off", "on"], default="auto",
                    help="thinking models: on sets the chat template's thinking switch and drops the response "
                    "prefix; off sets the switch off; auto (default): the model's own default")
    ev.add_argument("--thinking-budget", type=positive_int, metavar="T",
                    help="close the thinking after T tokens (hf backend); --max-tokens caps the whole reply")
    ev.add_argument("--think-tags", metavar="OPEN,CLOSE", help="the model's think tags (default <think>,</think>)")
    ev.add_argument("--extract", choices=["auto", "official", "evalplus", "lcb", "prefix", "raw"], default="auto",
                    help="code extraction rule (default auto: each benchmark's official rule for a reply; the "
                    "response-prefix rule when the reply continues a prefix)")
    ev.add_argument("--limit", type=positive_int, help="only the first N tasks of each benchmark (smoke runs)")
    ev.add_argument("--output", type=Path, help="result folder (default: runs/<model>)")
    _grading_flags(ev)
    ev.add_argument("--no-cache", action="store_true", help="bypass the response cache (neither read nor write)")
    ev.add_argument("--cache-dir", type=Path, help="response cache folder (default: the harness cache)")
    ev.add_argument("--engine-arg", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="backend option, repeatable (e.g. tensor_parallel_size=2, batch_size=8, dtype=bfloat16)")
    ev.add_argument("--base-url", action="append", default=[], metavar="URL",
                    help="openai backend: server base URL, repeat for several servers (default: $OPENAI_BASE_URL)")
    ev.add_argument("--api-key", help="openai backend: API key (default: $OPENAI_API_KEY)")
    add_benchmark_flags(ev, known)


def _eval(args: argparse.Namespace) -> int:
    from harness.benchmark import options_for, parse_list
    from harness.model_eval import EvalSettings, eval_model

    benches = parse_list(args.benchmarks)
    options = dict(args.engine_arg)
    if args.base_url:
        options["base_url"] = [u for arg in args.base_url for u in arg.split(",") if u]
    if args.api_key:
        options["api_key"] = args.api_key
    output = args.output or Path("runs") / _slug(args.model)
    settings = EvalSettings(n=args.n, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            seed=args.seed, style=args.style, limit=args.limit, system=args.system,
                            test_details=args.test_details, use_verdict_cache=not args.no_verdict_cache,
                            reasoning=args.reasoning, thinking_budget=args.thinking_budget,
                            think_tags=args.think_tags, extract=args.extract)  # fmt: skip
    eval_model(args.model, benches, output, settings, engine_options=options, use_cache=not args.no_cache,
               cache_dir=args.cache_dir, data_dir=args.data_dir, parallel=args.parallel,
               sandbox_settings=_sandbox_settings(args),  # type: ignore[arg-type]
               bench_options=options_for(benches, benchmark_flag_values(args)), overwrite=args.overwrite)  # fmt: skip
    return 0


def _slug(spec: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec.replace("/", "__")).strip("_") or "model"


def _evaluate(args: argparse.Namespace) -> int:
    from harness.benchmark import options_for
    from harness.evaluation import evaluate_samples

    evaluate_samples(
        args.benchmark,
        args.samples,
        output=args.output,
        parallel=args.parallel,
        data_dir=args.data_dir,
        test_details=args.test_details,
        use_verdict_cache=not args.no_verdict_cache,
        skip_bad=args.skip_bad_samples,
        sandbox_settings=_sandbox_settings(args),  # type: ignore[arg-type]
        bench_options=options_for([args.benchmark], benchmark_flag_values(args))[args.benchmark],
        overwrite=args.overwrite,
        full_record=False,  # the counts are all the command prints: memory stays flat in the samples
    )
    return 0


def _env_parser(sub: argparse._SubParsersAction) -> None:
    from harness import envs

    env = sub.add_parser(
        "env",
        help="build or inspect a managed execution environment (a benchmark's pinned libraries)",
        description="Managed execution environments: a virtual environment with the library versions a benchmark "
        "pins (or the nearest ones for this Python), whose interpreter then runs that benchmark's programs.",
    )
    acts = env.add_subparsers(dest="env_command", metavar="ACTION", required=True)
    create = acts.add_parser("create", help="build the environment (default: <harness cache>/envs/NAME)")
    create.add_argument("name", help=f"environment name ({', '.join(envs.specs()) or 'none installed'})")
    create.add_argument("--path", type=Path, help="where to build it (default: <harness cache>/envs/NAME)")
    create.add_argument("--libraries", help="comma list: install only these (e.g. numpy,pandas,scipy,scikit-learn,"
                        "matplotlib); problems needing the others are not graded")  # fmt: skip
    create.add_argument("--python", help="interpreter to base it on (default: the harness's own)")
    show = acts.add_parser("show", help="print the interpreter and the library versions pinned vs installed")
    show.add_argument("name", help=f"environment name ({', '.join(envs.specs()) or 'none installed'})")
    show.add_argument("--path", type=Path, help="the environment's folder (default: <harness cache>/envs/NAME)")
    show.add_argument("--json", action="store_true", help="print versions.json")


def _env(args: argparse.Namespace) -> int:
    from harness import envs

    spec = envs.spec(args.name)
    if args.env_command == "create":
        libraries = [x.strip() for x in (args.libraries or "").split(",") if x.strip()] or None
        info = envs.create(args.name, path=args.path, libraries=libraries, python=args.python)
        print(envs.describe(info, spec))
        return 0
    info = envs.require(args.name, args.path)
    print(json.dumps(info.to_json(), indent=2) if args.json else envs.describe(info, spec))
    return 0


def _train(args: argparse.Namespace) -> int:
    from training.cli import command

    return command(args)


#: A command whose output pipe closed early (``harness runs list --json | head``): what a shell reports for a
#: program that SIGPIPE ended (128 + 13), as ``git log | head`` gives.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (141, silently, when the output pipe closed early)."""
    try:
        try:
            return _run(argv)
        finally:
            # Output still buffered (stdout into a pipe is block-buffered) meets the closed pipe here, not at exit.
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        return _output_closed()


def _output_closed() -> int:
    """The reader of our stdout went away: stop writing, quietly (no traceback, no message on stderr)."""
    try:
        # Python flushes stdout again at exit; pointing the descriptor at /dev/null keeps that write quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a stdout without a descriptor (in-process callers)
        pass
    return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from reports.cli import HANDLERS as REPORT_HANDLERS

    handlers = {"evaluate": _evaluate, "eval": _eval, "env": _env, "decontam": _decontam, "generate": _generate,
                "train": _train, **REPORT_HANDLERS}
    try:
        return handlers[args.command](args)
    except HarnessError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        keep = "finished generations are in the response cache" if args.command in ("eval", "train", "generate") else ""
        if getattr(args, "no_verdict_cache", False):
            what = "verdicts were not cached (--no-verdict-cache): a rerun grades everything again"
        else:
            what = "finished verdicts are in the verdict cache"
        print(f"interrupted; {', '.join(x for x in (keep, what) if x)}; rerun the same command to resume",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise  # the output pipe closed: main() ends quietly
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line
        from harness.settings import current

        if args.debug or current().debug:
            traceback.print_exc()
        print(f"error: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback, and "
              "report it)", file=sys.stderr)  # fmt: skip
        return EXIT_INTERNAL
