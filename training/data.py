"""Training data: read instruction-response pairs, hash them, format them with a chat template, tokenize.

Input: the data pipeline's dataset (``generation/select.py``) as JSONL, a JSON
list, Parquet, or a ``datasets`` folder saved with ``save_to_disk``.  Each row
needs a non-empty ``instruction`` and ``response`` (other names through the
config); provenance columns are not trained on, but the pipeline's
``manifest_digest`` is recorded and the manifest beside the dataset linked
(the lineage then names the model that generated the data).

Each pair becomes one user message (after an optional system message) and one
assistant message, rendered with the base model's chat template, or with
:data:`DEFAULT_CHAT_TEMPLATE` for base models without one.  The loss covers the
response only: a row's ``completion_mask`` marks the tokens after the rendered
prompt (the chat template with its generation prompt), which TRL turns into
labels of -100 on the prompt.  Rows longer than ``max_length`` are cut, left
out, or refused (``overlong``), and always counted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from harness.errors import HarnessError

#: The template for base models without one (and ``template = "default"``): Alpaca-style headers, close to
#: StarCoder2-15B-Instruct's own.  The reply ends with the tokenizer's EOS token, so the model learns to stop;
#: BOS is written when the tokenizer has one.  Saved with the checkpoint, so ``hf:CHECKPOINT`` prompts with it.
DEFAULT_CHAT_TEMPLATE = (
    "{%- if bos_token %}{{ bos_token }}{% endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{%- elif message['role'] == 'user' %}### Instruction\n{{ message['content'] }}\n\n"
    "{%- elif message['role'] == 'assistant' %}### Response\n{{ message['content'] }}{{ eos_token }}\n\n"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}### Response\n{% endif %}"
)

#: Files of a ``datasets`` folder left out of its hash: ``state.json`` holds a fingerprint that can differ
#: between two saves of the same rows.
_UNHASHED = ("state.json",)
_EXAMPLES = 5


class ManifestLink(BaseModel):
    """The data pipeline's manifest the dataset was made with, as found beside it at training time."""

    path: str
    digest: str | None = Field(default=None, description="the manifest's own digest (over its settings)")
    intact: bool = Field(default=False, description="its digest is the digest of its settings (not edited)")
    matches: bool = Field(default=False, description="its digest is the one the dataset's rows carry")
    model: str | None = Field(default=None, description="the engine spec that generated the data")
    identity: dict[str, Any] | None = Field(default=None, description="that model's identity (weights, revision)")
    seed: Any = None
    harness_version: str | None = None
    created: str | None = None
    problem: str | None = Field(default=None, description="why the link does not hold, when it does not")


class DatasetLineage(BaseModel):
    """Which data a model was trained on: the files and their SHA-256, and the pipeline run that made them."""

    path: str
    format: str = Field(description="jsonl, json, parquet or datasets (a save_to_disk folder)")
    sha256: str = Field(description="a file's SHA-256; for a folder, over its files' names and SHA-256s")
    files: list[str] = Field(default_factory=list, description="the hashed files, relative to path for a folder")
    rows: int
    instruction_field: str
    response_field: str
    manifest_digest: str | None = Field(
        default=None, description="the pipeline manifest digest every row carries (None: none, or several)"
    )
    manifest_digests: list[str] = Field(
        default_factory=list, description="every distinct digest, when the rows come from several pipeline runs"
    )
    manifest: ManifestLink | None = Field(default=None, description="the manifest found beside the dataset")


class DataStats(BaseModel):
    """What tokenization did to the rows (reported, never silent)."""

    rows: int
    used_rows: int
    template: str = Field(description="model: the base model's chat template; default: the harness's")
    max_length: int
    truncated_rows: int = 0
    truncated_examples: list[str] = Field(default_factory=list, description="the first truncated rows")
    dropped_rows: int = 0
    dropped_examples: list[str] = Field(default_factory=list, description="the first rows left out, with why")
    tokens: int = Field(0, description="tokens of the used rows, after truncation")
    response_tokens: int = Field(0, description="of which carry loss")
    longest_row_tokens: int = Field(0, description="before truncation")


@dataclass
class Pairs:
    """Loaded rows: the two text fields, and where each row sits in the file (for error messages)."""

    instructions: list[str]
    responses: list[str]
    where: list[str]
    lineage: DatasetLineage


@dataclass
class Tokenized:
    """Token ids and completion masks, ready for ``SFTTrainer`` (one entry per used row)."""

    input_ids: list[list[int]] = field(default_factory=list)
    completion_mask: list[list[int]] = field(default_factory=list)


