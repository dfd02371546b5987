"""``harness report``: a small static site (no server, no network asset; opens from disk, works as a CI artifact).

``DIR/report.html`` (also ``DIR/index.html``) is the index: the leaderboard and its notes, each model's latest
run against its previous one per benchmark, each fine-tuned model against its base model, the plots (leaderboard,
history, pass@k, breakdowns, and the data pipeline's funnel, the training loss and the contamination heatmap,
found through the runs' training lineage or given by flag), and every run. Each run and each comparison has a
page of its own (:mod:`reports.site`); the plots are kept in ``DIR/plots/`` (PNG and SVG) for papers and slides.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import HarnessError
from harness.registry import Registry, RunEntry
from reports import leaderboard, plots, site
from reports.compare import Comparison, compare, incomparable_reasons
from reports.site_lineage import Discovered, Found, discover, finetune_pairs

REPORT_NAME = "report.html"
INDEX_NAME = "index.html"
#: Folders the site writes (removed and rewritten on each build, so pages of runs no longer indexed go).
SITE_FOLDERS = ("runs", "compare", "assets")


@dataclass
class PairResult:
    """Two runs of one benchmark side by side: the previous and the latest run of a model, or base and fine-tuned."""

    previous: RunEntry
    latest: RunEntry
    comparison: Comparison | None
    reason: str | None = None
    kind: str = "latest vs previous"


@dataclass
class ReportInputs:
    """Optional artefacts beside the registry's runs (found through lineage when not given)."""

    funnel: Path | None = None
    training: list[Path] = field(default_factory=list)
    decontam: list[Path] = field(default_factory=list)
    data_dir: Path | None = None


def _pair(prev: RunEntry, last: RunEntry, kind: str, resamples: int, seed: int) -> PairResult:
    reasons = incomparable_reasons(prev, last)
    if reasons:
        return PairResult(prev, last, None, "not compared: " + "; ".join(reasons), kind)
    try:
        return PairResult(prev, last, compare(prev, last, resamples=resamples, seed=seed), kind=kind)
    except HarnessError as exc:
        return PairResult(prev, last, None, f"not compared: {exc}", kind)


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
        out.append(_pair(runs[-2], runs[-1], "latest vs previous", resamples, seed))
    return out


def base_pairs(entries: Sequence[RunEntry], resamples: int = 10_000, seed: int = 0) -> list[PairResult]:
    """Each fine-tuned model's latest run against its base model's (named by the lineage) on the same benchmark."""
    return [_pair(base, tuned, "fine-tuned vs base", resamples, seed) for base, tuned in finetune_pairs(entries)]


def _img(paths: list[Path], alt: str, root: Path) -> str:
    png = next((p for p in paths if p.suffix == ".png"), None)
    if png is None:
        return ""
    rel = png.relative_to(root).as_posix()
    svg = png.with_suffix(".svg")
    also = f' (also <a href="{html.escape(svg.relative_to(root).as_posix())}">SVG</a>)' if svg.exists() else ""
    return (f'<figure><img alt="{html.escape(alt)}" src="{html.escape(rel)}" loading="lazy"><figcaption>'
            f"{html.escape(alt)}{also}</figcaption></figure>")  # fmt: skip


def _pts(x: float) -> str:
    return f"{x * 100:+.1f}"


def _pct(x: float | None) -> str:
    return f"{x * 100:.1f}" if x is not None else "–"


def _day(created: str) -> str:
    """``2026-01-19 12:00`` from an ISO time (the table has no room for seconds and offsets)."""
    return created[:16].replace("T", " ")


def _run_link(en: RunEntry) -> str:
    return f'<a href="{html.escape(site.run_href(en.id))}"><code>{html.escape(en.id)}</code></a>'


