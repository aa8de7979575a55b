"""Self-health: /healthz (alive), /readyz (database and schema), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from app.api.deps import ServicesDep
from app.db.migrate import current_revision, known_revisions
from app.telemetry import metrics_payload

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and the schema is at head")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    if services.writer.breaker.is_open:
        # Ingest already found the database away and probes it twice a second: answer now
        # rather than wait for a connection to a silent server to time out.
        checks["database"] = "unreachable: not answering (ingest answers 503 until it does)"
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    try:
        async with asyncio.timeout(services.settings.db_connect_timeout_s):
            async with services.engine.connect() as connection:
                revision = await current_revision(connection)
        checks["database"] = "ok"
        checks["schema"] = schema_check(revision, services.head_revision)
    except Exception as error:  # any failure to reach the database means not ready
        checks["database"] = f"unreachable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


def schema_check(revision: str | None, head: str) -> str:
    """ "ok" at our head, or past it: during a rolling upgrade the new version migrates
    first (migrations only add), and the old processes must stay in service meanwhile."""
    if revision == head:
        return "ok"
    if revision is not None and revision not in known_revisions():
        return "ok"
    return f"at {revision}, expected {head}: run `telemetry-collector migrate`"


@router.get(
    "/metrics",
    summary="Prometheus metrics of the collector itself",
    response_class=PlainTextResponse,  # documents the text exposition format, not JSON
)
async def metrics() -> Response:
    body, content_type = metrics_payload()
    return Response(body, media_type=content_type)
