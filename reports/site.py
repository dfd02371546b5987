"""The browsable report site: one page per run and one per comparison, beside the index (:mod:`reports.html`).

Layout (every page opens from disk, ``file://``, with no server and no network asset)::

    DIR/report.html, DIR/index.html   the index: leaderboard, comparisons, plots, all runs (reports.html)
    DIR/runs/<id>.html                a run: model, dataset, settings, generation, pass@k, failure modes, its tasks
    DIR/runs/<id>/t<k>.js             task k: prompt, every sample's program, failing input, reason, CPU time,
                                      raw generation (loaded when the task is opened)
    DIR/compare/<a>-<b>.html          a comparison: bootstrap interval, McNemar p, settings that changed, flips
    DIR/compare/<a>-<b>/c<k>.js       flipped task k: both programs side by side as a diff, both failing inputs
    DIR/assets/site.css, site.js      the styles, the chunk loader, the filters and the highlighter

The per-task files are JSONP-style scripts (``HarnessSite.loaded(key, data)``) because browsers refuse
``fetch()`` of ``file://`` JSON; a page holds only its summary table, so a run of 164 tasks x 200 samples is a
small page and a few megabytes of task files beside it. Programs are stored once per task (greedy runs repeat
them). Everything taken from a record, a program or a model reply is escaped in the HTML (``html.escape``),
in inline JSON (``<``, ``>``, ``&`` as ``\\u`` escapes) and put into the page as text by ``site.js``.
"""

from __future__ import annotations

import contextlib
import difflib
import html
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.registry import RunEntry
from harness.store import RunRecord, SampleResult, TaskResult
from reports.compare import Comparison, suite_label
from reports.site_assets import SITE_CSS, SITE_JS

#: Longest text of one value put into a page (inputs and expected values can be megabytes).
MAX_VALUE_CHARS = 2_000
#: Longest program or raw generation kept (a runaway generation should not make a 50 MB task file).
MAX_PROGRAM_CHARS = 100_000

e = html.escape


# ---------------------------------------------------------------------- escaping helpers
def json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script>`` and in a ``.js`` file: ``<``, ``>``, ``&`` and U+2028/9 escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))  # fmt: skip


def _clip(text: str | None, limit: int = MAX_VALUE_CHARS) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit:,} more characters)"


def _value_text(value: Any) -> str:
    """A test value as a person reads it (repr for Python values), clipped."""
    text = value if isinstance(value, str) else repr(value)
    return _clip(text) or ""


def _write(path: Path, text: str) -> None:
    """Write a file whole (a half-written page is never left behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_assets(output: Path) -> None:
    """``DIR/assets/site.css`` and ``site.js``."""
    _write(output / "assets" / "site.css", SITE_CSS)
    _write(output / "assets" / "site.js", SITE_JS)


def page(title: str, body: str, depth: int, crumbs: Sequence[tuple[str, str | None]] = ()) -> str:
    """A whole HTML page; ``depth`` is how many folders below the site root it lives (for asset paths)."""
    up = "../" * depth
    nav = ""
    if crumbs:
        parts = [f'<a href="{e(href)}">{e(text)}</a>' if href else e(text) for text, href in crumbs]
        nav = f'<nav class="crumbs">{" › ".join(parts)}</nav>'
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{e(title)}</title><link rel="stylesheet" href="{up}assets/site.css">'
            f'<script src="{up}assets/site.js"></script></head><body>{nav}{body}</body></html>\n')  # fmt: skip


def run_href(run_id: str) -> str:
    """A run page's path relative to the site root."""
    return f"runs/{run_id}.html"


def compare_href(a: str, b: str) -> str:
    """A comparison page's path relative to the site root."""
    return f"compare/{a}-{b}.html"


# ---------------------------------------------------------------------- what a run's files hold
@dataclass
class RunData:
    """A run record with what the report can find beside it: its benchmark's problems, samples, raw replies."""

    entry: RunEntry
    record: RunRecord
    bench: Any = None
    problems: dict[str, Any] = field(default_factory=dict)
    samples: dict[int, list[Any]] = field(default_factory=dict)
    raws: dict[int, dict[str, Any]] = field(default_factory=dict)
    facet_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def sample_of(self, sr: SampleResult, task_id: str, k: int) -> Any:
        """The samples-file entry of a graded sample (by its line; the k-th of the task on that line)."""
        rows = [s for s in self.samples.get(sr.line or -1, []) if getattr(s, "task_id", task_id) == task_id]
        return rows[min(k, len(rows) - 1)] if rows else None

    def program(self, task_id: str, sample: Any) -> str | None:
        """The program that was graded for a sample (the benchmark assembles it as grading did)."""
        if sample is None:
            return None
        if getattr(sample, "program", None):
            return sample.program
        problem = self.problems.get(task_id)
        if self.bench is not None and problem is not None:
            try:
                return str(self.bench.program(problem, sample.solution, sample.completion))
            except Exception:  # noqa: BLE001 - a plugin's assembly failing must not sink the report
                pass
        return sample.solution if sample.solution is not None else sample.completion


