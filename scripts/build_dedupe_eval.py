"""Build the near-duplicate evaluation set from real text in ../shared (deterministic, seeded by name).

Natural duplicates: exact copies among IMDB reviews and the permissive code sample, and OSCAR 2019
documents present in both the `original` and `deduplicated` configs. Synthetic near duplicates: BBC
news articles copied with word substitutions, insertions and deletions until the word 5-gram Jaccard
similarity reaches a drawn target: positives in [0.8, 0.98], hard negatives in [0.2, 0.5], nothing in
between. Families of related but distinct texts, where connected components chain (`licence_families`):
the LICENSE files and licence headers of the code sample, BSD-2 made from each BSD-3 text, and documents
revised step by step from one real licence into a related one (GPL-3.0 into AGPL-3.0, ...).

Truth is per pair and never transitive: two records are duplicates when they share a group (the same
origin) or when their exact 5-gram Jaccard is at least 0.8, found by an exact prefix-filtered similarity
join, not by MinHash. Real corpora hold near duplicates nobody labelled (a licence header with another
year); chained families must not count A and C as duplicates because both are close to B.

Every record: id, source, text, group, kind, jaccard (to the group's original, for synthetic copies),
near_duplicates (keys `source/id` of the records in other groups at Jaccard >= 0.8).
Usage: python scripts/build_dedupe_eval.py [--shared ../shared] [--out dedupe_eval.jsonl.gz]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import random
import re
from collections import defaultdict
from itertools import combinations
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


def link_near_duplicates(records: list[dict]) -> list[dict]:
    """Each record with the keys of the records of other groups at Jaccard >= DUPLICATE_JACCARD."""
    links: dict[int, set[str]] = defaultdict(set)
    for i, j in near_duplicate_pairs([r["text"] for r in records]):
        if records[i]["group"] != records[j]["group"]:
            links[i].add(record_key(records[j]))
            links[j].add(record_key(records[i]))
    return [{**r, "near_duplicates": sorted(links[i])} for i, r in enumerate(records)]


def record_key(record: dict) -> str:
    return f"{record['source']}/{record['id']}"


def true_pairs(records: list[dict]) -> set[tuple[str, str]]:
    """Sorted key pairs that are duplicates: the same group, or linked as near duplicates."""
    members: dict[str, list[str]] = defaultdict(list)
    for r in records:
        members[r["group"]].append(record_key(r))
    pairs = {p for keys in members.values() for p in combinations(sorted(keys), 2)}
    return pairs | {tuple(sorted((record_key(r), other))) for r in records for other in r["near_duplicates"]}


def score_clustering(records: list[dict], clusters: dict[str, str], removed: set[str]) -> dict:
    """Pair precision and recall of a clustering (record key -> cluster) over every record and over the
    licence families alone, and how many removals are true duplicates of their cluster's kept record."""
    from filters.dedupe.evaluation import pair_precision_recall

    truth = true_pairs(records)
    families = {record_key(r) for r in records if r["source"] == "licences"}
    kept_of = {clusters[k]: k for k in clusters if k not in removed}
    removal_pairs = [tuple(sorted((k, kept_of[clusters[k]]))) for k in removed]
    return {
        "all": pair_precision_recall(truth, clusters),
        "licence_families": pair_precision_recall(
            {p for p in truth if p[0] in families and p[1] in families},
            {k: c for k, c in clusters.items() if k in families},
        ),
        "removed": len(removed),
        "removed_not_duplicate_of_kept": sum(p not in truth for p in removal_pairs),
    }


