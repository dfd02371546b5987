"""DS-1000: 1000 data-science problems (numpy, pandas, scipy, scikit-learn, matplotlib, torch, tensorflow).

A problem is graded the way DS-1000's own evaluator grades it: the answer is
cleaned up by DS-1000's post-processing rules (see :func:`postprocess`), the
problem's ``code_context`` (its test harness) is followed by a driver that
calls ``test_execution(answer)`` and, where the context defines it,
``test_string(answer)``, and the whole program runs as one script; it passes
when it finishes without an exception.  Each program runs in its own process,
forked in the sandbox from a worker of the managed ``ds1000`` environment
(``harness env create ds1000``), whose interpreter has the library versions
DS-1000 pins (or the nearest available, listed in the run's notes).

Differences from DS-1000's evaluator, on purpose:

* The 120 s limit is CPU time of the program's process (wall clock: 3x that),
  so a busy machine does not turn slow answers into failures.
* Workers import the thread-free libraries (numpy, pandas, scipy, sklearn,
  matplotlib, seaborn) once and fork a fresh process per program, instead of
  importing them afresh per problem; numpy's global random state is reseeded
  from the OS in each program, as a fresh import would seed it.
* An answers line whose ``code`` is a list is graded as that many samples
  of the problem (pass@1 is their mean); DS-1000's script grades only the
  first.  With one answer per line, as published, the two agree.
* Problems whose libraries the environment lacks (an environment built with
  ``--libraries``) are not graded: their samples are listed as skipped, with
  the reason, and the scores cover the graded problems only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field

from harness import data, envs
from harness.benchmark import (
    Benchmark,
    BenchmarkOptions,
    DatasetInfo,
    GradeContext,
    PartVerdict,
    Problem,
    Prompt,
    Verdict,
)
from harness.envs import EnvSpec, Requirement
from harness.errors import HarnessError
from harness.execution import SandboxSettings, ScriptJob, ScriptResult
from harness.samples import BadLine, Sample

DS1000_RELEASE = data.ReleaseFile(
    name="DS-1000",
    version="2024",  # the reformatted release (one jsonl.gz file with code_context per problem)
    subdir="ds1000",
    filename="ds1000.jsonl.gz",
    url="https://github.com/xlang-ai/DS-1000/raw/main/data/ds1000.jsonl.gz",
)

#: DS-1000's ``environment.yml`` (Python 3.10, conda); tensorflow-cpu comes from pip there too.
ENVIRONMENT = EnvSpec(
    name="ds1000",
    source="DS-1000 environment.yml",
    requirements=(
        Requirement("numpy", "1.26.4", "numpy"),
        Requirement("pandas", "1.5.3", "pandas"),
        Requirement("scipy", "1.12.0", "scipy"),
        Requirement("scikit-learn", "1.4.0", "sklearn", ("sklearn",)),
        Requirement("matplotlib", "3.8.4", "matplotlib"),
        Requirement("seaborn", "0.13.2", "seaborn"),
        Requirement("statsmodels", "0.14.1", "statsmodels"),
        Requirement("xgboost", "2.0.3", "xgboost"),
        Requirement("gensim", "4.3.2", "gensim"),
        Requirement("torch", "2.2.0", "torch", ("pytorch",), cpu_build=True),
        Requirement("tensorflow-cpu", "2.16.1", "tensorflow", ("tensorflow", "tf", "keras")),
        # environment.yml's unversioned ``yaml``; one problem's own test parses YAML.
        Requirement("pyyaml", None, "yaml", ("yaml",)),
    ),
    # Imported by each worker once, then inherited by every forked program.
    preload=(
        "numpy",
        "pandas",
        "scipy",
        "scipy.stats",
        "scipy.sparse",
        "scipy.optimize",
        "scipy.spatial",
        "scipy.interpolate",
        "scipy.integrate",
        "scipy.signal",
        "sklearn",
        "sklearn.linear_model",
        "sklearn.preprocessing",
        "sklearn.model_selection",
        "sklearn.feature_extraction.text",
        "matplotlib",
        "matplotlib.pyplot",
        "PIL.Image",
        "seaborn",
        "tokenize",
        "copy",
        "io",
    ),  # fmt: skip
    # torch and tensorflow start native threads at import unless the thread
    # counts below are 1 (measured: 2 and 3 threads otherwise), and a thread
    # does not survive fork; so they are preloaded only where a probe at
    # build time saw their import start none (see ``fork_safe``).
    preload_if_threadless=("torch", "tensorflow"),
    env=(
        ("MPLBACKEND", "Agg"),
        ("TF_CPP_MIN_LOG_LEVEL", "3"),
        ("CUDA_VISIBLE_DEVICES", "-1"),
        ("KMP_DUPLICATE_LIB_OK", "TRUE"),
        ("OMP_NUM_THREADS", "1"),
        ("OPENBLAS_NUM_THREADS", "1"),
        ("MKL_NUM_THREADS", "1"),
        ("TF_NUM_INTEROP_THREADS", "1"),
        ("TF_NUM_INTRAOP_THREADS", "1"),
        ("TF_ENABLE_ONEDNN_OPTS", "0"),
        ("PYTHONWARNINGS", "ignore"),
    ),
    # seaborn.load_dataset (14 plotting problems) and sklearn's fetch_*
    # (one problem) read these caches before they go to the network.
    fetches=(
        (
            "seaborn example datasets",
            "seaborn-data",
            "SEABORN_DATA",
            "import seaborn\nfor n in ('tips', 'penguins', 'exercise', 'planets'):\n"
            "    seaborn.load_dataset(n, data_home=DATA)",
        ),
        (
            "scikit-learn California housing",
            "scikit_learn_data",
            "SCIKIT_LEARN_DATA",
            "from sklearn.datasets import fetch_california_housing\nfetch_california_housing(data_home=DATA)",
        ),
    ),  # fmt: skip
)


#: DS-1000's per-problem limit (seconds); here CPU seconds.
TIME_LIMIT = 120.0

#: Stops for base models, as DS-1000 generated its Codex answers: the end of the code block.
BASE_STOP: tuple[str, ...] = ("</code>", "# SOLUTION END", "\nEND SOLUTION", "<|endoftext|>", "</s>")

# Import names that the environment provides besides each requirement's own
# (pillow arrives with matplotlib, keras with tensorflow).
_EXTRA_MODULES = {"PIL": "matplotlib", "mpl_toolkits": "matplotlib", "keras": "tensorflow-cpu"}

_IMPORT = re.compile(r"^\s*(?:import\s+([^#\n]+)|from\s+([\w.]+)\s+import\b)", re.MULTILINE)

# Test contexts that download data (seaborn example datasets, sklearn's fetch_*).
_NETWORK = re.compile(r"\bload_dataset\(|\bfetch_\w+\(")

# Rough CPU cost per library (seconds), to start expensive programs first.
_COST = {"Tensorflow": 6.0, "Pytorch": 3.0, "Matplotlib": 1.0, "Sklearn": 0.8}


def postprocess(code: str | list[str]) -> str:
    """Clean an answer as DS-1000's evaluator does.

    A list means several answers of which DS-1000 grades the first.  The
    answer is cut at ``</code>``, every opening ```` ```python ```` fence is
    dropped, the answer is cut at the next fence and at a line starting
    ``END SOLUTION``, and every ``<code>`` is dropped, in that order.
    """
    if isinstance(code, list):
        code = code[0] if code else ""
    code = code.partition("</code>")[0]
    code = code.replace("```python", "")
    code = code.partition("```")[0]
    code = code.partition("\nEND SOLUTION")[0]
    return code.replace("<code>", "")


