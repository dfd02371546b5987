"""Pipeline stages 1-3: seed extraction, seed filters (type-check and model judge for real), near-dedup."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generation import dedup, filters, seeds
from generation.core import Context, FilterConfig, load_config
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]


def _ctx(tmp_path: Path, model: str = "replay:unused", **overrides: Any) -> Context:
    config = load_config(None, {"model": model, "workdir": str(tmp_path / "work"), "cache": False, **overrides})
    return Context(config, Path(config.workdir), echo=lambda _: None)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _seed_row(seed: str, key: str | None = None, imports: list[str] | None = None) -> dict[str, Any]:
    seed = textwrap.dedent(seed).lstrip("\n")
    name = re.search(r"def (\w+)", seed)
    return {"key": key or f"k-{abs(hash(seed))}", "seed": seed, "name": name.group(1) if name else "?",
            "path": "x.py", "lineno": 1, "licence": None, "docstring": "", "imports": imports or []}  # fmt: skip


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------------------------------------------- seeds


def test_stdlib_seeds_trace_back_to_real_files_and_lines(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, **{"seeds.max_files": 250})
    funnel = seeds.run(ctx)
    rows = _rows(ctx.workdir / "seeds.jsonl")
    assert funnel.output == len(rows) > 100 and funnel.extra["files"] == 250  # a seeded random sample of files
    assert funnel.input == funnel.extra["functions"] == funnel.output + sum(funnel.removed.values())
    root = seeds.stdlib_root()
    checked = 0
    for row in random.Random(0).sample(rows, 60):
        assert row["licence"] == "PSF-2.0" and row["repository"].endswith("stdlib")
        path = root / row["path"]
        lines = path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
        assert lines[row["lineno"] - 1].lstrip().startswith(("def ", "async def "))
        # every line of the seed is the file's line with (at most) the def line's indentation removed
        file_lines = lines[row["lineno"] - 1 : row["end_lineno"]]
        seed_lines = row["seed"].rstrip("\n").split("\n")
        assert len(seed_lines) == len(file_lines)
        assert all(f.endswith(s) and not f[: len(f) - len(s)].strip() for f, s in zip(file_lines, seed_lines))
        assert row["docstring"] and row["name"].split(".")[-1] in row["seed"].split("(")[0]
        checked += 1
    assert checked == 60
    assert len({r["key"] for r in rows}) == len(rows)


def test_extraction_pool_matches_in_process(tmp_path: Path) -> None:
    docs = seeds.folder_documents(seeds.stdlib_root() / "json", "PSF-2.0")
    one = [(r.path, [x["key"] for x in r.rows]) for r in seeds.extract_corpus(docs, workers=1)]
    two = [(r.path, [x["key"] for x in r.rows]) for r in seeds.extract_corpus(docs, workers=2)]
    assert one == two and sum(len(k) for _, k in one) > 5


_GOOD = '''
import re
import subprocess as sp


class Box:
    """A box."""

    def area(self, w: int, h: int) -> int:
        """Area of a w x h box."""
        return w * h

    def _hidden(self):
        return 1


def words(text):
    """The words of ``text``."""
    return re.findall(r"\\w+", text)


def shell(cmd):
    """Run a command."""
    return sp.run(cmd)


if True:
    def inside_if(x):
        """Defined under an if."""
        return x
'''


def _corpus(tmp_path: Path) -> Path:
    src = tmp_path / "corpus"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "good.py").write_text(_GOOD)
    (src / "bad_syntax.py").write_text("def broken(:\n    '''Nope.'''\n    return 1\n")
    (src / "py2.py").write_text("def f(x):\n    '''Py2.'''\n    print x\n")
    (src / "binary.py").write_bytes(b"\x00\xff\xfe garbage \x81")
    (src / "latin1.py").write_bytes(b"# -*- coding: latin-1 -*-\ndef caf():\n    '''Caf\xe9.'''\n    return 1\n")
    (src / "empty.py").write_text("")
    return src


def test_folder_source_counts_unparsable_files_and_records_provenance(tmp_path: Path) -> None:
    src = _corpus(tmp_path)
    ctx = _ctx(tmp_path, **{"seeds.source": str(src), "seeds.licence": "MIT", "seeds.include_methods": True})
    funnel = seeds.run(ctx)
    rows = _rows(ctx.workdir / "seeds.jsonl")
    names = sorted(r["name"] for r in rows)
    assert names == ["Box.area", "caf", "inside_if", "shell", "words"]
    assert funnel.extra["unparsable"] == 3 and funnel.extra["files"] == 6 and funnel.unit == "functions"
    assert (funnel.input, funnel.output, funnel.removed) == (6, 5, {"no docstring": 1})  # Box._hidden
    bad = _rows(ctx.workdir / "seeds.removed.jsonl")
    assert sorted(r["path"] for r in bad) == ["bad_syntax.py", "binary.py", "py2.py"]
    assert all(r["reason"] == "unparsable file" and r["error"] for r in bad)
    by = {r["name"]: r for r in rows}
    assert by["Box.area"]["seed"].startswith("def area(self, w: int, h: int) -> int:\n")  # dedented
    assert by["Box.area"]["lineno"] == 9 and by["Box.area"]["path"] == "pkg/good.py"
    assert by["words"]["imports"] == ["import re"] and by["shell"]["imports"] == ["import subprocess as sp"]
    assert by["Box.area"]["module_names"] == {} and by["words"]["module_names"] == {}
    assert by["caf"]["docstring"] == "Café." and all(r["licence"] == "MIT" for r in rows)
    # without methods: the default, as SelfCodeAlign takes top-level functions only
    ctx2 = _ctx(tmp_path / "b", **{"seeds.source": str(src)})
    seeds.run(ctx2)
    assert "Box.area" not in {r["name"] for r in _rows(ctx2.workdir / "seeds.jsonl")}
    # a cap on seeds: the first in path order, or a seeded random sample that does not depend on the order
    capped = seeds.run(_ctx(tmp_path / "c", **{"seeds.source": str(src), "seeds.max_seeds": 2, "seeds.sample": "first",
                                               "seeds.include_methods": True}))  # fmt: skip
    assert capped.output == 2 and any("max_seeds" in n for n in capped.notes)
    assert [r["name"] for r in _rows(tmp_path / "c" / "work" / "seeds.jsonl")] == ["caf", "Box.area"]
    picked = {}
    for label, seed in (("s1", 1), ("s1-again", 1), ("s2", 2), ("s3", 3)):
        f = seeds.run(_ctx(tmp_path / label, **{"seeds.source": str(src), "seeds.max_seeds": 3, "seed": seed,
                                                "seeds.include_methods": True}))  # fmt: skip
        assert f.output == 3 and f.removed["over seeds.max_seeds"] == 2
        picked[label] = sorted(r["name"] for r in _rows(tmp_path / label / "work" / "seeds.jsonl"))
    assert picked["s1"] == picked["s1-again"] and len({tuple(v) for v in picked.values()}) > 1


def test_jsonl_source_with_the_stacks_provenance_columns(tmp_path: Path) -> None:
    data = _write_jsonl(tmp_path / "stack.jsonl", [
        {"content": _GOOD, "max_stars_repo_name": "octo/cat", "max_stars_repo_path": "src/good.py",
         "max_stars_repo_licenses": ["MIT", "Apache-2.0"]},
        {"content": 'def f(:\n    """Doc."""\n', "max_stars_repo_name": "octo/dog", "max_stars_repo_path": "bad.py"},
        {"content": "x = 1\n", "max_stars_repo_name": "octo/eel", "max_stars_repo_path": "plain.py"},
    ])  # fmt: skip
    ctx = _ctx(tmp_path, **{"seeds.source": str(data)})
    funnel = seeds.run(ctx)
    rows = _rows(ctx.workdir / "seeds.jsonl")
    assert {r["repository"] for r in rows} == {"octo/cat"} and {r["path"] for r in rows} == {"src/good.py"}
    assert {r["licence"] for r in rows} == {"MIT OR Apache-2.0"} and funnel.extra["unparsable"] == 1
    assert funnel.extra["files"] == 3 and funnel.extra["no documented function"] == 1
    assert seeds.parse_hf_source("hf:bigcode/the-stack") == ("bigcode/the-stack", "data/python", "train")
    assert seeds.parse_hf_source("hf:org/name/data/go:test") == ("org/name", "data/go", "test")
    with pytest.raises(HarnessError, match="OWNER/NAME"):
        seeds.parse_hf_source("hf:justaname")
    with pytest.raises(HarnessError, match="does not exist"):
        seeds.run(_ctx(tmp_path / "c", **{"seeds.source": str(tmp_path / "nope")}))


def test_seeds_stage_resumes_after_a_rerun_and_a_torn_line(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, **{"seeds.source": str(_corpus(tmp_path))})
    first = seeds.run(ctx)
    out = ctx.workdir / "seeds.jsonl"
    full = out.read_text()
    again = seeds.run(ctx)
    assert out.read_text() == full and again.skipped_done == first.output == again.output
    assert len(_rows(ctx.workdir / "seeds.removed.jsonl")) == 3  # unparsable files are not listed twice
    # an interruption mid-write: the last line torn in half
    lines = full.splitlines(keepends=True)
    out.write_text("".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])
    resumed = seeds.run(ctx)
    assert resumed.skipped_done == len(lines) - 2 and resumed.output == len(lines)
    assert sorted(out.read_text().splitlines()) == sorted(full.splitlines())


def test_long_extractions_print_progress_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seeds, "PROGRESS_EVERY", 0.0)
    log: list[str] = []
    config = load_config(None, {"model": "replay:x", "workdir": str(tmp_path / "w"), "seeds.source": str(_corpus(tmp_path))})
    seeds.run(Context(config, Path(config.workdir), echo=log.append))
    lines = [x for x in log if re.match(r"\[seeds\] \d+ files, [\d.]+ MB of [\d.]+ \(\d+%\), ETA \d+m\d\ds; \d+ seeds", x)]
    assert len(lines) >= 5, log


def test_cli_runs_the_seeds_stage(tmp_path: Path) -> None:
    src = _corpus(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "harness", "generate", "seeds", "--model", "replay:x",
                           "--workdir", str(tmp_path / "w"), "--set", f"seeds.source={src}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[seeds] in 4 functions, out 4, removed: none" in proc.stdout, proc.stdout
    funnel = json.loads((tmp_path / "w" / "funnel.json").read_text())["seeds"]
    assert funnel["output"] == 4


# -------------------------------------------------------------------------------------------------- filters


def _reason(seed: str, imports: list[str] | None = None, **cfg: Any) -> str | None:
    return filters.static_check(textwrap.dedent(seed).lstrip("\n"), imports or [], FilterConfig(**cfg)).reason


def test_banned_imports_match_whole_names_only() -> None:
    ok = '''
    def f(x, signal):
        """Cosine of x, osmosis style; uses os in the docstring only."""
        osmosis = cos(x) + signal.shape[0]
        return osmosis
    '''
    assert _reason(ok, ["from math import cos"]) is None
    assert _reason(ok, ["from math import cos", "import os", "import sys"]) is None  # imported, never used
    for body in ("import os\n    return os.sep", "from os import path\n    return path", "return os.getcwd()",
                 "import os.path\n    return 1", "return __import__('os').sep",
                 "from os.path import join as j\n    return j('a')"):  # fmt: skip
        assert _reason(f'def g():\n    """Doc."""\n    {body}\n') == "banned import", body
    shell = 'def run(cmd):\n    """Run it."""\n    return sp.run(cmd)\n'
    assert _reason(shell, ["import subprocess as sp"]) == "banned import"
    assert _reason(shell, ["import subprocessor as sp"]) is None  # a different module, not a prefix match
    assert _reason(shell, ["from shutil import *"]) == "banned import"
    assert _reason(shell, []) is None
    assert _reason(shell, ["import subprocess as sp"], banned_imports=[]) is None
    local = 'def h(path):\n    """Join."""\n    os = path\n    return os.sep\n'  # a local called os
    assert _reason(local) is None


def test_markers_returns_and_length() -> None:
    base = 'def f(x):\n    """Double x."""\n    {}\n    return x * 2\n'
    assert _reason(base.format("# TODO: faster")) == "banned marker"
    assert _reason(base.format("# FIXME")) == "banned marker"
    assert _reason(base.format("# todo later, TODOS, XXXL")) is None  # case and whole words
    assert _reason(base.format("raise NotImplementedError")) == "banned marker"  # a stub
    assert _reason(base.format("y = NotImplemented")) is None  # not a default marker
    protocol = 'def __eq__(self, other):\n    """Equal when both hold the same x."""\n    if not isinstance(other, P):\n' \
               '        return NotImplemented\n    return self.x == other.x\n'  # fmt: skip
    assert _reason(protocol) is None
    assert _reason(protocol, banned_markers=["NotImplemented"]) is None  # ``return NotImplemented`` is no marker
    assert _reason(base.format("y = NotImplemented"), banned_markers=["NotImplemented"]) == "banned marker"
    assert _reason('def f():\n    """Answer."""\n    return 42\n') == "no arguments"
    assert _reason('def f():\n    """Answer."""\n    return 42\n', require_arguments=False) is None
    assert _reason('def f(x):\n    """Double x."""\n    return x * 2\n') is None
    assert _reason('def f(x):\n    """Nested only."""\n    def g():\n        return 1\n    g()\n') == "no return value"
    assert _reason('def f(x):\n    """Lambda only."""\n    h = lambda: 1\n    print(h)\n') == "no return value"
    assert _reason('def f(x):\n    """None."""\n    if x:\n        return\n    return None\n') == "no return value"
    assert _reason('def f(x):\n    """Gen."""\n    yield x\n') == "no return value"
    assert _reason('async def f(x):\n    """Async."""\n    return await x\n') is None
    assert _reason('def f(x):\n    return x\n') == "no docstring"
    assert _reason('def f(x:\n    return x\n') == "does not parse"
    assert _reason('x = 1\n') == "not a function"
    long = 'def f(x):\n    """Long."""\n' + "    x += 1\n" * 6 + "    return x\n"
    assert _reason(long, max_lines=8) == "too long" and _reason(long, max_lines=9) is None


_TYPED_OK = '''
def mean(values: list[float]) -> float:
    """Arithmetic mean of a non-empty list."""
    return sum(values) / len(values)
'''
_TYPED_BAD = '''
def shout(text: str) -> int:
    """Upper-case ``text``."""
    return text.upper()
'''
_UNDEFINED = '''
def total(xs):
    """Sum via a helper that this seed does not define."""
    return _helper(xs)
'''
_WITH_IMPORT = '''
def words(text):
    """Words of text."""
    return re.findall(r"\\w+", text)
'''


def _checker() -> str:
    try:
        return filters.find_checker()
    except HarnessError as exc:
        pytest.skip(f"no type checker: {exc}")


def test_typecheck_filter_runs_a_real_checker() -> None:
    checker = _checker()
    texts = [filters.typecheck_file_text(textwrap.dedent(s).lstrip(), imports) for s, imports in
             ((_TYPED_OK, []), (_TYPED_BAD, []), (_UNDEFINED, []), (_WITH_IMPORT, ["import re"]),
              (_WITH_IMPORT, []))]  # fmt: skip
    # with the module's names in scope: a helper function, a class used in an annotation and called, a constant
    uses_module = 'def scaled(p: Point, k: float = SCALE) -> float:\n    """Scale."""\n    return _helper(p.x) * k + Point(1).y\n'
    module = {"_helper": "function", "Point": "class", "SCALE": "value"}
    texts += [filters.typecheck_file_text(textwrap.dedent(_UNDEFINED).lstrip(), [], {"_helper": "function"}),
              filters.typecheck_file_text(uses_module, [], module), filters.typecheck_file_text(uses_module, [])]
    results = filters.typecheck(texts, checker, batch=4, timeout=120, workers=2)
    assert [r.status for r in results] == ["ok", "error", "error", "ok", "error", "ok", "ok", "error"], results
    assert "int" in results[1].detail and "_helper" in results[2].detail and "re" in results[4].detail


def test_typecheck_batch_timeouts_are_never_silent() -> None:
    from harness.execution import Sandbox, SandboxSettings

    checker = _checker()
    texts = [filters.typecheck_file_text(textwrap.dedent(_TYPED_OK).lstrip(), [])] * 3
    with Sandbox(SandboxSettings(workers=1)) as sandbox:
        results = filters.typecheck(texts, checker, batch=3, timeout=0.01, sandbox=sandbox)
        assert [r.status for r in results] == ["timeout"] * 3 and "no answer" in results[0].detail
        # a checker the sandbox cannot start is no seed's fault: one clear error, not every seed removed
        with pytest.raises(HarnessError, match="type checker cannot start in the sandbox"):
            filters.typecheck(texts, "/nonexistent/basedpyright", batch=3, timeout=5, sandbox=sandbox)


def test_missing_checker_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(filters.shutil, "which", lambda _: None)
    monkeypatch.setattr(filters.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(HarnessError, match="pip install basedpyright"):
        filters.find_checker()


def test_benchmark_filter_removes_a_planted_humaneval_function(tmp_path: Path, data_dir: Path) -> None:
    from harness import benchmark as registry

    problem = registry.get("humaneval", data_dir=data_dir).problems()["HumanEval/0"]
    planted = problem.prompt[problem.prompt.index("def ") :] + problem.canonical_solution
    rows = [_seed_row(planted, "planted", ["from typing import List"]),
            _seed_row(_TYPED_OK, "clean")]  # fmt: skip
    ctx = _ctx(tmp_path, data_dir=str(data_dir), **{"filter.typecheck": False, "filter.judge": False,
                                                    "filter.benchmarks": ["humaneval"]})  # fmt: skip
    _write_jsonl(ctx.workdir / "seeds.jsonl", rows)
    funnel = filters.run(ctx)
    assert [r["key"] for r in _rows(ctx.workdir / "filter.jsonl")] == ["clean"]
    removed = _rows(ctx.workdir / "filter.removed.jsonl")
    assert [(r["key"], r["reason"]) for r in removed] == [("planted", "benchmark item (humaneval HumanEval/0)")]
    assert funnel.removed == {"benchmark item": 1}


def test_filter_stage_type_checks_and_asks_the_model_and_resumes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from harness.execution import CommandJob, Sandbox

    checker = _checker()
    # The checker runs as a sandbox job (as graded programs do), never as a child of the harness process.
    jobs: list[tuple[Any, Any]] = []
    spawned: list[str] = []
    real_run, real_popen = Sandbox.run, subprocess.Popen

    def run(sb: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
        jobs.extend((sb, job) for job in batch)
        return real_run(sb, batch, *args, **kwargs)

    def popen(argv: Any, *args: Any, **kwargs: Any) -> Any:
        spawned.append(" ".join(map(str, argv)) if isinstance(argv, (list, tuple)) else str(argv))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(Sandbox, "run", run)
    monkeypatch.setattr(subprocess, "Popen", popen)
    good = _seed_row(_TYPED_OK, "a-good")
    vague = _seed_row('def f(x: int) -> int:\n    """Does stuff."""\n    return x + 1\n', "b-vague")
    bad = _seed_row(_TYPED_BAD, "c-typeerror")
    marker = _seed_row('def g(x: int) -> int:\n    """Add one."""\n    # TODO\n    return x + 1\n', "d-marker")
    helper = {**_seed_row(_UNDEFINED, "e-helper"), "module_names": {"_helper": "function"}}
    cfg, seed = FilterConfig(), 3407
    answers = _write_jsonl(tmp_path / "judge.jsonl", [
        {"prompt": filters.judge_prompt_for(good, cfg, seed), "completion": " Yes"},
        {"prompt": filters.judge_prompt_for(vague, cfg, seed), "completion": " No, it says nothing. No"},
        {"prompt": filters.judge_prompt_for(helper, cfg, seed), "completion": " Yes"},
    ])  # fmt: skip
    ctx = _ctx(tmp_path, model=f"replay:{answers}", **{"filter.decontaminate": False, "filter.typecheck_batch": 2})
    _write_jsonl(ctx.workdir / "seeds.jsonl", [good, vague, bad, marker, helper])
    funnel = filters.run(ctx)
    sandbox = ctx._sandbox
    ctx.close()
    # two batches of 2 under the module scope, then the helper's seed alone: all jobs of the stage's sandbox
    assert len(jobs) == 3 and all(sb is sandbox for sb, _ in jobs)
    assert all(isinstance(j, CommandJob) and j.steps[0].argv[0] == checker and "pyrightconfig.json" in j.files
               for _, j in jobs) and sum(len(j.files) - 1 for _, j in jobs) == 5  # fmt: skip
    assert spawned and not [c for c in spawned if checker in c], spawned
    assert [r["key"] for r in _rows(ctx.workdir / "filter.jsonl")] == ["a-good", "e-helper"]
    reasons = {r["key"]: r["reason"] for r in _rows(ctx.workdir / "filter.removed.jsonl")}
    assert reasons == {"b-vague": "docstring judged poor", "c-typeerror": "type error", "d-marker": "banned marker"}
    assert funnel.removed == {"docstring judged poor": 1, "type error": 1, "banned marker": 1}
    assert funnel.output == 2 and funnel.input == 5 and funnel.extra["checker"] in ("basedpyright", "pyright")
    # the helper's seed passes with its module's names in scope; alone it would not: both counts reported
    assert funnel.extra["typecheck"] == {"scope": "module", "checked": 4, "errors_with_module_names": 1,
                                         "errors_seed_alone": 2}  # fmt: skip
    # a rerun writes nothing new
    size = [(ctx.workdir / n).read_text() for n in ("filter.jsonl", "filter.removed.jsonl")]
    again = filters.run(ctx)
    assert again.skipped_done == 5 and again.output == 2 and again.removed == funnel.removed
    assert [(ctx.workdir / n).read_text() for n in ("filter.jsonl", "filter.removed.jsonl")] == size
    assert "Yes" in filters.judge_prompt("def x(): pass") and filters.judge_prompt("X").endswith(
        filters.JUDGE_QUESTION)
    assert filters.judge_says_yes(" Yes.") and not filters.judge_says_yes(" No") and not filters.judge_says_yes("")
    # SelfCodeAlign's majority rule: more yes than no words, a tie is No
    assert filters.judge_says_yes("Yes, yes. No") and not filters.judge_says_yes("Yes no") and \
        not filters.judge_says_yes("Not sure, I know")  # fmt: skip
    shots = filters.judge_prompt_for(good, cfg, seed)
    assert shots.count("### Function") == 8 and shots != filters.judge_prompt_for(vague, cfg, seed).replace(
        vague["seed"].rstrip(), good["seed"].rstrip())  # 7 exemplars, an order per seed
    # the unfiltered-seeds ablation: every seed passes, no checker or model asked
    off = _ctx(tmp_path / "off", **{"filter.enabled": False})
    _write_jsonl(off.workdir / "seeds.jsonl", [good, vague, bad, marker, helper])
    unfiltered = filters.run(off)
    assert (unfiltered.output, unfiltered.removed) == (5, {}) and "filter.enabled = false" in unfiltered.notes[0]


def test_filter_before_seeds_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="harness generate seeds"):
        filters.run(_ctx(tmp_path))


# ---------------------------------------------------------------------------------------------------- dedup


_BASE = '''def merge_intervals(intervals):
    """Merge overlapping closed intervals given as (start, end) pairs; returns them sorted."""
    ordered = sorted(intervals)
    merged = [list(ordered[0])]
    for start, end in ordered[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [tuple(m) for m in merged]
'''


def test_near_duplicates_cluster_and_short_texts_are_kept() -> None:
    near = _BASE.replace("merged.append([start, end])", "merged.append([start, end])  # a new interval")
    renamed = _BASE.replace("merged", "out").replace("ordered", "by_start").replace("end", "hi")  # J = 0.09
    other = "def area(w, h):\n    '''Area.'''\n    return w * h * 1.0 + 0.0 - 0.0\n"
    texts = [_BASE, "x = 1", near, other, "X = 1", "y = 2", renamed, "", "  ", _BASE.upper()]
    found = dedup.find_near_duplicates(texts, threshold=0.5)
    clusters = sorted(sorted(c) for c in found.clusters)
    # the exact and the near copy with the base (also the upper-cased copy: tokens are lowercased); short
    # texts only exactly (x = 1 and X = 1 are one normalised text), empty texts together
    assert clusters == [[0, 2, 9], [1, 4], [3], [5], [6], [7, 8]]
    assert found.short[[1, 4, 5, 7, 8]].all() and not found.short[[0, 2, 3, 6]].any()
    assert found.duplicate(0, 2) and found.duplicate(0, 9) and not found.duplicate(0, 6)
    assert dedup.near_duplicates(texts, 0.5) == found.clusters
    assert dedup.near_duplicates([], 0.5) == []


def _shingles(text: str, n: int = 5) -> set[bytes]:
    toks = re.findall(rb"[A-Za-z0-9_\x80-\xff]+", text.encode().lower())
    return {b" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def test_exact_jaccard_agrees_with_python_sets() -> None:
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(40)] + ["Ünïcode", "snake_case", "CamelCase"]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 80))) for _ in range(60)]
    texts += [t.replace("w1 ", "w2 ", 1) for t in texts[:20]]
    h = dedup.hash_corpus(texts, 5)
    pairs = np.array([(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))])
    got = dedup.exact_jaccard(h.shingles, h.offsets, pairs)
    want = [len(_shingles(texts[i]) & _shingles(texts[j])) / len(_shingles(texts[i]) | _shingles(texts[j]))
            for i, j in pairs]  # fmt: skip
    assert np.allclose(got, want)
    assert dedup.band_shape(0.5, 128) == (32, 4)


def test_near_duplicate_clusters_hold_only_confirmed_pairs() -> None:
    rng = random.Random(7)
    vocab = [f"tok{i}" for i in range(300)]
    bases = [[rng.choice(vocab) for _ in range(rng.randint(30, 120))] for _ in range(60)]
    texts = []
    for words in bases:
        texts.append(" ".join(words))
        for _ in range(rng.randint(0, 4)):  # variants: a few words changed, some far apart, some close
            w = list(words)
            for _ in range(rng.choice([1, 2, 3, 15, 40])):
                w[rng.randrange(len(w))] = rng.choice(vocab)
            texts.append(" ".join(w))
    found = dedup.find_near_duplicates(texts, threshold=0.5)
    assert sorted(i for c in found.clusters for i in c) == list(range(len(texts)))
    sets = [_shingles(t) for t in texts]

    def jac(i: int, j: int) -> float:
        return len(sets[i] & sets[j]) / len(sets[i] | sets[j])

    assert all(jac(int(i), int(j)) >= 0.5 for i, j in found.pairs) and np.allclose(
        found.jaccard, [jac(int(i), int(j)) for i, j in found.pairs])
    cluster_of = {i: k for k, c in enumerate(found.clusters) for i in c}
    pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
    said = found.duplicates(np.array(pairs))
    for (i, j), dup in zip(pairs, said):
        js = jac(i, j)
        if js >= 0.8:  # LSH misses a pair this similar with odds below 1e-7
            assert dup and cluster_of[i] == cluster_of[j], (i, j, js)
        if dup:
            assert js >= 0.5 and cluster_of[i] == cluster_of[j]


def test_dedup_stage_keeps_one_per_cluster_and_resumes(tmp_path: Path) -> None:
    near = _BASE.replace("return [tuple(m) for m in merged]", "return [tuple(pair) for pair in merged]")
    rows = [_seed_row(_BASE, "k3"), _seed_row(near, "k1"), _seed_row("def s():\n    '''S.'''\n    return 1\n", "k2"),
            _seed_row("def s():\n  '''s.'''\n  return 1\n", "k4"), _seed_row(_BASE, "k3")]  # fmt: skip
    ctx = _ctx(tmp_path)
    _write_jsonl(ctx.workdir / "filter.jsonl", rows)
    funnel = dedup.run(ctx)
    assert [r["key"] for r in _rows(ctx.workdir / "dedup.jsonl")] == ["k1", "k2"]
    removed = {r["key"]: (r["reason"], r["of"]) for r in _rows(ctx.workdir / "dedup.removed.jsonl")}
    assert removed == {"k3": ("near duplicate", "k1"), "k4": ("exact duplicate", "k2")}
    assert funnel.input == 4 and funnel.output == 2 and funnel.extra["cluster_sizes"] == {"2": 2}
    assert funnel.removed == {"near duplicate": 1, "exact duplicate": 1}
    again = dedup.run(ctx)
    assert again.skipped_done == 4 and again.output == 2 and len(_rows(ctx.workdir / "dedup.jsonl")) == 2
    # a seed kept before stays kept when an earlier key arrives later
    _write_jsonl(ctx.workdir / "filter.jsonl", [*rows, _seed_row(near + "\n", "k0")])
    dedup.run(ctx)
    assert [r["key"] for r in _rows(ctx.workdir / "dedup.jsonl")] == ["k1", "k2"]
    assert {r["key"]: r["of"] for r in _rows(ctx.workdir / "dedup.removed.jsonl")}["k0"] == "k1"
