"""Stage 3: near-deduplication of seeds, and the reusable fast near-duplicate finder.

:func:`near_duplicates` groups texts whose word ``shingle``-gram sets have a Jaccard similarity of at least
``threshold``.  It is MinHash LSH, computed for a whole corpus at once with numpy instead of one
``datasketch.MinHash`` per document:

1. Tokens are runs of ASCII letters, digits, ``_`` and non-ASCII characters, ASCII-lowercased (token edges
   come from ``bytes.lower``/``bytes.translate`` over the concatenated corpus).  Tokens are hashed eight bytes
   at a time and shingles by combining their tokens' hashes, so no Python code runs per token.
2. Texts with the same token sequence are exact duplicates (Jaccard 1) and are grouped by a fingerprint
   first; texts with fewer than ``shingle`` tokens have no shingles and are only ever grouped that way (kept,
   deduplicated exactly by their normalised text, never dropped).
3. Signatures are one-permutation MinHash (one hash per shingle, split into ``num_perm`` bins, the minimum per
   bin; Li, Owen & Zhang 2012) with empty bins filled by rotation (Shrivastava & Li 2014): the cost is one
   pass over the shingles instead of ``num_perm``, with the same collision probability (the Jaccard).
4. LSH bands of ``rows`` bins are hashed and grouped by sorting.  The band shape is chosen for high recall at
   the threshold (32 x 4 for 0.5 and 128 bins; datasketch picks 25 x 5), because step 5 removes every
   false candidate.
5. Candidate pairs are confirmed with their exact Jaccard over the shingle-hash sets (vectorised
   ``searchsorted`` over per-document sorted sets), in rounds, most band agreements first; a candidate whose
   texts are already in one cluster is skipped, since it cannot change the clusters.  Clusters are the
   connected components of confirmed pairs and exact groups (vectorised union-find).

So no cluster is joined by a pair below the threshold; misses are pairs whose signatures share no band.

The stage keeps one seed per cluster (the first by key, except that a seed kept by an earlier run stays
kept), records the others in ``dedup.removed.jsonl`` with the key they duplicate, and reports the cluster
size histogram in ``funnel.extra``.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generation.core import Context, Funnel, StageFiles, stage_input
from harness.errors import HarnessError

STAGE = "dedup"

_U64 = np.uint64
_EMPTY = np.uint32(0xFFFFFFFF)
# Odd 64-bit multipliers: arithmetic wraps mod 2**64, where odd numbers are invertible.
_A = 0x9E3779B97F4A7C15  # per token, within a shingle or a document fingerprint
_ROT = np.uint32(0x9E3779B1)  # densification offset per bin of distance
#: Bytes of text hashed per step: keeps the work arrays in cache-friendly sizes and memory bounded.
CHUNK_BYTES = 1 << 20
#: Shingles per slice of the signature computation (same reason).
SIGNATURE_SLICE = 1 << 18
#: Candidate pairs verified per round.
VERIFY_ROUND = 4096
#: Within one LSH bucket every document is paired with at most this many neighbours (in sorted order), so a
#: bucket of thousands of near-identical texts costs O(n) pairs; components still connect along the chain.
MAX_BUCKET_NEIGHBOURS = 64

# bytes.translate table: 1 for a token byte (ASCII letter, digit, ``_``, any byte of a non-ASCII character)
_WORD_TABLE = bytes(1 if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 95 or c >= 128) else 0
                    for c in range(256))  # fmt: skip
# the low k bytes of a little-endian 64-bit word, k = 0..8
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: every input bit reaches every output bit (for bins and bands)."""
    x ^= x >> _U64(30)
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


