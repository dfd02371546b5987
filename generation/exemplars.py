"""The project's own few-shot exemplars for Self-OSS-Instruct, and the prompt sections they are written in.

The exemplars live in ``generation/exemplars/fewshot.txt`` (plain text is
easier to write and review than strings in code).  The file holds one
``### System: S->C`` / ``C->I`` / ``I->R`` paragraph per stage (and ``S->I`` for the direct seed ->
instruction ablation, optional in other files) and numbered
``### Example N`` blocks, each with the five sections of the SelfCodeAlign
layout: ``[Code]`` (a seed snippet), ``[Property]`` (category, language,
difficulty, concepts), ``[Instruction]``, ``[Response]`` (explanation and a
```python block) and ``[Tests]`` (a ```python block of asserts).  A stage's
prompt shows each exemplar's input and output sections only (see
:mod:`generation.instruct`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

FEWSHOT_FILE = Path(__file__).with_name("exemplars") / "fewshot.txt"
SECTIONS = ("Code", "Property", "Instruction", "Response", "Tests")
MODES = ("S->C", "C->I", "I->R", "S->I")
#: The modes every few-shot file must have (S->I is needed only by ``instruct.mode = "S->I"``).
REQUIRED_MODES = ("S->C", "C->I", "I->R")
EXAMPLE_MARK = "### Example"

_HEADER = re.compile(r"^### (System: (?P<mode>\S+)|Example (?P<num>\d+))\s*$", re.MULTILINE)
_SECTION = re.compile(r"^\[(?P<name>[A-Za-z]+)\]\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Exemplar:
    """One worked example: a seed snippet and everything the pipeline derives from it."""

    number: int
    code: str
    property: str
    instruction: str
    response: str
    tests: str

    def section(self, name: str) -> str:
        """The text of section ``name`` (``Code``, ``Property``, ...)."""
        return getattr(self, name.lower())

    def program(self) -> str:
        """The response's code followed by the tests' code: what self-validation runs for this exemplar."""
        from generation.validate import fenced_code

        return fenced_code(self.response) + "\n\n" + fenced_code(self.tests)


@dataclass(frozen=True)
class Fewshot:
    """The system paragraph of each stage and the exemplars."""

    systems: dict[str, str]
    exemplars: tuple[Exemplar, ...]


def parse_fewshot(text: str, where: str = "few-shot text") -> Fewshot:
    """Parse the exemplar file's layout; any missing or unknown section is an error naming the example."""
    systems: dict[str, str] = {}
    exemplars: list[Exemplar] = []
    heads = list(_HEADER.finditer(text))
    if not heads:
        raise HarnessError(f"{where} has no '### System:' or '### Example' headers")
    for k, head in enumerate(heads):
        body = text[head.end() : heads[k + 1].start() if k + 1 < len(heads) else len(text)].strip("\n")
        if head.group("mode"):
            mode = head.group("mode")
            if mode not in MODES:
                raise HarnessError(f"{where}: unknown system prompt {mode!r} (known: {', '.join(MODES)})")
            systems[mode] = body.strip()
            continue
        number = int(head.group("num"))
        marks = list(_SECTION.finditer(body))
        names = [m.group("name") for m in marks]
        if names != list(SECTIONS):
            raise HarnessError(f"{where}: example {number} has sections {names}, expected {list(SECTIONS)} in order")
        parts = {
            name: body[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(body)].strip("\n").rstrip()
            for i, (name, m) in enumerate(zip(names, marks))
        }
        exemplars.append(Exemplar(number, **{name.lower(): value for name, value in parts.items()}))
    missing = [m for m in REQUIRED_MODES if m not in systems]
    if missing:
        raise HarnessError(f"{where}: no system prompt for {', '.join(missing)}")
    return Fewshot(systems, tuple(exemplars))


@functools.lru_cache(maxsize=4)
def load_fewshot(path: str | None = None) -> Fewshot:
    """The project's exemplars (or those of another file in the same layout)."""
    p = Path(path) if path else FEWSHOT_FILE
    if not p.is_file():
        raise HarnessError(f"few-shot exemplar file {p} is missing (it ships with the generation package)")
    return parse_fewshot(p.read_text(encoding="utf-8"), str(p))


def render(sections: dict[str, str], number: int, open_section: str | None = None) -> str:
    """One ``### Example`` block: the given sections in order, ending with an empty ``open_section`` header.

    The open header is where a model continues writing (a query); a
    complete exemplar has none.
    """
    lines = [f"{EXAMPLE_MARK} {number}"]
    for name, value in sections.items():
        lines += [f"[{name}]", value.strip("\n"), ""]
    if open_section is not None:
        lines.append(f"[{open_section}]")
        return "\n".join(lines) + "\n"
    return "\n".join(lines).rstrip("\n") + "\n"
