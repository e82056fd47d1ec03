import numpy as np
import pytest
from helpers_tokenize import CONTROL_STRINGS, CORPORA, DOLMA2, GPT_NEOX, read_texts, require

from curation.config import ConfigError
from mixes.tokenizer import (
    check_tokenizer_file,
    documents_end_to_end,
    dtype_for,
    load_tokenizer,
    with_document_markers,
)

DOLMA2_EOS = 100257


@pytest.fixture(scope="module")
def dolma2_pair():
    """(fast, reference) tokenizers for OLMo 2 under each special-token policy."""
    require(DOLMA2)
    return {
        policy: (load_tokenizer(DOLMA2, policy), load_tokenizer(DOLMA2, policy, backend="hf"))
        for policy in ("literal", "control")
    }


def _mismatches(fast, reference, texts):
    fast_ids = fast.encode_batch(texts)
    reference_ids = reference.encode_batch(texts)
    return [
        i for i, (a, b) in enumerate(zip(fast_ids, reference_ids, strict=True)) if not np.array_equal(a, b)
    ]


def test_dolma2_uses_tiktoken_and_reports_olmo2_ids(dolma2_pair):
    fast, reference = dolma2_pair["literal"]
    assert (fast.backend, reference.backend) == ("tiktoken", "hf")
    assert fast.vocab_size == 100_278
    assert fast.eos_id == DOLMA2_EOS
    assert fast.bos_id is None
    assert fast.sha256 == reference.sha256 and len(fast.sha256) == 64


@pytest.mark.parametrize("policy", ["literal", "control"])
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_fast_path_gives_hugging_face_ids_on_every_document(dolma2_pair, corpus, policy):
    texts = read_texts(corpus)
    fast, reference = dolma2_pair[policy]
    assert _mismatches(fast, reference, texts) == []


def test_literal_policy_tokenizes_control_strings_in_real_code_as_text(dolma2_pair):
    texts = [t for t in read_texts("code", 3000) if any(s in t for s in CONTROL_STRINGS)]
    assert len(texts) > 20
    fast, reference = dolma2_pair["literal"]
    control_ids = {100257, 100261, 100262, 100263}
    assert all(not control_ids & set(ids.tolist()) for ids in fast.encode_batch(texts))
    assert _mismatches(fast, reference, texts) == []


def test_control_policy_turns_control_strings_into_their_tokens(dolma2_pair):
    text = "mask: |||EMAIL_ADDRESS||| or |||PHONE_NUMBER|||<|endoftext|>next"
    for tokenizer in dolma2_pair["control"]:
        ids = tokenizer.encode_batch([text])[0].tolist()
        assert {100262, 100261, DOLMA2_EOS} <= set(ids)
    literal_ids = dolma2_pair["literal"][0].encode_batch([text])[0].tolist()
    assert not {100262, 100261, DOLMA2_EOS} & set(literal_ids)


def test_control_tokens_sharing_a_stem_are_matched_whole(dolma2_pair):
    for tokenizer in dolma2_pair["control"]:
        assert tokenizer.encode_batch(["<|extra_id_1|><|extra_id_10|>"])[0].tolist() == [100266, 100275]


def test_lone_surrogates_are_replaced_the_same_way_by_both_backends(dolma2_pair):
    fast, reference = dolma2_pair["literal"]
    texts = ["broken \ud800 pair", "fine \U0001f600 emoji"]
    assert _mismatches(fast, reference, texts) == []


def test_gpt_neox_tokenizer_falls_back_to_hugging_face():
    require(GPT_NEOX)
    with pytest.raises(ValueError, match="NFC normalizer"):
        load_tokenizer(GPT_NEOX, backend="tiktoken")
    tokenizer = load_tokenizer(GPT_NEOX)
    assert (tokenizer.backend, tokenizer.vocab_size, tokenizer.eos_id) == ("hf", 50_280, 50_279)


