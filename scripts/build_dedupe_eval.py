"""Build the near-duplicate evaluation set from real text in ../shared (deterministic, seeded by name).

Natural duplicates: exact copies among IMDB reviews and the permissive code sample, and OSCAR 2019
documents present in both the `original` and `deduplicated` configs. Synthetic near duplicates: BBC
news articles copied with word substitutions, insertions and deletions until the word 5-gram Jaccard
similarity reaches a drawn target: positives in [0.8, 0.98], hard negatives in [0.2, 0.5], nothing in
between. Real corpora also hold near duplicates nobody labelled (a licence header with another year,
a review posted twice with one word changed): any two records whose exact 5-gram Jaccard is at least
0.8 are merged into one group, found by an exact prefix-filtered similarity join, not by MinHash.

Every record: id, source, text, group (records sharing a group are duplicates), kind, jaccard.
Usage: python scripts/build_dedupe_eval.py [--shared ../shared] [--out dedupe_eval.jsonl.gz]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import random
from collections import defaultdict
from pathlib import Path

import xxhash
import zstandard

SEED_NAME = "dedupe_eval_v1"
NGRAM = 5
POSITIVE_JACCARD = (0.8, 0.98)
NEGATIVE_JACCARD = (0.2, 0.5)
# Exact 5-gram Jaccard at or above which two records are true duplicates whatever their origin.
DUPLICATE_JACCARD = 0.8


def _rng(*names: str) -> random.Random:
    return random.Random(xxhash.xxh64_intdigest("/".join((SEED_NAME, *names)).encode()))


def _read_jsonl(path: Path) -> list[dict]:
    if path.suffix == ".zst":
        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
            return [json.loads(line) for line in io.TextIOWrapper(reader, encoding="utf-8")]
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        return [json.loads(line) for line in stream]


def _digest(text: str) -> str:
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogatepass"))


def natural_exact_duplicates(rows: list[dict], source: str, singletons: int) -> list[dict]:
    """Every member of a group of identical texts, plus a seeded sample of texts that occur once."""
    by_text: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_text[r["text"]].append(r)
    out = []
    unique = []
    for text, members in by_text.items():
        if len(members) > 1:
            out += [
                _record(r["id"], source, text, f"{source}:{_digest(text)}", "natural_exact") for r in members
            ]
        else:
            unique.append(members[0])
    unique.sort(key=lambda r: _digest(f"{SEED_NAME}/{r['id']}"))
    out += [
        _record(r["id"], source, r["text"], f"{source}:{r['id']}", "singleton") for r in unique[:singletons]
    ]
    return out


def oscar_config_pairs(rows: list[dict]) -> list[dict]:
    """An `original` document and the `deduplicated` document at the same position of the same
    language are one group when they open with the same 64 characters."""
    by_lang: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        kind = "original" if "original" in r["config"] else "deduplicated"
        by_lang[r["lang"]][kind].append(r)
    out = []
    for lang in sorted(by_lang):
        originals, deduplicated = by_lang[lang]["original"], by_lang[lang]["deduplicated"]
        for i, r in enumerate(originals + deduplicated):
            pos = i if i < len(originals) else i - len(originals)
            partner = (deduplicated if i < len(originals) else originals)[pos : pos + 1]
            paired = partner and partner[0]["text"][:64] == r["text"][:64]
            group = f"oscar:{lang}:{pos}" if paired else f"oscar:{r['config']}:{pos}"
            out.append(_record(f"{r['config']}/{pos}", "oscar", r["text"], group, "natural_config_pair"))
    return out


def shingle_set(text: str) -> set[tuple[str, ...]]:
    from filters.dedupe.normalize import normalize_text, words

    toks = words(normalize_text(text))
    n = min(NGRAM, len(toks))
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)} if toks else set()


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def edited_copy(text: str, target: float, vocabulary: list[str], rng: random.Random) -> tuple[str, float]:
    """`text` with seeded word edits (substitute, insert, delete), the fewest whose 5-gram Jaccard
    with the original is at most `target`; returns the copy and its measured Jaccard."""
    original_words = text.split()
    edits = [
        (rng.choice(("substitute", "insert", "delete")), rng.random(), rng.choice(vocabulary))
        for _ in range(len(original_words))
    ]
    reference = shingle_set(text)

    def apply(k: int) -> str:
        ws = list(original_words)
        for op, where, word in edits[:k]:
            i = min(int(where * len(ws)), len(ws) - 1)
            if op == "substitute":
                ws[i] = word
            elif op == "insert":
                ws.insert(i, word)
            elif len(ws) > 1:
                del ws[i]
        return " ".join(ws)

    lo, hi = 1, len(edits)
    while lo < hi:
        mid = (lo + hi) // 2
        if jaccard(reference, shingle_set(apply(mid))) <= target:
            hi = mid
        else:
            lo = mid + 1
    copy = apply(lo)
    return copy, jaccard(reference, shingle_set(copy))


def synthetic_near_duplicates(rows: list[dict], originals: int) -> list[dict]:
    """Per original: two positive copies and one hard negative at drawn Jaccard targets."""
    seen, pool = set(), []
    for r in sorted(rows, key=lambda r: _digest(f"{SEED_NAME}/{r['id']}")):
        if r["text"] not in seen and len(r["text"].split()) >= 150:
            seen.add(r["text"])
            pool.append(r)
    chosen = pool[:originals]
    vocabulary = sorted({w for r in pool[originals : originals + 200] for w in r["text"].split()})
    out = []
    for r in chosen:
        rid = str(r["id"])
        out.append(
            _record(f"{rid}/original", "bbc_edits", r["text"], f"bbc:{rid}", "synthetic_original", 1.0)
        )
        rng = _rng("bbc", rid)
        for copy_index, (kind, (low, high)) in enumerate(
            [("synthetic_positive", POSITIVE_JACCARD)] * 2 + [("synthetic_negative", NEGATIVE_JACCARD)]
        ):
            target = rng.uniform(low, high)
            text, measured = edited_copy(r["text"], target, vocabulary, rng)
            if kind == "synthetic_positive" and measured < POSITIVE_JACCARD[0]:
                continue
            group = f"bbc:{rid}" if kind == "synthetic_positive" else f"bbc:{rid}/negative{copy_index}"
            out.append(_record(f"{rid}/copy{copy_index}", "bbc_edits", text, group, kind, measured))
    return out


def near_duplicate_pairs(texts: list[str], min_jaccard: float = DUPLICATE_JACCARD) -> list[tuple[int, int]]:
    """All index pairs with exact shingle Jaccard >= min_jaccard. Prefix filtering (Chaudhuri et al.
    2006): with shingles ordered rarest first, such a pair must share one of each set's first
    |S| - ceil(min_jaccard * |S|) + 1 shingles, so only those are indexed."""
    sets = [shingle_set(t) for t in texts]
    frequency: dict[tuple[str, ...], int] = defaultdict(int)
    for s in sets:
        for sh in s:
            frequency[sh] += 1
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    pairs = set()
    for i, s in enumerate(sets):
        ordered = sorted(s, key=lambda sh: (frequency[sh], sh))
        prefix = ordered[: len(ordered) - math.ceil(min_jaccard * len(ordered)) + 1]
        candidates = {j for sh in prefix for j in index[sh]}
        for j in sorted(candidates):
            if jaccard(s, sets[j]) >= min_jaccard:
                pairs.add((j, i))
        for sh in prefix:
            index[sh].append(i)
    return sorted(pairs)


def merge_near_duplicate_groups(records: list[dict]) -> list[dict]:
    """Records joined by a near-duplicate pair end up in one group (the smallest group name)."""
    parent = {r["group"]: r["group"] for r in records}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for i, j in near_duplicate_pairs([r["text"] for r in records]):
        a, b = find(records[i]["group"]), find(records[j]["group"])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [{**r, "group": find(r["group"])} for r in records]


def _record(
    doc_id: str, source: str, text: str, group: str, kind: str, jaccard_to_group: float | None = None
):
    return {
        "id": doc_id,
        "source": source,
        "text": text,
        "group": group,
        "kind": kind,
        "jaccard": jaccard_to_group,
    }


def build_eval(
    shared: Path, imdb_singletons: int = 600, code_singletons: int = 300, bbc_originals: int = 300
) -> list[dict]:
    corpora = shared / "corpora"
    imdb = _read_jsonl(corpora / "reviews/imdb-aclImdb-50k-labeled.jsonl.zst")
    code = _read_jsonl(corpora / "code/github-permissive-sample.jsonl.gz")
    oscar = _read_jsonl(corpora / "web/oscar2019-166langs-excerpts.jsonl.gz")
    bbc = _read_jsonl(corpora / "news/bbc-fulltext-2225.jsonl.gz")
    return merge_near_duplicate_groups(
        natural_exact_duplicates(imdb, "imdb", imdb_singletons)
        + natural_exact_duplicates(code, "code", code_singletons)
        + oscar_config_pairs(oscar)
        + synthetic_near_duplicates(bbc, bbc_originals)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--out", type=Path, default=Path("dedupe_eval.jsonl.gz"))
    args = parser.parse_args()
    records = build_eval(args.shared)
    with gzip.open(args.out, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} records, {len({r['group'] for r in records})} groups -> {args.out}")


if __name__ == "__main__":
    main()
