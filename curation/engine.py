"""Beam pipeline options: the DirectRunner on every local core is the embedded default, and any Beam
option given on the command line (`--runner=FlinkRunner`, `--direct_num_workers=1`, ...) passes through
unchanged, so the same command targets Dataflow, Flink or Spark."""

from __future__ import annotations

import os
import re
from typing import Callable

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from curation import errors
from curation.errors import CurationError


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    args = list(beam_args)
    given = {a.split("=", 1)[0].lstrip("-") for a in args if a.startswith("--")}
    if "runner" not in given:
        args.append("--runner=DirectRunner")
    runner = next((a.split("=", 1)[1] for a in args if a.startswith("--runner=")), "DirectRunner")
    if runner in ("DirectRunner", "direct"):
        if "direct_num_workers" not in given:
            args.append(f"--direct_num_workers={os.cpu_count() or 1}")
        # Separate processes, so CPU-bound Python stages use every core (threads would share one GIL).
        if "direct_running_mode" not in given:
            args.append("--direct_running_mode=multi_processing")
    if "default_sdk_harness_log_level" not in given:
        args.append("--default_sdk_harness_log_level=WARNING")
    return PipelineOptions(args)


_WORKER_ERROR = re.compile(r"curation\.errors\.(\w+): (.+?)(?: \[while running|\n|$)")


def run_pipeline(options: PipelineOptions, build: Callable[[beam.Pipeline], None]) -> None:
    """Build and run one pipeline to completion; a failure raises (outputs are only ever renamed into place).

    A user-facing error raised inside a worker reaches the driver wrapped in the runner's traceback text;
    it is raised again as itself, so the command prints one clear line.
    """
    try:
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
