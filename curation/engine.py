"""Beam pipeline options: the DirectRunner on every local core is the embedded default, and Beam options given
on the command line (`--runner FlinkRunner`, `--direct_num_workers=1`, ...) pass through as Beam's own parser
reads them, so the same command targets Dataflow, Flink or Spark. An option Beam does not know or a runner
curation does not support is an error, not a silent local run.

"DirectRunner" here means Beam's FnApiRunner, which is what Beam's DirectRunner runs a batch pipeline on
after first trying its Prism runner: Beam 2.77 downloads Prism (a Go binary) from GitHub on each pipeline,
so a connected machine would run a different runner than the one tested and measured, and an offline one
makes a network call per phase (and leaks a temporary folder) before falling back. `LocalRunner` skips
that attempt."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TextIO

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
    _BeamArgumentParser,
)
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_runner_api_pb2, endpoints_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers
from apache_beam.runners.runner import PipelineRunner

from curation import beam_ipython, beam_signatures, data_plane_guard, errors, local_worker
from curation.config import close_matches
from curation.errors import BeamOptionError, CurationError
from curation.progress import watch


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, as `taskset` sets it), not every core of the machine."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


SUPPORTED_RUNNERS = ("DirectRunner", "PortableRunner", "FlinkRunner", "SparkRunner", "DataflowRunner")
# Runners Beam offers that curation refuses, with the reason the user is told.
UNSUPPORTED_RUNNERS = {
    "DaskRunner": "Beam 2.77's DaskRunner loses tagged outputs and those of finish_bundle",
    "PrismRunner": "Beam 2.77 fetches the Prism binary from GitHub at run time; curation is not tested on it",
}


def _beam_parser() -> argparse.ArgumentParser:
    """Every option Beam knows, gathered as `PipelineOptions.get_all_options` does it, but without `-h` (that
    is curation's) and raising on a bad value instead of printing Beam's usage and exiting."""
    parser = _BeamArgumentParser(allow_abbrev=False, add_help=False, exit_on_error=False)
    for options_class in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        options_class._add_argparse_args(parser)
    return parser


def _parse_known(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """The words of `args` the parser does not know; a bad value for an option it knows is an error."""
    try:
        return parser.parse_known_args(args)[1]
    except argparse.ArgumentError as exc:
        raise BeamOptionError(str(exc)) from None


class _Word(str):
    """A command-line word that knows its position: argparse returns the words it did not use as the very
    objects it was given, so positions tell exactly which words were Beam's, even among equal words."""

    position: int


def split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(curation's words, Beam's options with their values). Beam's parser takes its options out first, so
    in `--runner FlinkRunner manifest.yaml` the runner is never taken for curation's manifest argument."""
    words = [_Word(text) for text in argv]
    for position, word in enumerate(words):
        word.position = position
    ours = {word.position for word in _parse_known(_beam_parser(), words)}
    return [w for i, w in enumerate(argv) if i in ours], [w for i, w in enumerate(argv) if i not in ours]


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string a parser knows (argparse keeps them only on its actions, where Beam reads them)."""
    return [option for action in parser._actions for option in action.option_strings]


def _unknown_options(unknown: list[str], known: list[str]) -> str:
    names = [word.split("=", 1)[0] for word in unknown if word.startswith("-")]
    if not names:
        return f"unexpected argument {' '.join(unknown)}"
    return "; ".join(f"{name}: no such option{close_matches(name, known)}" for name in names)


def runner_of(options: PipelineOptions) -> str:
    """The supported runner the options name, matched as Beam matches runner names (any case, "Runner"
    optional); DirectRunner when none is named."""
    given = options.view_as(StandardOptions).runner or "DirectRunner"
    wanted = given.lower().removesuffix("runner") + "runner"
    for name in SUPPORTED_RUNNERS:
        if name.lower() == wanted:
            return name
    supported = "supported runners: " + ", ".join(SUPPORTED_RUNNERS) + " (DirectRunner is the default)"
    reason = next((why for name, why in UNSUPPORTED_RUNNERS.items() if name.lower() == wanted), None)
    if reason:
        raise BeamOptionError(f"--runner={given} is not supported: {reason}; {supported}")
    hint = close_matches(given, SUPPORTED_RUNNERS)
    raise BeamOptionError(f"--runner={given}: unknown runner{hint}; {supported}")


def beam_options(beam_args: list[str], command_options: Iterable[str] = ()) -> PipelineOptions:
    """The options as Beam's own parser reads them (`--opt value` and `--opt=value` alike), checked: an option
    Beam does not know, a bad value or an unsupported runner is an error rather than silently ignored. An
    unknown option is named with the closest of Beam's options and `command_options` (the command's own)."""
    parser = _beam_parser()
    unknown = _parse_known(parser, beam_args)
    if unknown:
        raise BeamOptionError(_unknown_options(unknown, [*option_strings(parser), *command_options]))
    options = PipelineOptions(beam_args)
    runner_of(options)
    return options


def pipeline_options(beam_args: list[str], elements: int | None = None) -> PipelineOptions:
    """Options for one phase; `elements` (its input files or shards) caps the default local workers, since
    each element is one unit of work and a worker without one only costs start-up."""
    options = beam_options(beam_args)
    given = {a.split("=", 1)[0] for a in beam_args if a.startswith("--")}
    overrides: dict[str, Any] = {}
    if runner_of(options) == "DirectRunner":
        overrides["runner"] = LOCAL_RUNNER
        cores = usable_cores()
        workers = options.view_as(DirectOptions).direct_num_workers
        if "--direct_num_workers" not in given:
            workers = overrides["direct_num_workers"] = max(1, min(cores, elements or cores))
        if _worker_environment(options) is not None:
            # The workers are whatever the environment names (an external worker pool, say), not ours.
            overrides["direct_running_mode"] = "in_memory"
        elif "--direct_running_mode" not in given:
            # Separate processes, so CPU-bound Python stages use every core (threads would share one GIL);
            # one worker runs in this process, which saves spawning one (about a second of start-up).
            overrides["direct_running_mode"] = "multi_processing" if workers > 1 else "in_memory"
    if not given & {"--pipeline_type_check", "--no_pipeline_type_check"}:
        # Beam's check infers each step's output type by reading its function's bytecode while the launcher
        # builds the pipeline, between phases (about 1 CPU s of a run's launcher on the end-to-end bench); no
        # step here declares types for it to check, and elements keep their values whatever coder carries them.
        overrides["pipeline_type_check"] = False
    if "--default_sdk_harness_log_level" not in given:
        overrides["default_sdk_harness_log_level"] = "WARNING"
    # Values given as keywords override the same options in the flags.
    return _OptionsWithLastingViews(beam_args, **overrides)


def one_local_worker(options: PipelineOptions) -> bool:
    """Whether a pipeline with these options runs on curation's local runner with a single worker."""
    return (
        options.view_as(StandardOptions).runner == LOCAL_RUNNER
        and options.view_as(DirectOptions).direct_num_workers == 1
    )


