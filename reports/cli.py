"""Command-line front of the reports subsystem: ``runs``, ``leaderboard``, ``compare``, ``gate``, ``report``, ``view``.

``harness.cli`` mounts these with :func:`add_parsers` and dispatches through :data:`HANDLERS`; handlers raise
``HarnessError`` for one-line errors (``error: ...``, exit 2). ``gate`` exits 1 on a regression, 0 otherwise.
``python -m reports.cli`` runs the same commands on their own (used by the tests).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.cliargs import positive_int
from harness.errors import HarnessError
from harness.registry import Registry, RunEntry

GATE_REGRESSION = 1


def _registry_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry",
        type=Path,
        metavar="PATH",
        help="run registry (SQLite; default: $HARNESS_REGISTRY, else <harness cache>/runs.sqlite)",
    )


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text} (0.01 = 1 point)")
    return value


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``runs``, ``leaderboard``, ``compare``, ``gate``, ``report`` and ``view`` to the ``harness`` command line."""
    runs = sub.add_parser("runs", help="the run registry: list, show, add, rm indexed run records",
                          description="The run registry indexes run records (run.json) by id, model, benchmark, "
                          "dataset, harness version, date and training lineage. `harness evaluate` and "
                          "`harness eval` index the runs they write; `add` indexes existing ones.")  # fmt: skip
    acts = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    ls = acts.add_parser("list", help="list indexed runs (oldest first)")
    ls.add_argument("--model", help="only models whose name contains this (case-insensitive)")
    ls.add_argument("--benchmark", help=f"only this benchmark ({_examples()})")
    ls.add_argument("--since", metavar="YYYY-MM-DD", help="only runs created on or after this date")
    ls.add_argument("--json", action="store_true", help="print the entries as JSON")
    _registry_flag(ls)
    show = acts.add_parser("show", help="a run's indexed fields, pass@k, notes and lineage")
    show.add_argument("run", metavar="RUN", help="registry id (or unique prefix) or run.json path")
    show.add_argument("--json", action="store_true", help="print as JSON")
    _registry_flag(show)
    lin = acts.add_parser("lineage", help="a fine-tuned checkpoint's run back to its training, data, pipeline "
                          "manifest and the model that generated the data")  # fmt: skip
    lin.add_argument("run", metavar="RUN", help="registry id (or unique prefix) or run.json path")
    lin.add_argument("--json", action="store_true", help="print as JSON")
    _registry_flag(lin)
    rm = acts.add_parser("rm", help="remove runs from the index (the record files stay)")
    rm.add_argument("runs", nargs="+", metavar="RUN", help="registry ids")
    _registry_flag(rm)
    add = acts.add_parser("add", help="index run records: run.json files, or folders searched recursively")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument("--model", help="name the model of these runs (default: from the record or its samples file)")
    _registry_flag(add)

    from reports.leaderboard import FORMATS

    lb = sub.add_parser("leaderboard", help="one row per model, pass@1 per benchmark suite",
                        description="One row per model, a column for each benchmark suite's pass@1 (titled as "
                        "the run records say, with a selection such as a date window in the header), from each "
                        "model's latest run; sorted; with samples per task and a note wherever the runs of a "
                        "column are not comparable (different dataset versions, hashes, selections or task "
                        "sets).")  # fmt: skip
    lb.add_argument("--benchmarks", nargs="+", metavar="NAME",
                    help="benchmarks to show, in order (space or comma separated; default: all indexed)")  # fmt: skip
    lb.add_argument("--format", choices=FORMATS, default="md", help="output format (default md)")
    lb.add_argument("--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    lb.add_argument("--sort", metavar="COLUMN", help="column title to sort by (default: the first column)")
    lb.add_argument("--model", help="only models whose name contains this")
    lb.add_argument("--since", metavar="YYYY-MM-DD", help="only runs created on or after this date")
    _registry_flag(lb)

    cmp = sub.add_parser("compare", help="flipped tasks, pass@1 difference with a bootstrap CI, McNemar p-value",
                         description="Compare run B with run A on the tasks both graded: tasks that flipped each "
                         "way, the pass@1 difference with a paired bootstrap confidence interval over tasks, and "
                         "the exact McNemar p-value. Runs on different dataset versions, hashes or selections are "
                         "refused. See reports/README.md for the definitions (several samples per task: pass "
                         "fractions for the bootstrap, majority outcome for McNemar).")  # fmt: skip
    cmp.add_argument("run_a", metavar="RUN_A", help="registry id or run.json path (the reference)")
    cmp.add_argument("run_b", metavar="RUN_B", help="registry id or run.json path")
    _stats_flags(cmp)
    cmp.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    cmp.add_argument(
        "--suite",
        action="append",
        metavar="SUITE",
        help="only this suite, as the records name it (repeatable; default: every suite both graded)",
    )
    cmp.add_argument(
        "--allow-incomparable",
        action="store_true",
        help="compare runs on different dataset versions or selections anyway (marked NOT COMPARABLE)",
    )
    cmp.add_argument("--json", action="store_true", help="print as JSON")
    _registry_flag(cmp)

    gt = sub.add_parser("gate", help="CI gate: exit 1 when the candidate regressed significantly from the baseline",
                        description="Exit 1 on a significant regression of pass@1 (on the last suite both runs "
                        "graded, the strictest tests): drop > --max-drop AND McNemar p < --alpha, OR the whole "
                        "(1 - alpha) paired bootstrap interval below -max-drop. Exit 0 otherwise, 2 on errors "
                        "(including runs that are not comparable and a candidate that lacks baseline tasks, "
                        "unless --allow-missing). Prints why.")  # fmt: skip
    gt.add_argument("--baseline", required=True, metavar="RUN", help="registry id or run.json path")
    gt.add_argument("--candidate", required=True, metavar="RUN", help="registry id or run.json path")
    gt.add_argument("--max-drop", type=_fraction, default=0.01, help="tolerated drop as a fraction (default 0.01)")
    gt.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    gt.add_argument("--suite", metavar="SUITE", help="suite to gate on (default: the last suite both runs graded)")
    gt.add_argument(
        "--allow-missing",
        action="store_true",
        help="gate on the common tasks when the candidate lacks some of the baseline's (default: error)",
    )
    _stats_flags(gt)
    gt.add_argument("--json", action="store_true", help="print the decision as JSON")
    _registry_flag(gt)

    rp = sub.add_parser("report", help="a browsable static site: leaderboard, comparisons, plots, a page per run",
                        description="Write a static site into DIR (default ./report; opens from disk, no server, "
                        "no network asset): DIR/report.html (also index.html) with the leaderboard, latest-vs-"
                        "previous and fine-tuned-vs-base comparisons and the plots; a page per run (its tasks, "
                        "filterable, each with its prompt, programs, first failing input and reason) and per "
                        "comparison (flipped tasks with a side-by-side diff, what changed between the runs); "
                        "DIR/plots/ (PNG and SVG). The pipeline funnel, training loss and contamination heatmap "
                        "are found through the runs' training lineage; the flags add or replace them.")  # fmt: skip
    rp.add_argument("--output", type=Path, default=Path("report"), metavar="DIR",
                    help="report folder (default: ./report; a previous report there is rebuilt)")  # fmt: skip
    rp.add_argument("--funnel", type=Path, metavar="PATH", help="the data pipeline's funnel.json (or its work folder)")
    rp.add_argument("--training", type=Path, action="append", default=[], metavar="PATH",
                    help="training_run.json, metrics.jsonl or a training run folder (repeatable)")  # fmt: skip
    rp.add_argument("--decontam", type=Path, nargs="+", action="extend", default=[], metavar="PATH",
                    help="decontamination report.json files (or their folders)")  # fmt: skip
    rp.add_argument("--data-dir", type=Path, metavar="DIR",
                    help="benchmark data, for the prompts and task facets (default: $HARNESS_DATA_DIR, the cache)")
    _registry_flag(rp)

    vw = sub.add_parser("view", help="serve the report site on 127.0.0.1 (read-only)",
                        description="Build the same site as `harness report` (every indexed run, or the RUNs "
                        "named) into a temporary folder and serve it on 127.0.0.1 until Ctrl-C. Only reads: "
                        "nothing is written to the registry or beside the runs.")  # fmt: skip
    vw.add_argument("runs", nargs="*", metavar="RUN", help="registry ids or run.json paths (default: every indexed run)")
    vw.add_argument("--port", type=_port, default=8000, help="port on 127.0.0.1 (default 8000; 0: any free port)")
    vw.add_argument("--data-dir", type=Path, metavar="DIR",
                    help="benchmark data, for the prompts and task facets (default: $HARNESS_DATA_DIR, the cache)")
    _registry_flag(vw)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 0..65535, got {value}")
    return value


def _stats_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resamples", type=positive_int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _examples() -> str:
    """Installed benchmark names for help texts (the benchmark registry decides which)."""
    from harness.benchmark import names

    return ", ".join(names()[:4]) + (", ..." if len(names()) > 4 else "")


def _open(args: argparse.Namespace) -> Registry:
    return Registry(args.registry)


# ---------------------------------------------------------------------- runs
def _runs(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        if args.runs_command == "add":
            entries, warnings = reg.add_paths(args.paths, model=args.model)
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr)
            if not entries:
                raise HarnessError(f"no run record indexed from {', '.join(map(str, args.paths))}")
            for e in entries:
                print(f"{e.id}  {e.model}  {e.benchmark}  {e.path}")
            print(f"indexed {len(entries)} run(s) in {reg.path}")
            return 0
        if args.runs_command == "rm":
            for ref in args.runs:
                e = reg.remove(ref)
                print(f"removed {e.id} ({e.model}, {e.benchmark}) from the index; {e.path} is untouched")
            return 0
        if args.runs_command == "lineage":
            from harness.registry import entry_lineage, format_lineage

            traced = entry_lineage(reg.resolve(args.run))
            print(json.dumps(traced, indent=2) if args.json else format_lineage(traced))
            return 0
        if args.runs_command == "show":
            e = reg.resolve(args.run)
            print(json.dumps(e.to_json(), indent=2) if args.json else _show(e))
            return 0
        reg.require_runs()
        entries = reg.entries(model=args.model, benchmark=args.benchmark, since=args.since)
        if args.json:
            print(json.dumps([e.to_json() for e in entries], indent=2))
            return 0
        if not entries:
            print("no run matches the filters", file=sys.stderr)
            return 0
        print(_runs_table(entries))
        return 0


def _pct(x: float | None) -> str:
    return f"{x * 100:.1f}" if x is not None else "-"


def pass1_text(e: RunEntry) -> str:
    """pass@1 per suite, in grading order, titled as the record titles them: ``HumanEval 72.6, HumanEval+ 64.0``."""
    titles = e.suite_titles()
    return ", ".join(f"{titles.get(s, s)} {_pct(e.pass1(s))}" for s in e.suites or [])


def _runs_table(entries: list[RunEntry]) -> str:
    from harness.registry import lineage_summary

    head = ("id", "created", "model", "benchmark", "dataset", "pass@1 (%)", "tasks", "n", "lineage", "path")
    rows = [(e.id, e.created, e.model, e.benchmark, e.dataset_label(), pass1_text(e), str(e.n_tasks),
             str(e.samples_per_task), lineage_summary(e.lineage) or "-", e.path) for e in entries]  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()
    return "\n".join([line] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows])


