"""Pure dedupe functions, called without Beam."""

from __future__ import annotations

import random

import numpy as np
import pytest
import xxhash

from filters.dedupe import components
from filters.dedupe.buckets import band_rows, bucket_pairs, link_bucket, sort_into_shards
from filters.dedupe.config import DedupeConfig, MinHashConfig
from filters.dedupe.keep_rule import keep_key
from filters.dedupe.minhash import (
    LshScheme,
    MinHasher,
    candidate_probability,
    estimated_jaccard,
    exact_jaccard,
    lsh_params_for_threshold,
    s_curve,
)
from filters.dedupe.normalize import normalize_text, normalize_unicode_text, normalize_url
from filters.dedupe.paragraphs import apply_paragraph_edits, paragraphs
from filters.dedupe.sketch import make_hasher, sketch_batch
from tests.helpers_dedupe import cc_documents


def test_normalized_text_ignores_case_punctuation_digits_diacritics_and_spacing():
    assert normalize_text("Café  au LAIT, 1999!\n") == normalize_text("cafe au lait 2024")
    assert normalize_text("a-b") == "a b"


def test_ascii_text_normalizes_as_the_unicode_character_classes_do():
    every_ascii = "".join(map(chr, range(128)))
    texts = [d.text.encode("ascii", "ignore").decode() for d in cc_documents(200)]
    texts += [every_ascii, " 1,5.2 -- x\x1c y\t\r\n", "...", "", "3.14,15 a.b,c 7.", "a\x1f\x0b\x1eb c"]
    for text in texts:
        assert normalize_text(text) == normalize_unicode_text(text)


def test_non_ascii_text_normalizes_as_the_unicode_character_classes_do():
    # Typographic marks, no-break spaces and accented Latin letters take the ASCII path once mapped; digits
    # of other scripts, the Arabic decimal separator, marks standing alone, other scripts and C1 controls
    # keep the Unicode path; \x1c-\x1f at the ends are stripped as str.strip() does.
    texts = [d.text for d in cc_documents(400) if not d.text.isascii()]
    texts += ["\x1cÉ x\x1f", "3\u0301.5 é", "1\u066b5 é", "İstanbul é", "½ é ²", "ΣΑΣ é", "a\x96b é", "Ǆ é"]
    assert len(texts) > 100
    for text in texts:
        assert normalize_text(text) == normalize_unicode_text(text)
    assert normalize_text("Naïve\xa0FAÇADE — “quoted” 3.5…") == "naive facade quoted 0"


@pytest.mark.parametrize(
    "a, b",
    [
        ("http://www.Example.com/path/?b=2&a=1#frag", "https://example.com/path?a=1&b=2"),
        ("https://example.com:443/x?utm_source=feed", "https://example.com/x"),
    ],
)
def test_equivalent_urls_normalize_to_the_same_string(a, b):
    assert normalize_url(a) == normalize_url(b)


def test_different_pages_keep_different_urls():
    assert normalize_url("https://example.com/a") != normalize_url("https://example.com/b")
    assert normalize_url("https://example.com:8080/a") != normalize_url("https://example.com/a")


def test_keep_rule_prefers_listed_sources_then_unlisted_by_name_then_smallest_hash():
    priority = ["wiki", "web"]
    keys = [
        keep_key("zeta", "1", "00", priority),
        keep_key("web", "1", "00", priority),
        keep_key("alpha", "1", "00", priority),
        keep_key("wiki", "9", "ff", priority),
        keep_key("wiki", "2", "aa", priority),
    ]
    ordered = [(k.source, k.doc_id) for k in sorted(keys)]
    assert ordered == [("wiki", "2"), ("wiki", "9"), ("web", "1"), ("alpha", "1"), ("zeta", "1")]


def _hasher(**overrides) -> MinHasher:
    return MinHasher(LshScheme.from_config(MinHashConfig(**overrides)))


def test_signature_estimates_the_exact_jaccard_of_an_edited_real_document():
    text = cc_documents(1)[0].text
    words = text.split()
    rng = random.Random(7)
    for _ in range(len(words) // 25):
        words[rng.randrange(len(words))] = "zzz"
    hasher = _hasher(bands=32, rows=8)
    a, b = hasher.shingles(normalize_text(text)), hasher.shingles(normalize_text(" ".join(words)))
    sig = hasher.signatures([a, b])
    assert abs(estimated_jaccard(sig[0], sig[1]) - exact_jaccard(a, b)) < 0.1
    assert 0.5 < exact_jaccard(a, b) < 0.95


def test_batched_signatures_equal_one_document_at_a_time_including_empty_and_huge_documents():
    hasher = _hasher()
    texts = [d.text for d in cc_documents(5)] + ["", "word " * 70_000 + "end"]
    shingles = [hasher.shingles(normalize_text(t)) for t in texts]
    together = hasher.signatures(shingles)
    one_by_one = np.vstack([hasher.signatures([s]) for s in shingles])
    assert (together == one_by_one).all()
    assert (together[5] == np.iinfo(np.uint32).max).all()


def _fmix64(h: int) -> int:
    mask = (1 << 64) - 1
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB93FE53B85C3) & mask
    return h ^ (h >> 33)


def _reference_shingles(hasher: MinHasher, text: str) -> list[int]:
    """Shingles by the definition, one Python integer at a time."""
    words = normalize_text(text).split(" ") if normalize_text(text) else []
    hashes = [xxhash.xxh3_64_intdigest(w.encode("utf-8", "surrogatepass")) for w in words]
    n = min(hasher.scheme.ngram, len(hashes))
    mults = [int(m) for m in hasher._position_mult]
    return (
        [
            _fmix64(sum(h * m for h, m in zip(hashes[i : i + n], mults)) & ((1 << 64) - 1)) >> 32
            for i in range(len(hashes) - n + 1)
        ]
        if hashes
        else []
    )


