"""The report site in a real browser: Playwright driving Debian's Chromium (``executable_path``), from disk.

The runs: the StarCoder2-15B-Instruct HumanEval+ reference samples graded for real (the session's shared
run), an altered copy graded for real (five passing tasks broken five ways, one of them a program that holds
``</script><script>alert(1)</script>``), and a fine-tune scenario laid out as the pipeline and ``harness train``
lay out their files (a work folder with ``funnel.json``, ``manifest.json``, ``dataset.jsonl`` and a
decontamination ``report.json``; a training folder with ``training_run.json`` and ``metrics.jsonl``; the
checkpoint's evaluation carrying the lineage; the base model's evaluation), so that ``harness report`` with no
flag has to find the funnel, the loss curve and the base model through the registry and the lineage.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.registry import Registry, run_id
from harness.store import RunRecord, load_run, save_run
from tests.conftest import REFERENCE
from tests.test_reports import altered, outcomes_of, run_cli

XSS = "</script><script>alert(1)</script>"
MODEL = "starcoder2-15b-instruct-v0.1"
# Five ways to break a passing task: a wrong value, an exception, a syntax error, a missing entry point, and a
# wrong value from a program whose text would end a <script> element if it were ever put into a page raw.
BREAKS = [
    "    return None\n",
    "    raise ValueError('broken on purpose')\n",
    "    return (\n",
    None,  # the solution defines another function
    f"    # {XSS}\n    return '{XSS}'\n",
]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Site:
    """Paths and facts of the module's site."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.registry = root / "registry.sqlite"
        self.out = root / "site"
        self.broken: list[str] = []
        self.ids: dict[str, str] = {}


def _write_finetune(root: Path, orig: RunRecord) -> tuple[RunRecord, RunRecord]:
    """A pipeline work folder, a training run and two evaluations (base model, fine-tuned checkpoint)."""
    from harness.registry import manifest_digest

    work = root / "pipeline"
    work.mkdir(parents=True)
    settings = {"model": "hf:/models/base-coder", "engine_options": {}, "seed": 3407}
    digest = manifest_digest(settings)
    (work / "dataset.jsonl").write_text(json.dumps({"instruction": "Write f.", "response": "def f(): pass",
                                                    "manifest_digest": digest}) + "\n")  # fmt: skip
    (work / "manifest.json").write_text(json.dumps({"format": 1, "digest": digest, "settings": settings,
                                                    "model": {"spec": "hf:/models/base-coder", "identity": None},
                                                    "harness_version": "0.1.0"}))  # fmt: skip
    funnel = {"stages": ["seeds", "filter", "dedup", "concepts", "instructions", "responses", "validate", "select"]}
    sizes = [("seeds", 400, 300, {"no docstring": 100}), ("filter", 300, 180, {"type check": 90, "judge: No": 30}),
             ("dedup", 180, 150, {"near duplicate": 30}), ("concepts", 150, 150, {}),
             ("instructions", 150, 140, {"too short": 10}), ("responses", 140, 140, {}),
             ("validate", 140, 90, {"no passing response": 50}), ("select", 90, 85, {"contaminated": 5})]
    for stage, n_in, n_out, removed in sizes:
        funnel[stage] = {"stage": stage, "input": n_in, "output": n_out, "removed": removed}
    (work / "funnel.json").write_text(json.dumps(funnel))
    audit = work / "audit"
    audit.mkdir()
    (audit / "report.json").write_text(json.dumps({"dataset": {"path": str(work / "dataset.jsonl"), "rows": 90},
                                                   "summary": {"humaneval": {"rows": 3, "rate": 0.033},
                                                               "mbpp": {"rows": 1, "rate": 0.011}}}))  # fmt: skip
    train = root / "train"
    train.mkdir()
    with (train / "metrics.jsonl").open("w") as f:
        for step in range(1, 61):
            f.write(json.dumps({"step": step, "epoch": step / 20, "loss": 0.6 + 1.2 * math.exp(-step / 15),
                                "learning_rate": 1e-5 * min(1.0, step / 5)}) + "\n")  # fmt: skip
    base = {"source": "/models/base-coder", "local": True, "digest": "b" * 64, "commit": None}
    record = {"schema_version": 1, "kind": "train", "status": "completed", "run_key": "k" * 64,
              "output": str(train), "dataset": {"path": str(work / "dataset.jsonl"), "format": "jsonl",
                                                "sha256": "a" * 64, "rows": 85},
              "base_model": base, "config": {"learning_rate": 1e-5}, "config_sha256": "c" * 64,
              "checkpoint": str(train / "final"), "metrics_file": str(train / "metrics.jsonl"),
              "metrics": {"global_step": 60}}  # fmt: skip
    (train / "training_run.json").write_text(json.dumps(record))
    lineage = {"training_run": str(train / "training_run.json"),
               "dataset": {"path": str(work / "dataset.jsonl"), "sha256": "a" * 64, "rows": 85, "format": "jsonl",
                           "manifest_digest": digest},
               "base_model": base, "checkpoint": str(train / "final"), "adapter": False,
               "config": {"learning_rate": 1e-5}, "config_sha256": "c" * 64, "run_key": "k" * 64}  # fmt: skip
    oc = outcomes_of(orig)
    failing = [tid for tid, t in orig.tasks.items() if t.base_correct == 0][:4]  # flips on base and plus
    for tid in failing:
        oc[tid] = (1, 1, 1)
    base_run = orig.model_copy(update={"model": "hf:/models/base-coder", "created": "2026-02-01T10:00:00+00:00"})
    tuned = altered(orig, oc, model=f"hf:{train / 'final'}", created="2026-02-02T10:00:00+00:00", lineage=lineage)
    for tid, t in tuned.tasks.items():  # its samples are the reference samples' lines (the programs show)
        t.samples[0].line = orig.tasks[tid].samples[0].line
    return base_run, tuned


