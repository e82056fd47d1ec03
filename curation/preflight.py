"""Checks of the files a manifest names (tokenizer, filter models and lists, eval sets), made before a run does any
work: `validate` and `run` both call `check_files`, so a manifest that validates does not fail hours later
at its tokenize or decontaminate phase because a file is not what the manifest says it is. A file on S3
is checked exactly as a local one."""

from __future__ import annotations

import collections
from collections.abc import Callable

from curation import storage
from curation.errors import InputError, ManifestError
from filters.decontaminate.evalsets import read_benchmark, resolve_benchmarks
from filters.decontaminate.index import index_cached
from filters.fasttext_hs import is_fasttext_model
from filters.registry import LIST_KEYS, MODEL_KEYS
from mixes.manifest import LoadedManifest
from mixes.tokenizer import check_tokenizer_file


def check_files(loaded: LoadedManifest) -> None:
    """A one-line ManifestError naming the manifest, the field and the file, for the first bad file."""
    _check_file(loaded, "output.tokenizer", loaded.manifest.output.tokenizer, check_tokenizer_file)
    for i, source in enumerate(loaded.manifest.sources):
        for j, spec in enumerate(source.filters):
            for key in MODEL_KEYS:
                if isinstance(spec.get(key), str):
                    _check_file(loaded, f"sources[{i}].filters[{j}].{key}", spec[key], _fasttext_model)
            for key in LIST_KEYS:
                if isinstance(spec.get(key), str):
                    check = _list_folder if key.endswith("_dir") else _list_file
                    _check_file(loaded, f"sources[{i}].filters[{j}].{key}", spec[key], check)
    _check_eval_sets(loaded)


def _check_file(loaded: LoadedManifest, field: str, value: str, check: Callable[[str], object]) -> None:
    path = loaded.resolve(value)
    try:
        found = storage.exists(path)
    except InputError as exc:  # the store could not be asked
        raise ManifestError(f"{loaded.path}: {field}: {exc}") from None
    if not found:
        raise ManifestError(f"{loaded.path}: {field}: {path} not found")
    try:
        check(path)
    except (InputError, ValueError) as exc:  # unreadable, or not what the field asks for
        raise ManifestError(f"{loaded.path}: {field}: {exc}") from None


def _fasttext_model(path: str) -> None:
    if not is_fasttext_model(path):
        raise ValueError(f"{path} is not a fastText model (.bin or .ftz): it lacks fastText's magic number")


def _list_file(path: str) -> None:
    # The first line is read: a list that does not decompress or decode fails here, not in a worker.
    with storage.open_decompressed(path) as raw:
        raw.readline().decode("utf-8")


def _list_folder(path: str) -> None:
    try:
        lists = storage.list_files(storage.join(path, "*.txt"))
    except InputError:
        lists = []
    if not lists:
        raise ValueError(f"{path} holds no .txt lists (a folder of word lists, one file per language)")


def _check_eval_sets(loaded: LoadedManifest) -> None:
    """Every eval file is read whole, as decontamination will read it: it parses and has the text fields. An
    index already built from the same bytes (named by their sha256) is proof enough, and spares the parse."""
    config = loaded.manifest.decontaminate
    if config is None:
        return
    try:
        if index_cached(config, loaded.path.parent, loaded.relocated):
            return
        for benchmark in resolve_benchmarks(config, loaded.path.parent, loaded.relocated):
            # Reading every item is the check: a bad line raises while it is parsed.
            collections.deque(read_benchmark(benchmark), maxlen=0)
    except (InputError, ManifestError) as exc:
        raise ManifestError(f"{loaded.path}: decontaminate: {exc}") from None
