"""Stage 2: seed filtering, cheapest filters first, each counted under its own reason.

1. ``does not parse`` / ``not a function``: the seed must be one function definition.
2. ``no docstring`` / ``no return value``: a non-empty docstring, and a ``return <expr>`` (not a bare
   ``return`` or ``return None``) in the function itself -- returns of nested functions, lambdas and classes
   do not count.
3. ``too long``: more than ``filter.max_lines`` lines.
4. ``banned marker``: TODO, FIXME, ... as whole words (``TODOS`` and ``todo`` do not match); the default
   ``NotImplementedError`` catches stubs, and ``return NotImplemented`` (the binary-operator protocol) never
   counts as a marker, even when ``NotImplemented`` is listed.
5. ``banned import``: a banned module (os, sys, subprocess, ...) imported in the seed (``import os``,
   ``import os.path``, ``from os import ...``, ``__import__("os")``), or reached through a name the seed reads
   without binding it: ``os.getcwd()`` or ``sp.run()`` where the module's recorded imports bind ``sp`` to
   ``subprocess``.  Matching is on names in the syntax tree, so ``cos``, ``osmosis`` or the word "os" in a
   docstring never match, and a parameter called ``signal`` is not the module.
5b. ``no arguments``: (``filter.require_arguments``, as SelfCodeAlign) a function without any parameter.
6. ``benchmark item (<benchmark> <task_id>)``: the decontamination library's audit (default methods) flags
   the seed against ``filter.benchmarks``.
7. ``type error``: a real checker (basedpyright, else pyright) reports an error.  Seeds are checked in
   batches of ``filter.typecheck_batch`` files (each file: the recorded imports the seed uses, then the
   seed), each batch one command job of the sandbox (the checker runs as the pipeline's other programs do:
   the same isolation, and with ``--executor ray`` on a Ray actor of any node), basic mode, errors only,
   unresolved imports ignored (the corpus's dependencies need not be installed).  With
   ``filter.typecheck_scope = "module"`` (the default) the names of the seed's own module that it uses
   (helper functions, classes, constants) are declared first, as ``Any``-typed stand-ins, so a seed is not
   rejected for leaning on its module (SelfCodeAlign's autoimport played that part for imports); with
   ``"seed"`` such names are errors.  Both counts are reported: the seeds that pass under the chosen scope
   are checked the other way too (only those whose text differs), and the funnel's ``extra.typecheck`` and
   notes give the errors either way.
   *Batch failures*: a batch that times out (``filter.typecheck_timeout``: its CPU and its wall-clock
   limit) or crashes is split in two and each half retried once; seeds whose half fails again are removed
   as ``typecheck batch timed out`` / ``typecheck batch failed`` (nothing unchecked is kept, nothing is
   dropped silently) and the funnel's notes say how many.  They are recorded in ``filter.removed.jsonl``
   like any removal: delete those lines to have a rerun check them again.  A checker the sandbox cannot
   start at all is one error for the stage (no seed is removed for it).
8. ``docstring judged poor``: the model answers a few-shot Yes/No question about the docstring through the
   shared engine, as SelfCodeAlign's judge does: ``filter.judge_fewshot`` (7) of the exemplars in an order
   shuffled per seed, greedy, at most ``filter.judge_max_tokens`` (5) tokens, stop at the newline; the
   answer's "yes" and "no" words are counted and the majority wins, a tie is No.

``filter.enabled = false`` (the unfiltered-seeds ablation) passes every seed through untouched.

Static filters run over every pending seed at once, then the audit; the type-check and the judge run per
chunk of seeds, and each chunk's results are appended before the next starts (an interruption loses at
most one chunk).
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.core import Context, FilterConfig, Funnel, Progress, StageFiles, stage_input
from harness.data import cache_dir
from harness.errors import HarnessError

STAGE = "filter"
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


# ------------------------------------------------------------------------------------------- static checks


def _own_nodes(func: ast.AST) -> Iterable[ast.AST]:
    """Nodes of ``func``'s body, not descending into nested functions, lambdas or classes."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def returns_value(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the function itself (not a nested scope) has a ``return <expr>`` other than ``return None``."""
    for node in _own_nodes(func):
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                return True
    return False


