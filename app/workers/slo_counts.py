"""The "slo-evaluation" job: per SLO and minute, the good and total events, from raw spans
(what counts and how it is written: app/workers/slo_minutes.py).

Contract:
- Counts are exact: read from `spans`, not from sketches or rollups.
- Each round recounts, for every due SLO, the minutes from `slo_recount_window` ago to
  the current one and sets their counts, so a round can run twice, concurrently or not,
  and spans that arrive late (within the recount window) are counted. Later than that, a
  span is not counted.
- The due SLOs of one project and service are recounted together: one transaction, one
  scan of the service's spans, under `FOR UPDATE SKIP LOCKED` on their rows. Due:
  `last_evaluated_at` older than 0.8 x `slo_eval_interval` (or never). With the job's
  advisory lock (app/workers/runner.py), several processes count each SLO once per
  interval.
- A new SLO (or one whose events changed) is then backfilled backwards, newest first, in
  chunks of `BACKFILL_CHUNK`, from `counted_from` down to the start of its window or the
  oldest span still retained, within a time budget per round (half the interval);
  `counted_from` / `counted_until` record the counted range. A round missed by less than
  a chunk is caught up forwards; after a longer outage the SLO restarts its range at now
  and backfills again (minute counts already stored stay until recounted).
- Rows are only ever set from spans still stored, so counts outlive the spans' retention.

Cost: one indexed range scan of `spans` (project, service, start_time) per service with
due SLOs and round, over the recount window (the service's spans of the last 15 minutes
by default), whatever the number of its SLOs; one scan per backfill chunk and SLO. See
docs/slos.md and docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db.partitions import PartitionManager
from app.db.tables import slos, spans
from app.domain.error_budget import window_end
from app.domain.slos import SloSpec, parse_slo
from app.workers.slo_minutes import (
    count_query,
    ensure_days,
    group_count_query,
    split_group_rows,
    write_counts,
)

log = logging.getLogger(__name__)

BACKFILL_CHUNK = timedelta(hours=6)
# SLOs counted by one scan: bounds the statement (two filtered counts per SLO).
MAX_GROUP = 50


@dataclass(slots=True)
class RoundReport:
    recounted: int = 0
    skipped: int = 0
    failed: int = 0
    backfill_chunks: int = 0
    backfilling: int = 0


@dataclass(frozen=True, slots=True)
class _Recount:
    slo_id: int
    spec: SloSpec
    start: datetime
    counted_from: datetime


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


_STATE = (
    slos.c.id,
    slos.c.project_id,
    slos.c.spec,
    slos.c.counted_from,
    slos.c.counted_until,
)


def _locking(query: Any, due: ColumnElement[bool] | None) -> Any:
    query = query.with_for_update(skip_locked=True)
    return query if due is None else query.where(due)


async def recount_group(
    engine: AsyncEngine,
    partitions: PartitionManager,
    project_id: int,
    service: str,
    slo_ids: list[int],
    now: datetime,
    recount_s: float,
    due: ColumnElement[bool] | None,
) -> tuple[list[int], list[int]]:
    """The round's recount of some SLOs of one project and service, by one scan of their
    spans and one write; returns (those recounted, those of them still to backfill).
    SLOs another process holds, or that are not due, are left out."""
    started = time.perf_counter()
    end = window_end(now)
    recent = _floor_minute(end - timedelta(seconds=recount_s))
    async with engine.begin() as connection:
        query = select(*_STATE).where(slos.c.id.in_(slo_ids)).order_by(slos.c.id)
        plans = []
        for row in await connection.execute(_locking(query, due)):
            spec = parse_slo(row.spec)
            if spec.service != service or row.project_id != project_id:
                continue  # changed since the round listed it: counted next round
            if row.counted_until is None or row.counted_until < recent - BACKFILL_CHUNK:
                # New, voided or long missed: its range starts over here, then backfills.
                plans.append(_Recount(row.id, spec, recent, recent))
            else:
                start = min(row.counted_until, recent)
                plans.append(_Recount(row.id, spec, start, row.counted_from))
        if not plans:
            return [], []
        ids = [plan.slo_id for plan in plans]
        scan = group_count_query(project_id, service, [(p.spec, p.start) for p in plans], end)
        counted = split_group_rows((await connection.execute(scan)).all(), ids)
        await ensure_days(partitions, counted)
        await write_counts(connection, counted, min(plan.start for plan in plans), end)
        restarted = [plan.slo_id for plan in plans if plan.counted_from == recent]
        await connection.execute(
            update(slos)
            .where(slos.c.id.in_(ids))
            .values(
                counted_from=case((slos.c.id.in_(restarted), recent), else_=slos.c.counted_from),
                counted_until=end,
                last_evaluated_at=now,
                last_duration_ms=(time.perf_counter() - started) * 1000,
                last_error=None,
            )
        )
    behind = [
        plan.slo_id
        for plan in plans
        if plan.counted_from > end - timedelta(seconds=plan.spec.window_s)
    ]
    return ids, behind


async def backfill_step(
    engine: AsyncEngine,
    partitions: PartitionManager,
    slo_id: int,
    now: datetime,
    chunk: timedelta = BACKFILL_CHUNK,
) -> bool:
    """Count one chunk below `counted_from`; False when the SLO needs no more (or is busy)."""
    async with engine.begin() as connection:
        query = select(*_STATE).where(slos.c.id == slo_id)
        row = (await connection.execute(_locking(query, None))).one_or_none()
        if row is None or row.counted_from is None:
            return False
        spec = parse_slo(row.spec)
        target = window_end(now) - timedelta(seconds=spec.window_s)
        if row.counted_from <= target:
            return False
        oldest = await connection.scalar(
            select(func.min(spans.c.start_time)).where(
                spans.c.project_id == row.project_id, spans.c.service_name == spec.service
            )
        )
        if oldest is None or _floor_minute(oldest) >= row.counted_from:
            start = target  # nothing older is stored: the range is complete
        else:
            start = max(target, _floor_minute(oldest), row.counted_from - chunk)
            query = count_query(row.project_id, spec, start, row.counted_from)
            found = [(slo_id, *counted) for counted in await connection.execute(query)]
            await ensure_days(partitions, found)
            await write_counts(connection, found, start, row.counted_from)
        await connection.execute(update(slos).where(slos.c.id == slo_id).values(counted_from=start))
    return True


async def _due_groups(
    connection: AsyncConnection, slo_ids: list[int] | None, due: ColumnElement[bool] | None
) -> dict[tuple[int, str], list[int]]:
    query = select(slos.c.id, slos.c.project_id, slos.c.service).order_by(
        slos.c.last_evaluated_at.asc().nulls_first(), slos.c.id
    )
    if slo_ids is not None:
        query = query.where(slos.c.id.in_(slo_ids))
    if due is not None:
        query = query.where(due)
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for slo_id, project_id, service in await connection.execute(query):
        groups[(project_id, service)].append(slo_id)
    return groups


async def count_slos(
    engine: AsyncEngine,
    settings: Settings,
    partitions: PartitionManager,
    now: datetime | None = None,
    *,
    slo_ids: list[int] | None = None,
    force: bool = False,
    backfill_budget_s: float | None = None,
    max_backfill_chunks: int | None = None,
    chunk: timedelta = BACKFILL_CHUNK,
) -> RoundReport:
    """One round: recount every due SLO (of `slo_ids` when given; due or not with
    `force`), then backfill them in turns.

    The backfill stops after `backfill_budget_s` (default: half the interval) or
    `max_backfill_chunks`; whatever is left continues next round.
    """
    now = now or datetime.now(UTC)
    interval_s = settings.seconds("slo_eval_interval")
    budget_s = interval_s / 2 if backfill_budget_s is None else backfill_budget_s
    due = None
    if not force:
        due = or_(
            slos.c.last_evaluated_at.is_(None),
            slos.c.last_evaluated_at <= now - timedelta(seconds=0.8 * interval_s),
        )
    async with engine.connect() as connection:
        groups = await _due_groups(connection, slo_ids, due)
    report = RoundReport()
    recount_s = settings.seconds("slo_recount_window")
    backfilling: list[int] = []
    for (project_id, service), ids in groups.items():
        for offset in range(0, len(ids), MAX_GROUP):
            part = ids[offset : offset + MAX_GROUP]
            try:
                done, behind = await recount_group(
                    engine, partitions, project_id, service, part, now, recount_s, due
                )
            except Exception as error:  # one bad group must not stop the others
                report.failed += len(part)
                log.exception("SLO count failed", extra={"slo_ids": part})
                for slo_id in part:
                    await _record_error(engine, slo_id, now, error)
                continue
            report.recounted += len(done)
            report.skipped += len(part) - len(done)
            backfilling.extend(behind)
    await _backfill(
        engine, partitions, backfilling, now, report, chunk, budget_s, max_backfill_chunks
    )
    return report


async def _backfill(
    engine: AsyncEngine,
    partitions: PartitionManager,
    slo_ids: list[int],
    now: datetime,
    report: RoundReport,
    chunk: timedelta,
    budget_s: float,
    max_chunks: int | None,
) -> None:
    """One chunk per SLO in turn, until all are done or the budget is spent."""
    deadline = time.perf_counter() + budget_s
    pending = slo_ids
    while pending:
        still = []
        for slo_id in pending:
            if time.perf_counter() > deadline or (
                max_chunks is not None and report.backfill_chunks >= max_chunks
            ):
                report.backfilling = len(pending)
                return
            try:
                if await backfill_step(engine, partitions, slo_id, now, chunk):
                    report.backfill_chunks += 1
                    still.append(slo_id)
            except Exception as error:  # it stays behind; the next round tries again
                report.failed += 1
                log.exception("SLO backfill failed", extra={"slo_id": slo_id})
                await _record_error(engine, slo_id, now, error)
        pending = still


async def _record_error(engine: AsyncEngine, slo_id: int, now: datetime, error: Exception) -> None:
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(slos)
                .where(slos.c.id == slo_id)
                .values(last_error=f"{type(error).__name__}: {error}"[:2000], last_evaluated_at=now)
            )
    except Exception:  # the database may be what failed; the next round tries again
        log.warning("could not record an SLO count failure", extra={"slo_id": slo_id})