def _resolve(path_text: str | None, base: Path) -> Path | None:
    if not path_text:
        return None
    p = Path(path_text)
    if not p.is_absolute():
        p = base / p
    return p if p.is_file() else None


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """A report reads benchmark data that is on disk and never downloads it (a report must not fetch a
    dataset; a run page without prompts says why). ``HARNESS_OFFLINE`` is read through ``harness.settings``."""
    old = os.environ.get("HARNESS_OFFLINE")
    os.environ["HARNESS_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HARNESS_OFFLINE", None)
        else:
            os.environ["HARNESS_OFFLINE"] = old


def _reader(name: str, data_dir: Path | None, readers: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """The benchmark (for reading) and its problems, loaded once per report (a dataset parse can take a second)."""
    if readers is not None and name in readers:
        got = readers[name]
        if isinstance(got, Exception):
            raise got
        return got
    try:
        from harness.benchmark import reader

        with _offline():
            bench = reader(name, data_dir)
            got = (bench, dict(bench.problems()))
    except Exception as exc:  # noqa: BLE001 - remembered, so a missing dataset is looked for once
        if readers is not None:
            readers[name] = exc
        raise
    if readers is not None:
        readers[name] = got
    return got


def load_run_data(entry: RunEntry, data_dir: Path | None = None, readers: dict[str, Any] | None = None) -> RunData:
    """Read a run's record and whatever beside it the run page shows (each missing piece is a note, not an error).

    Prompts and facets (library, difficulty, platform, date) come from the benchmark, when it is installed and
    its data can be found (``data_dir``, ``$HARNESS_DATA_DIR``, the cache); programs from the samples file the
    record names; raw generations from ``generations.jsonl`` beside the samples of a ``harness eval`` run.
    """
    record = entry.record()
    data = RunData(entry=entry, record=record)
    run_dir = Path(entry.path).parent
    try:
        bench, data.problems = _reader(record.benchmark, data_dir, readers)
        data.bench = bench
        data.facet_names = [b for b in getattr(bench, "breakdowns", ()) if isinstance(b, str)]
    except Exception as exc:  # noqa: BLE001 - no benchmark or no data: the page says so, the rest still shows
        data.notes.append(f"prompts not shown: benchmark {record.benchmark!r} could not be read here "
                          f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")  # fmt: skip
    samples_path = _resolve(record.samples_file, run_dir)
    if samples_path is None and record.samples_file:
        data.notes.append(f"programs not shown: the samples file {record.samples_file} is gone")
    elif samples_path is None:
        data.notes.append("programs not shown: the record names no samples file")
    if samples_path is not None:
        try:
            if data.bench is not None:
                loaded, _ = data.bench.load_samples(samples_path, skip_bad=True)
            else:
                from harness.samples import load_samples

                loaded, _ = load_samples(samples_path, skip_bad=True)
            for s in loaded:
                data.samples.setdefault(s.line, []).append(s)
        except Exception as exc:  # noqa: BLE001 - an unreadable samples file leaves the verdicts to show
            data.notes.append(f"programs not shown: {samples_path} could not be read ({exc})")
    if record.generation is not None and samples_path is not None:
        gen = samples_path.parent / "generations.jsonl"
        if gen.is_file():
            with gen.open(encoding="utf-8", errors="replace") as f:
                for k, line in enumerate(f, start=1):
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict):
                        data.raws[k] = row
    return data


# ---------------------------------------------------------------------- per-sample facts
def failure_mode(sr: SampleResult) -> str:
    """The sample's failure mode as the record has it (``failure_mode``), else its verdict status."""
    mode = getattr(sr, "failure_mode", None)
    if isinstance(mode, str) and mode:
        return mode
    return sr.verdict.status


def run_failure_modes(record: RunRecord) -> dict[str, int]:
    """Per-run counts: the record's ``failure_modes`` when present, else counted from the samples."""
    counts = getattr(record, "failure_modes", None)
    if isinstance(counts, dict) and counts:
        return {str(k): int(v) for k, v in counts.items()}
    found = Counter(failure_mode(s) for t in record.tasks.values() for s in t.samples)
    return dict(found.most_common())


def first_failure(data: RunData, task_id: str, sr: SampleResult) -> dict[str, Any] | None:
    """The first suite the sample failed, its first failing input, the reason and (where the benchmark can say)
    that input's value and the expected value."""
    v = sr.verdict
    if v.status == "pass":
        return None
    for suite, part in v.parts.items():
        if part.status == "pass":
            continue
        index = part.failed[0] if part.failed else (-1 if -1 in part.reasons else None)
        reason = part.reasons.get(index) if index is not None else None
        reason = reason or part.reasons.get(-1) or next(iter(part.reasons.values()), None) or part.status
        out: dict[str, Any] = {"suite": suite, "index": index, "reason": _clip(reason)}
        details = getattr(part, "details", None)  # a grader that records the values (expected / returned)
        if isinstance(details, dict) and index is not None:
            d = details.get(index) or details.get(str(index))
            if isinstance(d, dict):
                for key in ("input", "expected", "returned", "answer"):
                    if key in d:
                        out[key] = _value_text(d[key])
        hook = getattr(data.bench, "test_case", None)
        if callable(hook) and index is not None and index >= 0 and "input" not in out:
            try:
                case = hook(task_id, suite, index)
            except Exception:  # noqa: BLE001 - a plugin hook failing leaves the reason to show
                case = None
            if isinstance(case, dict):
                for key in ("input", "expected"):
                    if key in case and key not in out:  # what the grader recorded wins
                        out[key] = _value_text(case[key])
        return out
    if v.error:
        return {"suite": None, "index": None, "reason": _clip(v.error)}
    return None


def _sample_json(data: RunData, task_id: str, sr: SampleResult, i: int, k: int,
                 programs: dict[str, int], raws: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    sample = data.sample_of(sr, task_id, k)
    program = data.program(task_id, sample)
    pid = None
    if program is not None:
        program = _clip(program, MAX_PROGRAM_CHARS) or ""
        pid = programs.setdefault(program, len(programs))
    raw = data.raws.get(sr.line or -1)
    rid = None
    if raw is not None:
        raws.append({"text": _clip(str(raw.get("text", "")), MAX_PROGRAM_CHARS),
                     "response_prefix": str(raw.get("response_prefix") or ""),
                     "finish_reason": raw.get("finish_reason"),
                     "completion_tokens": raw.get("completion_tokens")})  # fmt: skip
        rid = len(raws) - 1
    return {
        "i": i, "line": sr.line, "status": sr.verdict.status, "mode": failure_mode(sr),
        "exception": getattr(sr, "exception", None),
        "reason": _clip(sr.reason), "cached": sr.verdict.cached,
        "suites": {s: p.status for s, p in sr.verdict.parts.items()},
        "cpu": {s: round(p.cpu_seconds, 4) for s, p in sr.verdict.parts.items()},
        "failing": first_failure(data, task_id, sr), "program": pid, "raw": rid,
        "program_note": None if pid is not None else _missing_program(data, sr),
    }  # fmt: skip


def _missing_program(data: RunData, sr: SampleResult) -> str:
    """Why a sample's program cannot be shown."""
    if not data.samples:
        return data.notes[-1] if data.notes else "the samples file could not be read"
    if sr.line is None:
        return "the record does not say which line of the samples file this sample is"
    return f"line {sr.line} of the samples file holds no sample of this task (the file changed since grading)"


def task_status(record: RunRecord, t: TaskResult) -> str:
    """``pass`` (every sample passed every suite), ``fail`` (none did), else ``mixed``."""
    last = record.suites[-1] if record.suites else None
    passed = t.correct.get(last, 0) if last else sum(s.verdict.status == "pass" for s in t.samples)
    if t.n and passed == t.n:
        return "pass"
    return "fail" if passed == 0 else "mixed"


def facets_of(data: RunData, task_id: str) -> dict[str, str]:
    """The task's values of the benchmark's breakdown facets (DS-1000's library, LiveCodeBench's difficulty,
    platform) and its date, where the problem has them."""
    problem = data.problems.get(task_id)
    if problem is None:
        return {}
    out: dict[str, str] = {}
    extra = getattr(problem, "extra", {}) or {}
    for name in data.facet_names:
        value = extra.get(name)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
            out[name] = str(value)
    try:
        when = data.bench.problem_date(problem) if data.bench is not None else None
    except Exception:  # noqa: BLE001 - a problem without a date
        when = None
    if when is not None:
        out["date"] = str(when)
    return out


# ---------------------------------------------------------------------- the run page
def _facts(rows: Iterable[tuple[str, Any]], changed: set[str] | None = None) -> str:
    items = []
    for key, value in rows:
        if value is None or value == "" or value == {}:
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        cls = ' class="changed"' if changed and key in changed else ""
        items.append(f"<dt{cls}>{e(key)}</dt><dd{cls}>{e(text)}</dd>")
    return f'<dl class="facts">{"".join(items)}</dl>'


def run_facts(entry: RunEntry, record: RunRecord) -> list[tuple[str, Any]]:
    """What a run was: model, benchmark, dataset and hash, options, settings, generation, versions."""
    g = record.generation
    rows: list[tuple[str, Any]] = [
        ("model", entry.model), ("benchmark", f"{record.title or record.benchmark} ({record.benchmark})"),
        ("dataset", f"{record.dataset.name} {record.dataset.version}"), ("dataset hash", record.dataset.hash),
        ("selection", record.selection), ("benchmark options", record.options),
        ("created", record.created), ("harness", f"{record.harness_version} (commit {record.git_commit or '?'})"),
        ("samples file", record.samples_file), ("samples sha256", record.samples_sha256),
        ("settings", record.settings.model_dump(mode="json")),
        ("tasks", f"{record.n_tasks} graded ({record.n_samples} samples)"
                  + (f", {len(record.missing_tasks)} not in the samples" if record.missing_tasks else "")),
        ("skipped samples", len(record.skipped) or None),
        ("timings", record.timings.model_dump(mode="json")),
    ]  # fmt: skip
    if g is not None:
        rows += [("generation model", f"{g.model} ({g.backend})"), ("prompt style", g.style),
                 ("sampling", g.sampling), ("engine options", g.options), ("model identity", g.identity),
                 ("tokens", f"{g.prompt_tokens} prompt, {g.completion_tokens} completion; {g.cached_samples} "
                            f"cached, {g.generated_samples} generated, {g.seconds:.1f} s"),
                 ("finish reasons", g.finish_reasons)]  # fmt: skip
    if entry.lineage:
        rows.append(("lineage", {k: v for k, v in entry.lineage.items() if k not in ("config",)}))
    rows += [(f"note {i + 1}", n) for i, n in enumerate(record.notes)]
    return rows


def facet_attr(name: str) -> str:
    """A facet's ``data-`` attribute name: lower-case letters, digits, ``-`` and ``_`` only (names come from
    plugins)."""
    return "data-facet-" + ("".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_"
                                    for ch in name.lower()) or "x")  # fmt: skip


def _select(table: str, attr: str, label: str, values: Iterable[str]) -> str:
    opts = "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in sorted(set(values)))
    return (f'<label>{e(label)} <select data-filter-of="{table}" data-attr="{attr}"><option value="">all</option>'
            f"{opts}</select></label>")  # fmt: skip


def write_run_page(output: Path, data: RunData, comparisons: Sequence[tuple[str, str]] = ()) -> Path:
    """``runs/<id>.html`` and its task files ``runs/<id>/t<k>.js``; ``comparisons``: (text, href) links."""
    entry, record = data.entry, data.record
    chunk_dir = output / "runs" / entry.id
    chunk_dir.mkdir(parents=True, exist_ok=True)
    modes = run_failure_modes(record)
    titles = record.suite_titles()
    suites = list(record.suites)
    all_facets = {tid: facets_of(data, tid) for tid in record.tasks}
    facet_values: dict[str, set[str]] = {}
    for facets in all_facets.values():
        for name, value in facets.items():
            facet_values.setdefault(name, set()).add(value)
    facet_cols = [n for n in [*data.facet_names, "date"] if facet_values.get(n)]
    rows: list[str] = []
    all_modes: set[str] = set()
    for k, (tid, t) in enumerate(record.tasks.items()):
        programs: dict[str, int] = {}
        raws: list[dict[str, Any]] = []
        per_line: Counter[int] = Counter()
        samples = []
        for i, sr in enumerate(t.samples):
            samples.append(_sample_json(data, tid, sr, i + 1, per_line[sr.line or -1], programs, raws))
            per_line[sr.line or -1] += 1
        problem = data.problems.get(tid)
        facets = all_facets[tid]
        chunk = {"task": tid, "facets": facets, "prompt": _clip(problem.prompt, MAX_PROGRAM_CHARS) if problem else None,
                 "prompt_note": None if problem else "prompt not available: " + "; ".join(data.notes[:1]),
                 "samples": samples, "programs": [p for p, _ in sorted(programs.items(), key=lambda kv: kv[1])],
                 "raws": raws}  # fmt: skip
        # Plain writes: the chunk folder is rebuilt whole by every report (see reports.html.SITE_FOLDERS).
        (chunk_dir / f"t{k}.js").write_text(f"HarnessSite.loaded({json_for_script(f't{k}')},{json_for_script(chunk)});\n",
                                            encoding="utf-8")
        task_modes = Counter(failure_mode(s) for s in t.samples)
        all_modes.update(task_modes)
        status = task_status(record, t)
        first_reason = next((s.reason for s in t.samples if s.verdict.status != "pass" and s.reason), None)
        counts = "".join(f"<td>{t.correct.get(s, 0)}/{t.n}</td>" for s in suites)
        facet_cells = "".join(f'<td class="left">{e(facets.get(n, ""))}</td>' for n in facet_cols)
        attrs = f' data-status="{e(status)}" data-mode="{e("|".join(task_modes))}"' + "".join(
            f' {facet_attr(n)}="{e(facets.get(n, ""))}"' for n in facet_cols)
        cpu = sum(p.cpu_seconds for s in t.samples for p in s.verdict.parts.values())
        modes_text = ", ".join(f"{m} {c}" for m, c in task_modes.items())
        rows.append(f'<tr data-key="t{k}" data-search="{e(tid)}"{attrs}><td class="left"><button type="button" '
                    f'class="task" aria-expanded="false">{e(tid)}</button></td><td class="left st-{e(status)}">'
                    f'{e(status)}</td>{counts}<td class="left">{e(modes_text)}</td>{facet_cells}<td>{cpu:.2f}</td>'
                    f'<td class="left">{e(_clip(first_reason, 160) or "")}</td></tr>')  # fmt: skip
    head = ('<th scope="col">task</th><th scope="col" class="left">status</th>'
            + "".join(f'<th scope="col">{e(titles.get(s, s))}</th>' for s in suites)
            + '<th scope="col" class="left">failure modes</th>'
            + "".join(f'<th scope="col" class="left">{e(n)}</th>' for n in facet_cols)
            + '<th scope="col">CPU s</th><th scope="col" class="left">first reason</th>')  # fmt: skip
    filters = [_select("tasks", "data-status", "status", ["pass", "fail", "mixed"]),
               _select("tasks", "data-mode", "failure mode", all_modes)]  # fmt: skip
    filters += [_select("tasks", facet_attr(n), n, facet_values[n]) for n in facet_cols]
    filters.append('<label>task <input type="search" data-search-of="tasks" placeholder="id contains"></label>'
                   '<span class="muted" data-count-of="tasks"></span>')  # fmt: skip
    passk = "".join(f"<tr><th scope=\"row\">{e(titles.get(s, s))}</th>"
                    + "".join(f"<td>{e(k)} {v * 100:.1f}%</td>" for k, v in ks.items()) + "</tr>"
                    for s, ks in record.pass_at_k.items())  # fmt: skip
    total = sum(modes.values()) or 1
    mode_rows = "".join(f'<tr><th scope="row" class="st-{e(m)}">{e(m)}</th><td>{c}</td><td>{c / total:.1%}</td></tr>'
                        for m, c in modes.items())  # fmt: skip
    mode_note = "" if getattr(record, "failure_modes", None) else (
        '<p class="muted">Verdict statuses (this record carries no failure modes).</p>')
    links = "".join(f'<li><a href="../{e(href)}">{e(text)}</a></li>' for text, href in comparisons)
    notes = "".join(f'<li class="warn">{e(n)}</li>' for n in data.notes)
    body = (f"<h1>{e(entry.model)} · {e(record.title or record.benchmark)}</h1>"
            f"<p class=\"muted\">run <code>{e(entry.id)}</code> · {e(entry.path)}</p>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "<h2>Run</h2>" + _facts(run_facts(entry, record))
            + f'<h2>pass@k</h2><table id="passk"><tbody>{passk}</tbody></table>'
            + f'<h2>Failure modes</h2>{mode_note}<table id="modes"><thead><tr><th scope="col">mode</th>'
            f'<th scope="col">samples</th><th scope="col">share</th></tr></thead><tbody>{mode_rows}</tbody></table>'
            + (f"<h2>Comparisons</h2><ul>{links}</ul>" if links else "")
            + f'<h2>Tasks</h2><div class="filters">{"".join(filters)}</div>'
            f'<table id="tasks"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "<script>HarnessSite.filters('tasks');HarnessSite.expander('tasks',function(k){return "
            f"{json_for_script(entry.id + '/')}+k+'.js';}},HarnessSite.renderTask);</script>")  # fmt: skip
    path = output / run_href(entry.id)
    _write(path, page(f"{entry.model} · {record.benchmark} · {entry.id}", body, 1,
                      [("report", "../report.html"), (f"run {entry.id}", None)]))  # fmt: skip
    return path


# ---------------------------------------------------------------------- the comparison page
def settings_rows(a: RunData, b: RunData) -> list[tuple[str, Any, Any]]:
    """(setting, A, B) for everything that can make two runs differ: dataset hash, options, prompt style,
    sampling, max tokens, engine, harness version and commit, grading settings."""
    ra, rb = a.record, b.record

    def gen(r: RunRecord, key: str) -> Any:
        g = r.generation
        if g is None:
            return None
        if key in ("model", "backend", "style"):
            return getattr(g, key)
        if key == "options":
            return g.options
        return g.sampling.get(key)

    rows: list[tuple[str, Any, Any]] = [
        ("model", a.entry.model, b.entry.model),
        ("dataset", f"{ra.dataset.name} {ra.dataset.version}", f"{rb.dataset.name} {rb.dataset.version}"),
        ("dataset hash", ra.dataset.hash, rb.dataset.hash),
        ("selection", ra.selection, rb.selection),
        ("benchmark options", ra.options, rb.options),
        ("tasks graded", ra.n_tasks, rb.n_tasks),
        ("samples per task", a.entry.samples_per_task, b.entry.samples_per_task),
        ("samples sha256", ra.samples_sha256, rb.samples_sha256),
        ("generation model", gen(ra, "model"), gen(rb, "model")),
        ("backend", gen(ra, "backend"), gen(rb, "backend")),
        ("prompt style", gen(ra, "style"), gen(rb, "style")),
        ("temperature", gen(ra, "temperature"), gen(rb, "temperature")),
        ("top_p", gen(ra, "top_p"), gen(rb, "top_p")),
        ("n", gen(ra, "n"), gen(rb, "n")),
        ("max tokens", gen(ra, "max_tokens"), gen(rb, "max_tokens")),
        ("seed", gen(ra, "seed"), gen(rb, "seed")),
        ("engine options", gen(ra, "options"), gen(rb, "options")),
        ("harness version", ra.harness_version, rb.harness_version),
        ("git commit", ra.git_commit, rb.git_commit),
        ("grader version", _grader(ra), _grader(rb)),
        ("grader salt (library versions, limits)", ra.settings.grader_salt, rb.settings.grader_salt),
        ("record schema", ra.schema_version, rb.schema_version),
    ]
    sa, sb = ra.settings.model_dump(mode="json"), rb.settings.model_dump(mode="json")
    shown = {"grader_version", "grader_salt"}
    rows += [(f"grading: {k}", sa.get(k), sb.get(k)) for k in dict.fromkeys([*sa, *sb]) if k not in shown]
    if a.entry.lineage or b.entry.lineage:
        la, lb = a.entry.lineage or {}, b.entry.lineage or {}
        rows += [("training data sha256", la.get("training_data_hash"), lb.get("training_data_hash")),
                 ("base model", la.get("base_model"), lb.get("base_model")),
                 ("checkpoint", la.get("checkpoint"), lb.get("checkpoint"))]  # fmt: skip
    return rows


def _grader(record: RunRecord) -> str:
    """The grader a run was graded with; records from before it was kept say so."""
    return record.settings.grader_version or "not recorded (graded before grader 3)"


def _text(value: Any) -> str:
    if value is None:
        return "–"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def diff_rows(a: str, b: str) -> list[list[Any]]:
    """Side-by-side rows ``[tag, line no. A, text A, line no. B, text B]``; tag eq, del, ins or rep."""
    la, lb = a.splitlines(), b.splitlines()
    out: list[list[Any]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [["eq", i + 1, la[i], j + 1, lb[j]] for i, j in zip(range(i1, i2), range(j1, j2))]
        elif tag == "delete":
            out += [["del", i + 1, la[i], None, None] for i in range(i1, i2)]
        elif tag == "insert":
            out += [["ins", None, None, j + 1, lb[j]] for j in range(j1, j2)]
        else:
            for k in range(max(i2 - i1, j2 - j1)):
                i, j = i1 + k, j1 + k
                out.append(["rep", i + 1 if i < i2 else None, la[i] if i < i2 else None,
                            j + 1 if j < j2 else None, lb[j] if j < j2 else None])  # fmt: skip
    return out


def _pick(t: TaskResult, suite: str, suites: list[str], passing: bool) -> int | None:
    """Index of the task's first sample that passed ``suite`` (and every suite before it), or failed it."""
    upto = suites[: suites.index(suite) + 1] if suite in suites else [suite]
    for i, s in enumerate(t.samples):
        ok = all(s.verdict.parts.get(x) is not None and s.verdict.parts[x].status == "pass" for x in upto)
        if not s.verdict.parts:
            ok = s.verdict.status == "pass"
        if ok == passing:
            return i
    return None


def _one_sample(data: RunData, task_id: str, index: int | None, programs: dict[str, int],
                raws: list[dict[str, Any]]) -> dict[str, Any] | None:  # fmt: skip
    if index is None or task_id not in data.record.tasks:
        return None
    t = data.record.tasks[task_id]
    sr = t.samples[index]
    k = sum(1 for s in t.samples[:index] if s.line == sr.line)
    return _sample_json(data, task_id, sr, index + 1, k, programs, raws)


def _failure_html(moved: Any) -> str:
    """Failure modes of both runs over the common tasks and how they moved (``reports.compare``'s movement)."""
    if moved is None:
        return ""
    names = list(dict.fromkeys([*moved.a, *moved.b]))
    rows = "".join(f'<tr><th scope="row" class="st-{e(m)}">{e(m)}</th><td>{moved.a.get(m, 0)}</td>'
                   f"<td>{moved.b.get(m, 0)}</td><td>{moved.b.get(m, 0) - moved.a.get(m, 0):+d}</td></tr>"
                   for m in names)  # fmt: skip
    cause = moved.cause() if callable(getattr(moved, "cause", None)) else None
    return (f"<h2>Failure modes</h2><p>{e(moved.text or 'no failure mode moved')}"
            + (f'. <b class="warn">{e(cause)}</b>' if cause else "") + "</p>"
            '<table id="failure-modes"><thead><tr><th scope="col">mode</th><th scope="col">A</th><th scope="col">B'
            f'</th><th scope="col">B − A</th></tr></thead><tbody>{rows}</tbody></table>')  # fmt: skip


def write_compare_page(output: Path, a: RunData, b: RunData, cmp: Comparison, title: str | None = None) -> Path:
    """``compare/<a>-<b>.html`` and one file per flipped task (``compare/<a>-<b>/c<k>.js``)."""
    slug = f"{a.entry.id}-{b.entry.id}"
    chunk_dir = output / "compare" / slug
    chunk_dir.mkdir(parents=True, exist_ok=True)
    stats, flips = [], []
    k = 0
    for s in cmp.suites.values():
        lo, hi = s.ci
        flag = ' class="worse"' if hi < 0 else (' class="better"' if lo > 0 else "")
        stats.append(f"<tr{flag}><th scope=\"row\">{e(s.label)}</th><td>{s.tasks}</td><td>{s.pass1_a * 100:.1f}</td>"
                     f"<td>{s.pass1_b * 100:.1f}</td><td>{s.diff * 100:+.1f}</td><td>[{lo * 100:+.1f}, {hi * 100:+.1f}]"
                     f"</td><td>{s.p_value:.3g}</td><td>{len(s.pass_to_fail)}</td><td>{len(s.fail_to_pass)}</td></tr>")  # fmt: skip
        for direction, tasks in (("pass→fail", s.pass_to_fail), ("fail→pass", s.fail_to_pass)):
            for tid in tasks:
                programs: dict[str, int] = {}
                raws: list[dict[str, Any]] = []
                a_pass = direction == "pass→fail"
                sa = _one_sample(a, tid, _pick(a.record.tasks[tid], s.suite, list(a.record.suites), a_pass),
                                 programs, raws)  # fmt: skip
                sb = _one_sample(b, tid, _pick(b.record.tasks[tid], s.suite, list(b.record.suites), not a_pass),
                                 programs, raws)  # fmt: skip
                plist = [p for p, _ in sorted(programs.items(), key=lambda kv: kv[1])]
                pa = plist[sa["program"]] if sa and sa["program"] is not None else ""
                pb = plist[sb["program"]] if sb and sb["program"] is not None else ""
                problem = a.problems.get(tid) or b.problems.get(tid)
                chunk = {"task": tid, "direction": direction, "suite": s.label,
                         "prompt": _clip(problem.prompt, MAX_PROGRAM_CHARS) if problem else None,
                         "a": sa, "b": sb, "programs": plist, "raws": raws, "diff": diff_rows(pa, pb),
                         "same_program": bool(sa and sb and sa["program"] == sb["program"]),
                         "a_label": f"{a.entry.model} ({a.entry.id})", "b_label": f"{b.entry.model} ({b.entry.id})"}  # fmt: skip
                key = f"c{k}"
                (chunk_dir / f"{key}.js").write_text(
                    f"HarnessSite.loaded({json_for_script(key)},{json_for_script(chunk)});\n", encoding="utf-8")
                reason_a = (sa or {}).get("reason") or ""
                reason_b = (sb or {}).get("reason") or ""
                flips.append(f'<tr data-key="{key}" data-search="{e(tid)}" data-direction="{e(direction)}" '
                             f'data-suite="{e(s.label)}"><td class="left"><button type="button" class="task" '
                             f'aria-expanded="false">{e(tid)}</button></td><td class="left">{e(direction)}</td>'
                             f'<td class="left">{e(s.label)}</td><td class="left">{e(_clip(reason_a, 120) or "pass")}</td>'
                             f'<td class="left">{e(_clip(reason_b, 120) or "pass")}</td></tr>')  # fmt: skip
                k += 1
    rows = settings_rows(a, b)
    changed = [(name, va, vb) for name, va, vb in rows if _text(va) != _text(vb)]
    setting_rows = "".join(
        f'<tr{" class=changed" if _text(va) != _text(vb) else ""}><th scope="row">{e(name)}</th>'
        f'<td class="left">{e(_clip(_text(va), 400) or "")}</td><td class="left">{e(_clip(_text(vb), 400) or "")}</td></tr>'
        for name, va, vb in rows)  # fmt: skip
    what_changed = ", ".join(name for name, _, _ in changed if name not in ("model",)) or "nothing recorded"
    flip_filters = (_select("flips", "data-direction", "direction", ["pass→fail", "fail→pass"])
                    + _select("flips", "data-suite", "suite", [s.label for s in cmp.suites.values()])
                    + '<label>task <input type="search" data-search-of="flips" placeholder="id contains"></label>'
                    '<span class="muted" data-count-of="flips"></span>')  # fmt: skip
    warn = (f'<p class="warn">NOT COMPARABLE: {e("; ".join(cmp.reasons))}</p>' if cmp.reasons else "")
    only = ""
    if cmp.only_a or cmp.only_b:
        only = (f"<p class=\"muted\">Left out: {len(cmp.only_a)} tasks only in A, {len(cmp.only_b)} only in B.</p>")
    modes = _failure_html(getattr(cmp, "failures", None))
    ha, hb = f"../{run_href(a.entry.id)}", f"../{run_href(b.entry.id)}"
    head = (f"<h1>{e(title or 'Comparison')}</h1>{warn}"
            f'<p>A: <a href="{e(ha)}">{e(a.entry.model)}</a> <code>{e(a.entry.id)}</code> ({e(a.entry.created)})<br>'
            f'B: <a href="{e(hb)}">{e(b.entry.model)}</a> <code>{e(b.entry.id)}</code> ({e(b.entry.created)})</p>')  # fmt: skip
    conf = next(iter(cmp.suites.values())).confidence if cmp.suites else 0.95
    body = (head + f"<h2>Statistics</h2>"
            f'<table id="stats"><caption>pass@1 (%) over the {e(str(next(iter(cmp.suites.values())).tasks if cmp.suites else 0))} '
            f"common tasks; difference B − A in points with its {conf:.0%} paired bootstrap interval; exact McNemar p"
            '</caption><thead><tr><th scope="col">suite</th><th scope="col">tasks</th><th scope="col">A</th>'
            '<th scope="col">B</th><th scope="col">Δ</th><th scope="col">interval</th><th scope="col">McNemar p</th>'
            '<th scope="col">pass→fail</th><th scope="col">fail→pass</th></tr></thead>'
            f"<tbody>{''.join(stats)}</tbody></table>{only}{modes}"
            f"<h2>What changed between the runs</h2><p>Differs: <b>{e(what_changed)}</b>.</p>"
            f'<table id="settings"><thead><tr><th scope="col">setting</th><th scope="col" class="left">A</th>'
            f'<th scope="col" class="left">B</th></tr></thead><tbody>{setting_rows}</tbody></table>'
            f'<h2>Flipped tasks</h2><div class="filters">{flip_filters}</div>'
            '<table id="flips"><thead><tr><th scope="col">task</th><th scope="col" class="left">direction</th>'
            '<th scope="col" class="left">suite</th><th scope="col" class="left">A</th><th scope="col" class="left">B'
            f'</th></tr></thead><tbody>{"".join(flips)}</tbody></table>'
            + ("" if flips else "<p>No task flipped.</p>")
            + "<script>HarnessSite.filters('flips');HarnessSite.expander('flips',function(k){return "
            f"{json_for_script(slug + '/')}+k+'.js';}},HarnessSite.renderFlip);</script>")  # fmt: skip
    path = output / compare_href(a.entry.id, b.entry.id)
    _write(path, page(title or f"{a.entry.id} vs {b.entry.id}", body, 1,
                      [("report", "../report.html"), (f"{a.entry.id} vs {b.entry.id}", None)]))  # fmt: skip
    return path


def comparison_title(cmp: Comparison, kind: str) -> str:
    """``Latest vs previous: sc2 vs sc2 on HumanEval+``."""
    return f"{kind}: {cmp.a.model} vs {cmp.b.model} on {cmp.a.title or cmp.a.benchmark}"


def label_of(entry: RunEntry, suite: str) -> str:
    """A suite's title for a run (the comparison tables use it)."""
    return suite_label(entry, suite)


class DataCache:
    """Run data loaded once per report (a run appears on its page and in every comparison it is part of)."""

    def __init__(self, data_dir: Path | None, warn: Callable[[str], None]) -> None:
        """``data_dir``: where benchmark data is (prompts); ``warn``: where problems are said."""
        self.data_dir = data_dir
        self.warn = warn
        self._runs: dict[str, RunData] = {}
        self._readers: dict[str, Any] = {}

    def get(self, entry: RunEntry) -> RunData:
        """The run's data (loaded on first use)."""
        if entry.id not in self._runs:
            self._runs[entry.id] = load_run_data(entry, self.data_dir, self._readers)
        return self._runs[entry.id]


def safe_rmtree_children(folder: Path, names: Sequence[str]) -> None:
    """Remove the site's own generated folders before a rebuild (stale run pages of removed runs go too)."""
    import shutil

    for name in names:
        target = folder / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)


def check_output(output: Path) -> None:
    """The output folder must be a folder we can write (one line naming the fix otherwise)."""
    if output.exists() and not output.is_dir():
        raise HarnessError(f"--output {output} is a file; name a folder for the report site")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"cannot create the report folder {output}: {exc.strerror or exc}") from None
    if not os.access(output, os.W_OK):
        raise HarnessError(f"the report folder {output} is not writable; choose another --output")
