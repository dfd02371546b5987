"""Stage 1: seed collection -- functions (and methods, with ``seeds.include_methods``) with docstrings from a
corpus.

Sources (``SeedsConfig.source``):

* ``stdlib``: the running Python's standard library (the default, so the pipeline runs anywhere; PSF-2.0);
* a folder of ``.py`` files (provenance: the path under the folder; licence from ``seeds.licence``);
* a ``.jsonl`` / ``.parquet`` file with a content column (``seeds.content_field``); provenance columns of The
  Stack (``max_stars_repo_name``, ``max_stars_repo_path``, ``max_stars_repo_licenses``) or plain ``repository``,
  ``path``, ``license`` columns are recorded when present;
* ``hf:DATASET[/DATA_DIR][:SPLIT]``, streamed with ``datasets``.  ``hf:bigcode/the-stack`` (what the original
  used; gated, needs a token) reads its Python subset, ``data/python``.  This path needs the network and cannot
  be exercised by the offline test suite.

Extraction is one ``ast.parse`` per file and a walk over statement lists only (never expressions), with the
file split into lines once: ``ast.get_source_segment`` re-splits the whole file for every function, which is
what makes a naive extractor slow on long modules.  Big corpora are spread over a process pool.

Each seed row: ``key`` (sha1 of repository, path, qualified name and source), ``seed`` (the function's
source from its ``def`` line, dedented; decorators are left out), ``name`` (qualified), ``path``,
``repository``, ``lineno`` / ``end_lineno`` (1-based, in the original file), ``licence``, ``docstring``
(cleaned), ``imports``: the module's top-level import statements that bind a name the seed mentions, so
later filters can resolve aliases (``import subprocess as sp``) and type-check the seed with its imports, and
``module_names``: the other names the module defines at its top level that the seed mentions, with their kind
(``function``, ``class`` or ``value``), so the type-check can put them in scope.

Files that cannot be decoded or parsed are counted (listed in ``seeds.removed.jsonl``), never fatal.  Files
that cannot hold a documented function (no ``def``, or no indented string literal right after a ``...:``
line) are not parsed at all.  The funnel counts functions: ``input`` is every function and method found,
``output`` the seeds, ``removed`` those without a docstring, repeated in their file, or left out by
``seeds.max_seeds``; file counts (read, unparsable, without a documented function) are notes and ``extra``.

``seeds.max_files`` and ``seeds.max_seeds`` take a sample: ``seeds.sample = "random"`` (the default) keeps
the files, then the seeds, with the smallest hash of (``seeds.sample_seed`` or the pipeline seed, path or
key): a seeded sample of the whole corpus that does not depend on reading order, so a rerun picks the same
ones; ``"first"`` keeps the first in path order.  A random sample of a streamed ``hf:`` source shuffles the
stream (``datasets``' buffered shuffle, 10,000 rows) instead of reading it all.
"""

from __future__ import annotations

import ast
import codecs
import gc
import hashlib
import heapq
import io
import json
import os
import re
import sys
import sysconfig
import time
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.core import Context, Funnel, SeedsConfig, StageFiles
from harness.errors import HarnessError

STAGE = "seeds"
STDLIB_LICENCE = "PSF-2.0"
#: Rows appended per write (an interruption loses at most this many).
WRITE_BATCH = 2000
#: Seconds between progress lines while extracting (the stage's only output until it finishes).
PROGRESS_EVERY = 10.0
#: Corpora smaller than this many bytes are extracted in-process: a pool's start-up would cost more.
POOL_MIN_BYTES = 4 << 20

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
# Compound statements whose bodies may hold definitions (``if TYPE_CHECKING:``, ``try: ... except ImportError:``).
_BLOCKS: tuple[type, ...] = (ast.If, ast.Try, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)
if sys.version_info >= (3, 11):
    _BLOCKS += (ast.TryStar,)
