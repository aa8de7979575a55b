"""Error rows, and what runs in the same transaction as their COPY: the error-group upsert
and the per-minute event counts (`error_minutes`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from app.db.partitions import days_of
from app.db.tables import ERROR_EVENT_COLUMNS, ERROR_MINUTE_COLUMNS
from app.domain.errors import ErrorEvent
from app.domain.fingerprint import normalize_message
from app.ingest.rows import dumps, timestamp
from app.ingest.writer import InsertHook, TableRows

_COLUMN = {name: index for index, name in enumerate(ERROR_EVENT_COLUMNS)}

# A group that was resolved and sees an event newer than its resolution regresses:
# back to unresolved, flagged. An ignored group stays ignored; its count still grows.
UPSERT_GROUP = """
INSERT INTO error_groups AS g (project_id, fingerprint, type, message, service_name, culprit,
                               first_seen, last_seen, count, status, regressed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'unresolved', false)
ON CONFLICT (project_id, fingerprint) DO UPDATE SET
    first_seen = LEAST(g.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(g.last_seen, EXCLUDED.last_seen),
    count = g.count + EXCLUDED.count,
    regressed = CASE WHEN g.status = 'resolved' AND EXCLUDED.last_seen > g.resolved_at
                     THEN true ELSE g.regressed END,
    status = CASE WHEN g.status = 'resolved' AND EXCLUDED.last_seen > g.resolved_at
                  THEN 'unresolved' ELSE g.status END
"""


def error_rows(project_id: int, events: Sequence[ErrorEvent]) -> TableRows:
    rows = []
    for event in events:
        rows.append(
            (
                project_id,
                event.event_id,
                event.fingerprint,
                timestamp(event.time_unix_nano),
                event.service_name,
                event.type,
                event.message,
                event.stacktrace,
                event.culprit,
                event.source,
                event.trace_id,
                event.span_id,
                dumps(event.attributes),
            )
        )
    days = days_of(event.time_unix_nano for event in events)
    return TableRows("error_events", ERROR_EVENT_COLUMNS, rows, days)


async def upsert_groups(connection: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Add the inserted events to their groups (creating new groups as needed)."""
    groups: dict[tuple[int, str], list[Any]] = {}
    for row in rows:
        key = (row[_COLUMN["project_id"]], row[_COLUMN["fingerprint"]])
        moment: datetime = row[_COLUMN["time"]]
        group = groups.get(key)
        if group is None:
            groups[key] = [row, moment, moment, 1]
        else:
            group[1] = min(group[1], moment)
            group[2] = max(group[2], moment)
            group[3] += 1
    # Sorted so concurrent flushes lock group rows in the same order and cannot deadlock.
    arguments = [
        (
            project_id,
            fingerprint,
            first_row[_COLUMN["type"]],
            normalize_message(first_row[_COLUMN["message"]]),
            first_row[_COLUMN["service_name"]],
            first_row[_COLUMN["culprit"]],
            first_seen,
            last_seen,
            count,
        )
        for (project_id, fingerprint), (first_row, first_seen, last_seen, count) in sorted(
            groups.items(), key=lambda item: item[0]
        )
    ]
    await connection.executemany(UPSERT_GROUP, arguments)


def minute_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One `error_minutes` row per project, minute and service of the inserted events."""
    counts: dict[tuple[int, datetime, str], int] = {}
    project, moment, service = _COLUMN["project_id"], _COLUMN["time"], _COLUMN["service_name"]
    for row in rows:
        key = (row[project], row[moment].replace(second=0, microsecond=0), row[service])
        counts[key] = counts.get(key, 0) + 1
    return [(*key, count, False) for key, count in counts.items()]


async def append_minutes(connection: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Count the inserted events per minute: appended (COPY, no upsert, so concurrent
    flushes never wait for each other), merged per key later (app/workers/error_minutes.py)."""
    await connection.copy_records_to_table(
        "error_minutes", records=minute_rows(rows), columns=list(ERROR_MINUTE_COLUMNS)
    )


async def after_error_events(connection: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Given exactly the event rows inserted (a re-sent event is not among them)."""
    await upsert_groups(connection, rows)
    await append_minutes(connection, rows)


ERROR_EVENTS_HOOK = InsertHook(
    ("project_id", "event_id", "time"), after_error_events, partitioned_tables=("error_minutes",)
)
