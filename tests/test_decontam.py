"""Decontamination: recall and precision on a planted 50,000-row set, evidence, cleaning, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import benchmarks  # noqa: F401  (registers the benchmarks)
from harness import benchmark as registry
from harness.decontamination import DEFAULT_METHODS, AuditOptions, audit, write_clean
from harness.engine import Completion, Engine
from harness.engine.base import Backend, BackendOptions
from harness.errors import HarnessError
from tests.synthetic_contamination import KINDS, STATEMENT_KINDS, STATEMENT_PARTS, make_dataset, score


def _available() -> list[str]:
    return registry.references()


@pytest.fixture(scope="module")
def planted(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[str]]:
    benches = _available()
    from harness.decontamination.index import collect_items

    refs, _ = collect_items(benches, data_dir)
    items = [(it.benchmark, it.task_id, it.part, it.text) for it in refs]
    path = tmp_path_factory.mktemp("synthetic") / "train.jsonl"
    truth = make_dataset(path, items, rows=50000, plants_per_kind=150)
    return path, truth, benches


def test_planted_items_are_found_and_clean_rows_are_not(planted: tuple[Path, dict[str, Any], list[str]],
                                                        data_dir: Path) -> None:  # fmt: skip
    path, truth, benches = planted
    report = audit(path, benchmarks=benches, options=AuditOptions(methods=(*DEFAULT_METHODS, "probe")),
                   data_dir=data_dir)  # fmt: skip
    defaults_only = {**report, "methods": list(DEFAULT_METHODS),
                     "flagged": [f for f in report["flagged"] if f["method"] in DEFAULT_METHODS]}  # fmt: skip
    s = score(defaults_only, truth)
    assert s["recall"]["verbatim"] == 1.0
    assert s["recall"]["reformatted"] == 1.0
    assert s["precision_on_clean"] >= 0.99, s["false_positive_rows"][:10]
    # statement-only plants (an MBPP statement, a HumanEval docstring, a LiveCodeBench question as the
    # instruction, verbatim or reformatted): all found by the default methods, every part planted
    for kind in STATEMENT_KINDS:
        assert s["recall"][kind] == 1.0, s["recall_by_part"][kind]
        assert set(s["recall_by_part"][kind]) == set(STATEMENT_PARTS)
    # the everyday requests among the clean rows ("Write a function to reverse a string.") stay clean
    assert s["everyday_rows"] > 2000 and len(s["everyday_flagged"]) <= 0.01 * s["everyday_rows"]
    full = score(report, truth)
    print("\nrecall of lightly edited plants by method:", json.dumps(full["recall_by_method"]["edited"]))
    assert set(full["recall_by_method"]) == {*KINDS, *STATEMENT_KINDS}
    assert full["precision_on_clean"] >= 0.99
    # every flag names its evidence, and the evidence is in the row
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for f in report["flagged"][:200]:
        assert f["evidence"].rstrip("…")[:50] in rows[f["row"]][f["field"]]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def small(data_dir: Path, tmp_path: Path) -> tuple[Path, str]:
    he = registry.get("humaneval", data_dir=data_dir).problems()["HumanEval/12"]
    rows = [
        {"instruction": "Sort a list.", "response": "def f(xs):\n    return sorted(xs)\n", "id": 1},
        {"instruction": "Find the longest string.", "response": "Sure:\n" + he.prompt + he.canonical_solution, "id": 2},
        {"instruction": "Add numbers", "response": "def add(a, b):\n    return a + b\n", "id": 3, "score": 0.5},
    ]
    return _write(tmp_path / "train.jsonl", rows), he.prompt


def test_evidence_cleaning_and_side_file(small: tuple[Path, str], data_dir: Path, tmp_path: Path) -> None:
    path, prompt = small
    report = audit(path, fields=["instruction", "response"], benchmarks=["humaneval", "mbpp"], data_dir=data_dir,
                   options=AuditOptions(methods=("substring", "ngram", "probe", "minhash")))  # fmt: skip
    hits = {(f["row"], f["method"], f["task_id"]) for f in report["flagged"]}
    assert {(1, "substring", "HumanEval/12"), (1, "ngram", "HumanEval/12"), (1, "probe", "HumanEval/12")} <= hits
    assert {f["row"] for f in report["flagged"]} == {1}
    sub = next(f for f in report["flagged"] if f["method"] == "substring" and f["part"] == "prompt")
    assert sub["evidence"].startswith("from typing import List, Optional")
    assert report["summary"]["humaneval"]["rows"] == 1 and report["summary"]["mbpp"]["rows"] == 0
    clean = write_clean(report, path, ["instruction", "response"], tmp_path / "clean.jsonl")
    assert clean["kept"] == 2 and clean["dropped"] == 1
    kept = [json.loads(x)["id"] for x in (tmp_path / "clean.jsonl").read_text().splitlines()]
    assert kept == [1, 3]
    dropped = [json.loads(x) for x in Path(clean["dropped_file"]).read_text().splitlines()]
    assert dropped[0]["row"] == 1 and dropped[0]["data"]["id"] == 2
    assert any("HumanEval/12" in why for why in dropped[0]["reasons"])


def test_each_part_is_matched_on_its_own_and_generic_phrasings_are_not(data_dir: Path, tmp_path: Path) -> None:
    mbpp = registry.get("mbpp", data_dir=data_dir)
    he = registry.get("humaneval", data_dir=data_dir).problems()["HumanEval/0"]
    first = mbpp.problems()["Mbpp/2"]
    statement = first.prompt.strip().strip('"').strip().splitlines()[0]
    assertion = next(t for tid, part, t in mbpp.reference_items() if tid == "Mbpp/2" and part == "assertion:1")
    docstring = "Check if in given list of numbers, are any two numbers closer to each other than given threshold."
    rows = [
        {"instruction": statement, "response": "def f(a, b):\n    return set(a) & set(b)\n"},  # a different answer
        {"instruction": "Please:\n" + "\n".join(docstring.split(" ")), "response": "pass"},  # one word a line
        {"instruction": "Test it with", "response": assertion},
        # generic phrasings, some of them MBPP statements word for word, are no evidence
        {"instruction": "Write a function to sort a list of elements.", "response": "sorted(x)"},
        {"instruction": "Write a python function to find the minimum of two numbers.", "response": "min(a, b)"},
        {"instruction": "Write a function to reverse a string.", "response": "s[::-1]"},
        {"instruction": "Write a function to find the shared elements", "response": "set(a) & set(b)"},  # cut short
        {"instruction": he.entry_point, "response": "def has_close(xs):\n    return False\n"},
    ]
    report = audit(_write(tmp_path / "parts.jsonl", rows), benchmarks=["humaneval", "mbpp"], data_dir=data_dir)
    found = {(f["row"], f["task_id"], f["part"]) for f in report["flagged"]}
    assert {(0, "Mbpp/2", "statement"), (1, "HumanEval/0", "docstring"), (2, "Mbpp/2", "assertion:1")} <= found
    assert {f["row"] for f in report["flagged"]} == {0, 1, 2}, found
    assert report["parts_not_matched_alone"]["mbpp"]["statement: a generic phrasing"] > 0
    flag = next(f for f in report["flagged"] if f["part"] == "statement")
    assert flag["method"] == "substring" and "word for word" in flag["detail"] and flag["evidence"] == statement.rstrip(".")


def test_parquet_and_saved_datasets(small: tuple[Path, str], data_dir: Path, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [json.loads(x) for x in small[0].read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    report = audit(tmp_path / "train.parquet", benchmarks=["humaneval"], data_dir=data_dir)
    assert {f["row"] for f in report["flagged"]} == {1} and report["dataset"]["format"] == "parquet"
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    report = audit(tmp_path / "saved", benchmarks=["humaneval"], data_dir=data_dir)
    assert {f["row"] for f in report["flagged"]} == {1} and report["dataset"]["format"] == "hf"
    write_clean(report, tmp_path / "saved", None, tmp_path / "saved-clean")
    assert len(datasets.load_from_disk(str(tmp_path / "saved-clean"))) == 2


def test_index_is_cached_between_audits(small: tuple[Path, str], data_dir: Path, tmp_path: Path) -> None:
    first = audit(small[0], benchmarks=["mbpp"], data_dir=data_dir, cache_dir=tmp_path / "c")
    second = audit(small[0], benchmarks=["mbpp"], data_dir=data_dir, cache_dir=tmp_path / "c")
    assert not first["index_from_cache"] and second["index_from_cache"]
    assert first["flagged"] == second["flagged"]


def test_bad_inputs_are_clear(data_dir: Path, tmp_path: Path, small: tuple[Path, str]) -> None:
    with pytest.raises(HarnessError, match="field.*nope.*not in .*its fields: id, instruction, response, score"):
        audit(small[0], fields=["nope"], benchmarks=["humaneval"], data_dir=data_dir)
    with pytest.raises(HarnessError, match="hold no text"):
        audit(small[0], fields=["id"], benchmarks=["humaneval"], data_dir=data_dir)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(HarnessError, match="has no rows"):
        audit(empty, benchmarks=["humaneval"], data_dir=data_dir)
    mixed = _write(tmp_path / "mixed.jsonl", [{"text": "def f(): pass"}, {"text": 17}, {"text": ["a"]}])
    report = audit(mixed, benchmarks=["humaneval"], data_dir=data_dir)
    assert report["dataset"]["non_text_values"] == {"text": 2}
    with pytest.raises(HarnessError, match="unknown method"):
        audit(mixed, benchmarks=["humaneval"], data_dir=data_dir, options=AuditOptions(methods=("telepathy",)))


def test_cli_writes_report_and_clean_set(small: tuple[Path, str], data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "harness", "decontam", "--dataset", str(small[0]), "--benchmarks",
                           "humaneval,mbpp", "--output", str(out), "--write-clean", str(tmp_path / "clean.jsonl"),
                           "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    row = next(f for f in report["flagged"] if f["method"] == "substring")
    assert {"row", "benchmark", "task_id", "method", "evidence"} <= set(row) and row["row"] == 1
    assert "HumanEval/12" in (out / "report.md").read_text()
    assert "dropped 1 rows" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "harness", "decontam", "--dataset", str(small[0]), "--fields",
                          "nope", "--output", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "not in" in bad.stderr and "Traceback" not in bad.stderr
    help_text = subprocess.run([sys.executable, "-m", "harness", "decontam", "--help"], capture_output=True,
                               text=True, timeout=60).stdout  # fmt: skip
    assert "Default methods: substring, ngram" in " ".join(help_text.split())


class _SaysYes(Backend):
    name = "yes"

    def identity(self) -> dict[str, str]:
        return {"model": "yes"}

    def run(self, jobs, emit) -> None:  # type: ignore[no-untyped-def]
        for j, job in enumerate(jobs):
            for i in job.indices:
                emit(j, i, Completion("Yes", "stop", 1, 1))


def test_embedding_neighbours_judged_by_the_engine(small: tuple[Path, str], data_dir: Path, tiny_model: Path) -> None:
    judge = Engine("yes:x", _SaysYes("x", BackendOptions()), None)
    opts = AuditOptions(methods=("embedding",), embedding_model=str(tiny_model), embedding_min_cosine=-1.0,
                        judge=judge)  # fmt: skip
    report = audit(small[0], fields=["response"], benchmarks=["humaneval"], data_dir=data_dir, options=opts)
    # every row has a nearest item; the judge said yes to all: one flag per row, scored by cosine
    assert sorted(f["row"] for f in report["flagged"]) == [0, 1, 2]
    assert all("judge said 'Yes'" in f["detail"] for f in report["flagged"])
    with pytest.raises(HarnessError, match="--judge-model"):
        audit(small[0], benchmarks=["humaneval"], data_dir=data_dir,
              options=AuditOptions(methods=("embedding",), embedding_model=str(tiny_model)))  # fmt: skip


def test_cutoff_window_is_reported_and_becomes_the_models_default(data_dir: Path, tmp_path: Path) -> None:
    if "livecodebench" not in registry.names():
        pytest.skip("LiveCodeBench is not registered")
    env = {**__import__("os").environ, "HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "harness", *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=600, env=env)  # fmt: skip
    proc = run("decontam", "--model", "replay:x", "--cutoff-date", "2025-01-31", "--output", str(tmp_path / "w"),
               "--data-dir", str(data_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    win = json.loads((tmp_path / "w" / "window.json").read_text())
    lcb = registry.get("livecodebench", data_dir=data_dir).problems()
    expected = sorted(t for t, p in lcb.items() if str(p.extra["contest_date"])[:10] > "2025-01-31")
    assert sorted(win["task_ids"]) == expected and win["problems_after_cutoff"] == len(expected) > 0
    assert win["start_date"] == "2025-02-01"
    samples = _write(tmp_path / "s.jsonl", [{"task_id": t, "solution": "print(0)"} for t in lcb])
    # the remembered window is the model's: write it under the replay spec we evaluate
    from harness.decontamination import window

    window.remember(f"replay:{samples}", win, tmp_path / "cache")
    proc = run("eval", "--model", f"replay:{samples}", "--benchmarks", "livecodebench", "--limit", "2",
               "--data-dir", str(data_dir), "--output", str(tmp_path / "e"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--start-date 2025-02-01 from" in proc.stdout
    record = json.loads((tmp_path / "e" / "livecodebench" / "run.json").read_text())
    assert record["benchmark_options"]["start_date"] == "2025-02-01"
    assert all(t in expected for t in record["tasks"])
    bad = run("decontam", "--model", "m", "--output", str(tmp_path / "w"))
    assert bad.returncode == 2 and "--model needs --cutoff-date" in bad.stderr


def _span_by_characters(text: str, b_start: int, b_end: int, normal: str) -> tuple[int, int]:
    """The specification: walk ``text`` a character at a time, counting the bytes each keeps in the normal form."""
    from harness.decontamination.index import alnum_bytes, squash_bytes

    norm = squash_bytes if normal == "squash" else alnum_bytes
    k, start = 0, None
    for i, ch in enumerate(text):
        kept = len(norm(ch))
        if not kept:
            continue
        if start is None and k + kept > b_start:
            start = i
        k += kept
        if k >= b_end:
            return start if start is not None else i, i + 1
    return start or 0, len(text)


def test_byte_spans_map_back_to_the_characters_that_hold_them() -> None:
    import random

    from harness.decontamination.index import alnum_bytes, byte_span_to_chars, squash_bytes

    rng = random.Random(7)
    alphabet = "ab Z9_\t\n\r\x0b\x0c.-é€𝔘\ud800ßİ"  # ASCII, spaces, symbols, 2-4 byte UTF-8, a lone surrogate
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        for normal, norm in (("squash", squash_bytes), ("alnum", alnum_bytes)):
            size = len(norm(text))
            b_start = rng.randrange(0, size + 2)
            b_end = b_start + rng.randrange(1, 6)
            got = byte_span_to_chars(text, b_start, b_end, normal)
            assert got == _span_by_characters(text, b_start, b_end, normal), (text, normal, b_start, b_end)
            if b_end <= size:  # a span inside the normal form: the characters found hold its bytes
                a, b = got
                assert norm(text)[b_start:b_end] in norm(text[a:b])
