"""Channels' SQL: list, read, create, update and delete a project's notification channels.

Every function takes an AsyncEngine and the caller's project_id and touches only that
project's rows. Specs arrive validated (app/domain/channels.py); rows keep the full
document in `spec` and its name and type in columns too.

- Names are unique per project: create and update raise `DuplicateName`.
- A channel that rules still list in `alert_rules.spec->'channels'` cannot be deleted:
  `delete_channel` raises `ChannelInUse` naming them (the channel row is locked while
  checking, so a concurrent delete cannot slip between check and delete).
- Deleting a channel deletes its notification groups and undelivered notifications
  (foreign keys ON DELETE CASCADE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import alert_rules, channels
from app.domain.channels import ChannelSpec

UNIQUE_NAME = "channels_name"


class DuplicateName(ValueError):
    """Another channel of the project has this name."""


class ChannelInUse(ValueError):
    """Rules still send to the channel; `rules` are their (id, name)."""

    def __init__(self, rules: list[tuple[int, str]]) -> None:
        names = ", ".join(f"{name!r} (id {rule_id})" for rule_id, name in rules)
        super().__init__(f"the channel is used by alert rules {names}; remove it from them first")
        self.rules = rules


@dataclass(frozen=True, slots=True)
class ChannelRow:
    id: int
    name: str
    type: str
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    channels.c.id,
    channels.c.name,
    channels.c.type,
    channels.c.spec,
    channels.c.created_at,
    channels.c.updated_at,
)


def _row(row: Any) -> ChannelRow:
    return ChannelRow(row.id, row.name, row.type, dict(row.spec), row.created_at, row.updated_at)


async def list_channels(engine: AsyncEngine, project_id: int) -> list[ChannelRow]:
    query = select(*_COLUMNS).where(channels.c.project_id == project_id).order_by(channels.c.name)
    async with engine.connect() as connection:
        return [_row(row) for row in await connection.execute(query)]


async def get_channel(engine: AsyncEngine, project_id: int, channel_id: int) -> ChannelRow | None:
    query = select(*_COLUMNS).where(
        channels.c.project_id == project_id, channels.c.id == channel_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    return _row(row) if row else None


async def get_channel_by_name(engine: AsyncEngine, project_id: int, name: str) -> ChannelRow | None:
    query = select(*_COLUMNS).where(channels.c.project_id == project_id, channels.c.name == name)
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    return _row(row) if row else None


async def _save(engine: AsyncEngine, statement: Any, name: str) -> ChannelRow | None:
    try:
        async with engine.begin() as connection:
            row = (await connection.execute(statement)).first()
    except IntegrityError as error:
        if UNIQUE_NAME in str(error.orig):
            raise DuplicateName(f"name: a channel named {name!r} exists already") from None
        raise
    return _row(row) if row else None


async def create_channel(engine: AsyncEngine, project_id: int, spec: ChannelSpec) -> ChannelRow:
    statement = (
        insert(channels)
        .values(project_id=project_id, name=spec.name, type=spec.type, spec=spec.document())
        .returning(*_COLUMNS)
    )
    row = await _save(engine, statement, spec.name)
    assert row is not None
    return row


async def update_channel(
    engine: AsyncEngine, project_id: int, channel_id: int, spec: ChannelSpec
) -> ChannelRow | None:
    """The updated channel, or None when the project has no such channel."""
    statement = (
        update(channels)
        .where(channels.c.project_id == project_id, channels.c.id == channel_id)
        .values(name=spec.name, type=spec.type, spec=spec.document(), updated_at=func.now())
        .returning(*_COLUMNS)
    )
    return await _save(engine, statement, spec.name)


async def rules_using(
    connection: AsyncConnection, project_id: int, channel_id: int
) -> list[tuple[int, str]]:
    """(id, name) of the project's rules whose `channels` list this channel."""
    query = (
        select(alert_rules.c.id, alert_rules.c.name)
        .where(
            alert_rules.c.project_id == project_id,
            alert_rules.c.spec["channels"].contains([channel_id]),
        )
        .order_by(alert_rules.c.name)
    )
    return [(row.id, row.name) for row in await connection.execute(query)]


async def delete_channel(engine: AsyncEngine, project_id: int, channel_id: int) -> bool:
    """True when deleted, False when there is no such channel; ChannelInUse when listed."""
    async with engine.begin() as connection:
        locked = await connection.scalar(
            select(channels.c.id)
            .where(channels.c.project_id == project_id, channels.c.id == channel_id)
            .with_for_update()
        )
        if locked is None:
            return False
        using = await rules_using(connection, project_id, channel_id)
        if using:
            raise ChannelInUse(using)
        await connection.execute(channels.delete().where(channels.c.id == channel_id))
    return True
