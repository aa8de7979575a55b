"""Fixtures for the alerting tests: databases of their own, and an `Alerting` helper.

These tests drive the clock themselves; the shared collector's background jobs (real
clock: evaluation, dispatch, delivery) must not see their rules and alerts, so they use
separate databases: one for notification tests (`alerting`), one for evaluation tests
(`alerting_url`, `alerting_engine`, `alerting_db`, `ingest_collector`), where only the
collectors they start themselves run.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from notify_kit import EXTERNAL_URL, fire, insert_rule
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector, fresh_database

from app.auth import ensure_project
from app.config import Settings
from app.db.engine import asyncpg_dsn, create_engine
from app.domain.channels import parse_channel
from app.store.channels import create_channel
from app.workers.delivery import Deliverer
from app.workers.dispatch import RoundReport, dispatch_round


@pytest.fixture(scope="session")
def notify_database_url(server_url: str) -> Iterator[str]:
    with fresh_database(server_url) as url:
        yield url


@pytest.fixture(scope="session")
async def notify_engine(notify_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        Settings(database_url=notify_database_url), notify_database_url, pool_size=4
    )
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def notify_db(notify_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(notify_database_url))
    yield connection
    await connection.close()


def notify_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "external_url": EXTERNAL_URL,
        "alert_group_wait": "30s",
        "alert_group_interval": "5m",
        "alert_repeat_interval": "4h",
        "notification_timeout": "2s",
        "notification_give_up_after": "1h",
    }
    return Settings(**(values | overrides))


@dataclass
class Alerting:
    """One test's project in the notification database, and the jobs run by hand."""

    engine: AsyncEngine
    db: asyncpg.Connection
    settings: Settings
    project_id: int
    deliverers: list[Deliverer] = field(default_factory=list)

    async def channel(self, url: str, name: str | None = None, **options: Any) -> int:
        body = {"name": name or f"ch-{uuid.uuid4().hex[:6]}", "type": "webhook", "url": url}
        spec = parse_channel(body | options)
        return (await create_channel(self.engine, self.project_id, spec)).id

    async def rule(self, name: str, channels: list[int], **spec: Any) -> int:
        return await insert_rule(self.db, self.project_id, name, channels, **spec)

    async def fire(self, rule_id: int, name: str, labels: dict[str, str], at: datetime, **kw):
        return await fire(self.db, self.project_id, rule_id, name, labels, at, **kw)

    async def dispatch(self, now: datetime, settings: Settings | None = None) -> RoundReport:
        return await dispatch_round(self.engine, settings or self.settings, now)

    def deliverer(self, settings: Settings | None = None) -> Deliverer:
        deliverer = Deliverer(settings or self.settings)
        self.deliverers.append(deliverer)
        return deliverer

    async def deliver(self, now: datetime, deliverer: Deliverer | None = None) -> list[str]:
        """One delivery round at `now`, waiting for its sends; their outcomes."""
        tasks = await (deliverer or self.deliverer()).round(self.engine, now)
        return list(await asyncio.gather(*tasks))

    async def notifications(self, channel_id: int) -> list[asyncpg.Record]:
        return await self.db.fetch(
            "SELECT * FROM notifications WHERE channel_id = $1 ORDER BY created_at, id",
            channel_id,
        )

    async def group(self, channel_id: int) -> list[asyncpg.Record]:
        return await self.db.fetch(
            "SELECT * FROM notification_groups WHERE channel_id = $1", channel_id
        )


@pytest.fixture
async def alerting(
    notify_engine: AsyncEngine, notify_db: asyncpg.Connection, notify_database_url: str
) -> AsyncIterator[Alerting]:
    # Each test starts from no alerting state at all: rounds look at every project.
    await notify_db.execute(
        "TRUNCATE notifications, notification_groups, alerts, silences, alert_rules, channels"
    )
    project_id = await ensure_project(notify_engine, f"project-{uuid.uuid4().hex[:8]}")
    helper = Alerting(notify_engine, notify_db, notify_settings(notify_database_url), project_id)
    yield helper
    for deliverer in helper.deliverers:
        await deliverer.close(grace_s=0)


@pytest.fixture(scope="module")
def alerting_url(server_url: str) -> Iterator[str]:
    with fresh_database(server_url) as url:
        yield url


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
