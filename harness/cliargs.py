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
    if p.is_dir():
        raise HarnessError(f"config file {p} is a folder; pass a .toml or .json file")
    if not p.is_file():
        raise HarnessError(f"config file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HarnessError(f"config file {p} is not UTF-8 text (byte {exc.start}); pass a .toml or .json file"
                           ) from None  # fmt: skip
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


# ------------------------------------------------------- benchmark options as flags
def _flag_kind(annotation: Any) -> tuple[str, Any]:
    """How a pydantic field becomes an argparse flag: ``("bool"|"choice"|"value", type_or_choices)``."""
    import typing

    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Literal:
        return "choice", [str(a) for a in typing.get_args(annotation)]
    if args and origin is not None and origin not in (list, dict, tuple, set):  # Optional[X] / X | None
        return _flag_kind(args[0]) if len(args) == 1 else ("value", str)
    if annotation is bool:
        return "bool", None
    if annotation in (int, float, str):
        return "value", annotation
    return "value", _json_or_text


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def add_benchmark_flags(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """One ``--flag`` per field of every benchmark's ``Options`` (a flag several benchmarks share is added once).

    Flags default to "not given" (None), so only what the user set reaches a
    benchmark; booleans become ``--flag`` / ``--no-flag``.
    """
    from harness import benchmark as registry

    seen: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    for name in names:
        for field, info in registry.benchmark_class(name).Options.model_fields.items():
            seen.setdefault(field, []).append(name)
            fields.setdefault(field, info)
    if not fields:
        return
    group = parser.add_argument_group("benchmark options (each benchmark's Options; see docs/adding-a-benchmark.md)")
    for field, info in fields.items():
        flag = "--" + field.replace("_", "-")
        owners = ", ".join(seen[field])
        help_text = f"{owners}: {info.description or field}"
        if info.default is not None and not callable(info.default):
            help_text += f" (default: {info.default})"
        kind, extra = _flag_kind(info.annotation)
        metavar = (info.json_schema_extra or {}).get("metavar") if isinstance(info.json_schema_extra, dict) else None
        dest = f"bench_opt__{field}"
        if kind == "bool":
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif kind == "choice":
            group.add_argument(flag, dest=dest, choices=extra, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=extra, default=None, metavar=metavar, help=help_text)


def benchmark_flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark options the user gave on the command line (field name -> value)."""
    prefix = "bench_opt__"
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None}