# ------------------------------------------------------------------ hashing
def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def dataset_hash(path: str | Path) -> tuple[str, list[str]]:
    """SHA-256 of a data file (as ``sha256sum`` prints it), or of a folder's files; and the files hashed."""
    p = Path(path)
    if p.is_file():
        return _file_sha256(p), [p.name]
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.name not in _UNHASHED and not f.name.startswith("."))
    h = hashlib.sha256()
    names = []
    for f in files:
        rel = f.relative_to(p).as_posix()
        names.append(rel)
        # Name and content both count: renaming or swapping two shards changes the hash.
        h.update(f"{rel}\0{_file_sha256(f)}\n".encode())
    return h.hexdigest(), names


# ------------------------------------------------------------------ loading
def _read_json_lines(path: Path) -> tuple[list[Any], list[str]]:
    rows: list[Any] = []
    where: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise HarnessError(f"dataset {path}: line {number} is not JSON ({exc.msg})") from None
            where.append(f"line {number}")
    return rows, where


def _read_rows(path: Path) -> tuple[list[Any], list[str], str]:
    if path.is_dir():
        if not any((path / n).exists() for n in ("dataset_info.json", "state.json", "dataset_dict.json")):
            raise HarnessError(f"dataset folder {path} is not a `datasets` save_to_disk folder "
                               "(no dataset_info.json); pass the JSONL file or the saved folder")  # fmt: skip
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if "train" not in loaded:
                raise HarnessError(f"dataset folder {path} holds splits {', '.join(loaded)} but no 'train' split")
            loaded = loaded["train"]
        rows = loaded.to_list()
        return rows, [f"row {i}" for i in range(1, len(rows) + 1)], "datasets"
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows, where = _read_json_lines(path)
        return rows, where, "jsonl"
    if suffix == ".json":
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"dataset {path} is not valid JSON: {exc}") from None
            return rows, [f"row {i}" for i in range(1, len(rows) + 1)], "json"
        rows, where = _read_json_lines(path)
        return rows, where, "jsonl"
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        return rows, [f"row {i}" for i in range(1, len(rows) + 1)], "parquet"
    raise HarnessError(f"dataset {path}: unknown format {suffix or '(no suffix)'}; "
                       "pass .jsonl, .json, .parquet or a `datasets` save_to_disk folder")  # fmt: skip