def test_gpt_neox_literal_policy_keeps_whitespace_tokens_but_not_markers():
    require(GPT_NEOX)
    text = "def f():\n        return '<|endoftext|>'  # |||IP_ADDRESS|||"
    literal = load_tokenizer(GPT_NEOX, "literal").encode_batch([text])[0].tolist()
    control = load_tokenizer(GPT_NEOX, "control").encode_batch([text])[0].tolist()
    eight_spaces, eos, ip_address = 50270, 50279, 0
    assert eight_spaces in literal and eight_spaces in control
    assert eos not in literal and ip_address not in literal
    assert eos in control and ip_address in control


@pytest.mark.parametrize(
    ("vocab_size", "requested", "expected"),
    [
        (50_280, "auto", np.uint16),
        (65_536, "auto", np.uint16),
        (65_537, "auto", np.uint32),
        (100_278, "auto", np.uint32),
        (50_280, "uint32", np.uint32),
        (100_278, "uint32", np.uint32),
    ],
)
def test_dtype_is_uint16_only_when_every_id_fits(vocab_size, requested, expected):
    assert dtype_for(vocab_size, requested) == np.dtype(expected)


def test_uint16_request_for_dolma2_is_refused_with_the_field_named():
    with pytest.raises(ConfigError, match=r"output\.dtype.*100,278"):
        dtype_for(100_278, "uint16")


def test_eos_appended_and_bos_refused_when_tokenizer_has_none(dolma2_pair):
    fast = dolma2_pair["literal"][0]
    ids = fast.encode_batch(["hello world"])[0]
    marked = with_document_markers(ids, fast, eos="append")
    assert marked.tolist() == ids.tolist() + [DOLMA2_EOS]
    assert with_document_markers(ids, fast, eos="none") is ids
    with pytest.raises(ConfigError, match="output.bos"):
        with_document_markers(ids, fast, bos="prepend")


def test_documents_end_to_end_are_each_document_with_its_markers_in_order(dolma2_pair):
    fast = dolma2_pair["literal"][0]
    ids = fast.encode_batch(["", *read_texts("web", 40), "hello world"])
    tokens, lengths = documents_end_to_end(ids, fast, np.dtype("<u4"))
    assert tokens.dtype == np.dtype("<u4") and lengths.tolist() == [len(i) + 1 for i in ids]
    assert tokens.tolist() == np.concatenate([with_document_markers(i, fast) for i in ids]).tolist()
    bare, bare_lengths = documents_end_to_end(ids, fast, np.dtype("<u4"), eos="none")
    assert bare.tolist() == np.concatenate(ids).tolist() and bare_lengths.tolist() == [len(i) for i in ids]
    with pytest.raises(ConfigError, match="output.bos"):
        documents_end_to_end(ids, fast, np.dtype("<u4"), bos="prepend")


def test_tiktoken_tables_are_cached_by_content_and_a_corrupt_entry_is_rebuilt(tmp_path, monkeypatch, caplog):
    require(DOLMA2)
    monkeypatch.setenv("CURATION_CACHE", str(tmp_path / "cache"))
    text = ["tables from the cache give the same ids <|endoftext|>"]
    expected = load_tokenizer(DOLMA2, backend="hf").encode_batch(text)[0].tolist()
    assert load_tokenizer(DOLMA2).encode_batch(text)[0].tolist() == expected
    (entry,) = [p for p in (tmp_path / "cache" / "tokenizers").iterdir() if p.suffix not in (".sha256", ".lock")]
    assert entry.name.startswith(load_tokenizer(DOLMA2).sha256)
    entry.write_bytes(entry.read_bytes()[:1000])
    assert load_tokenizer(DOLMA2).encode_batch(text)[0].tolist() == expected
    assert "does not match its recorded sha256" in caplog.text


def test_a_file_that_is_not_a_tokenizer_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_CACHE", str(tmp_path / "cache"))
    not_json = tmp_path / "tokenizer.json"
    not_json.write_text("model: BPE\n")
    with pytest.raises(ValueError, match=f"{not_json} is not JSON"):
        check_tokenizer_file(str(not_json))
    with pytest.raises(ValueError, match=f"{not_json} is not JSON"):
        load_tokenizer(not_json)
