"""Training throughput on the CPU: tokens per second with and without packing, tiny model.

The same rows (instruction-response pairs of varied length, as a generated
dataset has) are trained for ``--steps`` optimizer steps of ``--batch``
sequences through ``training.sft.train``: padded per batch; packed into
``--max-length`` sequences (TRL's best-fit-decreasing packing, padding-free, so
a step's sequences are flattened into one row whose attention mask is
block-diagonal); and packed with one sequence per forward pass and gradient
accumulation.
Throughput is the real (non-padding) input tokens per second between the first
and the last logged step (so start-up and the first step's one-off costs are
left out), read from each run's ``metrics.jsonl``.

    python tests/perf/train_throughput.py [--model DIR] [--rows 256] [--steps 20] [--batch 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def write_rows(path: Path, rows: int, seed: int = 0) -> Path:
    """Pairs whose responses vary from a few lines to dozens, like a generated instruction dataset."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            lines = rng.randint(2, 40)
            body = "\n".join(f"    total += values[{k}] * {rng.randint(1, 99)}" for k in range(lines))
            response = f"```python\ndef weighted_{i}(values):\n    total = 0\n{body}\n    return total\n```"
            instruction = f"Write weighted_{i}(values), a weighted sum of the first {lines} values."
            fh.write(json.dumps({"instruction": instruction, "response": response}) + "\n")
    return path


def measure(data: Path, model: Path, out: Path, packing: bool, per_device: int,
            args: argparse.Namespace) -> dict[str, float]:  # fmt: skip
    """Train ``args.steps`` steps and return throughput figures from the run's metrics."""
    from training.config import TrainConfig
    from training.sft import read_metrics, train

    config = TrainConfig(learning_rate=1e-4, effective_batch_size=args.batch, per_device_batch_size=per_device,
                         warmup_ratio=0.0, max_length=args.max_length, device="cpu", gradient_checkpointing=False,
                         packing=packing, max_steps=args.steps, save_steps=10**9, seed=0)  # fmt: skip
    record = train(data, str(model), out, config, echo=lambda m: None)
    rows = read_metrics(out)
    first, last = rows[0], rows[-1]
    seconds = last["elapsed_s"] - first["elapsed_s"]
    tokens = last["tokens"] - first["tokens"]
    steps = last["step"] - first["step"]
    assert record.data is not None
    return {"tokens_per_second": tokens / seconds, "steps_per_second": steps / seconds,
            "tokens_per_step": tokens / steps, "seconds": seconds, "rows": record.data.used_rows,
            "loss_first": first["loss"], "loss_last": last["loss"]}  # fmt: skip


def main() -> int:
    """Run both configurations and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="a saved tiny model (default: build one in a temp dir)")
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8, help="sequences per step (packed sequences with --packing)")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args()

    import torch

    from tests.tiny_model import build_tiny_model

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="train-perf-"))
    model = args.model or build_tiny_model(tmp / "tiny")
    data = write_rows(tmp / "pairs.jsonl", args.rows)
    print(
        f"model {model} (tiny Llama); torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"{args.rows} rows, {args.steps} steps of {args.batch} sequences, max_length {args.max_length}"
    )
    # Padded batches of B rows; packed: B packed sequences flattened into one padding-free row per forward
    # pass; packed 1 x B: one packed sequence per forward pass, B accumulated per step.
    variants = {"padded": (False, args.batch), "packed": (True, args.batch), f"packed 1x{args.batch}": (True, 1)}
    results = {}
    for name, (packing, per_device) in variants.items():
        results[name] = r = measure(data, model, tmp / name.replace(" ", "_"), packing, per_device, args)
        print(
            f"{name:>12}: {r['tokens_per_second']:9.0f} tokens/s  {r['steps_per_second']:6.2f} steps/s  "
            f"{r['tokens_per_step']:7.0f} tokens/step  loss {r['loss_first']:.3f} -> {r['loss_last']:.3f}"
        )
    base = results["padded"]["tokens_per_second"]
    print(
        "packing vs padded, tokens/s: "
        + ", ".join(f"{name} x{r['tokens_per_second'] / base:.2f}" for name, r in results.items() if name != "padded")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
