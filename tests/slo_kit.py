"""Builders for the SLO tests: projects with an admin key, SLOs, minute counts, spans."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from query.query_kit import Span
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.auth import create_key
from app.config import Settings
from app.db.partitions import PartitionManager
from app.db.tables import slos
from app.domain.slos import parse_slo
from app.store.slos import Slo, create_slo
from app.workers.slo_counts import RoundReport, count_slos
from app.workers.slo_minutes import rebuild_hours

SETTINGS = Settings(slo_eval_interval="30s", slo_recount_window="15m")


@dataclass
class Project:
    id: int
    key: str
    collector: Collector

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.collector.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )


async def new_project(engine: AsyncEngine, collector: Collector, *scopes: str) -> Project:
    name = f"project-{uuid.uuid4().hex[:8]}"
    key = await create_key(engine, name, list(scopes or ("ingest", "read", "admin")))
    return Project(key.project_id, key.key, collector)


def slo_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"slo-{uuid.uuid4().hex[:6]}",
        "service": "assistant-api",
        "sli": {"type": "availability"},
        "objective": 99.9,
        "window": "30d",
    }
    body.update(changes)
    return body


async def make_slo(engine: AsyncEngine, project_id: int, **changes: Any) -> Slo:
    return await create_slo(engine, project_id, parse_slo(slo_body(**changes)))


async def fill_minutes(
    engine: AsyncEngine, slo_id: int, start: datetime, end: datetime, good: int, total: int
) -> None:
    """Set every minute in [start, end) to good/total (rows are replaced), and the hourly
    sums, as the counting worker writes them."""
    days = {start.date() + timedelta(days=n) for n in range((end - start).days + 2)}
    await PartitionManager(engine).ensure("slo_minutes", days)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO slo_minutes (slo_id, minute, good, total) "
                "SELECT :slo, minute, :good, :total "
                "FROM generate_series(CAST(:start AS timestamptz), "
                "CAST(:end AS timestamptz) - interval '1 minute', interval '1 minute') AS minute "
                "ON CONFLICT (slo_id, minute) DO UPDATE SET good = EXCLUDED.good, "
                "total = EXCLUDED.total"
            ),
            {"slo": slo_id, "good": good, "total": total, "start": start, "end": end},
        )
        await rebuild_hours(connection, [slo_id], start, end)


async def minute_rows(engine: AsyncEngine, slo_id: int) -> dict[datetime, tuple[int, int]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT minute, good, total FROM slo_minutes WHERE slo_id = :id ORDER BY 1"),
            {"id": slo_id},
        )
        return {row.minute: (row.good, row.total) for row in rows}


async def count_round(
    engine: AsyncEngine, now: datetime, slo_ids: list[int], **options: Any
) -> RoundReport:
    """A counting round over these SLOs only, due or not (unless force=False is passed)."""
    options.setdefault("force", True)
    partitions = PartitionManager(engine)
    return await count_slos(engine, SETTINGS, partitions, now, slo_ids=slo_ids, **options)


async def hidden_slo(engine: AsyncEngine, project_id: int, **changes: Any) -> int:
    """An SLO the shared collector's own counting job leaves alone for an hour (it is not
    due until then), so that the test drives every round itself."""
    spec = parse_slo(slo_body(**changes))
    async with engine.begin() as connection:
        return await connection.scalar(
            insert(slos)
            .values(
                project_id=project_id,
                name=spec.name,
                service=spec.service,
                spec=spec.document(),
                last_evaluated_at=datetime.now(UTC) + timedelta(hours=1),
            )
            .returning(slos.c.id)
        )


def request_spans(
    service: str,
    start: datetime,
    durations_ms: list[float],
    errors: frozenset[int] | set[int] = frozenset(),
    every: timedelta = timedelta(seconds=1),
) -> list[Span]:
    """Root spans (requests), one per duration, `every` apart; `errors` are indexes."""
    return [
        Span(
            trace_id=uuid.uuid4().hex,
            span_id=uuid.uuid4().hex[:16],
            service=service,
            name="POST /chat",
            start=start + every * index,
            duration_ms=duration,
            status="error" if index in errors else "ok",
        )
        for index, duration in enumerate(durations_ms)
    ]


def child_of(parent: Span, status: str = "error") -> Span:
    """A span inside a request (not a request itself)."""
    return Span(
        trace_id=parent.trace_id,
        span_id=uuid.uuid4().hex[:16],
        service=parent.service,
        name="llm.chat",
        start=parent.start,
        duration_ms=5.0,
        parent=parent.span_id,
        status=status,
    )


def minute_ago(minutes: int) -> datetime:
    """The start of the minute `minutes` ago, plus one second (so spans stay in it)."""
    now = datetime.now(UTC)
    return now.replace(second=1, microsecond=0) - timedelta(minutes=minutes)
