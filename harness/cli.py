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
from harness.errors import HarnessError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    import benchmarks  # noqa: F401  (the CLI may import every subsystem)
    from harness.benchmark import names

    parser = argparse.ArgumentParser(prog="harness", description="Evaluate, generate for, train and audit code models.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ev = sub.add_parser(
        "evaluate",
        help="grade an EvalPlus-format samples file",
        description="Grade stored samples (EvalPlus JSONL: task_id + solution or completion) in the sandbox, "
        "with EvalPlus 0.3.1's verdict rules. Writes eval_results.json (EvalPlus schema) and run.json.",
    )
    ev.add_argument("--benchmark", required=True, choices=names(), help="benchmark to grade against")
    ev.add_argument("--samples", required=True, type=Path, help="samples JSONL file")
    ev.add_argument("--output", type=Path, help="result folder (default: next to the samples file, EvalPlus naming)")
    ev.add_argument("--parallel", type=_positive_int, help="sandbox workers (default: one per CPU core)")
    ev.add_argument("--data-dir", type=Path, help="offline dataset folder (default: $HARNESS_DATA_DIR, else download)")
    ev.add_argument("--test-details", action="store_true", help="run every input and record every failing one")
    ev.add_argument("--base-only", action="store_true", help="only the base tests (no plus inputs)")
    ev.add_argument("--no-verdict-cache", action="store_true", help="re-grade programs even when a verdict is cached")
    ev.add_argument("--skip-bad-samples", action="store_true", help="skip malformed sample lines instead of stopping")
    ev.add_argument(
        "--memory-accounting",
        choices=["evalplus", "program"],
        default="evalplus",
        help="evalplus (default): a program gets the free memory it would have inside EvalPlus's checker, "
        "so memory-hungry samples get EvalPlus's verdict; program: the whole limit is the program's",
    )
    ev.add_argument(
        "--memory-limit", type=_positive_int, metavar="MIB", default=4096, help="address-space cap per program (MiB)"
    )
    _benchmark_flags(ev)
    _eval_parser(sub, names())
    return parser


def _engine_arg(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed: object = json.loads(value)
    except json.JSONDecodeError:
        parsed = value  # a bare string
    return key.strip(), parsed


def _benchmark_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("benchmark selection (LiveCodeBench, DS-1000)")
    g.add_argument("--start-date", metavar="YYYY-MM-DD", help="livecodebench: first contest date (inclusive)")
    g.add_argument("--end-date", metavar="YYYY-MM-DD", help="livecodebench: last contest date (the whole day counts)")
    g.add_argument("--platform", help="livecodebench: comma list of platforms (leetcode, atcoder, codeforces)")
    g.add_argument("--difficulty", help="livecodebench: comma list (easy, medium, hard)")
    g.add_argument("--release", help="livecodebench: release_v1..release_v6 (cumulative) or v1..v6 (one file)")
    g.add_argument("--env", dest="env_path", metavar="DIR", help="ds1000: managed environment (default: the one "
                   "`harness env create ds1000` built)")


def _bench_options(args: argparse.Namespace, benches: list[str]) -> dict[str, dict[str, object]]:
    from harness.benchmark import options_for

    given = {k: getattr(args, k, None) for k in ("start_date", "end_date", "platform", "difficulty", "release")}
    given["env"] = getattr(args, "env_path", None)
    return options_for(benches, given)


def _eval_parser(sub: argparse._SubParsersAction, known: list[str]) -> None:
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
    ev.add_argument("--benchmarks", default="humaneval,mbpp", help=f"comma list (known: {', '.join(known)})")
    ev.add_argument("--n", type=_positive_int, default=1, help="samples per task (default 1)")
    ev.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    ev.add_argument("--top-p", type=float, default=1.0)
    ev.add_argument("--max-tokens", type=_positive_int, default=768, help="new tokens per sample (default 768)")
    ev.add_argument("--seed", type=int, help="sampling seed (per-sample seeds derive from it)")
    ev.add_argument("--style", choices=["auto", "base", "instruct"], default="auto",
                    help="base: continue the benchmark prompt; instruct: chat template + response prefix; "
                    "auto (default): instruct when the model has a chat template")
    ev.add_argument("--system", help="system message for instruct prompts")
    ev.add_argument("--limit", type=_positive_int, help="only the first N tasks of each benchmark (smoke runs)")
    ev.add_argument("--output", type=Path, help="result folder (default: runs/<model>)")
    ev.add_argument("--parallel", type=_positive_int, help="sandbox workers (default: one per CPU core)")
    ev.add_argument("--data-dir", type=Path, help="offline dataset folder (default: $HARNESS_DATA_DIR, else download)")
    ev.add_argument("--no-cache", action="store_true", help="bypass the response cache (neither read nor write)")
    ev.add_argument("--cache-dir", type=Path, help="response cache folder (default: the harness cache)")
    ev.add_argument("--engine-arg", type=_engine_arg, action="append", default=[], metavar="KEY=VALUE",
                    help="backend option, repeatable (e.g. tensor_parallel_size=2, batch_size=8, dtype=bfloat16)")
    ev.add_argument("--base-url", action="append", default=[], metavar="URL",
                    help="openai backend: server base URL, repeat for several servers (default: $OPENAI_BASE_URL)")
    ev.add_argument("--api-key", help="openai backend: API key (default: $OPENAI_API_KEY)")
    ev.add_argument("--memory-accounting", choices=["evalplus", "program"],
                    help="as for evaluate; default evalplus, except program for the oracle (see README)")  # fmt: skip
    _benchmark_flags(ev)


def _eval(args: argparse.Namespace) -> int:
    from harness.model_eval import EvalSettings, eval_model

    benches = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if not benches:
        raise HarnessError("--benchmarks is empty; name at least one (e.g. humaneval,mbpp)")
    options = dict(args.engine_arg)
    if args.base_url:
        options["base_url"] = [u for arg in args.base_url for u in arg.split(",") if u]
    if args.api_key:
        options["api_key"] = args.api_key
    output = args.output or Path("runs") / _slug(args.model)
    settings = EvalSettings(n=args.n, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            seed=args.seed, style=args.style, limit=args.limit, system=args.system,
                            memory_accounting=args.memory_accounting)  # fmt: skip
    bench_options = _bench_options(args, benches)
    eval_model(args.model, benches, output, settings, engine_options=options, use_cache=not args.no_cache,
               cache_dir=args.cache_dir, data_dir=args.data_dir, parallel=args.parallel,
               bench_options=bench_options)  # fmt: skip
    return 0


def _slug(spec: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec.replace("/", "__")).strip("_") or "model"


def _evaluate(args: argparse.Namespace) -> int:
    from harness.evaluation import evaluate_samples
    from harness.execution import SandboxSettings

    evaluate_samples(
        args.benchmark,
        args.samples,
        output=args.output,
        parallel=args.parallel,
        data_dir=args.data_dir,
        test_details=args.test_details,
        base_only=args.base_only,
        use_verdict_cache=not args.no_verdict_cache,
        skip_bad=args.skip_bad_samples,
        memory_accounting=args.memory_accounting,
        sandbox_settings=SandboxSettings(memory_bytes=args.memory_limit << 20),
        bench_options=_bench_options(args, [args.benchmark])[args.benchmark],
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"evaluate": _evaluate, "eval": _eval}
    try:
        return handlers[args.command](args)
    except HarnessError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished samples and verdicts are cached, rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line
        if args.debug or os.environ.get("HARNESS_DEBUG"):
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
