"""The local runner's worker processes: Beam's own SDK worker, forked from a warm process and dying with the
driver that asked for it.

A pipeline with several local workers would otherwise start each as a fresh interpreter that imports Beam,
curation and its filters again (about 2 CPU seconds each, for each worker of each of a run's pipelines). Here
one pool per driver serves Beam's external worker pool protocol (`StartWorker`): each worker is forked from a
multiprocessing forkserver that has already imported all that. The forkserver is a fresh interpreter, never a
fork of the driver, since gRPC (which the driver runs) does not survive a fork; it starts no gRPC itself.

Without a parent-death signal, a driver killed by SIGKILL (or the OOM killer) would leave its workers running
on. On Linux each worker asks the kernel for SIGKILL when the forkserver ends (PR_SET_PDEATHSIG), and the
forkserver ends when the driver does, however it ends (multiprocessing's own "alive" pipe)."""

from __future__ import annotations

import atexit
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
from concurrent import futures
from multiprocessing import forkserver, reduction

import grpc

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PR_SET_NAME = 15
# What a worker calls itself (/proc/PID/comm, at most 15 bytes), for `curation.interrupts` to find it.
PROCESS_NAME = "curation-worker"
# What the forkserver imports once, so that each worker forked from it starts warm.
_PRELOAD = [
    "apache_beam.runners.worker.sdk_worker_main",
    __name__,
    "curation.pipeline",
    "curation.report",
    "curation.stages.decontaminate",
    "curation.stages.deduplicate",
    "curation.stages.mix",
]
# The process that imported this module: in a worker, the forkserver that forked it.
_IMPORTED_BY = os.getpid()

_pool_lock = threading.Lock()
_pool_address: str | None = None
_pool_server = None  # kept referenced: a gRPC server stops when collected


def _named_and_dying_with_parent(parent_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    libc.prctl(_PR_SET_NAME, PROCESS_NAME.encode(), 0, 0, 0)
    # The parent may have died before the signal was armed: then no signal is coming, and the worker ends.
    if os.getppid() != parent_pid:
        sys.exit(f"curation worker: its parent {parent_pid} is gone")


def _run_worker(stderr_fd: int, cwd: str, environment: dict[str, str]) -> None:
    """A forked worker: Beam's SDK worker main, started as Beam starts a subprocess worker: in the driver's
    folder and environment as they are when the worker is asked for, standard error where the driver's then
    is (its phase's log)."""
    os.dup2(stderr_fd, 2)
    os.close(stderr_fd)
    # multiprocessing gives each child the write end of the pipe whose closing ends the forkserver, so that a
    # child could use it too; a worker holding it would keep the forkserver, and so itself, alive after the
    # driver died.
    os.close(forkserver._forkserver._forkserver_alive_fd)
    _named_and_dying_with_parent(_IMPORTED_BY)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environment)
    from apache_beam.runners.worker import sdk_worker_main

    from curation import beam_signatures

    beam_signatures.install()

    # Beam's worker announces its logging set-up and discards the runner's own options at every start: noise
    # that buried what the stages log in each phase's log.
    for chatty in ("apache_beam.runners.worker.sdk_worker_main", "apache_beam.options.pipeline_options"):
        logging.getLogger(chatty).setLevel(logging.ERROR)
    sdk_worker_main.main([])


class _DriverStderr:
    """Pickled into a forked worker's arguments as the driver's file descriptor 2, which multiprocessing
    passes to the forkserver; the worker receives its own copy of it."""

    def __reduce__(self):
        return (_detach, (reduction.DupFd(2),))


def _detach(handle) -> int:
    return handle.detach()


def _worker_environment(request) -> dict[str, str]:
    """A worker's environment as Beam's SubprocessSdkWorker sets it: the variables Beam's sdk_worker_main
    reads, endpoints from the request and pipeline options from the runner's provision service."""
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc, endpoints_pb2
    from apache_beam.runners.worker.channel_factory import GRPCChannelFactory
    from google.protobuf import json_format, text_format

    channel = GRPCChannelFactory.insecure_channel(request.provision_endpoint.url)
    try:
        info = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", request.worker_id)]
        ).info
    finally:
        channel.close()
    # The driver's environment as it is now (the forkserver's dates from its start).
    return {
        **os.environ,
        "CONTROL_API_SERVICE_DESCRIPTOR": text_format.MessageToString(request.control_endpoint),
        "LOGGING_API_SERVICE_DESCRIPTOR": text_format.MessageToString(
            endpoints_pb2.ApiServiceDescriptor(url=request.logging_endpoint.url)
        ),
        "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
        "WORKER_ID": request.worker_id,
    }


def _start_worker(request):
    from apache_beam.portability.api import beam_fn_api_pb2

    try:
        arguments = (_DriverStderr(), os.getcwd(), _worker_environment(request))
        forked = multiprocessing.get_context("forkserver")
        forked.Process(target=_run_worker, args=arguments, daemon=True).start()
    except (OSError, grpc.RpcError) as exc:  # the runner raises it as "Error starting worker: ..."
        return beam_fn_api_pb2.StartWorkerResponse(error=f"{type(exc).__name__}: {exc}")
    # Reaps the workers that have ended.
    multiprocessing.active_children()
    return beam_fn_api_pb2.StartWorkerResponse()


def _stop_forkserver() -> None:
    """End the forkserver and wait for it, so that the CPU time of the workers it reaped is counted in this
    process's children, as a subprocess worker's was (Python's own tests stop it with this method)."""
    forkserver._forkserver._stop()


def pool_address() -> str:
    """The address of this driver's worker pool, started on first use. A worker stops when the runner
    closes its control channel at the end of its pipeline, so the pool never stops workers itself."""
    global _pool_address, _pool_server
    with _pool_lock:
        if _pool_address is None:
            from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc

            class Pool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
                def StartWorker(self, request, context=None):
                    return _start_worker(request)

                def StopWorker(self, request, context=None):
                    return beam_fn_api_pb2.StopWorkerResponse()

            multiprocessing.get_context("forkserver").set_forkserver_preload(_PRELOAD)
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(Pool(), server)
            port = server.add_insecure_port("127.0.0.1:0")
            server.start()
            _pool_server = server
            atexit.register(_stop_forkserver)
            _pool_address = f"127.0.0.1:{port}"
        return _pool_address
