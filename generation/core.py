"""The pipeline's plumbing: configuration, the manifest, resumable stage outputs, funnels, the shared context.

Every stage reads the previous stage's JSONL output from the work folder and
appends its own, row by row (flushed per batch), together with a
``<stage>.removed.jsonl`` of what it dropped and why.  Each row carries the
``key`` of the item it came from, so a rerun skips every key already
written or removed: an interrupted run loses at most the batch in flight.
Each stage's funnel (in, out, removed by reason, seconds, tokens) goes to
``funnel.json``.

``manifest.json`` records what the outputs were made with: the model spec
(and its identity once the engine ran), engine options, every config value,
the harness version and commit, and per stage the settings that change its
outputs with a digest chained to the stage before.  A rerun whose settings
differ for a stage that already has outputs is refused, naming each changed
key, before any work (:func:`check_manifest`); ``--rerun-from STAGE`` moves
that stage's outputs and every later stage's aside (``superseded/``) and
redoes them.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.cliargs import read_config_file
from harness.errors import HarnessError

STAGES = ("seeds", "filter", "dedup", "concepts", "instructions", "responses", "validate", "select")
#: What each stage's funnel counts (its ``input`` and ``output``); file counts are notes.
UNITS = {"seeds": "functions", "filter": "seeds", "dedup": "seeds", "concepts": "seeds",
         "instructions": "instructions", "responses": "instructions", "validate": "instructions",
         "select": "instructions"}  # fmt: skip
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedsConfig(_Section):
    """Stage 1: where seeds come from."""

    #: "stdlib" (the running Python's standard library), a folder of .py files, a .jsonl/.parquet file with a
    #: ``content`` column, or "hf:DATASET[:SPLIT]" streamed from the Hugging Face hub.
    source: str = "stdlib"
    content_field: str = "content"
    include_methods: bool = False  # SelfCodeAlign takes top-level functions only
    max_files: int | None = Field(default=None, ge=1)
    max_seeds: int | None = Field(default=None, ge=1)
    #: How max_files / max_seeds choose: "random" (a seeded sample of the whole corpus) or "first" (path order).
    sample: Literal["random", "first"] = "random"
    sample_seed: int | None = None  # None: the pipeline's seed
    licence: str | None = None  # recorded as provenance when the source does not say


#: SelfCodeAlign's banned imports (seed_gathering/filter_dataset.py) and ours: modules whose functions act on
#: the machine, the network or other processes, which the sandbox's tests cannot exercise.
DEFAULT_BANNED_IMPORTS = [
    "argparse", "os", "subprocess", "sys", "setuptools", "distutils", "matplotlib", "seaborn",
    "shutil", "socket", "threading", "multiprocessing", "asyncio", "requests", "urllib", "http", "tkinter",
    "ctypes", "signal", "pickle", "sqlite3", "logging",
]  # fmt: skip


class FilterConfig(_Section):
    """Stage 2: which filters run, and their settings."""

    #: Ablation switch: false passes every parsed seed through unfiltered (SelfCodeAlign's "unfiltered seeds").
    enabled: bool = True
    max_lines: int = 150
    require_arguments: bool = True
    banned_imports: list[str] = Field(default_factory=lambda: list(DEFAULT_BANNED_IMPORTS))
    banned_markers: list[str] = Field(default_factory=lambda: ["TODO", "FIXME", "XXX", "HACK", "BUG",
                                                               "NotImplementedError"])  # fmt: skip
    typecheck: bool = True
    checker: str = "basedpyright"  # or "pyright"
    #: "module": the seed's module-level names (functions, classes, constants it uses) are declared for the
    #: checker; "seed": the seed and its imports alone.  Both counts are reported either way.
    typecheck_scope: Literal["module", "seed"] = "module"
    typecheck_batch: int = Field(default=250, ge=1)
    typecheck_timeout: float = Field(default=120.0, gt=0)
    decontaminate: bool = True
    benchmarks: list[str] | Literal["all"] = Field(
        default="all", description="benchmarks to decontaminate against; all: every installed reference benchmark "
        "whose data is here (the registry decides)")
    judge: bool = True
    judge_max_tokens: int = Field(default=5, ge=1)
    judge_fewshot: int = Field(default=7, ge=0)


class DedupConfig(_Section):
    """Stage 3: near-deduplication of seeds."""

    threshold: float = 0.5
    num_perm: int = 128
    shingle: int = 5


class InstructConfig(_Section):
    """Stages 4-6: Self-OSS-Instruct sampling."""

    #: Ablation switch: "S->C->I" (concepts, then an instruction from them) or "S->I" (instruction from the seed).
    mode: Literal["S->C->I", "S->I"] = "S->C->I"
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    concepts_max_tokens: int = Field(default=1536, ge=1)
    instruction_max_tokens: int = Field(default=1536, ge=1)
    response_max_tokens: int = Field(default=1536, ge=1)
    responses_per_instruction: int = Field(default=10, ge=1)
    fewshot: int = Field(default=8, ge=0)  # exemplars per S->C, C->I and S->I prompt, drawn from the project's own
    fewshot_responses: int = Field(default=1, ge=0)  # exemplars per I->R prompt
    batch: int = Field(default=256, ge=1)  # at most this many requests per engine call (outputs saved per call)
    #: ... and at most this many tokens per engine call: prompt tokens plus n x max new tokens per request.
    batch_tokens: int = Field(default=262144, ge=1)
    #: The model's context length when the engine cannot tell (OpenAI-compatible servers); None: ask the engine.
    context_length: int | None = Field(default=None, ge=1)


class ValidateConfig(_Section):
    """Stage 7: running each response's code with its tests in the sandbox."""

    timeout: float = 10.0
    memory_mb: int = 4096
    parallel: int | None = None
    #: Ablation switch: "filter" keeps instructions with a passing response; "off" runs nothing and keeps one
    #: well-formed response per instruction; "keep_failed" also keeps, after the passing ones, instructions
    #: whose responses all failed (SelfCodeAlign's include_left_failed).
    execution: Literal["filter", "off", "keep_failed"] = "filter"