class _Powers:
    """``base**i`` and ``base**-i`` mod 2**64 for i < n, grown on demand and reused across calls."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.inv = pow(base, -1, 1 << 64)
        self.tables = (np.ones(1, np.uint64), np.ones(1, np.uint64))  # replaced whole: safe to read from threads

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        pw, ipw = self.tables
        if len(pw) < n:
            size = max(n, 2 * len(pw))
            pw = np.full(size, self.base, np.uint64)
            pw[0] = 1
            np.cumprod(pw, out=pw)
            ipw = np.full(size, self.inv, np.uint64)
            ipw[0] = 1
            np.cumprod(ipw, out=ipw)
            self.tables = (pw, ipw)
        return pw[:n], ipw[:n]


_TOKEN_POW = _Powers(_A)


@dataclass
class _Hashed:
    """Per-document hashes of a corpus."""

    tokens: np.ndarray  # token count per document
    fingerprint: np.ndarray  # uint64 hash of the token sequence
    shingles: np.ndarray  # uint64 shingle hashes, documents in order
    offsets: np.ndarray  # document d's shingles are shingles[offsets[d]:offsets[d + 1]]


def _token_hashes(low: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit hash per token, read eight bytes at a time (tokens are short: most take one step)."""
    # every byte offset as an unaligned little-endian uint64 (padding keeps the last ones in bounds)
    padded = low + bytes(8)
    words = np.ndarray(shape=(len(low),), dtype="<u8", buffer=padded, strides=(1,))
    h = lengths.astype(np.uint64) * _U64(0xD6E8FEB86659FD93)
    h *= _U64(_A)
    h += words[starts] & _BYTE_MASKS[np.minimum(lengths, 8)]
    _mix(h)
    # the few tokens longer than eight bytes take further steps, each on fewer of them
    active = np.flatnonzero(lengths > 8)
    step = 1
    while len(active):
        rest = lengths[active] - 8 * step
        block = words[starts[active] + 8 * step] & _BYTE_MASKS[np.minimum(rest, 8)]
        h[active] = _mix(h[active] * _U64(_A) + block)
        active = active[rest > 8]
        step += 1
    return h


