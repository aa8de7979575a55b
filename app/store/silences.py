"""Silences as configuration: create, list, read, expire; and the active ones, for muting.

Contract:
- Bodies are validated by `parse_silence` (InvalidSilence names the field); `starts_at`
  defaults to now. A silence name, when given, is unique per project (`Conflict`).
- State is computed from the times, as Alertmanager does: `pending` before starts_at,
  `active` until ends_at, then `expired`. Listing orders active, pending, expired (active
  by ends_at, pending by starts_at, expired newest first) and can filter by state.
- Expiring (DELETE) sets ends_at = now, and a pending silence's starts_at too, as
  Alertmanager's expire does; expiring an expired silence changes nothing.
- `active_silences` gives the project's silences in force at `now`, as
  `app.domain.silences.Silence` for `muting`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import silences
from app.domain.silences import Silence, matchers_from_json, parse_silence, silence_state
from app.domain.times import iso
from app.store import Conflict

STATES = ("pending", "active", "expired")


def silence_answer(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "matchers": row.matchers,
        "starts_at": iso(row.starts_at),
        "ends_at": iso(row.ends_at),
        "comment": row.comment,
        "created_by": row.created_by,
        "state": silence_state(row.starts_at, row.ends_at, now),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _in_state(state: str, now: datetime) -> ColumnElement[bool]:
    if state == "pending":
        return silences.c.starts_at > now
    if state == "active":
        return and_(silences.c.starts_at <= now, silences.c.ends_at > now)
    return silences.c.ends_at <= now


def _order(silence: dict[str, Any]) -> tuple[int, float]:
    state = silence["state"]
    if state == "active":
        return 0, datetime.fromisoformat(silence["ends_at"]).timestamp()
    if state == "pending":
        return 1, datetime.fromisoformat(silence["starts_at"]).timestamp()
    return 2, -datetime.fromisoformat(silence["ends_at"]).timestamp()


async def list_silences(
    engine: AsyncEngine, project_id: int, now: datetime, state: str | None = None
) -> list[dict[str, Any]]:
    query = select(silences).where(silences.c.project_id == project_id)
    if state:
        query = query.where(_in_state(state, now))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return sorted((silence_answer(row, now) for row in rows), key=_order)


async def get_silence(
    engine: AsyncEngine, project_id: int, silence_id: int, now: datetime
) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(silences).where(
                    silences.c.project_id == project_id, silences.c.id == silence_id
                )
            )
        ).first()
    return silence_answer(row, now) if row else None


async def create_silence(
    engine: AsyncEngine, project_id: int, body: Any, now: datetime
) -> dict[str, Any]:
    spec = parse_silence(body, now=now)
    try:
        async with engine.begin() as connection:
            row = (
                await connection.execute(
                    insert(silences)
                    .values(
                        project_id=project_id,
                        name=spec.name,
                        matchers=[matcher.model_dump() for matcher in spec.matchers],
                        starts_at=spec.starts_at,
                        ends_at=spec.ends_at,
                        comment=spec.comment,
                        created_by=spec.created_by,
                    )
                    .returning(silences)
                )
            ).one()
    except IntegrityError as error:
        if "silences_name" in str(error.orig):
            raise Conflict(f"name: a silence named {spec.name!r} already exists") from None
        raise
    return silence_answer(row, now)


async def expire_silence(
    engine: AsyncEngine, project_id: int, silence_id: int, now: datetime
) -> dict[str, Any] | None:
    """End a silence now; None when the project has no such silence."""
    async with engine.begin() as connection:
        row = (
            await connection.execute(
                update(silences)
                .where(
                    silences.c.project_id == project_id,
                    silences.c.id == silence_id,
                    silences.c.ends_at > now,
                )
                .values(
                    starts_at=func.least(silences.c.starts_at, now),
                    ends_at=now,
                    updated_at=func.now(),
                )
                .returning(silences)
            )
        ).first()
    if row is not None:
        return silence_answer(row, now)
    return await get_silence(engine, project_id, silence_id, now)


async def active_silences(
    connection: AsyncConnection, project_id: int, now: datetime
) -> list[Silence]:
    rows = await connection.execute(
        select(silences.c.id, silences.c.matchers, silences.c.starts_at, silences.c.ends_at).where(
            silences.c.project_id == project_id, _in_state("active", now)
        )
    )
    return [
        Silence(row.id, matchers_from_json(row.matchers), row.starts_at, row.ends_at)
        for row in rows.all()
    ]
