"""The funnel report: ``funnel.md`` and a chart (PNG and SVG) of every stage's in, out and removals by reason.

Each stage's row counts one unit (``Funnel.unit``: functions for seeds, seeds, then instructions); the
validate stage gets a second row in responses: how many were sampled and passed, by outcome, read from the
outcome counts ``validate.jsonl`` and ``validate.removed.jsonl`` carry (whatever outcomes validation
writes).  It also writes the pipeline's stage order into ``funnel.json`` (its ``stages`` list), so that
readers of the file (``harness report``'s funnel chart) need not import the pipeline to know the order.

:func:`compare` puts several work folders side by side (the ablations: ``harness generate report --compare``):
their switches, sizes at each step, response pass rates and contamination.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generation.core import STAGES, UNITS, Funnel, read_manifest
from harness.errors import HarnessError
from harness.store import write_json_atomic

#: The key of ``funnel.json`` that lists the stages in pipeline order (the other keys are stages).
ORDER_KEY = "stages"

_KEPT = "#2b8a3e"
_IN = "#ced4da"
# Removal reasons get colours in order of first appearance; a qualitative palette legible on white.
_REASON_COLOURS = ("#e8590c", "#1971c2", "#c2255c", "#f08c00", "#6741d9", "#0c8599", "#5c940d", "#862e9c",
                   "#d9480f", "#364fc7", "#a61e4d", "#087f5b")  # fmt: skip


def _ordered(funnels: dict[str, Funnel]) -> list[Funnel]:
    order = {s: k for k, s in enumerate(STAGES)}
    return [funnels[s] for s in sorted(funnels, key=lambda s: order.get(s, len(order)))]


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def response_outcomes(workdir: Path | None, validate: Funnel | None = None) -> dict[str, int]:
    """Validated responses by outcome: summed from the rows' ``outcomes`` (any outcome validation writes), else
    the validate funnel's ``extra.responses``."""
    totals: dict[str, int] = {}
    if workdir is not None:
        for name in ("validate.jsonl", "validate.removed.jsonl"):
            path = workdir / name
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a torn last line
                for k, v in (row.get("outcomes") or {}).items() if isinstance(row, dict) else ():
                    if isinstance(v, int):
                        totals[k] = totals.get(k, 0) + v
    if not totals and validate is not None:
        totals = {k: int(v) for k, v in (validate.extra.get("responses") or {}).items() if isinstance(v, int)}
    return totals