def build_program(code_context: str, answer: str) -> str:
    """The program that grades ``answer``: the problem's test context plus a trusted driver.

    As DS-1000 builds it: the context, then ``test_execution`` on the answer
    and ``test_string`` where the context defines one.  Before the context,
    numpy's global random state (copied from the worker by fork) is reseeded
    from the OS, as a fresh interpreter would seed it.
    """
    prologue = (
        "import sys as _ds1000_sys\n"
        "if 'numpy' in _ds1000_sys.modules:\n"
        "    _ds1000_sys.modules['numpy'].random.seed()\n"
        "del _ds1000_sys\n"
    )
    checks = "    test_execution(_ds1000_answer)\n"
    if "test_string(" in code_context:
        checks += "    test_string(_ds1000_answer)\n"
    # DS-1000 counts any exception, SystemExit included, as a failure; the
    # sandbox would take a clean sys.exit(0) for a passing script.
    driver = (
        f"\n_ds1000_answer = {answer!r}\ntry:\n{checks}except SystemExit as _ds1000_exit:\n"
        "    raise RuntimeError(f'the answer exited (SystemExit: {_ds1000_exit.code})') from None\n"
    )
    return prologue + code_context + "\n" + driver


def required_modules(code_context: str) -> set[str]:
    """Top-level modules a problem's test context imports (in its own code and in the answer's context)."""
    found: set[str] = set()
    for m in _IMPORT.finditer(code_context):
        names = m.group(1).split(",") if m.group(1) else [m.group(2)]
        for name in names:  # "import a.b as c, d"
            words = name.split()
            if words and re.fullmatch(r"[\w.]+", words[0]):
                found.add(words[0].split(".")[0])
    return found