def load_pairs(path: str | Path, instruction_field: str = "instruction", response_field: str = "response") -> Pairs:
    """Read and check a dataset; every row needs non-empty text in both fields (errors name fields and rows)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise HarnessError(f"dataset {p} does not exist")
    rows, where, fmt = _read_rows(p)
    if not rows:
        raise HarnessError(f"dataset {p} is empty")
    fields = (instruction_field, response_field)
    problems: list[str] = []
    bad = 0
    present: set[str] = set()
    for row, at in zip(rows, where):
        if not isinstance(row, dict):
            bad += 1
            if len(problems) < _EXAMPLES:
                problems.append(f"{at} is not an object")
            continue
        present.update(row)
        issues = []
        for f in fields:
            value = row.get(f)
            if f not in row or value is None:
                issues.append(f"lacks {f!r}")
            elif not isinstance(value, str):
                issues.append(f"has a non-text {f!r} ({type(value).__name__})")
            elif not value.strip():
                issues.append(f"has an empty {f!r}")
        if issues:
            bad += 1
            if len(problems) < _EXAMPLES:
                problems.append(f"{at} {' and '.join(issues)}")
    if bad:
        absent = [f for f in fields if f not in present]
        hint = (f"; no row has {', '.join(repr(f) for f in absent)} (fields found: {', '.join(sorted(present)) or 'none'}"
                "; set instruction_field / response_field for other names)") if absent else ""  # fmt: skip
        more = f"; {bad - len(problems)} more" if bad > len(problems) else ""
        raise HarnessError(f"dataset {p}: {bad} of {len(rows)} rows lack required fields "
                           f"{instruction_field!r} and {response_field!r}: {'; '.join(problems)}{more}{hint}")  # fmt: skip
    digest, files = dataset_hash(p)
    lineage = DatasetLineage(path=str(p.resolve()), format=fmt, sha256=digest, files=files, rows=len(rows),
                             instruction_field=instruction_field, response_field=response_field)  # fmt: skip
    _link_manifest(lineage, p, rows)
    return Pairs([r[instruction_field] for r in rows], [r[response_field] for r in rows], where, lineage)


def _link_manifest(lineage: DatasetLineage, path: Path, rows: list[dict[str, Any]]) -> None:
    """Record the pipeline manifest digest the rows carry and the manifest beside the dataset that has it.

    The pipeline (``harness generate``) writes ``manifest_digest`` into every ``dataset.jsonl`` row and its
    dataset card, and ``<work>/manifest.json`` beside the file; the link is checked here (the manifest intact,
    its digest the rows'), so the lineage names the generating model only when the manifest is really the one.
    """
    from harness.registry import find_manifest, manifest_link

    digests = list(dict.fromkeys(r["manifest_digest"] for r in rows if isinstance(r.get("manifest_digest"), str)))
    if not digests:
        return
    if len(digests) == 1:
        lineage.manifest_digest = digests[0]
    else:
        lineage.manifest_digests = digests
    found = find_manifest(path)
    if found is not None:
        lineage.manifest = ManifestLink(**manifest_link(found, lineage.manifest_digest))
        if lineage.manifest_digests and lineage.manifest.problem is None:
            lineage.manifest.problem = (f"the rows carry {len(digests)} manifest digests (several pipeline runs "
                                        f"concatenated): {found} describes at most one of them")  # fmt: skip


# ------------------------------------------------------------------ formatting and tokenizing
def choose_template(tokenizer: Any, mode: str) -> str:
    """Set the chat template the run formats with; returns ``model`` or ``default`` (which one is used)."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if mode == "model" and not has:
        raise HarnessError("the base model's tokenizer has no chat template (template = 'model'); use "
                           "template = 'auto' or 'default' for the harness's default template")  # fmt: skip
    if mode == "default" or not has:
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        return "default"
    return "model"


def messages(instruction: str, system: str | None = None) -> list[dict[str, str]]:
    """The prompt messages of one pair."""
    out = [{"role": "system", "content": system}] if system else []
    out.append({"role": "user", "content": instruction})
    return out


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tokenize_pairs(pairs: Pairs, tokenizer: Any, max_length: int, system: str | None = None,
                   overlong: str = "truncate", template: str = "model") -> tuple[Tokenized, DataStats]:  # fmt: skip
    """Render each pair with the tokenizer's chat template, tokenize, mask the prompt, apply the length limit.

    The completion starts where the tokenized prompt (with the generation prompt) and the tokenized whole
    conversation diverge: templates that render the prompt differently alone still mask exactly the shared part.
    """
    prompts, fulls = [], []
    for instruction, response in zip(pairs.instructions, pairs.responses):
        msgs = messages(instruction, system)
        prompts.append(tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
        fulls.append(tokenizer.apply_chat_template([*msgs, {"role": "assistant", "content": response}], tokenize=False))
    # The template already wrote any special tokens it wants; the tokenizer must add none (as at inference).
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(fulls, add_special_tokens=False)["input_ids"]
    out = Tokenized()
    stats = DataStats(rows=len(fulls), used_rows=0, template=template, max_length=max_length)
    overlong_rows: list[str] = []
    for p_ids, ids, at in zip(prompt_ids, full_ids, pairs.where):
        start = _common_prefix(p_ids, ids)
        stats.longest_row_tokens = max(stats.longest_row_tokens, len(ids))
        if start >= len(ids):
            stats.dropped_rows += 1
            if len(stats.dropped_examples) < 20:
                stats.dropped_examples.append(f"{at}: the response adds no tokens")
            continue
        if len(ids) > max_length:
            overlong_rows.append(f"{at} ({len(ids)} tokens)")
            if overlong == "drop" or start >= max_length:
                stats.dropped_rows += 1
                if len(stats.dropped_examples) < 20:
                    why = "longer than max_length" if overlong == "drop" else "the prompt alone fills max_length"
                    stats.dropped_examples.append(f"{at}: {why} ({len(ids)} tokens, prompt {start})")
                continue
            stats.truncated_rows += 1
            if len(stats.truncated_examples) < 20:
                stats.truncated_examples.append(f"{at} ({len(ids)} tokens)")
            ids = ids[:max_length]
        mask = [0] * start + [1] * (len(ids) - start)
        out.input_ids.append(list(ids))
        out.completion_mask.append(mask)
        stats.tokens += len(ids)
        stats.response_tokens += len(ids) - start
    if overlong == "error" and overlong_rows:
        more = f", and {len(overlong_rows) - _EXAMPLES} more" if len(overlong_rows) > _EXAMPLES else ""
        raise HarnessError(f"{len(overlong_rows)} rows are longer than max_length={max_length} tokens: "
                           f"{', '.join(overlong_rows[:_EXAMPLES])}{more} (overlong = 'truncate' or 'drop' "
                           "to train anyway, or raise max_length)")  # fmt: skip
    stats.used_rows = len(out.input_ids)
    if not out.input_ids:
        raise HarnessError(f"no row is left to train on: {stats.dropped_rows} of {stats.rows} rows were left out "
                           f"({'; '.join(stats.dropped_examples[:3])})")  # fmt: skip
    return out, stats
