"""The benchmark index: every reference string of every benchmark, normalised and indexed once.

Built from the benchmarks' ``reference_items()`` (whole prompts, canonical
solutions and tests, and the parts that leak on their own: statements,
docstrings, questions, descriptions, signatures, assertions, test inputs,
code contexts; see :mod:`harness.decontamination.parts`) and cached on disk,
keyed by the benchmarks' dataset hashes and the index parameters, so a
second audit costs only the scan.  Each part goes to the indexes whose
method fits it: natural-language parts to the word-for-word statement index
(and, when long, the n-gram index), code parts to the substring index (and,
when long, the n-gram index), whole items to both as before.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from harness.decontamination import parts as part_kinds
from harness.errors import HarnessError

INDEX_VERSION = 5

#: Strings too common in code to be evidence of contamination (compared after
#: lowercasing and removing whitespace).  Anything shorter than
#: ``min_substring_chars`` non-space characters is ignored as well.
TRIVIAL = tuple(
    "".join(s.lower().split())
    for s in (
        'if __name__ == "__main__":',
        "if __name__ == '__main__':",
        "import numpy as np",
        "import pandas as pd",
        "import matplotlib.pyplot as plt",
        "from typing import List",
        "from typing import List, Tuple",
        "from typing import List, Optional",
        "return result",
        "return True",
        "return False",
        "return None",
        "def main():",
        "pass",
    )
)

_WORD = re.compile(r"\w+")
# A multiplier for rolling n-gram hashes (odd, 64-bit; arithmetic wraps mod 2**64).
_P = np.uint64(0x9E3779B97F4A7C15)


def words(text: str) -> list[str]:
    """Normalised tokens for n-grams and shingles: lowercase word characters."""
    return _WORD.findall(text.lower())


_WS_BYTES = b" \t\n\r\x0b\x0c"
# After bytes.lower(), keep a-z and 0-9; drop symbols, whitespace and every non-ASCII byte.
_NOT_ALNUM_BYTES = bytes(b for b in range(256) if not (48 <= b <= 57 or 97 <= b <= 122))


def squash_bytes(text: str) -> bytes:
    """UTF-8, ASCII-lowercased, ASCII whitespace removed: the substring method's normal form."""
    return text.encode("utf-8", "surrogatepass").lower().translate(None, _WS_BYTES)


def alnum_bytes(text: str) -> bytes:
    """ASCII letters (lowercased) and digits only: the probe method's normal form."""
    return text.encode("utf-8", "surrogatepass").lower().translate(None, _NOT_ALNUM_BYTES)


def _window_hashes(buf: np.ndarray, positions: np.ndarray, length: int) -> np.ndarray:
    h = np.zeros(len(positions), np.uint64)
    with np.errstate(over="ignore"):
        for k in range(length):
            h = h * _P + buf[positions + k].astype(np.uint64)
    return h


