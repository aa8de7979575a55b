"""Serving with N worker processes, each on its own SO_REUSEPORT socket, and exiting cleanly.

uvicorn's own `--workers` shares one listening socket, and whichever process is in
accept() first takes the connections. OTLP exporters keep their connections open, so a
few early winners kept nearly all the load: measured here, one worker used 4.7 s of CPU
and the other 0.9 s for the same run. With one socket per process the kernel spreads
new connections across the processes by hash, so the cores share the work.

SIGTERM (or Ctrl-C) shuts down gracefully: the sockets close, requests in flight are
answered (ingest ones once their rows are committed), the writer commits what is queued,
and the process exits 0. uvicorn would re-raise the signal after its shutdown, so that
the process died by it (143, and `make run` printed "Error 143"); `_Server` does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from uvicorn.server import HANDLED_SIGNALS

from app import shutdown
from app.config import get_settings
from app.connections import ConnectionLimits, protocol_class, raise_file_limit
from app.shutdown import GRACEFUL_S
from app.telemetry import MULTIPROC_ENV

log = logging.getLogger(__name__)
APP = "app.main:app_factory"
GC_THRESHOLDS = (50_000, 20, 10)
M_ARENA_MAX = -8  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
# glibc's default, set explicitly: that turns off its dynamic threshold, which after the
# first large block is freed serves later ones (up to 32 MiB) from an arena's heap.
MMAP_THRESHOLD_BYTES = 128 * 1024
SWITCH_INTERVAL_S = 0.001


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _bind(host: str, port: int) -> socket.socket:
    """Bound, not listening: fails if another program holds the port, takes no connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        # A garbage collection holds the GIL, so it stalls the event loop for as long as it
        # walks the heap: over 100 ms for the modules and objects made at startup alone, on
        # a busy machine. They live as long as the process, so they are moved out of the
        # collector's sight, and collections, which then walk what requests hold, happen
        # less often (a decoded batch is mostly acyclic, freed by reference counting).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        # The event loop shares the GIL with the decoding threads; it waits up to the
        # switch interval for it each time it wakes up, 5 ms by default.
        sys.setswitchinterval(SWITCH_INTERVAL_S)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # OTLP/gRPC stops taking calls when HTTP stops taking connections, and both drain
        # together, so the whole shutdown fits in serve's deadline (imported here: the
        # parent process of --workers never loads grpc).
        from app.grpc.server import stop_all_grpc

        shutdown.begin()  # ingest requests still waiting give up in time to answer 503
        await asyncio.gather(super().shutdown(sockets=sockets), stop_all_grpc())

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # As uvicorn's, minus re-raising the signal once the graceful shutdown is done.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _limit_malloc_arenas() -> None:
    """Few malloc arenas, and large blocks always mapped apart (glibc; elsewhere nothing).

    glibc gives each thread that allocates its own arena, and memory freed in one is
    reused only there: with the decoding threads, two 64 MiB inflations in turn held
    128 MiB. With two arenas, threads still land on either (gRPC's threads allocate too),
    so large blocks (a body, its inflated chunks, a parse buffer) are kept out of the
    arenas: each is mapped on its own and returned to the system when freed.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass


def _config() -> uvicorn.Config:
    _limit_malloc_arenas()
    settings = get_settings()
    limits = ConnectionLimits(
        max_connections=raise_file_limit(settings.max_connections),
        header_read_timeout_s=settings.header_read_timeout_s,
        body_read_timeout_s=settings.body_read_timeout_s,
        retry_after_s=settings.retry_after_s,
    )
    return uvicorn.Config(
        APP,
        factory=True,
        log_config=None,
        access_log=False,
        http=protocol_class(limits),
        timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]
        timeout_graceful_shutdown=GRACEFUL_S,
    )


def _worker(host: str, port: int) -> None:
    from app.telemetry import configure_logging

    configure_logging(os.environ.get("TELEMETRY_LOG_LEVEL", "info"))
    _Server(_config()).run(sockets=[_listen(host, port)])


def _share_host(host: str) -> None:
    """Each process's gRPC server (started in the app's lifespan) listens on `host` too."""
    os.environ["TELEMETRY_HOST"] = host
    get_settings.cache_clear()


def serve(host: str, port: int, workers: int) -> int:
    """Serve until SIGTERM/SIGINT; the exit status (0 after a clean shutdown)."""
    _share_host(host)
    if workers <= 1:
        config = _config()
        config.host, config.port = host, port
        _Server(config).run()
        return 0
    # Bind once here so a port in use fails loudly before any worker starts.
    probe = _listen(host, port)
    settings = get_settings()
    grpc_probe = None
    if settings.grpc_enabled:
        try:
            grpc_probe = _bind(host, settings.grpc_port)
        except OSError as error:
            probe.close()
            log.error(f"cannot listen for OTLP/gRPC on {host}:{settings.grpc_port}: {error}")
            return 1
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(host, port), daemon=False)
        process.start()
        return process

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    processes.extend(start() for _ in range(workers))
    probe.close()
    if grpc_probe is not None:
        grpc_probe.close()
    log.info("serving", extra={"workers": workers, "port": port})
    while not stopping:
        time.sleep(0.5)
        for index, process in enumerate(processes):
            if not process.is_alive() and not stopping:
                # A crashed worker is replaced; its metrics files are retired.
                log.warning("worker exited; restarting", extra={"exitcode": process.exitcode})
                _retire(process)
                processes[index] = start()
    deadline = time.monotonic() + GRACEFUL_S + 5
    status = 0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.error("worker did not stop in time; killed", extra={"pid": process.pid})
            process.kill()
            process.join()
        # A worker still starting up when the signal came dies of it: it held no request.
        if process.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT):
            status = 1
        _retire(process)
    return status


def _retire(process: BaseProcess) -> None:
    if os.environ.get(MULTIPROC_ENV) and process.pid:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process.pid)
