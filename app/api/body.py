"""Reading request bodies within the size limit, before they are held in memory whole."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from app.api.errors import BadRequest
from app.api.errors import PayloadTooLarge as PayloadTooLargeError
from app.ingest.payload import PayloadTooLarge

# Rules, silences, channels and SLOs are small documents.
MAX_CONFIG_BODY_BYTES = 1024 * 1024


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
