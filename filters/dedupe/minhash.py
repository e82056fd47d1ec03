"""MinHash signatures and LSH band keys over word n-gram shingles (Broder 1997; FineWeb's 14 x 8 bands).

Each word is hashed once with xxhash, n-grams are combined with vectorized arithmetic, and the
permutations are universal hashes `(a * x + b) mod (2^31 - 1)` evaluated for a whole batch of
documents as one numpy product, so the per-document Python work is the word loop only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import xxhash

from filters.dedupe.config import MinHashConfig

MERSENNE_PRIME = np.uint64((1 << 31) - 1)
# Shingles permuted per block: the two (shingles x permutations) uint64 buffers take 460 KB, inside a
# core's L2 cache (1 MB on the AMD EPYC measured); 512-shingle blocks in fresh arrays ran 4x slower
# per element, 64K-shingle blocks (58 MB) 5x slower.
_BLOCK_SHINGLES = 256
_SHIFT31 = np.uint64(31)


def lsh_params_for_threshold(threshold: float, num_perm: int = 112) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm whose candidate probability at `threshold` is
    closest to one half; ties go to more permutations used."""
    best = None
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        candidate = (abs(candidate_probability(threshold, bands, rows) - 0.5), -bands * rows, bands, rows)
        best = min(best, candidate) if best else candidate
    return best[2], best[3]


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair at this Jaccard similarity shares at least one LSH band."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def s_curve(
    bands: int, rows: int, points: tuple[float, ...] = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
) -> dict:
    """The LSH S-curve to report beside a run: its midpoint and the candidate probability at each point."""
    return {
        "bands": bands,
        "rows": rows,
        # Where the candidate probability is one half, and the usual approximation (1/b)^(1/r).
        "midpoint_jaccard": (1 - 0.5 ** (1 / bands)) ** (1 / rows),
        "approx_threshold": (1 / bands) ** (1 / rows),
        "candidate_probability": {p: round(candidate_probability(p, bands, rows), 4) for p in points},
    }


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads every input bit over the output (uint64 wraps)."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB93FE53B85C3)
    h ^= h >> np.uint64(33)
    return h


@dataclass(frozen=True)
class LshScheme:
    ngram: int
    bands: int
    rows: int
    seed_name: str

    @classmethod
    def from_config(cls, cfg: MinHashConfig) -> LshScheme:
        bands, rows = (
            (cfg.bands, cfg.rows)
            if cfg.threshold is None
            else lsh_params_for_threshold(cfg.threshold, cfg.bands * cfg.rows)
        )
        return cls(cfg.ngram, bands, rows, cfg.seed_name)

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


class _PermutationBuffers:
    def __init__(self, rows: int, num_perm: int):
        self.y = np.empty((rows, num_perm), dtype=np.uint64)
        self.high = np.empty((rows, num_perm), dtype=np.uint64)


