"""The leaderboard: one row per model, pass@1 per benchmark suite, from the registry's latest runs.

Each column holds one benchmark suite, titled as the run records say (HumanEval for the base tests,
HumanEval+ for base and plus; one column titled by the benchmark's title when it has one suite). Benchmarks
come in the benchmark registry's order, uninstalled ones after them. By default a cell is the model's latest
run of that benchmark. A column whose runs were not all scored on the same dataset (name,
version, hash), selection (LiveCodeBench's date window and filters) and task set is never ranked silently:
its cells carry a group letter and a note says which runs belong to which group.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.errors import HarnessError
from harness.registry import RunEntry

FORMATS = ("md", "csv", "latex", "html", "json")


@dataclass
class Column:
    """One benchmark suite: its title (from the records) and the header shown (the title, maybe a selection)."""

    benchmark: str
    suite: str
    title: str
    header: str = ""
    groups: list[str] = field(default_factory=list)  # group descriptions, index = letter a, b, ...


@dataclass
class Cell:
    """One model's score in one column."""

    value: float
    run: str
    n_tasks: int
    samples_per_task: int
    group: str | None = None


@dataclass
class Board:
    """Rows (model -> column title -> cell), columns, notes."""

    columns: list[Column]
    rows: list[tuple[str, dict[str, Cell]]]
    notes: list[str]
    sort_by: str | None

    def to_json(self) -> dict[str, Any]:
        """Plain data: values are fractions (0..1)."""
        return {
            "metric": "pass@1",
            "columns": [
                {"benchmark": c.benchmark, "suite": c.suite, "title": c.title, "header": c.header, "groups": c.groups}
                for c in self.columns
            ],  # fmt: skip
            "sorted_by": self.sort_by,
            "rows": [
                {
                    "model": m,
                    "samples_per_task": _samples(cells),
                    "cells": {
                        t: {
                            "pass@1": c.value,
                            "run": c.run,
                            "n_tasks": c.n_tasks,
                            "samples_per_task": c.samples_per_task,
                            "group": c.group,
                        }
                        for t, c in cells.items()
                    },
                }
                for m, cells in self.rows
            ],  # fmt: skip
            "notes": self.notes,
        }


def _samples(cells: dict[str, Cell]) -> str:
    ns = sorted({c.samples_per_task for c in cells.values()})
    return "/".join(str(n) for n in ns)


def _latest(entries: list[RunEntry]) -> dict[tuple[str, str], RunEntry]:
    """The latest run per (model, benchmark); entries come oldest first, so later ones win."""
    chosen: dict[tuple[str, str], RunEntry] = {}
    for e in entries:
        key = (e.model, e.benchmark)
        old = chosen.get(key)
        if old is None or (timestamp(e.created), e.indexed) >= (timestamp(old.created), old.indexed):
            chosen[key] = e
    return chosen


def _group_text(e: RunEntry) -> str:
    text = e.dataset_label()
    selection = e.selection_label()
    if selection:
        text += f", {selection}"
    text += f", {e.n_tasks} tasks"
    return text


def timestamp(created: str) -> float:
    """Seconds since the epoch of a record's ISO time (0 when unparsable), for ordering groups."""
    try:
        return datetime.fromisoformat(created).timestamp()
    except ValueError:
        return 0.0


def benchmark_order(present: Iterable[str]) -> list[str]:
    """Installed benchmarks in the registry's order, then benchmarks no longer installed, alphabetically."""
    from harness.benchmark import names

    have = set(present)
    installed = [b for b in names() if b in have]
    return installed + sorted(have - set(installed))


def columns_of(entries: Sequence[RunEntry], order: list[str] | None = None) -> list[Column]:
    """The (benchmark, suite) columns of ``entries``, titled from their records.

    Benchmarks come in ``order`` (default :func:`benchmark_order`); within one, suites in the newest run's
    grading order (suites only older runs have follow). A column's title is the newest run's title for it;
    a title another benchmark already uses gets the benchmark's name added, so cells never collide.
    """
    by_bench: dict[str, list[RunEntry]] = {}
    for e in entries:
        by_bench.setdefault(e.benchmark, []).append(e)
    columns: list[Column] = []
    used: set[str] = set()
    for bench in order if order is not None else benchmark_order(by_bench):
        runs = sorted(by_bench.get(bench, []), key=lambda e: (timestamp(e.created), e.indexed), reverse=True)
        suites: list[str] = []
        for e in runs:
            suites += [s for s in e.suites or [] if s not in suites and e.pass1(s) is not None]
        for suite in suites:
            title = next(e.suite_titles()[suite] for e in runs if e.pass1(suite) is not None)
            if title in used:
                title = f"{title} ({bench})"
            used.add(title)
            columns.append(Column(bench, suite, title, title))
    return columns


