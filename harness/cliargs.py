"""Argument types and config-file reading shared by every command (harness, generate, train, reports)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def key_value(text: str) -> tuple[str, object]:
    """argparse type: ``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, booleans, lists), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed: object = json.loads(value)
    except json.JSONDecodeError:
        parsed = value  # a bare string
    return key.strip(), parsed


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML or JSON config file as a dict, or a one-line error."""
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".json":
            doc = json.loads(text)
        else:
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            doc = tomllib.loads(text)
    except ValueError as exc:
        raise HarnessError(f"config file {p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}") from None
    if not isinstance(doc, dict):
        raise HarnessError(f"config file {p} must hold a table (JSON object) of settings")
    return doc