@pytest.fixture(scope="module")
def site(sc2_humaneval: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The runs graded or laid out, indexed in a registry of their own, and the site built from it."""
    from harness.evaluation import evaluate_samples

    root = tmp_path_factory.mktemp("site")
    s = Site(root)
    orig = load_run(sc2_humaneval)
    first = root / "runs" / "sc2"
    first.mkdir(parents=True)
    shutil.copy(sc2_humaneval, first / "run.json")
    # The altered copy, graded for real; it lives in a folder named like the model so both are one model's runs.
    lines = (data_dir / REFERENCE / "humaneval.jsonl").read_text().splitlines()
    passing = [tid for tid, t in orig.tasks.items() if t.plus_correct == 1]
    s.broken = passing[:len(BREAKS)]
    copy = root / "runs" / "later" / MODEL
    copy.mkdir(parents=True)
    out = []
    for line in lines:
        row = json.loads(line)
        if row["task_id"] in s.broken:
            body = BREAKS[s.broken.index(row["task_id"])]
            row = {"task_id": row["task_id"], "completion": body} if body else {
                "task_id": row["task_id"], "solution": "def something_else():\n    return 1\n"}
        out.append(json.dumps(row))
    (copy / "humaneval.jsonl").write_text("\n".join(out) + "\n")
    evaluate_samples("humaneval", copy / "humaneval.jsonl", output=copy, data_dir=data_dir, use_verdict_cache=True,
                     echo=lambda _: None, parallel=2)  # fmt: skip
    base_run, tuned = _write_finetune(root / "finetune", orig)
    save_run(root / "runs" / "base" / "run.json", base_run)
    save_run(root / "runs" / "tuned" / "run.json", tuned)
    code, _, err = run_cli("runs", "add", str(root / "runs"), "--registry", str(s.registry))
    assert code == 0, err
    for name, path in (("orig", first / "run.json"), ("later", copy / "run.json"),
                       ("base", root / "runs" / "base" / "run.json"), ("tuned", root / "runs" / "tuned" / "run.json")):
        s.ids[name] = run_id(path, load_run(path).created)
    # `harness report` with no flag (the registry from the environment, ./report): one build serves every test.
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("HARNESS_REGISTRY", str(s.registry))
        mp.setenv("HARNESS_DATA_DIR", str(data_dir))
        code, stdout, err = run_cli("report")
    assert code == 0, err
    assert f"report: {Path('report') / 'report.html'}" in stdout
    s.out = root / "report"
    return s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (Debian's, through Playwright's executable_path)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra has it)")
    path = _chromium()
    if path is None:
        pytest.skip("chromium is not installed (scripts/install_chromium.sh; Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Page:
    """A browser page that records console errors, page errors and dialogs (an alert is a failed escape)."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, path: Path) -> Any:
        self.page.goto(path.resolve().as_uri())
        return self.page

    def check(self) -> None:
        assert not self.errors, self.errors
        assert not self.dialogs, self.dialogs


def test_run_page_filters_and_opens_a_task_with_its_failing_input(site: Site, browser: Any, tmp_path: Path) -> None:
    p = Page(browser)
    page = p.open(site.out / "runs" / f"{site.ids['later']}.html")
    rows = page.locator("#tasks tbody tr[data-key]")
    assert rows.count() == 164
    page.select_option("select[data-attr='data-status']", "fail")
    record = load_run(Path(Registry(site.registry).get(site.ids["later"]).path))
    failing = sum(1 for t in record.tasks.values() if t.plus_correct == 0)
    assert page.locator("#tasks tbody tr[data-key]:visible").count() == failing
    assert page.locator("[data-count-of='tasks']").inner_text() == f"{failing} of 164 shown"
    # The task whose program carries the script-closing text: shown as text, nothing runs.
    tid = site.broken[-1]
    page.fill("input[data-search-of='tasks']", tid)
    page.locator("#tasks button.task", has_text=re.compile(f"^{re.escape(tid)}$")).click()
    detail = page.locator("#tasks tr.detail .sample").first
    detail.wait_for()
    assert XSS in detail.locator("pre.code").inner_text()
    facts = detail.inner_text()
    entry = tid.split("/")[0]  # the failing input is shown as the call that failed: entry_point(args)
    assert "wrong output" in facts and "input value" in facts, facts
    # The call that failed, the value the canonical solution returned and the one this program returned (the
    # grader's record): the script-closing text it returned is shown as text too.
    assert re.search(r"input value\s+\w+\(", facts) and re.search(r"expected\s+\S", facts), facts
    assert re.search(r"returned\s+'" + re.escape(XSS) + "'", facts), facts
    assert entry
    # The prompt is there, highlighted (keywords in spans), and the CPU time of each suite.
    assert page.locator("#tasks tr.detail pre.code span.k").count() > 0
    assert re.search(r"CPU base \d+\.\d{3} s", facts)
    # Failure modes filter the table: the exception, the syntax error and the missing entry point, one each.
    page.fill("input[data-search-of='tasks']", "")
    page.select_option("select[data-attr='data-status']", "")
    for mode, tid in (("runtime_error", site.broken[1]), ("syntax_error", site.broken[2]),
                      ("wrong_signature", site.broken[3])):  # fmt: skip
        page.select_option("select[data-attr='data-mode']", mode)
        shown = page.locator("#tasks tbody tr[data-key]:visible").all_inner_texts()
        assert any(t.startswith(tid + "\t") or t.split()[0] == tid for t in shown), (mode, shown)
    page.select_option("select[data-attr='data-mode']", "")
    page.fill("input[data-search-of='tasks']", site.broken[1])
    page.locator("#tasks button.task", has_text=re.compile(f"^{re.escape(site.broken[1])}$")).click()
    raised = page.locator("#tasks tr.detail").filter(has_text="broken on purpose")
    raised.first.wait_for()
    assert "runtime_error (ValueError)" in raised.first.inner_text()
    page.screenshot(path=str(tmp_path / "run-page.png"), full_page=False)
    assert (tmp_path / "run-page.png").stat().st_size > 10_000
    p.check()


def test_comparison_page_shows_the_flip_both_programs_the_diff_and_the_failing_input(
    site: Site, browser: Any, tmp_path: Path
) -> None:
    p = Page(browser)
    page = p.open(site.out / "compare" / f"{site.ids['orig']}-{site.ids['later']}.html")
    flips = page.locator("#flips tbody tr[data-key]")
    assert flips.count() >= len(BREAKS) * 2 - 1  # each broken task flips on base and plus (a plus-only pass aside)
    text = page.locator("#settings").inner_text()
    assert "dataset hash" in text and "samples sha256" in text
    assert re.search(r"grader version\s+harness grader 4, humaneval rules 2 \(EvalPlus 0\.3\.1\)", text), text
    assert page.locator("#settings tr.changed").filter(has_text="samples sha256").count() == 1
    assert "McNemar" in page.locator("#stats").inner_text()
    modes = page.locator("#failure-modes").inner_text()  # the failure modes moved, one sample each
    assert re.search(r"runtime_error\s+\d+\s+\d+\s+\+1", modes) and re.search(r"syntax_error\s+\d+\s+\d+\s+\+1", modes)
    page.select_option("select[data-attr='data-direction']", "fail→pass")
    assert page.locator("#flips tbody tr[data-key]:visible").count() == 0
    page.select_option("select[data-attr='data-direction']", "pass→fail")
    tid = site.broken[0]
    page.locator("#flips button.task", has_text=re.compile(f"^{re.escape(tid)}$")).first.click()
    detail = page.locator("#flips tr.detail").first
    detail.locator("table.diff").wait_for()
    assert detail.locator("table.diff tr.del, table.diff tr.rep").count() >= 1  # the original body, gone
    assert "return None" in detail.locator("table.diff").inner_text()
    boxes = detail.locator(".sides .sample")
    assert boxes.count() == 2
    assert boxes.nth(0).get_attribute("class") == "sample pass"
    b = boxes.nth(1).inner_text()
    assert "wrong output" in b and "return None" in b and "input value" in b
    assert re.search(r"returned\s+None", b), b  # what the broken program returned, beside the expected value
    page.screenshot(path=str(tmp_path / "compare-page.png"), full_page=True)
    assert (tmp_path / "compare-page.png").stat().st_size > 10_000
    p.check()


def test_report_with_no_flags_finds_the_funnel_the_loss_curve_and_the_base_model(
    site: Site, browser: Any, tmp_path: Path
) -> None:
    index = site.out / "report.html"  # the module's site was built by `harness report` with no flag
    assert index.is_file() and (site.out / "index.html").read_text() == index.read_text()
    p = Page(browser)
    page = p.open(index)
    for name in ("funnel", "training_loss", "contamination"):
        img = page.locator(f"img[src='plots/{name}.png']")
        assert img.count() == 1, name
        assert img.evaluate("i => i.complete && i.naturalWidth > 100"), name
    assert "found through the lineage of run" in page.locator("#plot-funnel").inner_text()
    tuned = page.locator("#finetuned")
    assert tuned.count() == 1 and "hf:/models/base-coder" in tuned.inner_text()
    pipelines = page.locator("#pipelines").inner_text()
    assert "data generated by hf:/models/base-coder" in pipelines and "not verified" not in pipelines, pipelines
    page.locator("#finetuned a", has_text="details").first.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"compare/{site.ids['base']}-{site.ids['tuned']}.html")
    assert page.locator("#flips tbody tr[data-key]").count() == 8  # 4 tasks fixed, on base and plus
    assert page.locator("#settings tr.changed").filter(has_text="base model").count() == 1
    page.screenshot(path=str(tmp_path / "finetune-compare.png"), full_page=True)
    p.check()


