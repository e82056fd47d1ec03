"""The URL blocklist, PII masking, C4 bad words and text normalisation (issue #14) against datatrove
0.10.1's URLFilter, PIIFormatter, C4BadWordsFilter and FTFYFormatter on the same real web documents and the
same lists: one JSON line of decisions per document, and docs/s per filter on one core; and code_quality_v1's
docs/s on ../shared's GitHub sample (datatrove has no code filter). Run once in each environment:

    python bench/bench_issue14_filters.py ours --domains DOMAINS --out ours.jsonl
    ~/peers/datatrove/bin/python bench/bench_issue14_filters.py datatrove --domains DOMAINS --out dt.jsonl

DOMAINS is the domain blocklist datatrove ships (the `domains` member of its
assets/url_filterblacklistsv0_3_0.tar.gz); the other lists are this repo's lists/.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
URL_LISTS = REPO / "lists" / "fineweb-url"
BADWORDS_DIR = REPO / "lists" / "ldnoobw"
CORPORA = [
    *sorted((SHARED / "corpora/web").glob("*.json*.gz")),
    SHARED / "corpora/news/bbc-fulltext-2225.jsonl.gz",
]


def load_documents(limit: int | None = None) -> list[dict]:
    """(id, text, url or None) of every web and news document of ../shared, in a fixed order."""
    docs = []
    for path in CORPORA:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f):
                record = json.loads(line)
                metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
                url = metadata.get("url") or record.get("url")
                docs.append({"id": f"{path.name}:{number}", "text": record.get("text") or "", "url": url})
    return docs[:limit]


def load_code_documents() -> list[dict]:
    """(text, language) of every file of ../shared's GitHub sample."""
    with gzip.open(SHARED / "corpora/code/github-permissive-sample.jsonl.gz", "rt", encoding="utf-8") as f:
        return [{"text": r["text"], "language": r.get("language")} for r in map(json.loads, f)]


def _timed(fn, docs) -> tuple[list, float]:
    start = time.perf_counter()
    results = [fn(d) for d in docs]
    return results, len(docs) / (time.perf_counter() - start)


def ours(docs: list[dict], domains: str) -> tuple[list[dict], dict[str, float]]:
    sys.path.insert(0, str(REPO))
    from filters.base import TextView
    from filters.c4_badwords import C4BadWordsConfig, C4BadWordsFilter
    from filters.code_quality import CodeQualityConfig, CodeQualityFilter
    from filters.normalize_text import NormalizeText, NormalizeTextConfig
    from filters.pii import PIIMask, PIIMaskConfig
    from filters.url_blocklist import URLBlocklistConfig, URLBlocklistFilter

    url_filter = URLBlocklistFilter(
        URLBlocklistConfig(
            domains_file=domains,
            urls_file=str(URL_LISTS / "urls.txt.gz"),
            banned_words_file=str(URL_LISTS / "banned_words.txt"),
            banned_subwords_file=str(URL_LISTS / "banned_subwords.txt"),
            soft_banned_words_file=str(URL_LISTS / "soft_banned_words.txt"),
        )
    )
    url_filter.setup()
    # datatrove masks e-mails and IPv4 only: phone numbers stay, for a like-for-like comparison.
    pii = PIIMask(PIIMaskConfig(mask_phone_numbers=False))
    badwords = C4BadWordsFilter(C4BadWordsConfig(words_dir=str(BADWORDS_DIR)))
    with_url = [d for d in docs if d["url"]]
    url_reasons, url_rate = _timed(lambda d: url_filter.reject_reason(url_filter.score(TextView("", {"url": d["url"]}))), with_url)
    masked, pii_rate = _timed(lambda d: pii.modify(TextView(d["text"]))[0], docs)
    dropped, bad_rate = _timed(lambda d: badwords.reject_reason(badwords.score(TextView(d["text"]))) is not None, docs)
    # FTFYFormatter's settings (no Unicode or whitespace normalisation), then our defaults (NFC, whitespace).
    ftfy_only = NormalizeText(NormalizeTextConfig(normalization=None, normalize_whitespace=False))
    fixed, ftfy_rate = _timed(lambda d: ftfy_only.modify(TextView(d["text"]))[0], docs)
    normalize = NormalizeText(NormalizeTextConfig())
    normalized, normalize_rate = _timed(lambda d: normalize.modify(TextView(d["text"])), docs)
    code_filter = CodeQualityFilter(CodeQualityConfig())
    code_docs = load_code_documents()
    code_view = lambda d: TextView(d["text"], {"language": d["language"]})  # noqa: E731
    _, code_rate = _timed(lambda d: code_filter.reject_reason(code_filter.score(code_view(d))), code_docs)
    rows = _rows(docs, with_url, url_reasons, masked, dropped, fixed)
    for row, (_, measured) in zip(rows, normalized):
        row["normalize_fixes"] = measured["fixes"]
    rates = {"url": url_rate, "pii": pii_rate, "badwords": bad_rate, "ftfy": ftfy_rate, "normalize": normalize_rate}
    return rows, rates | {"code_quality": code_rate}


