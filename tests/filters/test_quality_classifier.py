from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from helpers_quality import GOOD_PARAGRAPH, QUALITY_LABELS, shared_or_skip

from curation.cli import main
from curation.config import ConfigError
from filters.base import TextView
from filters.language import load_fasttext
from filters.quality_classifier import (
    held_out_metrics,
    kept_by_cutoff,
    read_labelled,
    split_held_out,
    top_fraction_cutoff,
    train_quality_classifier,
)
from filters.registry import build_filter

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "quality-dclm-labels.ftz"


def test_top_fraction_breaks_ties_by_doc_id_whatever_the_order():
    scored = [("d", 0.9), ("b", 0.5), ("a", 0.5), ("c", 0.5), ("e", 0.1)]
    cutoff = top_fraction_cutoff(scored, 0.4)
    assert cutoff == (0.5, "a")
    shuffled = scored[:]
    random.Random(7).shuffle(shuffled)
    assert top_fraction_cutoff(shuffled, 0.4) == cutoff
    assert [doc for doc, score in scored if kept_by_cutoff(doc, score, cutoff)] == ["d", "a"]


def test_top_fraction_keeps_at_least_one_of_a_nonempty_source_and_none_of_an_empty_one():
    assert top_fraction_cutoff([("x", 0.2), ("y", 0.3)], 0.1) == (0.3, "y")
    assert top_fraction_cutoff([], 0.1) is None
    assert not kept_by_cutoff("x", 1.0, None)


def test_config_needs_exactly_one_rule():
    with pytest.raises(ConfigError, match="exactly one"):
        build_filter({"use": "quality_classifier_v1", "model": "m.bin"})
    with pytest.raises(ConfigError, match="exactly one"):
        build_filter(
            {"use": "quality_classifier_v1", "model": "m.bin", "min_score": 0.5, "keep_top_fraction": 0.1}
        )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    labels = shared_or_skip(QUALITY_LABELS / "majority_data.jsonl")
    model = tmp_path_factory.mktemp("quality") / "hq.bin"
    return model, train_quality_classifier(model, labelled_paths=[labels], seed=0)


def test_trained_classifier_beats_chance_on_held_out_data(trained):
    _, report = trained
    assert report.held_out_examples > 50
    assert report.metrics["accuracy"] > report.metrics["majority_baseline_accuracy"] + 0.1
    assert report.metrics["f1"] > 0.7


def test_sidecar_records_inputs_params_and_metrics(trained):
    model, report = trained
    sidecar = json.loads(model.with_name(model.name + ".json").read_text())
    assert sidecar["metrics"] == report.metrics
    assert sidecar["params"]["word_ngrams"] == 2
    assert all(len(digest) == 64 for digest in sidecar["inputs"].values())


def test_filter_scores_probability_and_ignores_top_fraction_per_document(trained):
    model, _ = trained
    floor = build_filter({"use": "quality_classifier_v1", "model": str(model), "min_score": 1.01})
    top = build_filter({"use": "quality_classifier_v1", "model": str(model), "keep_top_fraction": 0.1})
    scores = floor.score(TextView(GOOD_PARAGRAPH))
    assert 0.0 <= scores["p_high_quality"] <= 1.0
    assert floor.reject_reason(scores) == "low_quality_score"
    assert top.reject_reason(scores) is None and top.config.keep_top_fraction == 0.1


def test_train_quality_command_writes_model_and_sidecar(tmp_path, capsys):
    labels = shared_or_skip(QUALITY_LABELS / "agreement_data.jsonl")
    out = tmp_path / "hq.bin"
    assert main(["train-quality", "--output", str(out), "--labelled", str(labels), "--epoch", "5"]) == 0
    assert out.exists() and (tmp_path / "hq.bin.json").exists()
    assert json.loads(capsys.readouterr().out)["held_out"] > 0


def test_train_quality_command_refuses_missing_files(tmp_path, capsys):
    assert (
        main(
            ["train-quality", "--output", str(tmp_path / "m.bin"), "--labelled", str(tmp_path / "none.jsonl")]
        )
        == 2
    )
    assert "no such training file" in capsys.readouterr().err


def test_train_quality_command_quantizes_to_a_small_model(tmp_path, capsys):
    labels = shared_or_skip(QUALITY_LABELS / "majority_data.jsonl")
    out = tmp_path / "hq.ftz"
    assert main(["train-quality", "--output", str(out), "--labelled", str(labels), "--quantize"]) == 0
    assert out.stat().st_size < 3_000_000
    sidecar = json.loads((tmp_path / "hq.ftz.json").read_text())
    assert (
        sidecar["quantize"]["cutoff"] == 20_000
        and "accuracy" in sidecar["quantize"]["held_out_metrics_before"]
    )
    assert load_fasttext(out).is_quantized()


def test_shipped_quantized_model_beats_chance_on_its_held_out_split():
    sidecar = json.loads(SHIPPED_MODEL.with_name(SHIPPED_MODEL.name + ".json").read_text())
    labels = shared_or_skip(QUALITY_LABELS / "majority_data.jsonl")
    examples: dict[str, int] = {}
    for text, label in read_labelled(labels, None, "label"):
        examples.setdefault(text, label)
    _, held_out = split_held_out(examples, sidecar["seed"], sidecar["held_out_fraction"])
    assert len(held_out) == sidecar["held_out_examples"]
    model = load_fasttext(SHIPPED_MODEL)
    assert model.is_quantized() and SHIPPED_MODEL.stat().st_size < 3_000_000
    metrics = held_out_metrics(model, held_out)
    assert metrics["accuracy"] > metrics["majority_baseline_accuracy"] + 0.1
    assert metrics["f1"] > 0.7


def test_shipped_model_scores_through_the_filter():
    step = build_filter({"use": "quality_classifier_v1", "model": str(SHIPPED_MODEL), "min_score": 0.5})
    good, boilerplate = step.score_batch(
        [TextView(GOOD_PARAGRAPH), TextView("Home | Login | Cart (0) | Sale! Buy now 50% off | Contact us")]
    )
    assert good["p_high_quality"] > boilerplate["p_high_quality"]
    assert step.reject_reason(boilerplate) == "low_quality_score"