_WORD = re.compile(r"\w+")
# A header line ending in ":" (maybe with a comment), then (after blank or comment lines) an indented line
# that starts with a string literal: every docstring laid out the usual way.  A file without one cannot
# yield a seed except from one-line definitions (``def f(): "doc"; ...``), so it is not parsed at all.
_DOCSTRING_LAYOUT = re.compile(r':[ \t]*(?:#[^\r\n]*)?(?:\r\n|\r|\n)(?:[ \t]*(?:#[^\r\n]*)?(?:\r\n|\r|\n))*'
                               r'[ \t]+[rRuUbBfF]{0,2}["\']')  # fmt: skip
_THE_STACK = {"bigcode/the-stack": "data/python", "bigcode/the-stack-dedup": "data/python",
              "bigcode/the-stack-smol": "data/python"}  # fmt: skip


class Unparsable(Exception):
    """A document that cannot be decoded or parsed as Python."""


@dataclass
class Document:
    """One source file of the corpus: on disk (``file``) or already in memory (``text``)."""

    path: str  # provenance path (relative to the corpus root, or the dataset's path column)
    file: str | None = None
    text: str | None = None
    repository: str | None = None
    licence: str | None = None
    size: int = 0


@dataclass
class FileResult:
    """What extraction found in one document."""

    path: str
    nbytes: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    functions: int = 0  # functions and methods seen, with or without docstrings
    error: str | None = None  # set when the document is unparsable


# ---------------------------------------------------------------------------------------------- extraction


def decode_source(data: bytes) -> str:
    """Source text of a file's bytes: UTF-8, else the PEP 263 coding cookie; raises :class:`Unparsable`."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise Unparsable(f"cannot decode: {exc}") from None


def _import_text(node: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
    """``(bound name, statement)`` per alias: one statement per alias so a seed takes only what it uses."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            bound = a.asname or a.name.split(".")[0]
            out.append((bound, f"import {a.name} as {a.asname}" if a.asname else f"import {a.name}"))
    else:
        module = "." * node.level + (node.module or "")
        for a in node.names:
            stmt = f"from {module} import {a.name}" + (f" as {a.asname}" if a.asname else "")
            out.append(("*" if a.name == "*" else a.asname or a.name, stmt))
    return out