def build(entries: list[RunEntry], benchmarks: list[str] | None = None, sort_by: str | None = None) -> Board:
    """The leaderboard of ``entries`` (each model's latest run per benchmark)."""
    if not entries:
        raise HarnessError("no runs to rank (the registry is empty or no run matches the filters)")
    present = {e.benchmark for e in entries}
    if benchmarks:
        unknown = [b for b in benchmarks if b not in present]
        if unknown:
            raise HarnessError(f"no runs of {', '.join(unknown)} in the registry (it has: "
                               f"{', '.join(sorted(present))})")  # fmt: skip
        entries = [e for e in entries if e.benchmark in benchmarks]
    chosen = _latest(entries)
    columns = columns_of(list(chosen.values()), list(dict.fromkeys(benchmarks)) if benchmarks else None)
    notes: list[str] = []
    rows: dict[str, dict[str, Cell]] = {}
    for bench in dict.fromkeys(c.benchmark for c in columns):
        runs = sorted((e for (_, b), e in chosen.items() if b == bench), key=lambda e: e.model)
        groups: dict[tuple[str, ...], list[RunEntry]] = {}
        for e in runs:
            groups.setdefault(e.comparability_key(), []).append(e)
        # The largest group is "a"; among equal sizes the newest run's group first (usually the current dataset).
        ranked = sorted(groups.values(), key=lambda g: (-len(g), -max(timestamp(x.created) for x in g)))
        letters = {g[0].comparability_key(): chr(ord("a") + i) for i, g in enumerate(ranked)}
        split = len(ranked) > 1
        for col in (c for c in columns if c.benchmark == bench):
            col.groups = [_group_text(g[0]) for g in ranked]
            selection = ranked[0][0].selection_label()
            if not split and selection:
                # One selection for the whole column (a date window): say it in the header.
                col.header = f"{col.title} ({selection})"
            for e in runs:
                value = e.pass1(col.suite)
                if value is not None:
                    rows.setdefault(e.model, {})[col.title] = Cell(
                        value=value, run=e.id, n_tasks=e.n_tasks, samples_per_task=e.samples_per_task,
                        group=letters[e.comparability_key()] if split else None)  # fmt: skip
        titles = "/".join(c.title for c in columns if c.benchmark == bench)
        if split:
            parts = [f"({letters[g[0].comparability_key()]}) {_group_text(g[0])}: {', '.join(x.model for x in g)}"
                     for g in ranked]  # fmt: skip
            notes.append(f"{titles}: NOT COMPARABLE across groups (different dataset versions/hashes, selections "
                         "or task sets), do not rank across letters; " + "; ".join(parts))  # fmt: skip
        else:
            notes.append(f"{titles}: {_group_text(ranked[0][0])}")
    notes += lineage_notes([e for e in chosen.values() if e.model in rows])
    titles = [c.title for c in columns]
    if sort_by is not None and sort_by not in titles:
        raise HarnessError(f"--sort {sort_by!r} is not a column; columns: {', '.join(titles)}")
    key_col = sort_by or next((t for t in titles if any(t in cells for cells in rows.values())), None)

    def rank(item: tuple[str, dict[str, Cell]]) -> tuple[int, float, str]:
        model, cells = item
        cell = cells.get(key_col) if key_col else None
        return (0, -cell.value, model) if cell else (1, 0.0, model)

    return Board(columns=columns, rows=sorted(rows.items(), key=rank), notes=notes, sort_by=key_col)


def lineage_notes(entries: Iterable[RunEntry]) -> list[str]:
    """One note per fine-tuned model: its base model, training data and the model that generated the data
    (from its newest run that carries training lineage)."""
    from harness.registry import lineage_summary

    newest: dict[str, RunEntry] = {}
    for e in entries:
        old = newest.get(e.model)
        if e.lineage and (old is None or (timestamp(e.created), e.indexed) > (timestamp(old.created), old.indexed)):
            newest[e.model] = e
    return [f"{model}: {lineage_summary(e.lineage)}" for model, e in sorted(newest.items())]


# ---------------------------------------------------------------------- formats
def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "–"
    text = f"{cell.value * 100:.1f}"
    return f"{text} ({cell.group})" if cell.group else text


def _header(col: Column) -> str:
    return col.header + (" †" if len(col.groups) > 1 else "")


