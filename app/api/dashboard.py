"""GET /api/v1/dashboard/overview and /api/v1/dashboard/llm."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.errors import BadRequest
from app.api.params import text_param
from app.domain.durations import parse_duration_seconds
from app.query import dashboard

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])
MAX_WINDOW_S = 31 * 86400


def parse_window(window: str) -> float:
    """`window` in seconds; BadRequest unless it is a duration from 1m to 31d."""
    try:
        seconds = parse_duration_seconds(window)
    except ValueError as error:
        raise BadRequest(f"window: {error}") from None
    if not 60 <= seconds <= MAX_WINDOW_S:
        raise BadRequest("window must be between 1m and 31d")
    return seconds


@router.get("/overview", summary="Requests, errors, latency and LLM totals over a window")
async def overview(
    principal: ReadPrincipal,
    services: ServicesDep,
    window: str = "1h",
    service: str | None = None,
) -> dict[str, Any]:
    return await dashboard.overview(
        services.read_engine,
        principal.project_id,
        window_s=parse_window(window),
        service=text_param(service),
    )


@router.get("/llm", summary="Usage, cost and latency per model and per tool")
async def llm(
    principal: ReadPrincipal,
    services: ServicesDep,
    window: str = "1h",
    service: str | None = None,
) -> dict[str, Any]:
    return await dashboard.llm_usage(
        services.read_engine,
        principal.project_id,
        window_s=parse_window(window),
        service=text_param(service),
    )