def _comparisons_html(pairs: list[PairResult], table_id: str, caption: str, empty: str) -> str:
    e = html.escape
    if not pairs:
        return f"<p>{e(empty)}</p>"
    rows, details = [], []
    for pr in pairs:
        head = (f"<th scope=\"row\">{e(pr.latest.model)}</th><td class=\"left\">{e(pr.latest.benchmark)}</td>"
                f"<td class=\"left\">{_run_link(pr.previous)}<br><small>{e(pr.previous.model)} · "
                f"{e(_day(pr.previous.created))}</small></td><td class=\"left\">{_run_link(pr.latest)}<br><small>"
                f"{e(_day(pr.latest.created))}</small></td>")  # fmt: skip
        if pr.comparison is None:
            rows.append(f"<tr class=\"incomparable\">{head}<td colspan=\"9\" class=\"left\">{e(pr.reason or '')}"
                        "</td></tr>")  # fmt: skip
            continue
        href = site.compare_href(pr.previous.id, pr.latest.id)
        for s in pr.comparison.suites.values():
            lo, hi = s.ci
            flag = ' class="worse"' if hi < 0 else (' class="better"' if lo > 0 else "")
            rows.append(f"<tr{flag}>{head}<td class=\"left\">{e(s.label)}</td><td>{s.pass1_a * 100:.1f}</td>"
                        f"<td>{s.pass1_b * 100:.1f}</td><td class=\"num\">{_pts(s.diff)}</td>"
                        f"<td class=\"num\">[{_pts(lo)}, {_pts(hi)}]</td><td>{s.p_value:.3g}</td>"
                        f"<td>{len(s.pass_to_fail)}</td><td>{len(s.fail_to_pass)}</td>"
                        f'<td class="left"><a href="{e(href)}">details</a></td></tr>')  # fmt: skip
            if s.pass_to_fail or s.fail_to_pass:
                details.append(
                    f"<details><summary>{e(pr.latest.model)} · {e(s.label)}: {len(s.pass_to_fail)} pass→fail, "
                    f"{len(s.fail_to_pass)} fail→pass</summary><p><b>pass→fail:</b> "
                    f"{e(', '.join(s.pass_to_fail) or '–')}</p><p><b>fail→pass:</b> "
                    f"{e(', '.join(s.fail_to_pass) or '–')}</p></details>"
                )  # fmt: skip
    table = (
        f'<table id="{table_id}"><caption>{e(caption)}</caption><thead><tr>'
        '<th scope="col">Model</th><th scope="col">Benchmark</th><th scope="col">A</th>'
        '<th scope="col">B</th><th scope="col">Suite</th><th scope="col">A</th><th scope="col">B</th>'
        '<th scope="col">Δ</th><th scope="col">95% CI</th><th scope="col">McNemar p</th>'
        '<th scope="col">pass→fail</th><th scope="col">fail→pass</th><th scope="col">page</th></tr></thead>'
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
        rows.append(f"<tr><td class=\"left\">{_run_link(r)}</td><td class=\"left\">{e(_day(r.created))}</td>"
                    f"<th scope=\"row\">{e(r.model)}</th><td class=\"left\">{e(r.benchmark)}</td>"
                    f"<td class=\"left\">{e(r.dataset_label())}"
                    f"{e(', ' + r.selection_label()) if r.selection_label() else ''}"
                    f"</td><td>{pass1}</td><td>{r.n_tasks}</td><td>{r.samples_per_task}</td>"
                    f"<td class=\"left\">{e(lineage or '–')}</td>"
                    f"<td class=\"left\">{e(r.harness_version or '?')}</td>"
                    "</tr>")  # fmt: skip
    heads = [("id", True), ("created (UTC)", True), ("model", True), ("benchmark", True), ("dataset", True),
             ("pass@1 (%)", False), ("tasks", False), ("n", False), ("lineage", True), ("harness", True)]  # fmt: skip
    left_cls = ' class="left"'
    head = "".join(f'<th scope="col"{left_cls if left else ""}>{e(h)}</th>' for h, left in heads)
    return f'<table id="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _pipeline_html(found: Discovered) -> str:
    """The data pipelines the lineage leads to: manifest, generating model, and any link that does not hold."""
    e = html.escape
    if not found.manifests:
        return ""
    items = []
    for link in found.manifests:
        gen = link.get("generator") or {}
        model = gen.get("model") or link.get("model") or "?"
        problems = "".join(f'<br><span class="warn">{e(str(p))}</span>' for p in link.get("problems") or [])
        items.append(f"<li>manifest <code>{e(str(link.get('path')))}</code> (digest "
                     f"<code>{e(str(link.get('digest') or '?')[:16])}</code>, harness "
                     f"{e(str(link.get('harness_version') or '?'))}): data generated by <b>{e(str(model))}</b>"
                     f"{'' if gen else ' (link not verified)'}, found through run {e(str(link.get('via')))}"
                     f"{problems}</li>")  # fmt: skip
    return f'<div id="pipelines"><p>Data pipelines found through the lineage:</p><ul>{"".join(items)}</ul></div>'


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _prepare_output(output: Path) -> None:
    site.check_output(output)
    ours = (output / "assets" / "site.js").is_file()
    if not ours and any((output / name).exists() for name in ("runs", "compare")):
        raise HarnessError(f"--output {output} holds a runs/ or compare/ folder that is not a report's; name an "
                           "empty folder (or a previous report's) for the report site")  # fmt: skip
    if ours:
        site.safe_rmtree_children(output, SITE_FOLDERS)


def build_report(reg: Registry, output: Path, inputs: ReportInputs | None = None,
                 warn: Callable[[str], None] = _stderr, entries: Sequence[RunEntry] | None = None) -> Path:  # fmt: skip
    """Write the report site into ``output`` from every run in the registry (or ``entries``); returns the index.

    What could not be drawn (a missing or unreadable input, a vanished run record) is left out, passed to
    ``warn`` and listed at the top of the index.
    """
    if entries is None:
        reg.require_runs()
    plots.require_matplotlib()  # before writing anything: one line naming the extra, not a half report
    inputs = inputs or ReportInputs()
    chosen = list(entries) if entries is not None else reg.entries()
    _prepare_output(output)
    plot_dir = output / "plots"
    warnings: list[str] = []
    good: list[RunEntry] = []
    for en in chosen:
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
    tuned = base_pairs(good)
    found = discover(good)
    warnings += found.notes
    sections: list[tuple[str, str, str]] = []  # (id, title, body)

    def plot(name: str, title: str, draw: Callable[[], list[Path]], absent: str, note: str = "") -> None:
        try:
            paths = draw()
        except HarnessError as exc:
            warnings.append(f"{title}: {exc}")
            return
        body = _img(paths, title, output) if paths else f"<p>{html.escape(absent)}</p>"
        sections.append((name, title, body + (f'<p class="muted">{html.escape(note)}</p>' if note else "")))

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
        sections.append(("plot-breakdown", "Breakdowns",
                         "<p>No run in the registry carries a breakdown (scores per library, difficulty, ...).</p>"))  # fmt: skip

    def given_or_found(title: str, given: list[Path], found_items: list[Found]) -> tuple[list[Path], str]:
        for p in given:
            if not p.exists():
                warnings.append(f"{title}: {p} does not exist (skipped)")
        present = [p for p in given if p.exists()]
        note = "given by flag" if present else ""
        if not given and found_items:
            present = [f.path for f in found_items]
            note = "found through the lineage of run " + ", ".join(sorted({f.via for f in found_items}))
        return present, note

    funnels, fnote = given_or_found("Data pipeline funnel", [inputs.funnel] if inputs.funnel else [], found.funnels)
    for k, path in enumerate(funnels):
        name = "funnel" if k == 0 else f"funnel_{k + 1}"
        plot(f"plot-{name}", "Data pipeline funnel" + (f" ({path.parent.name})" if len(funnels) > 1 else ""),
             lambda p=path, n=name: plots.funnel(p, plot_dir / n), "Nothing to draw in the funnel.",
             f"{fnote}: {path}")  # fmt: skip
    if not funnels:
        sections.append(("plot-funnel", "Data pipeline funnel", "<p>No funnel: no run's training lineage leads to a "
                         "pipeline work folder with a funnel.json (or give one with --funnel).</p>"))  # fmt: skip
    training, tnote = given_or_found("Training loss", list(inputs.training), found.training)
    if training:
        plot("plot-training", "Training loss", lambda: plots.training_loss(training, plot_dir / "training_loss"),
             "Nothing to draw in the training metrics.", f"{tnote}: " + ", ".join(map(str, training)))  # fmt: skip
    else:
        sections.append(("plot-training", "Training loss", "<p>No training run: no run in the registry carries a "
                         "training lineage (or give one with --training).</p>"))  # fmt: skip
    audits, anote = given_or_found("Contamination", list(inputs.decontam), found.audits)
    if audits:
        plot("plot-contamination", "Contamination",
             lambda: plots.contamination_heatmap(audits, plot_dir / "contamination"),
             "Nothing to draw in the given files.", f"{anote}: " + ", ".join(map(str, audits)))  # fmt: skip

    # Pages of runs and comparisons.
    site.write_assets(output)
    cache = site.DataCache(inputs.data_dir, warn)
    links: dict[str, list[tuple[str, str]]] = {}
    written_pairs = []
    for pr in [*pairs, *tuned]:
        if pr.comparison is None:
            continue
        href = site.compare_href(pr.previous.id, pr.latest.id)
        if href in written_pairs:
            continue
        written_pairs.append(href)
        title = site.comparison_title(pr.comparison, pr.kind.capitalize())
        try:
            site.write_compare_page(output, cache.get(pr.previous), cache.get(pr.latest), pr.comparison, title)
        except HarnessError as exc:
            warnings.append(f"comparison {pr.previous.id} vs {pr.latest.id}: {exc}")
            continue
        for en in (pr.previous, pr.latest):
            links.setdefault(en.id, []).append((title, href))
    for en in good:
        try:
            site.write_run_page(output, cache.get(en), links.get(en.id, []))
        except HarnessError as exc:
            warnings.append(f"run page {en.id}: {exc}")
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
        f"generated {e(now)}. Nothing here re-runs a model: every number comes from stored run records. "
        "Each run id opens the run's page (its tasks, programs and failing inputs); each comparison's "
        "<i>details</i> opens its page (flipped tasks with the diff of the programs).</p>",
        f"<ul>{warn_html}</ul>" if warn_html else "",
        '<h2 id="leaderboard-section">Leaderboard</h2>',
        leaderboard.table_html(board),
        '<h2 id="comparisons-section">Latest vs previous run</h2>',
        _comparisons_html(pairs, "comparisons", "Latest run (B) against the previous one (A), per model and benchmark: "
                          "pass@1 (%), difference in points (B - A) with its 95% paired bootstrap interval over tasks, "
                          "exact McNemar p-value, tasks flipped; green: the interval is above 0, red: below",
                          "No model has two runs of one benchmark yet; nothing to compare."),
        '<h2 id="finetune-section">Fine-tuned vs base model</h2>',
        _pipeline_html(found),
        _comparisons_html(tuned, "finetuned", "Each fine-tuned model's latest run (B) against its base model's (A, named "
                          "by the training lineage) on the same benchmark",
                          "No fine-tuned model with a run of its base model on the same benchmark."),
        '<h2 id="plots">Plots</h2>',
        f"<p>{nav}</p>",
        *[f'<section id="{n}"><h3>{e(t)}</h3>{b}</section>' for n, t, b in sections],
        '<h2 id="runs-section">All runs</h2>',
        _runs_html(good),
    ]  # fmt: skip
    doc = site.page("Harness report", "".join(body), 0)
    path = output / REPORT_NAME
    site._write(path, doc)
    site._write(output / INDEX_NAME, doc)
    return path