def marker_pattern(markers: Sequence[str]) -> re.Pattern[str] | None:
    """A regex matching any marker as a whole word (case-sensitive), or None for no markers."""
    if not markers:
        return None
    alternatives = "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])")


def _import_bindings(statements: Sequence[str]) -> dict[str, str]:
    """Name -> absolute module it comes from, for recorded import statements (relative imports are skipped)."""
    out: dict[str, str] = {}
    for stmt in statements:
        try:
            tree = ast.parse(stmt)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    out[a.asname or a.name.split(".")[0]] = a.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for a in node.names:
                    out[a.asname or a.name] = node.module
    return out


def _bound_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names the function binds itself: parameters, assignments, loop and ``with`` targets, nested defs."""
    names: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not func:
            names.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
    return names


def banned_import(func: ast.FunctionDef | ast.AsyncFunctionDef, module_imports: Sequence[str],
                  banned: Iterable[str]) -> str | None:  # fmt: skip
    """The banned module the seed imports or uses (see the module docstring), or None."""
    banned_set = set(banned)
    if not banned_set:
        return None

    def root(module: str) -> str:
        return module.split(".")[0]

    for node in ast.walk(func):
        if isinstance(node, ast.Import):
            for a in node.names:
                if root(a.name) in banned_set:
                    return root(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and root(node.module) in banned_set:
                return root(node.module)
        elif isinstance(node, ast.Call) and node.args:
            # __import__("os") and importlib.import_module("os")
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            arg = node.args[0]
            if name in ("__import__", "import_module") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                if root(arg.value) in banned_set:
                    return root(arg.value)
    bound = _bound_names(func)
    free = {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound
    if not free:
        return None
    via_imports = _import_bindings(module_imports)
    star = [m for m in module_imports if m.rstrip().endswith("import *")]
    for name in sorted(free):
        module = via_imports.get(name)
        if module is not None and root(module) in banned_set:
            return root(module)
    for stmt in star:
        m = re.match(r"\s*from\s+([\w.]+)\s+import\s+\*", stmt)
        if m and root(m.group(1)) in banned_set:
            return root(m.group(1))  # a star import of a banned module may bind anything the seed reads
    # ``os.getcwd()`` with no recorded import: the name is free, so it can only be the module
    for node in ast.walk(func):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in banned_set:
            if node.value.id in free:
                return node.value.id
    return None


_PROTOCOL_NOT_IMPLEMENTED = re.compile(r"\breturn\s+NotImplemented\b(?![A-Za-z0-9_])")


def _has_parameters(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    a = func.args
    return bool(a.posonlyargs or a.args or a.vararg or a.kwonlyargs or a.kwarg)


@dataclass
class StaticVerdict:
    """Why a seed fails the static filters (``reason`` None: it passes)."""

    reason: str | None
    detail: dict[str, Any]


def static_check(seed: str, imports: Sequence[str], cfg: FilterConfig,
                 markers: re.Pattern[str] | None = None) -> StaticVerdict:  # fmt: skip
    """Run filters 1-5 on one seed, cheapest first; the first that fails is the reason."""
    try:
        tree = ast.parse(seed)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return StaticVerdict("does not parse", {"error": f"{type(exc).__name__}: {exc}"[:200]})
    if len(tree.body) != 1 or not isinstance(tree.body[0], _FUNCS):
        return StaticVerdict("not a function", {})
    func = tree.body[0]
    doc = ast.get_docstring(func)
    if not doc or not doc.strip():
        return StaticVerdict("no docstring", {})
    if not returns_value(func):
        return StaticVerdict("no return value", {})
    lines = seed.count("\n") + (not seed.endswith("\n"))
    if lines > cfg.max_lines:
        return StaticVerdict("too long", {"lines": lines, "max_lines": cfg.max_lines})
    pattern = markers if markers is not None else marker_pattern(cfg.banned_markers)
    if pattern is not None:
        # ``return NotImplemented`` is the protocol for unsupported operand types, not an unfinished stub
        m = pattern.search(_PROTOCOL_NOT_IMPLEMENTED.sub("return", seed))
        if m:
            return StaticVerdict("banned marker", {"marker": m.group(0)})
    module = banned_import(func, imports, cfg.banned_imports)
    if module is not None:
        return StaticVerdict("banned import", {"module": module})
    if cfg.require_arguments and not _has_parameters(func):
        return StaticVerdict("no arguments", {})
    return StaticVerdict(None, {})


# ------------------------------------------------------------------------------------------------ type-check


def find_checker(preferred: str = "basedpyright") -> str:
    """Path of the type checker: ``preferred``, else the other of basedpyright/pyright; a clear error if none."""
    names = [preferred] + [n for n in ("basedpyright", "pyright") if n != preferred]
    # the venv's bin folder first: `.venv/bin/python -m harness` does not put it on PATH
    here = Path(sys.executable).parent
    for name in names:
        local = here / name
        if local.is_file() and os.access(local, os.X_OK):
            return str(local)
        found = shutil.which(name)
        if found:
            return found
    raise HarnessError("the type-check filter needs basedpyright (or pyright): pip install basedpyright "
                       "(or set filter.typecheck = false)")  # fmt: skip


_CHECKER_CONFIG = {
    "typeCheckingMode": "basic",
    # the corpus's third-party dependencies need not be installed here: an unresolved import is no error
    "reportMissingImports": "none",
    "reportMissingModuleSource": "none",
    "reportMissingTypeStubs": "none",
}


@dataclass
class CheckResult:
    """One seed's type-check outcome: ``ok``, ``error`` (with the first message), ``timeout`` or ``failed``."""

    status: str
    detail: str = ""


