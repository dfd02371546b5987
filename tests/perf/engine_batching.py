"""Engine speed on the CPU: batched vs one prompt at a time, and the response-cache hit path.

* Generation: every HumanEval+ prompt (instruct style, the tiny local model's
  chat template) through the ``hf`` backend with ``batch_size`` B and with
  ``batch_size`` 1, greedy, ``--max-tokens`` new tokens each, after a warm-up
  call on each (the first call of a shape pays one-off kernel set-up).
  Goal: batched at least 3x faster.  Also checks that both give the same text.
* Cache hits: R distinct requests stored in a response cache, then answered by
  a fresh engine (new SQLite connection) from it.  Goal: at least 2,000 cached
  requests per second.

    HARNESS_DATA_DIR=../shared/data python tests/perf/engine_batching.py [--model DIR] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.engine.base import Backend, BackendOptions  # noqa: E402


def main() -> int:
    """Run both measurements and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="a saved tiny model (default: build one in a temp dir)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--cache-requests", type=int, default=5000)
    args = ap.parse_args()

    import torch

    import benchmarks  # noqa: F401
    from harness import benchmark as registry
    from harness.engine import Completion, Engine, Request, ResponseCache, Sampling, create_engine, sample_key
    from harness.engine.types import Message
    from tests.tiny_model import build_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="engine-perf-"))
    model = args.model or build_tiny_model(tmp / "tiny")
    bench = registry.get("humaneval", data_dir=os.environ.get("HARNESS_DATA_DIR"))
    requests = []
    for problem in bench.problems().values():
        p = bench.prompt(problem, "instruct")
        requests.append(Request(messages=(Message("user", p.instruction or ""),), response_prefix=p.response_prefix,
                                sampling=Sampling(max_tokens=args.max_tokens, stop=p.stop)))  # fmt: skip
    print(f"model: {model} (tiny Llama, {sum(x.numel() for x in _params(model))} parameters); torch threads "
          f"{torch.get_num_threads()}; {len(requests)} HumanEval+ prompts, greedy, max_tokens {args.max_tokens}")

    engine = create_engine(f"hf:{model}", {"batch_size": args.batch_size}, use_cache=False)
    timings = {}
    texts = {}
    for bs in (args.batch_size, 1):
        engine.backend.options.batch_size = bs  # type: ignore[attr-defined]
        engine.generate(requests[:bs])  # warm-up
        t0 = time.perf_counter()
        results = engine.generate(requests)
        timings[bs] = time.perf_counter() - t0
        texts[bs] = [r.completions[0].text for r in results]
        tokens = sum(r.completions[0].completion_tokens for r in results)
        print(f"batch_size {bs:>3}: {timings[bs]:7.2f} s  ({len(requests) / timings[bs]:6.1f} prompts/s, "
              f"{tokens / timings[bs]:7.0f} tokens/s)")
    same = sum(a == b for a, b in zip(texts[args.batch_size], texts[1]))
    ratio = timings[1] / timings[args.batch_size]
    print(f"batched speed-up: x{ratio:.2f} (goal >= 3)  -- same text in {same}/{len(requests)} prompts")
    engine.close()

    # Cache hits: store R requests' samples, then serve them from a fresh engine.
    cache_dir = tmp / "cache"
    writer = Engine("hf:x", _Stub(), ResponseCache(cache_dir))
    many = [Request(prompt=f"{requests[k % len(requests)].messages[0].content}\n# variant {k}",  # type: ignore[index]
                    sampling=Sampling(max_tokens=args.max_tokens)) for k in range(args.cache_requests)]  # fmt: skip
    for r in many:
        writer.cache.put(sample_key(writer.identity, r, 0), Completion("x" * 400, "stop", 200, 100))  # type: ignore[union-attr]
    writer.close()
    reader = Engine("hf:x", _Stub(), ResponseCache(cache_dir))
    t0 = time.perf_counter()
    served = reader.generate(many)
    dt = time.perf_counter() - t0
    assert all(c.cached for r in served for c in r.completions) and reader.backend.calls == 0  # type: ignore[attr-defined]
    print(f"cache hits: {len(many)} requests in {dt:.3f} s = {len(many) / dt:,.0f} requests/s (goal >= 2,000)")
    return 0


def _params(model: Path):  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file

    return list(load_file(str(model / "model.safetensors")).values())


class _Stub(Backend):
    """A backend that counts calls; the cache must answer everything."""

    name = "hf"

    def __init__(self) -> None:
        super().__init__("x", BackendOptions())
        self.calls = 0

    def identity(self) -> dict[str, str]:
        return {"weights": "perf-stub"}

    def run(self, jobs, emit) -> None:  # type: ignore[no-untyped-def]
        self.calls += 1
        raise RuntimeError("cache miss in the cache-hit benchmark")


if __name__ == "__main__":
    sys.exit(main())