class SelectConfig(_Section):
    """Stage 8: final decontamination, deduplication and the dataset."""

    decontaminate: bool = True
    benchmarks: list[str] | Literal["all"] = Field(
        default="all", description="benchmarks to decontaminate against; all: every installed reference benchmark "
        "whose data is here (the registry decides)")
    dedup_threshold: float = 0.7
    dedup_num_perm: int = Field(default=250, ge=1)
    #: Near-deduplication passes, in order, each over one field (SelfCodeAlign: instruction, response, code).
    dedup_fields: list[Literal["instruction", "response", "code"]] = Field(
        default_factory=lambda: ["instruction", "response", "code"])
    max_instruction_words: int | None = Field(default=200, ge=1)
    #: Ablation switch: "one" passing response per instruction (chosen at random) or "all" of them as rows.
    responses: Literal["one", "all"] = "one"
    output: str = "dataset"  # folder name under the work folder: <output>.jsonl and <output>/ (datasets)


class PipelineConfig(_Section):
    """The whole pipeline (``harness generate run --config FILE``)."""

    model: str = Field(description="engine spec for every model call, e.g. hf:PATH or vllm:bigcode/starcoder2-15b")
    workdir: str = "runs/selfcodealign"
    engine_options: dict[str, Any] = Field(default_factory=dict)
    seed: int = 3407
    data_dir: str | None = None
    cache: bool = True
    seeds: SeedsConfig = Field(default_factory=SeedsConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    instruct: InstructConfig = Field(default_factory=InstructConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    select: SelectConfig = Field(default_factory=SelectConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


SECTIONS = ("seeds", "filter", "dedup", "instruct", "validate", "select")


def config_keys() -> list[str]:
    """Every dotted config key (``seed``, ``instruct.temperature``, ...)."""
    keys = [f.alias or name for name, f in PipelineConfig.model_fields.items() if (f.alias or name) not in SECTIONS]
    for name, f in PipelineConfig.model_fields.items():
        section = f.alias or name
        if section in SECTIONS:
            keys += [f"{section}.{k}" for k in f.annotation.model_fields]  # type: ignore[union-attr]
    return keys


def suggest_key(dotted: str) -> str | None:
    """The config key a mistyped or misplaced ``dotted`` most likely meant, or None."""
    keys = config_keys()
    leaf = dotted.rsplit(".", 1)[-1]
    same_leaf = [k for k in keys if k.rsplit(".", 1)[-1] == leaf and k != dotted]
    if "." not in dotted and same_leaf:
        return same_leaf[0]  # a section's key written at the top level
    close = difflib.get_close_matches(dotted, keys, n=1, cutoff=0.75)
    if close:
        return close[0]
    if same_leaf:
        return same_leaf[0]
    by_leaf = {k.rsplit(".", 1)[-1]: k for k in keys}
    near = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.75)
    return by_leaf[near[0]] if near else None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a TOML or JSON config, apply ``section.key=value`` overrides, validate (unknown keys refused)."""
    doc: dict[str, Any] = {}
    if path is not None:
        doc = read_config_file(path)
    for dotted, value in (overrides or {}).items():
        target = doc
        *parents, last = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise HarnessError(f"--set {dotted}: {part} is not a section")
        target[last] = value
    try:
        return PipelineConfig.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e["loc"])
            if e["type"] == "extra_forbidden":
                near = suggest_key(loc)
                msg = "unknown key" + (f" (did you mean {near}?)" if near else "; the keys are listed in "
                                       "generation/README.md")  # fmt: skip
            else:
                msg = e["msg"]
            problems.append(f"{loc}: {msg}")
        where = f"config {path}" if path else "configuration"
        raise HarnessError(f"{where} is invalid: {'; '.join(problems)}") from None


# ------------------------------------------------------------------ the manifest
#: Keys that never change what a stage writes (where things go, how work is batched or cached).
OPERATIONAL = frozenset({"workdir", "data_dir", "cache", "instruct.batch", "instruct.batch_tokens",
                         "instruct.context_length", "validate.parallel", "filter.typecheck_batch",
                         "filter.typecheck_timeout", "select.output"})  # fmt: skip
_GENERATION = ("model", "engine_options", "seed")


def flat_config(config: PipelineConfig) -> dict[str, Any]:
    """Every config value under its dotted key (JSON types)."""
    doc = config.model_dump(mode="json", by_alias=True)
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in SECTIONS:
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def stage_settings(config: PipelineConfig, stage: str) -> dict[str, Any]:
    """The config values that change ``stage``'s outputs (its own section's and the model's where it asks it)."""
    flat = flat_config(config)

    def pick(*names: str) -> dict[str, Any]:
        return {k: v for k, v in flat.items() if k not in OPERATIONAL
                and any(k == n or k.startswith(n + ".") for n in names)}  # fmt: skip

    ins = ("instruct.mode", "instruct.temperature", "instruct.top_p")
    if stage == "seeds":
        s = config.seeds
        random_pick = s.sample == "random" and s.sample_seed is None and (s.max_files or s.max_seeds)
        return pick("seeds", *(("seed",) if random_pick else ()))
    if stage == "filter":
        return pick("filter", *(_GENERATION if config.filter.enabled and config.filter.judge else ()))
    if stage == "dedup":
        return pick("dedup")
    if stage == "concepts":
        return pick(*_GENERATION, *ins, "instruct.concepts_max_tokens", "instruct.fewshot")
    if stage == "instructions":
        return pick(*_GENERATION, *ins, "instruct.instruction_max_tokens", "instruct.fewshot")
    if stage == "responses":
        return pick(*_GENERATION, *ins, "instruct.response_max_tokens", "instruct.responses_per_instruction",
                    "instruct.fewshot_responses")  # fmt: skip
    if stage == "validate":
        return pick("validate", "seed")
    if stage == "select":
        return pick("select")
    raise HarnessError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")


def _canonical(doc: Any) -> bytes:
    # sorted keys, no spaces, ASCII escapes: what readers of manifest.json recompute (harness.registry)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def manifest_settings(config: PipelineConfig) -> dict[str, Any]:
    """Everything that changes the outputs, as nested JSON (the operational keys left out)."""
    doc = config.model_dump(mode="json", by_alias=True)
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in SECTIONS:
            out[key] = {k: v for k, v in value.items() if f"{key}.{k}" not in OPERATIONAL}
        elif key not in OPERATIONAL:
            out[key] = value
    return out


def manifest_digest(settings: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of :func:`manifest_settings`: the ``manifest_digest`` of a dataset."""
    return hashlib.sha256(_canonical(settings)).hexdigest()


def config_digest(config: PipelineConfig) -> str:
    """The manifest digest of ``config``."""
    return manifest_digest(manifest_settings(config))


def stage_digest(stage: str, settings: dict[str, Any], upstream: str | None) -> str:
    """A stage's digest: its settings chained to the digest of the stage before it."""
    return hashlib.sha256(_canonical({"stage": stage, "settings": settings, "upstream": upstream})).hexdigest()[:16]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_manifest(workdir: str | Path) -> dict[str, Any] | None:
    """``<workdir>/manifest.json``, or None when there is none; a damaged one is an error naming the fix."""
    path = Path(workdir) / MANIFEST
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise HarnessError(f"{path} is not readable JSON ({exc}); restore it or start a new --workdir") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("stages", {}), dict):
        raise HarnessError(f"{path} is not a pipeline manifest; restore it or start a new --workdir")
    return doc


def _write_manifest(workdir: Path, doc: dict[str, Any]) -> None:
    from harness.store import write_json_atomic

    doc["updated"] = _now()
    write_json_atomic(workdir / MANIFEST, doc)


def stage_files(workdir: Path, stage: str, config: PipelineConfig | None = None) -> list[Path]:
    """Every file or folder ``stage`` writes in ``workdir`` (whether it exists or not)."""
    paths = [workdir / f"{stage}.jsonl", workdir / f"{stage}.removed.jsonl"]
    if stage == "validate":
        paths.append(workdir / "validate.failed.jsonl")
    if stage == "select":
        output = config.select.output if config is not None else "dataset"
        paths += [workdir / f"{output}.jsonl", workdir / output]
    return paths


def has_outputs(workdir: Path, stage: str) -> bool:
    """Whether ``stage`` wrote anything in ``workdir``."""
    return any(p.exists() for p in stage_files(workdir, stage)[:2])


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def check_manifest(config: PipelineConfig, workdir: Path, last: str, rerun_from: str | None = None) -> list[str]:
    """Refuse (one-line error) when a stage up to ``last`` has outputs made with other settings.

    Stages from ``rerun_from`` on are about to be redone and are not checked.  Returns notes (stages whose
    outputs predate the manifest and are taken as they are).
    """
    manifest = read_manifest(workdir) or {}
    recorded = manifest.get("stages") or {}
    notes: list[str] = []
    changed: dict[str, tuple[Any, Any, list[str]]] = {}
    redone: list[str] = []
    upstream: str | None = None
    stop = STAGES.index(last)
    cut = STAGES.index(rerun_from) if rerun_from else len(STAGES)
    for k, stage in enumerate(STAGES[: stop + 1]):
        current = stage_settings(config, stage)
        rec = recorded.get(stage)
        if not isinstance(rec, dict):
            rec = None  # a damaged entry: the stage's outputs are taken as they are
        reported = bool(changed or redone)  # an upstream change already explains a different upstream digest
        if k >= cut or not has_outputs(workdir, stage):
            upstream = stage_digest(stage, current, upstream)
            continue
        if rec is None:
            notes.append(f"{stage}: outputs without a manifest record (made by an older harness or by hand) are "
                         "taken as they are")  # fmt: skip
            upstream = stage_digest(stage, current, upstream)
            continue
        old = rec.get("settings") or {}
        for key in sorted(set(old) | set(current)):
            if old.get(key, "<unset>") != current.get(key, "<unset>"):
                entry = changed.setdefault(key, (old.get(key, "<unset>"), current.get(key, "<unset>"), []))
                entry[2].append(stage)
        if rec.get("upstream") is not None and upstream is not None and rec.get("upstream") != upstream \
                and not reported:  # fmt: skip
            redone.append(stage)
        upstream = stage_digest(stage, current, upstream)
    if changed or redone:
        first = min([STAGES.index(s) for v in changed.values() for s in v[2]] + [STAGES.index(s) for s in redone])
        parts = [f"{key} {_show(old)} -> {_show(new)} ({', '.join(stages)})" for key, (old, new, stages) in changed.items()]
        parts += [f"{s} was made from an earlier version of {STAGES[STAGES.index(s) - 1]}" for s in redone]
        raise HarnessError(f"the outputs in {workdir} were made with other settings: {'; '.join(parts)}. "
                           f"Rerun with --rerun-from {STAGES[first]} to redo {STAGES[first]} and every later stage "
                           f"(their outputs are moved to {workdir / 'superseded'}), or use a new --workdir")  # fmt: skip
    return notes


def supersede(config: PipelineConfig, workdir: Path, first: str, echo: Callable[[str], None] = print) -> Path | None:
    """Move the outputs of ``first`` and every later stage to ``superseded/<time>/``; their records are dropped.

    The files move first: should that fail, the records still say what the outputs were made with.
    """
    later = STAGES[STAGES.index(first) :]
    moving = [(s, p) for s in later for p in stage_files(workdir, s, config) if p.exists()]
    dest: Path | None = None
    if moving:
        dest = workdir / "superseded" / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            dest.mkdir(parents=True)
            for _, path in moving:
                shutil.move(str(path), str(dest / path.name))
        except OSError as exc:
            raise HarnessError(f"--rerun-from {first}: cannot move the earlier outputs to {dest} "
                               f"({exc.strerror or exc}); free some space or fix the folder's permissions") from None  # fmt: skip
    manifest = read_manifest(workdir)
    if manifest is not None:
        for s in later:
            manifest.get("stages", {}).pop(s, None)
        _write_manifest(workdir, manifest)
    funnel = workdir / "funnel.json"
    if funnel.exists():
        from harness.store import write_json_atomic

        try:
            doc = json.loads(funnel.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            doc = None  # a damaged funnel is rewritten by the stages as they run
        if isinstance(doc, dict):
            write_json_atomic(funnel, {k: v for k, v in doc.items() if k not in later})
    if dest is not None:
        stages = ", ".join(dict.fromkeys(s for s, _ in moving))
        echo(f"[{first}] --rerun-from {first}: {len(moving)} earlier output(s) of {stages} moved to {dest}")
    return dest


def _overlay(settings: dict[str, Any], dotted: dict[str, Any]) -> None:
    for key, value in dotted.items():
        section, _, name = key.partition(".")
        if name and isinstance(settings.get(section), dict) and name in settings[section]:
            settings[section][name] = value
        elif not name and key in settings:
            settings[key] = value


def record_stage(ctx: Context, stage: str, finished: bool) -> str:
    """Write the manifest with the current settings and ``stage``'s record (started, or finished); its digest."""
    from harness import __version__
    from harness.store import git_commit

    manifest = read_manifest(ctx.workdir) or {"format": MANIFEST_FORMAT, "created": _now(), "stages": {}}
    # The manifest describes the outputs on disk: a stage's recorded settings stand for the stage's outputs
    # (a run that stopped before a stage whose settings it changed leaves that stage as it was made).
    settings = manifest_settings(ctx.config)
    for s, rec in (manifest.get("stages") or {}).items():
        if s != stage and s in STAGES and isinstance(rec, dict) and has_outputs(ctx.workdir, s):
            _overlay(settings, rec.get("settings") or {})
    flat = flat_config(ctx.config)
    manifest.update({
        "format": MANIFEST_FORMAT, "digest": manifest_digest(settings), "settings": settings,
        "operational": {k: flat[k] for k in sorted(OPERATIONAL) if k in flat},
        "harness_version": __version__, "git_commit": manifest.get("git_commit") or git_commit(),
    })  # fmt: skip
    model = manifest.get("model") or {}
    if model.get("spec") != ctx.config.model:
        model = {"spec": ctx.config.model, "identity": None}
    if ctx._engine is not None and model.get("identity") is None:
        try:
            described = ctx._engine.describe()
            model = {"spec": ctx.config.model, "identity": described.get("identity"), "backend": described.get("backend"),
                     "options": described.get("options")}  # fmt: skip
        except Exception:  # noqa: BLE001 - a backend that cannot describe itself still generated the data
            pass
    manifest["model"] = model
    stages = manifest.setdefault("stages", {})
    upstream = None
    for s in STAGES[: STAGES.index(stage)]:
        rec = stages.get(s)
        upstream = rec.get("digest") if isinstance(rec, dict) and rec.get("digest") else \
            stage_digest(s, stage_settings(ctx.config, s), upstream)  # fmt: skip
    own = stage_settings(ctx.config, stage)
    digest = stage_digest(stage, own, upstream)
    rec = stages.get(stage) if isinstance(stages.get(stage), dict) else {}
    if not finished or rec.get("digest") != digest:
        rec = {"digest": digest, "settings": own, "upstream": upstream, "started": _now(), "finished": None}
    if finished:
        rec["finished"] = _now()
    rec["manifest_digest"] = manifest["digest"]  # the whole manifest's digest these outputs were made under
    stages[stage] = rec
    manifest["stages"] = {s: stages[s] for s in STAGES if s in stages}
    _write_manifest(ctx.workdir, manifest)
    return digest


# ------------------------------------------------------------------ progress
def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A line per batch with the rate and the time left (for logs), and a bar on a terminal."""

    def __init__(self, echo: Callable[[str], None], stage: str, total: int, unit: str, bar_unit: str | None = None,
                 bar_total: int | None = None) -> None:  # fmt: skip
        self.echo, self.stage, self.total, self.unit = echo, stage, total, unit
        self.done = 0
        self.tokens = 0
        self.t0 = time.perf_counter()
        self.batches = 0
        self._bar: Any = None
        if bar_total:
            from harness.progress import Bar

            self._bar = Bar(bar_total, f"{stage} ({bar_unit or unit})")

    def tick(self, k: int = 1, *_: Any) -> None:
        """Advance the terminal bar (an engine ``progress`` callback)."""
        if self._bar is not None:
            self._bar.update(k)

    def batch(self, items: int, summary: str, tokens: int = 0, of: int | None = None) -> None:
        """Report one finished batch of ``items`` input items."""
        self.batches += 1
        self.done += items
        self.tokens += tokens
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        pct = f" ({self.done / self.total:.0%})" if self.total else ""
        tok = f", {self.tokens / elapsed:,.0f} tokens/s" if self.tokens else ""
        where = f"batch {self.batches}/{of}" if of else f"batch {self.batches}"
        self.echo(f"[{self.stage}] {where}: {summary}; {self.done}/{self.total} {self.unit}{pct}, "
                  f"{rate:.2f} {self.unit}/s{tok}, ETA {_duration(left)}")  # fmt: skip

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Funnel(BaseModel):
    """What one stage did."""

    stage: str
    input: int = 0
    output: int = 0
    removed: dict[str, int] = Field(default_factory=dict)
    skipped_done: int = 0  # inputs a previous run already handled
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    notes: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)
    unit: str = ""  # what input and output count (UNITS); other counts are notes
    digest: str | None = None  # the stage digest in manifest.json its outputs were made with


class StageFiles:
    """Append-only outputs of one stage, and the keys it has handled."""

    def __init__(self, workdir: Path, stage: str) -> None:
        self.workdir = workdir
        self.stage = stage
        self.out = workdir / f"{stage}.jsonl"
        self.removed = workdir / f"{stage}.removed.jsonl"
        workdir.mkdir(parents=True, exist_ok=True)
        # Every stage resumes through this class, so torn lines are cut here once, for all of them.
        for path in (self.out, self.removed):
            repair_torn_tail(path)

    def done_keys(self) -> set[str]:
        """Keys already written or removed by an earlier run (a torn last line is ignored)."""
        return {r["key"] for path in (self.out, self.removed) for r in _read(path, tolerant=True) if "key" in r}

    def removed_counts(self) -> dict[str, int]:
        """Removal reasons over every run so far."""
        counts: dict[str, int] = {}
        for r in _read(self.removed, tolerant=True):
            counts[r.get("reason", "?")] = counts.get(r.get("reason", "?"), 0) + 1
        return counts

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append output rows (each with ``key``); flushed to disk before returning."""
        return append_rows(self.out, rows)

    def remove(self, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> int:
        """Record dropped items: ``(key, reason, detail)``."""
        return append_rows(self.removed, ({"key": k, "reason": why, **detail} for k, why, detail in rows))

    def rows(self) -> list[dict[str, Any]]:
        """Every output row so far."""
        return list(_read(self.out, tolerant=True))


def repair_torn_tail(path: Path) -> bool:
    """Cut a last line left without its newline by an interruption; True if something was cut.

    Appending after a torn line would glue the next row onto it and lose both; the torn item is redone.
    """
    if not path.exists():
        return False
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return False
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        # walk back to the previous newline in blocks
        pos = size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            block = f.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                f.truncate(pos - step + nl + 1)
                return True
            pos -= step
        f.truncate(0)
        return True


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Append JSON rows to ``path``, flushed and synced before returning; how many."""
    n = 0
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return n


def _read(path: Path, tolerant: bool = False) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                if tolerant:
                    continue  # a line torn by an interruption: its item is redone
                raise HarnessError(f"{path} line {lineno} is not valid JSON") from None


def stage_input(workdir: Path, stage: str) -> list[dict[str, Any]]:
    """The output of ``stage`` (the next stage's input), or an error naming the stage to run first."""
    files = StageFiles(workdir, stage)
    if not files.out.exists():
        raise HarnessError(f"{files.out} does not exist: run `harness generate {stage}` (or `run`) first")
    return files.rows()


@dataclass
class Context:
    """What every stage gets: the config, the work folder, and lazily the one engine and sandbox."""

    config: PipelineConfig
    workdir: Path
    echo: Callable[[str], None] = print
    _engine: Any = None
    _sandbox: Any = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def engine(self) -> Any:
        """The process's shared engine (created on first use)."""
        if self._engine is None:
            from harness.engine import shared_engine

            self._engine = shared_engine(self.config.model, self.config.engine_options, use_cache=self.config.cache)
        return self._engine

    def sandbox(self, timeout_memory_mb: int | None = None, parallel: int | None = None) -> Any:
        """A sandbox for validation (started on first use, closed by :meth:`close`)."""
        if self._sandbox is None:
            from harness.execution import Sandbox, SandboxSettings

            mem = (timeout_memory_mb or self.config.validate_.memory_mb) << 20
            self._sandbox = Sandbox(SandboxSettings(workers=parallel or self.config.validate_.parallel or 0,
                                                    memory_bytes=mem))  # fmt: skip
        return self._sandbox

    def close(self) -> None:
        """Close the sandbox (the engine is the process's and stays)."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None


def save_funnel(workdir: Path, funnel: Funnel) -> None:
    """Merge one stage's funnel into ``funnel.json``."""
    from harness.store import write_json_atomic

    path = workdir / "funnel.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.pop("stages", None)
    if not funnel.unit:
        funnel.unit = UNITS.get(funnel.stage, "")
    doc[funnel.stage] = funnel.model_dump(mode="json")
    order = {s: k for k, s in enumerate(STAGES)}
    # The stage order travels with the data, so readers (reports) never import the pipeline.
    write_json_atomic(path, {"stages": list(STAGES), **dict(sorted(doc.items(), key=lambda kv: order.get(kv[0], 99)))})


def load_funnel(workdir: Path) -> dict[str, Funnel]:
    """Every stage's funnel recorded in ``workdir``."""
    path = workdir / "funnel.json"
    if not path.exists():
        raise HarnessError(f"{path} does not exist: no stage has run in {workdir}")
    return {k: Funnel.model_validate(v) for k, v in json.loads(path.read_text()).items() if k != "stages"}