def test_every_text_from_a_program_is_escaped(site: Site) -> None:
    chunks = list((site.out / "runs" / site.ids["later"]).glob("t*.js"))
    assert len(chunks) == 164
    holder = [c for c in chunks if "alert(1)" in c.read_text()]
    assert len(holder) == 1
    text = holder[0].read_text()
    assert "</script>" not in text and "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in text
    for page in [*site.out.glob("runs/*.html"), *site.out.glob("compare/*.html"), site.out / "report.html"]:
        assert "<script>alert(1)" not in page.read_text(), page
    # The pages and chunks name no network asset.
    for page in [*site.out.rglob("*.html"), *site.out.rglob("*.js")]:
        assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", page.read_text()), page


def test_a_large_run_stays_a_small_page(sc2_humaneval: Path, tmp_path: Path) -> None:
    # 30 tasks x 200 samples: the page holds the task table only; the samples are in the task files beside it.
    from harness.registry import load_entry
    from reports.site import load_run_data, write_run_page

    orig = load_run(sc2_humaneval)
    oc = {tid: (200, 150, 120) for tid in list(orig.tasks)[:30]}
    big = altered(orig, oc, model="sc2-sampled")
    for tid, t in big.tasks.items():  # 200 samples of one line: a greedy run's repeats
        for sr in t.samples:
            sr.line = orig.tasks[tid].samples[0].line
    save_run(tmp_path / "big" / "run.json", big)
    entry = load_entry(tmp_path / "big" / "run.json")
    page = write_run_page(tmp_path / "out", load_run_data(entry))
    assert page.stat().st_size < 100_000
    chunks = sorted((tmp_path / "out" / "runs" / entry.id).glob("t*.js"))
    assert len(chunks) == 30 and all(c.stat().st_size < 400_000 for c in chunks)
    doc = json.loads(re.search(r"loaded\(\"t0\",(.*)\);\s*$", chunks[0].read_text(), re.S).group(1))
    assert len(doc["samples"]) == 200 and len(doc["programs"]) == 1  # one program stored once for 200 samples