def datatrove_url_filter(domains: str | None):
    """datatrove's URLFilter with this repo's URL lists and `domains` (a domain list file, or None)."""
    from datatrove.pipeline.filters import URLFilter
    from tldextract import TLDExtract

    def lines(path: Path):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            return [line for line in f]

    url_filter = URLFilter(
        extra_domains=lines(Path(domains)) if domains else None,
        extra_urls=lines(URL_LISTS / "urls.txt.gz"),
        banned_words=lines(URL_LISTS / "banned_words.txt"),
        banned_subwords=lines(URL_LISTS / "banned_subwords.txt"),
        soft_banned_words=lines(URL_LISTS / "soft_banned_words.txt"),
        use_integrated_lists=False,
    )
    # The public-suffix snapshot tldextract ships, as ours uses (no download; none is possible offline).
    url_filter.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)
    return url_filter


def datatrove(docs: list[dict], domains: str) -> tuple[list[dict], dict[str, float]]:
    import datatrove.pipeline.filters.c4_filters as c4_filters
    from datatrove.data import Document
    from datatrove.pipeline.filters import C4BadWordsFilter
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter

    url_filter = datatrove_url_filter(domains)
    # The same LDNOOBW lists as ours, in place of the download from GitHub.
    c4_filters.cached_asset_path_or_download = lambda url, **_: str(BADWORDS_DIR / f"{url.rsplit('/', 1)[-1]}.txt")
    badwords = C4BadWordsFilter()
    pii = PIIFormatter(email_replacement="|||EMAIL_ADDRESS|||", ip_replacement="|||IP_ADDRESS|||")

    def url_reason(d):
        verdict = url_filter.filter(Document(text="", id=d["id"], metadata={"url": d["url"]}))
        return None if verdict is True else verdict[1]

    def dropped(d):
        return badwords.filter(Document(text=d["text"], id=d["id"], metadata={})) is not True

    with_url = [d for d in docs if d["url"]]
    url_reasons, url_rate = _timed(url_reason, with_url)
    masked, pii_rate = _timed(lambda d: pii.format(d["text"]), docs)
    dropped_flags, bad_rate = _timed(dropped, docs)
    ftfy_formatter = FTFYFormatter()
    fixed, ftfy_rate = _timed(lambda d: ftfy_formatter.format(d["text"]), docs)
    rows = _rows(docs, with_url, url_reasons, masked, dropped_flags, fixed)
    return rows, {"url": url_rate, "pii": pii_rate, "badwords": bad_rate, "ftfy": ftfy_rate}


def _rows(docs, with_url, url_reasons, masked, dropped, fixed) -> list[dict]:
    reason_of = {d["id"]: r for d, r in zip(with_url, url_reasons)}
    return [
        {
            "id": d["id"],
            "url": d["url"],
            "url_reason": reason_of.get(d["id"]),
            "pii_sha1": hashlib.sha1(text.encode()).hexdigest(),
            "badwords_dropped": flag,
            "text_sha1": hashlib.sha1(d["text"].encode()).hexdigest(),
            "ftfy_sha1": hashlib.sha1(fixed_text.encode()).hexdigest(),
        }
        for d, text, flag, fixed_text in zip(docs, masked, dropped, fixed)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["ours", "datatrove"])
    parser.add_argument("--domains", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    docs = load_documents(args.limit)
    rows, rates = (ours if args.side == "ours" else datatrove)(docs, args.domains)
    with open(args.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(json.dumps({"side": args.side, "documents": len(docs), "docs_per_second": rates}))


if __name__ == "__main__":
    main()
