"""The UI tests' site: a collector with the demo's data in one project, a rule that fires,
an SLO being counted, and a second project for isolation checks."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from support import Collector

from app.auth import create_key
from app.config import Settings
from app.db.engine import create_engine
from app.demo import run_demo

FAST_WORKERS = {
    "TELEMETRY_ALERT_EVAL_INTERVAL": "1s",
    "TELEMETRY_SLO_EVAL_INTERVAL": "2s",
    "TELEMETRY_KEY_CACHE_TTL": "1s",
}
FIRING_RULE = {
    "name": "RequestsSeen",
    "signal": "spans",
    "query": {"aggregation": "count", "window": "1h", "filters": {"category": "request"}},
    "condition": {"op": ">", "threshold": 0},
    "severity": "critical",
    "annotations": {
        "summary": "the assistant answered requests",
        "runbook_url": "https://runbooks.example/{{ $rule }}",
    },
}
SLO = {
    "name": "chat turns succeed",
    "service": "assistant-api",
    "sli": {"type": "availability"},
    "objective": 95,
    "window": "1d",
}


@dataclass
class Site:
    collector: Collector
    admin_key: str
    read_key: str
    other_key: str  # admin of another project, with a little data of its own
    database_url: str

    @property
    def url(self) -> str:
        return self.collector.url

    def api(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=30,
        )

    @contextmanager
    def signed_in(self, key: str) -> Iterator[httpx.Client]:
        """An HTTP client holding a UI session of `key` (signed in through the form)."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            answer = client.post(
                "/ui/login", data={"key": key, "next": "/ui/"}, headers={"Origin": self.url}
            )
            assert answer.status_code == 303, answer.text
            yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def _keys(database_url: str, project: str, other: str) -> tuple[str, str, str]:
    engine = create_engine(Settings(database_url=database_url), database_url, pool_size=1)
    try:
        admin = await create_key(engine, project, ["admin", "ingest"])
        read = await create_key(engine, project, ["read"])
        other_admin = await create_key(engine, other, ["admin", "ingest"])
    finally:
        await engine.dispose()
    return admin.key, read.key, other_admin.key


def start_site(database_url: str, logs_dir: Path, project: str, other: str) -> Site:
    admin, read, other_key = asyncio.run(_keys(database_url, project, other))
    collector = Collector(database_url, env=FAST_WORKERS).start(logs_dir)
    site = Site(collector, admin, read, other_key, database_url)
    try:
        assert run_demo(site.url, admin, conversations=40, seed=7) == 0
        assert run_demo(site.url, other_key, conversations=3, seed=8) == 0
        with site.api() as api:
            assert api.post("/api/v1/alert-rules", json=FIRING_RULE).status_code == 201
            assert api.post("/api/v1/slos", json=SLO).status_code == 201
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                alerts = api.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"]
                slo = api.get("/api/v1/slos").json()["slos"][0]
                if alerts and slo["counting"]["counted_until"]:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError("the rule did not fire or the SLO was not counted")
    except BaseException:
        collector.stop()
        raise
    return site
