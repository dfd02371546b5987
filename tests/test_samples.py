"""Samples files: strict reading, clear errors, code extraction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.samples import Sample, extract_code, load_samples, program_for


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "samples.jsonl"
    path.write_text(text)
    return path


def test_reads_solution_and_completion(tmp_path: Path) -> None:
    path = write(tmp_path, '{"task_id": "A/1", "solution": "x"}\n\n{"task_id": "A/2", "completion": "y"}\n')
    rows, bad = load_samples(path)
    assert [(r.task_id, r.solution, r.completion, r.line) for r in rows] == [
        ("A/1", "x", None, 1),
        ("A/2", None, "y", 3),
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"task_id": "A/1", "solution": "x"\n', "not valid JSON"),
        ('{"solution": "x"}\n', "missing task_id"),
        ('{"task_id": "A/1"}\n', "neither 'solution' nor 'completion'"),
        ('{"task_id": "A/1", "solution": ["a", "b"]}\n', "must be a string"),
        ("[1, 2]\n", "not a JSON object"),
    ],
)
def test_malformed_lines_are_named_with_their_line(tmp_path: Path, text: str, reason: str) -> None:
    path = write(tmp_path, '{"task_id": "A/0", "solution": "ok"}\n' + text)
    with pytest.raises(HarnessError, match=f"line 2: .*{re.escape(reason)}"):
        load_samples(path)
    rows, bad = load_samples(path, skip_bad=True)
    assert len(rows) == 1 and bad[0].line == 2 and reason in bad[0].reason


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="contains no samples"):
        load_samples(write(tmp_path, "\n\n"))
    with pytest.raises(HarnessError, match="does not exist"):
        load_samples(tmp_path / "nope.jsonl")


def test_fenced_code_is_extracted_only_when_needed() -> None:
    reply = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    assert extract_code(reply, "add").strip() == "def add(a, b):\n    return a + b"
    sample = Sample(1, "T/1", reply, None)
    assert program_for(sample, "", "add").strip().startswith("def add")
    # A program that parses keeps its fences (inside a string literal here).
    literal = 'def f():\n    return "```python\\nx\\n```"\n'
    assert program_for(Sample(1, "T/1", literal, None), "", "f") == literal


def test_completion_with_fences_replaces_or_extends_the_prompt() -> None:
    prompt = 'def add(a, b):\n    """Add."""\n'
    full = Sample(1, "T/1", None, "```python\ndef add(a, b):\n    return a + b\n```")
    assert program_for(full, prompt, "add").startswith("def add(a, b):\n    return")
    body = Sample(1, "T/1", None, "```\n    return a + b\n```")
    assert program_for(body, prompt, "add") == prompt + "    return a + b\n"
