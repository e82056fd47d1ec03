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


def test_the_runners_data_plane_loses_no_bytes_while_a_periodic_flush_is_blocked():
    """Beam's time-based stream clears whatever is written while its flusher thread waits on a full send
    queue (how decide lost documents with 2 workers on a busy machine); the guarded one must lose nothing."""
    import threading
    import time

    from apache_beam.runners.worker import data_plane

    from curation import data_plane_guard

    data_plane_guard.install()
    delivered: list[int] = []
    flushing = threading.Event()

    def slow_send(data: bytes) -> None:
        delivered.append(len(data))
        flushing.set()
        time.sleep(0.02)  # a full send queue: the flusher waits here, the writer goes on

    stream = data_plane.ClosableOutputStream.create(lambda data: delivered.append(len(data)), slow_send, 5)
    assert isinstance(stream, data_plane_guard.GuardedTimeBasedStream)
    written = 0
    deadline = time.monotonic() + 30
    while (not flushing.is_set() or written < 1 << 22) and time.monotonic() < deadline:
        stream.write(b"x" * 1000)
        written += 1000
    stream.close()
    assert flushing.is_set(), "the periodic flush never ran"
    assert sum(delivered) == written
