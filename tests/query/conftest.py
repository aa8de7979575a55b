"""Fixtures for the query tests: clients on the shared collector, each with its own project."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from query.query_kit import new_project_client
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector


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
async def other_client(
    collector: Collector, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of another, new project."""
    async with await new_project_client(collector, engine) as http:
        yield http
