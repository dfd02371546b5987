"""HumanEval+ and MBPP+ graded with EvalPlus 0.3.1's semantics.

Differential testing: the canonical solution's outputs on every base and plus
input are the expected outputs (computed once per dataset hash, in the
sandbox, and cached with their CPU times); a program passes a suite when its
output on every input matches under EvalPlus's rules: ``==``, MBPP+'s special
oracles, and ``np.allclose`` with the task's ``atol`` (``1e-6`` once a float
output has been seen, as EvalPlus does).  Each input's limit is
``max(min_time_limit, factor * ground-truth time)``, here in CPU seconds.

Deliberate differences from EvalPlus 0.3.1, all documented in the README:
HumanEval/32 (``find_zero``) is judged by ``|poly(xs, x)| <= atol`` (0.3.1
fails every sample there), comparisons run outside the program's process on
decoded plain data, and limits are CPU time rather than wall time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from benchmarks.evalplus_guard import EVALPLUS_GUARD_PRELUDE
from harness import data
from harness.benchmark import (
    DEFAULT_BASE_STOP,
    Benchmark,
    BenchmarkOptions,
    Column,
    DatasetInfo,
    FailureDetails,
    GradeContext,
    GradeOptions,
    PartVerdict,
    Problem,
    Prompt,
    SetupJob,
    Verdict,
    shown_text,
    shown_value,
)
from harness.errors import HarnessError
from harness.execution import CallJob, CallResult, Sandbox, codec, encode_inputs
from harness.samples import Sample, program_for

# Bump when expected-output computation changes, so caches are rebuilt.
EXPECTED_FORMAT = "4"  # 4: a SHA-256 trailer over the whole file

# Address space EvalPlus 0.3.1's checker process maps before a program runs
# (VmSize after `import evalplus.evaluate` with its dependencies; `datasets`
# brings pyarrow, which reserves most of it), measured with Python 3.11 on
# the project's machines.  With memory accounting "evalplus" a program gets
# the free address space it would get under EvalPlus: the cap, minus this,
# minus the task's expected outputs, which EvalPlus holds in that process.
# That decides memory-hungry samples the way EvalPlus does (Mbpp/255).
EVALPLUS_CHECKER_BYTES = 1_466_024 * 1024
PHASES = ("base", "plus")
_RECORD = struct.Struct("<Q")
_EXPECTED_GROUP_INPUTS = 3000
_NAN_PATTERN = re.compile(rb"G[\x7f\xff]")

# The program that computes expected outputs for a group of tasks: each
# canonical solution is executed once, in its own namespace (EvalPlus runs
# them all in one process too), and input ``[k, args]`` calls task k.
_EXPECTED_DISPATCH = """
_SOURCES = {sources!r}
_FUNCTIONS = []
for _code, _entry in _SOURCES:
    _env = {{}}
    exec(_code, _env)
    _FUNCTIONS.append(_env[_entry])
del _code, _entry, _env


def __harness_expected__(k, args):
    return _FUNCTIONS[k](*args)
"""

HUMANEVAL_PLUS = data.ReleaseFile(
    name="HumanEval+",
    version="v0.1.10",
    subdir="humanevalplus",
    filename="HumanEvalPlus-v0.1.10.jsonl.gz",
    url="https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz",
)
MBPP_PLUS = data.ReleaseFile(
    name="MBPP+",
    version="v0.2.0",
    subdir="mbppplus",
    filename="MbppPlus-v0.2.0.jsonl.gz",
    url="https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
)

# MBPP+ oracles (the entry points EvalPlus 0.3.1 special-cases).
MBPP_NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})
MBPP_SET_EQ = frozenset(
    {"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
     "larg_nnum", "intersection_array", "find_dissimilar", "Diff"}
)  # fmt: skip


def _surface_area(base_edge: float, height: float) -> float:
    """MBPP/581: the pyramid's height read as the perpendicular height."""
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant)


def _digit_distance(a: int, b: int) -> int:
    """MBPP/558: digits compared after left-padding the shorter number with zeros."""
    sa, sb = str(a), str(b)
    width = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width)))


def _poly(xs: Sequence[float], x: float) -> float:
    return sum(c * math.pow(x, i) for i, c in enumerate(xs))


def _is_floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype in (np.float64, np.float32)
    return False


def _tuples(x: Any) -> Any:
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


# How MBPP+ v0.2.0 stores inputs that JSON cannot express (tuples, sets,
# complex numbers): per task, the shape to rebuild.  Facts about the dataset,
# matching how EvalPlus 0.3.1 reads it.
_MBPP_INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "args_tuples": (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616,
                    630, 726, 740, 744, 809),
    "args_lists_of_tuples": (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
    "first_list_of_tuples": (75, 413, 444, 753),
    "second_tuple": (106, 750),
    "first_tuple": (250, 405, 446, 617, 720, 763, 808),
    "args_tuples_of_tuples": (259, 401, 445),
    "deep_tuples": (580, 615, 791),
}  # fmt: skip


