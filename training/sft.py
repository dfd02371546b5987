"""Supervised fine-tuning on TRL's ``SFTTrainer``: the run, its checkpoints, metrics and record.

Layout of ``OUTPUT``::

    training_run.json      the record: lineage, data report, trainer settings, metrics summary, evaluations
    metrics.jsonl          one line per logging step: step, epoch, loss, learning_rate, grad_norm, tokens/s, ...
    checkpoints/checkpoint-N/  the trainer's checkpoints (resumable: weights, optimizer, scheduler, RNG)
    final/                 the trained model, or the LoRA adapter, with its tokenizer and chat template
    eval/<benchmark>/      evaluations of final/ (``harness train --eval``)

A rerun of the same command resumes from the newest checkpoint; a finished run
is not trained again.  The dataset's hash, the base model and the configuration
form the run's key: a different key in the same folder is refused
(``restart=True`` discards the old run).

Multi-GPU and multi-node runs go through accelerate: ``accelerate launch
[--config_file fsdp.yaml] -m harness train ...`` (DeepSpeed: ``deepspeed =
"ds_config.json"`` in the config, or accelerate's DeepSpeed config file).  The
trainer reads the process group accelerate sets up; the gradient accumulation
is computed from the world size so the effective batch stays the recipe's.
"""

from __future__ import annotations

import functools
import gc
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.engine.base import require
from harness.errors import HarnessError
from harness.store import git_commit
from training.card import write_model_card
from training.config import TrainConfig
from training.data import DataStats, Pairs, Tokenized, choose_template, load_pairs, tokenize_pairs
from training.record import (
    METRICS_NAME,
    BaseModelInfo,
    MetricsSummary,
    TrainerInfo,
    TrainingRun,
    load_record,
    record_path,
    save_record,
)

Echo = Callable[[str], None]
CHECKPOINTS = "checkpoints"
FINAL = "final"


# ------------------------------------------------------------------ the base model
def _looks_like_path(name: str) -> bool:
    # A hub id is "org/name" (or a bare name); anything with more parts or a path prefix is a folder.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def resolve_base(base: str, trust_remote_code: bool = False) -> BaseModelInfo:
    """Check that ``base`` is a model folder or a loadable hub id; fingerprint it for the lineage."""
    local = Path(base).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise HarnessError(f"base model {base} is not a model folder (no config.json in it)")
        return BaseModelInfo(source=str(local.resolve()), local=True, digest=_folder_digest(local))
    if _looks_like_path(base):
        raise HarnessError(f"base model path {base} does not exist; pass a saved model folder or a hub id")
    transformers = require("transformers", "train", "harness train")
    try:
        transformers.AutoConfig.from_pretrained(base, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot load base model {base!r}: no such local folder, and the hub says: "
                           f"{str(exc).splitlines()[0]}") from None  # fmt: skip
    from harness.engine.identity import hub_commit

    return BaseModelInfo(source=base, local=False, commit=hub_commit(base))


def _folder_digest(folder: Path) -> str:
    """The weights digest the engine uses too; file hashes are remembered in the response cache, so a 30 GB base
    model is read once per machine rather than once per run."""
    from harness.data import cache_dir
    from harness.engine.cache import ResponseCache
    from harness.engine.identity import memo_from_cache, model_dir_digest

    try:
        cache = ResponseCache(cache_dir())
    except HarnessError:  # an unusable cache only costs the re-read
        return model_dir_digest(folder)
    with cache:
        return model_dir_digest(folder, memo_from_cache(cache))


def zero_dropout(config: Any, rate: float = 0.0) -> dict[str, float]:
    """Set every dropout probability of a model config (and its sub-configs) to ``rate``; returns what changed."""
    changed: dict[str, float] = {}

    def visit(cfg: Any, prefix: str) -> None:
        for key, value in list(vars(cfg).items()):
            if hasattr(value, "to_dict") and hasattr(value, "model_type"):  # a nested config (text_config, ...)
                visit(value, f"{prefix}{key}.")
            elif (
                isinstance(value, float) and not isinstance(value, bool) and ("dropout" in key or key.endswith("pdrop"))
            ):
                if value != rate:
                    changed[f"{prefix}{key}"] = value
                setattr(cfg, key, rate)

    visit(config, "")
    return changed


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    found = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "deepspeed"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return found


