"""The engine's check of a pooled connection before use (app/db/engine.py `_ping`)."""

from __future__ import annotations

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.engine import create_engine


async def _backend(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_pooled_connection_is_kept_while_it_works_and_replaced_once_it_does_not(
    database_url: str, db: asyncpg.Connection
) -> None:
    engine = create_engine(Settings(database_url=database_url), database_url, pool_size=1)
    try:
        first = await _backend(engine)
        assert await _backend(engine) == first  # checked and handed out again
        # The server ends the idle pooled connection (a restart, an idle timeout, a proxy):
        # the next checkout finds it dead and connects anew, without an error.
        assert await db.fetchval("SELECT pg_terminate_backend($1, 10000)", first)
        second = await _backend(engine)
        assert second != first
        assert await _backend(engine) == second
    finally:
        await engine.dispose()
