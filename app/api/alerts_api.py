"""Alert instances: GET /api/v1/alerts (?state=, ?rule_id=) and GET /api/v1/alerts/{id}.

Current (pending, firing) and recently resolved alerts of the project, each with
`silenced` / `silenced_by` computed from the project's active silences at read time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.errors import NotFound
from app.api.params import ObjectId, choice
from app.domain.alert_state import STATES
from app.query import alerts as queries

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts", summary="Pending, firing and recently resolved alerts")
async def list_alerts(
    principal: ReadPrincipal,
    services: ServicesDep,
    state: str | None = None,
    rule_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_ALERTS)] = queries.MAX_ALERTS,
) -> dict[str, Any]:
    found = await queries.list_alerts(
        services.read_engine,
        principal.project_id,
        datetime.now(UTC),
        state=choice("state", state, STATES),
        rule_id=rule_id,
        limit=limit,
    )
    return {"alerts": found}


@router.get("/alerts/{alert_id}", summary="One alert instance")
async def read_alert(
    alert_id: ObjectId,
    principal: ReadPrincipal,
    services: ServicesDep,
) -> dict[str, Any]:
    alert = await queries.get_alert(
        services.read_engine, principal.project_id, alert_id, datetime.now(UTC)
    )
    if alert is None:
        raise NotFound(f"no alert {alert_id} in this project")
    return alert