# ------------------------------------------------------------------ metrics
def _metrics_callback_class() -> type:
    transformers = require("transformers", "train", "harness train")

    class MetricsCallback(transformers.TrainerCallback):
        """Appends one JSON line per logging step to metrics.jsonl (main process) and prints a short line."""

        def __init__(self, path: Path, echo: Echo) -> None:
            self.path, self.echo = path, echo
            self.t0 = self.t_last = time.perf_counter()
            self.tokens_begin = self.tokens_last = 0
            self.first_loss: float | None = None
            self.last_loss: float | None = None
            self.train_loss: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.t0 = self.t_last = time.perf_counter()
            self.tokens_begin = self.tokens_last = state.num_input_tokens_seen or 0
            if not state.is_world_process_zero:
                return
            # A resumed run repeats the steps after its checkpoint: drop their old lines so each step appears once.
            kept: list[str] = []
            if self.path.exists():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        if json.loads(line).get("step", 0) <= state.global_step:
                            kept.append(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill mid-write
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            logs = logs or {}
            if "train_loss" in logs:
                self.train_loss = float(logs["train_loss"])
            if "loss" not in logs:
                return
            now = time.perf_counter()
            tokens = int(state.num_input_tokens_seen or 0)
            dt = now - self.t_last
            tps = (tokens - self.tokens_last) / dt if dt > 0 else None
            self.t_last, self.tokens_last = now, tokens
            loss = float(logs["loss"])
            if self.first_loss is None:
                self.first_loss = loss
            self.last_loss = loss
            row = {"step": state.global_step, "epoch": round(float(state.epoch or 0.0), 6), "loss": loss,
                   "learning_rate": _num(logs.get("learning_rate")), "grad_norm": _num(logs.get("grad_norm")),
                   "tokens": tokens, "tokens_per_second": round(tps, 3) if tps is not None else None,
                   "elapsed_s": round(now - self.t0, 4),
                   "mean_token_accuracy": _num(logs.get("mean_token_accuracy")), "entropy": _num(logs.get("entropy"))}  # fmt: skip
            if not state.is_world_process_zero:
                return
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            lr = row["learning_rate"]
            self.echo(f"step {state.global_step}/{state.max_steps}  epoch {row['epoch']:.2f}  loss {loss:.4f}  "
                      f"lr {lr if lr is None else f'{lr:.3g}'}  {row['tokens_per_second'] or 0:.0f} tok/s")  # fmt: skip

    return MetricsCallback


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def read_metrics(output: str | Path) -> list[dict[str, Any]]:
    """The logged training steps of a run (``metrics.jsonl``), in order."""
    path = Path(output) / METRICS_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------------ the run
@dataclass
class Prepared:
    """Everything built before the first step: the trainer (not yet run), the data report, the record."""

    trainer: Any
    record: TrainingRun
    data: DataStats
    tokenizer: Any
    metrics: Any
    resume_from: str | None


def run_key(dataset_sha256: str, base: BaseModelInfo, config: TrainConfig) -> str:
    """What a checkpoint in OUTPUT must have been trained from to be resumed."""
    import hashlib

    doc = {"dataset": dataset_sha256, "base": base.source, "base_digest": base.digest, "config": config.key()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _differences(old: TrainingRun, dataset_sha: str, base: BaseModelInfo, config: TrainConfig) -> str:
    diffs = []
    if old.dataset.sha256 != dataset_sha:
        diffs.append(f"dataset sha256 {old.dataset.sha256[:12]} -> {dataset_sha[:12]}")
    if old.base_model.source != base.source or old.base_model.digest != base.digest:
        diffs.append(f"base model {old.base_model.source} -> {base.source}")
    new = config.model_dump(mode="json")
    keys = sorted(k for k in set(old.config) | set(new) if old.config.get(k) != new.get(k))
    if keys:
        diffs.append("config " + ", ".join(f"{k}: {old.config.get(k)!r} -> {new.get(k)!r}" for k in keys[:6]))
    return "; ".join(diffs) or "settings"


def _clear(output: Path) -> None:
    for name in (CHECKPOINTS, FINAL, "eval"):
        if (output / name).exists():
            shutil.rmtree(output / name)
    for name in (METRICS_NAME, record_path(output).name):
        (output / name).unlink(missing_ok=True)


def last_checkpoint(folder: Path) -> str | None:
    """The newest ``checkpoint-N`` folder under ``folder`` (None when there is none)."""
    if not folder.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder))