def mbpp_inputs(task_number: int, inputs: list[Any]) -> list[Any]:
    """Rebuild the Python values of an MBPP+ task's stored inputs."""
    shape = next((k for k, ids in _MBPP_INPUT_SHAPES.items() if task_number in ids), None)
    if shape == "args_tuples":
        return [[tuple(a) for a in inp] for inp in inputs]
    if shape == "args_lists_of_tuples":
        return [[[tuple(x) for x in a] for a in inp] for inp in inputs]
    if shape == "first_list_of_tuples":
        return [[[tuple(x) for x in inp[0]], inp[1]] for inp in inputs]
    if shape == "second_tuple":
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if shape == "first_tuple":
        return [[tuple(inp[0]), inp[1]] for inp in inputs]
    if shape == "args_tuples_of_tuples":
        return [[tuple(tuple(x) for x in a) for a in inp] for inp in inputs]
    if shape == "deep_tuples":
        return [_tuples(inp) for inp in inputs]
    if task_number == 115:
        return [[[set(x) if isinstance(x, list) and x else {} for x in inp[0]]] for inp in inputs]
    if task_number == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if task_number == 252:
        return [[complex(inp[0])] for inp in inputs]
    if task_number == 278:
        return [(tuple(tuple(x) if isinstance(x, list) else x for x in inp[0]),) for inp in inputs]
    if task_number == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if task_number == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]] for inp in inputs]
    return inputs


def _jsonable(x: Any) -> Any:
    """A failing input as JSON can hold it (EvalPlus writes these into eval_results.json)."""
    if isinstance(x, (list, tuple)):
        return [_jsonable(i) for i in x]
    if isinstance(x, (set, frozenset)):
        return [_jsonable(i) for i in x]
    if isinstance(x, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) else k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, complex):
        return str(x)
    if isinstance(x, bytes):
        return x.decode("latin-1")
    return x


class ChecksumError(ValueError):
    """A cache file whose content does not match its checksum."""


class EvalPlusOptions(BenchmarkOptions):
    """EvalPlus's grading settings (recorded in the run record as the benchmark's options)."""

    base_only: bool = Field(default=False, description="only the base tests (no plus inputs)")
    memory_accounting: Literal["evalplus", "program"] = Field(
        default="evalplus",
        description="evalplus (default): a program gets the free memory it would have inside EvalPlus's checker, "
        "so memory-hungry samples get EvalPlus's verdict; program: the whole limit is the program's",
    )
    min_time_limit: float = Field(default=1.0, gt=0, description="per-input limit floor, CPU seconds (EvalPlus: 1)")
    time_limit_factor: float = Field(
        default=4.0, gt=0, description="per-input limit = max(floor, factor x ground-truth time) (EvalPlus: 4)"
    )
    suite_cap: float = Field(
        default=60.0,
        gt=0,
        description="a whole suite's time cap, CPU seconds (EvalPlus: 60, EVALPLUS_TIMEOUT_PER_TASK); never below "
        "factor x the suite's ground-truth time",
    )


class _ComputeClaim:
    """The right to compute one expected-output cache file: an exclusive ``flock`` on a lock file beside it.

    Held from the start of the computation until the file is written, so a second process that needs the
    same file (two runs started at once, the test suite's parallel gradings) waits and loads it instead of
    computing it again.  The kernel drops the lock when its holder dies, so a crashed run blocks no one.
    Within one process a second claim of a held path does not wait (it would wait for itself).
    """

    _held: ClassVar[set[str]] = set()
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str, fd: int) -> None:
        self.path, self.fd = path, fd

    @classmethod
    def take(cls, target: Path, what: str) -> _ComputeClaim | None:
        """Claim ``target``, waiting while another process holds it; None: not lockable here (compute anyway)."""
        import fcntl

        lock = target.with_name(f".{target.name}.lock")
        with cls._guard:
            if str(lock) in cls._held:
                return None
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None  # an unwritable cache: computed here, and the save says why it is not kept
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                print(f"waiting for process {holder}, which is computing the {what} expected outputs "
                      f"(lock {lock})", file=sys.stderr, flush=True)  # fmt: skip
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        with cls._guard:
            cls._held.add(str(lock))
        return cls(str(lock), fd)

    def release(self) -> None:
        """Let the next process in (idempotent)."""
        with self._guard:
            if self.fd < 0:
                return
            self._held.discard(self.path)
            fd, self.fd = self.fd, -1
        os.close(fd)  # closing the only descriptor drops the flock


def suite_budget(limits: Sequence[float], ground_truth: Sequence[float], options: EvalPlusOptions,
                 details: bool = False) -> float:  # fmt: skip
    """A suite's whole CPU budget: EvalPlus's ``min(cap, sum of limits) + 1 s``, with the cap raised to at
    least ``time_limit_factor`` x the suite's ground-truth time.

    The per-input limits follow the ground truth timed on this machine; EvalPlus's 60 s cap is absolute, so
    on a slow machine a suite whose ground truth alone needs most of it (Mbpp/599's: 56-60 CPU s on a slow
    day of this VM) times out a sample that is as fast as the ground truth.  Raising the cap to the same
    factor the inputs get keeps that verdict independent of the machine.  The harness adds 1 s to
    EvalPlus's 1 s for the program's load (2 s with ``details``: EvalPlus's own extra second there).
    """
    cap = max(options.suite_cap, options.time_limit_factor * sum(ground_truth))
    return min(cap, sum(limits)) + (3.0 if details else 2.0)


