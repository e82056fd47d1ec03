"""The n-gram index of eval items (GPT-3 / NeMo-Curator style decontamination), built once per machine and
kept under its content hash in the user's cache (copied to an S3 output's `_cache/` for remote workers).

Words become dense ids through the eval vocabulary (a training word outside it cannot be part of any eval
n-gram); an n-gram is a 64-bit hash of its words' hashes. Postings are parallel sorted numpy arrays
(key, item, position in item), so the index is a few flat arrays, not millions of Python objects.
Items keep their word ids so detection can verify a hit along its alignment.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import orjson

from curation import storage
from curation.user_cache import digest_named_file, holds, user_cache_dir
from filters.decontaminate.config import DecontaminateConfig
from filters.decontaminate.evalsets import (
    EvalItem,
    Relocate,
    read_benchmark,
    require_eval_file,
    resolve_benchmarks,
)
from filters.decontaminate.keys import keys_of_words, window_keys
from filters.decontaminate.templates import DEFAULT_TEMPLATE_PATTERNS
from filters.decontaminate.words import chunked_words, normalized_words

FILTER_NAME = "decon_v1"
# Part of the index's content hash: bump when the index layout or hashing changes.
_INDEX_FORMAT = 8
# A Bloom filter of 2^26 bits (8 MiB) probed at two places per key: with 1.9 M keys indexed about 0.3% of
# absent keys pass it (one probe in 2^25 bits let 5% through, and their binary searches over the sorted
# keys, each a cache miss per level, cost more than the rest of screening a document).
_FILTER_LOG2_BITS = 26
# The anchors (a few tens of thousands of keys) get a filter of their own, 128 KiB, that stays in the
# core's L2 cache, where the big one costs a cache miss per key: half the keys of a document are anchors.
_ANCHOR_FILTER_LOG2_BITS = 20
_BIT_MASKS = np.left_shift(np.uint8(1), np.arange(8, dtype=np.uint8))


def _filter_places(keys: np.ndarray, log2_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """A key's two places in a filter of 2^log2_bits bits: its high bits, and bits from its middle (keys.py
    mixes both)."""
    return keys >> np.uint64(64 - log2_bits), _middle_place(keys, log2_bits)


def _middle_place(keys: np.ndarray, log2_bits: int) -> np.ndarray:
    return (keys >> np.uint64(12)) & np.uint64((1 << log2_bits) - 1)


def _bit_filter(keys: np.ndarray, log2_bits: int) -> np.ndarray:
    bitmap = np.zeros(1 << log2_bits, bool)
    for places in _filter_places(keys, log2_bits):
        bitmap[places.astype(np.int64)] = True
    return np.packbits(bitmap, bitorder="little")


def filter_may_contain(bit_filter: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each key may be one the filter was made of (`_bit_filter`); False is certain."""
    log2_bits = (len(bit_filter) * 8).bit_length() - 1
    found = _filter_bit(bit_filter, keys >> np.uint64(64 - log2_bits))
    found[found] = _filter_bit(bit_filter, _middle_place(keys[found], log2_bits))
    return found


def _filter_bit(bit_filter: np.ndarray, places: np.ndarray) -> np.ndarray:
    places = places.view(np.int64)  # under 2^63: a free view, where numpy would convert uint64 indices
    return np.take(bit_filter, places >> 3) & np.take(_BIT_MASKS, places & 7) != 0