def downloads_data(code_context: str) -> bool:
    """Whether a problem's test context downloads data at run time (it fails where the data is not cached)."""
    return _NETWORK.search(code_context) is not None


def instruct_prompt(prompt: str) -> tuple[str, str]:
    """A DS-1000 prompt as a chat instruction and a response prefix (StarCoder2-Instruct's DS-1000 layout).

    The question becomes the instruction with its ``<code>`` blocks as
    Python fences; the response opens a Python fence with the problem's
    setup code and a ``# Solution`` comment, so the model writes the
    solution and closes the fence.  Plotting problems (``# SOLUTION START``)
    show their code as the task.
    """
    text = prompt.rstrip()
    if text.endswith("# SOLUTION START"):
        setup = text[: -len("# SOLUTION START")].strip()
        instruction = f"Write a solution to the following problem:\n```python\n{setup}\n```"
        return instruction, f"```python\n{setup}\n# Solution\n"
    cut = text.rfind("A:")
    question, answer = (text[:cut], text[cut + 2 :]) if cut >= 0 else (text, "")
    question = question.strip()
    if question.startswith("Problem:"):
        question = question[len("Problem:") :].strip()
    lines = answer.strip().splitlines()
    if lines and lines[-1].strip() == "### BEGIN SOLUTION":
        # A function to complete: keep its header, say where the body goes.
        indent = lines[-1][: len(lines[-1]) - len(lines[-1].lstrip())]
        body = [ln for ln in lines[:-1] if ln.strip() != "<code>"]
        response = "\n".join(body).strip("\n") + f"\n{indent}# Solution\n"
    else:
        # Setup code, then "result = ... # put solution in this variable" and
        # "BEGIN SOLUTION <code>": the setup stays, the rest becomes a hint.
        setup: list[str] = []
        hints: list[str] = []
        in_setup = False
        for ln in lines:
            s = ln.strip()
            if s == "<code>":
                in_setup = not setup and not hints
                continue
            if s == "</code>":
                in_setup = False
                continue
            if in_setup:
                setup.append(ln)
            elif s and s != "BEGIN SOLUTION":
                hints.append(f"# {s}")
        response = "\n".join(setup + hints).strip("\n") + "\n# Solution\n"
    fence = "```python\n"
    instruction = question.replace("<code>", "```python").replace("</code>", "```")
    return instruction, fence + response.replace("<code>", "").replace("</code>", "")


