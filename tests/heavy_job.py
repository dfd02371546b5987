"""The test session's whole-benchmark gradings, run as one background process beside the other tests.

``python -m tests.heavy_job OUT DATA_DIR [PARTS]`` (started by tests/conftest.py at the start of a session whose tests
need it; ``HARNESS_CACHE_DIR`` is the session's cache):

1. the HumanEval+ and MBPP+ expected outputs through each benchmark's ``prepare`` hook (a test that needs
   them meanwhile waits for this process, through the expected-output lock, instead of computing them too);
2. ``harness eval --model oracle --benchmarks humaneval,mbpp`` in a subprocess, and at the same time, in this
   process, the StarCoder2 reference samples graded with no verdict cache; once the oracle has exited two
   CPU-bound processes take its place until the reference grading ends, so the reference samples are graded
   on a busy machine the whole time;
3. HumanEval-X's canonical solutions through ``harness eval --model oracle``: every problem in C++, JavaScript
   and Rust, the first 40 in Java and Go (with a cache and a registry of their own, ``OUT/hx``, whose built
   artifacts tests/test_humaneval_x.py then shares);
4. ``OUT/result.json``: each run's return code and output, each reference grading's folder and statuses.

A failure is written to ``OUT/error.txt`` (the tests that read the result report it) and exits non-zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

from tests.conftest import REFERENCE, cpu_hogs, statuses

BENCHES = ("humaneval", "mbpp")
HX_FULL = ("cpp", "js", "rust")  # every problem
HX_SUBSET = {"java": 40, "go": 40}  # the first problems: their runs are slower per problem


def _completed(args: list[str], env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=1800)
    return {"args": args, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def humaneval_x(out: Path, data_dir: Path) -> dict[str, object]:
    """The HumanEval-X oracle runs, for the languages whose toolchain this machine has."""
    from benchmarks import humaneval_x as hx

    if not (data_dir / "humaneval-x" / "humaneval_cpp.jsonl.gz").is_file():
        return {}
    root = out / "hx"
    env = {**os.environ, "HARNESS_REGISTRY": str(root / "registry.sqlite"), "HARNESS_CACHE_DIR": str(root / "cache")}
    eval_cmd = [sys.executable, "-m", "harness", "eval", "--model", "oracle", "--data-dir", str(data_dir),
                "--parallel", "2"]  # fmt: skip
    runs: dict[str, object] = {}
    full = [lang for lang in HX_FULL if not hx.toolchain(lang).missing]
    if full:
        folder = root / "oracle"
        runs["full"] = {**_completed([*eval_cmd, "--benchmarks", ",".join(f"humaneval-x-{x}" for x in full),
                                      "--output", str(folder)], env), "folder": str(folder), "langs": full}  # fmt: skip
    for lang, limit in HX_SUBSET.items():
        if not hx.toolchain(lang).missing:
            folder = root / f"oracle-{lang}"
            runs[lang] = {**_completed([*eval_cmd, "--benchmarks", f"humaneval-x-{lang}", "--limit", str(limit),
                                        "--output", str(folder)], env), "folder": str(folder)}  # fmt: skip
    return {"cache": str(root / "cache"), "runs": runs}


def evalplus(out: Path, data_dir: Path) -> dict[str, object]:
    """The HumanEval+ and MBPP+ gradings (steps 1 and 2)."""
    import benchmarks  # noqa: F401  (registers the benchmarks)
    from harness import benchmark as registry
    from harness.evaluation import evaluate_samples
    from harness.execution import Sandbox, SandboxSettings

    for name in BENCHES:
        bench = registry.get(name, data_dir=data_dir)
        with Sandbox(bench.sandbox_settings(SandboxSettings(workers=2))) as sb:
            bench.prepare(sb)
        bench.wait_saved()  # the oracle's process reads the file
    oracle_out, log_out, log_err = out / "oracle", out / "oracle.stdout", out / "oracle.stderr"
    with open(log_out, "w") as o, open(log_err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-m", "harness", "eval", "--model", "oracle", "--benchmarks",
                                 ",".join(BENCHES), "--data-dir", str(data_dir), "--output", str(oracle_out),
                                 "--parallel", "2"], stdout=o, stderr=e, stdin=subprocess.DEVNULL)  # fmt: skip
    reference: dict[str, object] = {}
    try:
        with cpu_hogs(2, after=proc):
            for name in BENCHES:
                ref = out / f"{name}-reference"
                evaluate_samples(name, data_dir / REFERENCE / f"{name}.jsonl", output=ref, parallel=2,
                                 data_dir=data_dir, use_verdict_cache=False, echo=lambda _: None)  # fmt: skip
                reference[name] = {"folder": str(ref), "statuses": statuses(ref)}
        code = proc.wait(timeout=1800)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"oracle": {"args": proc.args, "returncode": code, "folder": str(oracle_out), "stdout": log_out.read_text(),
                       "stderr": log_err.read_text()}, "reference": reference}  # fmt: skip


PARTS = {"evalplus": evalplus, "humaneval_x": lambda out, data_dir: {"humaneval_x": humaneval_x(out, data_dir)}}


def run(out: Path, data_dir: Path, parts: list[str]) -> dict[str, object]:
    """Do the named parts (``evalplus``, ``humaneval_x``: what the session's selected tests read), in that
    order; the result document."""
    doc: dict[str, object] = {}
    for part in parts:
        doc.update(PARTS[part](out, data_dir))
    return doc


def main() -> int:
    out, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
    parts = sys.argv[3].split(",") if len(sys.argv) > 3 else list(PARTS)
    try:
        doc = run(out, data_dir, parts)
    except BaseException:  # noqa: BLE001 - whatever stopped it is what the waiting tests must show
        (out / "error.txt").write_text(traceback.format_exc())
        return 1
    tmp = out / ".result.json"
    tmp.write_text(json.dumps(doc))
    tmp.replace(out / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
