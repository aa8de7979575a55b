"""Error groups: the list, a group's page (stack trace, events over time, recent events),
and resolve / ignore / reopen (admin)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.api.errors import BadRequest, NotFound
from app.api.params import choice
from app.domain.stacktrace import parse_stacktrace
from app.query import errors as queries
from app.ui.pages import WINDOWS, bounded_int, chart, guarded, services_of, text, time_window
from app.ui.render import render
from app.ui.session import checked_form, viewer_of

router = APIRouter(include_in_schema=False)
_FINGERPRINT = re.compile(r"^[0-9a-f]{32}$")
ERROR_WINDOWS = (*WINDOWS, "30d")


def _fingerprint(value: str) -> str:
    value = value.lower()
    if not _FINGERPRINT.match(value):
        raise BadRequest(f"fingerprint {value!r:.40} must be 32 hex characters")
    return value


@router.get("/ui/errors")
@guarded
async def error_list(request: Request) -> Response:
    viewer = await viewer_of(request)
    query = request.query_params
    start, end, window = time_window(query, default="24h")
    groups = await queries.list_groups(
        services_of(request).read_engine,
        viewer.principal.project_id,
        start=start,
        end=end,
        status=choice("status", text(query, "status"), queries.STATUSES),
        service=text(query, "service"),
        sort=choice("sort", text(query, "sort"), list(queries.SORTS)) or "last_seen",
        limit=bounded_int(query, "limit", 100, 1, 500),
    )
    return render(
        request,
        "errors.html",
        viewer,
        section="errors",
        title="Errors",
        groups=groups,
        window=window,
        windows=ERROR_WINDOWS,
        statuses=queries.STATUSES,
        sorts=list(queries.SORTS),
    )


def _hourly_chart(hourly: list[dict], start: datetime, end: datetime) -> dict:
    """Events per hour over the window, zero-filled (a chart needs every hour)."""
    counts = {
        datetime.fromisoformat(item["hour"].replace("Z", "+00:00")): item["count"]
        for item in hourly
    }
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    x, values = [], []
    while hour <= end:
        x.append(hour.isoformat())
        values.append(counts.get(hour, 0))
        hour += timedelta(hours=1)
    return chart(x, [{"label": "events", "values": values}])


@router.get("/ui/errors/{fingerprint}")
@guarded
async def error_group(request: Request, fingerprint: str) -> Response:
    viewer = await viewer_of(request)
    start, end, window = time_window(request.query_params, default="24h")
    group = await queries.get_group(
        services_of(request).read_engine,
        viewer.principal.project_id,
        _fingerprint(fingerprint),
        start=start,
        end=end,
        events_limit=20,
    )
    if group is None:
        raise NotFound(f"no error group {fingerprint:.40} in this project")
    latest = group["events"][0] if group["events"] else None
    frames = parse_stacktrace(latest["stacktrace"]) if latest else []
    return render(
        request,
        "error.html",
        viewer,
        section="errors",
        title=f"{group['type']}",
        group=group,
        latest=latest,
        frames=frames,
        events_chart=_hourly_chart(group["hourly_counts"], start, min(end, datetime.now(UTC))),
        window=window,
        windows=ERROR_WINDOWS,
    )


@router.post("/ui/errors/{fingerprint}/status")
@guarded
async def change_status(request: Request, fingerprint: str) -> Response:
    viewer, form = await checked_form(request, scope="admin")
    status = choice("status", form.get("status"), queries.STATUSES)
    if status is None:
        raise BadRequest("status: choose resolved, ignored or unresolved")
    fingerprint = _fingerprint(fingerprint)
    group = await queries.set_status(
        services_of(request).engine, viewer.principal.project_id, fingerprint, status
    )
    if group is None:
        raise NotFound(f"no error group {fingerprint} in this project")
    return RedirectResponse(f"/ui/errors/{fingerprint}", status_code=303)
