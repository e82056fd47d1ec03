"""Tokenizers for shards: a Hugging Face tokenizer.json, run through tiktoken when it can express it exactly
(byte-level BPE with a split regex, like OLMo 2's cl100k-based dolma2, about 5x faster), through Hugging Face
`tokenizers` otherwise; both give the same ids under the same special-token policy.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import marshal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import tiktoken

from curation import storage
from curation.config import ConfigError
from curation.user_cache import digest_named_file, holds, user_cache_dir
from tokenizers import Tokenizer

SpecialTokensInText = Literal["literal", "control"]
Backend = Literal["tiktoken", "hf"]

_UINT16_TOKENS = 1 << 16


class TextTokenizer(Protocol):
    vocab_size: int
    eos_id: int | None
    bos_id: int | None
    sha256: str
    backend: Backend
    special_tokens_in_text: SpecialTokensInText

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids of each text as a uint32 array, without EOS or BOS."""
        ...


@dataclass(frozen=True)
class _TokenizerFile:
    """What both backends need from a tokenizer.json, read once."""

    data: dict
    sha256: str
    vocab_size: int
    eos_id: int | None
    bos_id: int | None
    # Added tokens that mark something (`<|endoftext|>`, `|||EMAIL_ADDRESS|||`); whitespace-run added tokens
    # (GPT-NeoX's "  ") are ordinary vocabulary and are matched in text under either policy.
    control_tokens: dict[str, int]


def load_tokenizer(
    path: str | Path, special_tokens_in_text: SpecialTokensInText = "literal", backend: Backend | None = None
) -> TextTokenizer:
    """The fastest exact tokenizer for `path`; `backend` forces one (tiktoken raises if it cannot express it).

    special_tokens_in_text="literal": text that spells a control token ("<|endoftext|>") is tokenized as
    ordinary text; "control": it becomes the control token, as Hugging Face does by default.
    """
    if special_tokens_in_text not in ("literal", "control"):
        raise ValueError(
            f"special_tokens_in_text must be 'literal' or 'control', got {special_tokens_in_text!r}"
        )
    raw = _read_bytes(str(path))
    if backend != "hf":
        tables = _tiktoken_tables(str(path), raw)
        if tables["unsupported"] is None:
            return TiktokenTokenizer(tables, special_tokens_in_text)
        if backend == "tiktoken":
            raise ValueError(f"{path}: tiktoken cannot express this tokenizer: {tables['unsupported']}")
    return HFTokenizer(_tokenizer_file(str(path), raw), special_tokens_in_text)


def _read_bytes(path: str) -> bytes:
    # Read once, so an S3 object is streamed once.
    with storage.open_binary(path) as f:
        return f.read()


