"""The `Decontaminate` Beam stage: count which index n-grams are common in the training data (a compact
shuffle of 64-bit keys), then detect eval items in each document and drop it or cut the matched spans.

Elements are batches (lists) of Documents. The index loads once per worker process through Beam's
`Shared` handle; only keys that hit the eval index are shuffled, never documents. Each batch is screened
once (`may_contain_items`); while the common keys are counted, it waits as a file in the stage's scratch
folder (`curation.document_files`), not in the runner, with the positions of the documents the screen
flagged, the only ones detection looks at.
"""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
import xxhash
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from curation.document import Document
from curation.document_files import set_aside, take_back
from filters.decontaminate.actions import STAGE, apply_action
from filters.decontaminate.config import DecontaminateConfig
from filters.decontaminate.detect import detect_all, indexed_keys, may_contain_items
from filters.decontaminate.index import DecontaminationIndex
from filters.decontaminate.report import EXCERPT_CHARS, DocumentMatch

DOCUMENTS = "documents"
REJECTIONS = "rejections"
EDITS = "edits"
MATCHES = "matches"
KEYS = "keys"
# A batch's file and the positions of its documents that may hold an eval item.
ScreenedBatch = tuple[str, list[int]]
NO_COMMON_KEYS = np.empty(0, np.uint64)


def _load_shared(handle: Shared, index_path: str) -> DecontaminationIndex:
    return handle.acquire(lambda: DecontaminationIndex.load(index_path), tag=index_path)


class _ScreenAndSetAside(beam.DoFn):
    """A batch screened once and written to the scratch folder (`ScreenedBatch`); with `count_keys`, the
    distinct index keys of each flagged document also go out (KEYS), for the count of common n-grams."""

    def __init__(self, index_path: str, handle: Shared, work_dir: str, count_keys: bool):
        self._index_path = index_path
        self._handle = handle
        self._work_dir = work_dir
        self._count_keys = count_keys

    def setup(self):
        self._index = _load_shared(self._handle, self._index_path)

    def process(self, batch: list[Document]):
        texts = [doc.text for doc in batch]
        screen = may_contain_items(self._index, texts)
        if self._count_keys:
            for keys in indexed_keys(self._index, texts, screen):
                for key in keys.tolist():
                    yield beam.pvalue.TaggedOutput(KEYS, key)
        yield set_aside(batch, self._work_dir, "decontaminate"), np.flatnonzero(screen).tolist()


class _SortedKeys(beam.CombineFn):
    def create_accumulator(self):
        return []

    def add_input(self, acc, key):
        acc.append(key)
        return acc

    def merge_accumulators(self, accs):
        return [k for acc in accs for k in acc]

    def extract_output(self, acc):
        return np.unique(np.array(acc, dtype=np.uint64))


class CountCommonNgrams(beam.PTransform):
    """Index keys found in more than `max_doc_frequency` training documents, as one sorted uint64 array.

    Counted over the documents being decontaminated (GPT-3 counted over its training set): each document
    emits the distinct index keys it contains (KEYS of `_ScreenAndSetAside`), so the shuffle carries a few
    64-bit keys per document.
    """

    def __init__(self, max_doc_frequency: int):
        super().__init__()
        self._max_doc_frequency = max_doc_frequency

    def expand(self, keys):
        return (
            keys
            | "CountDocumentsPerKey" >> beam.combiners.Count.PerElement()
            | "KeepCommonKeys" >> beam.FlatMap(_common_key, self._max_doc_frequency)
            # No common key gives no array (the reader's side input is None then), which spares the graph
            # Beam's default value for an empty input: five steps and a side input.
            | "SortIntoArray" >> beam.CombineGlobally(_SortedKeys()).without_defaults()
        )


def _common_key(key_documents: tuple[int, int], max_doc_frequency: int) -> list[int]:
    key, documents = key_documents
    return [key] if documents > max_doc_frequency else []


class _DetectAndAct(beam.DoFn):
    def __init__(self, config: DecontaminateConfig, index_path: str, handle: Shared):
        self._config = config
        self._index_path = index_path
        self._handle = handle

    def setup(self):
        self._index = _load_shared(self._handle, self._index_path)
        self._common_digest = None
        self._evidence = self._index

    def _evidence_index(self, common_keys: np.ndarray) -> DecontaminationIndex:
        """The index without the common keys; rebuilt only when the side input changes."""
        digest = xxhash.xxh3_64_intdigest(common_keys.tobytes())
        if digest != self._common_digest:
            self._evidence = self._index.without_keys(common_keys)
            self._common_digest = digest
        return self._evidence

    def process(self, screened: ScreenedBatch, common_keys: np.ndarray | None = None):
        index = self._evidence_index(NO_COMMON_KEYS if common_keys is None else common_keys)
        kept: list[Document] = []
        uri, flagged = screened
        docs = take_back(uri)
        # Screened against the whole index, of which the evidence index is a part (see `detect_all`).
        screen = np.zeros(len(docs), bool)
        screen[flagged] = True
        for doc, matches in zip(
            docs, detect_all(index, [doc.text for doc in docs], self._config.min_overlap, screen)
        ):
            outcome = apply_action(doc, matches, self._config)
            kept += outcome.documents
            for m in matches:
                excerpt = doc.text[m.start : m.end][:EXCERPT_CHARS]
                yield beam.pvalue.TaggedOutput(MATCHES, DocumentMatch(doc.source, doc.id, m, excerpt))
            for rejection in outcome.rejections:
                Metrics.counter(STAGE, rejection.reason).inc()
                yield beam.pvalue.TaggedOutput(REJECTIONS, rejection)
            if outcome.cuts:
                yield beam.pvalue.TaggedOutput(EDITS, ((doc.source, doc.id), outcome.cuts))
        if kept:
            yield kept


class Decontaminate(beam.PTransform):
    """Batches of documents in; outputs `documents` (batches after decontamination), `rejections`
    (ledger rows), `edits` ((source, doc_id) -> character ranges cut) and `matches` (for the report).
    `work_dir` (local or s3://, visible to every worker) holds the batches while the common keys are
    counted; the caller removes it."""

    def __init__(self, config: DecontaminateConfig, index_path: str | Path, work_dir: str):
        super().__init__()
        self._config = config
        self._index_path = str(index_path)
        self._work_dir = work_dir
        self._handle = Shared()

    def expand(self, batches):
        count = self._config.max_ngram_doc_frequency is not None
        screened = batches | "ScreenAndSetAside" >> beam.ParDo(
            _ScreenAndSetAside(self._index_path, self._handle, self._work_dir, count)
        ).with_outputs(KEYS, main="batches")
        # Without a frequency limit nothing is counted and the index is the evidence as it is (no side input).
        common_keys = {}
        if count:
            counted = screened[KEYS] | "CountCommonNgrams" >> CountCommonNgrams(self._config.max_ngram_doc_frequency)
            common_keys["common_keys"] = beam.pvalue.AsSingleton(counted, default_value=None)
        return screened.batches | "DetectAndRemove" >> beam.ParDo(
            _DetectAndAct(self._config, self._index_path, self._handle), **common_keys
        ).with_outputs(REJECTIONS, EDITS, MATCHES, main=DOCUMENTS)