class MinHasher:
    """Signatures and band keys for one LSH scheme; parameters derive from the scheme's seed name."""

    def __init__(self, scheme: LshScheme):
        self.scheme = scheme
        seed = xxhash.xxh64_intdigest(f"{scheme.seed_name}/{scheme.ngram}/{scheme.num_perm}".encode())
        rng = np.random.default_rng(seed)
        p = int(MERSENNE_PRIME)
        self._a = rng.integers(1, p, size=scheme.num_perm, dtype=np.uint64)
        self._b = rng.integers(0, p, size=scheme.num_perm, dtype=np.uint64)
        # Odd multipliers that give each n-gram position its own weight; also seeds the band keys.
        self._position_mult = rng.integers(0, 1 << 63, size=scheme.ngram, dtype=np.uint64) * 2 + 1
        self._band_mult = rng.integers(0, 1 << 63, size=scheme.rows, dtype=np.uint64) * 2 + 1

    def shingles(self, normalized: str) -> np.ndarray:
        """32-bit hashes of the word n-grams (a text shorter than n is one shingle), uint64 array."""
        return self.batch_shingles([normalized])[0]

    def batch_shingles(self, normalized: list[str]) -> list[np.ndarray]:
        """`shingles` of each text: the n-grams of every text are combined in one vectorized pass over
        the batch's word hashes."""
        # A word's UTF-8 bytes are the bytes between spaces of the text's UTF-8 bytes.
        toks = [text.encode("utf-8", "surrogatepass").split(b" ") if text else [] for text in normalized]
        lengths = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
        total = int(lengths.sum())
        word_hashes = np.fromiter(
            map(xxhash.xxh3_64_intdigest, itertools.chain.from_iterable(toks)), dtype=np.uint64, count=total
        )
        n = self.scheme.ngram
        # Windows of n words starting anywhere; those crossing into the next text are never read.
        count = max(total - n + 1, 0)
        combined = np.zeros(count, dtype=np.uint64)
        for i in range(n):
            combined += word_hashes[i : i + count] * self._position_mult[i]
        windows = _fmix64(combined) >> np.uint64(32)
        starts = np.cumsum(lengths) - lengths
        out = []
        for start, length in zip(starts.tolist(), lengths.tolist()):
            if length >= n:
                out.append(windows[start : start + length - n + 1])
            elif length:
                out.append(self._short_text_shingle(word_hashes[start : start + length]))
            else:
                out.append(np.empty(0, dtype=np.uint64))
        return out

    def _short_text_shingle(self, word_hashes: np.ndarray) -> np.ndarray:
        combined = (word_hashes * self._position_mult[: len(word_hashes)]).sum(dtype=np.uint64, keepdims=True)
        return _fmix64(combined) >> np.uint64(32)

    def signatures(self, shingle_sets: list[np.ndarray]) -> np.ndarray:
        """(documents x permutations) uint32 minima; a document without shingles gets all 2^32-1."""
        out = np.full((len(shingle_sets), self.scheme.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        lengths = np.fromiter(map(len, shingle_sets), dtype=np.int64, count=len(shingle_sets))
        signed = np.flatnonzero(lengths)
        if not len(signed):
            return out
        shingles = np.concatenate([shingle_sets[i] for i in signed.tolist()])
        ends = np.cumsum(lengths[signed])
        starts = ends - lengths[signed]
        # The batch's shingles go through in fixed blocks whatever the documents' lengths; a document
        # split over blocks takes the minimum of its parts.
        block_starts = np.arange(0, len(shingles), _BLOCK_SHINGLES)
        firsts = np.searchsorted(ends, block_starts, side="right").tolist()
        lasts = np.searchsorted(starts, block_starts + _BLOCK_SHINGLES, side="left").tolist()
        buffers = _PermutationBuffers(min(len(shingles), _BLOCK_SHINGLES), self.scheme.num_perm)
        for block_start, first, last in zip(block_starts.tolist(), firsts, lasts):
            permuted = self._permuted(shingles[block_start : block_start + _BLOCK_SHINGLES], buffers)
            segments = np.maximum(starts[first:last], block_start) - block_start
            docs = signed[first:last]
            minima = np.minimum.reduceat(permuted, segments, axis=0)
            out[docs] = np.minimum(out[docs], minima)
        return out

    def _permuted(self, shingles: np.ndarray, buffers: _PermutationBuffers) -> np.ndarray:
        # x < 2^32 and a, b < 2^31, so a * x + b < 2^63 is exact in uint64; the modulus is two
        # Mersenne folds (y mod 2^31-1 = low 31 bits + high bits) and a conditional subtraction.
        # Written into buffers reused across blocks: a fresh (block x permutations) array each time
        # costs more than the arithmetic.
        y, high = buffers.y[: len(shingles)], buffers.high[: len(shingles)]
        np.multiply(shingles[:, None], self._a[None, :], out=y)
        y += self._b[None, :]
        np.right_shift(y, _SHIFT31, out=high)
        y &= MERSENNE_PRIME
        y += high
        np.right_shift(y, _SHIFT31, out=high)
        y &= MERSENNE_PRIME
        y += high
        # Now y <= p + 2, and y >= p (a value of 0 to 2 after the subtraction) comes once in ~2^29:
        # one read-only pass finds out whether the two passes of the subtraction are needed.
        if y.max() >= MERSENNE_PRIME:
            np.subtract(y, MERSENNE_PRIME, out=high)
            np.minimum(y, high, out=y)
        return y

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(documents x bands) uint64 keys: two documents share a key iff a band's rows all agree
        (up to a 2^-64 collision)."""
        rows = signatures.reshape(len(signatures), self.scheme.bands, self.scheme.rows).astype(np.uint64)
        keys = (rows * self._band_mult).sum(axis=2, dtype=np.uint64)
        return _fmix64(keys)


def distinct_shingle_bytes(shingle_sets: list[np.ndarray]) -> list[bytes]:
    """Each set's distinct shingles, sorted, as raw uint32 bytes: one sort of the whole batch, the set's
    index in the high bits, instead of a `np.unique` per set."""
    lengths = np.fromiter(map(len, shingle_sets), dtype=np.int64, count=len(shingle_sets))
    if not lengths.any():
        return [b""] * len(shingle_sets)
    owners = np.repeat(np.arange(len(shingle_sets), dtype=np.uint64), lengths)
    keys = np.concatenate(shingle_sets) | (owners << np.uint64(32))
    keys.sort()
    distinct = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    counts = np.bincount((distinct >> np.uint64(32)).astype(np.int64), minlength=len(shingle_sets)) * 4
    raw = distinct.astype(np.uint32).tobytes()
    ends = np.cumsum(counts)
    return [raw[start:end] for start, end in zip((ends - counts).tolist(), ends.tolist())]


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


def exact_jaccard(shingles_a: np.ndarray, shingles_b: np.ndarray) -> float:
    a, b = np.unique(shingles_a), np.unique(shingles_b)
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
