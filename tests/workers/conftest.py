"""Alerting fixtures: a database of its own, so no shared collector evaluates these rules.

The shared `collector` runs the alert evaluation job on the shared database with the
real clock; tests that drive evaluation with an explicit `now` use this database, where
only the collectors they start themselves run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector, new_database

from app.config import Settings
from app.db.engine import asyncpg_dsn, create_engine


@pytest.fixture(scope="module")
def alerting_url(server_url: str) -> Iterator[str]:
    yield from new_database(server_url)


@pytest.fixture(scope="module")
async def alerting_engine(alerting_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=alerting_url), alerting_url, pool_size=3)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def alerting_db(alerting_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(alerting_url))
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(
            kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
    yield connection
    await connection.close()


@pytest.fixture(scope="module")
def ingest_collector(alerting_url: str, logs_dir: Path) -> Iterator[Collector]:
    """A collector on the alerting database that only ingests (no background jobs)."""
    running = Collector(alerting_url, env={"TELEMETRY_WORKERS_ENABLED": "false"}).start(logs_dir)
    yield running
    running.stop()
