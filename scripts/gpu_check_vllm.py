"""Drive the vllm backend on a GPU machine: a real ``vllm.LLM`` through ``create_engine("vllm:PATH")``.

Usage: ``python scripts/gpu_check_vllm.py [MODEL_DIR] [--lora]``

MODEL_DIR is used as is when it holds a ``config.json``; otherwise a tiny
random Llama with a locally trained tokenizer is built there (no download;
its text is noise, but it goes through vLLM's real loading, batching,
seeding and detokenization).  ``--lora`` also builds a random LoRA adapter
with peft and compares it with the base model in the same engine.

Checks that must hold (exit 1 otherwise): every request gets its ``n``
samples with a stop/length finish reason, greedy samples agree, a seeded
request redrawn alone gives the same samples (vLLM seeds per request),
chat requests render through the template, a base-model request batched
with adapter requests gives the base model's text (on a GPU they share a
batch), and ``close`` leaves no vLLM process.  Prints timings.

vLLM is found as the backend finds it: ``bash scripts/install_vllm.sh``
(which installs ``vllm`` on a machine with an NVIDIA GPU), or ``vllm`` in
this environment.  ``--tp N`` runs the engine with tensor parallelism over
N GPUs, which the CPU build cannot show.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_model(target: Path) -> Path:
    """Use ``target`` if it is a saved model, else build the tiny test model there."""
    if (target / "config.json").exists():
        return target
    from tests.tiny_model import build_tiny_model

    # 4 heads of 64 dimensions: a head size every vLLM attention backend supports (16 is not).
    return build_tiny_model(target, hidden=256)


def build_adapter(model: Path, target: Path) -> Path | None:
    """A random rank-8 LoRA adapter on the attention projections, or None when peft is missing."""
    if (target / "adapter_config.json").exists():
        return target
    if importlib.util.find_spec("peft") is None:
        print("gpu_check_vllm: --lora needs peft (pip install 'code-harness[train]'); skipping the LoRA check")
        return None
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(model)
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    # peft starts B at zero (adapter == base); random B makes the adapter's output visibly differ.
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.save_pretrained(target)
    return target


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def main(argv: list[str]) -> int:
    """Run the checks; 0 when they all hold."""
    from harness.engine import Message, Request, Sampling, create_engine
    from harness.engine.backends.vllm import worker_python
    from harness.errors import HarnessError

    try:
        worker_python(None)
    except HarnessError as exc:
        print(f"gpu_check_vllm: {exc}", file=sys.stderr)
        return 2

    tp = int(argv[argv.index("--tp") + 1]) if "--tp" in argv else 1
    args = [a for i, a in enumerate(argv[1:], 1) if not a.startswith("--") and argv[i - 1] != "--tp"]
    model = build_model(Path(args[0] if args else "tiny-model-vllm").resolve())
    options: dict[str, object] = {"gpu_memory_utilization": 0.3, "max_model_len": 1024, "enforce_eager": True,
                                  "tensor_parallel_size": tp}  # fmt: skip
    adapter = build_adapter(model, model.parent / (model.name + "-lora")) if "--lora" in argv else None
    if adapter is not None:
        options["adapters"] = {"sft": str(adapter)}

    t0 = time.perf_counter()
    engine = create_engine(f"vllm:{model}", options, use_cache=False)
    load_s = time.perf_counter() - t0
    print(f"loaded {model} in {load_s:.1f}s; identity {engine.identity}; default style {engine.default_style()}")

    seeded = Request(prompt="def fibonacci(n):\n", sampling=Sampling(n=4, temperature=0.8, max_tokens=48, seed=3))
    requests = [
        Request(prompt="import os\n", sampling=Sampling(n=3, max_tokens=32)),
        seeded,
        Request(prompt="class Stack:\n", sampling=Sampling(n=3, temperature=1.0, max_tokens=32, stop=("\n\n",))),
        Request(messages=(Message("user", "Write a function that adds two numbers."),),
                response_prefix="```python\n", sampling=Sampling(n=2, temperature=0.5, max_tokens=48, seed=1)),
    ]  # fmt: skip
    # A batch big enough that throughput means something.
    requests += [Request(prompt=f"# task {k}\ndef f_{k}(x):\n", sampling=Sampling(max_tokens=64)) for k in range(256)]
    if adapter is not None:
        requests += [
            Request(prompt="def main():\n", sampling=Sampling(max_tokens=32), adapter=a) for a in (None, "sft")
        ]

    t0 = time.perf_counter()
    results = engine.generate(requests)
    gen_s = time.perf_counter() - t0
    stats = engine.stats
    print(f"generated {stats.generated} samples ({stats.completion_tokens} tokens) for {len(requests)} requests "
          f"in {gen_s:.2f}s: {stats.completion_tokens / gen_s:.0f} tokens/s; finish reasons {stats.finish}")  # fmt: skip

    failures: list[str] = []
    for k, result in enumerate(results[:4] + results[-2:]):
        print(f"--- request {k} ({'chat' if result.request.is_chat else 'raw'}, n={result.request.sampling.n})")
        for completion in result.completions:
            print(f"  [{completion.finish_reason}, {completion.completion_tokens} tok] {completion.text[:80]!r}")
    for j, result in enumerate(results):
        if len(result.completions) != result.request.sampling.n:
            failures.append(f"request {j}: {len(result.completions)} samples, wanted {result.request.sampling.n}")
        bad = [c.finish_reason for c in result.completions if c.finish_reason not in ("stop", "length")]
        if bad:
            failures.append(f"request {j}: finish reasons {bad}")
    if len({c.text for c in results[0].completions}) != 1:
        failures.append("greedy samples of request 0 differ")

    t0 = time.perf_counter()
    again = engine.generate([seeded])[0]
    print(f"seeded request alone: {time.perf_counter() - t0:.2f}s")
    if [c.text for c in again.completions] != [c.text for c in results[1].completions]:
        failures.append("the seeded request redrawn alone gave different samples")
    if adapter is not None and results[-1].completions[0].text == results[-2].completions[0].text:
        failures.append("the LoRA adapter's output equals the base model's")
    if adapter is not None:
        base_alone = engine.generate([Request(prompt="def main():\n", sampling=Sampling(max_tokens=32))])[0]
        if base_alone.completions[0].text != results[-2].completions[0].text:
            failures.append("a base-model request batched with an adapter request got another text than alone")

    worker = getattr(engine.backend.llm, "pid", None)
    engine.close()
    if worker is not None:
        left = [p for p in os.listdir("/proc") if p.isdigit() and _sid(int(p)) == worker]
        if left:
            failures.append(f"processes of the vLLM worker's session left after close: {left}")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    print("vllm backend GPU check:", "FAILED" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
