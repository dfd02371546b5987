"""``harness train``: SFT of the tiny local model on CPU, its evaluation, lineage, errors and resumption."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl", reason="training needs the train extra (trl, peft)")
pytest.importorskip("peft", reason="training needs the train extra (trl, peft)")

from harness.errors import HarnessError  # noqa: E402
from training.config import LoraSettings, TrainConfig, load_config  # noqa: E402
from training.data import DEFAULT_CHAT_TEMPLATE, load_pairs  # noqa: E402
from training.record import load_record  # noqa: E402
from training.sft import prepare, read_metrics, train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

#: Small and fast: one optimizer step is 4 rows, a high learning rate so 16 steps visibly lower the loss.
FAST = {"learning_rate": 1e-3, "effective_batch_size": 4, "per_device_batch_size": 4, "warmup_ratio": 0.0,
        "max_length": 128, "device": "cpu", "gradient_checkpointing": False, "seed": 7}  # fmt: skip


def write_pairs(path: Path, n: int = 32, long_rows: int = 0) -> Path:
    """Instruction-response rows as the data pipeline writes them (with provenance fields)."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            response = f"```python\ndef add_{i}(x):\n    return x + {i}\n```"
            if i < long_rows:
                response += "\n" + "\n".join(f"# step {k}: keep adding {i}" for k in range(60))
            row = {"key": f"k{i}", "seed": f"seed {i}", "licence": "MIT", "concepts": "arithmetic",
                   "instruction": f"Write a function add_{i}(x) that returns x plus {i}.", "response": response}  # fmt: skip
            fh.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Any:
    """Train with one intra-op thread: the tiny model gains nothing from more, and on a busy 2-core machine
    spinning OpenMP threads made 12 steps take 26 s instead of 0.4 s (measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def losses(output: Path) -> list[float]:
    return [row["loss"] for row in read_metrics(output)]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs") / "pairs.jsonl")


GENERATOR = "hf:/models/generator-7b"


@pytest.fixture(scope="module")
def pipeline_data(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same rows as a data pipeline's work folder holds them: ``dataset.jsonl`` whose rows carry the digest of
    ``manifest.json`` beside it (the manifest names the generating model)."""
    from harness.registry import manifest_digest

    work = tmp_path_factory.mktemp("work")
    settings = {"model": GENERATOR, "engine_options": {}, "seed": 3407, "instruct": {"temperature": 0.7}}
    digest = manifest_digest(settings)
    (work / "manifest.json").write_text(json.dumps({"format": 1, "digest": digest, "settings": settings,
                                                    "model": {"spec": GENERATOR, "identity": None}}))  # fmt: skip
    rows = [json.loads(line) | {"manifest_digest": digest} for line in pairs.read_text().splitlines()]
    (work / "dataset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return work / "dataset.jsonl"


@pytest.fixture(scope="module")
def base_without_template(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its chat template removed: a 'base' model."""
    out = tmp_path_factory.mktemp("base") / "tiny-base"
    shutil.copytree(tiny_model, out)
    (out / "chat_template.jinja").unlink()
    tok_config = out / "tokenizer_config.json"
    doc = json.loads(tok_config.read_text())
    doc.pop("chat_template", None)
    tok_config.write_text(json.dumps(doc))
    return out


@pytest.fixture(scope="module")
def cli_run(tiny_model: Path, pipeline_data: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Any]:  # fmt: skip
    """``harness train`` through its command line on a pipeline's dataset: a TOML config, 16 steps, then HumanEval
    on 2 tasks."""
    from training.cli import add_parser, command

    root = tmp_path_factory.mktemp("cli-run")
    config = root / "train.toml"
    config.write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in FAST.items() if k != "learning_rate") + "\n")
    parser = argparse.ArgumentParser(prog="harness")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args([
        "train", "--data", str(pipeline_data), "--base", str(tiny_model), "--output", str(root / "run"),
        "--config", str(config), "--set", "learning_rate=1e-3", "--max-steps", "16",
        "--eval", "humaneval", "--eval-limit", "2", "--eval-max-tokens", "16", "--data-dir", str(data_dir),
        "--parallel", "1",
    ])  # fmt: skip
    assert command(args) == 0
    return {"output": root / "run", "config": config, "data": pipeline_data}


def test_train_lowers_loss_saves_checkpoint_and_evaluates_with_lineage(cli_run: dict[str, Any], tiny_model: Path
                                                                       ) -> None:  # fmt: skip
    from harness.registry import trace_lineage
    from harness.store import load_run

    out = cli_run["output"]
    curve = losses(out)
    assert len(curve) == 16
    assert curve[-1] < curve[0] - 0.5, curve
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 17))
    assert all(r["learning_rate"] is not None and r["tokens_per_second"] and r["tokens"] > 0 for r in rows)

    record = load_record(out)
    assert record is not None and record.status == "completed"
    sha = hashlib.sha256(cli_run["data"].read_bytes()).hexdigest()
    assert record.dataset.sha256 == sha and record.dataset.rows == 32
    assert record.base_model.local and record.base_model.digest
    assert record.config["learning_rate"] == 1e-3 and record.config["max_steps"] == 16
    assert record.trainer is not None and record.trainer.gradient_accumulation_steps == 1
    assert record.metrics.global_step == 16 and record.metrics.tokens > 0
    final = Path(record.checkpoint or "")
    assert (final / "model.safetensors").exists() and (final / "tokenizer.json").exists()

    run = load_run(out / "eval" / "humaneval" / "run.json")
    assert run.n_tasks == 2
    assert run.generation is not None and run.generation.model == f"hf:{final}"
    # The lineage is written once, as data: the record's field (no note, no lineage.json beside it).
    lineage = run.lineage
    assert lineage is not None and lineage["dataset"]["sha256"] == sha
    assert not any(sha in note for note in run.notes), run.notes
    assert not (out / "eval" / "humaneval" / "lineage.json").exists()
    assert lineage["base_model"]["source"] == record.base_model.source
    assert lineage["checkpoint"] == record.checkpoint and lineage["config"]["max_steps"] == 16
    assert record.evals["humaneval"].run == str((out / "eval" / "humaneval" / "run.json").resolve())

    # Back from the checkpoint's evaluation to the pipeline's manifest and the model that generated the data.
    traced = trace_lineage(lineage)
    assert traced is not None and traced["problems"] == [], traced
    manifest = cli_run["data"].parent / "manifest.json"
    assert traced["manifest"]["path"] == str(manifest.resolve()) and traced["manifest"]["matches"]
    assert traced["dataset"]["manifest_digest"] == json.loads(manifest.read_text())["digest"]
    assert traced["generator"]["model"] == GENERATOR
    assert traced["base_model"]["digest"] == record.base_model.digest and traced["training"]["steps"] == 16

    # The record names the checkout it ran from; the model cards name the base model (TRL's said "[None]").
    assert record.git_commit and re.fullmatch(r"[0-9a-f]{40}", record.git_commit)
    assert subprocess.run(["git", "cat-file", "-e", f"{record.git_commit}^{{commit}}"], cwd=ROOT).returncode == 0
    for card in (final / "README.md", out / "checkpoints" / "README.md"):
        text = card.read_text()
        assert f"fine-tuned version of the local model `{tiny_model.resolve()}`" in text, card
        assert "[None]" not in text and sha[:16] in text and GENERATOR in text
    assert "| humaneval | plus |" in (final / "README.md").read_text()  # rewritten with the evaluation


def test_same_seed_gives_the_same_loss_curve(cli_run: dict[str, Any], tiny_model: Path, pairs: Path,
                                             tmp_path: Path) -> None:  # fmt: skip
    # The same rows without the pipeline's provenance fields: those are not trained on.
    config = TrainConfig(**FAST, max_steps=16)
    train(pairs, str(tiny_model), tmp_path / "again", config, echo=lambda m: None)
    assert losses(tmp_path / "again") == pytest.approx(losses(cli_run["output"]), rel=1e-6, abs=1e-7)


def test_finished_run_is_not_retrained_and_other_inputs_are_refused(cli_run: dict[str, Any], tiny_model: Path
                                                                     ) -> None:  # fmt: skip
    out, pairs = cli_run["output"], cli_run["data"]
    config = load_config(cli_run["config"], {"learning_rate": 1e-3, "max_steps": 16})
    said: list[str] = []
    record = train(pairs, str(tiny_model), out, config, echo=said.append)
    assert record.status == "completed" and any("already trained" in m for m in said)
    with pytest.raises(HarnessError, match=r"different inputs.*learning_rate.*--restart"):
        train(pairs, str(tiny_model), out, config.model_copy(update={"learning_rate": 2e-3}), echo=said.append)


def test_a_dataset_smaller_than_the_effective_batch_is_warned_of(tiny_model: Path, tmp_path: Path) -> None:
    path = write_pairs(tmp_path / "three.jsonl", n=3)
    said: list[str] = []
    prepared = prepare(path, str(tiny_model), tmp_path / "small", TrainConfig(**{**FAST, "per_device_batch_size": 1}),
                       echo=said.append)  # fmt: skip
    warning = next((m for m in said if m.startswith("warning: ")), "")
    assert "3 training sequences, fewer than the effective batch of 4" in warning, said
    assert "every optimizer step is a whole epoch" in warning and "--set effective_batch_size=1" in warning
    assert prepared.record.warnings == [warning.removeprefix("warning: ")]


def test_prompt_tokens_are_masked_and_response_tokens_are_not(tiny_model: Path, pairs: Path, tmp_path: Path) -> None:
    from training.sft import Prepared

    prepared = prepare(pairs, str(tiny_model), tmp_path / "labels", TrainConfig(**FAST), echo=lambda m: None)
    assert isinstance(prepared, Prepared)
    tok = prepared.tokenizer
    first = load_pairs(pairs)
    dataset = prepared.trainer.train_dataset
    prompt_lengths = []
    for i in (0, 1, 5):
        prompt = tok.apply_chat_template([{"role": "user", "content": first.instructions[i]}], tokenize=False,
                                         add_generation_prompt=True)  # fmt: skip
        n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
        prompt_lengths.append(n_prompt)
        ids, labels = dataset[i]["input_ids"], dataset[i]["labels"]
        assert labels[:n_prompt] == [-100] * n_prompt
        assert labels[n_prompt:] == ids[n_prompt:]
        # The trained part is exactly the response and the end of the assistant turn.
        assert tok.decode(ids[n_prompt:]) == first.responses[i] + "<|im_end|>\n"
    # The collator keeps the masking (and masks padding).
    batch = prepared.trainer.data_collator([dataset[0], dataset[1]])
    for row, n_prompt, ids in zip(
        batch["labels"].tolist(), prompt_lengths, (dataset[0]["input_ids"], dataset[1]["input_ids"])
    ):
        assert row[:n_prompt] == [-100] * n_prompt
        assert row[n_prompt : len(ids)] == ids[n_prompt:]
        assert row[len(ids) :] == [-100] * (len(row) - len(ids))


def test_missing_fields_are_named_with_their_rows(tiny_model: Path, tmp_path: Path) -> None:
    path = write_pairs(tmp_path / "bad.jsonl", n=6)
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    del row["response"]
    lines[2] = json.dumps(row)
    row = json.loads(lines[4])
    row["instruction"] = "  "
    lines[4] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(HarnessError, match=r"2 of 6 rows.*line 3 lacks 'response'.*line 5 has an empty 'instruction'"):
        train(path, str(tiny_model), tmp_path / "out", TrainConfig(**FAST))
    other = tmp_path / "renamed.jsonl"
    other.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    with pytest.raises(HarnessError, match=r"no row has 'instruction', 'response' \(fields found: completion, prompt"):
        train(other, str(tiny_model), tmp_path / "out", TrainConfig(**FAST))
    assert not (tmp_path / "out").exists()  # nothing was started


def test_unknown_base_model_path_is_a_clear_error(pairs: Path, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"base model path .*/no/such/model does not exist"):
        train(pairs, str(tmp_path / "no" / "such" / "model"), tmp_path / "out", TrainConfig(**FAST))
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="not a model folder"):
        train(pairs, str(tmp_path / "empty"), tmp_path / "out", TrainConfig(**FAST))


def test_rows_over_the_length_limit_are_counted(tiny_model: Path, tmp_path: Path) -> None:
    path = write_pairs(tmp_path / "long.jsonl", n=12, long_rows=3)
    config = TrainConfig(**{**FAST, "max_length": 96})
    prepared = prepare(path, str(tiny_model), tmp_path / "cut", config, echo=lambda m: None)
    assert prepared.data.truncated_rows == 3 and prepared.data.used_rows == 12
    assert prepared.data.truncated_examples[0].startswith("line 1 (")
    assert max(len(r["input_ids"]) for r in prepared.trainer.train_dataset) == 96
    assert prepared.record.data is not None and prepared.record.data.truncated_rows == 3

    dropped = prepare(path, str(tiny_model), tmp_path / "drop", config.model_copy(update={"overlong": "drop"}),
                      echo=lambda m: None)  # fmt: skip
    assert dropped.data.dropped_rows == 3 and len(dropped.trainer.train_dataset) == 9
    with pytest.raises(HarnessError, match=r"3 rows are longer than max_length=96 tokens: line 1 \(\d+ tokens\)"):
        prepare(path, str(tiny_model), tmp_path / "err", config.model_copy(update={"overlong": "error"}))


def test_interrupted_run_resumes_from_its_last_checkpoint(tiny_model: Path, pairs: Path, tmp_path: Path) -> None:
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 6:
                raise KeyboardInterrupt

    out = tmp_path / "run"
    config = TrainConfig(**FAST, max_steps=8, save_steps=4)
    with pytest.raises(KeyboardInterrupt):
        train(pairs, str(tiny_model), out, config, callbacks=[Interrupt()], echo=lambda m: None)
    record = load_record(out)
    assert record is not None and record.status == "interrupted" and record.checkpoint is None
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    first_session = read_metrics(out)
    assert [r["step"] for r in first_session] == [1, 2, 3, 4, 5]

    said: list[str] = []
    record = train(pairs, str(tiny_model), out, config, echo=said.append)
    assert record.status == "completed" and record.metrics.global_step == 8
    assert record.resumed_from and record.resumed_from[-1].endswith("checkpoint-4")
    assert any("resuming from" in m for m in said)
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 9))  # steps 5.. redone once, not duplicated
    # Weights, optimizer, schedule, data order and RNG all came back: step 5 is the same step again.
    assert rows[4]["loss"] == pytest.approx(first_session[4]["loss"], rel=1e-6)
    assert [r["loss"] for r in rows[:4]] == [r["loss"] for r in first_session[:4]]


def test_lora_adapter_trains_and_evaluates_through_the_base_engine(base_without_template: Path, pairs: Path,
                                                                   data_dir: Path, tmp_path: Path) -> None:  # fmt: skip
    from harness.engine import Message, Request, Sampling
    from harness.model_eval import EvalSettings
    from training.evaluate import checkpoint_engine, evaluate_run

    before = {p.name: p.read_bytes() for p in base_without_template.iterdir() if p.is_file()}
    out = tmp_path / "lora"
    config = TrainConfig(**{**FAST, "learning_rate": 5e-3}, max_steps=12, lora=LoraSettings(r=8, alpha=16))
    record = train(pairs, str(base_without_template), out, config, echo=lambda m: None)
    assert record.adapter and record.data is not None and record.data.template == "default"
    curve = losses(out)
    assert curve[-1] < curve[0] - 0.3, curve
    final = Path(record.checkpoint or "")
    assert (final / "adapter_config.json").exists() and not (final / "model.safetensors").exists()
    assert json.loads((final / "tokenizer_config.json").read_text()).get("chat_template", DEFAULT_CHAT_TEMPLATE) \
        == DEFAULT_CHAT_TEMPLATE or (final / "chat_template.jinja").read_text() == DEFAULT_CHAT_TEMPLATE  # fmt: skip
    assert {p.name: p.read_bytes() for p in base_without_template.iterdir() if p.is_file()} == before

    records = evaluate_run(out, ["humaneval"], EvalSettings(limit=2, max_tokens=16), data_dir=data_dir, parallel=1,
                           echo=lambda m: None)  # fmt: skip
    gen = records["humaneval"].generation
    assert gen is not None and gen.model == f"hf:{base_without_template.resolve()}"
    assert gen.options["adapters"] == {"sft": str(final)} and gen.options["request_adapter"] == "sft"
    assert "adapters" in gen.identity and gen.style == "instruct"  # the default template came with the adapter
    assert load_record(out).evals["humaneval"].adapter == "sft"  # type: ignore[union-attr]

    # The adapter is really applied: the same prompt through the base alone answers differently.
    _, engine, _ = checkpoint_engine(record)
    request = Request(messages=(Message("user", "Write a function that adds two numbers."),),
                      sampling=Sampling(max_tokens=12))  # fmt: skip
    tuned = engine.generate([request])[0].completions[0].text
    plain = engine.inner.generate([request])[0].completions[0].text  # type: ignore[attr-defined]
    assert tuned != plain


def test_packing_trains_on_packed_sequences(tiny_model: Path, pairs: Path, tmp_path: Path) -> None:
    config = TrainConfig(**FAST, packing=True, max_steps=3)
    prepared = prepare(pairs, str(tiny_model), tmp_path / "packed", config, echo=lambda m: None)
    dataset = prepared.trainer.train_dataset
    assert len(dataset) < 32 and "seq_lengths" in dataset.column_names
    assert all(len(r["input_ids"]) <= 128 for r in dataset)
    assert any(-100 in r["labels"] for r in dataset)  # prompts stay masked inside packed sequences
    record = train(pairs, str(tiny_model), tmp_path / "packed", config, echo=lambda m: None)
    assert record.metrics.global_step == 3 and all(r["loss"] > 0 for r in read_metrics(tmp_path / "packed"))


def test_config_file_overrides_and_unknown_keys(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("learning_rate = 2e-5\nnum_epochs = 2\n[lora]\nr = 4\n")
    config = load_config(toml, {"lora.alpha": 8, "packing": True})
    assert config.learning_rate == 2e-5 and config.num_epochs == 2 and config.packing
    assert config.lora == LoraSettings(r=4, alpha=8)
    assert load_config(None, {"lora.r": 2}).lora == LoraSettings(r=2)
    defaults = TrainConfig()
    assert (defaults.learning_rate, defaults.num_epochs, defaults.effective_batch_size, defaults.warmup_ratio,
            defaults.lr_scheduler, defaults.max_length, defaults.optimizer, defaults.dropout) == \
        (1e-5, 4.0, 64, 0.05, "linear", 1280, "adafactor", 0.0)  # fmt: skip
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learnig_rate": 1e-5, "lora": {"rank": 4}}))
    with pytest.raises(
        HarnessError, match=r"learnig_rate: unknown key; lora.rank: unknown key \(known keys: learning_rate, "
    ):
        load_config(bad)
    with pytest.raises(HarnessError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_trainer_args_pass_through_and_clashes_are_refused(tiny_model: Path, pairs: Path, tmp_path: Path) -> None:
    config = TrainConfig(**FAST, trainer_args={"adam_beta2": 0.95})
    prepared = prepare(pairs, str(tiny_model), tmp_path / "a", config, echo=lambda m: None)
    assert prepared.trainer.args.adam_beta2 == 0.95
    with pytest.raises(HarnessError, match="trainer_args sets learning_rate"):
        prepare(pairs, str(tiny_model), tmp_path / "b", TrainConfig(**FAST, trainer_args={"learning_rate": 1.0}))
    with pytest.raises(HarnessError, match="trainer_args: .*no_such_argument"):
        prepare(pairs, str(tiny_model), tmp_path / "c", TrainConfig(**FAST, trainer_args={"no_such_argument": 1}))
    with pytest.raises(HarnessError, match="effective_batch_size 6 is not a multiple"):
        prepare(pairs, str(tiny_model), tmp_path / "d", TrainConfig(**{**FAST, "effective_batch_size": 6}))


def test_dropout_is_switched_off(tmp_path: Path) -> None:
    from transformers import LlamaConfig

    from training.sft import zero_dropout

    config = LlamaConfig(attention_dropout=0.1)
    assert zero_dropout(config) == {"attention_dropout": 0.1}
    assert config.attention_dropout == 0.0


def test_reads_the_data_pipelines_dataset_in_both_formats(tmp_path: Path) -> None:
    from generation.select import write_dataset
    from training.data import dataset_hash

    rows = [{"key": f"k{i}", "instruction": f"Do {i}.", "response": f"done {i}", "tests": "assert True",
             "passed": 1, "sampled": 1} for i in range(5)]  # fmt: skip
    (tmp_path / "a").mkdir()
    jsonl, folder = write_dataset(rows, tmp_path / "a", "dataset")
    from_jsonl, from_folder = load_pairs(jsonl), load_pairs(folder)
    assert from_folder.instructions == from_jsonl.instructions == [f"Do {i}." for i in range(5)]
    assert from_folder.lineage.format == "datasets" and from_folder.lineage.rows == 5
    assert from_jsonl.lineage.sha256 == hashlib.sha256(jsonl.read_bytes()).hexdigest()
    # The same rows saved again hash the same (the folder's fingerprint file is left out).
    (tmp_path / "b").mkdir()
    _, again = write_dataset(rows, tmp_path / "b", "dataset")
    assert dataset_hash(again)[0] == from_folder.lineage.sha256
    assert "state.json" not in from_folder.lineage.files


def test_cli_reports_an_interruption_and_checks_benchmarks_first(monkeypatch: pytest.MonkeyPatch, pairs: Path,
                                                                   tmp_path: Path, capsys: Any) -> None:  # fmt: skip
    import training.sft
    from training.cli import add_parser, command

    parser = argparse.ArgumentParser(prog="harness")
    add_parser(parser.add_subparsers(dest="command"))
    argv = ["train", "--data", str(pairs), "--base", "unused", "--output", str(tmp_path / "run")]

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(training.sft, "train", interrupted)
    assert command(parser.parse_args(argv)) == 130
    assert "no checkpoint was saved yet: rerun the same command to resume" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="unknown benchmark.*humaneva"):
        command(parser.parse_args([*argv, "--eval", "humaneva"]))
    with pytest.raises(HarnessError, match="unknown key"):
        command(parser.parse_args([*argv, "--set", "learning_rat=1"]))
