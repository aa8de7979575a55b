"""Fixtures: a fresh database per run on a real PostgreSQL, and real collector processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector, embedded_server, fresh_database

from app.auth import create_key
from app.config import Settings
from app.db.engine import asyncpg_dsn, create_engine


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The test PostgreSQL server: TEST_DATABASE_URL's when set (the role needs CREATEDB),
    otherwise an embedded PostgreSQL started for this run."""
    with ExitStack() as stack:
        yield os.environ.get("TEST_DATABASE_URL") or stack.enter_context(embedded_server())


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A new, migrated database on the test server, dropped after the run."""
    with fresh_database(server_url) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=database_url), database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection for checking what was stored."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("collector-logs")


@pytest.fixture(scope="session")
def collector(database_url: str, logs_dir: Path) -> Iterator[Collector]:
    """The shared collector: auth on, default settings."""
    running = Collector(database_url).start(logs_dir)
    yield running
    running.stop()


@pytest.fixture
def start_collector(database_url: str, logs_dir: Path) -> Iterator[Callable[..., Collector]]:
    """Start extra collectors with their own settings; all stopped after the test."""
    started: list[Collector] = []

    def start(env: dict[str, str] | None = None, workers: int = 1, **kwargs: str) -> Collector:
        running = Collector(
            kwargs.pop("database_url", database_url), env=env or {}, workers=workers
        ).start(logs_dir)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def project_name() -> str:
    return f"project-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_key(engine: AsyncEngine) -> Callable[..., object]:
    async def make(project: str, *scopes: str) -> str:
        return (await create_key(engine, project, list(scopes or ("ingest", "read")))).key

    return make


@pytest.fixture
async def key(make_key: Callable[..., Any], project_name: str) -> str:
    """An ingest + read key of this test's own project."""
    return await make_key(project_name, "ingest", "read")


@pytest.fixture
async def client(collector: Collector, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The shared collector, authenticated with `key`."""
    async with httpx.AsyncClient(
        base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        yield http


@pytest.fixture
async def anonymous(collector: Collector) -> AsyncIterator[httpx.AsyncClient]:
    """The shared collector, without credentials."""
    async with httpx.AsyncClient(base_url=collector.url, timeout=30) as http:
        yield http