# Pairs of related real licences (licensee's test fixtures in the code sample) that a document is revised
# through, one step at a time: each step is within the threshold of the next, the ends are far apart.
REVISED_LICENCES = [
    ("gpl-3.0_markdown", "agpl-3.0_markdown"),
    ("cc-by-4.0_markdown", "cc-by-sa-4.0_markdown"),
    ("gpl-2.0_markdown", "lgpl-2.1_markdown"),
    ("bsd-3-clause_markdown", "crlf-bsd"),
    ("mit_markdown", "unlicense_markdown"),
    ("apache-2.0_markdown", "mpl-2.0_markdown"),
]
REVISION_STEPS = 12
LICENCE_FIXTURES = "licensee/licensee:spec/fixtures/"
LICENCE_FILE = re.compile(r"(^|/)(LICEN[CS]E|COPYING)(\.md|\.txt)?$", re.IGNORECASE)
# A file's opening comment block (#, //, /* */, --, ;) that mentions a licence.
LEADING_COMMENT = re.compile(r"\A(?:[ \t]*(?:#|//|/\*|\*|--|;).*\n)+")
BSD3_THIRD_CLAUSE = re.compile(r"\n[^\n]*Neither the name.*?prior written permission\.\r?\n", re.DOTALL)


def revisions(start: str, end: str, steps: int) -> list[str]:
    """`start` rewritten into `end` in `steps` steps, a slice of words at a time from the top, as a
    document is revised: version k holds the first k/steps of `end` and the rest of `start`."""
    a, b = re.split(r"(?<=\S)(?=\s)", start), re.split(r"(?<=\S)(?=\s)", end)
    return ["".join(b[: round(k / steps * len(b))] + a[round(k / steps * len(a)) :]) for k in range(1, steps)]


def licence_families(code_rows: list[dict], headers: int) -> list[dict]:
    """LICENSE files, a seeded sample of distinct licence headers, BSD-2 made from every BSD-3 file by
    dropping its third clause (the BSD-2 wording), and the revisions of REVISED_LICENCES."""
    out = []
    licence_files = [r for r in code_rows if LICENCE_FILE.search(r["path"])]
    for r in licence_files:
        out.append(_record(r["id"], "licences", r["text"], f"licence:{_digest(r['text'])}", "licence_file"))
        bsd2 = BSD3_THIRD_CLAUSE.sub("\n", r["text"], count=1)
        if bsd2 != r["text"]:
            out.append(
                _record(f"{r['id']}#bsd-2", "licences", bsd2, f"licence:{_digest(bsd2)}", "licence_bsd2")
            )
    comments: dict[str, str] = {}
    for r in code_rows:
        opening = LEADING_COMMENT.match(r["text"])
        if opening and re.search(r"licen[cs]e", opening.group(0), re.IGNORECASE):
            comments.setdefault(opening.group(0), r["id"])
    for text in sorted(comments, key=lambda t: _digest(f"{SEED_NAME}/{t}"))[:headers]:
        out.append(
            _record(
                f"{comments[text]}#header", "licences", text, f"licence:{_digest(text)}", "licence_header"
            )
        )
    by_id = {r["id"]: r["text"] for r in licence_files}
    for start, end in REVISED_LICENCES:
        texts = (by_id[f"{LICENCE_FIXTURES}{name}/LICENSE.md"] for name in (start, end))
        for k, text in enumerate(revisions(*texts, REVISION_STEPS), start=1):
            doc_id = f"{start}->{end}/{k}"
            out.append(_record(doc_id, "licences", text, f"revision:{doc_id}", "licence_revision"))
    return out


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
    shared: Path,
    imdb_singletons: int = 600,
    code_singletons: int = 300,
    bbc_originals: int = 300,
    licence_headers: int = 150,
) -> list[dict]:
    corpora = shared / "corpora"
    imdb = _read_jsonl(corpora / "reviews/imdb-aclImdb-50k-labeled.jsonl.zst")
    code = _read_jsonl(corpora / "code/github-permissive-sample.jsonl.gz")
    oscar = _read_jsonl(corpora / "web/oscar2019-166langs-excerpts.jsonl.gz")
    bbc = _read_jsonl(corpora / "news/bbc-fulltext-2225.jsonl.gz")
    return link_near_duplicates(
        natural_exact_duplicates(imdb, "imdb", imdb_singletons)
        + natural_exact_duplicates(code, "code", code_singletons)
        + oscar_config_pairs(oscar)
        + synthetic_near_duplicates(bbc, bbc_originals)
        + licence_families(code, licence_headers)
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