def _hash_chunk(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # a newline after each text: a non-word byte, so no token spans two documents
    enc = [t.encode("utf-8", "surrogatepass") for t in texts]
    sizes = np.fromiter((len(e) for e in enc), np.int64, len(enc)) + 1
    doc_start = np.cumsum(sizes) - sizes
    low = b"\n".join(enc).lower() + b"\n"  # bytes.lower() changes ASCII letters only, in C
    word = np.frombuffer(low.translate(_WORD_TABLE), np.int8)
    # token edges: where the byte class changes (the text ends with a non-word byte, so edges pair up)
    edge = np.empty(len(word), bool)
    edge[0] = word[0]
    np.not_equal(word[1:], word[:-1], out=edge[1:])
    change = np.flatnonzero(edge)
    starts, ends = change[0::2], change[1::2]
    tok = _token_hashes(low, starts, ends - starts)
    first = np.searchsorted(starts, doc_start)  # each document's first token
    counts = np.diff(np.append(first, len(starts)))
    tok_doc = np.repeat(np.arange(len(texts)), counts)
    # fingerprint of each document's whole token sequence, again from prefix sums
    tpw, tipw = _TOKEN_POW.get(len(tok) + 1)
    tprefix = np.zeros(len(tok) + 1, np.uint64)
    np.multiply(tok, tpw[: len(tok)], out=tprefix[1:])
    np.cumsum(tprefix[1:], out=tprefix[1:])
    tend = np.cumsum(counts)
    tstart = tend - counts
    fp = (tprefix[tend] - tprefix[tstart]) * tipw[tstart]
    fp ^= counts.astype(np.uint64) * _U64(0xD6E8FEB86659FD93)
    _mix(fp)
    # shingles: n consecutive tokens of one document
    m = len(tok) - n + 1
    if m > 0:
        valid = tok_doc[: m] == tok_doc[n - 1 :]
        sh = tok[:m].copy()
        for k in range(1, n):
            sh *= _U64(_A)
            sh += tok[k : m + k]
        sh = _mix(sh[valid])
    else:
        sh = np.zeros(0, np.uint64)
    per_doc = np.maximum(counts - n + 1, 0)
    return counts, fp, sh, per_doc


def hash_corpus(texts: list[str], n: int) -> _Hashed:
    """Token counts, sequence fingerprints and shingle hashes of every text (chunked, vectorised)."""
    if n < 1:
        raise HarnessError(f"shingle size must be at least 1, got {n}")
    spans = []
    i = 0
    while i < len(texts):
        j, size = i, 0
        while j < len(texts) and (j == i or size < CHUNK_BYTES):
            size += len(texts[j]) + 1
            j += 1
        spans.append((i, j))
        i = j
    parts = [_hash_chunk(texts[a:b], n) for a, b in spans]
    counts = [p[0] for p in parts]
    fps = [p[1] for p in parts]
    shs = [p[2] for p in parts]
    per = [p[3] for p in parts]
    if not texts:
        return _Hashed(np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(1, np.int64))
    per_doc = np.concatenate(per)
    offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    return _Hashed(np.concatenate(counts), np.concatenate(fps), np.concatenate(shs), offsets)


def oph_signatures(shingles: np.ndarray, offsets: np.ndarray, docs: np.ndarray, num_perm: int) -> np.ndarray:
    """Densified one-permutation MinHash signatures (``len(docs)`` x ``num_perm``, uint32) of the given docs.

    Each document must have at least one shingle.  Documents are taken in slices of about
    ``SIGNATURE_SLICE`` shingles, so the temporaries stay small (cache-sized, and reused by the allocator).
    """
    sig = np.empty((len(docs), num_perm), np.uint32)
    lengths = offsets[docs + 1] - offsets[docs]
    ends = np.cumsum(lengths)
    start = 0
    while start < len(docs):
        stop = max(int(np.searchsorted(ends, ends[start] - lengths[start] + SIGNATURE_SLICE, "right")), start + 1)
        sig[start:stop] = _oph_slice(shingles, offsets[docs[start:stop]], lengths[start:stop], num_perm)
        start = stop
    return sig


def _oph_slice(shingles: np.ndarray, starts: np.ndarray, lengths: np.ndarray, k: int) -> np.ndarray:
    n = len(starts)
    sh = shingles[_ragged(starts, lengths)]
    # the high 32 bits pick the bin (multiply-shift onto [0, k)), the low 32 bits are the value
    flat = ((sh >> _U64(32)) * _U64(k)) >> _U64(32)
    flat += np.repeat(np.arange(0, n * k, k, dtype=np.uint64), lengths)
    sig = np.full(n * k, _EMPTY, np.uint32)
    np.minimum.at(sig, flat.astype(np.intp), sh.astype(np.uint32))  # astype keeps the low 32 bits
    empty = sig == _EMPTY
    if empty.any():
        # rotation densification: an empty bin takes the nearest non-empty bin to its left in its row (else,
        # wrapping around, the row's last one), offset by the distance, so two documents fill a bin alike
        # exactly when their neighbourhoods agree.  Done on the flat array: one running maximum, no row loops.
        last = np.arange(n * k, dtype=np.int64)
        last[empty] = -1
        np.maximum.accumulate(last, out=last)
        row_last = last[k - 1 :: k]
        e = np.flatnonzero(empty)
        row = e // k
        src = last[e]
        wrap = src < row * k
        src[wrap] = row_last[row[wrap]]
        sig[e] = sig[src] + ((e - src) % k).astype(np.uint32) * _ROT
    return sig.reshape(n, k)


def _ragged(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Indices ``starts[i] + 0 .. lengths[i] - 1`` for every i, concatenated."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    seg = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total) - seg)


def band_shape(threshold: float, num_perm: int, recall: float = 0.85) -> tuple[int, int]:
    """``(bands, rows)``: the most rows per band that still finds a pair at the threshold with ``recall``.

    More rows mean fewer false candidates; exact confirmation removes them anyway, so recall comes first.
    """
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if b < 1:
            break
        if 1 - (1 - threshold**r) ** b >= recall:
            best = (b, r)
    return best


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (band, signature row): the band's ``rows`` bins combined (``bands`` x ``len(sig)``)."""
    n = len(sig)
    cols = np.ascontiguousarray(sig[:, : bands * rows].T).reshape(bands, rows, n)
    keys = np.zeros((bands, n), np.uint64)
    for c in range(rows):
        keys *= _U64(_A)
        keys += cols[:, c, :]
    return _mix(keys)


def lsh_candidates(sig: np.ndarray, bands: int, rows: int, neighbours: int = MAX_BUCKET_NEIGHBOURS,
                   keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Pairs ``(i, j)``, ``i < j``, of signature rows that agree on all ``rows`` bins of some band, and for each
    pair the number of bands it agrees on (a free similarity ranking).

    A bucket of more than ``neighbours + 1`` rows yields each row's next ``neighbours`` (in row order), not
    every pair: enough to connect the bucket, at a cost linear in its size.
    """
    n = len(sig)
    keys = band_keys(sig, bands, rows) if keys is None else keys
    order = np.argsort(keys, axis=1, kind="stable")  # ties by document: the same neighbour windows per band
    ks = np.take_along_axis(keys, order, axis=1)
    # a pair code lo * n + hi: 32 bits sort faster than 64 when they suffice
    code_t = np.uint32 if n * n < 2**32 else np.int64
    found = []
    # equal keys sit next to each other once sorted; most documents share no bucket in most bands, so keep only
    # the (band, document) slots whose bucket has company, then pair each with the next ``neighbours`` of its run
    if n < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    company = np.zeros((bands, n), bool)
    first = ks[:, 1:] == ks[:, :-1]
    company[:, 1:] |= first
    company[:, :-1] |= first
    slots = np.flatnonzero(company)
    kc, oc, bc = ks.ravel()[slots], order.ravel()[slots], slots // n
    for d in range(1, min(neighbours, n - 1) + 1):
        same = (kc[d:] == kc[:-d]) & (bc[d:] == bc[:-d])
        if not same.any():
            break
        u, v = oc[:-d][same].astype(code_t), oc[d:][same].astype(code_t)
        found.append(np.minimum(u, v) * code_t(n) + np.maximum(u, v))
    if not found:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    codes, hits = np.unique(np.concatenate(found), return_counts=True)
    codes = codes.astype(np.int64)
    return np.stack([codes // n, codes % n], axis=1), hits


class ShingleSets:
    """Sorted, de-duplicated shingle-hash sets of chosen documents, built once, for exact Jaccard queries."""

    def __init__(self, shingles: np.ndarray, offsets: np.ndarray, docs: np.ndarray) -> None:
        self.docs = np.unique(docs)
        lengths = offsets[self.docs + 1] - offsets[self.docs]
        idx = _ragged(offsets[self.docs], lengths)
        # (local doc id, the hash's top bits) in one sortable integer: with 10**6 documents 44 hash bits remain,
        # and 2**-44 collision odds are far below anything a Jaccard of a few hundred shingles can show
        self.shift = _U64(64 - max(1, len(self.docs).bit_length()))
        keys = np.repeat(np.arange(len(self.docs), dtype=np.uint64), lengths) << self.shift
        keys |= shingles[idx] >> (_U64(64) - self.shift)
        keys.sort()
        keep = np.ones(len(keys), bool)
        keep[1:] = keys[1:] != keys[:-1]
        self.keys = keys[keep]
        self.sizes = np.bincount((self.keys >> self.shift).astype(np.int64), minlength=len(self.docs))
        self.starts = np.cumsum(self.sizes) - self.sizes

    def jaccard(self, pairs: np.ndarray, at_least: float = 0.0) -> np.ndarray:
        """Exact Jaccard of each pair of (global) document ids; pairs that cannot reach ``at_least`` get 0."""
        if len(pairs) == 0:
            return np.zeros(0)
        local = np.searchsorted(self.docs, pairs)
        a, b = local[:, 0], local[:, 1]
        swap = self.sizes[a] > self.sizes[b]
        small, big = np.where(swap, b, a), np.where(swap, a, b)
        # J <= small / big: a size gap alone can rule a pair out
        reachable = self.sizes[small] >= at_least * self.sizes[big]
        qlen = np.where(reachable, self.sizes[small], 0)
        # look each of the smaller set's hashes up in the bigger set (its doc id in the high bits)
        q = self.keys[_ragged(self.starts[small], qlen)] & ((_U64(1) << self.shift) - _U64(1))
        q |= np.repeat(big.astype(np.uint64), qlen) << self.shift
        # search only the bigger sets' keys: a smaller, cache-resident haystack (still sorted: ids ascend)
        bigs = np.unique(big[qlen > 0])
        hay = self.keys[_ragged(self.starts[bigs], self.sizes[bigs])] if len(bigs) else self.keys[:1]
        pos = np.minimum(np.searchsorted(hay, q), len(hay) - 1)
        hit = (hay[pos] == q).astype(np.int64)
        # per-pair sums over the query segments (cumsum differences: segments may be empty)
        csum = np.concatenate([[0], np.cumsum(hit)])
        ends = np.cumsum(qlen)
        inter = csum[ends] - csum[ends - qlen]
        union = self.sizes[small] + self.sizes[big] - inter
        return np.where(reachable, inter / np.maximum(union, 1), 0.0)


def exact_jaccard(shingles: np.ndarray, offsets: np.ndarray, pairs: np.ndarray,
                  at_least: float = 0.0) -> np.ndarray:  # fmt: skip
    """Jaccard similarity of the shingle-hash sets of each document pair (vectorised).

    Pairs whose set sizes alone rule out reaching ``at_least`` (``J <= small / big``) are not counted: 0.
    """
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return np.zeros(0)
    return ShingleSets(shingles, offsets, pairs.ravel()).jaccard(pairs, at_least)


@dataclass
class NearDuplicates:
    """What :func:`find_near_duplicates` found."""

    clusters: list[list[int]]  # a partition of range(len(texts)); each cluster ascending, clusters by first
    rep: np.ndarray  # each text's exact-duplicate representative (the first text with its token sequence)
    short: np.ndarray  # bool: fewer tokens than the shingle size (grouped only exactly)
    pairs: np.ndarray  # candidate pairs of representatives verified at >= threshold (i < j): a spanning set
    jaccard: np.ndarray  # their exact Jaccard similarities
    threshold: float = 0.5
    stats: dict[str, Any] = field(default_factory=dict)
    _row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)  # text -> key column
    _keys: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint64), repr=False)  # band keys
    _hashes: _Hashed | None = field(default=None, repr=False)

    def duplicates(self, pairs: np.ndarray) -> np.ndarray:
        """For each text pair ``(i, j)``: are they duplicates -- the same words, or an LSH candidate pair (one
        shared band bucket) whose exact Jaccard reaches the threshold?  Computed for the pairs asked, so the
        answer depends neither on the order the clustering verified pairs in nor on its bucket windows."""
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        a, b = self.rep[pairs[:, 0]], self.rep[pairs[:, 1]]
        out = a == b
        if len(self._row) == 0 or self._hashes is None:
            return out
        ra, rb = self._row[a], self._row[b]
        open_ = ~out & (ra >= 0) & (rb >= 0)
        which = np.flatnonzero(open_)
        if len(which):
            shared = (self._keys[:, ra[which]] == self._keys[:, rb[which]]).any(axis=0)
            which = which[shared]
        if len(which):
            todo = np.stack([np.minimum(a, b)[which], np.maximum(a, b)[which]], axis=1)
            j = exact_jaccard(self._hashes.shingles, self._hashes.offsets, todo, self.threshold)
            out[which] = j >= self.threshold
        return out

    def duplicate(self, i: int, j: int) -> bool:
        """Whether texts ``i`` and ``j`` are duplicates of each other (see :meth:`duplicates`), not via a chain."""
        return bool(self.duplicates(np.array([[i, j]]))[0])


def _roots(parent: np.ndarray) -> np.ndarray:
    """Every element's root, by pointer jumping (vectorised path compression)."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def _link(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union the edges ``a[k] -- b[k]``; roots stay the smallest index of their component."""
    parent = _roots(parent)
    while len(a):
        ra, rb = parent[a], parent[b]
        cross = ra != rb
        if not cross.any():
            break
        a, b, ra, rb = a[cross], b[cross], ra[cross], rb[cross]
        # hook the larger root under the smaller (several edges on one root: the smallest wins, the rest retry)
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        parent = _roots(parent)
    return parent


def find_near_duplicates(texts: list[str], threshold: float = 0.5, num_perm: int = 128, shingle: int = 5,
                         recall: float = 0.85) -> NearDuplicates:  # fmt: skip
    """Near-duplicate clusters of ``texts`` (word ``shingle``-grams, Jaccard >= ``threshold``), with details.

    Clusters are the connected components of exact-duplicate groups and verified candidate pairs.  Candidates
    are verified in rounds, most band agreements first, and a candidate whose two texts are already in one
    cluster is skipped: it could not change the clusters (which are exactly those of verifying every
    candidate), and near-duplicate families of hundreds of texts cost a spanning set of checks instead of
    every pair.  :meth:`NearDuplicates.duplicates` answers for any pair.
    """
    if not 0 < threshold <= 1:
        raise HarnessError(f"dedup threshold must be in (0, 1], got {threshold}")
    if num_perm < 1:
        raise HarnessError(f"num_perm must be at least 1, got {num_perm}")
    t0 = time.perf_counter()
    n = len(texts)
    h = hash_corpus(texts, shingle)
    t_hash = time.perf_counter()
    # exact groups: same token sequence (texts without any token: same stripped text)
    fp = h.fingerprint.copy()
    for i in np.flatnonzero(h.tokens == 0):
        fp[i] = int.from_bytes(hashlib.blake2b(texts[i].strip().encode("utf-8", "surrogatepass"),
                                               digest_size=8).digest(), "little")  # fmt: skip
    _, first, inverse = np.unique(fp, return_index=True, return_inverse=True)
    rep = first[inverse.reshape(-1)].astype(np.int64)
    short = h.tokens < shingle
    reps = np.flatnonzero((rep == np.arange(n)) & ~short)
    bands, rows = band_shape(threshold, num_perm, recall)
    cand, hits = np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    keys = np.zeros((bands, 0), np.uint64)
    if len(reps) > 1:
        sig = oph_signatures(h.shingles, h.offsets, reps, num_perm)
        t_sig = time.perf_counter()
        keys = band_keys(sig, bands, rows)
        local, hits = lsh_candidates(sig, bands, rows, keys=keys)
        cand = reps[local]
    else:
        t_sig = time.perf_counter()
    t_lsh = time.perf_counter()
    parent = rep.copy()
    order = np.argsort(-hits, kind="stable")
    sets = ShingleSets(h.shingles, h.offsets, cand.ravel())
    kept_pairs, kept_j = [], []
    verified = 0
    # small rounds: the more unions happen between rounds, the more later candidates are skipped
    for start in range(0, len(order), VERIFY_ROUND):
        batch = cand[order[start : start + VERIFY_ROUND]]
        parent = _roots(parent)
        todo = batch[parent[batch[:, 0]] != parent[batch[:, 1]]]
        if not len(todo):
            continue
        j = sets.jaccard(todo, threshold)
        verified += len(todo)
        ok = j >= threshold
        kept_pairs.append(todo[ok])
        kept_j.append(j[ok])
        parent = _link(parent, todo[ok, 0], todo[ok, 1])
    parent = _roots(parent)
    pairs = np.concatenate(kept_pairs) if kept_pairs else np.zeros((0, 2), np.int64)
    jac = np.concatenate(kept_j) if kept_j else np.zeros(0)
    t_verify = time.perf_counter()
    by_root = np.argsort(parent, kind="stable")  # roots are each cluster's first text: clusters come in order
    bounds = [0, *(np.flatnonzero(np.diff(parent[by_root])) + 1).tolist(), n]
    flat = by_root.tolist()
    clusters = [flat[a:b] for a, b in zip(bounds, bounds[1:])] if n else []
    row = np.full(n, -1, np.int64)
    row[reps] = np.arange(len(reps))
    stats = {"texts": n, "short": int(short.sum()), "exact_duplicates": int(n - len(first)),
             "candidates": int(len(cand)), "verified": verified, "confirmed": int(len(pairs)), "bands": bands,
             "rows": rows, "seconds": {"hash": round(t_hash - t0, 4), "signatures": round(t_sig - t_hash, 4),
                                       "lsh": round(t_lsh - t_sig, 4), "verify": round(t_verify - t_lsh, 4),
                                       "total": round(time.perf_counter() - t0, 4)}}  # fmt: skip
    return NearDuplicates(clusters, rep, short, pairs, jac, threshold, stats, row, keys, h)


def near_duplicates(texts: list[str], threshold: float = 0.5, num_perm: int = 128,
                    shingle: int = 5) -> list[list[int]]:  # fmt: skip
    """Clusters of near-duplicate texts: a partition of ``range(len(texts))``, each cluster ascending.

    Keeping ``cluster[0]`` of each keeps the earliest text of every group.  Texts with fewer than
    ``shingle`` words are grouped only with texts of the same normalised words (never dropped as too short).
    """
    return find_near_duplicates(texts, threshold, num_perm, shingle).clusters


# ---------------------------------------------------------------------------------------------------- stage


def run(ctx: Context) -> Funnel:
    """Keep one seed per near-duplicate cluster of the filtered seeds (resumable: done keys are skipped)."""
    cfg = ctx.config.dedup
    rows = stage_input(ctx.workdir, "filter")
    files = StageFiles(ctx.workdir, STAGE)
    kept_before = {r["key"] for r in files.rows()}
    done = files.done_keys()
    t0 = time.perf_counter()
    by_key: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_key.setdefault(r["key"], r)
    # seeds an earlier run kept come first, so they stay the representatives; then key order (deterministic)
    order = sorted(by_key, key=lambda k: (k not in kept_before, k))
    texts = [by_key[k]["seed"] for k in order]
    found = find_near_duplicates(texts, cfg.threshold, cfg.num_perm, cfg.shingle)
    keep_rows: list[dict[str, Any]] = []
    removed: list[tuple[str, str, dict[str, Any]]] = []
    skipped = 0
    sizes: Counter[int] = Counter()
    for cluster in found.clusters:
        sizes[len(cluster)] += 1
        head = order[cluster[0]]
        for pos, i in enumerate(cluster):
            key = order[i]
            if key in done:
                skipped += 1
                continue
            if pos == 0:
                keep_rows.append(by_key[key])
            else:
                exact = found.rep[i] == found.rep[cluster[0]]
                removed.append((key, "exact duplicate" if exact else "near duplicate",
                                {"of": head, "name": by_key[key].get("name"), "cluster_size": len(cluster)}))  # fmt: skip
    files.append(sorted(keep_rows, key=lambda r: r["key"]))
    files.remove(removed)
    funnel = Funnel(stage=STAGE, input=len(by_key), skipped_done=skipped)
    funnel.output = len(files.rows())
    funnel.removed = files.removed_counts()
    funnel.seconds = round(time.perf_counter() - t0, 3)
    multi = {str(k): v for k, v in sorted(sizes.items())}
    funnel.extra = {"cluster_sizes": multi, "clusters": len(found.clusters),
                    "largest_cluster": max(sizes) if sizes else 0, "threshold": cfg.threshold,
                    "num_perm": cfg.num_perm, "shingle": cfg.shingle, **found.stats}  # fmt: skip
    if len(rows) != len(by_key):
        funnel.notes.append(f"{len(rows) - len(by_key)} input row(s) repeated a key and were read once")
    if found.stats.get("short"):
        funnel.notes.append(f"{found.stats['short']} seed(s) shorter than {cfg.shingle} words: deduplicated "
                            "exactly by their normalised words")  # fmt: skip
    return funnel
