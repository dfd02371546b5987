"""Supervised fine-tuning on TRL's ``SFTTrainer``, with checkpoints evaluated and linked to their training data.

* :mod:`training.config` - the configuration (StarCoder2-Instruct's recipe as defaults; TOML/JSON; unknown keys
  refused).
* :mod:`training.data` - reading instruction-response datasets, their SHA-256, chat-template formatting,
  completion-only masks, the length limit (counted).
* :mod:`training.sft` - the run: trainer, LoRA, resumption, ``metrics.jsonl``, ``training_run.json``.
* :mod:`training.evaluate` - evaluating the checkpoint through the shared engine, lineage on the run records.
* :mod:`training.cli` - ``harness train``.

Nothing heavy is imported here: torch, transformers, trl and peft load when a run starts.
"""
