"""The gRPC server of one worker process: bound with SO_REUSEPORT, like the HTTP sockets.

With `serve --workers N` every process binds TELEMETRY_GRPC_PORT with SO_REUSEPORT (gRPC
sets it by default on Linux; set explicitly here), and the kernel spreads new connections
across the processes, as it does for HTTP (app/server.py). gRPC holds a connection for
many calls, so the spread is per connection, by hash.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from app.config import Settings
from app.connections import MAX_HEAD_BYTES
from app.grpc.otlp import handlers
from app.services import Services

log = logging.getLogger("app.grpc")
# At shutdown, calls in flight get this long to be answered (ingest ones wait for their
# commit); later ones are cancelled, and their clients retry.
STOP_GRACE_S = 5.0
# This process's started servers and, once asked to stop, their one stopping task: the
# shutdown of the HTTP server starts it (app/server.py) and the lifespan waits for it.
_STOPS: dict[grpc.aio.Server, asyncio.Task[None] | None] = {}


class GrpcBindError(RuntimeError):
    """The gRPC port could not be bound (in use by another program, or not permitted)."""


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.so_reuseport", 1),
        # The same bound as an HTTP body after decompression; gRPC refuses a larger message
        # before the handler sees it, and bounds gzip inflation by it too.
        ("grpc.max_receive_message_length", settings.max_decompressed_bytes),
        # Metadata as large as an HTTP request head may be. gRPC's defaults (8 KiB soft,
        # 16 KiB hard) refuse metadata between the two at random (RESOURCE_EXHAUSTED, with
        # a probability that grows with the size), so the same long key was sometimes
        # answered UNAUTHENTICATED and sometimes not; with both limits equal, never at random.
        ("grpc.max_metadata_size", MAX_HEAD_BYTES),
        ("grpc.absolute_max_metadata_size", MAX_HEAD_BYTES),
    ]


async def start_grpc(services: Services, host: str) -> grpc.aio.Server:
    """A started server for the OTLP services on `host`:TELEMETRY_GRPC_PORT."""
    settings = services.settings
    server = grpc.aio.server(options=server_options(settings))
    server.add_generic_rpc_handlers(handlers(services))
    where = address(host, settings.grpc_port)
    try:
        server.add_insecure_port(where)
    except RuntimeError as error:
        raise GrpcBindError(f"cannot listen for OTLP/gRPC on {where}: {error}") from None
    await server.start()
    _STOPS[server] = None
    log.info("grpc serving", extra={"address": where})
    return server


async def stop_grpc(server: grpc.aio.Server) -> None:
    """Stop taking calls, give those in flight STOP_GRACE_S; the same stop for every caller."""
    task = _STOPS.get(server)
    if task is None:
        task = asyncio.ensure_future(server.stop(STOP_GRACE_S))
        _STOPS[server] = task
    await asyncio.shield(task)
    _STOPS.pop(server, None)


async def stop_all_grpc() -> None:
    """Stop every server this process started (when the process starts shutting down, so
    gRPC calls drain alongside HTTP requests instead of after them)."""
    results = await asyncio.gather(
        *(stop_grpc(server) for server in list(_STOPS)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, Exception):
            log.error("stopping the gRPC server failed", extra={"error": repr(result)})
