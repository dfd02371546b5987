"""``harness train``: fine-tune a base model on an instruction dataset, then optionally evaluate the checkpoint.

Wired into ``harness/cli.py`` through :func:`add_parser` and :func:`command`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cliargs import key_value, positive_int
from harness.errors import HarnessError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``harness train`` on the top-level command's subparsers."""
    p = sub.add_parser(
        "train",
        help="fine-tune a model on an instruction dataset (TRL SFT), then evaluate it",
        description="Supervised fine-tuning on TRL's SFTTrainer: each instruction-response pair is formatted with "
        "the base model's chat template (or the harness's default template), the loss covers the response only. "
        "Defaults follow StarCoder2-15B-Instruct: lr 1e-5, 4 epochs, effective batch 64, warmup 5%, linear "
        "schedule, 1280 tokens, Adafactor, no dropout. A rerun resumes from the last checkpoint. Multi-GPU / "
        "multi-node: accelerate launch [--config_file CONFIG] -m harness train ...",
    )
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="DATASET",
        help="JSONL, JSON, Parquet, or a datasets save_to_disk folder with instruction and response",
    )
    p.add_argument("--base", required=True, metavar="MODEL", help="base model: a local folder or a hub id")
    p.add_argument(
        "--output",
        required=True,
        type=Path,
        metavar="DIR",
        help="run folder: checkpoints, final model, metrics.jsonl, training_run.json, eval/",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML or JSON training config (unknown keys refused)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (JSON or a bare string), e.g. --set learning_rate=2e-5 "
        "--set lora.r=8; repeatable",
    )
    p.add_argument("--lora", action="store_true", help="train a LoRA adapter (peft) instead of the full model")
    p.add_argument("--packing", action="store_true", help="pack rows into max_length sequences")
    p.add_argument("--max-steps", type=positive_int, help="stop after N optimizer steps")
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard the run in DIR (checkpoints, final model, metrics, evaluations) and start over",
    )
    g = p.add_argument_group("evaluation of the trained checkpoint")
    g.add_argument("--eval", metavar="BENCHMARKS", help=f"comma list, e.g. {_example()} (after training)")
    g.add_argument("--eval-limit", type=positive_int, metavar="N", help="only the first N tasks of each benchmark")
    g.add_argument("--eval-max-tokens", type=positive_int, default=768, metavar="M", help="new tokens per sample (768)")
    g.add_argument("--eval-n", type=positive_int, default=1, metavar="N", help="samples per task (default 1, greedy)")
    g.add_argument("--eval-temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--eval-backend", choices=["hf", "vllm"], default="hf", help="engine backend (default hf)")
    g.add_argument(
        "--engine-arg",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option for the evaluation, repeatable (e.g. batch_size=8)",
    )
    g.add_argument("--data-dir", type=Path, help="offline benchmark data (default: $HARNESS_DATA_DIR, else download)")
    g.add_argument("--parallel", type=positive_int, help="sandbox workers (default: one per CPU core)")
    g.add_argument("--no-cache", action="store_true", help="bypass the response cache")


def _example() -> str:
    """An example ``--eval`` value: the benchmarks ``harness eval`` runs by default (the registry decides)."""
    from harness.benchmark import defaults, names

    return ",".join(defaults() or names()[:2]) or "NAME"


def command(args: argparse.Namespace) -> int:
    """Run ``harness train``; returns the exit status (130 when interrupted: rerun to resume)."""
    from training.config import load_config
    from training.sft import train

    overrides = dict(args.overrides)
    if args.lora:
        overrides.setdefault("lora", {})
    if args.packing:
        overrides["packing"] = True
    if args.max_steps:
        overrides["max_steps"] = args.max_steps
    config = load_config(args.config, overrides)
    benches = [b.strip() for b in (args.eval or "").split(",") if b.strip()]
    if args.eval is not None and not benches:
        raise HarnessError(f"--eval is empty; name at least one benchmark (e.g. {_example()})")
    if benches:
        from harness.benchmark import names

        unknown = [b for b in benches if b not in names()]
        if unknown:  # before training, not hours after it
            raise HarnessError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names())}")
    try:
        record = train(args.data, args.base, args.output, config, restart=args.restart)
    except KeyboardInterrupt:
        from training.sft import CHECKPOINTS, last_checkpoint

        last = last_checkpoint(Path(args.output) / CHECKPOINTS)
        where = f"the last checkpoint is {last}" if last else "no checkpoint was saved yet"
        print(f"interrupted; {where}: rerun the same command to resume", file=sys.stderr)
        return 130
    if benches and _is_main_process():
        from harness.model_eval import EvalSettings
        from training.evaluate import evaluate_run

        settings = EvalSettings(n=args.eval_n, temperature=args.eval_temperature, max_tokens=args.eval_max_tokens,
                                limit=args.eval_limit)  # fmt: skip
        evaluate_run(record.output, benches, settings, backend=args.eval_backend, engine_options=dict(args.engine_arg),
                     use_cache=not args.no_cache, data_dir=args.data_dir, parallel=args.parallel)  # fmt: skip
    return 0


def _is_main_process() -> bool:
    # Under accelerate launch every process trains; one evaluates (the others have exited training by now).
    try:
        from accelerate import PartialState
    except ImportError:
        return True
    return bool(PartialState().is_main_process)
