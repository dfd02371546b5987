"""What a model's outputs depend on, as a short digest: weights, tokenizer, config.

Backends put these digests in ``identity()`` so the response cache keys a
sample on the weights that produced it: retraining into the same directory
must not reuse the old model's answers, while training state saved beside the
weights (optimizer, scheduler, RNG) must not make an unchanged model look new.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError

_CHUNK = 1 << 20

#: Training state a trainer saves next to the weights; it never changes generated text.
SKIPPED_FILES: tuple[str, ...] = (
    "optimizer.pt",
    "optimizer.bin",
    "optimizer*.safetensors",
    "scheduler.pt",
    "scheduler.bin",
    "scaler.pt",
    "rng_state*.pth",
    "trainer_state.json",
    "training_args.bin",
    "README.md",
)
#: Folders below a model folder that hold other models (intermediate checkpoints) or logs.
SKIPPED_DIRS: tuple[str, ...] = ("checkpoint-*", "global_step*", "runs", "logs", "__pycache__")

FileHasher = Callable[[Path], str]
"""Returns the SHA-256 (hex) of one file; a memo may answer from a store instead of reading it."""

# Within one process the same checkpoint is often hashed several times (engine rebuilt per
# stage, adapters shared between runs); size and mtime_ns guard against a rewritten file.
_PROCESS_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _process_memo_hash(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _PROCESS_MEMO.get(key)
    if digest is None:
        digest = _PROCESS_MEMO[key] = file_sha256(path)
    return digest


def memo_from_cache(cache: object) -> FileHasher:
    """A file hasher backed by a ``ResponseCache``'s remembered hashes (kept across processes)."""
    lookup = cache.file_hash  # type: ignore[attr-defined]
    remember = cache.remember_file_hash  # type: ignore[attr-defined]

    def hasher(path: Path) -> str:
        digest = lookup(path)
        if digest is None:
            digest = _process_memo_hash(path)
            remember(path, digest)
        return digest

    return hasher


def _skipped(name: str, patterns: tuple[str, ...]) -> bool:
    return name.startswith(".") or any(fnmatch.fnmatch(name, p) for p in patterns)


def model_files(path: Path) -> list[Path]:
    """The files of a model folder that can change its output, in sorted relative-path order."""
    found: list[Path] = []
    for child in sorted(path.iterdir(), key=lambda p: p.name):
        if child.is_dir():
            if not _skipped(child.name, SKIPPED_DIRS):
                found.extend(model_files(child))
        elif child.is_file() and not _skipped(child.name, SKIPPED_FILES):
            found.append(child)
    return found


def model_dir_digest(path: Path, memo: FileHasher | None = None) -> str:
    """SHA-256 over a model folder's files (relative name and content), skipping training state.

    ``memo`` hashes one file; pass ``memo_from_cache(cache)`` so multi-gigabyte
    weights are read once per change rather than once per run.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise HarnessError(f"model folder {root} does not exist or is not a folder")
    hasher = memo or _process_memo_hash
    files = model_files(root)
    if not files:
        raise HarnessError(f"model folder {root} holds no model files")
    h = hashlib.sha256()
    for file in files:
        # Names are hashed with the content so renaming a shard or swapping two files changes the digest.
        rel = file.relative_to(root).as_posix()
        h.update(rel.encode())
        h.update(b"\0")
        h.update(hasher(file).encode())
        h.update(b"\n")
    return h.hexdigest()


def hub_commit(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> str | None:
    """The commit hash of a hub model as found in the local Hugging Face cache, without network.

    ``None`` when huggingface_hub is missing or the model is not cached; the
    caller then falls back to the revision it was given.
    """
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(
            repo_id, "config.json", cache_dir=str(cache_dir) if cache_dir else None, revision=revision
        )
    except Exception:  # a malformed id or cache only loses the commit hash, not the run
        return None
    if not isinstance(found, str):
        return None
    snapshot = Path(found).parent
    # The cache lays files out as .../snapshots/<commit>/<file>; anything else is not a commit we can name.
    if snapshot.parent.name != "snapshots":
        return None
    return snapshot.name