def to_markdown(board: Board) -> str:
    """A GitHub Markdown table with the notes below it."""
    head = ["Model", *[_header(c) for c in board.columns], "samples/task"]
    lines = ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for model, cells in board.rows:
        row = [model, *[_cell_text(cells.get(c.title)) for c in board.columns], _samples(cells)]
        lines.append("| " + " | ".join(_md(x) for x in row) + " |")
    lines += ["", f"pass@1 in %, latest run per model and benchmark; sorted by {board.sort_by or '-'}."]
    lines += [f"- {_md(n)}" for n in board.notes]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def to_csv(board: Board) -> str:
    """CSV: pass@1 as fractions; a ``<column> group`` column follows each column whose runs are not comparable."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["model"]
    for c in board.columns:
        head.append(c.header)
        if len(c.groups) > 1:
            head.append(f"{c.title} group")
    w.writerow([*head, "samples_per_task"])
    for model, cells in board.rows:
        row: list[Any] = [model]
        for c in board.columns:
            cell = cells.get(c.title)
            row.append(f"{cell.value:.6f}" if cell else "")
            if len(c.groups) > 1:
                row.append(cell.group if cell else "")
        w.writerow([*row, _samples(cells)])
    return buf.getvalue()


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "†": r"$^\dagger$", "–": "--",
          "…": r"\ldots{}"}  # fmt: skip


def _tex(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def to_latex(board: Board) -> str:
    """A booktabs ``tabular`` with the notes as a ``\\footnotesize`` paragraph."""
    n = len(board.columns)
    lines = [r"\begin{tabular}{l" + "r" * (n + 1) + "}", r"\toprule",
             " & ".join(["Model", *[_tex(_header(c)) for c in board.columns], "Samples/task"]) + r" \\",
             r"\midrule"]  # fmt: skip
    for model, cells in board.rows:
        best = [c.title for c in board.columns]
        lines.append(" & ".join([_tex(model), *[_tex(_cell_text(cells.get(t))) for t in best],
                                 _tex(_samples(cells))]) + r" \\")  # fmt: skip
    lines += [r"\bottomrule", r"\end{tabular}", "",
              r"\footnotesize pass@1 in \%, latest run per model and benchmark."]  # fmt: skip
    lines += [_tex(note) + r"\\" for note in board.notes]
    return "\n".join(lines) + "\n"


def table_html(board: Board) -> str:
    """The ``<table id="leaderboard">`` element and its notes (embedded by the HTML report)."""
    e = html.escape
    head = "".join(f'<th scope="col">{e(_header(c))}</th>' for c in board.columns)
    body = []
    for model, cells in board.rows:
        tds = []
        for c in board.columns:
            cell = cells.get(c.title)
            title = f' title="run {e(cell.run)}, {cell.n_tasks} tasks, n={cell.samples_per_task}"' if cell else ""
            tds.append(f"<td{title}>{e(_cell_text(cell))}</td>")
        body.append(f'<tr><th scope="row">{e(model)}</th>{"".join(tds)}<td>{e(_samples(cells))}</td></tr>')
    notes = "".join(f"<li>{e(n)}</li>" for n in board.notes)
    return (
        '<table id="leaderboard" class="leaderboard">'
        f"<caption>pass@1 (%), latest run per model and benchmark; sorted by {e(board.sort_by or '-')}</caption>"
        f'<thead><tr><th scope="col">Model</th>{head}<th scope="col">samples/task</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        f'<ul class="notes">{notes}</ul>'
    )


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #212529; max-width: 1200px; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #dee2e6; padding: 0.35rem 0.7rem; text-align: right; }
th[scope=row], thead th:first-child, td.left, th.left { text-align: left; }
thead th { border-bottom: 2px solid #495057; background: #f8f9fa; }
caption { caption-side: top; text-align: left; color: #495057; padding-bottom: 0.3rem; }
ul.notes { color: #495057; font-size: 0.9rem; }
"""


def to_html(board: Board) -> str:
    """A small standalone HTML page holding the table."""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Leaderboard</title>"
            f"<style>{STYLE}</style></head><body><h1>Leaderboard</h1>{table_html(board)}</body></html>\n")  # fmt: skip


def render(board: Board, fmt: str) -> str:
    """The board in ``fmt`` (md, csv, latex, html, json)."""
    if fmt == "md":
        return to_markdown(board)
    if fmt == "csv":
        return to_csv(board)
    if fmt == "latex":
        return to_latex(board)
    if fmt == "html":
        return to_html(board)
    if fmt == "json":
        return json.dumps(board.to_json(), indent=2) + "\n"
    raise HarnessError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