def _precision(config: TrainConfig, torch: Any) -> tuple[bool, bool, str]:
    """(bf16, fp16, device) for the trainer."""
    cuda = config.device != "cpu" and torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if config.precision == "auto":
        bf16 = cuda and torch.cuda.is_bf16_supported()
        return bf16, False, device
    if config.precision in ("bf16", "fp16") and not cuda:
        raise HarnessError(f"precision = {config.precision!r} needs a GPU; use 'fp32' or 'auto' on CPU")
    return config.precision == "bf16", config.precision == "fp16", device


#: Training arguments the config sets itself; trainer_args may not set them (one place for each value).
_MANAGED = {
    "output_dir", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "warmup_steps", "warmup_ratio", "lr_scheduler_type", "optim", "weight_decay",
    "max_grad_norm", "max_length", "packing", "packing_strategy", "completion_only_loss", "seed", "data_seed",
    "logging_steps", "save_strategy", "save_steps", "save_total_limit", "gradient_checkpointing",
    "activation_checkpointing", "bf16", "fp16",
    "use_cpu", "report_to", "deepspeed", "dataloader_num_workers", "train_sampling_strategy", "trust_remote_code",
}  # fmt: skip


def _sft_config(config: TrainConfig, output: Path, torch: Any) -> tuple[Any, str]:
    trl = require("trl", "train", "harness train")
    clash = sorted(set(config.trainer_args) & _MANAGED)
    if clash:
        raise HarnessError(f"trainer_args sets {', '.join(clash)}, which the config sets itself; use the top-level "
                           "keys (learning_rate, num_epochs, per_device_batch_size, ...)")  # fmt: skip
    bf16, fp16, device = _precision(config, torch)
    kwargs: dict[str, Any] = dict(
        output_dir=str(output / CHECKPOINTS),
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=1,  # set below, once the world size is known
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a share of the total steps
        lr_scheduler_type=config.lr_scheduler,
        optim=config.optimizer,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm if config.max_grad_norm > 0 else 0.0,
        max_length=config.max_length,
        packing=config.packing,
        packing_strategy=config.packing_strategy,
        completion_only_loss=True,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="random" if config.shuffle else "sequential",
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "epoch",
        save_steps=config.save_steps or 500,
        save_total_limit=config.save_total_limit,
        # transformers 5 renamed it; the old name (TRL's default True) must be None or it warns and wins.
        gradient_checkpointing=None,
        activation_checkpointing=config.gradient_checkpointing,
        bf16=bf16,
        fp16=fp16,
        use_cpu=device == "cpu",
        report_to=config.report_to or "none",
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,  # the metrics callback prints one line per logging step instead
        dataloader_num_workers=config.dataloader_workers,
        deepspeed=config.deepspeed,
        trust_remote_code=config.trust_remote_code,
        **config.trainer_args,
    )
    try:
        args = trl.SFTConfig(**kwargs)
    except TypeError as exc:
        raise HarnessError(f"trainer_args: {exc} (see transformers.TrainingArguments and trl.SFTConfig)") from None
    except ValueError as exc:
        raise HarnessError(f"invalid training settings: {exc}") from None
    per_step = config.per_device_batch_size * args.world_size
    if config.effective_batch_size % per_step:
        raise HarnessError(f"effective_batch_size {config.effective_batch_size} is not a multiple of "
                           f"per_device_batch_size {config.per_device_batch_size} x {args.world_size} process(es); "
                           "change one of them")  # fmt: skip
    args.gradient_accumulation_steps = config.effective_batch_size // per_step
    return args, device


