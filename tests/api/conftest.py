"""API test fixtures: an admin client of the test's project, and clients for other keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from otlp_testkit import TcpProxy
from support import Collector


@pytest.fixture
def keyed_client(collector: Collector) -> Callable[[str], httpx.AsyncClient]:
    """A client on the shared collector that sends `key` (close it after use)."""

    def make(key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    return make


@pytest.fixture
async def admin(keyed_client, make_key, project_name) -> AsyncIterator[httpx.AsyncClient]:
    """An admin key of the test's project (admin can also read and send)."""
    async with keyed_client(await make_key(project_name, "admin")) as http:
        yield http


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    """A TCP proxy to the test database: `stop()` takes the database away, `start()` brings
    it back (a collector started with `via_proxy(database_url, proxy.port)` sees an outage)."""
    running = TcpProxy(database_url).start()
    yield running
    running.stop()
