"""SLOs as stored configuration: create, read, update, delete, with the alert rules they own.

Contract: every function filters on `project_id`; another project's SLO reads as missing
(None / False). Creating an SLO creates its two rules (burn rate, budget policy; signal
`slo`, builtin, `slo_id` set) in the same transaction; an update keeps their name,
channels and enabled flag in step; disabling the alerting or deleting the SLO first
resolves the rules' live alerts, so resolved notifications go out. An update that counts
other events (service or SLI changed) voids the stored minute counts: they are deleted and
the worker counts the SLO again from the spans still retained.

Raises `SloConflict` (a name taken, by an SLO or by another alert rule) and
`UnknownChannels` (alerting.channels names a channel the project does not have).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import alert_rules, alerts, channels, slo_hours, slo_minutes, slos
from app.domain.durations import parse_duration_seconds
from app.domain.slos import SloSpec, owned_rules, parse_slo
from app.domain.times import iso


class SloConflict(ValueError):
    """The name is taken; the message says by what."""


class UnknownChannels(ValueError):
    """alerting.channels names channels this project does not have."""


@dataclass(frozen=True, slots=True)
class Slo:
    id: int
    project_id: int
    spec: SloSpec
    created_at: datetime
    updated_at: datetime
    counted_from: datetime | None
    counted_until: datetime | None
    last_evaluated_at: datetime | None
    last_duration_ms: float | None
    last_error: str | None

    def document(self) -> dict[str, Any]:
        """The API's form: the spec plus id, times and the counting worker's progress."""
        return {
            "id": self.id,
            **self.spec.document(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "counting": {
                "counted_from": _iso(self.counted_from),
                "counted_until": _iso(self.counted_until),
                "last_evaluated_at": _iso(self.last_evaluated_at),
                "last_duration_ms": self.last_duration_ms,
                "last_error": self.last_error,
            },
        }


def _iso(moment: datetime | None) -> str | None:
    return iso(moment) if moment else None


_COLUMNS = (
    slos.c.id,
    slos.c.project_id,
    slos.c.spec,
    slos.c.created_at,
    slos.c.updated_at,
    slos.c.counted_from,
    slos.c.counted_until,
    slos.c.last_evaluated_at,
    slos.c.last_duration_ms,
    slos.c.last_error,
)


def slo_of(row: Any) -> Slo:
    return Slo(
        id=row.id,
        project_id=row.project_id,
        spec=parse_slo(row.spec),
        created_at=row.created_at,
        updated_at=row.updated_at,
        counted_from=row.counted_from,
        counted_until=row.counted_until,
        last_evaluated_at=row.last_evaluated_at,
        last_duration_ms=row.last_duration_ms,
        last_error=row.last_error,
    )


async def list_slos(
    connection: AsyncConnection, project_id: int, service: str | None = None
) -> list[Slo]:
    """The project's SLOs by name (of one service when given)."""
    query = select(*_COLUMNS).where(slos.c.project_id == project_id).order_by(slos.c.name)
    if service is not None:
        query = query.where(slos.c.service == service)
    return [slo_of(row) for row in await connection.execute(query)]


async def get_slo(connection: AsyncConnection, project_id: int, slo_id: int) -> Slo | None:
    row = (
        await connection.execute(
            select(*_COLUMNS).where(slos.c.project_id == project_id, slos.c.id == slo_id)
        )
    ).one_or_none()
    return slo_of(row) if row else None


async def create_slo(engine: AsyncEngine, project_id: int, spec: SloSpec) -> Slo:
    async with engine.begin() as connection:
        await _check_channels(connection, project_id, spec)
        slo_id = await connection.scalar(
            insert(slos)
            .values(
                project_id=project_id,
                name=spec.name,
                service=spec.service,
                spec=spec.document(),
            )
            .on_conflict_do_nothing(constraint="slos_name")
            .returning(slos.c.id)
        )
        if slo_id is None:
            raise SloConflict(f"name: an SLO named {spec.name!r} already exists in this project")
        await _write_rules(connection, project_id, slo_id, spec)
        slo = await get_slo(connection, project_id, slo_id)
    assert slo is not None
    return slo