def prepare(data: str | Path, base: str, output: str | Path, config: TrainConfig | None = None, *,
            restart: bool = False, callbacks: Sequence[Any] = (), echo: Echo = print) -> Prepared | TrainingRun:  # fmt: skip
    """Check the inputs, tokenize, build the trainer; a finished run with the same key is returned as is.

    Errors (one line each): a dataset with missing fields (fields and rows named), an unknown base model, rows
    over the limit with ``overlong = 'error'``, an output folder holding a different run.
    """
    config = config or TrainConfig()
    out = Path(output).expanduser()
    pairs: Pairs = load_pairs(data, config.instruction_field, config.response_field)
    base_info = resolve_base(base, config.trust_remote_code)
    key = run_key(pairs.lineage.sha256, base_info, config)
    torch = require("torch", "train", "harness train")
    # The training arguments set up the process group (under accelerate launch): from here on only the main
    # process prints and writes.
    args, device = _sft_config(config, out, torch)
    if args.process_index != 0:
        echo = _silent
    old = load_record(out)
    if restart:
        with args.main_process_first(local=False, desc="clearing the old run"):
            _clear(out)
        old = None
    elif old is not None and old.run_key != key:
        changed = _differences(old, pairs.lineage.sha256, base_info, config)
        raise HarnessError(f"{out} holds a training run of different inputs ({changed}); "
                           "pass --restart to discard it, or choose another --output")  # fmt: skip
    elif old is not None and old.status == "completed" and old.checkpoint and Path(old.checkpoint).exists():
        echo(f"{out}: already trained (checkpoint {old.checkpoint}); nothing to train")
        return old
    elif old is None and last_checkpoint(out / CHECKPOINTS):
        raise HarnessError(f"{out / CHECKPOINTS} holds checkpoints but {out} has no {record_path(out).name}; "
                           "pass --restart to discard them, or choose another --output")  # fmt: skip

    transformers = require("transformers", "train", "harness train")
    trl = require("trl", "train", "harness train")
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            base_info.source, trust_remote_code=config.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot load the tokenizer of {base}: {str(exc).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding positions are masked; any known token will do
    template = choose_template(tokenizer, config.template)
    tokens: Tokenized
    tokens, stats = tokenize_pairs(pairs, tokenizer, config.max_length, config.system, config.overlong, template)
    echo(f"data: {stats.rows} rows from {pairs.lineage.path} (sha256 {pairs.lineage.sha256[:16]}), "
         f"{stats.template} chat template; {stats.used_rows} used, {stats.truncated_rows} truncated to "
         f"{config.max_length} tokens, {stats.dropped_rows} left out; {stats.tokens} tokens "
         f"({stats.response_tokens} in responses)")  # fmt: skip
    if stats.truncated_rows:
        echo(f"truncated rows (first): {', '.join(stats.truncated_examples[:5])}")
    if stats.dropped_rows:
        echo(f"left out (first): {'; '.join(stats.dropped_examples[:5])}")

    model_config = transformers.AutoConfig.from_pretrained(base_info.source, trust_remote_code=config.trust_remote_code)
    zeroed = zero_dropout(model_config, config.dropout)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            base_info.source, config=model_config, dtype=getattr(torch, config.model_dtype),
            trust_remote_code=config.trust_remote_code,
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot load base model {base}: {str(exc).splitlines()[0]}") from None
    peft_config = None
    if config.lora is not None:
        peft = require("peft", "train", "LoRA training")
        lora = config.lora
        peft_config = peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                      target_modules=lora.target_modules, modules_to_save=lora.modules_to_save,
                                      task_type="CAUSAL_LM")  # fmt: skip
    import datasets

    train_dataset = datasets.Dataset.from_dict(
        {"input_ids": tokens.input_ids, "completion_mask": tokens.completion_mask}
    )
    metrics = _metrics_callback_class()(out / METRICS_NAME, echo)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # TRL maps the dataset in several passes; the data line above says what matters
    try:
        trainer = trl.SFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=tokenizer,
                                 peft_config=peft_config, callbacks=[metrics, *callbacks])  # fmt: skip
    finally:
        if bars:
            datasets.enable_progress_bars()
    # The printer dumps every log dict; the metrics callback prints one line per step instead.
    trainer.remove_callback(transformers.PrinterCallback)
    resume = last_checkpoint(out / CHECKPOINTS)
    per_step = config.per_device_batch_size * args.world_size * args.gradient_accumulation_steps
    steps_per_epoch = max(1, math.ceil(len(trainer.train_dataset) / per_step))
    planned = config.max_steps or math.ceil(steps_per_epoch * config.num_epochs)
    info = TrainerInfo(world_size=args.world_size, per_device_batch_size=config.per_device_batch_size,
                       gradient_accumulation_steps=args.gradient_accumulation_steps, effective_batch_size=per_step,
                       planned_steps=planned, precision="bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
                       device=device, dropout_zeroed=zeroed, versions=_versions())  # fmt: skip
    record = old or TrainingRun(run_key=key, output=str(out.resolve()), dataset=pairs.lineage, base_model=base_info,
                                config=config.model_dump(mode="json"), config_sha256=config.key(),
                                metrics_file=str((out / METRICS_NAME).resolve()))  # fmt: skip
    record.data, record.trainer, record.adapter = stats, info, config.lora is not None
    # A resume keeps the record but runs this checkout on the same data (the run key says so): the commit and
    # the dataset's manifest link are this session's (a record from an older harness had neither).
    record.dataset, record.git_commit = pairs.lineage, git_commit() or record.git_commit
    record.warnings = schedule_warnings(len(trainer.train_dataset), per_step,
                                        config.per_device_batch_size * args.world_size, planned,
                                        config.warmup_ratio, config.lr_scheduler)  # fmt: skip
    link = pairs.lineage.manifest
    if link is not None and link.problem:
        record.warnings.append(f"lineage: {link.problem}")
    elif pairs.lineage.manifest_digest and link is None:
        record.warnings.append(f"lineage: the rows carry manifest digest {pairs.lineage.manifest_digest[:16]} but "
                               f"no manifest.json is beside {pairs.lineage.path}; the lineage stops at the digest")  # fmt: skip
    # TRL's card names the base model by config._name_or_path and drops a local folder ("a fine-tuned version of
    # [None]"): checkpoints get the harness's card, which names it as the record does.
    trainer.create_model_card = functools.partial(_checkpoint_card, trainer, record)
    lora_text = f", LoRA r={config.lora.r} alpha={config.lora.alpha}" if config.lora else ""
    echo(f"training {base_info.source}{lora_text}: {planned} steps ({config.num_epochs:g} epochs"
         f"{f', max_steps {config.max_steps}' if config.max_steps else ''}), effective batch {per_step} = "
         f"{config.per_device_batch_size} x {args.gradient_accumulation_steps} accumulation x {args.world_size} "
         f"process(es), lr {config.learning_rate:g} ({config.lr_scheduler}, warmup {config.warmup_ratio:g}), "
         f"{config.optimizer}, {info.precision} on {device}, packing {'on' if config.packing else 'off'}")  # fmt: skip
    attention = str(getattr(model.config, "_attn_implementation", None))
    if config.packing and config.per_device_batch_size > 1 and "flash" not in attention:
        # TRL flattens a batch of packed sequences into one padding-free row; without varlen flash kernels its
        # attention mask spans the whole row, so the cost grows with the square of the batch.
        echo(f"note: packing with per_device_batch_size {config.per_device_batch_size} and {attention} attention "
             "flattens each batch into one long row; per_device_batch_size = 1 (accumulation keeps the effective "
             "batch) was about 3.5x faster on CPU in tests/perf/train_throughput.py")  # fmt: skip
    if zeroed:
        echo(f"dropout set to {config.dropout:g}: {', '.join(f'{k} (was {v:g})' for k, v in zeroed.items())}")
    for warning in record.warnings:
        echo(f"warning: {warning}")
    return Prepared(trainer, record, stats, tokenizer, metrics, resume)


