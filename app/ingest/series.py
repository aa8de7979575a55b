"""Metric series registration: one `metric_series` row per project and identity, bounded per name.

Every point references its series by id, so the series row must exist before the point
is acknowledged. Known (project, series) pairs are cached per process; only series this
process has not seen yet cost a database round trip, in one short transaction per request:

1. take a transaction-scoped advisory lock per metric name touched (sorted by lock key,
   so two requests locking overlapping names cannot deadlock), so concurrent requests and
   processes count and insert for one name one at a time and the limit holds exactly;
2. look up which candidates already exist (they are admitted whatever the count);
3. count the existing series of each name and insert new ones up to the limit.

Series rows commit before their points are written; a series whose points then fail to
commit is harmless (it is one row, and a retry finds it). Refused series are never
written, so a cardinality explosion costs one count per name, never unbounded rows.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Text, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import metric_series
from app.domain.metrics import MetricStream
from app.ingest.writer import DatabaseUnavailable, WriteRejected, is_unavailable

# How long a metric name found at its limit is remembered; during that time its new
# series are refused without taking the lock (existence is still checked).
FULL_TTL_S = 30.0
# Bounds the per-process caches; past them they are dropped and refill from the database.
KNOWN_CACHE_LIMIT = 500_000
FULL_CACHE_LIMIT = 10_000


@dataclass(slots=True)
class NewSeries:
    """A series seen in a request that this process does not know yet."""

    series_id: int
    stream: MetricStream
    attributes: dict[str, Any]

    def row(self, project_id: int) -> dict[str, Any]:
        stream = self.stream
        return {
            "project_id": project_id,
            "series_id": self.series_id,
            "name": stream.name,
            "type": stream.type,
            "unit": stream.unit,
            "temporality": stream.temporality,
            "is_monotonic": stream.is_monotonic,
            "description": stream.description,
            "service_name": stream.resource.service_name,
            "attributes": self.attributes,
            "resource_attributes": stream.resource.attributes,
            "scope": stream.scope.as_json(),
        }


def lock_key(project_id: int, name: str) -> int:
    """A 64-bit advisory lock key per (project, metric name), the same in every process."""
    digest = hashlib.blake2b(
        f"metric_series\x00{project_id}\x00{name}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


class SeriesRegistry:
    """Per-process knowledge of registered series, and the one place that registers them."""

    def __init__(
        self,
        engine: AsyncEngine,
        max_series_per_metric: int,
        *,
        known_cache_limit: int = KNOWN_CACHE_LIMIT,
    ) -> None:
        self._engine = engine
        self.max_series_per_metric = max_series_per_metric
        self._known: dict[int, set[int]] = {}
        self._known_count = 0
        self._known_cache_limit = known_cache_limit
        self._full_until: dict[tuple[int, str], float] = {}

    def is_known(self, project_id: int, series_id: int) -> bool:
        known = self._known.get(project_id)
        return known is not None and series_id in known

    async def admit(self, project_id: int, candidates: dict[int, NewSeries]) -> set[int]:
        """Register the unknown candidates; return the ids refused by the per-name limit.

        Raises `DatabaseUnavailable` on an outage (the API answers 503, as for the writer).
        """
        unknown = {
            series_id: series
            for series_id, series in candidates.items()
            if not self.is_known(project_id, series_id)
        }
        if not unknown:
            return set()
        try:
            async with self._engine.begin() as connection:
                admitted, refused, full = await self._register(connection, project_id, unknown)
        except Exception as error:
            if is_unavailable(error) or _sqlstate(error).startswith("40"):
                # Outage, or a transaction the server rolled back: the client should retry.
                raise DatabaseUnavailable("the database is unreachable") from error
            raise WriteRejected(f"could not register metric series: {error}") from error
        self._remember(project_id, admitted)
        until = time.monotonic() + FULL_TTL_S
        if len(self._full_until) + len(full) > FULL_CACHE_LIMIT:
            self._full_until.clear()
        for name in full:
            self._full_until[(project_id, name)] = until
        return refused

    async def _register(
        self, connection: AsyncConnection, project_id: int, unknown: dict[int, NewSeries]
    ) -> tuple[set[int], set[int], set[str]]:
        """(admitted ids, refused ids, names now at their limit), inside one transaction."""
        now = time.monotonic()
        by_name: dict[str, list[NewSeries]] = {}
        for series in unknown.values():
            by_name.setdefault(series.stream.name, []).append(series)
        # Names known to be full skip the lock: their count cannot go down, so only the
        # existence check below can admit a series of theirs.
        open_names = [
            name for name in by_name if self._full_until.get((project_id, name), 0.0) <= now
        ]
        if open_names:
            # One statement: unnest yields the sorted keys in array order and each row takes
            # its lock before the next is read.
            keys = sorted({lock_key(project_id, name) for name in open_names})
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) key"),
                {"keys": keys},
            )

        ids = list(unknown)
        existing = set(
            (
                await connection.execute(
                    select(metric_series.c.series_id).where(
                        metric_series.c.project_id == project_id,
                        metric_series.c.series_id
                        == any_(bindparam("ids", ids, type_=ARRAY(BigInteger))),
                    )
                )
            ).scalars()
        )
        counts: dict[str, int] = {}
        if open_names:
            result = await connection.execute(
                select(metric_series.c.name, func.count())
                .where(
                    metric_series.c.project_id == project_id,
                    metric_series.c.name == any_(bindparam("names", open_names, type_=ARRAY(Text))),
                )
                .group_by(metric_series.c.name)
            )
            counts = {name: count for name, count in result}

        admitted = set(existing)
        refused: set[int] = set()
        full: set[str] = set()
        rows: list[dict[str, Any]] = []
        limit = self.max_series_per_metric
        open_set = set(open_names)
        for name, series_list in by_name.items():
            fresh = [series for series in series_list if series.series_id not in existing]
            room = max(limit - counts.get(name, 0), 0) if name in open_set else 0
            for series in fresh[:room]:
                rows.append(series.row(project_id))
                admitted.add(series.series_id)
            refused.update(series.series_id for series in fresh[room:])
            if name in open_set and counts.get(name, 0) + min(len(fresh), room) >= limit:
                full.add(name)
        if rows:
            # Executemany: SQLAlchemy pages the VALUES under PostgreSQL's bind-parameter cap.
            await connection.execute(
                insert(metric_series).on_conflict_do_nothing(
                    index_elements=["project_id", "series_id"]
                ),
                rows,
            )
        return admitted, refused, full

    def _remember(self, project_id: int, series_ids: set[int]) -> None:
        if self._known_count + len(series_ids) > self._known_cache_limit:
            # Crude but O(1) amortised: known series refill with one lookup per request.
            self._known.clear()
            self._known_count = 0
        known = self._known.setdefault(project_id, set())
        before = len(known)
        known.update(series_ids)
        self._known_count += len(known) - before


def _sqlstate(error: BaseException) -> str:
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 5:
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate
        current = getattr(current, "orig", None) or current.__cause__
        seen += 1
    return ""
