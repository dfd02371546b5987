"""Charts (matplotlib, each saved as PNG and SVG): leaderboard bars, pass@1 over time, pass@k curves, a breakdown
chart per benchmark whose runs carry breakdown tables (DS-1000's libraries, LiveCodeBench's difficulties), the
data pipeline's funnel, training loss, and a contamination heatmap.

Every function takes its data and a path *stem* and returns the files it wrote (``stem.png``, ``stem.svg``), or an
empty list when there is nothing to draw (so callers can skip a section instead of drawing an empty frame).
Figures are built with matplotlib's object API (no pyplot state), sized from their content, and laid out with the
constrained layout engine so that labels do not overlap.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.passk import pass_at_k
from harness.registry import RunEntry
from reports.leaderboard import Board, benchmark_order, columns_of

# A qualitative palette that stays distinguishable in print and for the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999",
           "#8C564B")  # fmt: skip
DPI = 130
#: The key of ``funnel.json`` that lists its stages in pipeline order (the data pipeline's report writes it).
FUNNEL_ORDER_KEY = "stages"


MISSING_MATPLOTLIB = "plots need matplotlib: pip install 'code-harness[reports]'"


def require_matplotlib() -> None:
    """Fail with one line naming the extra to install when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise HarnessError(MISSING_MATPLOTLIB) from None


def _figure(width: float, height: float) -> Any:
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        # metadata Date=None keeps the SVG byte-stable between runs of the same data.
        fig.savefig(path, dpi=DPI, metadata={"Date": None} if ext == "svg" else None)
        out.append(path)
    return out


def short(name: str, width: int = 38) -> str:
    """A label that fits: long model specs (paths) keep their head and tail."""
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: keep // 2] + "…" + name[-(keep - keep // 2) :]


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


# ---------------------------------------------------------------------- leaderboard
def leaderboard_bars(board: Board, stem: Path) -> list[Path]:
    """Horizontal bars grouped by model (best first, at the top), one colour per benchmark column.

    A model gets bars only for the columns it has runs of, so models evaluated on one benchmark take one
    bar's height instead of leaving empty slots.
    """
    if not board.rows or not board.columns:
        return []
    cols = board.columns
    bar, gap = 0.34, 0.45  # inches per bar, between models
    placed: dict[str, list[tuple[float, float, str]]] = {c.title: [] for c in cols}
    ticks: list[tuple[float, str]] = []
    y = 0.0
    for model, cells in reversed(board.rows):  # bottom-up, so the best model ends at the top
        present = [c for c in cols if c.title in cells]
        first = y
        for col in reversed(present):
            cell = cells[col.title]
            label = f"{cell.value * 100:.1f}" + (f" ({cell.group})" if cell.group else "")
            placed[col.title].append((y, cell.value * 100, label))
            y += bar
        ticks.append(((first + y - bar) / 2, short(model)))
        y += gap
    fig = _figure(10, 1.5 + y)
    ax = fig.add_subplot()
    split = any(len(c.groups) > 1 for c in cols)
    for j, col in enumerate(cols):
        pts = placed[col.title]
        if not pts:
            continue
        title = col.header + (" †" if len(col.groups) > 1 else "")
        bars = ax.barh([p[0] for p in pts], [p[1] for p in pts], height=bar * 0.85, color=_colour(j), label=title)
        ax.bar_label(bars, labels=[p[2] for p in pts], padding=2, fontsize=7)
    ax.set_yticks([t[0] for t in ticks], [t[1] for t in ticks])
    ax.set_ylim(-gap, y - gap + bar / 2)
    ax.set_xlim(0, 108)
    ax.set_xlabel("pass@1 (%)")
    ax.set_title("Leaderboard: pass@1 per benchmark (latest run per model)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    fig.legend(loc="outside lower center", ncols=min(len(cols), 4), fontsize=8, frameon=False, title_fontsize=7,
               title="† runs in this column are not all comparable: letters mark groups, see the notes" if split
               else None)  # fmt: skip
    return _save(fig, stem)


