"""Near-duplicate clusters never chain past the threshold: every removal meets `verify_jaccard` against
the copy that is kept (issue #15). Real texts: three Apache licence headers of the code sample that form
a natural chain (kubeflow's ~ HuggingFace's 2020 at 0.82, HuggingFace's 2020 ~ 2022 at 0.91, kubeflow's ~
HuggingFace's 2022 at 0.75), and a document revised step by step from the MIT licence into the Unlicense."""

from __future__ import annotations

import pytest

from curation.document import Document
from filters.dedupe.config import DedupeConfig, MinHashConfig
from filters.dedupe.minhash import exact_jaccard
from filters.dedupe.normalize import normalize_text
from filters.dedupe.sketch import make_hasher
from filters.dedupe.stars import star_clusters
from tests.helpers_dedupe import cc_documents, code_sample_texts, eval_builder, run_dedupe

HF_DATASETS = (
    "allenai/OLMo:inference/efficiency/dependencies/previous_version/efficiency_benchmark/dependencies/"
)
KUBEFLOW = "IBM/data-prep-kit:scripts/k8s-setup/helper-functions.sh"
HF_2020 = HF_DATASETS + "lm_eval/datasets/arithmetic/arithmetic.py"
HF_2022 = HF_DATASETS + "lm_eval/datasets/lambada_openai/lambada_openai.py"
MIT, UNLICENSE = (
    f"licensee/licensee:spec/fixtures/{name}/LICENSE.md" for name in ("mit_markdown", "unlicense_markdown")
)
THRESHOLD = MinHashConfig().verify_jaccard
# kubeflow's header goes first by the keep rule, so its far end (HuggingFace's 2022) tests the chain.
CONFIG = DedupeConfig(priority=["kubeflow"], minhash=MinHashConfig())
HASHER = make_hasher(CONFIG)


def _headers() -> dict[str, str]:
    builder = eval_builder()
    texts = code_sample_texts({KUBEFLOW, HF_2020, HF_2022})
    return {
        name: builder.LEADING_COMMENT.match(texts[name]).group(0) for name in (KUBEFLOW, HF_2020, HF_2022)
    }


def _shingles(text: str):
    return HASHER.shingles(normalize_text(text))


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    headers = _headers()
    licences = code_sample_texts({MIT, UNLICENSE})
    revisions = eval_builder().revisions(licences[MIT], licences[UNLICENSE], 12)
    return (
        cc_documents(20)
        + [Document("kubeflow-header", headers[KUBEFLOW], "kubeflow")]
        + [Document(name, headers[key], "code") for name, key in (("hf-2020", HF_2020), ("hf-2022", HF_2022))]
        + [Document(f"mit-to-unlicense-{k}", text, "code") for k, text in enumerate(revisions, start=1)]
        + [Document("mit", licences[MIT], "code"), Document("unlicense", licences[UNLICENSE], "code")]
    )


@pytest.fixture(scope="module")
def one_worker(corpus, tmp_path_factory) -> dict:
    return run_dedupe(corpus, CONFIG, tmp_path_factory.mktemp("one"), batch_size=4)


def test_the_real_headers_chain_across_the_threshold():
    shingles = {name: _shingles(text) for name, text in _headers().items()}
    assert exact_jaccard(shingles[KUBEFLOW], shingles[HF_2020]) >= THRESHOLD
    assert exact_jaccard(shingles[HF_2020], shingles[HF_2022]) >= THRESHOLD
    assert exact_jaccard(shingles[KUBEFLOW], shingles[HF_2022]) < THRESHOLD


def test_a_star_absorbs_only_members_close_to_its_representative_and_the_rest_start_their_own():
    shingles = {name: _shingles(text) for name, text in _headers().items()}
    stars = star_clusters(
        [KUBEFLOW, HF_2020, HF_2022], lambda a, b: exact_jaccard(shingles[a], shingles[b]), THRESHOLD
    )
    assert [(rep, [m for m, _ in absorbed]) for rep, absorbed in stars] == [
        (KUBEFLOW, [HF_2020]),
        (HF_2022, []),
    ]
    middle_first = star_clusters(
        [HF_2020, KUBEFLOW, HF_2022], lambda a, b: exact_jaccard(shingles[a], shingles[b]), THRESHOLD
    )
    assert [(rep, sorted(m for m, _ in absorbed)) for rep, absorbed in middle_first] == [
        (HF_2020, sorted([KUBEFLOW, HF_2022]))
    ]
    # Without a threshold a component is one star, as connected components would make it.
    assert len(star_clusters([KUBEFLOW, HF_2020, HF_2022], lambda a, b: 0.0, None)) == 1


def test_the_far_end_of_a_chain_is_kept_rather_than_removed_as_a_duplicate_of_the_representative(one_worker):
    removed = {r["doc_id"]: r for r in one_worker["rejections"] if r["reason"] == "near_duplicate"}
    assert removed["hf-2020"]["detail"]["kept_id"] == "kubeflow-header"
    assert "hf-2022" not in removed
    assert one_worker["clusters"][("code", "hf-2022")]["cluster_size"] == 1
    assert one_worker["clusters"][("kubeflow", "kubeflow-header")]["cluster_size"] == 2


def test_every_removal_scores_its_jaccard_to_the_kept_copy_and_meets_the_threshold(corpus, one_worker):
    text = {(d.source, d.id): d.text for d in corpus}
    rows = [r for r in one_worker["rejections"] if r["reason"] == "near_duplicate"]
    revisions_removed = [r for r in rows if r["doc_id"].startswith("mit-to-unlicense")]
    assert len(revisions_removed) >= 3, "the revisions chain: several must be near duplicates"
    kept_revisions = {k[1] for k in one_worker["clusters"] if k[1].startswith(("mit", "unlicense"))}
    assert len(kept_revisions) >= 3, "a chain from MIT to the Unlicense must not collapse into one cluster"
    for r in rows:
        kept = text[r["detail"]["kept_source"], r["detail"]["kept_id"]]
        assert r["score"] >= THRESHOLD
        assert r["score"] == exact_jaccard(_shingles(text[r["source"], r["doc_id"]]), _shingles(kept))


def test_clusters_are_the_same_with_two_workers_and_other_batch_boundaries(corpus, one_worker, tmp_path):
    two = run_dedupe(list(reversed(corpus)), CONFIG, tmp_path, workers=2, batch_size=3)
    assert two == one_worker