def test_view_says_when_the_port_is_taken() -> None:
    import socket

    from harness.errors import HarnessError
    from reports.site_server import make_server

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(HarnessError, match=rf"port {port} is in use on 127.0.0.1; pass --port N"):
            make_server(Path(os.devnull).parent, port)


def test_run_page_facets_and_raw_generations(sc2_humaneval: Path, data_dir: Path, tmp_path: Path) -> None:
    # DS-1000's library is a filter of its run page (the benchmark's declared breakdowns, read from its problems).
    from harness.registry import load_entry
    from reports.site import load_run_data, write_run_page
    from tests.test_reports import ds1000_record

    orig = load_run(sc2_humaneval)
    ds = ds1000_record(orig, data_dir, "codex002", "2026-01-01T08:00:00+00:00")
    keep = list(ds.tasks)[::40]  # 25 problems across the libraries
    ds = ds.model_copy(update={"tasks": {t: ds.tasks[t] for t in keep}, "n_tasks": len(keep)})
    save_run(tmp_path / "ds" / "run.json", ds)
    entry = load_entry(tmp_path / "ds" / "run.json")
    text = write_run_page(tmp_path / "out", load_run_data(entry, data_dir)).read_text()
    select = re.search(r'<select data-filter-of="tasks" data-attr="data-facet-library">(.*?)</select>', text, re.S)
    assert select is not None and all(f'value="{lib}"' in select.group(1) for lib in ("Numpy", "Pandas", "Matplotlib"))
    assert 'data-facet-perturbation_type="Origin"' in text
    # A `harness eval` run keeps each sample's raw reply: the task file carries it beside the program.
    out = tmp_path / "eval"
    samples = data_dir / REFERENCE / "humaneval.jsonl"
    code, _, err = run_cli("eval", "--model", f"replay:{samples}", "--benchmarks", "humaneval", "--limit", "2",
                           "--data-dir", str(data_dir), "--output", str(out))  # fmt: skip
    if code != 0 and "invalid choice" in err:
        pytest.skip("`harness eval` is not wired here")
    assert code == 0, err
    entry = load_entry(out / "humaneval" / "run.json")
    write_run_page(tmp_path / "out", load_run_data(entry, data_dir))
    chunk = (tmp_path / "out" / "runs" / entry.id / "t0.js").read_text()
    doc = json.loads(re.search(r"loaded\(\"t0\",(.*)\);\s*$", chunk, re.S).group(1))
    assert doc["raws"] and doc["samples"][0]["raw"] == 0 and doc["raws"][0]["finish_reason"]
    first = json.loads(samples.read_text().splitlines()[0])
    assert first["completion"].strip() in doc["raws"][0]["text"]


