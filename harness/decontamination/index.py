"""The benchmark index: every reference string of every benchmark, normalised and indexed once.

Built from the benchmarks' ``reference_items()`` (prompts, canonical
solutions, tests, questions, each marked by its part) and cached on disk,
keyed by the benchmarks' dataset hashes and the index parameters, so a
second audit costs only the scan.
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
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError

INDEX_VERSION = 1

#: Strings too common in code to be evidence of contamination (compared after
#: lowercasing and removing whitespace).  Anything shorter than
#: ``min_substring_chars`` non-space characters is ignored as well.
TRIVIAL = tuple(
    re.sub(r"\s+", "", s.lower())
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
_SPACE = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[\W_]+")
# A multiplier for rolling n-gram hashes (odd, 64-bit; arithmetic wraps mod 2**64).
_P = np.uint64(0x9E3779B97F4A7C15)


def squash(text: str) -> str:
    """Lowercase, whitespace removed: what the substring method compares."""
    return _SPACE.sub("", text.lower())


def alnum(text: str) -> str:
    """Lowercase letters and digits only: what GPT-4-style 50-character probes compare."""
    return _NON_ALNUM.sub("", text.lower())


def words(text: str) -> list[str]:
    """Normalised tokens for n-grams and shingles: lowercase word characters."""
    return _WORD.findall(text.lower())


def span_in_original(text: str, norm_start: int, norm_end: int, keep: str) -> tuple[int, int]:
    """Map a span of the normalised text (``keep``: "squash" or "alnum") back to ``text``'s characters."""
    k = 0
    start = end = None
    for i, ch in enumerate(text):
        for low in ch.lower():
            kept = not low.isspace() if keep == "squash" else (low.isalnum())
            if not kept:
                continue
            if k == norm_start and start is None:
                start = i
            k += 1
            if k == norm_end:
                end = i + 1
                return start or 0, end
    return start or 0, len(text)


@dataclass
class RefItem:
    """One reference string: which benchmark, task and part it came from."""

    benchmark: str
    task_id: str
    part: str  # prompt | solution | tests | question | ...
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


@dataclass
class BenchmarkIndex:
    """Indexes over the reference items for each method."""

    params: IndexParams
    items: list[RefItem]
    datasets: dict[str, dict[str, str]]
    #: substring: Aho-Corasick automaton over squashed items -> (length, item ids)
    substring: Any = None
    #: probes: Aho-Corasick over 50-character alnum probes -> (length, item ids)
    probes: Any = None
    #: n-grams: sorted unique hashes, and per hash the items holding it
    ngram_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    ngram_owners: dict[int, list[int]] = field(default_factory=dict)
    ngram_counts: list[int] = field(default_factory=list)
    vocab: dict[str, int] = field(default_factory=dict)
    #: MinHash LSH over word-shingle sets of items (built on first use)
    minhash_lsh: Any = None
    build_seconds: float = 0.0

    def item_label(self, k: int) -> str:
        """``benchmark/task_id/part`` of item ``k``."""
        it = self.items[k]
        return f"{it.benchmark}:{it.task_id}:{it.part}"


def collect_items(benchmarks: list[str], data_dir: str | Path | None) -> tuple[list[RefItem], dict[str, dict[str, str]]]:
    """Reference items of the named benchmarks, and their dataset identities."""
    from harness import benchmark as registry

    items: list[RefItem] = []
    datasets: dict[str, dict[str, str]] = {}
    for name in benchmarks:
        bench = registry.get(name, data_dir=data_dir)
        info = bench.dataset()
        datasets[name] = {"name": info.name, "version": info.version, "hash": info.hash}
        for tid, part, text in bench.reference_items():
            if isinstance(text, str) and text.strip():
                items.append(RefItem(name, tid, part, text))
    return items, datasets


def token_ids(text_tokens: list[str], vocab: dict[str, int], grow: bool) -> np.ndarray:
    """Token ids; unknown tokens (not in any reference item) get -1 and can never match."""
    if grow:
        return np.fromiter((vocab.setdefault(t, len(vocab)) for t in text_tokens), np.int64, len(text_tokens))
    get = vocab.get
    return np.fromiter((get(t, -1) for t in text_tokens), np.int64, len(text_tokens))


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
    import ahocorasick

    t0 = time.perf_counter()
    idx = BenchmarkIndex(params, items, datasets)
    auto = ahocorasick.Automaton()
    owners: dict[str, list[int]] = {}
    for k, it in enumerate(items):
        key = squash(it.text)
        if len(key) < params.min_substring_chars or key in TRIVIAL:
            continue
        owners.setdefault(key, []).append(k)
    for key, ks in owners.items():
        auto.add_word(key, (len(key), ks))
    if owners:
        auto.make_automaton()
        idx.substring = auto
    rng = random.Random(params.seed)
    probes = ahocorasick.Automaton()
    powners: dict[str, list[int]] = {}
    for k, it in enumerate(items):
        norm = alnum(it.text)
        if len(norm) < params.probe_chars:
            continue
        starts = {rng.randrange(0, len(norm) - params.probe_chars + 1) for _ in range(params.probes_per_item)}
        for s in sorted(starts):
            powners.setdefault(norm[s : s + params.probe_chars], []).append(k)
    for key, ks in powners.items():
        probes.add_word(key, (len(key), sorted(set(ks))))
    if powners:
        probes.make_automaton()
        idx.probes = probes
    all_hashes = []
    idx.ngram_counts = [0] * len(items)
    for k, it in enumerate(items):
        ids = token_ids(words(it.text), idx.vocab, grow=True)
        h, _ = rolling_hashes(ids, params.ngram)
        uniq = np.unique(h)
        idx.ngram_counts[k] = len(uniq)
        for v in uniq.tolist():
            idx.ngram_owners.setdefault(v, []).append(k)
        all_hashes.append(uniq)
    idx.ngram_hashes = np.unique(np.concatenate(all_hashes)) if all_hashes else np.zeros(0, np.uint64)
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
        sh = shingles(it.text, p.shingle)
        if len(sh) >= 3:  # a handful of words is no basis for near-duplicate claims
            lsh.insert(k, minhash_of(sh, p.minhash_perm, p.seed))
    idx.minhash_lsh = lsh


def cache_key(datasets: dict[str, dict[str, str]], params: IndexParams) -> str:
    """What the cached index depends on: benchmark dataset hashes and the parameters."""
    doc = {"v": INDEX_VERSION, "datasets": datasets, "params": params.__dict__}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def load_or_build(benchmarks: list[str], data_dir: str | Path | None, params: IndexParams,
                  cache_dir: Path | None) -> tuple[BenchmarkIndex, bool]:  # fmt: skip
    """The index for these benchmarks, from the cache when it was built before; returns (index, from_cache)."""
    items, datasets = collect_items(benchmarks, data_dir)
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