# ---------------------------------------------------------------------- history
def pass1_over_time(entries: Sequence[RunEntry], stem: Path) -> list[Path]:
    """pass@1 (%) against run date, one panel per benchmark suite, one line per model.

    Only models with two runs or more of a benchmark are drawn there (a trajectory: checkpoints of a fine-tune,
    nightly runs); when no model has two runs of anything, every run is drawn as a point. A line of a few
    points names each point's checkpoint when the runs carry training lineage. Panels are the leaderboard's
    columns (benchmark and suite, titled from the records).
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    counts: dict[tuple[str, str], int] = {}
    for e in entries:
        counts[(e.model, e.benchmark)] = counts.get((e.model, e.benchmark), 0) + 1
    series = [e for e in entries if counts[(e.model, e.benchmark)] >= 2] or list(entries)
    panels = columns_of(series)
    if not panels:
        return []
    models = sorted({e.model for e in series})
    colour = {m: _colour(i) for i, m in enumerate(models)}
    ncols = 2 if len(panels) > 1 else 1
    nrows = (len(panels) + ncols - 1) // ncols
    fig = _figure(11 if ncols == 2 else 8, 1.2 + 3.2 * nrows + 0.25 * ((len(models) + 2) // 3))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, col in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        for m in models:
            runs = sorted((e for e in series if e.benchmark == col.benchmark and e.model == m
                           and e.pass1(col.suite) is not None), key=lambda e: _when(e.created))  # fmt: skip
            if not runs:
                continue
            xs = [_when(e.created) for e in runs]
            ys = [100 * (e.pass1(col.suite) or 0.0) for e in runs]
            ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.4, color=colour[m], label=short(m))
            if len(runs) <= 8:
                for x, y_, e in zip(xs, ys, runs):
                    name = Path(e.checkpoint).name if e.checkpoint else None
                    text = f"{y_:.1f}" + (f"\n{short(name, 18)}" if name else "")
                    ax.annotate(text, (x, y_), textcoords="offset points", xytext=(0, 6), ha="center",
                                va="bottom", fontsize=7, color=colour[m])  # fmt: skip
        ax.set_title(col.title, fontsize=10)
        ax.set_ylabel("pass@1 (%)")
        ax.set_ylim(0, 105)
        ax.margins(x=0.08)
        ax.grid(alpha=0.3)
        locator = AutoDateLocator(minticks=3, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_xlabel("run date (UTC)")
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.suptitle("pass@1 over runs (checkpoints, dates)")
    handles, labels = [], []
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8, frameon=False)
    return _save(fig, stem)


def _ks(n: int) -> list[int]:
    """The k values of a curve: every k up to 10, then 1-2-5 steps, and n itself (pass@k costs O(n) per task)."""
    ks = {k for k in range(1, min(n, 10) + 1)}
    step = 10
    while step <= n:
        ks.update(k for k in (step, 2 * step, 5 * step) if k <= n)
        step *= 10
    ks.add(n)
    return sorted(ks)


def _when(created: str) -> datetime:
    try:
        return datetime.fromisoformat(created)
    except ValueError:
        return datetime(1970, 1, 1)


# ---------------------------------------------------------------------- pass@k
def passk_curves(entries: Sequence[RunEntry], stem: Path) -> list[Path]:
    """Mean unbiased pass@k against k for each run with at least two samples per task (one panel per suite)."""
    runs = [e for e in entries if e.samples_per_task >= 2]
    if not runs:
        return []
    panels = columns_of(runs)
    from matplotlib.ticker import MaxNLocator

    fig = _figure(5.2 * min(len(panels), 2), 1.3 + 3.4 * ((len(panels) + 1) // 2))
    axes = fig.subplots((len(panels) + 1) // 2, min(len(panels), 2), squeeze=False)
    for i, col in enumerate(panels):
        ax = axes[i // 2][i % 2]
        mine = [r for r in runs if r.benchmark == col.benchmark and r.pass1(col.suite) is not None]
        for j, e in enumerate(mine):
            tasks = e.record().tasks.values()
            n = min(t.n for t in tasks)
            ks = _ks(n)
            counts = [(t.n, t.correct.get(col.suite, 0)) for t in tasks]
            ys = [100 * sum(pass_at_k(tn, c, k) for tn, c in counts) / len(counts) for k in ks]
            ax.plot(ks, ys, marker="o", markersize=3, color=_colour(j), label=f"{short(e.model, 30)} (n={n})")
        if max(r.samples_per_task for r in mine) >= 16:
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("k (samples drawn per task)")
        ax.set_ylabel("pass@k (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{col.title} ({col.suite} tests)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for k in range(len(panels), len(axes) * len(axes[0])):
        axes[k // 2][k % 2].set_visible(False)
    fig.suptitle("pass@k curves (unbiased estimator)")
    return _save(fig, stem)


# ---------------------------------------------------------------------- breakdowns
def _tables(breakdown: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The breakdown's tables (name -> category -> ``{"score", "n"}``); single cells such as ``overall`` are not."""
    return {name: rows for name, rows in breakdown.items()
            if isinstance(rows, dict) and rows and all(isinstance(r, dict) and "score" in r for r in rows.values())}  # fmt: skip