def test_report_output_errors_are_one_line(site: Site, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run_cli("report", "--output", str(afile), "--registry", str(site.registry))
    assert code == 2 and err.strip() == f"error: --output {afile} is a file; name a folder for the report site"
    foreign = tmp_path / "home"
    (foreign / "runs").mkdir(parents=True)
    (foreign / "runs" / "keep.json").write_text("{}")
    code, _, err = run_cli("report", "--output", str(foreign), "--registry", str(site.registry))
    assert code == 2 and "holds a runs/ or compare/ folder that is not a report's" in err
    assert len(err.strip().splitlines()) == 1 and (foreign / "runs" / "keep.json").is_file()


def test_livecodebench_run_page_filters_by_difficulty_platform_and_date(sc2_humaneval: Path, data_dir: Path,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    from harness.benchmark import reader
    from harness.registry import load_entry
    from reports.site import load_run_data, write_run_page
    from tests.test_reports import lcb_record

    problems = reader("livecodebench", data_dir).problems()
    ids = list(problems)[:12]
    rec = lcb_record(load_run(sc2_humaneval), "sc2", "2024-09-01", "2025-04-30", 5, "2026-01-02T09:00:00+00:00")
    tasks = dict(zip(ids, rec.tasks.values()))
    rec = rec.model_copy(update={"tasks": tasks, "n_tasks": len(tasks), "samples_file": None})
    save_run(tmp_path / "lcb" / "run.json", rec)
    text = write_run_page(tmp_path / "out", load_run_data(load_entry(tmp_path / "lcb" / "run.json"), data_dir)).read_text()
    for facet in ("difficulty", "platform", "date"):
        select = re.search(rf'<select data-filter-of="tasks" data-attr="data-facet-{facet}">(.*?)</select>', text, re.S)
        assert select is not None, facet
        values = {str(problems[i].extra["contest_date"])[:10] if facet == "date" else
                  str(problems[i].extra[facet]) for i in ids}  # fmt: skip
        assert all(f'value="{v}"' in select.group(1) for v in values), (facet, values)
    assert "programs not shown: the record names no samples file" in text


def test_harness_view_serves_read_only_until_interrupted_and_leaves_nothing(site: Site, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    before = site.registry.stat().st_mtime_ns
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the address line must come through a pipe unbuffered

    def as_a_background_job() -> None:  # a script's `cmd &` starts it with SIGINT ignored: Ctrl-C must still stop it
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-m", "harness", "view", site.ids["orig"], "--port", "0", "--registry",
                             str(site.registry)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=as_a_background_job)  # fmt: skip
    seen: dict[str, int] = {}
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        url = re.search(r"(http://127\.0\.0\.1:\d+)/report\.html", line)
        assert url, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = url.group(1)
        with urllib.request.urlopen(f"{base}/report.html", timeout=10) as r:
            index = r.read().decode()
        # Only the run named is in the site (the other runs of the registry are not).
        assert site.ids["orig"] in index and site.ids["later"] not in index
        with urllib.request.urlopen(f"{base}/runs/{site.ids['orig']}.html", timeout=10) as r:
            assert r.status == 200
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("harness-view-")]
        for method, path in (("POST", "/report.html"), ("PUT", "/x.html"), ("DELETE", "/report.html"),
                             ("GET", "/../../etc/passwd"), ("GET", "/runs/")):  # fmt: skip
            req = urllib.request.Request(base + path, method=method, data=b"x" if method != "GET" else None)
            try:
                urllib.request.urlopen(req, timeout=10)
                seen[f"{method} {path}"] = 200
            except urllib.error.HTTPError as exc:
                seen[f"{method} {path}"] = exc.code
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # a server that ignores Ctrl-C fails the test and is not left running
            out, err = proc.communicate()
            raise AssertionError(f"harness view did not stop on SIGINT: {err[-2000:]}") from None
    assert seen["POST /report.html"] == 501 and seen["PUT /x.html"] == 501 and seen["DELETE /report.html"] == 501
    assert seen["GET /../../etc/passwd"] == 404 and seen["GET /runs/"] == 404
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("harness-view-")]  # the temporary site is gone
    assert site.registry.stat().st_mtime_ns == before  # it only read
