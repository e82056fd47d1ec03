"""The local runner: Beam's FnApiRunner, reached without Beam 2.77's DirectRunner first trying Prism."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.runners.portability import prism_runner

from curation.engine import LOCAL_RUNNER, pipeline_options, run_pipeline


@pytest.mark.parametrize("given", [[], ["--runner=DirectRunner"], ["--runner=direct"]])
def test_the_direct_runner_is_the_local_fn_api_runner(given):
    options = pipeline_options(given, elements=1).get_all_options()
    assert options["runner"] == LOCAL_RUNNER
    assert (options["direct_num_workers"], options["direct_running_mode"]) == (1, "in_memory")


def test_another_runner_passes_through_untouched():
    options = pipeline_options(["--runner=FlinkRunner", "--flink_master=localhost:8081"]).get_all_options()
    assert options["runner"] == "FlinkRunner" and options["flink_master"] == "localhost:8081"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_local_run_never_tries_prism_and_produces_every_element(tmp_path, monkeypatch, workers):
    tried = []

    def refuse(self, pipeline, options):
        tried.append(options)
        raise RuntimeError("Prism must not be tried")

    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", refuse)
    out = tmp_path / "squares"
    run_pipeline(
        pipeline_options([f"--direct_num_workers={workers}"]),
        lambda p: (
            p
            | beam.Create(range(100))
            | beam.Map(lambda x: str(x * x))
            | beam.io.WriteToText(str(out), shard_name_template="")
        ),
    )
    assert tried == []
    assert sorted(int(line) for line in out.read_text().split()) == [x * x for x in range(100)]
