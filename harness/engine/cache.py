"""The response cache: one SQLite file per cache directory.

A sample is keyed only on what changes it: the model's identity (backend,
weights hash or revision, adapter), the request's text, the sampling
settings that matter, the seed and the sample's index.  ``n`` is not part of
the key, so raising ``--n`` from 1 to 10 reuses the first sample.  Every
sample is committed as it is stored, so a killed run keeps every finished
sample; each carries a checksum, and a damaged entry is generated again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.engine.types import Completion, Request
from harness.errors import HarnessError

CACHE_FILE = "responses.sqlite"
_SCHEMA = 1


def sample_key(identity: str, request: Request, index: int) -> str:
    """The cache key of sample ``index`` of ``request`` for the model ``identity``."""
    sampling = request.sampling
    doc = {
        "v": _SCHEMA,
        "model": identity,
        "input": request.content_key(),
        "sampling": sampling.key_fields(),
        # Greedy samples are all the same text, so they share index 0.
        "index": 0 if sampling.greedy else index,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _checksum(text: str, finish: str, prompt_tokens: int, completion_tokens: int, extra: str | None = None) -> str:
    # ``extra`` joins the checksum only when present, so entries written before it existed still verify.
    fields: list[Any] = [text, finish, prompt_tokens, completion_tokens] + ([extra] if extra is not None else [])
    doc = json.dumps(fields, ensure_ascii=False)
    return hashlib.sha256(doc.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _extra(c: Completion) -> str | None:
    """A reasoning model's separate reasoning and its token count, as JSON (None when there is neither)."""
    if c.reasoning is None and c.reasoning_tokens is None:
        return None
    return json.dumps({"reasoning": c.reasoning, "reasoning_tokens": c.reasoning_tokens}, ensure_ascii=False)


class ResponseCache:
    """Completed samples by key; safe to share between threads of one process."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / CACHE_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS samples (key TEXT PRIMARY KEY, text TEXT NOT NULL, finish TEXT NOT NULL,"
                " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL NOT NULL)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS file_hashes (path TEXT, size INTEGER, mtime_ns INTEGER,"
                             " sha256 TEXT, PRIMARY KEY (path, size, mtime_ns))")  # fmt: skip
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(samples)")}
            if "checksum" not in columns:
                self._db.execute("ALTER TABLE samples ADD COLUMN checksum TEXT")
            if "extra" not in columns:  # reasoning_content and reasoning token counts (reasoning models)
                self._db.execute("ALTER TABLE samples ADD COLUMN extra TEXT")
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise HarnessError(
                f"response cache {self.path} is unusable ({exc}); delete it or pass --no-cache"
            ) from None
        self._lock = threading.Lock()
        self._last_commit = time.monotonic()
        self._pending = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        """Cached completions for the keys that have one."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, Completion] = {}
        damaged = 0
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT key, text, finish, prompt_tokens, completion_tokens, checksum, extra FROM samples "
                    f"WHERE key IN ({marks})",
                    chunk,
                )
                for key, text, finish, ptok, ctok, checksum, extra in rows:
                    if checksum is not None and checksum != _checksum(text, finish, ptok, ctok, extra):
                        damaged += 1  # a damaged entry is generated again, never used
                        continue
                    more = json.loads(extra) if extra else {}
                    found[key] = Completion(text, finish, ptok, ctok, cached=True, reasoning=more.get("reasoning"),
                                            reasoning_tokens=more.get("reasoning_tokens"))  # fmt: skip
        if damaged:
            print(f"warning: {damaged} entries of the response cache {self.path} failed their checksum; "
                  "those samples are generated again", file=sys.stderr)  # fmt: skip
        return found

    def put(self, key: str, completion: Completion) -> None:
        """Store a completion (errors are never cached)."""
        if completion.finish_reason == "error":
            return
        with self._lock:
            c = completion
            extra = _extra(c)
            self._db.execute(
                "INSERT OR REPLACE INTO samples (key, text, finish, prompt_tokens, completion_tokens, created, checksum,"
                " extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens, time.time(),
                 _checksum(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens, extra), extra),
            )  # fmt: skip
            # Committed at once (WAL with synchronous=NORMAL: no fsync per commit): a sample costs far
            # more to generate than to commit, and a killed run must keep every finished one.
            self._commit()

    def file_hash(self, path: Path) -> str | None:
        """A remembered SHA-256 of ``path`` while its size and mtime are unchanged."""
        st = path.stat()
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM file_hashes WHERE path=? AND size=? AND mtime_ns=?",
                (str(path.resolve()), st.st_size, st.st_mtime_ns),
            ).fetchone()
        return row[0] if row else None

    def remember_file_hash(self, path: Path, digest: str) -> None:
        """Remember a file's SHA-256 for its current size and mtime."""
        st = path.stat()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                (str(path.resolve()), st.st_size, st.st_mtime_ns, digest),
            )
            self._db.commit()

    def count(self) -> int:
        """Stored samples."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def _commit(self) -> None:
        self._db.commit()
        self._pending = 0
        self._last_commit = time.monotonic()

    def flush(self) -> None:
        """Commit what is pending."""
        with self._lock:
            self._commit()

    def close(self) -> None:
        """Commit and close."""
        with self._lock:
            try:
                self._commit()
            finally:
                self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