class EvalPlusBenchmark(Benchmark):
    """Shared grader of HumanEval+ and MBPP+; subclasses vary data and rules."""

    reference_grader = "EvalPlus 0.3.1"
    #: 2: the suite cap is never below time_limit_factor x the suite's ground truth (suite_budget).
    grader_version = "2"

    release: data.ReleaseFile
    dataset_key: str = ""
    Options = EvalPlusOptions
    suites = ("base", "plus")
    default = True
    breakdowns = ()

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self._data_dir = data_dir
        self._expected: dict[str, dict[str, Any]] | None = None
        self._payloads: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._saver: threading.Thread | None = None
        self._oracles: dict[tuple[str, str], _SuiteOracle] = {}
        self._gt_groups: list[list[tuple[str, str, int, int]]] = []
        self._claim: _ComputeClaim | None = None
        self.prepare_seconds = 0.0

    # ------------------------------------------------------------ data
    @cached_property
    def path(self) -> Path:
        """Local path of the release file."""
        return data.resolve(self.release, self._data_dir)

    @cached_property
    def _rows(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        try:
            for line in data.read_text(self.path).splitlines():
                if line.strip():
                    row = json.loads(line)
                    rows[row["task_id"]] = row
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise HarnessError(
                f"{self.path} is not a readable {self.release.name} file ({exc}); delete it to re-download"
            ) from None
        for row in rows.values():
            for key in ("prompt", "canonical_solution", "entry_point", "base_input", "plus_input", "atol"):
                if key not in row:
                    raise HarnessError(
                        f"{self.path}: task {row['task_id']} lacks {key!r}; is this {self.release.name}?"
                    )
            row["base_input"] = self.rebuild_inputs(row["task_id"], row["base_input"])
            row["plus_input"] = self.rebuild_inputs(row["task_id"], row["plus_input"])
        return rows

    def rebuild_inputs(self, task_id: str, inputs: list[Any]) -> list[Any]:
        """Turn stored inputs into the Python values the functions receive."""
        return inputs

    def reference_items(self) -> list[tuple[str, str, str]]:
        """Prompt, canonical solution, the original tests (HumanEval's ``check``, MBPP's assertions), and the
        parts that leak on their own (:meth:`reference_parts`)."""
        items = super().reference_items()
        for tid, row in self._rows.items():
            tests = row.get("test") or row.get("assertion")
            if isinstance(tests, str) and tests.strip():
                items.append((tid, "tests", tests))
            items += self.reference_parts(tid, row)
        return items

    def reference_parts(self, task_id: str, row: dict[str, Any]) -> list[tuple[str, str, str]]:
        """A task's finer decontamination parts (see :mod:`harness.decontamination.parts`); none by default."""
        return []

    def results_entry(self, task_id: str, program: str, verdict: Verdict) -> dict[str, Any]:
        """A program's entry in EvalPlus's ``eval_results.json`` schema, so its tooling reads ours."""
        entry: dict[str, Any] = {"task_id": task_id, "solution": program}
        for phase in ("base", "plus"):
            part = verdict.parts.get(phase)
            if part is None:
                entry[f"{phase}_status"] = None
                entry[f"{phase}_fail_tests"] = []
                continue
            entry[f"{phase}_status"] = part.status
            fails = [i for i in part.failed if i >= 0]
            entry[f"{phase}_fail_tests"] = self.serialize_inputs(task_id, [self.inputs(task_id, phase)[i] for i in fails])
        return entry

    def serialize_inputs(self, task_id: str, inputs: list[Any]) -> list[Any]:
        """Failing inputs as EvalPlus writes them in ``eval_results.json``."""
        return [_jsonable(i) for i in inputs]

    def problems(self) -> dict[str, Problem]:
        """All tasks by id, in dataset order."""
        return {
            tid: Problem(tid, r["prompt"], r["entry_point"], r["canonical_solution"], {"atol": r["atol"]})
            for tid, r in self._rows.items()
        }

    @cached_property
    def _hash(self) -> str:
        return data.content_md5(self.path)

    def dataset(self) -> DatasetInfo:
        """The dataset in use, with its EvalPlus-compatible hash."""
        return DatasetInfo(name=self.release.name, version=self.release.version, hash=self._hash, path=str(self.path))

    def program(self, problem: Problem, solution: str | None, completion: str | None) -> str:
        """``solution`` or ``prompt + completion``, markdown fences removed."""
        return program_for(Sample(0, problem.task_id, solution, completion), problem.prompt, problem.entry_point)

    def inputs(self, task_id: str, phase: str) -> list[Any]:
        """The inputs of one suite (``base`` or ``plus``)."""
        return self._rows[task_id][f"{phase}_input"]

    def test_case(self, task_id: str, suite: str, index: int) -> dict[str, Any] | None:
        """The failing input as a call (``f(1, [2])``) for reports; the expected value when the expected outputs
        are already in memory (loading the cache for a report would read hundreds of MB)."""
        try:
            args = self.inputs(task_id, suite)[index]
        except (KeyError, IndexError, TypeError):
            return None
        row = self._rows[task_id]
        out: dict[str, Any] = {"input": f"{row['entry_point']}({', '.join(repr(a) for a in args)})"}
        try:
            if self._expected is not None and task_id in self._expected:
                raw = self._expected[task_id][suite][index]
            else:
                raw = self._expected_at(task_id, suite, index)
            if raw is not None:
                out["expected"] = repr(codec.decode(raw))
        except Exception:  # noqa: BLE001 - an unreadable value leaves the input to show
            pass
        return out

    def _expected_at(self, task_id: str, phase: str, index: int) -> bytes | None:
        """One expected output read from the cache file by seeking (a report needs a few values of a file of
        hundreds of MB). Not checksummed: it is shown, never graded with; grading verifies the whole file."""
        offsets = getattr(self, "_expected_offsets", None)
        if offsets is None:
            offsets = self._expected_offsets = {}  # filled in place: a damaged file is scanned once, not per value
            path = self.expected_cache_path()
            if path.is_file():
                with open(path, "rb") as f:
                    f.readline()  # the file's header
                    while True:
                        line = f.readline()
                        head = json.loads(line) if line.strip() else {}
                        if "task_id" not in head:
                            break  # the checksum trailer (or the end)
                        spots = []
                        for _ in range(int(head["n"])):
                            (size,) = _RECORD.unpack(f.read(_RECORD.size))
                            spots.append((f.tell(), size))
                            f.seek(size, os.SEEK_CUR)
                        offsets[(head["task_id"], head["phase"])] = spots
        spots = offsets.get((task_id, phase))
        if not spots or not 0 <= index < len(spots):
            return None
        start, size = spots[index]
        with open(self.expected_cache_path(), "rb") as f:
            f.seek(start)
            return f.read(size)

    def _payload(self, task_id: str, phase: str) -> Callable[[], bytes]:
        key = f"{task_id}:{phase}"

        def make() -> bytes:
            with self._lock:
                if key not in self._payloads:
                    self._payloads[key] = encode_inputs(self.inputs(task_id, phase))
                return self._payloads[key]

        return make

    def _inputs_key(self, task_id: str, phase: str) -> str:
        return f"{self.dataset_key}:{self._hash}:{task_id}:{phase}"

    # ------------------------------------------------- expected outputs
    def expected_cache_path(self) -> Path:
        """Where expected outputs for this dataset hash are cached."""
        return data.cache_dir() / "expected" / f"{self.dataset_key}-{self._hash}-v{EXPECTED_FORMAT}.bin"

    def prepare(self, sandbox: Sandbox) -> float:
        """Load or compute the expected outputs up front; returns seconds spent.

        :meth:`grade` needs no call to this: on a cache miss it computes the
        expected outputs in the same sandbox run as the grading, so a task's
        samples start as soon as its expected outputs exist.
        """
        start = time.perf_counter()
        if self._must_compute():
            try:
                self._expected = {}
                results = sandbox.run_calls(self._expected_jobs(list(self._rows)))
                for k, res in enumerate(results):
                    self._store_expected(k, res)
            except BaseException:
                self._expected = None
                self._release_claim()
                raise
            self._save_in_background()
        return time.perf_counter() - start

    def _must_compute(self) -> bool:
        """Whether this process computes the expected outputs now: not in memory, not cached, and no other
        process computing them (one that is, is waited for and its file loaded: two runs started at once on one
        machine compute them once)."""
        if self._expected is not None or self._load_cached():
            return False
        claim = _ComputeClaim.take(self.expected_cache_path(), self.release.name)
        if claim is not None and self._load_cached():  # written while this process waited (or just before)
            claim.release()
            return False
        self._claim = claim
        return True

    def _release_claim(self) -> None:
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.release()

    def _load_cached(self) -> bool:
        path = self.expected_cache_path()
        if not path.is_file():
            return False
        try:
            self._expected = self._load_expected(path)
            return True
        except ChecksumError as exc:
            print(f"warning: {exc}; recomputing the expected outputs", file=sys.stderr)
            self._expected = None
            return False
        except (OSError, ValueError, KeyError, TypeError):
            self._expected = None  # a damaged or stale cache is recomputed
            return False

    def _expected_jobs(self, task_ids: list[str]) -> list[CallJob]:
        """Jobs computing expected outputs: several tasks per process, as EvalPlus
        computes them all in one (a process per suite would cost more than
        most suites)."""
        self._gt_groups = []
        group: list[tuple[str, str, int, int]] = []
        size = 0
        for tid in task_ids:
            for phase in PHASES:
                n = len(self._rows[tid][f"{phase}_input"])
                group.append((tid, phase, size, size + n))
                size += n
            if size >= _EXPECTED_GROUP_INPUTS:
                self._gt_groups.append(group)
                group, size = [], 0
        if group:
            self._gt_groups.append(group)
        return [self._expected_job(g, k) for g, k in zip(self._gt_groups, range(len(self._gt_groups)))]

    def _expected_job(self, group: list[tuple[str, str, int, int]], number: int) -> CallJob:
        sources = [(self._rows[tid]["prompt"] + self._rows[tid]["canonical_solution"], self._rows[tid]["entry_point"])
                   for tid, _, _, _ in group]  # fmt: skip
        calls = [
            [k, list(args)] for k, (tid, phase, _, _) in enumerate(group) for args in self._rows[tid][f"{phase}_input"]
        ]
        n = len(calls)
        return CallJob(
            code=_EXPECTED_DISPATCH.format(sources=sources),
            entry_point="__harness_expected__",
            inputs_key=f"{self.dataset_key}:{self._hash}:expected:{number}",
            inputs_payload=lambda: encode_inputs(calls),
            limits=[120.0] * n,
            costs=[0.001] * n,  # unknown until measured; below the "slow input" mark so results batch
            exec_limit=120.0,
            fast=False,
            keep_outputs=True,
            priority=0,
            footprint=True,
            resets=[start for _, _, start, _ in group],
        )

    def _store_expected(self, k: int, res: CallResult) -> list[str]:
        """Record the expected outputs of the k-th expected-output job; returns the tasks it completed."""
        assert self._expected is not None
        done = []
        for tid, phase, start, end in self._gt_groups[k]:
            failed = [i - start for i in res.failed if start <= i < end]
            if res.error or failed:
                why = res.error or "; ".join(f"input {i}: {res.reasons.get(i + start, '')}" for i in failed[:2])
                raise HarnessError(
                    f"the canonical solution of {tid} fails on its {phase} inputs ({why}); the dataset file may be damaged"
                )
            encoded: list[bytes] = res.outputs[start:end]
            if self._rows[tid]["entry_point"] in self.not_none_entry_points():
                encoded = [codec.encode(codec.decode(o) is not None) for o in encoded]
            entry = self._expected.setdefault(tid, {})
            entry[phase] = encoded
            entry[f"{phase}_time"] = res.times[start:end]
            entry[f"{phase}_footprint"] = sum(res.footprints[start:end])
            if all(p in entry for p in PHASES):
                done.append(tid)
        return done

    def not_none_entry_points(self) -> frozenset[str]:
        """Entry points whose expected output is only 'is not None'."""
        return frozenset()

    def _save_in_background(self) -> None:
        # Writing ~100s of MB must not delay grading.
        expected = dict(self._expected or {})
        claim, self._claim = self._claim, None

        def save() -> None:
            try:
                self._save_expected(self.expected_cache_path(), expected)
            finally:
                if claim is not None:  # other processes waiting for the file now load it
                    claim.release()

        # Not a daemon (it may start in a sandbox thread, which is one): the process waits for the file at exit.
        self._saver = threading.Thread(target=save, daemon=False)
        self._saver.start()

    def _save_expected(self, path: Path, expected: dict[str, dict[str, Any]]) -> None:
        # A JSON header line, then per suite a JSON line (task, phase, count,
        # times) followed by that many length-prefixed encoded outputs.
        # Uncompressed on purpose: reading it back takes a fraction of a second.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            digest = hashlib.sha256()
            with open(tmp, "wb") as f:

                def write(data: bytes) -> None:
                    digest.update(data)
                    f.write(data)

                write(json.dumps({"hash": self._hash, "format": EXPECTED_FORMAT}).encode() + b"\n")
                for tid, e in expected.items():
                    for phase in PHASES:
                        head = {
                            "task_id": tid,
                            "phase": phase,
                            "n": len(e[phase]),
                            "time": e[f"{phase}_time"],
                            "footprint": e[f"{phase}_footprint"],
                        }
                        write(json.dumps(head).encode() + b"\n")
                        for out in e[phase]:
                            write(_RECORD.pack(len(out)))
                            write(out)
                f.write(json.dumps({"sha256": digest.hexdigest()}).encode() + b"\n")
            os.replace(tmp, path)
        except OSError as exc:
            # An unwritable cache only costs the next run the computation, but say so: every run pays it.
            print(f"warning: the expected outputs could not be cached in {path.parent} ({exc.strerror or exc}); "
                  "every run computes them again until there is room", file=sys.stderr)  # fmt: skip
        finally:
            if tmp.exists():
                tmp.unlink()

    def wait_saved(self) -> None:
        """Block until a background cache write has finished."""
        if self._saver is not None:
            self._saver.join()

    def _load_expected(self, path: Path) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        digest = hashlib.sha256()
        checked = False
        with open(path, "rb") as f:

            def read(n: int | None = None) -> bytes:
                data = f.readline() if n is None else f.read(n)
                digest.update(data)
                return data

            head = json.loads(read())
            if head.get("hash") != self._hash or head.get("format") != EXPECTED_FORMAT:
                raise ValueError("stale expected-output cache")
            while True:
                line = f.readline()
                if not line:
                    break
                suite = json.loads(line)
                if "sha256" in suite:  # the trailer: everything before it must hash to this
                    if suite["sha256"] != digest.hexdigest():
                        raise ChecksumError(f"the expected-output cache {path} failed its checksum (damaged)")
                    checked = True
                    break
                digest.update(line)
                values = []
                for _ in range(int(suite["n"])):
                    size_bytes = read(_RECORD.size)
                    if len(size_bytes) != _RECORD.size:
                        raise ValueError("truncated expected-output cache")
                    (size,) = _RECORD.unpack(size_bytes)
                    value = read(size)
                    if len(value) != size:
                        raise ValueError("truncated expected-output cache")
                    values.append(value)
                entry = out.setdefault(suite["task_id"], {})
                entry[suite["phase"]] = values
                entry[f"{suite['phase']}_time"] = [float(t) for t in suite["time"]]
                entry[f"{suite['phase']}_footprint"] = int(suite["footprint"])
        if not checked:
            raise ChecksumError(f"the expected-output cache {path} has no checksum trailer (truncated)")
        if set(out) != set(self._rows) or any(len(e) != 3 * len(PHASES) for e in out.values()):
            raise ValueError("expected-output cache does not cover the dataset")
        return out

    # -------------------------------------------------------- grading
    def limits(self, task_id: str, phase: str, options: GradeOptions | None = None) -> list[float]:
        """Per-input CPU-second limits: ``max(min_time_limit, factor * ground truth)``."""
        assert self._expected is not None
        o: EvalPlusOptions = self.options  # type: ignore[assignment]
        return [max(o.min_time_limit, o.time_limit_factor * t) for t in self._expected[task_id][f"{phase}_time"]]

    def compare(self, entry: str, out: Any, exp: Any, inp: Sequence[Any], atol_before: float, atol: float) -> bool:
        """EvalPlus's output rule for one input (special oracles in subclasses)."""
        exact = out == exp
        return self._tolerance(out, exp, exact, atol)

    @staticmethod
    def _tolerance(out: Any, exp: Any, exact: Any, atol: float) -> bool:
        if not exact and atol != 0:
            if type(out) is not type(exp):
                return False
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                return False
            return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
        return bool(exact)

    def byte_equal_passes(self, entry: str) -> bool:
        """Whether an output byte-identical to the expected one passes without decoding."""
        return True

    def _check(self, task_id: str, phase: str) -> _Judge:
        assert self._expected is not None
        with self._lock:  # one oracle per suite, shared by every sample's job
            oracle = self._oracles.get((task_id, phase))
            if oracle is None:
                oracle = _SuiteOracle(self._expected[task_id][phase], float(self._rows[task_id]["atol"]))
                self._oracles[(task_id, phase)] = oracle
        row = self._rows[task_id]
        return _Judge(self, oracle, row[f"{phase}_input"], row["entry_point"], self.byte_equal_passes(row["entry_point"]))

    def _sample_jobs(
        self, tid: str, program: str, phases: Sequence[str], options: GradeOptions, cap: int,
        judges: dict[str, _Judge] | None = None,
    ) -> list[CallJob]:  # fmt: skip
        assert self._expected is not None
        row = self._rows[tid]
        free = None
        if self.options.memory_accounting == "evalplus":  # type: ignore[attr-defined]
            held = sum(self._expected[tid][f"{p}_footprint"] for p in PHASES)
            free = cap - EVALPLUS_CHECKER_BYTES - held
        jobs = []
        for phase in phases:
            limits = self.limits(tid, phase, options)
            budget = suite_budget(limits, self._expected[tid][f"{phase}_time"], self.options,  # type: ignore[arg-type]
                                  options.test_details)  # fmt: skip
            judge = self._check(tid, phase)
            if judges is not None:
                judges[phase] = judge
            jobs.append(
                CallJob(
                    code=program,
                    entry_point=row["entry_point"],
                    inputs_key=self._inputs_key(tid, phase),
                    inputs_payload=self._payload(tid, phase),
                    limits=limits,
                    costs=[max(t, 1e-4) for t in self._expected[tid][f"{phase}_time"]],
                    budget=budget,
                    exec_limit=budget,
                    fast=not options.test_details,
                    iterate_opaque=row["entry_point"] in self.set_eq_entry_points(),
                    check=judge,
                    memory_free=free,
                    prelude=EVALPLUS_GUARD_PRELUDE,
                )
            )
        return jobs

    def phases(self) -> tuple[str, ...]:
        """The suites graded: base and plus, or base alone with ``base_only``."""
        return ("base",) if self.options.base_only else PHASES  # type: ignore[attr-defined]

    def setup_jobs(self, sandbox: Sandbox, task_ids: Sequence[str], options: GradeOptions) -> list[SetupJob]:
        """Expected outputs, when not cached: computed in the same sandbox run as the grading."""
        if not self._must_compute():
            return []
        self._expected = {}
        jobs = self._expected_jobs(list(self._rows))
        left = [len(jobs)]

        def done(k: int, res: CallResult) -> list[str]:
            try:
                tids = self._store_expected(k, res)
            except BaseException:
                self._release_claim()  # a damaged dataset: the waiting processes find no file and say so themselves
                raise
            left[0] -= 1
            if left[0] == 0:
                self._save_in_background()
            return tids

        return [SetupJob(job, lambda res, k=k: done(k, res)) for k, job in enumerate(jobs)]

    def jobs(self, task_id: str, program: str, state: Any, ctx: GradeContext) -> list[CallJob]:
        """One call job per suite, over its inputs, judged by EvalPlus's rules outside the program."""
        judges: dict[str, _Judge] = {}
        ctx.memo["judges"] = judges  # what they saw of failing outputs goes into the verdict's details
        return self._sample_jobs(task_id, program, self.phases(), ctx.options, ctx.memory_bytes, judges)

    def verdict(self, task_id: str, program: str, state: Any, results: Sequence[CallResult], ctx: GradeContext
                ) -> Verdict:  # fmt: skip
        """Each suite's status; the program passes when every suite passes."""
        phases = self.phases()
        parts: dict[str, PartVerdict] = {}
        load_error = next((res for res in results if res.error), None)
        judges: dict[str, _Judge] = ctx.memo.get("judges", {})
        for phase, res in zip(phases, results):
            judge = judges.get(phase)
            details = judge.details.of(res.failed) if judge is not None else {}
            parts[phase] = PartVerdict(status=res.status, failed=res.failed, reasons=res.reasons, cpu_seconds=res.cpu,
                                       details=details)  # fmt: skip
            if res.error:
                parts[phase].reasons.setdefault(-1, res.error)
            elif load_error is not None and not self.inputs(task_id, phase):
                # A suite without inputs never runs the program here, but EvalPlus executes the program for
                # it all the same: a program that does not load fails that suite too (Mbpp/793's plus suite).
                status = "timeout" if load_error.status == "timeout" else "fail"
                parts[phase] = PartVerdict(status=status, reasons={-1: load_error.error or status})
        return _overall(parts, phases)

    def reply_sample(self, problem: Problem, reply: str) -> dict[str, str]:
        """The official rule for a whole reply (no response prefix: reasoning prompts, ``--extract official``):
        EvalPlus's sanitizer, as ``evalplus.codegen`` applies it to a chat model's output."""
        from harness.extraction import evalplus_sanitize

        return {"solution": evalplus_sanitize(reply, problem.entry_point)}

    @classmethod
    def oracle_options(cls) -> dict[str, Any]:
        """Canonical solutions get the whole memory cap: under EvalPlus's accounting Mbpp/255's own reference
        solution does not fit in what EvalPlus's checker leaves free."""
        return {"memory_accounting": "program"}

    def set_eq_entry_points(self) -> frozenset[str]:
        """Entry points compared as ``set(out) == set(exp)``."""
        return frozenset()


class _Judge:
    """EvalPlus's output rule for one sample's suite, applied in the harness to each encoded output; keeps, for the
    first failing inputs, the call, the expected value and what the program returned (:class:`FailureDetails`)."""

    def __init__(self, bench: EvalPlusBenchmark, oracle: _SuiteOracle, inputs: Sequence[Any], entry: str,
                 shortcut: bool) -> None:  # fmt: skip
        self.bench, self.oracle, self.inputs, self.entry, self.shortcut = bench, oracle, inputs, entry, shortcut
        self.details = FailureDetails()

    def __call__(self, i: int, payload: bytes) -> bool:
        oracle = self.oracle
        # Identical plain encodings decode to identical values, which are
        # equal (NaN aside), so the common case needs no decoding.
        if self.shortcut and payload == oracle.raw[i] and oracle.equality_suffices(i):
            return True
        try:
            out = codec.decode(payload)
        except (ValueError, TypeError, RecursionError, OverflowError):
            self.details.keep(i, lambda: self._shown(i, "(an output that could not be decoded)"))
            return False
        before, atol = oracle.atol(i)
        ok = self.bench.compare(self.entry, out, oracle.value(i), self.inputs[i], before, atol)
        if not ok:
            self.details.keep(i, lambda: self._shown(i, shown_value(out)))
        return ok

    def _shown(self, i: int, returned: str) -> dict[str, str]:
        call = f"{self.entry}({', '.join(shown_value(a) for a in self.inputs[i])})"
        return {"input": shown_text(call), "expected": shown_value(self.oracle.value(i)), "returned": returned}


class _SuiteOracle:
    """Expected outputs of one suite, decoded only when a comparison needs them."""

    def __init__(self, raw: list[bytes], atol: float) -> None:
        self.raw = raw
        self.task_atol = atol
        self._values: dict[int, Any] = {}
        self._plain: dict[int, bool] = {}
        self._atols: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def equality_suffices(self, i: int) -> bool:
        """Whether an output byte-identical to expected output ``i`` certainly passes."""
        flag = self._plain.get(i)
        if flag is None:
            raw = self.raw[i]
            flag = self._plain[i] = codec.is_plain(raw) and not _may_hold_nan(raw)
        return flag

    def value(self, i: int) -> Any:
        with self._lock:
            if i not in self._values:
                self._values[i] = codec.decode(self.raw[i])
            return self._values[i]

    def atol(self, i: int) -> tuple[float, float]:
        """``(atol before, atol after)`` input ``i``: EvalPlus switches a zero atol to
        1e-6 for the rest of the suite once an expected output is a float."""
        while len(self._atols) <= i:
            j = len(self._atols)
            before = self._atols[-1][1] if self._atols else self.task_atol
            after = before
            if before == 0 and b"G" in self.raw[j] and _is_floats(self.value(j)):
                after = 1e-6
            self._atols.append((before, after))
        return self._atols[i]


def _may_hold_nan(raw: bytes) -> bool:
    # Pickled floats are b"G" + 8 big-endian bytes; NaNs (and infinities and
    # huge floats, harmlessly) start with 0x7f or 0xff.
    return _NAN_PATTERN.search(raw) is not None


def _overall(parts: dict[str, PartVerdict], phases: Sequence[str]) -> Verdict:
    statuses = [parts[p].status for p in phases]
    if all(s == "pass" for s in statuses):
        status = "pass"
    elif "fail" in statuses:
        status = "fail"
    else:
        status = "timeout"
    return Verdict(status=status, parts=parts)


class HumanEvalPlus(EvalPlusBenchmark):
    """HumanEval+ v0.1.10 (164 tasks)."""

    name = "humaneval"
    title = "HumanEval+"
    display_order = 10
    columns = (Column(suite="base", title="HumanEval"), Column(suite="plus", title="HumanEval+"))
    release = HUMANEVAL_PLUS
    dataset_key = "humanevalplus"

    def reference_parts(self, task_id: str, row: dict[str, Any]) -> list[tuple[str, str, str]]:
        """The entry point's docstring text (up to its examples) and its signature."""
        from harness.decontamination.parts import docstring_and_signature

        doc, signature = docstring_and_signature(row["prompt"], row["entry_point"])
        return [(task_id, part, text) for part, text in (("docstring", doc), ("signature", signature)) if text]

    def prompt(self, problem: Problem, style: str) -> Prompt:
        """EvalPlus's base-model stops for HumanEval; StarCoder2-Instruct's chat prompt."""
        p = super().prompt(problem, style)
        if style == "base":
            return Prompt(text=p.text, stop=p.stop + ("\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert "))
        return p

    def byte_equal_passes(self, entry: str) -> bool:
        """find_zero is judged by its formula, never by equality."""
        return entry != "find_zero"

    def compare(self, entry: str, out: Any, exp: Any, inp: Sequence[Any], atol_before: float, atol: float) -> bool:
        """HumanEval/32 accepts any root: ``|poly(xs, x)| <= atol`` (fixed after EvalPlus 0.3.1)."""
        if entry == "find_zero":
            if isinstance(out, bool) or not isinstance(out, (int, float)):
                return False
            return abs(_poly(*inp, out)) <= atol
        return super().compare(entry, out, exp, inp, atol_before, atol)


class MbppPlus(EvalPlusBenchmark):
    """MBPP+ v0.2.0 (378 tasks)."""

    name = "mbpp"
    title = "MBPP+"
    display_order = 20
    columns = (Column(suite="base", title="MBPP"), Column(suite="plus", title="MBPP+"))
    release = MBPP_PLUS
    dataset_key = "mbppplus"

    def reference_parts(self, task_id: str, row: dict[str, Any]) -> list[tuple[str, str, str]]:
        """The problem statement, and each assertion (the prompt's and the original tests') on its own."""
        from harness.decontamination.parts import assertion_lines, statement_before_asserts

        parts = [(task_id, "statement", statement_before_asserts(row["prompt"]))]
        asserts = dict.fromkeys(assertion_lines(row["prompt"]) + assertion_lines(row.get("assertion") or ""))
        parts += [(task_id, f"assertion:{k}", text) for k, text in enumerate(asserts)]
        return [p for p in parts if p[2]]

    def prompt(self, problem: Problem, style: str) -> Prompt:
        """EvalPlus's base-model stops for MBPP; StarCoder2-Instruct's chat prompt (description + assertion)."""
        if style == "base":
            return Prompt(text=problem.prompt.strip() + "\n", stop=DEFAULT_BASE_STOP + ('\n"""', "\nassert"))
        if style != "instruct":
            return super().prompt(problem, style)
        body = problem.prompt.strip().strip('"').strip()
        description, sep, assertion = body.partition("assert")
        description = description.strip()
        if description and not description.endswith("."):
            description += "."
        instruction = description
        if sep:
            instruction += (
                f"\n\nYour code should pass the following assertion:\n```python\n{(sep + assertion).strip()}\n```"
            )
        return Prompt(instruction=instruction, response_prefix="```python\n", stop=("\n```",))

    def rebuild_inputs(self, task_id: str, inputs: list[Any]) -> list[Any]:
        """Rebuild tuples, sets and complex numbers that the JSON file flattened."""
        return mbpp_inputs(int(task_id.split("/")[-1]), inputs)

    def serialize_inputs(self, task_id: str, inputs: list[Any]) -> list[Any]:
        """As EvalPlus 0.3.1 writes MBPP+ failing inputs."""
        number = int(task_id.split("/")[-1])
        if number == 115:
            return [[[list(x) for x in inp[0]]] for inp in inputs]
        if number == 124:
            return [[str(inp[0]), str(inp[1])] for inp in inputs]
        if number == 252:
            return [[str(inp[0])] for inp in inputs]
        return super().serialize_inputs(task_id, inputs)

    def byte_equal_passes(self, entry: str) -> bool:
        """``set(out)`` may raise even on the expected value itself, so set tasks always compare."""
        return entry not in MBPP_SET_EQ

    def not_none_entry_points(self) -> frozenset[str]:
        """MBPP+ tasks whose outputs are only checked for being not ``None``."""
        return MBPP_NOT_NONE

    def set_eq_entry_points(self) -> frozenset[str]:
        """MBPP+ tasks compared as sets."""
        return MBPP_SET_EQ

    def compare(self, entry: str, out: Any, exp: Any, inp: Sequence[Any], atol_before: float, atol: float) -> bool:
        """MBPP+'s special oracles, then the common rule."""
        exact = out == exp
        if entry == "are_equivalent":  # Mbpp/164: any answer is accepted
            exact = True
        elif entry == "sum_div":  # Mbpp/295
            exact = exact or out == 0
        elif entry == "surface_Area":  # Mbpp/581
            exact = exact or abs(out - _surface_area(*inp)) <= atol_before
        elif entry == "digit_distance_nums":  # Mbpp/558
            exact = exact or out == _digit_distance(*inp)
        elif entry in MBPP_SET_EQ:
            exact = set(out) == set(exp)
        elif entry in MBPP_NOT_NONE:
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        return self._tolerance(out, exp, exact, atol)

