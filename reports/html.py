"""``harness report``: one self-contained HTML file (inline CSS, images as base64 data URIs, no script, no external
asset) with the leaderboard, latest-vs-previous comparisons per model, and the plots; readable offline.

The plots are also left beside it in ``DIR/plots/`` (PNG and SVG) for reuse in papers and slides.
"""

from __future__ import annotations

import base64
import html
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import HarnessError
from harness.registry import Registry, RunEntry
from reports import leaderboard, plots
from reports.compare import Comparison, compare, incomparable_reasons

REPORT_NAME = "report.html"


@dataclass
class PairResult:
    """Latest vs previous run of one model on one benchmark."""

    previous: RunEntry
    latest: RunEntry
    comparison: Comparison | None
    reason: str | None = None


@dataclass
class ReportInputs:
    """Optional artefacts beside the registry's runs."""

    funnel: Path | None = None
    training: list[Path] = field(default_factory=list)
    decontam: list[Path] = field(default_factory=list)


def latest_pairs(entries: Sequence[RunEntry], resamples: int = 10_000, seed: int = 0) -> list[PairResult]:
    """For every (model, benchmark) with two runs or more: the latest run against the one before it."""
    by_key: dict[tuple[str, str], list[RunEntry]] = {}
    for e in entries:
        by_key.setdefault((e.model, e.benchmark), []).append(e)
    out = []
    for (_, _), runs in sorted(by_key.items()):
        if len(runs) < 2:
            continue
        runs.sort(key=lambda e: (leaderboard.timestamp(e.created), e.indexed))
        prev, last = runs[-2], runs[-1]
        reasons = incomparable_reasons(prev, last)
        if reasons:
            out.append(PairResult(prev, last, None, "not compared: " + "; ".join(reasons)))
            continue
        try:
            out.append(PairResult(prev, last, compare(prev, last, resamples=resamples, seed=seed)))
        except HarnessError as exc:
            out.append(PairResult(prev, last, None, f"not compared: {exc}"))
    return out


def _img(paths: list[Path], alt: str) -> str:
    png = next((p for p in paths if p.suffix == ".png"), None)
    if png is None:
        return ""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{html.escape(alt)} (also {html.escape(png.stem)}.svg in plots/)</figcaption></figure>"  # fmt: skip


def _pts(x: float) -> str:
    return f"{x * 100:+.1f}"


def _pct(x: float | None) -> str:
    return f"{x * 100:.1f}" if x is not None else "–"


def _day(created: str) -> str:
    """``2026-01-19 12:00`` from an ISO time (the table has no room for seconds and offsets)."""
    return created[:16].replace("T", " ")


