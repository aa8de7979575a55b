"""Reading request bodies within the size limit, before they are held in memory whole."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from app.api import errors
from app.ingest.payload import PayloadTooLarge

# Configuration bodies (rules, channels, silences, SLOs) are small documents.
MAX_DOCUMENT_BYTES = 1024 * 1024


async def read_limited(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body of {declared} bytes is larger than the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body is larger than the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_document(request: Request) -> Any:
    """A configuration body as parsed JSON; 400 when it is not JSON, 413 when too large."""
    try:
        raw = await read_limited(request, MAX_DOCUMENT_BYTES)
    except PayloadTooLarge as error:
        raise errors.PayloadTooLarge(str(error)) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise errors.BadRequest(f"the body is not JSON: {error}") from None