def typecheck_file_text(seed: str, imports: Sequence[str], module_names: dict[str, str] | None = None) -> str:
    """What the checker sees for one seed: the recorded imports it uses, the module's names it uses (``Any``
    stand-ins, when given), then the seed."""
    head = "\n".join(imports)
    stubs = module_stubs(module_names or {})
    parts = [p for p in (head, stubs) if p]
    return ("\n\n\n".join(parts) + "\n\n\n" if parts else "") + seed


def module_stubs(names: dict[str, str]) -> str:
    """``Any``-typed stand-ins for module-level names: a class deriving from Any, a function of any arguments
    returning Any, a value of type Any (so calls, attributes and annotations using them all check)."""
    lines = []
    for name, kind in sorted(names.items()):
        if not name.isidentifier() or name == "_SeedAny":
            continue
        if kind == "class":
            lines.append(f"class {name}(_SeedAny): ...")
        elif kind == "function":
            lines.append(f"def {name}(*args: _SeedAny, **kwargs: _SeedAny) -> _SeedAny: ...")
        else:
            lines.append(f"{name}: _SeedAny = None")
    return "from typing import Any as _SeedAny\n" + "\n".join(lines) if lines else ""


#: Bytes of the checker's JSON report kept (its diagnostics for a whole batch); a report cut short fails to parse
#: and the batch is retried in halves.
_REPORT_BYTES = 32 << 20


def checker_job(checker: str, texts: Sequence[str], timeout: float) -> Any:
    """The sandbox command job that checks one batch: the seed files and ``pyrightconfig.json`` in the job's
    fresh working directory, the checker run there on ``.``.

    ``timeout`` is its CPU limit (the whole process tree's) and its wall-clock limit; no memory cap (node
    reserves far more address space than it uses).  ``--pythonpath`` is the harness's interpreter, so
    imports resolve against the same packages wherever the job runs (a Ray node has the same install).
    """
    from harness.execution import CommandJob, Step

    files: dict[str, str] = {f"seed_{i:05d}.py": text for i, text in enumerate(texts)}
    config = {**_CHECKER_CONFIG, "include": ["."],
              "pythonVersion": f"{sys.version_info.major}.{sys.version_info.minor}"}  # fmt: skip
    files["pyrightconfig.json"] = json.dumps(config)
    argv = [checker, "--outputjson", "--level", "error", "--pythonpath", sys.executable, "-p", "."]
    step = Step(argv, cpu_limit=timeout, wall_limit=timeout, memory_bytes=0, capture_bytes=_REPORT_BYTES)
    return CommandJob([step], files=files, cost=float(len(texts)))