class SpreadOverWorkers(beam.PTransform):
    """Beam's Reshuffle, which spreads elements over the workers (a fusion break, so each is its own task).
    With one local worker there is nowhere to spread them: the elements pass as they are, sparing the graph a
    shuffle (a group-by-key and six more steps to translate and run, for each use). Which worker writes what
    never changes an output's bytes (tests/test_pipeline.py runs one and two workers)."""

    def expand(self, pcoll):
        if one_local_worker(pcoll.pipeline.options):
            return pcoll
        return pcoll | beam.Reshuffle()


class GatherToList(beam.PTransform):
    """Every element of a collection as one list (in no set order), as Beam's `combiners.ToList` gives it, but
    as the side input of a one-element step: ToList is a CombineGlobally, whose group-by-key and default-value
    steps each add stages for the launcher to translate and the runner to run, a fixed cost of every run."""

    def expand(self, pcoll):
        return pcoll.pipeline | "Once" >> beam.Create([None]) | "List" >> beam.Map(lambda _, items: items, beam.pvalue.AsList(pcoll))


class _OptionsWithLastingViews(PipelineOptions):
    """Beam's options, each view made once: Beam 2.77 asks for views several times per transform it applies
    (type options, to check and infer types), and each new view builds an argparse parser and parses the
    flags again, 0.6-1 CPU s of a one-document run. Views share one dict of values, as Beam's do, so a
    value set through one is seen through every other."""

    def view_as(self, cls):
        views = self.__dict__.setdefault("_views", {})
        if cls not in views:
            views[cls] = super().view_as(cls)
        return views[cls]


def _worker_environment(options: PipelineOptions):
    """The Beam environment `--environment_type` names (e.g. EXTERNAL: a worker pool at
    `--environment_config`), or None for the runner's own worker processes."""
    if options.view_as(PortableOptions).environment_type is None:
        return None
    from apache_beam.transforms import environments

    return environments.Environment.from_options(options.view_as(PortableOptions))


class _InMemoryWarningFilter(logging.Filter):
    """With an environment of its own, the FnApiRunner runs `direct_num_workers` workers there whatever its
    running mode, but still warns that `in_memory` gives one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "direct_running_mode should be" not in record.getMessage()


class LocalRunner(PipelineRunner):
    """The FnApiRunner, given the pipeline options for its workers, as Beam's DirectRunner sets it up; with
    `--environment_type` it runs its `direct_num_workers` workers in that environment (Beam's own portable
    job service would run just one). Its own worker processes (multi_processing) are forked from
    curation.local_worker's warm pool, so they start without importing anything and die with the driver."""

    def run_pipeline(self, pipeline, options):
        data_plane_guard.install()
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
        environment = _worker_environment(options)
        runner = _FnApiRunnerWithOwnWorkers(default_environment=environment, provision_info=provision)
        if environment is None:
            return runner.run_pipeline(pipeline, options)
        warning_filter = _InMemoryWarningFilter()
        logging.getLogger(fn_runner.__name__).addFilter(warning_filter)
        try:
            return runner.run_pipeline(pipeline, options)
        finally:
            logging.getLogger(fn_runner.__name__).removeFilter(warning_filter)