def breakdown_runs(entries: Sequence[RunEntry]) -> list[tuple[str, str, list[tuple[RunEntry, dict[str, Any]]]]]:
    """``(benchmark, title, [(run, tables)])`` for every benchmark whose runs carry breakdown tables.

    The latest run per model that has them (runs whose record cannot be read are left out); benchmarks in the
    leaderboard's order.
    """
    latest: dict[tuple[str, str], tuple[RunEntry, dict[str, Any]]] = {}
    for e in sorted(entries, key=lambda x: (_when(x.created), x.indexed)):
        try:
            tables = _tables(e.record().breakdown)
        except HarnessError:
            continue
        if tables:
            latest[(e.benchmark, e.model)] = (e, tables)
    out = []
    for bench in benchmark_order({b for b, _ in latest}):
        runs = sorted((v for (b, _), v in latest.items() if b == bench), key=lambda v: v[0].model)
        out.append((bench, runs[-1][0].title or bench, runs))
    return out


def _table_title(name: str) -> str:
    """``perturbation_type`` -> ``Perturbation type``."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def breakdown_chart(title: str, runs: Sequence[tuple[RunEntry, dict[str, Any]]], stem: Path) -> list[Path]:
    """One benchmark's pass@1 per category of each breakdown table: grouped bars, one panel per table,
    one colour per model (the runs of :func:`breakdown_runs`)."""
    if not runs:
        return []
    names: list[str] = []
    for _, tables in runs:
        names += [n for n in tables if n not in names]
    sizes = []
    for name in names:
        cats: list[str] = []
        for _, tables in runs:
            cats += [c for c in tables.get(name, {}) if c not in cats]
        sizes.append(cats)
    fig = _figure(max(6.0, 4.0 + 0.55 * sum(max(len(c), 2) for c in sizes)), 5.4)
    axes = fig.subplots(1, len(names), width_ratios=[max(len(c), 2) for c in sizes], squeeze=False)[0]
    width = 0.8 / len(runs)
    for ax, name, cats in zip(axes, names, sizes):
        for j, (e, tables) in enumerate(runs):
            xs = [i - 0.4 + width * (j + 0.5) for i in range(len(cats))]
            ys = [100 * float(tables.get(name, {}).get(c, {}).get("score", 0.0)) for c in cats]
            ax.bar(xs, ys, width=width * 0.92, color=_colour(j), label=short(e.model, 30))
        counts = {c: next((t[name][c].get("n") for _, t in runs if c in t.get(name, {})), None) for c in cats}
        ax.set_xticks(range(len(cats)), [f"{c}\n(n={counts[c]})" if counts[c] else c for c in cats], fontsize=8,
                      rotation=0 if len(cats) <= 8 else 30, ha="center" if len(cats) <= 8 else "right")  # fmt: skip
        ax.set_ylim(0, 100)
        ax.set_ylabel("pass@1 (%)")
        ax.set_title(_table_title(name), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8, frameon=False)
    by = " and by ".join(_table_title(n).lower() for n in names)
    fig.suptitle(f"{title} pass@1 by {by} (latest run per model)")
    return _save(fig, stem)


def safe_name(name: str) -> str:
    """A benchmark name as a safe file-name and HTML id part (``<name>_breakdown.png``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "benchmark"


# ---------------------------------------------------------------------- data pipeline funnel
def load_funnel(path: Path) -> list[dict[str, Any]]:
    """Stages of a ``funnel.json`` (a file or the pipeline's work folder), in pipeline order.

    The order is the file's ``stages`` list (written by the data pipeline's report); a file without one is in
    the order its stages appear (the pipeline writes them in order).
    """
    file = path / "funnel.json" if path.is_dir() else path
    doc = _read_json(file, "funnel")
    if not isinstance(doc, dict):
        raise HarnessError(f"funnel {file} is not a funnel.json (stage -> {{input, output, removed}})")
    listed = doc.get(FUNNEL_ORDER_KEY)
    stages = {k: v for k, v in doc.items() if k != FUNNEL_ORDER_KEY or not isinstance(listed, list)}
    if not all(isinstance(v, dict) for v in stages.values()):
        raise HarnessError(f"funnel {file} is not a funnel.json (stage -> {{input, output, removed}})")
    order = {str(s): i for i, s in enumerate(listed)} if isinstance(listed, list) else {}
    names = sorted(stages, key=lambda s: (order.get(s, len(order)), list(stages).index(s)))
    return [{"stage": s, "input": int(stages[s].get("input", 0)), "output": int(stages[s].get("output", 0)),
             "removed": {str(k): int(v) for k, v in (stages[s].get("removed") or {}).items()}}
            for s in names]  # fmt: skip


def funnel(path: Path, stem: Path) -> list[Path]:
    """Each stage's input against its output (left) and the removals by reason (right)."""
    stages = load_funnel(path)
    if not stages:
        return []
    reasons = [(f["stage"], r, n) for f in stages for r, n in sorted(f["removed"].items(), key=lambda kv: -kv[1])
               if n > 0]  # fmt: skip
    fig = _figure(12, 1.4 + 0.42 * max(len(stages), len(reasons), 3))
    left, right = fig.subplots(1, 2, width_ratios=[1.2, 1])
    ys = list(range(len(stages)))[::-1]
    top = max(max(f["input"], f["output"]) for f in stages) or 1
    left.barh(ys, [f["input"] for f in stages], color="#ced4da", height=0.7, label="in")
    bars = left.barh(ys, [f["output"] for f in stages], color="#2b8a3e", height=0.45, label="out (kept)")
    left.bar_label(bars, labels=[f"{f['output']:,} / {f['input']:,}" + (f" ({f['output'] / f['input']:.0%})"
                                 if f["input"] else "") for f in stages], padding=3, fontsize=7)  # fmt: skip
    left.set_yticks(ys, [f["stage"] for f in stages])
    left.set_xlim(0, top * 1.35)
    left.set_xlabel("rows (items)")
    left.set_title("rows in and out per stage", fontsize=10)
    left.legend(fontsize=8, loc="lower right")
    left.grid(axis="x", alpha=0.3)
    if reasons:
        ry = list(range(len(reasons)))[::-1]
        stage_colour = {f["stage"]: _colour(i) for i, f in enumerate(stages)}
        rb = right.barh(ry, [n for _, _, n in reasons], color=[stage_colour[s] for s, _, _ in reasons], height=0.7)
        right.bar_label(rb, labels=[f"{n:,}" for _, _, n in reasons], padding=3, fontsize=7)
        right.set_yticks(ry, [short(f"{s}: {r}", 42) for s, r, _ in reasons], fontsize=8)
        right.set_xlim(0, max(n for _, _, n in reasons) * 1.25)
        right.set_xlabel("rows removed")
    else:
        right.text(0.5, 0.5, "no removals recorded", ha="center", va="center", transform=right.transAxes)
        right.set_yticks([])
    right.set_title("removed, by stage and reason", fontsize=10)
    right.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Data pipeline funnel: {stages[0]['input']:,} in, {stages[-1]['output']:,} out")
    return _save(fig, stem)


# ---------------------------------------------------------------------- training loss
def load_training(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """(label, metrics rows) from a ``metrics.jsonl``, a ``training_run.json`` or a training run folder."""
    label = path.name
    if path.is_dir():
        label = path.name
        path = path / "metrics.jsonl" if (path / "metrics.jsonl").is_file() else path / "training_run.json"
    if path.name.endswith(".json"):
        doc = _read_json(path, "training record")
        if not isinstance(doc, dict):
            raise HarnessError(f"training record {path} is not a JSON object")
        label = path.parent.name or label
        metrics = doc.get("metrics_file")
        candidates = [Path(metrics)] if isinstance(metrics, str) else []
        if isinstance(metrics, str) and not Path(metrics).is_absolute():
            candidates.insert(0, path.parent / metrics)
        candidates.append(path.parent / "metrics.jsonl")
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise HarnessError(f"training record {path} names no readable metrics file (metrics.jsonl)")
        path = found
    elif path.name.endswith(".jsonl"):
        label = path.parent.name or label
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HarnessError(f"cannot read training metrics {path}: {exc}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise HarnessError(f"training metrics {path} line {i} is not JSON") from None
        if isinstance(row, dict) and isinstance(row.get("loss"), (int, float)):
            rows.append(row)
    return label, rows


def training_loss(paths: Sequence[Path], stem: Path) -> list[Path]:
    """Training loss against optimiser step, one line per run (learning rate on a twin axis for a single run)."""
    runs = [load_training(p) for p in paths]
    runs = [(label, rows) for label, rows in runs if rows]
    if not runs:
        return []
    fig = _figure(9, 4.6)
    ax = fig.add_subplot()
    for j, (label, rows) in enumerate(runs):
        steps = [r.get("step", i + 1) for i, r in enumerate(rows)]
        ax.plot(steps, [r["loss"] for r in rows], color=_colour(j), linewidth=1.4, label=short(label, 40))
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss (cross-entropy, nats/token)")
    ax.grid(alpha=0.3)
    if len(runs) == 1 and any("learning_rate" in r for r in runs[0][1]):
        lr = ax.twinx()
        rows = runs[0][1]
        steps = [r.get("step", i + 1) for i, r in enumerate(rows)]
        rates = [r.get("learning_rate", float("nan")) for r in rows]
        lr.plot(steps, rates, color="#999999", linestyle="--", linewidth=1, label="learning rate")
        lr.set_ylabel("learning rate")
        lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        handles = ax.get_legend_handles_labels()[0] + lr.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper right")
    else:
        ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Training loss")
    return _save(fig, stem)


# ---------------------------------------------------------------------- contamination
def load_decontam(paths: Sequence[Path]) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """(datasets, benchmarks, rate per (dataset, benchmark)) from decontamination ``report.json`` files."""
    datasets: list[str] = []
    benchmarks: list[str] = []
    rates: dict[tuple[str, str], float] = {}
    for given in paths:
        file = given / "report.json" if given.is_dir() else given
        doc = _read_json(file, "decontamination report")
        summary = doc.get("summary") if isinstance(doc, dict) else None
        if not isinstance(summary, dict):
            raise HarnessError(f"decontamination report {file} has no summary (is it a `harness decontam` report?)")
        ds = doc.get("dataset") or {}
        name = Path(str(ds.get("path") or file.parent)).name or file.parent.name
        if name in datasets:
            name = f"{name} ({file.parent.name})"
        datasets.append(name)
        for bench, s in summary.items():
            if bench not in benchmarks:
                benchmarks.append(bench)
            rates[(name, bench)] = float(s.get("rate", 0.0))
    return datasets, benchmarks, rates


def contamination_heatmap(paths: Sequence[Path], stem: Path) -> list[Path]:
    """Benchmarks (columns) x training datasets (rows): the share of rows flagged, in %, annotated per cell."""
    if not paths:
        return []
    datasets, benchmarks, rates = load_decontam(paths)
    if not datasets or not benchmarks:
        return []
    import numpy as np

    grid = np.full((len(datasets), len(benchmarks)), np.nan)
    for (d, b), r in rates.items():
        grid[datasets.index(d), benchmarks.index(b)] = 100 * r
    fig = _figure(2.6 + 1.25 * len(benchmarks), 1.8 + 0.55 * len(datasets))
    ax = fig.add_subplot()
    finite = grid[np.isfinite(grid)]
    top = max(float(finite.max()) if finite.size else 0.0, 1e-9)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="Reds", vmin=0, vmax=top, aspect="auto")
    for i in range(len(datasets)):
        for j in range(len(benchmarks)):
            v = grid[i, j]
            text = "–" if np.isnan(v) else (f"{v:.2f}%" if v < 10 else f"{v:.1f}%")
            dark = not np.isnan(v) and v > 0.6 * top
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "#212529")
    ax.set_xticks(range(len(benchmarks)), benchmarks, rotation=20 if len(benchmarks) > 4 else 0,
                  ha="right" if len(benchmarks) > 4 else "center")  # fmt: skip
    ax.set_yticks(range(len(datasets)), [short(d, 32) for d in datasets])
    ax.set_xlabel("benchmark")
    ax.set_ylabel("training dataset")
    fig.colorbar(im, ax=ax, label="rows flagged (%)", shrink=0.9)
    ax.set_title("Contamination: share of training rows matching each benchmark")
    return _save(fig, stem)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{what} {path} does not exist") from None
    except ValueError as exc:
        raise HarnessError(f"{what} {path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise HarnessError(f"cannot read {what} {path}: {exc}") from None