def markdown(funnels: dict[str, Funnel], workdir: Path | None = None) -> str:
    """The funnel as a Markdown table (one unit per row), with each stage's notes and removal reasons."""
    lines = ["# SelfCodeAlign funnel", "",
             "| stage | unit | in | out | kept | removed | removed by reason | done before | seconds | tokens generated |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]  # fmt: skip
    for f in _ordered(funnels):
        removed = sum(f.removed.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(f.removed.items(), key=lambda kv: -kv[1])) or "–"
        lines.append(f"| {f.stage} | {f.unit or UNITS.get(f.stage, 'items')} | {f.input} | {f.output} | "
                     f"{_pct(f.output, f.input)} | {removed} | {reasons} | {f.skipped_done} | {f.seconds:.1f} | "
                     f"{f.completion_tokens} |")  # fmt: skip
        if f.stage == "validate":
            resp = response_outcomes(workdir, f)
            total = sum(resp.values())
            if total:
                passed = resp.get("pass", 0)
                others = ", ".join(f"{k} {v}" for k, v in sorted(resp.items(), key=lambda kv: -kv[1]) if k != "pass")
                lines.append(f"| validate | responses | {total} | {passed} | {_pct(passed, total)} | {total - passed} "
                             f"| {others or '–'} | | | |")  # fmt: skip
    notes = [(f.stage, n) for f in _ordered(funnels) for n in f.notes]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {stage}: {n}" for stage, n in notes]
    return "\n".join(lines) + "\n"


def draw(funnels: dict[str, Funnel], stem: Path) -> list[Path]:
    """The chart: top, each stage's input against its output; bottom, removals by stage and reason."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise HarnessError("the funnel chart needs matplotlib: pip install matplotlib (funnel.md is written)") from None
    stages = _ordered(funnels)
    reasons = [(f.stage, r, n) for f in stages for r, n in sorted(f.removed.items(), key=lambda kv: -kv[1])]
    top_h = 0.55 * len(stages) + 1.2
    bottom_h = 0.42 * max(len(reasons), 1) + 1.2
    fig = Figure(figsize=(11, top_h + bottom_h), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[top_h, bottom_h])

    names = [f.stage for f in stages][::-1]  # first stage on top
    ins = [f.input for f in stages][::-1]
    outs = [f.output for f in stages][::-1]
    ypos = list(range(len(names)))
    top.barh(ypos, ins, color=_IN, height=0.75, label="in")
    top.barh(ypos, outs, color=_KEPT, height=0.45, label="out")
    peak = max([*ins, *outs, 1])
    for y, i, o in zip(ypos, ins, outs):
        top.text(max(i, o) + peak * 0.01, y, f"{i:,} → {o:,} ({_pct(o, i)})", va="center", fontsize=10)
    top.set_yticks(ypos, names, fontsize=11)
    top.set_xlim(0, peak * 1.3)
    top.set_xlabel("items")
    top.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_title("Items in and out of each stage", fontsize=13, loc="left")
    top.legend(loc="lower right", fontsize=10, frameon=False)
    top.spines[["top", "right"]].set_visible(False)

    if reasons:
        labels = [f"{s}: {r}" for s, r, _ in reasons][::-1]
        counts = [n for _, _, n in reasons][::-1]
        colour_of: dict[str, str] = {}
        for s, _, _ in reasons:
            colour_of.setdefault(s, _REASON_COLOURS[len(colour_of) % len(_REASON_COLOURS)])
        colours = [colour_of[s] for s, _, _ in reasons][::-1]
        yr = list(range(len(labels)))
        bottom.barh(yr, counts, color=colours, height=0.65)
        rpeak = max(counts)
        for y, n in zip(yr, counts):
            bottom.text(n + rpeak * 0.01, y, f"{n:,}", va="center", fontsize=10)
        bottom.set_yticks(yr, labels, fontsize=10)
        bottom.set_xlim(0, rpeak * 1.15)
        bottom.set_xlabel("items removed")
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        bottom.text(0.5, 0.5, "nothing removed", ha="center", va="center", fontsize=12, transform=bottom.transAxes)
        bottom.set_yticks([])
        bottom.set_xticks([])
    bottom.set_title("Removed, by stage and reason", fontsize=13, loc="left")
    bottom.spines[["top", "right"]].set_visible(False)

    paths = []
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=150 if ext == "png" else None)
        paths.append(path)
    return paths


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise HarnessError(f"{path} does not exist: no stage has run in {path.parent}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise HarnessError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise HarnessError(f"{path} is not a funnel (stage -> counts)")
    return doc


def load_funnels(workdir: Path) -> dict[str, Funnel]:
    """Every stage's funnel in ``workdir``'s ``funnel.json`` (its ``stages`` order list is not a stage)."""
    doc = _read(workdir / "funnel.json")
    return {k: Funnel.model_validate(v) for k, v in doc.items() if k != ORDER_KEY}


def write_order(workdir: Path) -> list[str]:
    """Record the stage order in ``funnel.json``: the pipeline's stages, then any others in file order."""
    path = workdir / "funnel.json"
    doc = _read(path)
    order = [*STAGES, *(k for k in doc if k != ORDER_KEY and k not in STAGES)]
    if doc.get(ORDER_KEY) != order:
        write_json_atomic(path, {**{k: v for k, v in doc.items() if k != ORDER_KEY}, ORDER_KEY: order})
    return order


def report(workdir: Path | str) -> list[Path]:
    """Write ``funnel.md``, ``funnel.png`` and ``funnel.svg`` in ``workdir`` (and the stage order into
    ``funnel.json``); returns the paths of the three files."""
    workdir = Path(workdir)
    funnels = load_funnels(workdir)
    write_order(workdir)
    md = workdir / "funnel.md"
    md.write_text(markdown(funnels, workdir), encoding="utf-8")
    return [md, *draw(funnels, workdir / "funnel")]


# ------------------------------------------------------------------ ablations side by side
#: The switches a comparison shows, with their defaults (a folder without a manifest is taken as default).
SWITCHES = {"filter.enabled": True, "instruct.mode": "S->C->I", "validate.execution": "filter",
            "select.responses": "one", "instruct.responses_per_instruction": 10}  # fmt: skip


def _switches(workdir: Path) -> dict[str, Any]:
    manifest = read_manifest(workdir) or {}
    settings = manifest.get("settings") or {}
    out = {}
    for dotted, default in SWITCHES.items():
        section, _, key = dotted.partition(".")
        out[dotted] = (settings.get(section) or {}).get(key, default)
    return out


def comparison(workdirs: list[Path]) -> list[dict[str, Any]]:
    """One row per work folder: switches, sizes, pass rates and contamination (read from its files)."""
    rows = []
    for w in workdirs:
        funnels = load_funnels(w)
        get = funnels.get
        resp = response_outcomes(w, get("validate"))
        total = sum(resp.values())
        select, filt = get("select"), get("filter")
        contaminated = sum(v for k, v in (select.removed if select else {}).items() if k.startswith("contaminated"))
        row: dict[str, Any] = {"workdir": str(w), **_switches(w)}
        row.update({
            "seeds": get("dedup").output if get("dedup") else None,
            "seeds_flagged_as_benchmark_items": (filt.removed.get("benchmark item", 0) if filt else None),
            "instructions": get("instructions").output if get("instructions") else None,
            "responses": total or None,
            "response_pass_rate": round(resp.get("pass", 0) / total, 4) if total else None,
            "instructions_validated": get("validate").output if get("validate") else None,
            "dataset_rows": select.extra.get("dataset_rows", select.output) if select else None,
            "contaminated_pairs": contaminated if select else None,
            "contamination_rate": round(contaminated / select.input, 4) if select and select.input else None,
            "decontaminated": select.extra.get("decontaminate") if select else None,
        })  # fmt: skip
        rows.append(row)
    return rows


def compare(workdirs: list[Path | str]) -> str:
    """The ablation table (Markdown) for several work folders: what each switch was and what came out."""
    rows = comparison([Path(w) for w in workdirs])
    cols = ["workdir", *SWITCHES, "seeds", "instructions", "responses", "response_pass_rate",
            "instructions_validated", "dataset_rows", "contaminated_pairs", "contamination_rate",
            "seeds_flagged_as_benchmark_items"]  # fmt: skip

    def cell(v: Any, col: str) -> str:
        if v is None:
            return "–"
        if col.endswith("_rate"):
            return f"{v:.1%}"
        return str(v)

    lines = ["# SelfCodeAlign datasets compared", "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c == "workdir" or "." in c else "---:" for c in cols) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(cell(r.get(c), c) for c in cols) + " |" for r in rows]
    lines += ["", "contaminated_pairs: pairs the select stage removed as benchmark items (contamination_rate: of "
              "its input); seeds_flagged_as_benchmark_items: seeds the filter stage removed."]  # fmt: skip
    return "\n".join(lines) + "\n"
