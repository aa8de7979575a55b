"""Reading alert instances, with whether a silence mutes each one now.

Contract: alerts of the caller's project, optionally of one state and one rule, firing
first, then pending, then resolved (each newest `active_at` first, then id). `silenced`
and `silenced_by` (silence ids) are computed at read time by
`app.domain.silences.muting` against the project's active silences; a resolved alert
is never silenced. `value` is null when the query gave no number (NaN). An alert of
another project is None ("not found").
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import alerts
from app.domain.alert_state import STATES
from app.domain.silences import Silence, muting
from app.domain.times import iso
from app.store.silences import active_silences

MAX_ALERTS = 5000
_STATE_ORDER = case({"firing": 0, "pending": 1}, value=alerts.c.state, else_=2)


def _time(moment: datetime | None) -> str | None:
    return iso(moment) if moment else None


def alert_answer(row: Any, silences: list[Silence], now: datetime) -> dict[str, Any]:
    muted_by = muting(row.labels, silences, now) if row.state != "resolved" else []
    value = row.value
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "rule_name": row.rule_name,
        "fingerprint": row.fingerprint,
        "state": row.state,
        "labels": row.labels,
        "annotations": row.annotations,
        "value": None if value is None or math.isnan(value) else value,
        "active_at": iso(row.active_at),
        "fired_at": _time(row.fired_at),
        "resolved_at": _time(row.resolved_at),
        "silenced": bool(muted_by),
        "silenced_by": muted_by,
    }


async def list_alerts(
    engine: AsyncEngine,
    project_id: int,
    now: datetime,
    *,
    state: str | None = None,
    rule_id: int | None = None,
    limit: int = MAX_ALERTS,
) -> list[dict[str, Any]]:
    if state is not None and state not in STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(STATES)}")
    query = select(alerts).where(alerts.c.project_id == project_id)
    if state:
        query = query.where(alerts.c.state == state)
    if rule_id is not None:
        query = query.where(alerts.c.rule_id == rule_id)
    query = query.order_by(_STATE_ORDER, alerts.c.active_at.desc(), alerts.c.id.desc())
    async with engine.connect() as connection:
        rows = (await connection.execute(query.limit(limit))).all()
        silences = await active_silences(connection, project_id, now) if rows else []
    return [alert_answer(row, silences, now) for row in rows]


async def get_alert(
    engine: AsyncEngine, project_id: int, alert_id: int, now: datetime
) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(alerts).where(alerts.c.project_id == project_id, alerts.c.id == alert_id)
            )
        ).first()
        if row is None:
            return None
        silences = await active_silences(connection, project_id, now)
    return alert_answer(row, silences, now)
