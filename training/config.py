"""The training configuration: StarCoder2-Instruct's recipe as defaults, every value overridable.

A config file is TOML or JSON with the keys of :class:`TrainConfig` at the top
level and a ``[lora]`` table for LoRA; ``--set key=value`` (``lora.r=8``)
overrides single values.  Unknown keys are refused with their names, so a typo
never silently trains with a default.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.cliargs import read_config_file
from harness.errors import HarnessError


class LoraSettings(BaseModel):
    """LoRA through peft (a ``[lora]`` table or ``--lora``); the base weights stay frozen."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1, description="rank of the update matrices")
    alpha: int = Field(default=32, ge=1, description="scaling numerator (the update is scaled by alpha / r)")
    dropout: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="LoRA dropout (0: the recipe trains without dropout)"
    )
    target_modules: list[str] | str = Field(default="all-linear", description="module names, or peft's 'all-linear'")
    modules_to_save: list[str] | None = Field(default=None, description="modules trained in full besides the adapters")


class TrainConfig(BaseModel):
    """Every knob of a ``harness train`` run.

    Defaults follow the StarCoder2-15B-Instruct recipe (bigcode/starcoder2-self-align): learning rate 1e-5,
    4 epochs, effective batch 64, warmup 5% of the steps, linear decay, sequences of 1280 tokens, Adafactor,
    no dropout.
    """

    model_config = ConfigDict(extra="forbid")

    # --- the recipe
    learning_rate: float = Field(default=1e-5, gt=0)
    num_epochs: float = Field(default=4.0, gt=0)
    effective_batch_size: int = Field(default=64, ge=1, description="sequences per optimizer step, all devices")
    per_device_batch_size: int = Field(default=1, ge=1, description="sequences per forward pass on one device")
    warmup_ratio: float = Field(default=0.05, ge=0.0, lt=1.0, description="share of the steps spent warming up")
    lr_scheduler: str = Field(default="linear", description="a transformers scheduler name (linear, cosine, ...)")
    max_length: int = Field(default=1280, ge=8, description="tokens per sequence (prompt + response)")
    optimizer: str = Field(default="adafactor", description="a transformers optimizer name (adafactor, adamw_torch)")
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, description="gradient clipping; <= 0 switches it off")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="every dropout rate in the model's config")

    # --- data
    instruction_field: str = "instruction"
    response_field: str = "response"
    system: str | None = Field(default=None, description="a system message put before every instruction")
    template: Literal["auto", "model", "default"] = Field(
        default="auto",
        description="auto: the base model's chat template, or the default one when it has none; model: the model's "
        "(an error if it has none); default: the harness's default template even when the model has one",
    )
    overlong: Literal["truncate", "drop", "error"] = Field(
        default="truncate", description="rows longer than max_length: cut (counted), left out (counted), or an error"
    )
    packing: bool = False
    packing_strategy: Literal["bfd", "bfd_split", "wrapped"] = "bfd"
    shuffle: bool = Field(default=True, description="shuffle the rows every epoch (seeded)")

    # --- run control
    seed: int = 42
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many optimizer steps")
    logging_steps: int = Field(default=1, ge=1)
    save_steps: int | None = Field(default=None, ge=1, description="checkpoint every N steps (default: every epoch)")
    save_total_limit: int | None = Field(default=2, ge=1, description="checkpoints kept (the newest)")
    gradient_checkpointing: bool = True
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        default="auto", description="mixed precision; auto: bf16 on a GPU that has it, else fp32"
    )
    model_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32", description="dtype the weights are loaded (and trained) in"
    )
    device: Literal["auto", "cpu"] = Field(default="auto", description="cpu forces CPU even where a GPU exists")
    dataloader_workers: int = Field(default=0, ge=0)
    report_to: list[str] = Field(default_factory=list, description="trackers (tensorboard, wandb); none by default")
    trust_remote_code: bool = False

    # --- options
    lora: LoraSettings | None = None
    deepspeed: str | None = Field(default=None, description="a DeepSpeed JSON config, passed to the trainer")
    trainer_args: dict[str, Any] = Field(
        default_factory=dict,
        description="further transformers/TRL training arguments (fsdp, fsdp_config, ...), passed through",
    )

    def key(self) -> str:
        """SHA-256 of the settings that shape the trained weights (not logging, not trackers)."""
        doc = self.model_dump(mode="json", exclude={"logging_steps", "report_to", "dataloader_workers",
                                                    "save_total_limit"})  # fmt: skip
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a TOML or JSON config, apply dotted ``key=value`` overrides, validate (unknown keys refused)."""
    doc: dict[str, Any] = read_config_file(Path(path)) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        target = doc
        *parents, last = dotted.split(".")
        for part in parents:
            nxt = target.get(part)
            if nxt is None:
                nxt = target[part] = {}
            if not isinstance(nxt, dict):
                raise HarnessError(f"--set {dotted}: {part} is not a table")
            target = nxt
        target[last] = value
    try:
        return TrainConfig.model_validate(doc)
    except ValidationError as exc:
        problems = []
        unknown = False
        for e in exc.errors():
            loc = ".".join(str(x) for x in e["loc"])
            unknown = unknown or e["type"] == "extra_forbidden"
            problems.append(f"{loc}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}")
        where = f"config {path}" if path else "training configuration"
        known = (f" (known keys: {', '.join(TrainConfig.model_fields)}; in [lora]: "
                 f"{', '.join(LoraSettings.model_fields)})") if unknown else ""  # fmt: skip
        raise HarnessError(f"{where} is invalid: {'; '.join(sorted(problems))}{known}") from None