def checker_results(result: Any, count: int, timeout: float) -> list[CheckResult] | CheckResult:
    """Per-seed results of one batch's :func:`checker_job` result, or one result (timeout/failed) for the batch.

    A checker that cannot start at all (missing, or not readable by the sandbox's program uid) is a
    :class:`HarnessError`: every batch would fail the same way, and no seed is to blame.
    """
    step = result.steps[0] if result.steps else None
    if step is None:
        return CheckResult("failed", (result.error or "not run")[:200])
    if step.status == "timeout":
        return CheckResult("timeout", f"no answer within {timeout:g} s for {count} file(s)")
    if step.status == "error":
        raise HarnessError(f"the type checker cannot start in the sandbox ({step.reason}); with process isolation "
                           "the sandbox's program uid must be able to read it and the Python it runs: install "
                           "bubblewrap (scripts/setup.sh does), or set filter.typecheck = false")  # fmt: skip
    out = step.stdout.decode("utf-8", "replace")
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        err = step.stderr.decode("utf-8", "replace")
        tail = (err or out or "").strip().splitlines()[-1:] or [step.reason or "no output"]
        return CheckResult("failed", f"{step.reason}: {tail[0][:200]}")
    if step.exit_code not in (0, 1):
        return CheckResult("failed", step.reason or f"exit code {step.exit_code}")
    results = [CheckResult("ok") for _ in range(count)]
    for diag in report.get("generalDiagnostics", []):
        if diag.get("severity") != "error":
            continue
        name = Path(diag.get("file", "")).name
        m = re.fullmatch(r"seed_(\d+)\.py", name)
        if not m or int(m.group(1)) >= count:
            continue
        r = results[int(m.group(1))]
        if r.status == "ok":
            line = diag.get("range", {}).get("start", {}).get("line", -1) + 1
            r.status, r.detail = "error", f"line {line}: {diag.get('message', '')}"[:300]
    return results


def typecheck(texts: list[str], checker: str, batch: int, timeout: float, workers: int = 1,
              retry_split: bool = True, sandbox: Any = None) -> list[CheckResult]:  # fmt: skip
    """Type-check each text (a complete file) in batches, each batch one job of the sandbox.

    ``sandbox``: the sandbox to run the checker in (local workers or Ray actors, as grading); None: one of
    ``workers`` local workers started for this call.  A batch that times out or fails is split in two and
    each half retried once (``retry_split``); what fails again comes back as ``timeout`` / ``failed`` for
    each of its seeds, never as ``ok``.
    """
    groups = [list(range(i, min(i + batch, len(texts)))) for i in range(0, len(texts), max(batch, 1))]
    may_split = [retry_split] * len(groups)
    results: list[CheckResult | None] = [None] * len(texts)
    problems: list[HarnessError] = []

    def done(k: int, result: Any) -> list[Any] | None:
        # called one job at a time; the halves returned here join the run, their indices following
        idx = groups[k]
        try:
            got = checker_results(result, len(idx), timeout)
        except HarnessError as exc:  # the checker cannot start: raised once the run is over
            problems.append(exc)
            return None
        if isinstance(got, CheckResult):
            if may_split[k] and len(idx) > 1:
                half = len(idx) // 2
                groups.extend([idx[:half], idx[half:]])
                may_split.extend([False, False])
                return [checker_job(checker, [texts[i] for i in part], timeout) for part in groups[-2:]]
            for i in idx:
                results[i] = CheckResult(got.status, got.detail)
            return None
        for i, r in zip(idx, got):
            results[i] = r
        return None

    if groups:
        jobs = [checker_job(checker, [texts[i] for i in idx], timeout) for idx in groups]
        if sandbox is not None:
            sandbox.run(jobs, done, keep=False)
        else:
            from harness.execution import Sandbox, SandboxSettings

            with Sandbox(SandboxSettings(workers=max(1, workers))) as own:
                own.run(jobs, done, keep=False)
    if problems:
        raise problems[0]
    return [r if r is not None else CheckResult("failed", "not checked") for r in results]


# ------------------------------------------------------------------------------------------------------ judge

