"""SLOs: each with its budget, burn rates, time to exhaustion and policy; an SLO's page
with its error-budget burn-down and burn-rate history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.errors import BadRequest, NotFound
from app.domain.metric_math import default_step_s
from app.domain.times import iso
from app.query import slos as queries
from app.store import slos as store
from app.ui.pages import chart, guarded, services_of
from app.ui.render import render
from app.ui.session import viewer_of

router = APIRouter(include_in_schema=False)
MAX_LISTED = 200


def exhaustion(seconds: float | None, remaining_ratio: float = 1.0) -> str:
    if remaining_ratio <= 0:
        return "exhausted"
    if seconds is None:
        return "not burning"
    if seconds <= 0:
        return "exhausted"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


@router.get("/ui/slos")
@guarded
async def slo_list(request: Request) -> Response:
    viewer = await viewer_of(request)
    now = datetime.now(UTC)
    async with services_of(request).read_engine.connect() as connection:
        found = await store.list_slos(connection, viewer.principal.project_id, None)
        statuses = [
            queries.status_document(slo, await queries.evaluate(connection, slo, now), now)
            for slo in found[:MAX_LISTED]
        ]
    return render(
        request,
        "slos.html",
        viewer,
        section="slos",
        title="SLOs",
        statuses=statuses,
        exhaustion=exhaustion,
    )


def _slo_id(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 2**63 - 1:
        raise BadRequest(f"SLO id {value!r:.40} is not an id")
    return int(value)


@router.get("/ui/slos/{slo_id}")
@guarded
async def slo_page(request: Request, slo_id: str) -> Response:
    viewer = await viewer_of(request)
    now = datetime.now(UTC)
    async with services_of(request).read_engine.connect() as connection:
        slo = await store.get_slo(connection, viewer.principal.project_id, _slo_id(slo_id))
        if slo is None:
            raise NotFound(f"no SLO {slo_id:.40} in this project")
        status = queries.status_document(slo, await queries.evaluate(connection, slo, now), now)
        start = now - timedelta(seconds=slo.spec.window_s)
        step_s = max(60, default_step_s((now - start).total_seconds()))
        step_s -= step_s % 60
        try:
            points = await queries.read_history(connection, slo, start, now, step_s)
        except ValueError as error:
            raise BadRequest(f"history: {error}") from None
    x = [iso(point.time) for point in points]
    charts = {
        "budget": chart(
            x,
            [
                {
                    "label": "budget remaining",
                    "values": [point.budget_remaining_ratio for point in points],
                }
            ],
            unit="ratio",
        ),
        "burn": chart(x, [{"label": "burn rate", "values": [point.burn_rate for point in points]}]),
    }
    return render(
        request,
        "slo.html",
        viewer,
        section="slos",
        title=slo.spec.name,
        status=status,
        slo=slo.document(),
        charts=charts,
        exhaustion=exhaustion,
        step=f"{step_s // 60}m",
    )
