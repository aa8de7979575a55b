"""Daily range partitions: created ahead and on demand, listed and dropped for retention."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Only these parents are partitioned; names are never taken from requests.
PARTITIONED_TABLES = frozenset(
    {
        "spans",
        "logs",
        "metric_points",
        "error_events",
        "error_minutes",
        "span_rollups",
        "span_operations",
        "slo_minutes",
    }
)
_PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<day>\d{8})$")


def partition_pattern_matches(name: str, table: str) -> bool:
    """`name` is a day partition's name of `table` (safe to quote as an identifier)."""
    match = _PARTITION_NAME.match(name)
    return bool(match) and match.group("table") == table and table in PARTITIONED_TABLES


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


NANOS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_of_unix_nano(unix_nano: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + unix_nano // NANOS_PER_DAY)


def days_of(unix_nanos: Iterable[int]) -> set[date]:
    """The UTC days a batch's times fall on (integer division first: one date per day)."""
    return {
        date.fromordinal(_EPOCH_ORDINAL + day) for day in {t // NANOS_PER_DAY for t in unix_nanos}
    }


def _create_sql(table: str, day: date) -> str:
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"{table!r} is not a partitioned table")
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    # Identifiers cannot be bound parameters; both parts come from the whitelist and a date.
    return (
        f'CREATE TABLE IF NOT EXISTS "{partition_name(table, day)}" PARTITION OF "{table}" '
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


class PartitionManager:
    """Knows which day partitions exist in this process and creates missing ones."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._known: set[tuple[str, date]] = set()

    async def ensure(self, table: str, days: Iterable[date]) -> None:
        missing = sorted({day for day in days if (table, day) not in self._known})
        if not missing:
            return
        async with self._engine.begin() as connection:
            # Several processes may meet the same new day at once; one creates it.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                {"name": f"partition:{table}"},
            )
            for day in missing:
                exists = await connection.scalar(
                    text("SELECT to_regclass(:name)"), {"name": partition_name(table, day)}
                )
                if exists is None:
                    await connection.execute(text(_create_sql(table, day)))
        self._known.update((table, day) for day in missing)

    async def ensure_ahead(self, table: str, today: date | None = None) -> None:
        """Today and tomorrow, so the first requests of a day find their partition."""
        today = today or datetime.now(UTC).date()
        await self.ensure(table, [today, today + timedelta(days=1)])

    def forget(self, table: str, day: date) -> None:
        self._known.discard((table, day))


async def list_partitions(engine: AsyncEngine, table: str) -> list[tuple[str, date]]:
    """The day partitions of `table`, oldest first."""
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table"
            ),
            {"table": table},
        )
        found = []
        for (name,) in result:
            match = _PARTITION_NAME.match(name)
            if match and match.group("table") == table:
                found.append((name, datetime.strptime(match.group("day"), "%Y%m%d").date()))
    return sorted(found, key=lambda item: item[1])