async def update_slo(
    engine: AsyncEngine, project_id: int, slo_id: int, spec: SloSpec, now: datetime
) -> Slo | None:
    async with engine.begin() as connection:
        current = (
            await connection.execute(
                select(slos.c.spec)
                .where(slos.c.project_id == project_id, slos.c.id == slo_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if current is None:
            return None
        before = parse_slo(current)
        await _check_channels(connection, project_id, spec)
        taken = await connection.scalar(
            select(slos.c.id).where(
                slos.c.project_id == project_id, slos.c.name == spec.name, slos.c.id != slo_id
            )
        )
        if taken is not None:
            raise SloConflict(f"name: an SLO named {spec.name!r} already exists in this project")
        values: dict[str, Any] = {
            "name": spec.name,
            "service": spec.service,
            "spec": spec.document(),
            "updated_at": now,
        }
        if before.counts_differently(spec):
            await connection.execute(delete(slo_minutes).where(slo_minutes.c.slo_id == slo_id))
            await connection.execute(delete(slo_hours).where(slo_hours.c.slo_id == slo_id))
            values.update(counted_from=None, counted_until=None, last_evaluated_at=None)
        await connection.execute(update(slos).where(slos.c.id == slo_id).values(**values))
        if not spec.alerting.enabled:
            await resolve_live_alerts(connection, slo_id, now)
        await _write_rules(connection, project_id, slo_id, spec)
        return await get_slo(connection, project_id, slo_id)


async def delete_slo(engine: AsyncEngine, project_id: int, slo_id: int, now: datetime) -> bool:
    """Resolves the SLO's live alerts, then deletes it, its rules and its minute counts."""
    async with engine.begin() as connection:
        found = await connection.scalar(
            select(slos.c.id)
            .where(slos.c.project_id == project_id, slos.c.id == slo_id)
            .with_for_update()
        )
        if found is None:
            return False
        await resolve_live_alerts(connection, slo_id, now)
        await connection.execute(delete(slo_minutes).where(slo_minutes.c.slo_id == slo_id))
        # alert_rules and slo_hours go with it (ON DELETE CASCADE); alerts keep rule_id NULL.
        await connection.execute(delete(slos).where(slos.c.id == slo_id))
    return True


async def resolve_live_alerts(connection: AsyncConnection, slo_id: int, now: datetime) -> int:
    """Resolve the pending and firing alerts of the SLO's rules; how many were live."""
    rule_ids = select(alert_rules.c.id).where(alert_rules.c.slo_id == slo_id)
    result = await connection.execute(
        update(alerts)
        .where(alerts.c.rule_id.in_(rule_ids), alerts.c.state != "resolved")
        .values(state="resolved", resolved_at=now, last_evaluated_at=now)
    )
    return result.rowcount


async def _check_channels(connection: AsyncConnection, project_id: int, spec: SloSpec) -> None:
    wanted = spec.alerting.channels
    if not wanted:
        return
    found = set(
        await connection.scalars(
            select(channels.c.id).where(
                channels.c.project_id == project_id, channels.c.id.in_(wanted)
            )
        )
    )
    missing = [str(channel) for channel in wanted if channel not in found]
    if missing:
        raise UnknownChannels(
            f"alerting.channels: no channel {', '.join(missing)} in this project; "
            "create it with POST /api/v1/channels or leave it out"
        )


async def _write_rules(
    connection: AsyncConnection, project_id: int, slo_id: int, spec: SloSpec
) -> None:
    """Insert or update the SLO's owned rules so they match `spec`."""
    rules = owned_rules(spec, slo_id)
    names = [rule.name for rule in rules.values()]
    clash = await connection.scalar(
        select(alert_rules.c.name).where(
            alert_rules.c.project_id == project_id,
            alert_rules.c.name.in_(names),
            alert_rules.c.slo_id.is_distinct_from(slo_id),
        )
    )
    if clash is not None:
        raise SloConflict(
            f"name: an alert rule named {clash!r} already exists, and this SLO's own rule "
            "would take that name; rename the SLO or the rule"
        )
    for builtin, rule in rules.items():
        values = {
            "name": rule.name,
            "signal": rule.signal,
            "spec": rule.document(),
            "enabled": rule.enabled,
            "updated_at": func.now(),
        }
        try:
            changed = await connection.execute(
                update(alert_rules)
                .where(alert_rules.c.slo_id == slo_id, alert_rules.c.builtin == builtin)
                .values(**values)
            )
            if changed.rowcount == 0:
                await connection.execute(
                    insert(alert_rules).values(
                        project_id=project_id, builtin=builtin, slo_id=slo_id, **values
                    )
                )
        except IntegrityError:
            raise SloConflict(
                f"name: the alert rule name {rule.name!r} was taken meanwhile; retry"
            ) from None


async def longest_window_s(connection: AsyncConnection) -> int:
    """The longest window of any SLO in any project (0 without SLOs): retention keeps the
    minute counts and dashboard rollups at least this long."""
    windows = await connection.scalars(select(slos.c.spec["window"].astext).distinct())
    return max((int(parse_duration_seconds(window)) for window in windows), default=0)