def _module_imports(body: list[ast.stmt]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.extend(_import_text(node))
        elif isinstance(node, _BLOCKS):
            # ``try: import x except ImportError: x = None`` and ``if TYPE_CHECKING:`` imports count too
            for sub in _block_bodies(node):
                found.extend(_module_imports(sub))
    return found


def _block_bodies(node: ast.stmt) -> Iterator[list[ast.stmt]]:
    yield node.body  # type: ignore[attr-defined]
    yield getattr(node, "orelse", [])
    for h in getattr(node, "handlers", ()):
        yield h.body
    yield getattr(node, "finalbody", [])


def _used_imports(seed: str, imports: list[tuple[str, str]]) -> list[str]:
    if not imports:
        return []
    names: set[str] | None = None
    out: list[str] = []
    for bound, stmt in imports:
        if bound == "*":
            out.append(stmt)  # a star import may bind anything the seed uses
            continue
        if bound not in seed:  # a cheap substring test first; whole words only when it hits
            continue
        if names is None:
            names = set(_WORD.findall(seed))
        if bound in names and stmt not in out:
            out.append(stmt)
    return out


def extract_functions(
    text: str,
    path: str,
    include_methods: bool = True,
    repository: str | None = None,
    licence: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Seed rows of every documented function (and method) of one module, and how many functions it has.

    Raises :class:`Unparsable` when the text is not Python.  Functions nested in functions are left out:
    they lean on their enclosing scope and are not standalone seeds.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise Unparsable(f"{type(exc).__name__}: {exc}") from None
    if "\r" in text:  # line numbers count \r\n and \r as one newline; str.splitlines would also split at \f
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    imports = _module_imports(tree.body)
    defs = _module_defs(tree.body)
    rows: list[dict[str, Any]] = []
    functions = 0

    def visit(body: list[ast.stmt], prefix: str) -> None:
        nonlocal functions
        for node in body:
            if isinstance(node, _FUNCS):
                functions += 1
                row = _seed_row(node, prefix, lines, path, repository, licence, imports, defs)
                if row is not None:
                    rows.append(row)
            elif isinstance(node, ast.ClassDef):
                if include_methods:
                    visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, _BLOCKS):
                for sub in _block_bodies(node):
                    visit(sub, prefix)
            elif isinstance(node, ast.Match):
                for case in node.cases:
                    visit(case.body, prefix)

    visit(tree.body, "")
    return rows, functions


def _module_defs(body: list[ast.stmt]) -> dict[str, str]:
    """Names a module binds at its top level (outside imports) -> ``function``, ``class`` or ``value``."""
    found: dict[str, str] = {}
    for node in body:
        if isinstance(node, _FUNCS):
            found.setdefault(node.name, "function")
        elif isinstance(node, ast.ClassDef):
            found.setdefault(node.name, "class")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        found.setdefault(n.id, "value")
        elif isinstance(node, _BLOCKS):
            for sub in _block_bodies(node):
                for name, kind in _module_defs(sub).items():
                    found.setdefault(name, kind)
    return found


def _used_module_names(seed: str, own: str, defs: dict[str, str]) -> dict[str, str]:
    if not defs:
        return {}
    words = set(_WORD.findall(seed))
    return {n: k for n, k in sorted(defs.items()) if n in words and n != own}


def _seed_row(node: ast.FunctionDef | ast.AsyncFunctionDef, prefix: str, lines: list[str], path: str,
              repository: str | None, licence: str | None,
              imports: list[tuple[str, str]], defs: dict[str, str] | None = None) -> dict[str, Any] | None:  # fmt: skip
    body = node.body
    first = body[0] if body else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return None
    start, end = node.lineno, node.end_lineno or node.lineno
    head = lines[start - 1]
    col = node.col_offset  # a UTF-8 byte offset, but the text before ``def`` is indentation, i.e. ASCII
    indent = head[:col]
    if indent.strip():
        return None  # ``class A: def f(self): ...`` on one line: no clean line range to quote
    if col:
        # Strip exactly the def line's indentation; shallower lines (inside strings, or bracket continuations)
        # keep theirs, so string contents survive unchanged.
        src_lines = [ln[col:] if ln.startswith(indent) else ("" if not ln.strip() else ln)
                     for ln in lines[start - 1 : end]]  # fmt: skip
    else:
        src_lines = lines[start - 1 : end]
    seed = "\n".join(src_lines) + "\n"
    name = prefix + node.name
    key = hashlib.sha1(f"{repository or ''}\0{path}\0{name}\0{seed}".encode("utf-8", "surrogatepass")).hexdigest()
    doc = ast.get_docstring(node, clean=True) or ""
    return {
        "key": key,
        "seed": seed,
        "name": name,
        "path": path,
        "repository": repository,
        "lineno": start,
        "end_lineno": end,
        "licence": licence,
        "docstring": doc,
        "imports": _used_imports(seed, imports),
        # a top-level function's own name is its own, not the module's; a method's class is the module's
        "module_names": _used_module_names(seed, node.name if not prefix else "", defs or {}),
    }


def extract_document(doc: Document, include_methods: bool = True) -> FileResult:
    """Read (if on disk), decode and extract one document; unparsable documents come back with ``error``."""
    try:
        if doc.text is None:
            data = Path(doc.file or doc.path).read_bytes()
            nbytes = len(data)
            text = decode_source(data)
        else:
            text = doc.text
            nbytes = doc.size or len(text.encode("utf-8", "surrogatepass"))
    except OSError as exc:
        return FileResult(doc.path, 0, error=f"cannot read: {exc.strerror or exc}")
    except Unparsable as exc:
        return FileResult(doc.path, nbytes, error=str(exc))
    if "def" not in text or not _DOCSTRING_LAYOUT.search(text):
        # nothing to find (parsing is most of the cost: skipping it is the cheapest win there is)
        return FileResult(doc.path, nbytes)
    try:
        rows, functions = extract_functions(text, doc.path, include_methods, doc.repository, doc.licence)
    except Unparsable as exc:
        return FileResult(doc.path, nbytes, error=str(exc))
    return FileResult(doc.path, nbytes, rows, functions)


def _extract_many(args: tuple[list[Document], bool]) -> list[FileResult]:
    docs, include_methods = args
    return [extract_document(d, include_methods) for d in docs]


def extract_corpus(docs: Iterable[Document], include_methods: bool = True, workers: int | None = None,
                   total_bytes: int | None = None) -> Iterator[FileResult]:  # fmt: skip
    """Extract every document, in order; a process pool of ``workers`` (default: the CPU count) when big.

    ``total_bytes`` (when known) decides whether a pool pays off; unknown sizes (streams) always use one.
    """
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or (total_bytes is not None and total_bytes < POOL_MIN_BYTES):
        for d in docs:
            yield extract_document(d, include_methods)
        return
    import multiprocessing
    import threading

    # fork needs no importable __main__ and starts at once; but a parent running other threads (an engine, a
    # tokenizer) could be copied mid-lock, so then spawn (whose children re-import __main__ instead)
    methods = multiprocessing.get_all_start_methods()
    fork = "fork" in methods and threading.active_count() == 1
    mp = multiprocessing.get_context("fork" if fork else "spawn")
    if fork:
        # children would otherwise walk (and so copy, page by page) the parent's whole heap at their first
        # garbage collection; frozen objects are left alone.  The parent unfreezes once they are started.
        gc.freeze()
    try:
        pool = mp.Pool(workers)
    finally:
        if fork:
            gc.unfreeze()
    with pool:
        # chunks of documents keep the inter-process traffic per task small relative to the work
        yield from (r for chunk in pool.imap(_extract_many, _chunks(docs, include_methods)) for r in chunk)


def _chunks(docs: Iterable[Document], include_methods: bool, target: int = 1 << 20,
            most: int = 64) -> Iterator[tuple[list[Document], bool]]:  # fmt: skip
    chunk: list[Document] = []
    size = 0
    for d in docs:
        chunk.append(d)
        size += d.size or 4096
        if size >= target or len(chunk) >= most:
            yield chunk, include_methods
            chunk, size = [], 0
    if chunk:
        yield chunk, include_methods


# ------------------------------------------------------------------------------------------------- sources


def stdlib_root() -> Path:
    """The running Python's standard library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def folder_documents(root: Path, licence: str | None = None, repository: str | None = None,
                     skip_dirs: tuple[str, ...] = ()) -> list[Document]:  # fmt: skip
    """Every ``.py`` file under ``root`` (sorted, so runs and keys are reproducible)."""
    docs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                full = os.path.join(dirpath, name)
                try:
                    size = os.path.getsize(full)
                except OSError:
                    size = 0
                docs.append(Document(os.path.relpath(full, root), full, None, repository, licence, size))
    docs.sort(key=lambda d: d.path)
    return docs


def _licence_of(row: dict[str, Any], default: str | None) -> str | None:
    for key in ("max_stars_repo_licenses", "licenses", "license", "licence"):
        value = row.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, (list, tuple)) and value:
            return " OR ".join(str(v) for v in value)
    return default


def _record_document(row: dict[str, Any], index: int, origin: str, content_field: str,
                     default_licence: str | None) -> Document | None:  # fmt: skip
    text = row.get(content_field)
    if not isinstance(text, str):
        return None
    repo = next((row[k] for k in ("max_stars_repo_name", "repository", "repo_name", "repo") if row.get(k)), None)
    path = next((row[k] for k in ("max_stars_repo_path", "path") if row.get(k)), None) or f"{origin}#{index}"
    return Document(str(path), None, text, str(repo) if repo else None, _licence_of(row, default_licence),
                    len(text))  # fmt: skip


def record_documents(rows: Iterable[dict[str, Any]], origin: str, content_field: str,
                     default_licence: str | None) -> Iterator[Document]:  # fmt: skip
    """Documents from dataset rows (rows without a string content field are skipped)."""
    for i, row in enumerate(rows):
        d = _record_document(row, i, origin, content_field, default_licence)
        if d is not None:
            yield d


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    raise HarnessError(f"seed source {path} line {lineno} is not valid JSON") from None


def _parquet_rows(path: Path, columns: list[str]) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise HarnessError("reading a .parquet seed source needs pyarrow: pip install pyarrow") from None
    pf = pq.ParquetFile(path)
    wanted = [c for c in columns if c in pf.schema_arrow.names]
    for batch in pf.iter_batches(batch_size=1024, columns=wanted):
        yield from batch.to_pylist()


def parse_hf_source(spec: str) -> tuple[str, str | None, str]:
    """``hf:OWNER/NAME[/DATA_DIR][:SPLIT]`` -> (dataset, data_dir, split)."""
    body = spec[3:]
    name, _, split = body.partition(":")
    parts = name.strip("/").split("/")
    if len(parts) < 2 or not all(parts):
        raise HarnessError(f"seed source {spec!r}: expected hf:OWNER/NAME[/DATA_DIR][:SPLIT]")
    dataset = "/".join(parts[:2])
    data_dir = "/".join(parts[2:]) or _THE_STACK.get(dataset)
    return dataset, data_dir, split or "train"


def _hf_rows(spec: str, content_field: str, shuffle_seed: int | None = None) -> Iterator[dict[str, Any]]:
    dataset, data_dir, split = parse_hf_source(spec)
    try:
        import datasets
    except ImportError:
        raise HarnessError(f"seed source {spec} needs the datasets library: pip install datasets") from None
    try:
        stream = datasets.load_dataset(dataset, data_dir=data_dir, split=split, streaming=True)
    except Exception as exc:  # the hub raises many types (gated, offline, missing split); all mean "cannot read"
        raise HarnessError(f"seed source {spec}: cannot stream {dataset} ({type(exc).__name__}: {exc}); "
                           "gated datasets need `huggingface-cli login` and an accepted licence") from None  # fmt: skip
    if shuffle_seed is not None:
        stream = stream.shuffle(seed=shuffle_seed, buffer_size=10_000)
    yield from stream


_PROVENANCE_COLUMNS = ["max_stars_repo_name", "max_stars_repo_path", "max_stars_repo_licenses", "repository",
                       "repo_name", "repo", "path", "licenses", "license", "licence"]  # fmt: skip


def sample_rank(seed: int, ident: str) -> bytes:
    """The sort key of a random sample: a hash of the sampling seed and the item's identity."""
    return hashlib.sha1(f"{seed}\0{ident}".encode("utf-8", "surrogatepass")).digest()


def _sample_files(docs: Iterable[Document], limit: int, seed: int) -> list[Document]:
    """The ``limit`` documents with the smallest rank, in their reading order (streams are read to the end)."""
    heap: list[tuple[bytes, int, Document]] = []
    for i, d in enumerate(docs):
        item = (sample_rank(seed, f"{d.repository or ''}\0{d.path}"), i, d)
        if len(heap) < limit:
            heapq.heappush(heap, (_neg(item[0]), -i, d))
        elif item[0] < _neg(heap[0][0]):
            heapq.heapreplace(heap, (_neg(item[0]), -i, d))
    return [d for _, _, d in sorted(heap, key=lambda t: -t[1])]


def _neg(rank: bytes) -> bytes:
    # a max-heap on ranks out of heapq's min-heap: complement every byte
    return bytes(255 - b for b in rank)


def corpus_documents(cfg: SeedsConfig, seed: int = 0) -> tuple[str, Iterator[Document], int | None]:
    """(label, documents, total bytes if known) of the configured source, sampled as ``seeds.sample`` says."""
    src = cfg.source
    sample_seed = cfg.sample_seed if cfg.sample_seed is not None else seed
    random_pick = cfg.sample == "random" and cfg.max_files is not None
    docs: Iterable[Document]
    total: int | None = None
    if src == "stdlib":
        root = stdlib_root()
        docs = folder_documents(root, cfg.licence or STDLIB_LICENCE, f"python-{sys.version.split()[0]}-stdlib",
                                skip_dirs=("site-packages", "dist-packages"))  # fmt: skip
        label = f"stdlib ({root})"
    elif src.startswith("hf:"):
        docs = record_documents(_hf_rows(src, cfg.content_field, sample_seed if random_pick else None), src,
                                cfg.content_field, cfg.licence)  # fmt: skip
        label = src
        random_pick = False  # the stream itself is shuffled
    else:
        path = Path(src).expanduser()
        if not path.exists():
            raise HarnessError(f"seed source {path} does not exist; use stdlib, a folder, a .jsonl/.parquet file "
                               "or hf:DATASET")  # fmt: skip
        label = str(path)
        if path.is_dir():
            docs = folder_documents(path, cfg.licence)
        elif path.suffix == ".parquet":
            docs = record_documents(_parquet_rows(path, [cfg.content_field, *_PROVENANCE_COLUMNS]), path.name,
                                    cfg.content_field, cfg.licence)  # fmt: skip
        elif path.suffix in (".jsonl", ".json"):
            docs = record_documents(_jsonl_rows(path), path.name, cfg.content_field, cfg.licence)
        else:
            raise HarnessError(f"seed source {path}: expected a folder, .jsonl or .parquet")
    if random_pick:
        assert cfg.max_files is not None
        docs = _sample_files(docs, cfg.max_files, sample_seed)
    if isinstance(docs, list):
        if cfg.max_files is not None:
            docs = docs[: cfg.max_files]
        total = sum(d.size for d in docs)
        return label, iter(docs), total
    it = iter(docs)
    if cfg.max_files is not None:
        it = (d for _, d in zip(range(cfg.max_files), it))
    return label, it, total


# ---------------------------------------------------------------------------------------------------- stage


def run(ctx: Context) -> Funnel:
    """Collect seeds from the configured corpus into ``seeds.jsonl`` (resumable: written keys are skipped)."""
    cfg = ctx.config.seeds
    files = StageFiles(ctx.workdir, STAGE)
    done = files.done_keys()
    funnel = Funnel(stage=STAGE, unit="functions")
    t0 = time.perf_counter()
    sample_seed = cfg.sample_seed if cfg.sample_seed is not None else ctx.config.seed
    label, docs, total = corpus_documents(cfg, ctx.config.seed)
    ctx.echo(f"[seeds] source: {label}" + (f", {total / 1e6:.1f} MB" if total is not None else ""))
    written = sum(1 for _ in _read_keys(files.out))
    limit = cfg.max_seeds
    sampled = cfg.sample == "random" and limit is not None
    pending: list[dict[str, Any]] = []
    chosen: list[tuple[bytes, int, dict[str, Any]]] = []  # random max_seeds: a max-heap of the best ranks
    unparsable: list[tuple[str, str, dict[str, Any]]] = []
    seen: set[str] = set()
    counts = {"files": 0, "bytes": 0, "functions": 0, "documented": 0, "no documented function": 0,
              "unparsable": 0}  # fmt: skip
    removed = {"no docstring": 0, "repeated in its file": 0, "over seeds.max_seeds": 0}
    stopped = False
    order = 0
    last_line = time.perf_counter()
    for res in extract_corpus(docs, cfg.include_methods, total_bytes=total):
        counts["files"] += 1
        counts["bytes"] += res.nbytes
        if time.perf_counter() - last_line >= PROGRESS_EVERY:  # a line now and then, for logs off a terminal
            last_line = time.perf_counter()
            ctx.echo(_progress_line(counts, len(seen), total, last_line - t0))
        if res.error is not None:
            key = hashlib.sha1(f"file\0{res.path}".encode("utf-8", "surrogatepass")).hexdigest()
            counts["unparsable"] += 1
            if key not in done:
                unparsable.append((key, "unparsable file", {"path": res.path, "error": res.error[:300]}))
            continue
        counts["functions"] += res.functions
        counts["documented"] += len(res.rows)
        removed["no docstring"] += res.functions - len(res.rows)
        if not res.rows:
            counts["no documented function"] += 1
        for n, row in enumerate(res.rows):
            k = row["key"]
            if k in seen:
                removed["repeated in its file"] += 1  # ``if``/``else`` variants of one function: one seed
                continue
            seen.add(k)
            if sampled:
                assert limit is not None
                order += 1
                item = (_neg(sample_rank(sample_seed, k)), -order, row)
                if len(chosen) < limit:
                    heapq.heappush(chosen, item)
                else:
                    removed["over seeds.max_seeds"] += 1
                    heapq.heappushpop(chosen, item)
                continue
            if k in done:
                funnel.skipped_done += 1
                continue
            if limit is not None and written + len(pending) >= limit:
                stopped = True
                removed["over seeds.max_seeds"] += len(res.rows) - n
                break
            pending.append(row)
        if len(pending) >= WRITE_BATCH:
            written += files.append(pending)
            pending = []
        if stopped:
            break
    if sampled:
        for _, _, row in sorted(chosen, key=lambda t: -t[1]):  # reading order
            if row["key"] in done:
                funnel.skipped_done += 1
            else:
                pending.append(row)
    written += files.append(pending)
    files.remove(unparsable)
    seconds = time.perf_counter() - t0
    funnel.input = counts["functions"]
    funnel.output = written
    funnel.removed = {k: v for k, v in removed.items() if v}
    funnel.seconds = round(seconds, 3)
    funnel.extra = {**counts, "mb_per_s": round(counts["bytes"] / 1e6 / max(seconds, 1e-9), 2), "source": label,
                    "sample": cfg.sample, "sample_seed": sample_seed if cfg.sample == "random" else None}  # fmt: skip
    funnel.notes.append(f"{counts['files']} file(s) read ({counts['bytes'] / 1e6:.1f} MB): "
                        f"{counts['no documented function']} without a documented function, "
                        f"{counts['unparsable']} unparsable" + (f" (see {files.removed.name})" if counts["unparsable"] else ""))  # fmt: skip
    if stopped or sampled and removed["over seeds.max_seeds"]:
        how = "a seeded random sample" if sampled else "the first in path order"
        funnel.notes.append(f"seeds.max_seeds = {limit}: {how}")
    return funnel


def _progress_line(counts: dict[str, int], found: int, total: int | None, elapsed: float) -> str:
    rate = counts["bytes"] / 1e6 / max(elapsed, 1e-9)
    line = f"[seeds] {counts['files']:,} files, {counts['bytes'] / 1e6:,.1f} MB"
    if total:
        left = max(total - counts["bytes"], 0) / 1e6 / rate if rate > 0 else 0.0
        line += f" of {total / 1e6:,.1f} ({counts['bytes'] / total:.0%}), ETA {int(left // 60)}m{int(left % 60):02d}s"
    return line + f"; {found:,} seeds found; {rate:.1f} MB/s"


def _read_keys(path: Path) -> Iterator[str]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n") and line.strip():
                try:
                    yield json.loads(line)["key"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