def _show(e: RunEntry) -> str:
    from harness.evaluation import format_breakdown

    rec = e.record()
    lines = [
        f"id:         {e.id}",
        f"path:       {e.path}",
        f"model:      {e.model}",
        f"benchmark:  {e.benchmark}",
        f"dataset:    {e.dataset_label()}" + (f", {e.selection_label()}" if e.selection_label() else ""),
        f"created:    {e.created}",
        f"harness:    {e.harness_version or '?'} (commit {e.git_commit or '?'})",
        f"tasks:      {e.n_tasks} ({e.n_samples} samples, {e.samples_per_task} per task)",
    ]
    titles = e.suite_titles()
    for suite in [*(e.suites or []), *(s for s in e.pass_at_k if s not in (e.suites or []))]:
        ks = e.pass_at_k.get(suite, {})
        lines.append(f"{suite + ':':<12}" + "  ".join(f"{k} {v * 100:.1f}%" for k, v in ks.items())
                     + (f"  ({titles[suite]})" if suite in titles else ""))  # fmt: skip
    if e.lineage:
        lines.append(f"lineage:    training data sha256 {e.training_data_hash or '?'}, base model "
                     f"{e.base_model or '?'}, checkpoint {e.checkpoint or '?'}")  # fmt: skip
        data = e.lineage.get("dataset") if isinstance(e.lineage.get("dataset"), dict) else {}
        link = data.get("manifest") if isinstance(data.get("manifest"), dict) else {}
        if link.get("matches") and link.get("model"):
            lines.append(f"data by:    {link['model']} (pipeline manifest {str(link.get('digest'))[:16]}; "
                         f"`harness runs lineage {e.id}` follows the chain)")  # fmt: skip
    if rec.generation is not None:
        g = rec.generation
        lines.append(f"generation: {g.model} ({g.backend}, {g.style}), sampling {json.dumps(g.sampling)}")
    if rec.breakdown:
        lines.append(format_breakdown(rec.breakdown))
    lines += [f"note: {n}" for n in rec.notes]
    return "\n".join(lines)


