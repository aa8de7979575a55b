"""GET /api/v1/traces/{trace_id}."""

from __future__ import annotations

import binascii
from typing import Any

from fastapi import APIRouter

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.errors import BadRequest, NotFound
from app.query.traces import get_trace

router = APIRouter(prefix="/api/v1", tags=["query"])


def parse_trace_id(value: str) -> bytes:
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise BadRequest(f"trace_id {value!r:.80} must be 32 hex characters")
    return raw


@router.get("/traces/{trace_id}", summary="One trace with all its spans")
async def read_trace(trace_id: str, principal: ReadPrincipal, services: ServicesDep) -> Any:
    trace = await get_trace(services.read_engine, principal.project_id, parse_trace_id(trace_id))
    if trace is None:
        raise NotFound(f"no trace {trace_id.lower()} in this project")
    return trace