JUDGE_QUESTION = "Is the docstring clear, specific and accurate?"
JUDGE_INTRO = (
    "Each Python function below is followed by a verdict on its docstring. The answer is Yes when the "
    "docstring tells a reader what the function does, specifically and correctly (and, where it matters, what "
    "it takes and what it returns); No when it is vague, only restates the name, is cut off, or says "
    "something the code does not do.\n\n"
)
#: (function, verdict): good and bad docstrings, the bad ones each wrong in a different way.
JUDGE_EXEMPLARS: list[tuple[str, str]] = [
    ('def celsius_to_fahrenheit(celsius: float) -> float:\n'
     '    """Convert a temperature from degrees Celsius to degrees Fahrenheit."""\n'
     '    return celsius * 9 / 5 + 32\n', "Yes"),
    ('def process(data):\n'
     '    """Process the data."""\n'
     '    return [x * 2 for x in data if x is not None]\n', "No"),
    ('def chunked(items, size):\n'
     '    """Split ``items`` into consecutive lists of ``size`` elements; the last list may be shorter.\n\n'
     '    Raises ValueError when ``size`` is not positive.\n'
     '    """\n'
     '    if size < 1:\n'
     '        raise ValueError("size must be positive")\n'
     '    return [items[i : i + size] for i in range(0, len(items), size)]\n', "Yes"),
    ('def median(values):\n'
     '    """Return the average of the values."""\n'
     '    ordered = sorted(values)\n'
     '    mid = len(ordered) // 2\n'
     '    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2\n', "No"),
    ('def is_palindrome(text: str) -> bool:\n'
     '    """True if ``text`` reads the same backwards, ignoring case and anything but letters and digits."""\n'
     '    kept = [c.lower() for c in text if c.isalnum()]\n'
     '    return kept == kept[::-1]\n', "Yes"),
    ('def get_value(d, k):\n'
     '    """get value"""\n'
     '    return d.get(k, 0)\n', "No"),
    ('def parse_duration(text: str) -> int:\n'
     '    """Parse a duration such as "1h30m" or "45s" into a number of seconds."""\n'
     '    units = {"h": 3600, "m": 60, "s": 1}\n'
     '    total, number = 0, ""\n'
     '    for ch in text:\n'
     '        if ch.isdigit():\n'
     '            number += ch\n'
     '        else:\n'
     '            total, number = total + int(number) * units[ch], ""\n'
     '    return total\n', "Yes"),
    ('def helper(a, b, c=None):\n'
     '    """This function is used by the\n'
     '    """\n'
     '    return (a + b) if c is None else c\n', "No"),
]  # fmt: skip


def _judge_block(code: str) -> str:
    return f"### Function\n```python\n{code.rstrip()}\n```\n{JUDGE_QUESTION}"


def judge_prompt(seed: str, shots: int | None = None, shuffle_seed: int | None = None) -> str:
    """The few-shot prompt asking the model about ``seed``'s docstring; the answer is the next word.

    ``shots`` exemplars (default: all, in file order) in an order shuffled with ``shuffle_seed`` when given.
    """
    examples = list(JUDGE_EXEMPLARS)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(examples)
    if shots is not None:
        examples = examples[: max(0, shots)]
    text = "".join(f"{_judge_block(code)} {verdict}\n\n" for code, verdict in examples)
    return JUDGE_INTRO + text + _judge_block(seed)


def judge_prompt_for(row: dict[str, Any], cfg: FilterConfig, pipeline_seed: int) -> str:
    """The judge prompt the filter stage sends for a seed row (its exemplar order derived from its key)."""
    from generation.instruct import derive_seed

    return judge_prompt(row["seed"], cfg.judge_fewshot, derive_seed(pipeline_seed, "judge", row["key"]))


_YES_NO = re.compile(r"(?<![a-z])(yes|no)(?![a-z])")


def judge_says_yes(answer: str) -> bool:
    """Whether a completion of :func:`judge_prompt` is a Yes: more "yes" than "no" words (a tie is No)."""
    words = _YES_NO.findall(answer.lower())
    return words.count("yes") > words.count("no")


# ------------------------------------------------------------------------------------------------------ stage


def _reason_group(reason: str) -> str:
    # "benchmark item (humaneval HumanEval/0)" counts under "benchmark item" in the funnel
    return reason.split(" (", 1)[0]


