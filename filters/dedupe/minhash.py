"""MinHash signatures and LSH band keys over word n-gram shingles (Broder 1997; FineWeb's 14 x 8 bands).

Each word is hashed once with xxhash, n-grams are combined with vectorized arithmetic, and the
permutations are universal hashes `(a * x + b) mod (2^31 - 1)` evaluated for a whole batch of
documents as one numpy product, so the per-document Python work is the word loop only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xxhash

from filters.dedupe.config import MinHashConfig
from filters.dedupe.normalize import words

MERSENNE_PRIME = np.uint64((1 << 31) - 1)
# Shingles hashed per block: keeps the (shingles x permutations) uint64 matrix near 450 KB, inside the
# CPU cache; a 64K-shingle block (58 MB) made the same arithmetic 5x slower.
_BLOCK_SHINGLES = 512
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
        toks = words(normalized)
        if not toks:
            return np.empty(0, dtype=np.uint64)
        word_hashes = np.fromiter(
            (xxhash.xxh3_64_intdigest(w.encode("utf-8", "surrogatepass")) for w in toks),
            dtype=np.uint64,
            count=len(toks),
        )
        n = min(self.scheme.ngram, len(toks))
        count = len(toks) - n + 1
        combined = np.zeros(count, dtype=np.uint64)
        for i in range(n):
            combined += word_hashes[i : i + count] * self._position_mult[i]
        return _fmix64(combined) >> np.uint64(32)

    def signatures(self, shingle_sets: list[np.ndarray]) -> np.ndarray:
        """(documents x permutations) uint32 minima; a document without shingles gets all 2^32-1."""
        out = np.full((len(shingle_sets), self.scheme.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        block: list[int] = []
        block_size = 0
        for i, sh in enumerate(shingle_sets):
            if len(sh) > _BLOCK_SHINGLES:
                for start in range(0, len(sh), _BLOCK_SHINGLES):
                    np.minimum(
                        out[i], self._permuted(sh[start : start + _BLOCK_SHINGLES]).min(axis=0), out=out[i]
                    )
                continue
            if len(sh) == 0:
                continue
            if block_size + len(sh) > _BLOCK_SHINGLES:
                self._fill_block(out, block, shingle_sets)
                block, block_size = [], 0
            block.append(i)
            block_size += len(sh)
        if block:
            self._fill_block(out, block, shingle_sets)
        return out

    def _fill_block(self, out: np.ndarray, block: list[int], shingle_sets: list[np.ndarray]) -> None:
        lengths = [len(shingle_sets[i]) for i in block]
        permuted = self._permuted(np.concatenate([shingle_sets[i] for i in block]))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        out[block] = np.minimum.reduceat(permuted, starts, axis=0)

    def _permuted(self, shingles: np.ndarray) -> np.ndarray:
        # x < 2^32 and a, b < 2^31, so a * x + b < 2^63 is exact in uint64; the modulus is two
        # Mersenne folds (y mod 2^31-1 = low 31 bits + high bits) and one conditional subtraction.
        y = shingles[:, None] * self._a[None, :]
        y += self._b[None, :]
        high = y >> _SHIFT31
        y &= MERSENNE_PRIME
        y += high
        np.right_shift(y, _SHIFT31, out=high)
        y &= MERSENNE_PRIME
        y += high
        np.minimum(y, y - MERSENNE_PRIME, out=y)
        return y.astype(np.uint32)

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(documents x bands) uint64 keys: two documents share a key iff a band's rows all agree
        (up to a 2^-64 collision)."""
        rows = signatures.reshape(len(signatures), self.scheme.bands, self.scheme.rows).astype(np.uint64)
        keys = (rows * self._band_mult).sum(axis=2, dtype=np.uint64)
        return _fmix64(keys)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


def exact_jaccard(shingles_a: np.ndarray, shingles_b: np.ndarray) -> float:
    a, b = np.unique(shingles_a), np.unique(shingles_b)
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
