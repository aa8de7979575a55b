"""Alert rules as configuration: create, read, replace, patch, delete; built-in rules.

Contract:
- Bodies are validated by `parse_rule` (InvalidRule names the field). The stored `spec`
  is the validated document; the `enabled` column is authoritative and kept equal to
  `spec.enabled`.
- A rule name is unique per project (`Conflict`); channel ids must be channels of the
  project (`InvalidReference` naming `channels`).
- Built-in rules (`builtin` set) keep everything but `EDITABLE_FIELDS`, and cannot be
  deleted (`Conflict`). SLO-owned rules (signal `slo`) are built-in too, and follow their
  SLO: they are changed through it, never here (`Conflict`).
- Disabling or deleting a rule retires its live alerts in the same transaction: firing
  ones resolve (so resolved notifications go out), pending ones are dropped.
- A rule of another project is None ("not found").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, cast, delete, exists, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import alert_rules, alerts, channels, projects
from app.domain.alert_rules import InvalidRule, RuleSpec, parse_rule
from app.domain.builtin_rules import EDITABLE_FIELDS, builtin_specs, locked_field_changed
from app.domain.merge_patch import merge_patch
from app.domain.times import iso
from app.store import Conflict, InvalidReference


async def ensure_builtin_rules(
    connection: AsyncConnection, project_ids: Sequence[int] | None = None
) -> int:
    """Create the built-in rules each project (or each of `project_ids`) lacks; one
    statement, safe to run concurrently. Returns how many rules were created."""
    specs = builtin_specs()
    builtin = (
        select(
            func.unnest(cast([key for key, _ in specs], ARRAY(Text))).label("builtin"),
            func.unnest(cast([spec.name for _, spec in specs], ARRAY(Text))).label("name"),
            func.unnest(cast([spec.signal for _, spec in specs], ARRAY(Text))).label("signal"),
            func.unnest(cast([spec.document() for _, spec in specs], ARRAY(JSONB))).label("spec"),
        )
    ).subquery("builtin")
    missing = (
        select(projects.c.id, builtin.c.name, builtin.c.signal, builtin.c.spec, builtin.c.builtin)
        .select_from(projects.join(builtin, true()))
        .where(
            ~exists().where(
                alert_rules.c.project_id == projects.c.id,
                alert_rules.c.builtin == builtin.c.builtin,
            )
        )
    )
    if project_ids is not None:
        missing = missing.where(projects.c.id.in_(list(project_ids)))
    result = await connection.execute(
        pg_insert(alert_rules)
        .from_select(["project_id", "name", "signal", "spec", "builtin"], missing)
        .on_conflict_do_nothing()
    )
    return max(result.rowcount or 0, 0)


def _document(row: Any) -> dict[str, Any]:
    return {**row.spec, "enabled": row.enabled}


def rule_answer(row: Any) -> dict[str, Any]:
    """A stored rule as the API returns it."""
    return {
        "id": row.id,
        **_document(row),
        "builtin": row.builtin is not None,
        "slo_id": row.slo_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "last_evaluated_at": iso(row.last_evaluated_at) if row.last_evaluated_at else None,
        "last_duration_ms": row.last_duration_ms,
        "last_error": row.last_error,
    }


def _of_project(project_id: int, rule_id: int) -> Any:
    return select(alert_rules).where(
        alert_rules.c.project_id == project_id, alert_rules.c.id == rule_id
    )


async def list_rules(engine: AsyncEngine, project_id: int) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(alert_rules)
            .where(alert_rules.c.project_id == project_id)
            .order_by(alert_rules.c.id)
        )
        return [rule_answer(row) for row in rows.all()]


async def get_rule(engine: AsyncEngine, project_id: int, rule_id: int) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (await connection.execute(_of_project(project_id, rule_id))).first()
    return rule_answer(row) if row else None


async def _check_channels(connection: AsyncConnection, project_id: int, ids: list[int]) -> None:
    if not ids:
        return
    found = set(
        await connection.scalars(
            select(channels.c.id).where(channels.c.project_id == project_id, channels.c.id.in_(ids))
        )
    )
    missing = [str(channel) for channel in ids if channel not in found]
    if missing:
        raise InvalidReference(
            f"channels: no channel {', '.join(missing)} in this project; "
            "list them with GET /api/v1/channels"
        )


def _name_taken(error: IntegrityError, name: str) -> Exception:
    """Conflict for a duplicate name; any other integrity error as it was."""
    if "alert_rules_name" in str(error.orig):
        return Conflict(f"name: a rule named {name!r} already exists in this project")
    return error


async def retire_alerts(connection: AsyncConnection, rule_id: int) -> None:
    """Resolve the rule's firing alerts and drop its pending ones."""
    await connection.execute(
        delete(alerts).where(alerts.c.rule_id == rule_id, alerts.c.state == "pending")
    )
    await connection.execute(
        update(alerts)
        .where(alerts.c.rule_id == rule_id, alerts.c.state == "firing")
        .values(
            state="resolved",
            resolved_at=func.now(),
            keep_firing_since=None,
            last_evaluated_at=func.now(),
        )
    )