# ---------------------------------------------------------------------- leaderboard
def _leaderboard(args: argparse.Namespace) -> int:
    from reports import leaderboard

    names = [b.strip() for arg in (args.benchmarks or []) for b in arg.split(",") if b.strip()] or None
    with _open(args) as reg:
        reg.require_runs()
        entries = reg.entries(model=args.model, since=args.since)
    board = leaderboard.build(entries, names, args.sort)
    text = leaderboard.render(board, args.format)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"leaderboard ({len(board.rows)} models, {len(board.columns)} columns): {args.output}")
        for note in board.notes:
            if "NOT COMPARABLE" in note:
                print(f"note: {note}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# ---------------------------------------------------------------------- compare, gate
def _compare(args: argparse.Namespace) -> int:
    from reports.compare import compare, format_comparison

    with _open(args) as reg:
        a, b = reg.resolve(args.run_a), reg.resolve(args.run_b)
    result = compare(a, b, allow_incomparable=args.allow_incomparable, resamples=args.resamples,
                     confidence=args.confidence, seed=args.seed, suites=args.suite)  # fmt: skip
    print(json.dumps(result.to_json(), indent=2) if args.json else format_comparison(result))
    return 0


def _gate(args: argparse.Namespace) -> int:
    from reports.compare import gate

    with _open(args) as reg:
        base, cand = reg.resolve(args.baseline), reg.resolve(args.candidate)
    result = gate(base, cand, max_drop=args.max_drop, alpha=args.alpha, suite=args.suite,
                  resamples=args.resamples, seed=args.seed, allow_missing=args.allow_missing)  # fmt: skip
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"baseline  {base.short()}\ncandidate {cand.short()}")
        print("\n".join(result.reasons))
        print("gate: FAIL (significant regression)" if result.regression else "gate: pass")
    return GATE_REGRESSION if result.regression else 0


# ---------------------------------------------------------------------- report
def _report(args: argparse.Namespace) -> int:
    from reports.html import ReportInputs, build_report

    inputs = ReportInputs(funnel=args.funnel, training=list(args.training), decontam=list(args.decontam),
                          data_dir=args.data_dir)  # fmt: skip
    with _open(args) as reg:
        path = build_report(reg, args.output, inputs)
    print(f"report: {path} (open it in a browser; the run and comparison pages are beside it)")
    return 0


def _view(args: argparse.Namespace) -> int:
    from reports.site_server import view

    with _open(args) as reg:
        return view(reg, args.runs, args.port, args.data_dir)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "runs": _runs,
    "leaderboard": _leaderboard,
    "compare": _compare,
    "gate": _gate,
    "report": _report,
    "view": _view,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one reports command on its own (the same behaviour as through ``harness``)."""
    parser = argparse.ArgumentParser(prog="harness", description="Run registry, leaderboards, comparisons, reports.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        return HANDLERS[args.command](args)
    except HarnessError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