def _silent(message: str) -> None:
    return None


#: Schedulers that take no warmup (transformers.get_scheduler ignores the warmup steps for them).
_NO_WARMUP = frozenset({"constant", "reduce_lr_on_plateau", "greedy"})


def schedule_warnings(sequences: int, effective_batch: int, unit: int, planned_steps: int, warmup_ratio: float,
                      scheduler: str = "linear") -> list[str]:  # fmt: skip
    """Warnings, each with its fix, for a schedule that does not do what the recipe's numbers suggest.

    ``sequences``: training sequences per epoch (rows, or packed sequences); ``unit``: per-device batch x
    processes (the effective batch must be a multiple of it). Fewer sequences than the effective batch make
    every optimizer step a whole epoch of fewer sequences than the batch; a warmup share that rounds up to
    whole steps puts step 1 at learning rate 0 (transformers' warmup starts at 0), a large part of a short run.
    """
    out: list[str] = []
    if sequences < effective_batch:
        if unit <= sequences:
            # About four steps per epoch, a multiple of what one forward pass on every process takes.
            size = max(unit, (sequences // 4) // unit * unit)
            fix = (f"set effective_batch_size to at most {sequences // unit * unit} (e.g. --set "
                   f"effective_batch_size={size}: {math.ceil(sequences / size)} steps per epoch), or train on more "
                   "rows")  # fmt: skip
        else:
            fix = (f"per_device_batch_size x processes ({unit}) is larger than the dataset too: lower "
                   "per_device_batch_size (--set per_device_batch_size=1) and effective_batch_size, or train on "
                   "more rows")  # fmt: skip
        out.append(f"the dataset gives {sequences} training sequences, fewer than the effective batch of "
                   f"{effective_batch}: every optimizer step is a whole epoch of {sequences} sequences "
                   f"({planned_steps} steps in all); {fix}")  # fmt: skip
    if warmup_ratio > 0 and scheduler not in _NO_WARMUP and planned_steps * warmup_ratio < 1:
        warmup = math.ceil(planned_steps * warmup_ratio)
        out.append(f"warmup_ratio {warmup_ratio:g} of {planned_steps} steps rounds up to {warmup} warmup step: "
                   f"step 1 of {planned_steps} runs at learning rate 0 (the warmup starts at 0), so "
                   f"{1 / planned_steps:.0%} of the run does not move the weights; --set warmup_ratio=0, or train "
                   f"for at least {math.ceil(1 / warmup_ratio)} steps")  # fmt: skip
    return out


def train(data: str | Path, base: str, output: str | Path, config: TrainConfig | None = None, *,
          restart: bool = False, callbacks: Sequence[Any] = (), echo: Echo = print) -> TrainingRun:  # fmt: skip
    """Train (or resume, or recognise as done), save the final model, and write ``training_run.json``.

    A ``KeyboardInterrupt`` during training marks the record interrupted and propagates; rerunning resumes
    from the newest checkpoint.
    """
    prepared = prepare(data, base, output, config, restart=restart, callbacks=callbacks, echo=echo)
    if isinstance(prepared, TrainingRun):
        return prepared
    trainer, record = prepared.trainer, prepared.record
    main = trainer.is_world_process_zero()
    out = Path(record.output)
    if prepared.resume_from:
        record.resumed_from.append(prepared.resume_from)
        if main:
            echo(f"resuming from {prepared.resume_from}")
    record.status = "running"
    if main:
        save_record(record)
    try:
        result = trainer.train(resume_from_checkpoint=prepared.resume_from)
    except KeyboardInterrupt:
        if main:
            record.status = "interrupted"
            record.metrics = _summary(trainer, prepared.metrics, None)
            save_record(record)
        raise
    final = out / FINAL
    # Collective under DeepSpeed/FSDP (weights are gathered), so every process calls it.
    trainer.save_model(str(final))
    if main:
        prepared.tokenizer.save_pretrained(str(final))  # the chat template travels with the checkpoint
        record.checkpoint = str(final.resolve())
        record.status = "completed"
        record.metrics = _summary(trainer, prepared.metrics, result)
        save_record(record)
        write_model_card(record, final)  # replaces peft's card of an adapter, which names no dataset
        echo(f"trained: {record.metrics.global_step} steps, loss {record.metrics.first_loss} -> "
             f"{record.metrics.last_loss}; checkpoint {final}; record {record_path(out)}")  # fmt: skip
    _release(trainer)
    return record


def _checkpoint_card(trainer: Any, record: TrainingRun, model_name: str | None = None, dataset_name: str | None = None,
                     tags: Any = None) -> None:  # fmt: skip
    """Stands in for ``SFTTrainer.create_model_card`` (called at each checkpoint): the harness's card instead."""
    if trainer.is_world_process_zero():
        write_model_card(record, trainer.args.output_dir)


def _summary(trainer: Any, metrics: Any, result: Any) -> MetricsSummary:
    state = trainer.state
    out = Path(trainer.args.output_dir).parent
    rows = read_metrics(out)
    runtime = rows[-1]["elapsed_s"] if rows else 0.0
    tokens = int(state.num_input_tokens_seen or 0)
    session = float(result.metrics.get("train_runtime", runtime)) if result is not None else runtime
    # This session's tokens over its time: a resumed run's earlier sessions ran at their own speed.
    tps = (tokens - metrics.tokens_begin) / session if session > 0 else None
    return MetricsSummary(global_step=state.global_step, epoch=float(state.epoch or 0.0),
                          first_loss=rows[0]["loss"] if rows else None, last_loss=rows[-1]["loss"] if rows else None,
                          train_loss=metrics.train_loss, tokens=tokens, runtime_s=session,
                          tokens_per_second=round(tps, 3) if tps is not None else None)  # fmt: skip


def _release(trainer: Any) -> None:
    """Free the training model before evaluation loads the checkpoint (GPU memory)."""
    import torch

    trainer.model = None
    trainer.model_wrapped = None
    trainer.optimizer = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
