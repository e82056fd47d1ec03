"""The local runner: Beam's FnApiRunner, reached without Beam 2.77's DirectRunner first trying Prism."""

from __future__ import annotations

import os
import re

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import DebugOptions, TypeOptions
from apache_beam.runners.portability import prism_runner

from curation.engine import LOCAL_RUNNER, pipeline_options, run_pipeline, split_beam_args
from curation.errors import BeamOptionError

SUPPORTED = "supported runners: DirectRunner, PortableRunner, FlinkRunner, SparkRunner, DataflowRunner"
TYPO_HINT = re.escape("--direct_num_worker: no such option (did you mean '--direct_num_workers'?)")


@pytest.mark.parametrize(
    "given",
    [
        [],
        ["--runner=DirectRunner"],
        ["--runner=direct"],
        ["--runner", "DirectRunner", "--direct_num_workers", "1"],
    ],
)
def test_the_direct_runner_is_the_local_fn_api_runner(given):
    options = pipeline_options(given, elements=1).get_all_options()
    assert options["runner"] == LOCAL_RUNNER
    assert (options["direct_num_workers"], options["direct_running_mode"]) == (1, "in_memory")


def test_workers_given_as_a_separate_word_are_the_workers_used():
    options = pipeline_options(["--direct_num_workers", "1"]).get_all_options()
    assert (options["direct_num_workers"], options["direct_running_mode"]) == (1, "in_memory")


@pytest.mark.parametrize(
    "given",
    [
        ["--runner=FlinkRunner", "--flink_master=localhost:8081"],
        ["--runner", "FlinkRunner", "--flink_master", "localhost:8081"],
        ["--runner", "flink", "--flink_master=localhost:8081"],
    ],
)
def test_another_runner_passes_through_untouched(given):
    options = pipeline_options(given).get_all_options()
    assert options["runner"] in ("FlinkRunner", "flink") and options["flink_master"] == "localhost:8081"


@pytest.mark.parametrize(
    ("runner", "expected"),
    [
        ("DaskRunner", r"--runner=DaskRunner is not supported: Beam 2\.77's DaskRunner loses tagged outputs"),
        ("PrismRunner", r"--runner=PrismRunner is not supported: Beam 2\.77 fetches the Prism binary"),
        ("Flinkk", r"--runner=Flinkk: unknown runner \(did you mean 'FlinkRunner'\?\)"),
    ],
)
def test_an_unsupported_runner_is_an_error_listing_the_supported_ones(runner, expected):
    for given in ([f"--runner={runner}"], ["--runner", runner]):
        with pytest.raises(BeamOptionError, match=expected) as raised:
            pipeline_options(given)
        assert SUPPORTED in str(raised.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["--direct_num_worker=2"], rf"^{TYPO_HINT}$"),
        (["--direct_num_worker", "2"], rf"^{TYPO_HINT}$"),
        (["--direct_num_workers", "two"], r"--direct_num_workers: invalid int value: 'two'"),
        (["--runner"], r"--runner: expected one argument"),
    ],
)
def test_an_unknown_option_or_bad_value_is_an_error_naming_it(given, expected):
    with pytest.raises(BeamOptionError, match=expected):
        pipeline_options(given)


def test_beam_words_are_split_by_position_even_when_equal_to_ours():
    # The first "m.yaml" is the job name, the second the manifest: equal words, told apart by position.
    argv = ["run", "--job_name", "m.yaml", "--streaming", "m.yaml", "--quiet"]
    assert split_beam_args(argv) == (["run", "m.yaml", "--quiet"], ["--job_name", "m.yaml", "--streaming"])


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


class _RecordWorker(beam.DoFn):
    def __init__(self, folder: str):
        self._folder = folder

    def process(self, element):
        with open(os.path.join(self._folder, f"{os.getpid()}-{element}"), "w") as f:
            f.write(str(os.getppid()))
        yield element


