"""A revoked key stops working in a running collector within TELEMETRY_KEY_CACHE_TTL."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from otlp_testkit import simple_span, traces_json
from sqlalchemy.ext.asyncio import AsyncEngine
from support import ROOT, Collector

from app.auth import revoke_key
from app.config import Settings
from app.domain.durations import parse_duration_seconds

TTL = "1s"


def test_the_documented_revocation_delay_is_the_default_ttl() -> None:
    """The docs promise revocation within 10 seconds; that is the cache's default lifetime."""
    default_s = parse_duration_seconds(Settings.model_fields["key_cache_ttl"].default)
    assert default_s == 10
    for doc in ("README.md", "docs/operations.md", "docs/architecture.md"):
        promised = re.findall(r"within (\d+) seconds", (ROOT / doc).read_text())
        assert promised, f"{doc} no longer says how fast a revoked key stops working"
        assert {int(seconds) for seconds in promised} == {default_s}, doc


async def test_revoked_key_stops_working_within_the_ttl(
    start_collector: Callable[..., Collector],
    make_key: Callable[..., Any],
    project_name: str,
    engine: AsyncEngine,
) -> None:
    running = start_collector(env={"TELEMETRY_KEY_CACHE_TTL": TTL})
    key = await make_key(project_name, "ingest")
    async with httpx.AsyncClient(
        base_url=running.url, headers={"x-api-key": key}, timeout=30
    ) as http:

        async def send() -> int:
            response = await http.post("/v1/traces", json=traces_json([simple_span()]))
            return response.status_code

        assert await send() == 200  # the key is now in the collector's cache
        revoked_at = time.monotonic()
        await revoke_key(engine, key)
        # Generous bound: many TTLs. A cache that ignored the setting (or kept keys for a
        # day) would still accept the key when this ends.
        deadline = revoked_at + 20 * parse_duration_seconds(TTL)
        status = await send()
        while status == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status = await send()
        assert status == 401, "the revoked key still works long after the cache TTL"