class AnchorIndex:
    """Exact search for many long byte strings in many texts at once, with sparse anchors.

    Every needle is at least ``min_len`` bytes.  The texts (joined by NUL) are
    probed only at every ``S``-th byte with a window of ``L`` bytes, where
    ``S - 1 + L <= min_len``: any occurrence of a needle contains one probed
    window that starts within the needle's first ``S`` bytes, so indexing
    each needle's windows at offsets ``0 .. S-1`` finds them all.  Window
    hashes are computed with numpy; the few hits are confirmed with
    ``startswith``.  This reads ``S`` times fewer positions than a
    per-character automaton.
    """

    def __init__(self, needles: dict[bytes, list[int]], min_len: int) -> None:
        self.stride = max(1, min_len // 2)
        self.window = min_len - self.stride + 1
        self.needles = list(needles)
        self.owners = [needles[n] for n in self.needles]
        self.anchors: dict[bytes, list[tuple[int, int]]] = {}
        for nid, needle in enumerate(self.needles):
            if len(needle) < min_len:
                raise ValueError("needle shorter than the index's minimum length")
            for off in range(self.stride):
                self.anchors.setdefault(needle[off : off + self.window], []).append((nid, off))
        keys = list(self.anchors)
        buf = np.frombuffer(b"".join(keys), np.uint8)
        self.hashes = np.unique(_window_hashes(buf, np.arange(len(keys)) * self.window, self.window))
        # A 2**24-bit filter on the low hash bits rejects almost every window with one gather.
        self.bitmap = np.zeros(1 << 24, bool)
        self.bitmap[(self.hashes & np.uint64((1 << 24) - 1)).astype(np.int64)] = True

    def __len__(self) -> int:
        return len(self.needles)

    def find_all(self, normed: list[bytes]) -> list[tuple[int, int, int]]:
        """``(text index, start byte in that text, needle id)`` of every occurrence, each once."""
        if not normed:
            return []
        big = b"\x00".join(normed)
        starts = np.cumsum([0] + [len(b) + 1 for b in normed[:-1]])
        buf = np.frombuffer(big, np.uint8)
        positions = np.arange(0, max(0, len(big) - self.window + 1), self.stride)
        if len(positions) == 0:
            return []
        h = _window_hashes(buf, positions, self.window)
        maybe = self.bitmap[(h & np.uint64((1 << 24) - 1)).astype(np.int64)]
        positions, h = positions[maybe], h[maybe]
        at = np.searchsorted(self.hashes, h)
        at[at >= len(self.hashes)] = 0
        cand = positions[self.hashes[at] == h]
        found: set[tuple[int, int, int]] = set()
        for w in cand.tolist():
            for nid, off in self.anchors.get(big[w : w + self.window], ()):
                start = w - off
                if start >= 0 and big.startswith(self.needles[nid], start):
                    t = int(np.searchsorted(starts, start, side="right")) - 1
                    found.add((t, start - int(starts[t]), nid))
        return sorted(found)


def _kept_table(dropped: bytes) -> np.ndarray:
    table = np.ones(256, np.int64)
    table[np.frombuffer(dropped, np.uint8)] = 0
    return table


# Per byte of ``text.encode().lower()``: 1 where the normal form keeps it.
_KEPT = {"squash": _kept_table(_WS_BYTES), "alnum": _kept_table(_NOT_ALNUM_BYTES)}


def byte_span_to_chars(text: str, b_start: int, b_end: int, normal: str) -> tuple[int, int]:
    """Map a byte span of ``text``'s normal form (``squash`` or ``alnum``) back to ``text``'s characters.

    ``(first, last + 1)``: the characters holding the span's first and last
    kept bytes (to the end of ``text`` when the span runs past it).  One
    numpy pass over the UTF-8 bytes, not a Python step per character: an
    audit maps every flag back, and long rows made this most of its time.
    """
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass").lower(), np.uint8)
    seen = np.cumsum(_KEPT[normal][raw])  # kept bytes up to and including each byte
    first, last = np.searchsorted(seen, [b_start + 1, b_end])  # the bytes holding kept byte b_start, b_end - 1
    if first >= len(raw):
        return 0, len(text)
    char_of = np.cumsum((raw & 0xC0) != 0x80) - 1  # a UTF-8 continuation byte belongs to the character before
    if last >= len(raw):
        return int(char_of[first]), len(text)
    return int(char_of[first]), int(char_of[last]) + 1


class StatementIndex:
    """Word-for-word search of many token sequences (each at least ``anchor`` tokens) in many texts.

    Each sequence is indexed by the hash of its first ``anchor`` tokens; a
    text's ``anchor``-grams are hashed in one numpy pass (as the n-gram
    method does), and the few hits are confirmed by comparing the whole
    sequence.  Identical sequences (a statement two tasks share) are one
    entry with several owners.
    """

    def __init__(self, entries: list[tuple[int, np.ndarray]], anchor: int) -> None:
        self.anchor = anchor
        seqs: dict[bytes, tuple[np.ndarray, list[int]]] = {}
        for k, ids in entries:
            if len(ids) < anchor or (ids < 0).any():
                raise ValueError("a sequence shorter than the anchor, or with unknown tokens")
            seqs.setdefault(ids.tobytes(), (ids, []))[1].append(k)
        self.groups: dict[int, list[tuple[np.ndarray, list[int]]]] = {}
        for ids, owners in seqs.values():
            h, _ = rolling_hashes(ids[:anchor], anchor)
            self.groups.setdefault(int(h[0]), []).append((ids, owners))
        self.hashes = np.array(sorted(self.groups), np.uint64)
        # A 2**22-bit filter on the low hash bits rejects almost every position with one gather.
        self.bitmap = np.zeros(1 << 22, bool)
        self.bitmap[(self.hashes & np.uint64((1 << 22) - 1)).astype(np.int64)] = True

    def __len__(self) -> int:
        return sum(len(g) for g in self.groups.values())

    def find(self, allids: np.ndarray, h: np.ndarray, valid: np.ndarray) -> list[tuple[int, int, list[int]]]:
        """``(token position, length, owners)`` of every sequence found in ``allids`` (its anchor hashes ``h``)."""
        if len(self.hashes) == 0 or len(h) == 0:
            return []
        cand = np.nonzero(valid & self.bitmap[(h & np.uint64((1 << 22) - 1)).astype(np.int64)])[0]
        at = np.searchsorted(self.hashes, h[cand])
        at[at >= len(self.hashes)] = 0
        hits = cand[self.hashes[at] == h[cand]]
        found = []
        for p in hits.tolist():
            for ids, owners in self.groups.get(int(h[p]), ()):
                n = len(ids)
                if p + n <= len(allids) and np.array_equal(allids[p : p + n], ids):
                    found.append((p, n, owners))
        return found


@dataclass
class RefItem:
    """One reference string: which benchmark, task and part it came from."""

    benchmark: str
    task_id: str
    part: str  # prompt | solution | tests | statement | docstring | question | assertion:K | ...
    text: str


@dataclass
class IndexParams:
    """Parameters that shape the index (and key its cache)."""

    ngram: int = 13
    min_substring_chars: int = 40
    probe_chars: int = 50
    probes_per_item: int = 3
    minhash_perm: int = 128
    minhash_threshold: float = 0.5
    shingle: int = 5
    seed: int = 0
    #: Natural-language parts (statements, docstrings, questions) shorter than this are not matched alone.
    min_statement_words: int = 8
    #: Parts other than whole items join the n-gram index from this many tokens (short ones: exact only).
    ngram_min_tokens: int = 30


@dataclass
class BenchmarkIndex:
    """Indexes over the reference items for each method."""

    params: IndexParams
    items: list[RefItem]
    datasets: dict[str, dict[str, str]]
    #: substring: squashed items (at least ``min_substring_chars`` long) -> item ids
    substring: AnchorIndex | None = None
    #: probes: 50-character alnum probes -> item ids
    probes: AnchorIndex | None = None
    #: n-grams: sorted unique hashes, and per hash the items holding it
    ngram_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    ngram_owners: dict[int, list[int]] = field(default_factory=dict)
    ngram_counts: list[int] = field(default_factory=list)
    vocab: dict[str, int] = field(default_factory=dict)
    #: MinHash LSH over word-shingle sets of items (built on first use)
    minhash_lsh: Any = None
    #: natural-language parts, matched word for word (anchored on their first words)
    statements: StatementIndex | None = None
    #: text parts left out of the statement index: item id -> why (too short, generic phrasing)
    unmatched_text: dict[int, str] = field(default_factory=dict)
    build_seconds: float = 0.0

    def item_label(self, k: int) -> str:
        """``benchmark/task_id/part`` of item ``k``."""
        it = self.items[k]
        return f"{it.benchmark}:{it.task_id}:{it.part}"


def collect_items(benchmarks: list[str], data_dir: str | Path | None, skipped: dict[str, str] | None = None
                  ) -> tuple[list[RefItem], dict[str, dict[str, str]]]:  # fmt: skip
    """Reference items of the named benchmarks, and their dataset identities.

    With ``skipped`` (a dict to fill), a benchmark whose data cannot be had
    (offline without its files, a required option unset) is left out and its
    reason recorded there instead of failing the whole audit.
    """
    from harness import benchmark as registry

    items: list[RefItem] = []
    datasets: dict[str, dict[str, str]] = {}
    for name in benchmarks:
        try:
            bench = registry.reader(name, data_dir=data_dir)
            info = bench.dataset()
            refs = bench.reference_items()
        except HarnessError as exc:
            if skipped is None:
                raise
            skipped[name] = str(exc)
            continue
        datasets[name] = {"name": info.name, "version": info.version, "hash": info.hash}
        for tid, part, text in refs:
            if isinstance(text, str) and text.strip():
                items.append(RefItem(name, tid, part, text))
    return items, datasets


def token_ids(text_tokens: list[str], vocab: dict[str, int], grow: bool) -> np.ndarray:
    """Token ids; unknown tokens (not in any reference item) get -1 and can never match."""
    if grow:
        for t in dict.fromkeys(text_tokens):  # new tokens get the next ids in the order they first appear
            if t not in vocab:
                vocab[t] = len(vocab)
    # map() over the dict's own get: no Python frame per token (a generator here was most of the tokenising)
    return np.fromiter(map(vocab.get, text_tokens, repeat(-1)), np.int64, len(text_tokens))


def rolling_hashes(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-gram of ``ids`` and whether it is valid (holds no unknown token)."""
    m = len(ids) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    vals = (ids + 1).astype(np.uint64)  # unknown (-1) becomes 0
    h = np.zeros(m, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _P + vals[k : k + m]
    unknown = np.concatenate([[0], np.cumsum(ids < 0)])
    valid = (unknown[n:] - unknown[:m]) == 0
    return h, valid


def build_index(items: list[RefItem], datasets: dict[str, dict[str, str]], params: IndexParams) -> BenchmarkIndex:
    """Build every index (the MinHash LSH lazily, on first use)."""
    t0 = time.perf_counter()
    idx = BenchmarkIndex(params, items, datasets)
    owners: dict[str, list[int]] = {}
    trivial = {t.encode() for t in TRIVIAL}
    for k, it in enumerate(items):
        if part_kinds.is_text(it.part):
            continue  # prose: matched word for word below, where generic phrasings are left out
        key = squash_bytes(it.text)
        if len(key) < params.min_substring_chars or key in trivial:
            continue
        owners.setdefault(key, []).append(k)
    if owners:
        idx.substring = AnchorIndex(owners, params.min_substring_chars)
    rng = random.Random(params.seed)
    powners: dict[bytes, list[int]] = {}
    for k, it in enumerate(items):
        if part_kinds.is_text(it.part):
            toks = words(it.text)
            if len(toks) < params.min_statement_words or part_kinds.is_generic(toks):
                continue  # a probe of a generic statement is an everyday phrase
        norm = alnum_bytes(it.text)
        if len(norm) < params.probe_chars:
            continue
        starts = {rng.randrange(0, len(norm) - params.probe_chars + 1) for _ in range(params.probes_per_item)}
        for s in sorted(starts):
            powners.setdefault(norm[s : s + params.probe_chars], []).append(k)
    if powners:
        idx.probes = AnchorIndex({k: sorted(set(v)) for k, v in powners.items()}, params.probe_chars)
    all_hashes = []
    idx.ngram_counts = [0] * len(items)
    statements: list[tuple[int, np.ndarray]] = []
    for k, it in enumerate(items):
        tokens = words(it.text)
        ids = token_ids(tokens, idx.vocab, grow=True)
        if part_kinds.is_text(it.part):
            if len(tokens) < params.min_statement_words:
                idx.unmatched_text[k] = f"shorter than {params.min_statement_words} words"
            elif part_kinds.is_generic(tokens):
                idx.unmatched_text[k] = "a generic phrasing"
            else:
                statements.append((k, ids))
        if part_kinds.base(it.part) not in part_kinds.WHOLE_PARTS and len(tokens) < params.ngram_min_tokens:
            continue  # a short part: n-grams cannot see it reliably, and a shared 13-gram is common phrasing
        h, _ = rolling_hashes(ids, params.ngram)
        uniq = np.unique(h)
        idx.ngram_counts[k] = len(uniq)
        for v in uniq.tolist():
            idx.ngram_owners.setdefault(v, []).append(k)
        all_hashes.append(uniq)
    idx.ngram_hashes = np.unique(np.concatenate(all_hashes)) if all_hashes else np.zeros(0, np.uint64)
    if statements:
        idx.statements = StatementIndex(statements, params.min_statement_words)
    idx.build_seconds = time.perf_counter() - t0
    return idx


def shingles(text: str, n: int) -> set[bytes]:
    """Word n-gram shingles (``n`` words), as bytes for MinHash."""
    toks = words(text)
    if len(toks) < n:
        return {" ".join(toks).encode()} if toks else set()
    return {" ".join(toks[i : i + n]).encode() for i in range(len(toks) - n + 1)}


@lru_cache(maxsize=4)
def _template(num_perm: int, seed: int) -> Any:
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=seed)


def minhash_of(shingle_set: set[bytes], num_perm: int, seed: int) -> Any:
    """A datasketch MinHash of a shingle set (permutations made once per setting, not per document)."""
    from datasketch import MinHash

    t = _template(num_perm, seed)
    m = MinHash(num_perm=num_perm, seed=seed, permutations=t.permutations, scheme=t.scheme)
    if shingle_set:
        m.update_batch(list(shingle_set))
    return m


def ensure_minhash(idx: BenchmarkIndex) -> None:
    """Build the MinHash LSH over items (word 5-gram shingles) on first use."""
    if idx.minhash_lsh is not None:
        return
    try:
        from datasketch import MinHashLSH
    except ImportError:
        raise HarnessError("the minhash method needs datasketch: pip install datasketch") from None
    p = idx.params
    lsh = MinHashLSH(threshold=p.minhash_threshold, num_perm=p.minhash_perm)
    for k, it in enumerate(idx.items):
        if part_kinds.base(it.part) not in part_kinds.WHOLE_PARTS and len(words(it.text)) < p.ngram_min_tokens:
            continue  # a short part: near-duplicates of a 12-word statement are everyday phrasings
        sh = shingles(it.text, p.shingle)
        if len(sh) >= 3:  # a handful of words is no basis for near-duplicate claims
            lsh.insert(k, minhash_of(sh, p.minhash_perm, p.seed))
    idx.minhash_lsh = lsh


def cache_key(datasets: dict[str, dict[str, str]], params: IndexParams) -> str:
    """What the cached index depends on: benchmark dataset hashes and the parameters."""
    doc = {"v": INDEX_VERSION, "datasets": datasets, "params": params.__dict__}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def load_or_build(benchmarks: list[str], data_dir: str | Path | None, params: IndexParams,
                  cache_dir: Path | None, skipped: dict[str, str] | None = None) -> tuple[BenchmarkIndex, bool]:  # fmt: skip
    """The index for these benchmarks, from the cache when it was built before; returns (index, from_cache)."""
    items, datasets = collect_items(benchmarks, data_dir, skipped)
    if not items:
        raise HarnessError(f"the benchmarks {', '.join(benchmarks)} gave no reference items")
    path = cache_dir / f"decontam-index-{cache_key(datasets, params)}.pkl" if cache_dir else None
    if path is not None and path.exists():
        try:
            with path.open("rb") as f:
                idx = pickle.load(f)  # our own cache file, written below
            if isinstance(idx, BenchmarkIndex):
                return idx, True
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt
            pass
    idx = build_index(items, datasets, params)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            pickle.dump(idx, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return idx, False
