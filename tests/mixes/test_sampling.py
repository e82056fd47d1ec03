import collections
import random

import pytest
from helpers_sampling import plan_source, shuffle_order
from helpers_tokenize import DOLMA2, read_texts, require

from curation.errors import InfeasibleMixError
from mixes.sampling import apportion, check_feasible
from mixes.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def web_docs():
    """(doc_id, n_tokens) of the real CommonCrawl sample, tokenized with OLMo 2's tokenizer."""
    tokenizer = load_tokenizer(require(DOLMA2))
    ids = tokenizer.encode_batch(read_texts("web"))
    return [(f"cc-{i:04d}", len(doc)) for i, doc in enumerate(ids)]


def test_apportion_gives_exact_shares_that_sum_to_the_target():
    budgets = apportion(1_000_003, {"web": 0.95, "code": 0.04, "math": 0.01})
    assert sum(budgets.values()) == 1_000_003
    assert budgets == {"web": 950_003, "code": 40_000, "math": 10_000}


def test_apportion_breaks_remainder_ties_by_name():
    assert apportion(10, {"b": 0.25, "a": 0.25, "c": 0.5}) == {"a": 3, "b": 2, "c": 5}
    assert apportion(2, {"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}) == {"x": 1, "y": 1, "z": 0}


def test_apportion_keeps_fixed_budgets_within_the_target():
    budgets = apportion(1_000, {"web": 0.9}, {"math": 100})
    assert budgets == {"web": 900, "math": 100}
    with pytest.raises(InfeasibleMixError, match="1,100 tokens"):
        apportion(1_000, {"web": 1.0}, {"math": 100})
    with pytest.raises(ValueError, match="both a ratio and a token budget"):
        apportion(1_000, {"web": 0.5}, {"web": 100})


@pytest.mark.parametrize(
    ("share_of_available", "max_repetition"),
    [(0.01, 1.0), (0.1, 1.0), (0.5, 1.0), (0.99, 1.0), (1.3, 2.0), (2.5, 2.5), (3.0, 3.0)],
)
def test_plan_meets_budget_within_one_percent(
    web_docs, share_of_available, max_repetition
):
    available = sum(n for _, n in web_docs)
    budget = int(available * share_of_available)
    plan = plan_source("web", 1234, web_docs, budget, max_repetition)
    assert abs(plan.achieved_tokens - budget) / budget < 0.01
    assert plan.max_copies <= -(-max_repetition // 1)
    assert plan.repetition_factor == pytest.approx(share_of_available, rel=0.01)
    tokens = dict(web_docs)
    assert sum(tokens[d] * k for d, k in plan.copies.items()) == plan.achieved_tokens


def test_full_budget_takes_every_document_once(web_docs):
    plan = plan_source("web", 1, web_docs, sum(n for _, n in web_docs))
    assert set(plan.copies) == {d for d, _ in web_docs}
    assert set(plan.copies.values()) == {1}


def test_fractional_max_repetition_gives_whole_copies_plus_a_share_of_one_more(web_docs):
    available = sum(n for _, n in web_docs)
    plan = plan_source("web", 1, web_docs, int(available * 2.5), 2.5)
    counts = collections.Counter(plan.copies.values())
    assert set(counts) == {2, 3}
    assert 0.35 < counts[3] / len(web_docs) < 0.65


def test_plan_does_not_depend_on_input_order_but_on_seed(web_docs):
    budget = sum(n for _, n in web_docs) // 3
    plan = plan_source("web", 7, web_docs, budget)
    shuffled = random.Random(0).sample(web_docs, len(web_docs))
    assert plan_source("web", 7, shuffled, budget) == plan
    assert plan_source("web", 8, web_docs, budget).copies != plan.copies
    assert plan_source("web-other", 7, web_docs, budget).copies != plan.copies


def test_downsampling_is_not_biased_towards_short_or_long_documents(web_docs):
    available = sum(n for _, n in web_docs)
    lengths = sorted(n for _, n in web_docs)
    median = lengths[len(lengths) // 2]
    plan = plan_source("web", 3, web_docs, available // 2)
    long_kept = sum(1 for d, n in web_docs if n > median and d in plan.copies)
    short_kept = sum(1 for d, n in web_docs if n <= median and d in plan.copies)
    assert 0.7 < long_kept / short_kept < 1.4


def test_cluster_size_weighting_repeats_larger_clusters_more(web_docs):
    rng = random.Random(5)
    docs = [(d, n, rng.choice([1, 1, 2, 4, 50])) for d, n in web_docs]
    available = sum(n for _, n, _ in docs)
    plan = plan_source("web", 1, docs, int(available * 1.5), 4.0, weight_by_cluster_size=True)
    copies_by_cluster = collections.defaultdict(list)
    for d, _, cluster in docs:
        copies_by_cluster[cluster].append(plan.copies.get(d, 0))
    mean = {c: sum(v) / len(v) for c, v in copies_by_cluster.items()}
    assert mean[1] < mean[2] < mean[4] <= mean[50] == 4
    assert abs(plan.achieved_tokens - int(available * 1.5)) / (available * 1.5) < 0.01


def test_infeasible_budget_names_the_source_and_the_shortfall_from_counts_alone():
    with pytest.raises(InfeasibleMixError, match=r"'code' is short by 500 tokens"):
        check_feasible({"web": 100, "code": 2_500}, {"web": 1_000, "code": 1_000}, {"web": 1.0, "code": 2.0})
    with pytest.raises(InfeasibleMixError, match=r"'tiny' is short by 1 tokens"):
        plan_source("tiny", 0, [("a", 3), ("b", 4)], 15, max_repetition=2.0)


def test_shuffle_order_is_seeded_and_independent_of_input_order():
    entries = [(s, f"d{i}", r) for s in ("web", "code") for i in range(300) for r in range(2)]
    order = shuffle_order(42, entries)
    assert sorted(order) == sorted(entries)
    assert shuffle_order(42, reversed(entries)) == order
    assert shuffle_order(43, entries) != order
    first_half_sources = collections.Counter(s for s, _, _ in order[:600])
    assert 200 < first_half_sources["web"] < 400
