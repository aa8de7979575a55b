"""Error groups: GET /api/v1/errors, GET and PATCH /api/v1/errors/{fingerprint}."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.errors import BadRequest, NotFound
from app.api.params import choice, text_param, time_range
from app.query import errors as queries

router = APIRouter(prefix="/api/v1", tags=["errors"])
_FINGERPRINT = re.compile(r"^[0-9a-f]{32}$")
MAX_LIMIT = 500


class StatusChange(BaseModel):
    status: Literal["resolved", "ignored", "unresolved"]


def _fingerprint(value: str) -> str:
    value = value.lower()
    if not _FINGERPRINT.match(value):
        raise BadRequest(f"fingerprint {value!r:.80} must be 32 hex characters")
    return value


@router.get("/errors", summary="Error groups seen in a time range")
async def list_errors(
    principal: ReadPrincipal,
    services: ServicesDep,
    status: str | None = None,
    service: str | None = None,
    start: str | None = None,
    end: str | None = None,
    sort: str = "last_seen",
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    start_time, end_time = time_range(start, end)
    groups = await queries.list_groups(
        services.read_engine,
        principal.project_id,
        start=start_time,
        end=end_time,
        status=choice("status", status, queries.STATUSES),
        service=text_param(service),
        sort=choice("sort", sort, list(queries.SORTS)) or "last_seen",
        limit=limit,
    )
    return {"errors": groups}


@router.get("/errors/{fingerprint}", summary="One error group with its latest events")
async def read_error(
    fingerprint: str,
    principal: ReadPrincipal,
    services: ServicesDep,
    start: str | None = None,
    end: str | None = None,
    events: int = Query(20, ge=1, le=200),
) -> dict[str, Any]:
    start_time, end_time = time_range(start, end, default_span=timedelta(hours=24))
    group = await queries.get_group(
        services.read_engine,
        principal.project_id,
        _fingerprint(fingerprint),
        start=start_time,
        end=end_time,
        events_limit=events,
    )
    if group is None:
        raise NotFound(f"no error group {fingerprint} in this project")
    return group


@router.patch("/errors/{fingerprint}", summary="Resolve, ignore or reopen an error group")
async def change_error(
    fingerprint: str, change: StatusChange, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    group = await queries.set_status(
        services.engine, principal.project_id, _fingerprint(fingerprint), change.status
    )
    if group is None:
        raise NotFound(f"no error group {fingerprint} in this project")
    return group