# The environment of workers forked from this driver's warm pool (curation.local_worker): Beam's external
# worker pool protocol, reached on this machine.
_WARM_POOL_URN = "curation:env:warm_local_pool:v1"


@worker_handlers.WorkerHandler.register_environment(_WARM_POOL_URN, beam_runner_api_pb2.ExternalPayload)
class _WarmPoolWorkerHandler(worker_handlers.ExternalWorkerHandler):
    def host_from_worker(self) -> str:
        # The pool forks its workers on this machine (Beam's external handler would look up the FQDN).
        return "localhost"


def _workers_from_warm_pool(pipeline_proto) -> None:
    """Beam starts each local worker process with a command fixed in the pipeline's environments (a fresh
    interpreter running its own sdk_worker_main); each such environment is replaced by this driver's warm
    pool, which forks the same worker main from a process that has already imported everything."""
    for environment in pipeline_proto.components.environments.values():
        if environment.urn == python_urns.SUBPROCESS_SDK and b"sdk_worker_main" in environment.payload:
            environment.urn = _WARM_POOL_URN
            environment.payload = beam_runner_api_pb2.ExternalPayload(
                endpoint=endpoints_pb2.ApiServiceDescriptor(url=local_worker.pool_address())
            ).SerializeToString()


class _FnApiRunnerWithOwnWorkers(fn_runner.FnApiRunner):
    def run_via_runner_api(self, pipeline_proto, options):
        _workers_from_warm_pool(pipeline_proto)
        return super().run_via_runner_api(pipeline_proto, options)


LOCAL_RUNNER = f"{__name__}.{LocalRunner.__name__}"


@contextmanager
def worker_output_to(log_path: str | None) -> Iterator[TextIO]:
    """Local worker processes inherit the driver's stderr and fill it with start-up chatter: while a
    pipeline runs, file descriptor 2 goes to `log_path`, and the driver writes to the console it yields."""
    if log_path is None:
        yield sys.stderr
        return
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    console = os.fdopen(os.dup(saved), "w", buffering=1)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            console.close()


def _log_what_the_phase_did(log_path: str, phase: str, options: PipelineOptions, result, started: float, cpu_started: float) -> None:
    """The phase's own lines after its workers': when it ran, on what, and its counters summed over steps
    (documents read, rejected per reason, tokens, S3 requests), so a log says what happened, not only what
    went wrong. Logs are not part of a release's checksums, so times may appear here."""
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    workers = options.view_as(DirectOptions).direct_num_workers
    when = datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"{phase}: started {when}, {time.time() - started:.1f} s wall, {time.process_time() - cpu_started:.1f} CPU s "
        f"in the driver, runner {runner}, {workers} local worker(s)"
    ]
    totals: dict[str, int] = {}
    try:
        counters = result.metrics().query()["counters"]
    except NotImplementedError:  # a runner whose results carry no metrics
        counters = []
        lines.append(f"{phase}: counters not reported by this runner")
    for counter in counters:
        key = f"{counter.key.metric.namespace}/{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[key] = totals.get(key, 0) + int(value or 0)
    lines += [f"{phase}: {key} {value:,}" for key, value in sorted(totals.items())]
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("\n".join(lines) + "\n")


def run_pipeline(
    options: PipelineOptions,
    build: Callable[[beam.Pipeline], None],
    log_path: str | None = None,
    progress: tuple[str, int | Callable[[], int], Callable[[], int]] | None = None,
) -> None:
    """Build and run one pipeline to completion; a failure raises (outputs are only ever renamed into place).

    Workers' own log lines go to `log_path`; `progress` (label, total, count of finished outputs) draws a
    bar on a terminal. A user-facing error raised inside a worker reaches the driver wrapped in the
    runner's traceback text; it is raised again as itself, and an expected failure from below (a full disk,
    S3 unreachable) as a StorageError, so the command prints one clear line. A pipeline without `progress`
    shows its phase (its log's name) and elapsed time.
    """
    data_plane_guard.install()
    beam_signatures.install()
    beam_ipython.install()
    started, cpu_started = time.time(), time.process_time()
    try:
        with worker_output_to(log_path) as console:
            phase = os.path.splitext(os.path.basename(log_path))[0] if log_path else ""
            with watch(*(progress or (phase,)), stream=console):
                pipeline = beam.Pipeline(options=options)
                build(pipeline)
                result = pipeline.run()
                result.wait_until_finish()
        if log_path:
            _log_what_the_phase_did(log_path, phase, options, result, started, cpu_started)
    except CurationError:
        raise
    except Exception as exc:
        explained = errors.expected_failure(exc)
        if explained is None:
            raise
        raise explained from exc