def _decontaminate(rows: list[dict[str, Any]], cfg: FilterConfig, data_dir: str | None,
                   echo: Callable[[str], None]) -> dict[int, str]:  # fmt: skip
    """Row index -> ``benchmark task_id`` for seeds the audit flags."""
    if not rows or not cfg.benchmarks:
        return {}
    from harness.decontamination import AuditOptions, audit

    with tempfile.TemporaryDirectory(prefix="seed-audit-") as tmp:
        path = Path(tmp) / "seeds.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({"seed": r["seed"]}, ensure_ascii=False) + "\n")
        report = audit(path, fields=["seed"], benchmarks=None if cfg.benchmarks == "all" else list(cfg.benchmarks), options=AuditOptions(),
                       data_dir=data_dir, cache_dir=cache_dir(),
                       echo=lambda m: echo(f"[filter] decontamination: {m}"))  # fmt: skip
    hits: dict[int, str] = {}
    for flag in report["flagged"]:
        hits.setdefault(int(flag["row"]), f"{flag['benchmark']} {flag['task_id']}")
    return hits


def run(ctx: Context) -> Funnel:
    """Filter ``seeds.jsonl`` into ``filter.jsonl`` (resumable: keys already kept or removed are skipped)."""
    cfg = ctx.config.filter
    rows = stage_input(ctx.workdir, "seeds")
    files = StageFiles(ctx.workdir, STAGE)
    done = files.done_keys()
    t0 = time.perf_counter()
    funnel = Funnel(stage=STAGE, input=len(rows))
    # fail before any work when the checker is missing
    checker = find_checker(cfg.checker) if cfg.typecheck and cfg.enabled else None
    pending: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in rows:
        if r["key"] in done:
            funnel.skipped_done += 1
        elif r["key"] not in seen:
            seen.add(r["key"])
            pending.append(r)
    if not cfg.enabled:
        files.append(pending)
        funnel.output = len(files.rows())
        funnel.removed = {}
        funnel.seconds = round(time.perf_counter() - t0, 3)
        funnel.notes.append("filter.enabled = false: every seed passes unfiltered (the unfiltered-seeds ablation)")
        funnel.extra = {"enabled": False}
        return funnel
    # 1-5: static filters, all at once
    markers = marker_pattern(cfg.banned_markers)
    survivors: list[dict[str, Any]] = []
    dropped: list[tuple[str, str, dict[str, Any]]] = []
    for r in pending:
        v = static_check(r["seed"], r.get("imports") or [], cfg, markers)
        if v.reason is None:
            survivors.append(r)
        else:
            dropped.append((r["key"], v.reason, {"name": r.get("name"), **v.detail}))
    files.remove(dropped)
    ctx.echo(f"[filter] static filters: {len(survivors)} of {len(pending)} pending seeds pass")
    # 6: benchmark items
    if cfg.decontaminate and survivors:
        hits = _decontaminate(survivors, cfg, ctx.config.data_dir, ctx.echo)
        files.remove((r["key"], f"benchmark item ({hits[i]})", {"name": r.get("name")})
                     for i, r in enumerate(survivors) if i in hits)  # fmt: skip
        survivors = [r for i, r in enumerate(survivors) if i not in hits]
    # 7-8: type-check and judge, chunk by chunk; the checker runs in the sandbox, as grading and validation do
    # (local workers, or Ray actors with --executor ray), so a chunk is a batch for each of its workers
    sandbox = ctx.sandbox() if checker is not None and survivors else None
    workers = sandbox.settings.worker_count() if sandbox is not None else 1
    chunk = max(1, cfg.typecheck_batch) * workers
    failed_batches = {"timeout": 0, "failed": 0}
    both = {"checked": 0, "errors_with_module_names": 0, "errors_seed_alone": 0}
    progress = Progress(ctx.echo, STAGE, len(survivors), "seeds")
    for start in range(0, len(survivors), chunk):
        part = survivors[start : start + chunk]
        removed: list[tuple[str, str, dict[str, Any]]] = []
        if checker is not None:
            part = _typecheck_part(part, cfg, checker, sandbox, removed, failed_batches, both)
        if cfg.judge and part:
            part = _judge(ctx, cfg, part, removed, funnel)
        files.append(part)
        files.remove(removed)
        steps = " and ".join(x for x, on in (("type-checked", checker), ("judged", cfg.judge)) if on) or "written"
        progress.batch(len(survivors[start : start + chunk]), f"{steps}, {len(part)} kept, {len(removed)} removed",
                       of=(len(survivors) + chunk - 1) // chunk)  # fmt: skip
    funnel.output = len(files.rows())
    counts: dict[str, int] = {}
    for reason, n in files.removed_counts().items():
        counts[_reason_group(reason)] = counts.get(_reason_group(reason), 0) + n
    funnel.removed = counts
    funnel.seconds = round(time.perf_counter() - t0, 3)
    if failed_batches["timeout"] or failed_batches["failed"]:
        funnel.notes.append(f"type-check: {failed_batches['timeout']} seed(s) in batches that timed out and "
                            f"{failed_batches['failed']} in batches that crashed, after a split retry; removed "
                            f"as unchecked (see {files.removed.name})")  # fmt: skip
    funnel.extra = {"checker": Path(checker).name if checker else None, "typecheck_batch": cfg.typecheck_batch,
                    "judge": cfg.judge, "decontaminate": cfg.decontaminate}  # fmt: skip
    if checker is not None and both["checked"]:
        funnel.extra["typecheck"] = {"scope": cfg.typecheck_scope, **both}
        funnel.notes.append(f"type-check this run: {both['errors_seed_alone']} of {both['checked']} seeds have errors "
                            f"alone, {both['errors_with_module_names']} with their module's names in scope "
                            f"(filter.typecheck_scope = {cfg.typecheck_scope} decides)")  # fmt: skip
    return funnel


def _typecheck_part(part: list[dict[str, Any]], cfg: FilterConfig, checker: str, sandbox: Any,
                    removed: list[tuple[str, str, dict[str, Any]]], failed_batches: dict[str, int],
                    both: dict[str, int]) -> list[dict[str, Any]]:  # fmt: skip
    """Type-check one chunk under ``filter.typecheck_scope``; count errors under the other scope too."""
    module = cfg.typecheck_scope == "module"

    def text(r: dict[str, Any], with_module: bool) -> str:
        return typecheck_file_text(r["seed"], r.get("imports") or [], r.get("module_names") if with_module else None)

    results = typecheck([text(r, module) for r in part], checker, cfg.typecheck_batch, cfg.typecheck_timeout,
                        sandbox=sandbox)  # fmt: skip
    keep, errors = [], []
    for r, res in zip(part, results):
        if res.status == "ok":
            keep.append(r)
        elif res.status == "error":
            errors.append(r)
            removed.append((r["key"], "type error", {"name": r.get("name"), "error": res.detail,
                                                     "scope": cfg.typecheck_scope}))  # fmt: skip
        else:
            failed_batches[res.status] += 1
            why = "typecheck batch timed out" if res.status == "timeout" else "typecheck batch failed"
            removed.append((r["key"], why, {"name": r.get("name"), "error": res.detail}))
    # The other scope differs only for seeds that use module-level names: the stand-ins can only remove errors,
    # so with module scope only the passing ones need the check alone, and with seed scope only the failing ones.
    other = [r for r in (keep if module else errors) if r.get("module_names")]
    flipped = 0
    if other:
        again = typecheck([text(r, not module) for r in other], checker, cfg.typecheck_batch, cfg.typecheck_timeout,
                          sandbox=sandbox)  # fmt: skip
        flipped = sum((res.status == "error") if module else (res.status == "ok") for res in again)
    both["checked"] += len(keep) + len(errors)
    if module:
        both["errors_with_module_names"] += len(errors)
        both["errors_seed_alone"] += len(errors) + flipped
    else:
        both["errors_seed_alone"] += len(errors)
        both["errors_with_module_names"] += len(errors) - flipped
    return keep


def _judge(ctx: Context, cfg: FilterConfig, part: list[dict[str, Any]],
           removed: list[tuple[str, str, dict[str, Any]]], funnel: Funnel) -> list[dict[str, Any]]:  # fmt: skip
    from harness.engine import Request, Sampling

    sampling = Sampling(n=1, temperature=0.0, max_tokens=max(1, cfg.judge_max_tokens), stop=("\n",))
    prompts = [judge_prompt_for(r, cfg, ctx.config.seed) for r in part]
    results = ctx.engine.generate([Request(prompt=p, sampling=sampling) for p in prompts])
    keep = []
    for r, res in zip(part, results):
        c = res.completions[0]
        funnel.prompt_tokens += c.prompt_tokens
        funnel.completion_tokens += c.completion_tokens
        if judge_says_yes(c.text):
            keep.append(r)
        else:
            removed.append((r["key"], "docstring judged poor", {"name": r.get("name"), "answer": c.text[:40]}))
    return keep
