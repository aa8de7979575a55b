"""Reading request bodies: size limits and, for ingest, the in-flight budget, before
anything is held whole.

What an ingest request will cost is reserved on its ticket before the bytes are read: from
Content-Length when the client declares it (so an overloaded collector refuses without
reading the body at all), chunk by chunk otherwise, and for what decompression adds once
it is known. See `app/ingest/admission.py` for the estimate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request

from app import shutdown
from app.api.deps import get_services
from app.api.errors import BadRequest, ServiceUnavailable
from app.api.errors import PayloadTooLarge as PayloadTooLargeError
from app.config import Settings
from app.ingest import payload
from app.ingest.admission import DECODED_BYTES_PER_BYTE, Ticket
from app.ingest.offload import Runner, inline
from app.ingest.payload import PayloadTooLarge

T = TypeVar("T")
# Rules, silences, channels and SLOs are small documents.
MAX_CONFIG_BODY_BYTES = 1024 * 1024


class ClientGone(Exception):
    """The client closed its connection before the answer: nothing is answered to nobody."""


async def read_limited(
    request: Request, max_bytes: int, reserve: Callable[[int], None] | None = None
) -> bytes:
    """The body as sent, refused past `max_bytes` (from Content-Length before reading).

    `reserve(total)` is called with the size known so far, first with the declared
    Content-Length before any byte is read, then as chunks pass it; it may raise.
    """
    declared = request.headers.get("content-length")
    known = 0
    if declared and declared.isdigit():
        if int(declared) > max_bytes:
            raise PayloadTooLarge(
                f"body of {declared} bytes is larger than the {max_bytes}-byte limit"
            )
        known = int(declared)
        if reserve is not None:
            reserve(known)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body is larger than the {max_bytes}-byte limit")
        if size > known and reserve is not None:
            reserve(size)
            known = size
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(
    request: Request, settings: Settings, ticket: Ticket, run: Runner = inline
) -> bytes:
    """An ingest body after gzip/deflate, within the size limits, reserved on `ticket`.

    `run` runs the decompression (64 MiB take a few hundred milliseconds), e.g. on a
    thread. Raises `PayloadTooLarge`, `UnsupportedMediaType`, `MalformedPayload`,
    `Overloaded`, or starlette's `ClientDisconnect` when the client goes away mid-body.
    """
    encoding = request.headers.get("content-encoding")
    compressed = bool(payload.content_codings(encoding))
    # Identity bodies are their own payload: the decoded estimate is known from the size.
    per_byte = 1 if compressed else 1 + DECODED_BYTES_PER_BYTE
    reserved = 0

    def reserve(total: int) -> None:
        nonlocal reserved
        ticket.reserve((total - reserved) * per_byte)
        reserved = total

    body = await read_limited(request, settings.max_body_bytes, reserve)
    if not compressed:
        return body
    body = await run(payload.decompress, body, encoding, settings.max_decompressed_bytes)
    ticket.reserve(len(body) * DECODED_BYTES_PER_BYTE)
    return body


async def config_body(request: Request) -> Any:
    """A configuration body as raw JSON, for a domain parser to validate (never a 422)."""
    try:
        raw = await read_limited(request, MAX_CONFIG_BODY_BYTES)
    except PayloadTooLarge as error:
        raise PayloadTooLargeError(str(error)) from None
    if not raw.strip():
        raise BadRequest("the body is empty: send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run `work` (after the body was read whole); cancel it if the client disconnects.

    Once the body has been read, the next ASGI message is the disconnect, so waiting for
    it costs nothing. A cancelled write that no flusher has taken yet is dropped from the
    writer's queue; one already being committed stays committed (and a retry merges).
    Raises `ClientGone` when the client left, and `ServiceUnavailable` (503) when the
    process's graceful shutdown is about to end before the work did (app/shutdown.py).
    """
    work_task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    giving_up = asyncio.ensure_future(shutdown.expired())
    others = (watcher, giving_up)
    try:
        done, _ = await asyncio.wait({work_task, *others}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        for task in (work_task, *others):
            task.cancel()
        _unless_shutting_down(request)
        raise
    for task in others:
        task.cancel()
    if work_task in done:
        return work_task.result()
    work_task.cancel()
    try:
        await asyncio.gather(work_task, return_exceptions=True)
    except asyncio.CancelledError:
        _unless_shutting_down(request)
        raise
    if giving_up in done:
        raise _shutting_down(request)
    raise ClientGone()


def _shutting_down(request: Request) -> ServiceUnavailable:
    retry_after = get_services(request).settings.retry_after_s
    return ServiceUnavailable(
        "the collector is shutting down and this batch was not committed in time; retry",
        headers={"Retry-After": str(retry_after)},
    )


def _unless_shutting_down(request: Request) -> None:
    """Raise the 503 of a shutdown instead of the cancellation being handled, if the
    process is shutting down: the server cancels what is still running when its graceful
    wait ends, and a cancelled request is answered 500. The give-up timer answers 503
    before that, but a loop that did not run for the last seconds (a starved machine)
    meets both deadlines in one turn; the cancellation is then taken back."""
    if not shutdown.began():
        return
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    raise _shutting_down(request) from None


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
