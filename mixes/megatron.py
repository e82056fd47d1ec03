"""The `.idx` file of Megatron-LM's indexed dataset (megatron/core/datasets/indexed_dataset.py, read by
Megatron-LM, NeMo and GPT-NeoX): beside a `.bin` of raw token ids, it lists each sequence's length and byte
offset, and which sequences form each document. Every shard document is one sequence and one document."""

from __future__ import annotations

import struct

import numpy as np

_HEADER = b"MMIDIDX\x00\x00"
_VERSION = 1
# Megatron's DType codes; it has no uint32, so ids past uint16 are int32 as its own preprocess_data writes.
_DTYPE_CODES = {
    "uint8": 1,
    "int8": 2,
    "int16": 3,
    "int32": 4,
    "int64": 5,
    "float64": 6,
    "float32": 7,
    "uint16": 8,
}
TOKEN_DTYPES = {"uint16": "uint16", "uint32": "int32"}


def index_bytes(document_lengths: np.ndarray, token_dtype: str | np.dtype) -> bytes:
    """The `.idx` of a `.bin` holding documents of these lengths (in tokens of `token_dtype`), in order."""
    token_dtype = np.dtype(token_dtype)
    lengths = np.asarray(document_lengths, dtype=np.int64)
    if lengths.size and lengths.max() > np.iinfo(np.int32).max:
        raise ValueError(
            f"a document of {int(lengths.max()):,} tokens is too long for Megatron's int32 lengths"
        )
    pointers = np.zeros(lengths.size, dtype="<i8")
    np.cumsum(lengths[:-1] * token_dtype.itemsize, out=pointers[1:])
    document_indices = np.arange(lengths.size + 1, dtype="<i8")
    return b"".join(
        [
            _HEADER,
            struct.pack("<Q", _VERSION),
            struct.pack("<B", _DTYPE_CODES[token_dtype.name]),
            struct.pack("<Q", lengths.size),
            struct.pack("<Q", document_indices.size),
            lengths.astype("<i4").tobytes(),
            pointers.tobytes(),
            document_indices.tobytes(),
        ]
    )
