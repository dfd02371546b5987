"""The ``harness`` command line: the front door that wires the subsystems together."""

from __future__ import annotations

import argparse
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
    return parser


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
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"evaluate": _evaluate}
    try:
        return handlers[args.command](args)
    except HarnessError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; completed verdicts are in the verdict cache, rerun to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line
        if args.debug or os.environ.get("HARNESS_DEBUG"):
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
