"""fastText supervised prediction (Joulin et al. 2016) for hierarchical-softmax models such as lid.176,
redone in numpy with fastText's own float32 arithmetic, so probabilities are bit-identical to `predict(k=-1)`.

fastText spends most of a prediction hashing each word's character n-grams, again at every occurrence.
Here a worker hashes each distinct word once (for a whole batch of new words at a time, in numpy) and
reuses its row ids, then sums the rows in fastText's order and walks the label tree for all documents of
a batch together.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from itertools import chain, repeat
from pathlib import Path

import numpy as np

from curation import storage
from filters.words import WORDS, run_positions

_MAGIC = 793712314
_HIERARCHICAL_SOFTMAX = 1
_SUPERVISED = 3
_LABEL_ENTRY = 1
EOS = "</s>"
_EOS_ONLY = (EOS,)
LABEL_PREFIX = "__label__"
# fastText's word separators (`Dictionary::readWord`); all ASCII, so splitting the str splits the bytes.
_SEPARATORS = " \n\r\t\v\f\0"
# Where `str.split()` and fastText disagree about whitespace: text without these splits the same either way.
_SPLITS_DIFFERENTLY = re.compile("[\x00\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_KSUB = 256  # centroids per product-quantizer block
# Texts predicted together: bounds the gathered input rows (64 bytes per word and per kept n-gram).
_CHUNK_TEXTS = 256
_FNV_OFFSET = np.uint32(2166136261)
_FNV_PRIME = np.uint32(16777619)


class UnsupportedModel(ValueError):
    """The model is not one this predictor reproduces exactly (softmax loss, word n-grams, a quantized
    output matrix...)."""


def _expf_table() -> np.ndarray:
    # glibc's `__exp2f_data.tab`: bits of 2^(i/32), rounded to double, minus i << 47.
    with localcontext() as ctx:
        ctx.prec = 60
        powers = [float(Decimal(2) ** (Decimal(i) / 32)) for i in range(32)]
    bits = np.array(powers, np.float64).view(np.uint64)
    return bits - (np.arange(32, dtype=np.uint64) << np.uint64(47))


_EXPF_TABLE = _expf_table()
_EXPF_INV_LN2_SCALED = float.fromhex("0x1.71547652b82fep+0") * 32
_EXPF_SHIFT = float.fromhex("0x1.8p+52")
_EXPF_POLY = (
    float.fromhex("0x1.c6af84b912394p-5") / 32**3,
    float.fromhex("0x1.ebfce50fac4f3p-3") / 32**2,
    float.fromhex("0x1.62e42ff0c52d6p-1") / 32,
)


def expf(x: np.ndarray) -> np.ndarray:
    """float32 exp as glibc's `expf` computes it (the C++ `std::exp(float)` fastText calls); numpy's own
    float32 exp rounds differently in the last bit on a third of inputs."""
    xd = x.astype(np.float64)
    z = _EXPF_INV_LN2_SCALED * xd
    kd = z + _EXPF_SHIFT
    ki = kd.view(np.uint64)
    r = z - (kd - _EXPF_SHIFT)
    scale = (_EXPF_TABLE[ki % np.uint64(32)] + (ki << np.uint64(47))).view(np.float64)
    y = ((_EXPF_POLY[0] * r + _EXPF_POLY[1]) * (r * r) + (_EXPF_POLY[2] * r + 1)) * scale
    y = np.where(xd > float.fromhex("0x1.62e42ep6"), np.inf, y)
    return np.where(xd < float.fromhex("-0x1.9fe368p6"), 0.0, y).astype(np.float32)


def _float32_in_double(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).astype(np.float64)


def is_fasttext_model(path: str | Path) -> bool:
    """Whether the file (local or S3) starts as fastText's .bin and .ftz files do: its magic number, a
    little-endian int32."""
    with storage.open_binary(str(path)) as f:
        head = f.read(4)
    return len(head) == 4 and struct.unpack("<i", head)[0] == _MAGIC


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: type, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype, count, self.at)
        self.at += values.nbytes
        return values

    def cstring(self) -> str:
        end = self.data.index(b"\0", self.at)
        text = self.data[self.at : end].decode("utf-8")
        self.at = end + 1
        return text


def _read_input_rows(reader: _Reader) -> np.ndarray:
    (quantized,) = reader.take("?")
    if not quantized:
        rows, dim = reader.take("qq")
        return reader.array(np.float32, rows * dim).reshape(rows, dim)
    qnorm, rows, dim, codesize = reader.take("?qqi")
    codes = reader.array(np.uint8, codesize)
    pq_dim, blocks, block_dim, last_block_dim = reader.take("iiii")
    centroids = reader.array(np.float32, pq_dim * _KSUB)
    if last_block_dim != block_dim:
        raise UnsupportedModel("a product quantizer with a shorter last block")
    table = centroids.reshape(blocks, _KSUB, block_dim)
    decoded = table[np.arange(blocks), codes.reshape(rows, blocks)].reshape(rows, dim)
    if not qnorm:
        return decoded
    # Each row's norm is quantized apart (a one-dimensional quantizer); fastText adds norm * centroid,
    # rounded to float32, which is the decoded row here.
    norm_codes = reader.array(np.uint8, rows)
    reader.take("iiii")
    norms = reader.array(np.float32, _KSUB)
    return norms[norm_codes][:, None] * decoded


def _hs_tree(counts: Sequence[int]) -> tuple[list[int], list[int]]:
    """Children of each inner node, built from label counts as fastText's `buildTree` does."""
    size = len(counts)
    weight = [*counts, *[1e15] * (size - 1)]
    left, right = [-1] * (2 * size - 1), [-1] * (2 * size - 1)
    leaf, node = size - 1, size
    for parent in range(size, 2 * size - 1):
        pair = []
        for _ in range(2):
            if leaf >= 0 and weight[leaf] < weight[node]:
                pair.append(leaf)
                leaf -= 1
            else:
                pair.append(node)
                node += 1
        left[parent], right[parent] = pair
        weight[parent] = weight[pair[0]] + weight[pair[1]]
    return left, right


