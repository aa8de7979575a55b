"""Alembic environment: runs migrations over asyncpg, one process at a time."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.engine import async_url

# Any constant works; it only has to be the same in every process that migrates.
MIGRATION_LOCK_ID = 7_340_001


def _database_url() -> str:
    url = context.config.attributes.get("database_url") or os.environ.get("TELEMETRY_DATABASE_URL")
    if not url:
        raise RuntimeError("set TELEMETRY_DATABASE_URL to migrate")
    return async_url(url)


def _run(connection: Connection) -> None:
    # Replicas starting together must not race each other through the same DDL.
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    try:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()


async def _run_async() -> None:
    engine = create_async_engine(_database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
