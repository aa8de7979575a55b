"""SLOs: CRUD, status, history and the deploy gate under /api/v1/slos (docs/slos.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.api.body import read_limited
from app.api.deps import AdminPrincipal, ReadPrincipal, ServicesDep
from app.api.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from app.api.params import ObjectId, time_range
from app.domain.durations import parse_duration_seconds
from app.domain.metric_math import default_step_s
from app.domain.slos import InvalidSlo, SloSpec, parse_slo
from app.domain.times import iso
from app.ingest import payload
from app.query import slos as queries
from app.store import slos as store

router = APIRouter(prefix="/api/v1", tags=["slos"])
MAX_BODY_BYTES = 256 * 1024


async def _spec(request: Request) -> SloSpec:
    try:
        body = orjson.loads(await read_limited(request, MAX_BODY_BYTES))
    except payload.PayloadTooLarge as error:
        raise PayloadTooLarge(str(error)) from None
    except orjson.JSONDecodeError:
        raise BadRequest("body: not valid JSON; send the SLO as a JSON object") from None
    try:
        return parse_slo(body)
    except InvalidSlo as error:
        raise BadRequest(str(error)) from None


def _not_found(slo_id: int) -> NotFound:
    return NotFound(f"no SLO {slo_id} in this project")


@router.get("/slos", summary="The project's SLOs")
async def list_slos(
    principal: ReadPrincipal, services: ServicesDep, service: str | None = None
) -> dict[str, Any]:
    async with services.read_engine.connect() as connection:
        found = await store.list_slos(connection, principal.project_id, service)
    return {"slos": [slo.document() for slo in found]}


@router.post("/slos", status_code=201, summary="Create an SLO (and its burn-rate alerts)")
async def create_slo(
    request: Request, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    spec = await _spec(request)
    try:
        slo = await store.create_slo(services.engine, principal.project_id, spec)
    except store.SloConflict as error:
        raise Conflict(str(error)) from None
    except store.UnknownChannels as error:
        raise BadRequest(str(error)) from None
    return slo.document()


# Declared before /slos/{slo_id}; ids are integers, so "gate" could not be one anyway.
@router.get(
    "/slos/gate",
    summary="May this service deploy? 409 while one of its SLOs is in freeze",
    responses={409: {"description": "an SLO of the service has spent its error budget"}},
)
async def deploy_gate(
    principal: ReadPrincipal, services: ServicesDep, service: str | None = None
) -> JSONResponse:
    if not service:
        raise BadRequest("service: required, e.g. /api/v1/slos/gate?service=assistant-api")
    now = datetime.now(UTC)
    async with services.read_engine.connect() as connection:
        allowed, found = await queries.gate(connection, principal.project_id, service, now)
    body = {
        "allowed": allowed,
        "service": service,
        "evaluated_at": iso(now),
        "slos": found if allowed else [item for item in found if item["policy"] == "freeze"],
    }
    return JSONResponse(body, status_code=200 if allowed else 409)


@router.get("/slos/{slo_id:int}", summary="One SLO")
async def read_slo(
    slo_id: ObjectId, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    async with services.read_engine.connect() as connection:
        slo = await store.get_slo(connection, principal.project_id, slo_id)
    if slo is None:
        raise _not_found(slo_id)
    return slo.document()


@router.put("/slos/{slo_id:int}", summary="Replace an SLO (its alerts follow)")
async def replace_slo(
    slo_id: ObjectId, request: Request, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    spec = await _spec(request)
    try:
        slo = await store.update_slo(
            services.engine, principal.project_id, slo_id, spec, datetime.now(UTC)
        )
    except store.SloConflict as error:
        raise Conflict(str(error)) from None
    except store.UnknownChannels as error:
        raise BadRequest(str(error)) from None
    if slo is None:
        raise _not_found(slo_id)
    return slo.document()


@router.delete("/slos/{slo_id:int}", status_code=204, summary="Delete an SLO and its alerts")
async def delete_slo(
    slo_id: ObjectId, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    if not await store.delete_slo(services.engine, principal.project_id, slo_id, datetime.now(UTC)):
        raise _not_found(slo_id)
    return Response(status_code=204)


@router.get("/slos/{slo_id:int}/status", summary="Error budget, burn rates and policy now")
async def slo_status(
    slo_id: ObjectId, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    async with services.read_engine.connect() as connection:
        status = await queries.read_status(
            connection, principal.project_id, slo_id, datetime.now(UTC)
        )
    if status is None:
        raise _not_found(slo_id)
    return status


def _step(step: str | None, span_s: float) -> int:
    """Whole minutes; without `step`, about 60 points (a round duration, at least 1m)."""
    if not step:
        return max(60, default_step_s(span_s))
    try:
        seconds = parse_duration_seconds(step)
    except ValueError as error:
        raise BadRequest(f"step: {error}") from None
    if seconds < 60 or seconds % 60:
        raise BadRequest(f"step: {step!r:.40} is not whole minutes; use e.g. 1m, 5m or 1h")
    return int(seconds)


@router.get("/slos/{slo_id:int}/history", summary="SLI, budget and burn rate over time")
async def slo_history(
    slo_id: ObjectId,
    principal: ReadPrincipal,
    services: ServicesDep,
    start: str | None = None,
    end: str | None = None,
    step: str | None = None,
) -> dict[str, Any]:
    async with services.read_engine.connect() as connection:
        slo = await store.get_slo(connection, principal.project_id, slo_id)
        if slo is None:
            raise _not_found(slo_id)
        start_time, end_time = time_range(
            start, end, default_span=timedelta(seconds=slo.spec.window_s)
        )
        step_s = _step(step, (end_time - start_time).total_seconds())
        try:
            points = await queries.read_history(connection, slo, start_time, end_time, step_s)
        except ValueError as error:
            raise BadRequest(f"step: {error}") from None
    return {
        "step": f"{step_s // 60}m",
        "window": slo.spec.window,
        "points": [
            {
                "time": iso(point.time),
                "sli": point.sli,
                "budget_remaining_ratio": point.budget_remaining_ratio,
                "burn_rate": point.burn_rate,
            }
            for point in points
        ],
    }
