"""Beam pipeline options: the DirectRunner on every local core is the embedded default, and any Beam
option given on the command line (`--runner=FlinkRunner`, `--direct_num_workers=1`, ...) passes through
unchanged, so the same command targets Dataflow, Flink or Spark.

"DirectRunner" here means Beam's FnApiRunner, which is what Beam's DirectRunner runs a batch pipeline on
after first trying its Prism runner: Beam 2.77 downloads Prism (a Go binary) from GitHub on each pipeline,
so a connected machine would run a different runner than the one tested and measured, and an offline one
makes a network call per phase (and leaks a temporary folder) before falling back. `LocalRunner` skips
that attempt."""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineRunner

from curation import data_plane_guard, errors
from curation.errors import CurationError
from curation.progress import watch


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, as `taskset` sets it), not every core of the machine."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pipeline_options(beam_args: list[str], elements: int | None = None) -> PipelineOptions:
    """Options for one phase; `elements` (its input files or shards) caps the default local workers, since
    each element is one unit of work and a worker without one only costs start-up."""
    given = {a.split("=", 1)[0].lstrip("-") for a in beam_args if a.startswith("--")}
    runner = next((a.split("=", 1)[1] for a in beam_args if a.startswith("--runner=")), "DirectRunner")
    args = [a for a in beam_args if not a.startswith("--runner=")]
    if runner.lower() in ("directrunner", "direct"):
        args.append(f"--runner={LOCAL_RUNNER}")
        workers = max(1, min(usable_cores(), elements or usable_cores()))
        if "direct_num_workers" not in given:
            args.append(f"--direct_num_workers={workers}")
        else:
            value = next((a.split("=", 1)[1] for a in args if a.startswith("--direct_num_workers=")), "")
            workers = int(value) if value.isdigit() else usable_cores()
        # Separate processes, so CPU-bound Python stages use every core (threads would share one GIL);
        # one worker runs in this process, which saves spawning one (about a second of start-up).
        if "direct_running_mode" not in given:
            args.append("--direct_running_mode=" + ("multi_processing" if workers > 1 else "in_memory"))
    else:
        args.append(f"--runner={runner}")
    if "default_sdk_harness_log_level" not in given:
        args.append("--default_sdk_harness_log_level=WARNING")
    return PipelineOptions(args)


class LocalRunner(PipelineRunner):
    """The FnApiRunner, given the pipeline options for its workers, as Beam's DirectRunner sets it up."""

    def run_pipeline(self, pipeline, options):
        data_plane_guard.install()
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
        return fn_runner.FnApiRunner(provision_info=provision).run_pipeline(pipeline, options)


LOCAL_RUNNER = f"{__name__}.{LocalRunner.__name__}"


_WORKER_ERROR = re.compile(r"curation\.errors\.(\w+): (.+?)(?: \[while running|\n|$)")


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


def run_pipeline(
    options: PipelineOptions,
    build: Callable[[beam.Pipeline], None],
    log_path: str | None = None,
    progress: tuple[str, int, Callable[[], int]] | None = None,
) -> None:
    """Build and run one pipeline to completion; a failure raises (outputs are only ever renamed into place).

    Workers' own log lines go to `log_path`; `progress` (label, total, count of finished outputs) draws a
    bar on a terminal. A user-facing error raised inside a worker reaches the driver wrapped in the
    runner's traceback text; it is raised again as itself, so the command prints one clear line.
    """
    data_plane_guard.install()
    try:
        with worker_output_to(log_path) as console:
            with watch(*(progress or ("", 0, lambda: 0)), stream=console):
                with beam.Pipeline(options=options) as p:
                    build(p)
    except CurationError:
        raise
    except Exception as exc:
        found = _WORKER_ERROR.search(str(exc))
        error_type = getattr(errors, found.group(1), None) if found else None
        if isinstance(error_type, type) and issubclass(error_type, CurationError):
            raise error_type(found.group(2)) from exc
        raise