@dataclasses.dataclass(frozen=True, eq=False)
class DecontaminationIndex:
    ngram: int
    min_item_words: int
    benchmarks: list[str]
    # Items of each benchmark that were indexed, and those too short to be evidence.
    items_indexed: dict[str, int]
    items_too_short: dict[str, int]
    vocab: dict[str, int]  # word -> id, 1-based; 0 is a word no eval item contains
    word_hashes: np.ndarray  # uint64 per id
    ngram_keys: np.ndarray  # uint64, sorted
    ngram_items: np.ndarray  # uint32, item of each key
    ngram_positions: np.ndarray  # uint32, word position of the n-gram in its item
    # Units (items, standalone fields) under 2n - 1 words, where one changed word can break every n-gram,
    # are also found by their first and last `anchor_words` words; units under n words are found only
    # this way (and must then match whole). A document is thus hashed at two window lengths only.
    anchor_keys: np.ndarray  # uint64, sorted
    anchor_items: np.ndarray  # uint32
    anchor_positions: np.ndarray  # uint32, word position of the anchor in its item
    item_words: np.ndarray  # uint32 word ids of every item, concatenated
    item_offsets: np.ndarray  # int64, item i is item_words[item_offsets[i]:item_offsets[i + 1]]
    # Standalone text fields of an item that count on their own: (start, end) word ranges per item.
    field_bounds: np.ndarray  # uint32 (k, 2)
    field_offsets: (
        np.ndarray
    )  # int64, item i's fields are field_bounds[field_offsets[i]:field_offsets[i + 1]]
    item_benchmarks: np.ndarray  # uint16
    item_ids: list[str]

    @property
    def anchor_words(self) -> int:
        return anchor_length(self.ngram, self.min_item_words)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the vocabulary dict is measured separately by bench scripts)."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    def without_keys(self, common_keys: np.ndarray) -> DecontaminationIndex:
        """The index with the given n-gram keys (too common in the training data) no longer evidence."""
        if len(common_keys) == 0:
            return self
        keep = ~np.isin(self.ngram_keys, common_keys, assume_unique=False)
        keep_anchor = ~np.isin(self.anchor_keys, common_keys)
        return dataclasses.replace(
            self,
            ngram_keys=self.ngram_keys[keep],
            ngram_items=self.ngram_items[keep],
            ngram_positions=self.ngram_positions[keep],
            anchor_keys=self.anchor_keys[keep_anchor],
            anchor_items=self.anchor_items[keep_anchor],
            anchor_positions=self.anchor_positions[keep_anchor],
        )

    def word_ids(self, words: list[str]) -> np.ndarray:
        return np.fromiter(map(self.vocab.get, words, itertools.repeat(0)), dtype=np.uint32, count=len(words))

    @functools.cached_property
    def words_by_id(self) -> list[str]:
        return ["", *sorted(self.vocab, key=self.vocab.__getitem__)]

    @functools.cached_property
    def word_lengths(self) -> np.ndarray:
        return np.array([len(w) for w in self.words_by_id], np.int64)

    @functools.cached_property
    def key_filter(self) -> np.ndarray:
        """A two-probe Bloom filter over every key: most windows of a training
        document fail this cheap test and skip the binary search over the sorted keys."""
        return _bit_filter(np.concatenate([self.ngram_keys, self.anchor_keys]), _FILTER_LOG2_BITS)

    @functools.cached_property
    def anchor_filter(self) -> np.ndarray:
        """The same over the anchor keys alone, small enough to stay in cache."""
        return _bit_filter(self.anchor_keys, _ANCHOR_FILTER_LOG2_BITS)

    def save(self, f: BinaryIO) -> None:
        """Into a binary file opened for writing (the caller makes it appear whole or not at all)."""
        meta = {
            "filter": FILTER_NAME,
            "ngram": self.ngram,
            "min_item_words": self.min_item_words,
            "benchmarks": self.benchmarks,
            "items_indexed": self.items_indexed,
            "items_too_short": self.items_too_short,
            "item_ids": self.item_ids,
        }
        vocab_words = sorted(self.vocab, key=self.vocab.__getitem__)
        fields = (f.name for f in dataclasses.fields(self))
        arrays = {name: getattr(self, name) for name in fields if isinstance(getattr(self, name), np.ndarray)}
        np.savez(
            f,
            meta=np.frombuffer(orjson.dumps(meta), np.uint8),
            vocab=np.frombuffer("\n".join(vocab_words).encode(), np.uint8),
            # Saved because building it costs every process that loads the index a fifth of a second.
            key_filter=self.key_filter,
            **arrays,
        )

    @staticmethod
    def read_meta(path: str) -> dict:
        """The index's parameters and counts (items indexed per benchmark, ...) without its arrays."""
        with np.load(storage.local_file(str(path))) as data:
            return orjson.loads(data["meta"].tobytes())

    @classmethod
    def load(cls, path: str) -> DecontaminationIndex:
        """From a local file, or an S3 object fetched once per machine into the scratch cache (a zip archive
        is read by seeking, so it is not streamed)."""
        with np.load(storage.local_file(str(path))) as data:
            meta = orjson.loads(data["meta"].tobytes())
            vocab_text = data["vocab"].tobytes().decode()
            arrays = {k: data[k] for k in data.files if k not in ("meta", "vocab")}
        words = vocab_text.split("\n") if vocab_text else []
        key_filter = arrays.pop("key_filter")
        index = cls(
            ngram=meta["ngram"],
            min_item_words=meta["min_item_words"],
            benchmarks=meta["benchmarks"],
            items_indexed=meta["items_indexed"],
            items_too_short=meta["items_too_short"],
            vocab=dict(zip(words, range(1, len(words) + 1))),
            item_ids=meta["item_ids"],
            **arrays,
        )
        index.__dict__["key_filter"] = key_filter  # the cached property, read rather than rebuilt
        return index


# Set in the position of a key of an item's form without punctuation (see `index_items`): such a hit aligns
# the item's characters with the document's, not its words.
JOINED_FORM = 1 << 31