def _comparisons_html(pairs: list[PairResult]) -> str:
    e = html.escape
    if not pairs:
        return "<p>No model has two runs of one benchmark yet; nothing to compare.</p>"
    rows, details = [], []
    for pr in pairs:
        head = (f"<th scope=\"row\">{e(pr.latest.model)}</th><td class=\"left\">{e(pr.latest.benchmark)}</td>"
                f"<td class=\"left\"><code>{e(pr.previous.id)}</code><br><small>{e(_day(pr.previous.created))}"
                f"</small></td><td class=\"left\"><code>{e(pr.latest.id)}</code><br><small>"
                f"{e(_day(pr.latest.created))}</small></td>")  # fmt: skip
        if pr.comparison is None:
            rows.append(f"<tr class=\"incomparable\">{head}<td colspan=\"8\" class=\"left\">{e(pr.reason or '')}"
                        "</td></tr>")  # fmt: skip
            continue
        for s in pr.comparison.suites.values():
            lo, hi = s.ci
            flag = ' class="worse"' if hi < 0 else (' class="better"' if lo > 0 else "")
            rows.append(f"<tr{flag}>{head}<td class=\"left\">{e(s.label)}</td><td>{s.pass1_a * 100:.1f}</td>"
                        f"<td>{s.pass1_b * 100:.1f}</td><td class=\"num\">{_pts(s.diff)}</td>"
                        f"<td class=\"num\">[{_pts(lo)}, {_pts(hi)}]</td><td>{s.p_value:.3g}</td>"
                        f"<td>{len(s.pass_to_fail)}</td><td>{len(s.fail_to_pass)}</td></tr>")  # fmt: skip
            if s.pass_to_fail or s.fail_to_pass:
                details.append(
                    f"<details><summary>{e(pr.latest.model)} · {e(s.label)}: {len(s.pass_to_fail)} pass→fail, "
                    f"{len(s.fail_to_pass)} fail→pass</summary><p><b>pass→fail:</b> "
                    f"{e(', '.join(s.pass_to_fail) or '–')}</p><p><b>fail→pass:</b> "
                    f"{e(', '.join(s.fail_to_pass) or '–')}</p></details>"
                )  # fmt: skip
    table = (
        '<table id="comparisons"><caption>Latest run against the previous one, per model and benchmark: pass@1 (%), '
        "difference in points (latest - previous) with its 95% paired bootstrap interval over tasks, exact McNemar "
        "p-value, tasks flipped; green: the interval is above 0, red: below</caption><thead><tr>"
        '<th scope="col">Model</th><th scope="col">Benchmark</th><th scope="col">Previous</th>'
        '<th scope="col">Latest</th><th scope="col">Suite</th><th scope="col">prev.</th><th scope="col">latest</th>'
        '<th scope="col">Δ</th><th scope="col">95% CI</th><th scope="col">McNemar p</th>'
        '<th scope="col">pass→fail</th><th scope="col">fail→pass</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return table + "".join(details)


def _runs_html(entries: Sequence[RunEntry]) -> str:
    e = html.escape
    rows = []
    for r in sorted(entries, key=lambda x: x.created, reverse=True):
        titles = r.suite_titles()
        pass1 = "<br>".join(f"{e(titles.get(s, s))} {_pct(r.pass1(s))}" for s in r.suites or []) or "–"
        parts = (f"base model {r.base_model}" if r.base_model else "",
                 f"data {r.training_data_hash[:12]}" if r.training_data_hash else "")  # fmt: skip
        lineage = ", ".join(x for x in parts if x)
        rows.append(f"<tr><td class=\"left\"><code>{e(r.id)}</code></td><td class=\"left\">{e(_day(r.created))}</td>"
                    f"<th scope=\"row\">{e(r.model)}</th><td class=\"left\">{e(r.benchmark)}</td>"
                    f"<td class=\"left\">{e(r.dataset_label())}"
                    f"{e(', ' + r.selection_label()) if r.selection_label() else ''}"
                    f"</td><td>{pass1}</td><td>{r.n_tasks}</td><td>{r.samples_per_task}</td>"
                    f"<td class=\"left\">{e(lineage or '–')}</td>"
                    f"<td class=\"left\">{e(r.harness_version or '?')}</td>"
                    "</tr>")  # fmt: skip
    heads = [
        ("id", True),
        ("created (UTC)", True),
        ("model", True),
        ("benchmark", True),
        ("dataset", True),
        ("pass@1 (%)", False),
        ("tasks", False),
        ("n", False),
        ("lineage", True),
        ("harness", True),
    ]
    left_cls = ' class="left"'
    head = "".join(f'<th scope="col"{left_cls if left else ""}>{e(h)}</th>' for h, left in heads)
    return f'<table id="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


_EXTRA_STYLE = """
figure { margin: 1.5rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e9ecef; }
figcaption { color: #495057; font-size: 0.85rem; }
tr.worse td, tr.worse th { background: #fff0f0; } tr.better td, tr.better th { background: #effaf1; }
#comparisons td.num { white-space: nowrap; } #comparisons th, #comparisons td { padding: 0.35rem 0.45rem; }
tr.incomparable td { color: #868e96; }
details { margin: 0.4rem 0; } details p { margin: 0.3rem 1rem; font-size: 0.9rem; }
.warn { color: #c92a2a; } small { color: #868e96; }
#runs { font-size: 0.85rem; }
"""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def build_report(reg: Registry, output: Path, inputs: ReportInputs | None = None,
                 warn: Callable[[str], None] = _stderr) -> Path:  # fmt: skip
    """Write ``output/report.html`` (and ``output/plots/``) from every run in the registry; returns its path.

    What could not be drawn (a missing or unreadable input, a vanished run record) is left out, passed to
    ``warn`` and listed at the top of the report.
    """
    reg.require_runs()
    plots.require_matplotlib()  # before writing anything: one line naming the extra, not a half report
    inputs = inputs or ReportInputs()
    entries = reg.entries()
    output.mkdir(parents=True, exist_ok=True)
    plot_dir = output / "plots"
    warnings: list[str] = []
    good: list[RunEntry] = []
    for en in entries:
        try:
            en.record()
            good.append(en)
        except HarnessError as exc:
            # One vanished or broken record must not sink the whole report; it is listed instead.
            warnings.append(f"run {en.id} left out: {exc}")
    if not good:
        raise HarnessError("no readable run record in the registry: " + "; ".join(warnings))
    board = leaderboard.build(good)
    pairs = latest_pairs(good)
    sections: list[tuple[str, str, str]] = []  # (id, title, body)

    def plot(name: str, title: str, draw: Callable[[], list[Path]], absent: str) -> None:
        try:
            paths = draw()
        except HarnessError as exc:
            warnings.append(f"{title}: {exc}")
            return
        sections.append((name, title, _img(paths, title) if paths else f"<p>{html.escape(absent)}</p>"))

    plot("plot-leaderboard", "Leaderboard", lambda: plots.leaderboard_bars(board, plot_dir / "leaderboard"), "-")
    plot("plot-history", "pass@1 over runs", lambda: plots.pass1_over_time(good, plot_dir / "pass1_over_time"),
         "No runs to plot.")  # fmt: skip
    plot(
        "plot-passk",
        "pass@k curves",
        lambda: plots.passk_curves(good, plot_dir / "passk"),
        "No run has more than one sample per task, so there is no pass@k curve (pass@1 is in the leaderboard).",
    )
    charts = plots.breakdown_runs(good)
    for bench, title, runs in charts:
        plot(f"plot-breakdown-{plots.safe_name(bench)}", f"{title} breakdown",
             lambda t=title, r=runs, b=bench: plots.breakdown_chart(t, r, plot_dir / f"{plots.safe_name(b)}_breakdown"),
             "No breakdown table to draw.")  # fmt: skip
    if not charts:
        sections.append(
            (
                "plot-breakdown",
                "Breakdowns",
                "<p>No run in the registry carries a breakdown (scores per library, difficulty, ...).</p>",
            )
        )
    optional = [
        ("plot-funnel", "Data pipeline funnel", [inputs.funnel] if inputs.funnel else [],
         lambda ps: plots.funnel(ps[0], plot_dir / "funnel")),
        ("plot-training", "Training loss", inputs.training,
         lambda ps: plots.training_loss(ps, plot_dir / "training_loss")),
        ("plot-contamination", "Contamination", inputs.decontam,
         lambda ps: plots.contamination_heatmap(ps, plot_dir / "contamination")),
    ]  # fmt: skip
    for name, title, given, draw in optional:
        present = [p for p in given if p.exists()]
        for p in given:
            if not p.exists():
                warnings.append(f"{title}: {p} does not exist (skipped)")
        if present:
            plot(name, title, lambda ps=present, d=draw: d(ps), "Nothing to draw in the given files.")
    for w in warnings:
        warn(f"warning: {w}")
    e = html.escape
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    models = len({x.model for x in good})
    nav = " · ".join(f'<a href="#{n}">{e(t)}</a>' for n, t, _ in sections)
    warn_html = "".join(f'<li class="warn">{e(w)}</li>' for w in warnings)
    body = [
        "<h1>Harness report</h1>",
        f"<p>{len(good)} runs of {models} models from the registry <code>{e(str(reg.path))}</code>, "
        f"generated {e(now)}. Nothing here re-runs a model: every number comes from stored run records.</p>",
        f"<ul>{warn_html}</ul>" if warn_html else "",
        '<h2 id="leaderboard-section">Leaderboard</h2>',
        leaderboard.table_html(board),
        '<h2 id="comparisons-section">Latest vs previous run</h2>',
        _comparisons_html(pairs),
        '<h2 id="plots">Plots</h2>',
        f"<p>{nav}</p>",
        *[f'<section id="{n}"><h3>{e(t)}</h3>{b}</section>' for n, t, b in sections],
        '<h2 id="runs-section">All runs</h2>',
        _runs_html(good),
    ]
    doc = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
           '<meta name="viewport" content="width=device-width, initial-scale=1">'
           f"<title>Harness report</title><style>{leaderboard.STYLE}{_EXTRA_STYLE}</style></head>"
           f"<body>{''.join(body)}</body></html>\n")  # fmt: skip
    path = output / REPORT_NAME
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(path)
    return path