class DS1000Options(BenchmarkOptions):
    """Where the managed environment is."""

    env: str | None = Field(default=None, description="managed environment folder (default: the one "
                            "`harness env create ds1000` built)", json_schema_extra={"metavar": "DIR"})  # fmt: skip


class DS1000(Benchmark):
    """DS-1000 (1000 problems), graded in the managed ``ds1000`` environment."""

    reference_grader = "DS-1000's evaluator"

    name = "ds1000"
    title = "DS-1000"
    display_order = 40
    suites = ("base",)
    Options = DS1000Options
    environment_spec = ENVIRONMENT
    breakdowns = ("library", "perturbation_type")

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        env: str | os.PathLike[str] | None = None,
        require_env: bool = True,
        time_limit: float = TIME_LIMIT,
    ) -> None:
        """``env``: the managed environment's folder (default: where ``harness env create ds1000`` builds).

        With ``require_env`` (the default) a missing environment is an error
        now, before any generation or grading; prompts alone do not need it.
        """
        super().__init__(data_dir, env=None if env is None else str(env))
        self._data_dir = data_dir
        self._env_path = env
        self.time_limit = time_limit
        self.prepare_seconds = 0.0
        self._env: envs.EnvInfo | None = envs.require("ds1000", env) if require_env else envs.load("ds1000", env)

    @classmethod
    def for_reading(cls, data_dir: str | os.PathLike[str] | None = None) -> DS1000:
        """Problems and prompts need no managed environment (grading does)."""
        return cls(data_dir=data_dir, require_env=False)

    # ------------------------------------------------------------ data
    @cached_property
    def path(self) -> Path:
        """Local path of ``ds1000.jsonl.gz``."""
        return data.resolve(DS1000_RELEASE, self._data_dir)

    @cached_property
    def _rows(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        try:
            for line in data.read_text(self.path).splitlines():
                if line.strip():
                    row = json.loads(line)
                    rows[str(row["metadata"]["problem_id"])] = row
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            raise HarnessError(
                f"{self.path} is not a readable DS-1000 file ({exc}); delete it to re-download"
            ) from None
        for tid, row in rows.items():
            for key in ("prompt", "reference_code", "code_context"):
                if key not in row:
                    raise HarnessError(f"{self.path}: problem {tid} lacks {key!r}; is this DS-1000's ds1000.jsonl.gz?")
        return rows

    def reference_items(self) -> list[tuple[str, str, str]]:
        """Prompt and reference code, and each problem's description and code context on their own."""
        from harness.decontamination.parts import problem_description

        items = super().reference_items()
        for tid, r in self._rows.items():
            items += [(tid, "description", problem_description(r["prompt"])), (tid, "code_context", r["code_context"])]
        return [it for it in items if it[2]]

    def problems(self) -> dict[str, Problem]:
        """All problems by id (``"0"`` .. ``"999"``), with library and perturbation type in ``extra``."""
        return {
            tid: Problem(
                tid, r["prompt"], "", r["reference_code"], {**r["metadata"], "code_context": r["code_context"]}
            )
            for tid, r in self._rows.items()
        }

    @cached_property
    def _hash(self) -> str:
        return data.content_md5(self.path)

    def dataset(self) -> DatasetInfo:
        """The dataset file in use (MD5 of its decompressed content)."""
        return DatasetInfo(name=DS1000_RELEASE.name, version=DS1000_RELEASE.version, hash=self._hash,
                           path=str(self.path))  # fmt: skip

    # ------------------------------------------------------------ environment
    @property
    def environment(self) -> envs.EnvInfo:
        """The managed environment (an error naming ``harness env create ds1000`` when missing)."""
        if self._env is None:
            self._env = envs.require("ds1000", self._env_path)
        return self._env

    @cached_property
    def _known_modules(self) -> dict[str, str]:
        known = {r.module: r.dist for r in ENVIRONMENT.requirements}
        known.update(_EXTRA_MODULES)
        return known

    def missing_modules(self, task_id: str) -> list[str]:
        """Modules problem ``task_id`` needs that the environment lacks (empty: gradable)."""
        need = required_modules(self._rows[task_id]["code_context"])
        env = self.environment
        return sorted(m for m in need if m in self._known_modules and not env.has_module(m))

    @cached_property
    def _not_graded(self) -> dict[str, list[str]]:
        """Problem id -> missing modules, for the problems this environment cannot grade."""
        if self._env is None and envs.load("ds1000", self._env_path) is None:
            return {}  # no environment (prompts, formats): nothing is known to be missing
        out = {}
        for tid in self._rows:
            missing = self.missing_modules(tid)
            if missing:
                out[tid] = missing
        return out

    def sandbox_settings(self, base: SandboxSettings) -> SandboxSettings:
        """Workers run the environment's interpreter with the thread-free libraries preloaded."""
        env = self.environment
        preload = tuple(
            m for m in ENVIRONMENT.preload if env.has_module(m.split(".")[0]) or m in ("tokenize", "copy", "io")
        ) + tuple(env.fork_safe)
        extra = dict(base.env)
        extra.update(dict(ENVIRONMENT.env))
        extra.update(env.data_env(ENVIRONMENT))
        # DS-1000 sets no memory cap, and a program here starts with the preloaded libraries mapped
        # (about 1.5 GB of address space, measured): the cap, at least 8 GiB, only stops runaway programs.
        return replace(base, python=env.python, preload=preload, env=tuple(extra.items()),
                       memory_bytes=max(base.memory_bytes, 8 << 30))  # fmt: skip

    # ------------------------------------------------------------ samples
    def load_samples(self, path: Path, skip_bad: bool = False) -> tuple[list[Sample], list[BadLine]]:
        """Read DS-1000's answers format or the harness's samples format.

        DS-1000's format: one JSON object per line with ``code`` (a string, or a
        list of answers: each is graded as a sample of the problem) and the
        problem id in ``id`` or ``metadata.problem_id``.  The harness's format:
        ``task_id`` with ``solution`` or ``completion`` (the answer code).
        Samples of problems whose libraries the environment lacks come back
        as skipped lines with the reason; they are never graded as failures.
        """
        p = Path(path)
        if not p.is_file():
            raise HarnessError(f"samples file {p} does not exist" if not p.exists() else f"{p} is not a file")
        samples: list[Sample] = []
        bad: list[BadLine] = []
        with p.open("r", encoding="utf-8-sig", errors="replace") as f:
            for lineno, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError as exc:
                    bad.append(BadLine(lineno, None, f"not valid JSON ({exc.msg} at column {exc.colno})"))
                    continue
                got = _parse_row(row)
                if isinstance(got, str):
                    bad.append(BadLine(lineno, _task_of(row), got))
                    continue
                tid, answers = got
                samples.extend(Sample(lineno, tid, answer, None) for answer in answers)
        if bad and not skip_bad:
            shown = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:3])
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            raise HarnessError(
                f"{p} has {len(bad)} malformed line(s): {shown}{more}; fix them or pass --skip-bad-samples"
            )
        if not samples:
            raise HarnessError(f"{p} contains no samples; expected DS-1000 answers (id/metadata + code) "
                               "or harness samples (task_id + solution)")  # fmt: skip
        kept: list[Sample] = []
        for s in samples:
            missing = self._not_graded.get(s.task_id) if s.task_id in self._rows else None
            if missing:
                bad.append(BadLine(s.line, s.task_id, "not graded: the ds1000 environment lacks "
                                   f"{', '.join(missing)} (harness env create ds1000 without --libraries)"))  # fmt: skip
            else:
                kept.append(s)
        return kept, bad

    def program(self, problem: Problem, solution: str | None, completion: str | None) -> str:
        """The problem's test context driving the post-processed answer."""
        answer = postprocess(solution if solution is not None else completion or "")
        return build_program(problem.extra["code_context"], answer)

    # ------------------------------------------------------------ grading
    def jobs(self, task_id: str, program: str, state: Any, ctx: GradeContext) -> list[ScriptJob]:
        """One script: the test context driving the answer (none for a problem the environment cannot grade)."""
        if self._not_graded.get(task_id):
            return []
        # Expensive programs first: little time is lost waiting for the last one.
        return [ScriptJob(program, cpu_limit=self.time_limit, cost=self._cost(task_id))]

    def verdict(self, task_id: str, program: str, state: Any, results: Sequence[ScriptResult], ctx: GradeContext
                ) -> Verdict:  # fmt: skip
        """Passes when the script exits cleanly; otherwise its exception or the limit it hit."""
        missing = self._not_graded.get(task_id)
        if missing:
            return Verdict(status="error", error=f"not graded: environment lacks {', '.join(missing)}")
        return _verdict(results[0], self.time_limit)

    def _cost(self, task_id: str) -> float:
        row = self._rows.get(task_id)
        return _COST.get(row["metadata"]["library"], 0.3) if row else 0.3

    # ------------------------------------------------------------ reporting
    def verdict_salt(self) -> str:
        """Library versions, the interpreter and the time limit change verdicts: the verdict cache keys on them."""
        env = self.environment
        libs = ",".join(f"{k}={v}" for k, v in sorted(env.installed.items()))
        return f"python={env.python_version};time_limit={self.time_limit};{libs}"

    def describe(self) -> dict[str, Any]:
        """The environment graded in: its interpreter and library versions, and what was not graded."""
        env = self.environment
        libs = {r.dist: env.installed[r.dist] for r in ENVIRONMENT.requirements if r.dist in env.installed}
        out: dict[str, Any] = {"environment": str(env.path), "python": env.python_version, "libraries": libs}
        if self._not_graded:
            out["not_graded"] = _count_by_library(self._rows, self._not_graded)
        return out

    def notes(self) -> list[str]:
        """Deviations from DS-1000's pinned versions, and problems not graded for want of a library."""
        env = self.environment
        out = [f"environment deviates from {ENVIRONMENT.source}: {d}" for d in env.deviations(ENVIRONMENT)]
        absent = {k: v for k, v in env.unfetched.items() if v != "library not installed"}
        if absent:
            users = [t for t, r in self._rows.items() if downloads_data(r["code_context"])]
            out.append(
                f"{len(users)} problems download data at run time ({', '.join(absent)}), which DS-1000 fetches "
                "from the internet; the sandbox has no network and the data could not be fetched when the "
                "environment was built, so these problems fail (rerun `harness env create ds1000` with network)"
            )
        if self._not_graded:
            counts = _count_by_library(self._rows, self._not_graded)
            lacking = sorted({m for ms in self._not_graded.values() for m in ms})
            out.append(
                f"{len(self._not_graded)} problems not graded (the environment lacks {', '.join(lacking)}): "
                + ", ".join(f"{lib} {n}" for lib, n in counts.items())
                + "; scores cover the graded problems only"
            )
        return out

    def breakdown(self, passed: dict[str, list[bool]]) -> dict[str, Any]:
        """Overall, per library and per perturbation type: ``{"score": mean, "n": problems}`` as DS-1000 tabulates."""
        scores = {tid: sum(v) / len(v) for tid, v in passed.items() if v and tid in self._rows}
        groups: dict[str, dict[str, list[float]]] = {"library": {}, "perturbation_type": {}}
        for tid, score in scores.items():
            meta = self._rows[tid]["metadata"]
            for group in groups:
                groups[group].setdefault(str(meta[group]), []).append(score)
        out: dict[str, Any] = {"overall": _cell(list(scores.values()))}
        for group, cells in groups.items():
            out[group] = {key: _cell(vals) for key, vals in sorted(cells.items())}
        return out

    # ------------------------------------------------------------ prompting
    def prompt(self, problem: Problem, style: str) -> Prompt:
        """``base``: DS-1000's prompt as is (it ends where the code goes); ``instruct``: a chat request."""
        if style == "base":
            return Prompt(text=problem.prompt, stop=BASE_STOP)
        if style == "instruct":
            instruction, prefix = instruct_prompt(problem.prompt)
            return Prompt(instruction=instruction, response_prefix=prefix, stop=("```",))
        raise HarnessError(f"unknown prompt style {style!r} (base, instruct)")

    def sample(
        self, problem: Problem, style: str, prompt: Prompt, text: str, field: str | None = None
    ) -> dict[str, str]:
        """The answer code of a reply, post-processed as DS-1000 does (``solution`` field)."""
        return {field or "solution": postprocess(text)}

    def oracle_sample(self, problem: Problem) -> tuple[str, str]:
        """The reference solution; graded, it passes."""
        return "solution", problem.canonical_solution