def anchor_length(ngram: int, min_item_words: int) -> int:
    """Anchors are at most half an n-gram long, so the first and last anchors of a unit of n or more words
    never overlap and one changed word always leaves one of them intact."""
    return min(min_item_words, ngram // 2)


def _units(
    field_lengths: list[int], standalone: tuple[bool, ...], min_item_words: int
) -> list[tuple[int, int]]:
    """(start, end) word ranges that count on their own: the item, then each standalone field long enough
    to be evidence (and shorter than the item)."""
    total = sum(field_lengths)
    units = [(0, total)]
    start = 0
    for length, alone in zip(field_lengths, standalone):
        if alone and min_item_words <= length < total:
            units.append((start, start + length))
        start += length
    return units


def _keys(
    hashes: np.ndarray, units: list[tuple[int, int]], ngram: int, anchor: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n-gram keys, their positions, anchor keys, their positions) of one token sequence: every n-gram, and
    the first and last `anchor` tokens of each unit too short for n-grams to survive one changed word."""
    keys, starts = window_keys(hashes, None, [ngram])[ngram]
    # An anchor of one word repeated ("1 1 1 1 1 1", a matrix row) is no evidence: tables are full of them.
    anchor_starts = sorted(
        s
        for s in {
            s for start, end in units if anchor <= end - start < 2 * ngram - 1 for s in (start, end - anchor)
        }
        if len(set(hashes[s : s + anchor].tolist())) > 1
    )
    all_anchors, anchor_positions = window_keys(hashes, None, [anchor])[anchor]
    take = np.searchsorted(anchor_positions, anchor_starts)
    return keys, starts, all_anchors[take], anchor_positions[take]


def index_items(items: Iterable[EvalItem], ngram: int, min_item_words: int) -> DecontaminationIndex:
    """Index eval items: every n-gram of an item, and the anchors (first and last words) of its units too
    short for n-grams to survive one changed word.

    An item whose words are joined by punctuation (`f(a,b,n)`, `Earth's`) is also indexed as it reads with
    that punctuation deleted (`fabn`, `earths`, see `joined_chunks`): the keys of that form that the word
    form lacks point at the word where their chunk starts, flagged `JOINED_FORM`, and detection verifies
    them character by character only (detect.py)."""
    anchor = anchor_length(ngram, min_item_words)
    benchmarks: list[str] = []
    indexed: dict[str, int] = {}
    too_short: dict[str, int] = {}
    kept: list[tuple[int, str, list[list[str]], list[list[list[str]]], tuple[bool, ...]]] = []
    for item in items:
        if item.benchmark not in indexed:
            benchmarks.append(item.benchmark)
            indexed[item.benchmark] = too_short[item.benchmark] = 0
        fields = [normalized_words(s) for s in item.segments]
        if sum(map(len, fields)) < min_item_words:
            too_short[item.benchmark] += 1
            continue
        indexed[item.benchmark] += 1
        # Each field's chunks, as lists of words: joined, they are the form without punctuation.
        chunks = [chunked_words(s) for s in item.segments]
        if [[w for c in f for w in c] for f in chunks] != fields:
            chunks = []  # NFKC across a chunk boundary changed the words: keep only the word form
        kept.append((benchmarks.index(item.benchmark), item.item_id, fields, chunks, item.standalone))

    vocab_words = sorted(
        {w for _, _, fields, _, _ in kept for f in fields for w in f}
        | {"".join(c) for _, _, _, chunks, _ in kept for f in chunks for c in f if len(c) > 1}
    )
    vocab = dict(zip(vocab_words, range(1, len(vocab_words) + 1)))
    word_hashes = np.concatenate([np.zeros(1, np.uint64), keys_of_words(vocab_words)])

    item_words, item_offsets, field_bounds, field_offsets = [], [0], [], [0]
    ngram_keys, ngram_items, ngram_positions = [], [], []
    anchor_keys, anchor_items, anchor_positions = [], [], []
    for i, (_, _, fields, chunks, standalone) in enumerate(kept):
        ids = np.array([vocab[w] for f in fields for w in f], dtype=np.uint32)
        item_words.append(ids)
        item_offsets.append(item_offsets[-1] + len(ids))
        units = _units(list(map(len, fields)), standalone, min_item_words)
        field_bounds += units[1:]
        field_offsets.append(len(field_bounds))
        keys, starts, akeys, astarts = _keys(word_hashes[ids], units, ngram, anchor)
        if any(len(c) > 1 for f in chunks for c in f):
            joined = np.array([vocab["".join(c)] for f in chunks for c in f], dtype=np.uint32)
            first_word = np.cumsum([0] + [len(c) for f in chunks for c in f])
            chunk_units = _units(list(map(len, chunks)), standalone, min_item_words)
            ckeys, cstarts, cakeys, castarts = _keys(word_hashes[joined], chunk_units, ngram, anchor)
            new, anew = ~np.isin(ckeys, keys), ~np.isin(cakeys, akeys)
            keys, starts = (
                np.concatenate([keys, ckeys[new]]),
                np.concatenate([starts, first_word[cstarts[new]]]),
            )
            akeys = np.concatenate([akeys, cakeys[anew]])
            astarts = np.concatenate([astarts, first_word[castarts[anew]]])
        ngram_keys.append(keys)
        ngram_items.append(np.full(len(keys), i, np.uint32))
        ngram_positions.append(starts)
        anchor_keys.append(akeys)
        anchor_items.append(np.full(len(akeys), i, np.uint32))
        anchor_positions.append(astarts)

    def concat(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

    keys = concat(ngram_keys, np.uint64)
    order = np.argsort(keys, kind="stable")
    akeys = concat(anchor_keys, np.uint64)
    aorder = np.argsort(akeys, kind="stable")
    return DecontaminationIndex(
        ngram=ngram,
        min_item_words=min_item_words,
        benchmarks=benchmarks,
        items_indexed=indexed,
        items_too_short=too_short,
        vocab=vocab,
        word_hashes=word_hashes,
        ngram_keys=keys[order],
        ngram_items=concat(ngram_items, np.uint32)[order],
        ngram_positions=concat(ngram_positions, np.uint32)[order],
        anchor_keys=akeys[aorder],
        anchor_items=concat(anchor_items, np.uint32)[aorder],
        anchor_positions=concat(anchor_positions, np.uint32)[aorder],
        item_words=concat(item_words, np.uint32),
        item_offsets=np.array(item_offsets, np.int64),
        field_bounds=np.array(field_bounds, np.uint32).reshape(-1, 2),
        field_offsets=np.array(field_offsets, np.int64),
        item_benchmarks=np.array([b for b, _, _, _, _ in kept], np.uint16),
        item_ids=[item_id for _, item_id, _, _, _ in kept],
    )


def index_digest(config: DecontaminateConfig, base_dir: str | Path, relocate: Relocate = None) -> str:
    """sha256 of what the index is made from: eval declarations (with the templates stripped from their
    fields), eval file contents and index parameters."""
    h = hashlib.sha256(f"{FILTER_NAME}\0{_INDEX_FORMAT}\0{config.ngram}\0{config.min_item_words}".encode())
    for b in resolve_benchmarks(config, base_dir, relocate):
        declaration = {
            "name": b.config.name,
            "text_fields": b.config.text_fields,
            "id_field": b.config.id_field,
            "format": b.config.format,
            "strip": [dataclasses.asdict(rule) for rule in b.config.strip],
            "strip_templates": DEFAULT_TEMPLATE_PATTERNS if b.config.strip_templates else [],
        }
        h.update(orjson.dumps(declaration, option=orjson.OPT_SORT_KEYS))
        for path in b.paths:
            require_eval_file(path, b.config.name)
            h.update(storage.sha256(path).encode())
    return h.hexdigest()


def _index_name(digest: str) -> str:
    return f"decon-index-{digest}.npz"


def index_cached(config: DecontaminateConfig, base_dir: str | Path, relocate: Relocate = None) -> bool:
    """Whether this user's cache holds a whole index made from these very declarations and eval files: they
    were read whole and parsed when it was built, and a run reads them no more."""
    return holds(user_cache_dir("decon-index"), _index_name(index_digest(config, base_dir, relocate)))


def build_index(
    config: DecontaminateConfig,
    base_dir: str | Path,
    index_dir: str | Path | None = None,
    relocate: Relocate = None,
    warn: Callable[[str], None] = logging.getLogger(__name__).warning,
) -> tuple[str, str]:
    """Build (or reuse) the index of every declared benchmark; returns its path, named by its content hash,
    and that hash. It is kept in `index_dir`, by default this user's cache (curation/user_cache.py), so
    every run and output on the machine shares it. An S3 `index_dir` (for workers that share only the
    store) receives a copy of the local cache's entry when it lacks one."""
    digest = index_digest(config, base_dir, relocate)
    name = _index_name(digest)

    def write(f: BinaryIO) -> None:
        items = (item for b in resolve_benchmarks(config, base_dir, relocate) for item in read_benchmark(b))
        index_items(items, config.ngram, config.min_item_words).save(f)

    if index_dir is not None and storage.is_s3(str(index_dir)):
        remote = storage.join(str(index_dir), name)
        if not storage.exists(remote):
            storage.upload_file(digest_named_file(user_cache_dir("decon-index"), name, write, warn), remote)
        return remote, digest
    folder = str(index_dir) if index_dir is not None else user_cache_dir("decon-index")
    return digest_named_file(folder, name, write, warn), digest