def _parsed(path: str, raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for a binary file
        raise ValueError(f"{path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ValueError(f"{path} has no 'model' object, so it is not a Hugging Face tokenizer.json")
    return data


def check_tokenizer_file(path: str) -> None:
    """A ValueError naming the file if it is not a tokenizer.json. Tables already derived from the same bytes
    (named by their sha256) are proof enough, and spare the parse."""
    raw = _read_bytes(path)
    if not holds(user_cache_dir(_CACHE_FOLDER), _tables_name(raw)):
        _parsed(path, raw)


def _tokenizer_file(path: str, raw: bytes) -> _TokenizerFile:
    data = _parsed(path, raw)
    vocab = data["model"]["vocab"]
    added = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
    ids = list(vocab.values()) + list(added.values())
    control = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t["content"].strip()}
    return _TokenizerFile(
        data=data,
        sha256=hashlib.sha256(raw).hexdigest(),
        vocab_size=max(ids) + 1,
        eos_id=_first_present(added, ("<|endoftext|>", "</s>", "<eos>")),
        bos_id=_first_present(added, ("<|begin_of_text|>", "<s>", "<bos>")),
        control_tokens=control,
    )


# What tiktoken needs from a tokenizer.json (its ids, split regex and byte ranks, or why it cannot express
# the file), derived once per machine and kept in the user cache under the file's sha256: parsing the JSON
# and deriving the ranks cost about 0.25 CPU s per load, and a run loads its tokenizer in tokenize and mix.
_CACHE_FOLDER = "tokenizers"
_TABLES_FORMAT = f"tiktoken-tables-v1-marshal{marshal.version}"


def _tables_name(raw: bytes) -> str:
    return f"{hashlib.sha256(raw).hexdigest()}.{_TABLES_FORMAT}"


def _tiktoken_tables(path: str, raw: bytes) -> dict:
    def write(out) -> None:
        file = _tokenizer_file(path, raw)
        unsupported = tiktoken_unsupported_reason(file)
        tables = {
            "sha256": file.sha256,
            "vocab_size": file.vocab_size,
            "eos_id": file.eos_id,
            "bos_id": file.bos_id,
            "control_tokens": file.control_tokens,
            "unsupported": unsupported,
            "pat_str": _split_regex(file.data) if unsupported is None else None,
            "mergeable_ranks": _mergeable_ranks(file.data) if unsupported is None else {},
        }
        out.write(marshal.dumps(tables))

    folder = user_cache_dir(_CACHE_FOLDER)
    entry = digest_named_file(folder, _tables_name(raw), write, logging.getLogger(__name__).warning)
    with open(entry, "rb") as f:
        return marshal.load(f)


def _first_present(tokens: dict[str, int], names: tuple[str, ...]) -> int | None:
    return next((tokens[n] for n in names if n in tokens), None)


class _TokenizerBase:
    def __init__(self, facts: dict, special_tokens_in_text: SpecialTokensInText):
        self.vocab_size = facts["vocab_size"]
        self.eos_id = facts["eos_id"]
        self.bos_id = facts["bos_id"]
        self.sha256 = facts["sha256"]
        self.special_tokens_in_text = special_tokens_in_text


class HFTokenizer(_TokenizerBase):
    """The reference: Hugging Face `tokenizers`, with control tokens left out of matching under "literal"."""

    backend: Backend = "hf"

    def __init__(self, file: _TokenizerFile, special_tokens_in_text: SpecialTokensInText):
        super().__init__(vars(file), special_tokens_in_text)
        data = file.data
        if special_tokens_in_text == "literal":
            # HF splits every added token (special or not) out of the text before BPE, whatever
            # add_special_tokens or encode_special_tokens say; only leaving them out of the added
            # vocabulary stops it. Their ids stay in the model's vocab, where no merge can reach them.
            data = dict(
                data,
                added_tokens=[t for t in data["added_tokens"] if t["content"] not in file.control_tokens],
            )
        self._tokenizer = Tokenizer.from_str(json.dumps(data))

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        try:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        except TypeError:
            encodings = self._tokenizer.encode_batch(
                [without_lone_surrogates(t) for t in texts], add_special_tokens=False
            )
        return [np.asarray(e.ids, dtype=np.uint32) for e in encodings]


class TiktokenTokenizer(_TokenizerBase):
    """The fast path: a tiktoken Encoding built from the tokenizer.json's vocab and split regex (the tables
    `_tiktoken_tables` derives)."""

    backend: Backend = "tiktoken"

    def __init__(self, tables: dict, special_tokens_in_text: SpecialTokensInText):
        super().__init__(tables, special_tokens_in_text)
        self._tables = tables
        self._allowed_special: Literal["all"] | set[str] = (
            "all" if special_tokens_in_text == "control" else set()
        )

    @functools.cached_property
    def _encoding(self) -> tiktoken.Encoding:
        # Built on first use: a caller that only reads the ids and sizes (the mix's shard metadata) never pays it.
        control = self._tables["control_tokens"]
        if self.special_tokens_in_text == "literal":
            # No control token is ever allowed then, so which ones tiktoken knows cannot change an id; but it
            # searches the text for each one it knows (dolma2's 22 cost about 15% of encoding), and for none
            # at all its empty pattern matches at every position (twice as slow). So it is told of one.
            control = dict(sorted(control.items())[:1])
        return tiktoken.Encoding(
            name=f"tokenizer-{self.sha256[:16]}",
            pat_str=self._tables["pat_str"],
            mergeable_ranks=self._tables["mergeable_ranks"],
            special_tokens=control,
        )

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self._encode(t) for t in texts]

    def _encode(self, text: str) -> np.ndarray:
        try:
            return self._encoding.encode_to_numpy(
                text, allowed_special=self._allowed_special, disallowed_special=()
            )
        except UnicodeEncodeError:
            return self._encoding.encode_to_numpy(
                without_lone_surrogates(text), allowed_special=self._allowed_special, disallowed_special=()
            )


def without_lone_surrogates(text: str) -> str:
    """Lone UTF-16 surrogates (possible in JSON-decoded text) become U+FFFD, as tiktoken does, so both
    backends see the same text."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def tiktoken_unsupported_reason(file: _TokenizerFile) -> str | None:
    """Why tiktoken would not reproduce this tokenizer's ids, or None when it does."""
    data = file.data
    model = data["model"]
    if model.get("type") != "BPE":
        return f"model type {model.get('type')!r} is not BPE"
    if (
        model.get("dropout")
        or model.get("byte_fallback")
        or model.get("continuing_subword_prefix")
        or model.get("end_of_word_suffix")
    ):
        return "BPE uses dropout, byte fallback or subword affixes"
    if data.get("normalizer") is not None:
        return f"it has a {data['normalizer'].get('type')} normalizer"
    if _split_regex(data) is None:
        return "its pre-tokenizer is not a byte-level split by one regex"
    if (data.get("post_processor") or {}).get("type") not in (None, "ByteLevel"):
        return f"its post-processor {data['post_processor'].get('type')} adds tokens"
    for token in data.get("added_tokens", []):
        if token["content"] not in file.control_tokens:
            return f"added token {token['content']!r} (whitespace) is matched inside ordinary text"
        if token.get("single_word") or token.get("lstrip") or token.get("rstrip"):
            return f"added token {token['content']!r} matches with word or strip rules"
    contents = sorted(file.control_tokens)
    for shorter, longer in itertools.pairwise(contents):
        if longer.startswith(shorter):
            # HF matches the longest added token, tiktoken the first alternative in an unspecified order.
            return f"control token {shorter!r} is a prefix of {longer!r}"
    if not _merges_follow_ranks(data):
        return "its merge order differs from its token id order"
    return None


