"""Alerts: firing and pending alerts with a one-click silence, silences, and the rules
(enable / disable). Changes need the admin scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.api.errors import BadRequest, NotFound
from app.api.params import choice
from app.domain.alert_rules import InvalidRule
from app.domain.alert_state import STATES
from app.domain.silences import InvalidSilence
from app.query import alerts as alert_queries
from app.store import Conflict
from app.store import alert_rules as rules_store
from app.store import silences as silences_store
from app.ui.pages import guarded, services_of, text
from app.ui.render import render
from app.ui.session import checked_form, viewer_of

router = APIRouter(include_in_schema=False)
SILENCE_DURATIONS = {"1h": 1, "4h": 4, "24h": 24, "7d": 24 * 7}
LISTED_ALERTS = 500


def _object_id(value: str, name: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 2**63 - 1:
        raise BadRequest(f"{name} {value!r:.40} is not an id")
    return int(value)


@router.get("/ui/alerts")
@guarded
async def alerts_page(request: Request) -> Response:
    viewer = await viewer_of(request)
    engine = services_of(request).read_engine
    project = viewer.principal.project_id
    now = datetime.now(UTC)
    state = choice("state", text(request.query_params, "state"), STATES)
    found = await alert_queries.list_alerts(engine, project, now, state=state, limit=LISTED_ALERTS)
    silences = await silences_store.list_silences(engine, project, now)
    rules = await rules_store.list_rules(engine, project)
    return render(
        request,
        "alerts.html",
        viewer,
        section="alerts",
        title="Alerts",
        alerts=found,
        silences=[item for item in silences if item["state"] != "expired"][:100],
        rules=rules,
        states=STATES,
        durations=list(SILENCE_DURATIONS),
    )


@router.post("/ui/alerts/{alert_id}/silence")
@guarded
async def silence_alert(request: Request, alert_id: str) -> Response:
    """Silence exactly this alert: one equality matcher per label, for the chosen time."""
    viewer, form = await checked_form(request, scope="admin")
    now = datetime.now(UTC)
    alert = await alert_queries.get_alert(
        services_of(request).engine, viewer.principal.project_id, _object_id(alert_id, "alert"), now
    )
    if alert is None:
        raise NotFound(f"no alert {alert_id:.40} in this project")
    hours = SILENCE_DURATIONS.get(form.get("duration", "1h"))
    if hours is None:
        raise BadRequest(f"duration: choose one of {', '.join(SILENCE_DURATIONS)}")
    body = {
        "matchers": [
            {"name": name, "value": str(value), "is_regex": False, "is_equal": True}
            for name, value in sorted(alert["labels"].items())
        ],
        "ends_at": (now + timedelta(hours=hours)).isoformat(),
        "comment": (form.get("comment") or f"silenced from the UI: {alert['rule_name']}")[:1000],
        "created_by": "ui",
    }
    try:
        await silences_store.create_silence(
            services_of(request).engine, viewer.principal.project_id, body, now
        )
    except (InvalidSilence, Conflict) as error:
        raise BadRequest(str(error)) from None
    return RedirectResponse("/ui/alerts", status_code=303)


@router.post("/ui/silences/{silence_id}/expire")
@guarded
async def expire_silence(request: Request, silence_id: str) -> Response:
    viewer, _ = await checked_form(request, scope="admin")
    silence = await silences_store.expire_silence(
        services_of(request).engine,
        viewer.principal.project_id,
        _object_id(silence_id, "silence"),
        datetime.now(UTC),
    )
    if silence is None:
        raise NotFound(f"no silence {silence_id:.40} in this project")
    return RedirectResponse("/ui/alerts", status_code=303)


@router.post("/ui/rules/{rule_id}/enabled")
@guarded
async def toggle_rule(request: Request, rule_id: str) -> Response:
    viewer, form = await checked_form(request, scope="admin")
    enabled = choice("enabled", form.get("enabled"), ("true", "false"))
    if enabled is None:
        raise BadRequest("enabled: true or false")
    try:
        rule = await rules_store.patch_rule(
            services_of(request).engine,
            viewer.principal.project_id,
            _object_id(rule_id, "rule"),
            {"enabled": enabled == "true"},
        )
    except (InvalidRule, Conflict) as error:
        raise BadRequest(str(error)) from None
    if rule is None:
        raise NotFound(f"no rule {rule_id:.40} in this project")
    return RedirectResponse("/ui/alerts#rules", status_code=303)