def test_batched_shingles_are_each_texts_word_n_grams_whatever_their_neighbours():
    hasher = _hasher()
    # Short texts (fewer words than n), an empty one, accents and a lone surrogate between long ones.
    texts = [d.text for d in cc_documents(3)] + ["one", "", "two words", "Ünïcödé wörds ünd mörë wörds hëre"]
    texts += ["lone \udc80 surrogate in a text of words", cc_documents(4)[3].text]
    batch = hasher.batch_shingles([normalize_text(t) for t in texts])
    assert [b.tolist() for b in batch] == [_reference_shingles(hasher, t) for t in texts]


def test_signatures_are_the_minima_of_the_universal_hashes_including_those_that_wrap_to_zero():
    hasher = _hasher()
    p = (1 << 31) - 1
    a, b = [int(v) for v in hasher._a], [int(v) for v in hasher._b]
    # For each of a few permutations, the shingle that permutation maps to 0: (a x + b) is a multiple of
    # p, which the Mersenne folds leave at p before the conditional subtraction.
    zeros = [(-b[j] * pow(a[j], -1, p)) % p for j in (0, 7, 111)]
    real = hasher.shingles(normalize_text(cc_documents(1)[0].text)).tolist()
    sets = [real[:300], real[:300] + zeros, zeros[:1], real + zeros[1:]]
    sigs = hasher.signatures([np.array(s, dtype=np.uint64) for s in sets])
    expected = [[min((a[j] * x + b[j]) % p for x in s) for j in range(len(a))] for s in sets]
    assert sigs.tolist() == expected
    assert sigs[1, 0] == sigs[1, 7] == sigs[1, 111] == 0


def test_same_text_gets_the_same_band_keys_and_different_texts_do_not():
    hasher = _hasher()
    docs = cc_documents(2)
    sigs = hasher.signatures(
        [hasher.shingles(normalize_text(t)) for t in (docs[0].text, docs[0].text, docs[1].text)]
    )
    keys = hasher.band_keys(sigs)
    assert (keys[0] == keys[1]).all()
    assert not (keys[0] == keys[2]).any()


def test_threshold_derives_bands_and_rows_whose_s_curve_crosses_half_near_it():
    bands, rows = lsh_params_for_threshold(0.8, 112)
    assert bands * rows <= 112
    assert abs(candidate_probability(0.8, bands, rows) - 0.5) < 0.1
    assert abs(s_curve(bands, rows)["midpoint_jaccard"] - 0.8) < 0.03
    curve = s_curve(14, 8)
    assert round(curve["approx_threshold"], 2) == 0.72
    assert curve["candidate_probability"][0.8] == pytest.approx(0.9235, abs=1e-4)


def test_paragraph_spans_cover_long_lines_with_their_newline():
    text = "a long enough first line\nshort\na long enough first line\n"
    paras = paragraphs(text, min_paragraph_chars=10)
    assert [(p.start, p.end) for p in paras] == [(0, 25), (31, 56)]
    assert paras[0].digest == paras[1].digest
    assert apply_paragraph_edits(text, [(31, 56)]) == "a long enough first line\nshort\n"


def test_paragraph_edits_accept_overlapping_spans_in_any_order():
    assert apply_paragraph_edits("abcdefgh", [(5, 7), (1, 3), (2, 4)]) == "aeh"


def test_star_rounds_reach_the_same_components_as_union_find():
    rng = random.Random(3)
    edges = [(rng.randrange(400), rng.randrange(400)) for _ in range(350)]
    labels = components.connected_components(edges)
    reference = components.resolve_residual((u, v) for u, v in edges if u != v)
    assert labels == {u: reference[u] for u in labels}
    assert all(labels[u] == min(n for n in labels if labels[n] == labels[u]) for u in labels)


def test_packed_band_rows_find_the_buckets_of_a_direct_grouping_whatever_the_shards_and_batches():
    config = DedupeConfig(minhash=MinHashConfig())
    docs = cc_documents(120)
    edited = [type(d)(f"{d.id}-edited", d.text.replace(" the ", " a ", 1), d.source) for d in docs[:30]]
    sketches = sketch_batch(docs + edited, config, make_hasher(config))
    buckets: dict[tuple[int, int], set[int]] = {}
    for s in sketches:
        for band, key in enumerate(np.frombuffer(s.band_keys, dtype=np.uint64).tolist()):
            buckets.setdefault((band, key), set()).add(s.node)
    expected = {p for nodes in buckets.values() for p in link_bucket(sorted(nodes))}
    assert len(expected) >= 30
    batch_of = {s.node: i // 17 for i, s in enumerate(sketches)}
    for shards in (1, 5, 256):
        runs = [
            sort_into_shards(band_rows(sketches[i : i + 17], i // 17, "global"), shards)
            for i in range(0, len(sketches), 17)
        ]
        found = [
            pair
            for shard in range(shards)
            for pair in bucket_pairs(
                rows[offsets[shard] : offsets[shard + 1]].tobytes() for rows, offsets in runs
            )
        ]
        assert all(batch_of[u] == bu and batch_of[v] == bv for (u, bu), (v, bv) in found)
        assert {(u, v) for (u, _), (v, _) in found} == expected


def test_a_large_bucket_is_linked_as_a_star_plus_a_chain_and_a_small_one_as_a_clique():
    assert sorted(link_bucket([1, 2, 3])) == [(1, 2), (1, 3), (2, 3)]
    large = list(link_bucket(list(range(10))))
    assert len(large) == 9 + 8 and (0, 9) in large and (8, 9) in large and (2, 9) not in large