def _split_regex(data: dict) -> str | None:
    """The split regex of a Sequence[Split(regex, Removed, invert), ByteLevel(no regex)] pre-tokenizer."""
    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    if len(steps) != 2:
        return None
    split, byte_level = steps
    if split.get("type") != "Split" or "Regex" not in split.get("pattern", {}):
        return None
    if split.get("behavior") != "Removed" or not split.get("invert"):
        return None
    if (
        byte_level.get("type") != "ByteLevel"
        or byte_level.get("use_regex")
        or byte_level.get("add_prefix_space")
    ):
        return None
    return split["pattern"]["Regex"]


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, inverted: character -> byte."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + shifted)
            shifted += 1
    return {c: b for b, c in chars.items()}


def _mergeable_ranks(data: dict) -> dict[bytes, int]:
    alphabet = _byte_level_alphabet()
    added_ids = {t["id"] for t in data.get("added_tokens", [])}
    return {
        bytes(alphabet[c] for c in token): token_id
        for token, token_id in data["model"]["vocab"].items()
        if token_id not in added_ids
    }


def _merges_follow_ranks(data: dict) -> bool:
    """tiktoken merges by the rank of the merged token, HF by merge list position: equal when every merge's
    result has a higher id than the merge before it and all 256 bytes are base tokens."""
    vocab = data["model"]["vocab"]
    alphabet = _byte_level_alphabet()
    if any(c not in vocab for c in alphabet):
        return False
    previous = -1
    for merge in data["model"]["merges"]:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        merged = vocab.get(left + right)
        if merged is None or merged <= previous:
            return False
        previous = merged
    return True


def dtype_for(vocab_size: int, requested: Literal["auto", "uint16", "uint32"] = "auto") -> np.dtype:
    """Shard token dtype: uint16 when every id fits and "auto"; a uint16 request for a larger vocab is refused."""
    fits_uint16 = vocab_size <= _UINT16_TOKENS
    if requested == "auto":
        return np.dtype(np.uint16 if fits_uint16 else np.uint32)
    if requested == "uint16" and not fits_uint16:
        raise ConfigError(
            "output.dtype",
            f"uint16 holds ids below {_UINT16_TOKENS:,} but the tokenizer has {vocab_size:,} ids; use uint32 or auto",
        )
    if requested not in ("uint16", "uint32"):
        raise ConfigError("output.dtype", f"{requested!r} is not one of ['auto', 'uint16', 'uint32']")
    return np.dtype(requested)


def _document_markers(
    tokenizer: TextTokenizer, eos: Literal["append", "none"], bos: Literal["prepend", "none"]
) -> tuple[list[int], list[int]]:
    """The ids put before and after every document (OLMo 2: EOS appended, no BOS)."""
    if eos == "append" and tokenizer.eos_id is None:
        raise ConfigError("output.eos", "the tokenizer has no EOS token; use eos: none")
    if bos == "prepend" and tokenizer.bos_id is None:
        raise ConfigError("output.bos", "the tokenizer has no BOS token; use bos: none")
    return ([tokenizer.bos_id] if bos == "prepend" else []), ([tokenizer.eos_id] if eos == "append" else [])


def with_document_markers(
    ids: np.ndarray,
    tokenizer: TextTokenizer,
    eos: Literal["append", "none"] = "append",
    bos: Literal["prepend", "none"] = "none",
) -> np.ndarray:
    """A document's ids with BOS and EOS as OLMo-core expects them (OLMo 2: EOS appended, no BOS)."""
    head, tail = _document_markers(tokenizer, eos, bos)
    if not head and not tail:
        return ids
    return np.concatenate(
        [np.asarray(head, np.uint32), ids.astype(np.uint32, copy=False), np.asarray(tail, np.uint32)]
    )


def documents_end_to_end(
    ids: list[np.ndarray],
    tokenizer: TextTokenizer,
    dtype: np.dtype,
    eos: Literal["append", "none"] = "append",
    bos: Literal["prepend", "none"] = "none",
) -> tuple[np.ndarray, np.ndarray]:
    """Documents' ids, each with its markers as `with_document_markers` puts them, end to end in one `dtype`
    array, and each document's length: one copy of a batch instead of one per document."""
    head, tail = _document_markers(tokenizer, eos, bos)
    lengths = np.fromiter(map(len, ids), np.int64, len(ids)) + (len(head) + len(tail))
    if not head and not tail:
        parts = ids
    else:
        head_ids, tail_ids = np.asarray(head, np.uint32), np.asarray(tail, np.uint32)
        parts = [part for document in ids for part in (head_ids, document, tail_ids)]
    tokens = np.concatenate(parts, dtype=dtype, casting="unsafe") if parts else np.empty(0, dtype)
    return tokens, lengths
