"""Silences: GET/POST /api/v1/silences (?state=), GET/DELETE /api/v1/silences/{id}.

Read scope to view, admin to change. DELETE expires the silence (ends_at = now), as
Alertmanager does, and answers it; bodies are validated by `parse_silence` (400 naming
the field).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from app.api.body import config_body
from app.api.deps import AdminPrincipal, ReadPrincipal, ServicesDep
from app.api.errors import NotFound
from app.api.params import ObjectId, choice
from app.store import silences as store

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/silences", summary="Silences: pending, active and expired")
async def list_silences(
    principal: ReadPrincipal, services: ServicesDep, state: str | None = None
) -> dict[str, Any]:
    found = await store.list_silences(
        services.read_engine,
        principal.project_id,
        datetime.now(UTC),
        state=choice("state", state, store.STATES),
    )
    return {"silences": found}


@router.post("/silences", status_code=201, summary="Create a silence")
async def create_silence(
    request: Request, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    body = await config_body(request)
    return await store.create_silence(
        services.engine, principal.project_id, body, datetime.now(UTC)
    )


@router.get("/silences/{silence_id}", summary="One silence")
async def read_silence(
    silence_id: ObjectId, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    silence = await store.get_silence(
        services.read_engine, principal.project_id, silence_id, datetime.now(UTC)
    )
    if silence is None:
        raise NotFound(f"no silence {silence_id} in this project")
    return silence


@router.delete("/silences/{silence_id}", summary="Expire a silence now")
async def expire_silence(
    silence_id: ObjectId, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    silence = await store.expire_silence(
        services.engine, principal.project_id, silence_id, datetime.now(UTC)
    )
    if silence is None:
        raise NotFound(f"no silence {silence_id} in this project")
    return silence
