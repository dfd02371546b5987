"""Dataset files: pinned release files, the offline data folder, the download cache.

Lookup order for a release file:

1. ``--data-dir`` (or ``HARNESS_DATA_DIR``): a folder laid out like the
   project's shared data folder (``<subdir>/<filename>``; ``<filename>``
   directly in the folder is accepted too);
2. the download cache (``HARNESS_CACHE_DIR``, default
   ``$XDG_CACHE_HOME/harness`` or ``~/.cache/harness``);
3. a download from the official release location into that cache, unless
   ``HARNESS_OFFLINE=1``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError


@dataclass(frozen=True)
class ReleaseFile:
    """One pinned dataset file and where it is published."""

    name: str
    version: str
    subdir: str
    filename: str
    url: str


def cache_dir() -> Path:
    """The harness's cache root (datasets, expected outputs, verdicts)."""
    from harness.settings import current

    return current().cache_dir


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The offline data folder from ``--data-dir`` or ``HARNESS_DATA_DIR``, if any."""
    from harness.settings import current

    value = explicit if explicit is not None else current().data_dir
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        source = "--data-dir" if explicit is not None else "HARNESS_DATA_DIR"
        raise HarnessError(f"{source} points at {path}, which is not a folder")
    return path


def resolve(release: ReleaseFile, explicit_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return a local path for ``release``, downloading it when allowed."""
    folder = data_dir(explicit_dir)
    if folder is not None:
        for candidate in (folder / release.subdir / release.filename, folder / release.filename):
            if candidate.is_file():
                return candidate
    cached = cache_dir() / "datasets" / release.subdir / release.filename
    if cached.is_file():
        return cached
    from harness.settings import current

    if current().offline:
        raise HarnessError(_missing(release, folder, "HARNESS_OFFLINE=1 forbids downloads"))
    try:
        _download(release.url, cached)
    except (OSError, urllib.error.URLError) as exc:
        raise HarnessError(_missing(release, folder, f"download failed: {exc}")) from None
    return cached


def _missing(release: ReleaseFile, folder: Path | None, why: str) -> str:
    where = f" (looked in {folder})" if folder is not None else ""
    return (
        f"{release.name} {release.version} is not available{where}; {why}. Either connect to the "
        f"network so it downloads from {release.url}, or pass --data-dir (or set HARNESS_DATA_DIR) "
        f"to a folder holding {release.subdir}/{release.filename}"
    )


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)  # atomic: an interrupted download leaves no half file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_text(path: Path) -> str:
    """Read a (possibly gzip-compressed) text file."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read().decode("utf-8")
    return path.read_text(encoding="utf-8")


def content_md5(path: Path) -> str:
    """MD5 of the decompressed content: the dataset hash EvalPlus records."""
    h = hashlib.md5()  # noqa: S324 - a content identifier, as EvalPlus uses
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