def _cell(values: list[float]) -> dict[str, Any]:
    return {"score": round(sum(values) / len(values), 4) if values else 0.0, "n": len(values)}


def _count_by_library(rows: dict[str, dict[str, Any]], tids: dict[str, list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tid in tids:
        lib = rows[tid]["metadata"]["library"]
        counts[lib] = counts.get(lib, 0) + 1
    return dict(sorted(counts.items()))


def _task_of(row: Any) -> str | None:
    if not isinstance(row, dict):
        return None
    for value in (row.get("task_id"), row.get("id"), (row.get("metadata") or {}).get("problem_id")
                  if isinstance(row.get("metadata"), dict) else None):  # fmt: skip
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None


def _parse_row(row: Any) -> tuple[str, list[str]] | str:
    """``(task_id, answers)`` of a samples line, or why it is unusable."""
    if not isinstance(row, dict):
        return "not a JSON object"
    tid = _task_of(row)
    if tid is None:
        return "missing the problem id (task_id, id or metadata.problem_id)"
    if "code" in row:
        code = row["code"]
        if isinstance(code, str):
            return tid, [code]
        if isinstance(code, list) and code and all(isinstance(c, str) for c in code):
            return tid, list(code)
        return "'code' must be a string or a non-empty list of strings"
    answer = row.get("solution", row.get("completion"))
    if isinstance(answer, str):
        return tid, [answer]
    return "has no answer ('code', 'solution' or 'completion' as a string)"


def _verdict(res: ScriptResult, limit: float) -> Verdict:
    if res.status == "pass":
        return Verdict(status="pass", parts={"base": PartVerdict(status="pass", cpu_seconds=res.cpu)})
    reason = _reason(res, limit)
    part = PartVerdict(status=res.status, failed=[0], reasons={0: reason}, cpu_seconds=res.cpu)
    return Verdict(status=res.status, parts={"base": part}, error=(res.error or reason)[-1500:])


def _reason(res: ScriptResult, limit: float) -> str:
    """The one line that says why a program failed: its exception, or the limit it hit."""
    if res.status == "timeout":
        return f"time limit exceeded ({limit:.0f} s CPU)"
    lines = [ln for ln in (res.error or "").strip().splitlines() if ln.strip()]
    # The exception follows the last indented traceback line; its message may span lines.
    last_frame = max((i for i, ln in enumerate(lines) if ln.startswith(" ")), default=-1)
    exc = lines[last_frame + 1 :] or lines[-1:]
    return (" | ".join(ln.strip() for ln in exc[:3]) if exc else "failed")[:300]