async def create_rule(engine: AsyncEngine, project_id: int, body: Any) -> dict[str, Any]:
    spec = parse_rule(body)
    async with engine.begin() as connection:
        await _check_channels(connection, project_id, spec.channels)
        try:
            row = (
                await connection.execute(
                    insert(alert_rules)
                    .values(
                        project_id=project_id,
                        name=spec.name,
                        signal=spec.signal,
                        spec=spec.document(),
                        enabled=spec.enabled,
                    )
                    .returning(alert_rules)
                )
            ).one()
        except IntegrityError as error:
            raise _name_taken(error, spec.name) from None
    return rule_answer(row)


async def _store(connection: AsyncConnection, row: Any, spec: RuleSpec) -> dict[str, Any]:
    if row.slo_id is not None:
        raise Conflict(
            f"{row.name} belongs to SLO {row.slo_id} and follows it: change its alerting "
            f"(channels, enabled, min_events) with PUT /api/v1/slos/{row.slo_id}"
        )
    if row.builtin is not None:
        changed = locked_field_changed(_document(row), spec.document())
        if changed:
            raise InvalidRule(
                f"{changed}: {row.name} is a built-in rule and keeps its {changed}; you may "
                f"change {', '.join(EDITABLE_FIELDS)}"
            )
    await _check_channels(connection, row.project_id, spec.channels)
    try:
        stored = (
            await connection.execute(
                update(alert_rules)
                .where(alert_rules.c.id == row.id)
                .values(
                    name=spec.name,
                    signal=spec.signal,
                    spec=spec.document(),
                    enabled=spec.enabled,
                    updated_at=func.now(),
                )
                .returning(alert_rules)
            )
        ).one()
    except IntegrityError as error:
        raise _name_taken(error, spec.name) from None
    if row.enabled and not spec.enabled:
        await retire_alerts(connection, row.id)
    return rule_answer(stored)


async def replace_rule(
    engine: AsyncEngine, project_id: int, rule_id: int, body: Any
) -> dict[str, Any] | None:
    """PUT: the whole rule body."""
    async with engine.begin() as connection:
        row = (await connection.execute(_of_project(project_id, rule_id).with_for_update())).first()
        if row is None:
            return None
        return await _store(connection, row, parse_rule(body, internal=row.signal == "slo"))


async def patch_rule(
    engine: AsyncEngine, project_id: int, rule_id: int, patch: Any
) -> dict[str, Any] | None:
    """PATCH: a JSON merge patch (RFC 7396) over the stored rule, e.g. {"enabled": false}."""
    if not isinstance(patch, dict):
        raise InvalidRule("the body must be a JSON object with the fields to change")
    async with engine.begin() as connection:
        row = (await connection.execute(_of_project(project_id, rule_id).with_for_update())).first()
        if row is None:
            return None
        merged = merge_patch(_document(row), patch)
        return await _store(connection, row, parse_rule(merged, internal=row.signal == "slo"))


async def delete_rule(engine: AsyncEngine, project_id: int, rule_id: int) -> bool:
    """Delete a rule after retiring its alerts; False when there is none; Conflict for a
    built-in rule."""
    async with engine.begin() as connection:
        row = (await connection.execute(_of_project(project_id, rule_id).with_for_update())).first()
        if row is None:
            return False
        if row.builtin is not None:
            raise Conflict(
                f"{row.name} is a built-in rule: it cannot be deleted; disable it with "
                'PATCH {"enabled": false}'
            )
        await retire_alerts(connection, row.id)
        await connection.execute(delete(alert_rules).where(alert_rules.c.id == row.id))
    return True