def test_local_workers_of_successive_pipelines_are_forked_from_one_warm_pool(tmp_path):
    for pipeline in range(2):
        run_pipeline(
            pipeline_options(["--direct_num_workers=2"]),
            lambda p, pipeline=pipeline: p
            | beam.Create([f"{pipeline}.{n}" for n in range(4)])
            | beam.Reshuffle()
            | beam.ParDo(_RecordWorker(str(tmp_path))),
        )
    records = {path.name: path.read_text() for path in tmp_path.iterdir()}
    workers = {name.split("-")[0] for name in records}
    parents = set(records.values())
    assert len(records) == 8 and len(workers) >= 2 and str(os.getpid()) not in workers
    # One forkserver, this process's child, forked every worker of both pipelines.
    assert len(parents) == 1
    with open(f"/proc/{parents.pop()}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[1] == str(os.getpid())


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


def test_a_phases_options_make_each_view_once_and_share_its_values():
    options = pipeline_options(["--experiments=one"])
    # Made once, as Beam asks for the type options at every transform it applies.
    assert options.view_as(TypeOptions) is options.view_as(TypeOptions)
    options.view_as(DebugOptions).experiments.append("two")
    options.view_as(TypeOptions).pipeline_type_check = False
    assert options.get_all_options()["experiments"] == ["one", "two"]
    assert options.get_all_options()["pipeline_type_check"] is False


def test_a_runner_whose_results_carry_no_metrics_still_gets_a_phase_log(tmp_path):
    # Beam's base PipelineResult is what a runner without metrics support returns: `metrics()` raises.
    from apache_beam.runners.runner import PipelineResult, PipelineState

    from curation.engine import _log_what_the_phase_did

    log = tmp_path / "decide.log"
    options = pipeline_options(["--direct_num_workers", "1"])
    _log_what_the_phase_did(str(log), "decide", options, PipelineResult(PipelineState.DONE), 0.0, 0.0)
    lines = log.read_text().splitlines()
    assert lines[0].startswith("decide: started 1970-01-01T00:00:00Z") and "1 local worker(s)" in lines[0]
    assert lines[1:] == ["decide: counters not reported by this runner"]


class _Counted(beam.DoFn):
    """Counts, in a bag state per key, the elements it is given."""

    COUNT = beam.transforms.userstate.BagStateSpec("count", beam.coders.VarIntCoder())

    def process(self, element, count=beam.DoFn.StateParam(COUNT)):
        count.add(1)
        yield element[0], sum(count.read())


def test_cached_signature_inspection_gives_beams_answers_and_stateful_dofns_still_run(tmp_path):
    from apache_beam.transforms import core, userstate

    from curation import beam_signatures

    beam_signatures.install()
    stateless = beam.Map(lambda x, scale=2: x * scale).fn
    for dofn in (_Counted(), stateless, _Counted()):
        assert userstate.get_dofn_specs(dofn) == beam_signatures._uncached_specs(dofn)
        for name in ("process", "setup", "start_bundle"):
            method = getattr(dofn, name)
            assert core.get_function_args_defaults(method) == beam_signatures._uncached(method)
    assert userstate.is_stateful_dofn(_Counted()) and not userstate.is_stateful_dofn(stateless)
    out = tmp_path / "counts.txt"

    def build(p):
        counts = p | beam.Create([("a", 1), ("b", 1), ("a", 1)]) | beam.ParDo(_Counted()) | beam.combiners.ToList()
        counts | beam.Map(lambda rows: out.write_text(repr(sorted(rows))))

    run_pipeline(pipeline_options([], elements=1), build)
    assert out.read_text() == repr([("a", 1), ("a", 2), ("b", 1)])


@pytest.mark.parametrize(("workers", "shuffled"), [("1", False), ("2", True)])
def test_elements_are_shuffled_only_where_there_are_workers_to_spread_them_over(workers, shuffled):
    from curation.engine import SpreadOverWorkers

    pipeline = beam.Pipeline(options=pipeline_options([f"--direct_num_workers={workers}"]))
    _ = pipeline | beam.Create([1, 2]) | "Spread" >> SpreadOverWorkers()
    steps = [t.unique_name for t in pipeline.to_runner_api().components.transforms.values()]
    assert any(name.startswith("Spread/Reshuffle") for name in steps) == shuffled