class HierarchicalSoftmaxPredictor:
    """`probabilities(texts)`: per text and label (`labels`), the float32 probability fastText's
    `predict(k=-1)` gives it, or 0 for a label it does not return (below 1e-5 along the tree; every label of
    a text without input rows). Newlines separate words, as when a caller replaces them with spaces for
    fastText's one-line `predict`."""

    def __init__(self, model_path: str | Path):
        reader = _Reader(Path(storage.local_file(str(model_path))).read_bytes())
        magic, _version = reader.take("ii")
        if magic != _MAGIC:
            raise UnsupportedModel(f"{model_path} is not a fastText model")
        dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, maxn, _lr_update = (
            reader.take("12i")
        )
        reader.take("d")
        if model != _SUPERVISED or loss != _HIERARCHICAL_SOFTMAX or word_ngrams > 1 or 0 < minn < 2:
            raise UnsupportedModel("only supervised hierarchical-softmax models without word n-grams")
        size, n_words, _n_labels, _n_tokens, prune_size = reader.take("iiiqq")
        self.vocabulary: dict[str, int] = {}
        self.labels: list[str] = []
        label_counts = []
        for entry_id in range(size):
            word = reader.cstring()
            count, kind = reader.take("qb")
            if kind == _LABEL_ENTRY:
                self.labels.append(word.removeprefix(LABEL_PREFIX))
                label_counts.append(count)
            else:
                self.vocabulary[word] = entry_id
        prune = reader.array(np.int32, 2 * max(prune_size, 0)).reshape(-1, 2)
        # n-gram bucket -> input row (`pushHash`): all buckets unless the model was pruned by quantizing.
        self._row_of_bucket = np.arange(n_words, n_words + bucket, dtype=np.int32)
        if prune_size >= 0:
            self._row_of_bucket = np.full(bucket, -1, np.int32)
            self._row_of_bucket[prune[:, 0]] = n_words + prune[:, 1]
        # Whether a bucket has a row: a table small enough to stay in cache, read for every n-gram, where
        # the rows are read only for the n-grams that have one (about one in eight for lid.176).
        self._bucket_kept = self._row_of_bucket >= 0
        self._bucket, self._minn, self._maxn = bucket, minn, maxn
        self._n_words = n_words
        input_rows = _read_input_rows(reader)
        # A zero row after the model's, to pad documents summed together (`_row_sums`).
        self._zero_row = len(input_rows)
        self._rows = np.concatenate((input_rows, np.zeros((1, input_rows.shape[1]), np.float32)))
        (quantized_output,) = reader.take("?")
        if quantized_output:
            raise UnsupportedModel("quantized output matrix")
        out_rows, out_dim = reader.take("qq")
        output = reader.array(np.float32, out_rows * out_dim).reshape(out_rows, out_dim)
        if (out_rows, out_dim) != (len(self.labels), dim):
            raise UnsupportedModel("output matrix does not match the labels")
        self._inner = np.ascontiguousarray(output[: len(self.labels) - 1].T)  # one column per inner node
        self._left, self._right = _hs_tree(label_counts)
        self._forget_words()

    def _forget_words(self) -> None:
        # Row ids of each chunk of `WORDS` seen so far: its slice of `_ids` is [_first[w], _first[w] + _count[w]).
        self._generation = WORDS.generation
        self._ids = np.zeros(0, np.int32)
        self._first = np.zeros(0, np.int64)
        self._count = np.zeros(0, np.int64)

    def probabilities(
        self, texts: Sequence[str], chunk_ids: Sequence[Callable[[], np.ndarray]] | None = None
    ) -> np.ndarray:
        """`chunk_ids`, when given, gives each text's `str.split()` as ids in `WORDS` on demand, so a text
        looked up for other uses is not looked up again (and a text fastText splits otherwise is not split
        for it)."""
        WORDS.start_afresh_if_full()
        chunk_ids = [None] * len(texts) if chunk_ids is None else chunk_ids
        chunks = [
            self._chunk_probabilities(texts[i : i + _CHUNK_TEXTS], chunk_ids[i : i + _CHUNK_TEXTS])
            for i in range(0, len(texts), _CHUNK_TEXTS)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.labels)), np.float32)

    def _chunk_probabilities(
        self, texts: Sequence[str], chunk_ids: Sequence[Callable[[], np.ndarray] | None]
    ) -> np.ndarray:
        result = np.zeros((len(texts), len(self.labels)), np.float32)
        if self._generation != WORDS.generation:
            self._forget_words()
        # Each document's words then EOS (fastText ends every line with it).
        eos = WORDS.chunk_ids(list(_EOS_ONLY))
        documents = list(chain.from_iterable(zip(map(self._word_ids, texts, chunk_ids), repeat(eos))))
        words_per_doc = np.fromiter(map(len, documents[::2]), np.int64, len(texts)) + 1
        word_ids = np.concatenate(documents)
        # The rows of the words met for the first time (by this predictor), hashed together.
        new_words = WORDS.chunks_from(len(self._count))
        if new_words:
            self._add_words(new_words)
        counts = self._count[word_ids]
        ids = self._ids[run_positions(self._first[word_ids], counts)]
        doc_ends = np.cumsum(counts)[np.cumsum(words_per_doc) - 1]
        doc_starts = np.concatenate(([0], doc_ends[:-1]))
        # fastText predicts nothing for a line without input rows.
        scored = np.flatnonzero(doc_ends > doc_starts)
        if not len(scored):
            return result
        sums = self._row_sums(ids, doc_starts[scored], doc_ends[scored])
        row_counts = (doc_ends - doc_starts)[scored].astype(np.float64)
        result[scored] = self._label_probabilities(sums * (1.0 / row_counts).astype(np.float32)[:, None])
        return result

    def _row_sums(self, ids: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Per document, its rows `ids[start:end]` added one after another from zero, as fastText's
        computeHidden does (reduceat and sums along the contiguous axis add pairwise, which rounds
        differently). Documents within a factor of two in length are summed together, one row of each at
        a time, the shorter ones padded with zero rows: from zero no partial sum is -0, so x + 0 == x."""
        lengths = ends - starts
        order = np.argsort(lengths, kind="stable")
        length_class = np.frexp(lengths[order].astype(np.float64))[1]
        padded_ids = np.append(ids, self._zero_row)
        sums = np.empty((len(starts), self._rows.shape[1]), np.float32)
        for group in np.split(order, np.flatnonzero(np.diff(length_class)) + 1):
            steps = np.arange(lengths[group[-1]])[:, None]
            row_ids = padded_ids.take(np.where(steps < lengths[group], starts[group] + steps, len(ids)))
            sums[group] = np.add.reduce(self._rows.take(row_ids, axis=0), axis=0, initial=np.float32(0))
        return sums

    @staticmethod
    def _word_ids(text: str, chunk_ids: Callable[[], np.ndarray] | None) -> np.ndarray:
        """The `WORDS` ids of the words fastText reads from one line before its EOS (`chunk_ids`: gives the
        ids of the text's `str.split()`): labels skipped, the line ends at the first EOS."""
        special = LABEL_PREFIX in text or EOS in text
        if not _SPLITS_DIFFERENTLY.search(text):
            if not special:
                return WORDS.chunk_ids(text.split()) if chunk_ids is None else chunk_ids()
            tokens = text.split()
        else:
            # With each of fastText's separators made a space, a split at spaces finds its words (a
            # regular-expression split takes twice as long).
            spaced = text
            for separator in _SEPARATORS.replace(" ", ""):
                spaced = spaced.replace(separator, " ")
            tokens = list(filter(None, spaced.split(" ")))
        if special:
            tokens = [t for t in tokens if not t.startswith(LABEL_PREFIX)]
            if EOS in tokens:
                tokens = tokens[: tokens.index(EOS)]
        return WORDS.chunk_ids(tokens)

    def _add_words(self, words: list[str]) -> None:
        """Row ids of the words that follow the last one with rows in `WORDS`, hashed together: each word's
        vocabulary id, then its kept character n-grams by start character, then length
        (`Dictionary::getSubwords`)."""
        bounds, found = self._subword_rows(words)
        # The few words in the vocabulary: their id comes first, at their "<".
        known = [i for i, word in enumerate(words) if word in self.vocabulary]
        found.insert(0, (bounds[known], np.array([self.vocabulary[words[i]] for i in known], np.int32)))
        # Each character's entries in a block, in the order of `found` (length), blocks in character order.
        per_char = np.bincount(np.concatenate([chars for chars, _ in found]), minlength=bounds[-1])
        before = np.concatenate(([0], np.cumsum(per_char)))
        ids = np.empty(before[-1], np.int32)
        place = before[:-1].copy()
        for chars, rows in found:  # a character at most once in each
            ids[place[chars]] = rows
            place[chars] += 1
        self._first = np.concatenate((self._first, len(self._ids) + before[bounds[:-1]]))
        self._count = np.concatenate((self._count, np.diff(before[bounds])))
        self._ids = np.concatenate((self._ids, ids))

    def _subword_rows(self, words: list[str]) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """The kept character n-grams of "<word>" for each word in turn (`Dictionary::computeSubwords`): the
        words' first characters and the end (in characters), and per length n (`minn`..`maxn`) the start
        character and row id of each n-gram of n characters, within a word, that has a row. Characters are
        UTF-8 characters, and n-grams are hashed with 32-bit FNV-1a over signed bytes; the hash of an n-gram
        continues the hash of its (n-1)-gram prefix with one more character."""
        # A str's length counts code points, each one UTF-8 character.
        lengths = np.fromiter(map(len, words), np.int64, len(words)) + 2
        bounds = np.concatenate(([0], np.cumsum(lengths)))
        n_chars = int(bounds[-1])
        found: list[tuple[np.ndarray, np.ndarray]] = []
        if self._maxn < 1:
            return bounds, found
        data = np.frombuffer(f"<{'><'.join(words)}>".encode(), np.uint8)
        signed = data.view(np.int8).astype(np.int32).view(np.uint32)
        char_starts = np.flatnonzero((data & 0xC0) != 0x80)
        char_bytes = np.diff(np.append(char_starts, len(data)))
        # Characters from each one to the end of its word, itself included: an n-gram fits when n or more.
        to_word_end = np.repeat(bounds[1:], lengths) - np.arange(n_chars)
        if EOS in words:  # the end-of-line token has no character n-grams
            eos = words.index(EOS)
            to_word_end[bounds[eos] : bounds[eos + 1]] = 0
        # Characters with continuation bytes: more than 1, 2, 3 bytes.
        longer_than = [np.flatnonzero(char_bytes > extra) for extra in range(1, 4)]
        hashes = np.full(n_chars, _FNV_OFFSET, np.uint32)
        for n in range(1, self._maxn + 1):
            # The n-gram starting at character i ends with character i + n - 1 (`last`).
            count = n_chars - n + 1
            last_starts = char_starts[n - 1 :]
            hashes = (hashes[:count] ^ signed[last_starts]) * _FNV_PRIME
            for extra, longer in enumerate(longer_than, 1):
                more = longer[np.searchsorted(longer, n - 1) :] - (n - 1)
                hashes[more] = (hashes[more] ^ signed[last_starts[more] + extra]) * _FNV_PRIME
            if n >= self._minn:
                buckets = (hashes % np.uint32(self._bucket)).astype(np.intp)
                kept = np.flatnonzero(self._bucket_kept.take(buckets) & (to_word_end[:count] >= n))
                found.append((kept, self._row_of_bucket.take(buckets.take(kept))))
        return bounds, found

    def _label_probabilities(self, hidden: np.ndarray) -> np.ndarray:
        """fastText's depth-first walk of the label tree (`HierarchicalSoftmaxLoss::dfs`, threshold 0), for
        all documents at once: float32 dot products and log-probabilities, a branch pruned once its
        log-probability falls below log(1e-5)."""
        n_labels = len(self.labels)
        dots = np.zeros((len(hidden), n_labels - 1), np.float32)
        for j in range(hidden.shape[1]):  # one float32 multiply-add per dimension, in order
            dots += hidden[:, j : j + 1] * self._inner[j]
        p_right = (1.0 / (np.float32(1) + expf(-dots)).astype(np.float64)).astype(np.float32)
        # fastText's std_log takes a float32 and adds 1e-5 in double.
        log_left = np.log(_float32_in_double(1.0 - p_right.astype(np.float64)) + 1e-5).astype(np.float32)
        log_right = np.log(p_right.astype(np.float64) + 1e-5).astype(np.float32)
        floor = np.float32(np.log(1e-5))
        score = np.zeros((2 * n_labels - 1, len(hidden)), np.float32)
        alive = np.zeros(score.shape, bool)
        alive[-1] = True
        for node in range(2 * n_labels - 2, n_labels - 1, -1):  # parents come after their children
            for child, step in ((self._left[node], log_left), (self._right[node], log_right)):
                score[child] = score[node] + step[:, node - n_labels]
                alive[child] = alive[node] & (score[child] >= floor)
        return np.where(alive[:n_labels], expf(score[:n_labels]), np.float32(0)).T
