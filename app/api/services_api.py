"""GET /api/v1/services: services and their operations seen in a time range."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.params import time_range
from app.query.services import list_services

router = APIRouter(prefix="/api/v1", tags=["query"])


@router.get("/services", summary="Services with their operations and span counts")
async def read_services(
    principal: ReadPrincipal,
    services: ServicesDep,
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    start_time, end_time = time_range(start, end)
    found = await list_services(
        services.read_engine, principal.project_id, start=start_time, end=end_time
    )
    return {"services": found}
