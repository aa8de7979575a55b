"""Reading request bodies within the size limit, before they are held in memory whole."""

from __future__ import annotations

from fastapi import Request

from app.ingest.payload import PayloadTooLarge


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
