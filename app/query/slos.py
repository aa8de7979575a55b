"""Reading SLOs' counts: status, history and the deploy gate.

Contract: reads only `slo_hours` and `slo_minutes` (never `spans`): whole hours from the
first, the partial hours at each window's ends from the second, in one statement. A
status reads at most one row per hour of max(window, 3d) plus 9 x 59 minute rows, whatever
the traffic (a 30-day window: 720 hourly rows and a few hundred minute rows). Windows end
at the end of the minute `now` falls in (app/domain/error_budget.py defines every
figure). Another project's SLO reads as missing (None); history reads the hours of
start - window .. end and the partial hours' minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import TextClause, and_, literal, or_, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import slo_hours, slo_minutes
from app.domain.error_budget import (
    BURN_RATE_WINDOWS,
    Counts,
    HistoryPoint,
    MinutesAndHours,
    SloStatus,
    history_bounds,
    history_points,
    history_times,
    hour_floor,
    partial_ranges,
    slo_status,
    window_end,
)
from app.domain.times import iso
from app.store.slos import Slo, get_slo, list_slos

m = slo_minutes.c
h = slo_hours.c
# Beyond this many partial-hour ranges (dense history points), the minutes are read whole.
MAX_MINUTE_RANGES = 64


def counts_query(slo_id: int, times: list[datetime]) -> Any:
    """The hourly rows and the partial hours' minute rows to count between any of `times`,
    in one statement (one snapshot: the worker writes minutes and hours together)."""
    first, last = min(times), max(times)
    hours = select(literal(True).label("hourly"), h.hour, h.good, h.total).where(
        h.slo_id == slo_id, h.hour >= hour_floor(first), h.hour < hour_floor(last)
    )
    ranges = partial_ranges(times)
    if len(ranges) > MAX_MINUTE_RANGES:  # many points inside few hours: read them whole
        ranges = [(hour_floor(first), last)]
    if not ranges:
        return hours
    minutes = select(literal(False), m.minute, m.good, m.total).where(
        m.slo_id == slo_id, or_(*(and_(m.minute >= a, m.minute < b) for a, b in ranges))
    )
    return union_all(hours, minutes)


async def minutes_and_hours(
    connection: AsyncConnection, slo_id: int, times: list[datetime]
) -> MinutesAndHours:
    hour_rows, minute_rows = [], []
    for hourly, moment, good, total in await connection.execute(counts_query(slo_id, times)):
        (hour_rows if hourly else minute_rows).append((moment, Counts(int(good), int(total))))
    return MinutesAndHours(hour_rows, minute_rows)


@lru_cache(maxsize=64)
def _cumulative_sql(times: int, ranges: int) -> TextClause:
    """C(t) for `times` times over the hours and `ranges` partial-hour minute ranges.

    Text rather than built expressions: a status runs it on every read, and building and
    hashing the 36 filtered sums as SQLAlchemy expressions cost more CPU than the query.
    Only bound parameters vary; the shape depends on the two counts alone.
    """
    hour_sums = ", ".join(
        f"coalesce(sum(good) FILTER (WHERE hour < :h{i}), 0), "
        f"coalesce(sum(total) FILTER (WHERE hour < :h{i}), 0)"
        for i in range(times)
    )
    minute_sums = ", ".join(
        f"coalesce(sum(good) FILTER (WHERE minute >= :h{i} AND minute < :t{i}), 0), "
        f"coalesce(sum(total) FILTER (WHERE minute >= :h{i} AND minute < :t{i}), 0)"
        for i in range(times)
    )
    in_ranges = " OR ".join(f"(minute >= :a{j} AND minute < :b{j})" for j in range(ranges))
    # Placeholders only: every value is a bound parameter.
    hours = f"SELECT {hour_sums} FROM slo_hours WHERE slo_id = :slo "  # noqa: S608
    hours += "AND hour >= :first_hour AND hour < :last_hour"
    minutes = f"SELECT {minute_sums} FROM slo_minutes WHERE slo_id = :slo "  # noqa: S608
    minutes += f"AND ({in_ranges or 'false'})"
    return text(f"SELECT * FROM ({hours}) AS hours CROSS JOIN ({minutes}) AS minutes")  # noqa: S608


def cumulative_statement(slo_id: int, times: list[datetime]) -> tuple[TextClause, dict[str, Any]]:
    """The statement (and its parameters) that sums C(t) for each of `times`."""
    ranges = partial_ranges(times)
    parameters: dict[str, Any] = {
        "slo": slo_id,
        "first_hour": hour_floor(min(times)),
        "last_hour": hour_floor(max(times)),
    }
    for index, moment in enumerate(times):
        parameters[f"h{index}"] = hour_floor(moment)
        parameters[f"t{index}"] = moment
    for index, (start, end) in enumerate(ranges):
        parameters[f"a{index}"], parameters[f"b{index}"] = start, end
    return _cumulative_sql(len(times), len(ranges)), parameters


async def cumulative_counts(
    connection: AsyncConnection, slo_id: int, times: list[datetime]
) -> dict[datetime, Counts]:
    """C(t) of `MinutesAndHours` at a few times, summed by PostgreSQL in one statement (one
    snapshot, one row back)."""
    row = (await connection.execute(*cumulative_statement(slo_id, times))).one()
    count = len(times)
    return {
        moment: Counts(
            int(row[2 * index]) + int(row[2 * (count + index)]),
            int(row[2 * index + 1]) + int(row[2 * (count + index) + 1]),
        )
        for index, moment in enumerate(times)
    }


def status_times(window_s: int, now: datetime) -> tuple[datetime, dict[str, datetime]]:
    """(the end of a status's windows, the start of each: the SLO window and burn windows)."""
    end = window_end(now)
    windows = {"window": window_s, **BURN_RATE_WINDOWS}
    return end, {name: end - timedelta(seconds=seconds) for name, seconds in windows.items()}


async def window_counts(
    connection: AsyncConnection, slo_id: int, window_s: int, now: datetime
) -> tuple[Counts, dict[str, Counts]]:
    """(counts over the SLO window, counts over each burn-rate window)."""
    end, starts = status_times(window_s, now)
    before = await cumulative_counts(connection, slo_id, [end, *starts.values()])
    found = {name: before[end] - before[start] for name, start in starts.items()}
    whole = found.pop("window")
    return whole, found


async def evaluate(connection: AsyncConnection, slo: Slo, now: datetime) -> SloStatus:
    spec = slo.spec
    whole, burn = await window_counts(connection, slo.id, spec.window_s, now)
    return slo_status(
        whole,
        burn,
        objective=spec.objective,
        window_s=spec.window_s,
        warn_below=spec.policy.warn_below,
        min_events=spec.alerting.min_events,
    )


def status_document(slo: Slo, status: SloStatus, now: datetime) -> dict[str, Any]:
    spec = slo.spec
    end = window_end(now)
    window_start = end - timedelta(seconds=spec.window_s)
    budget = status.error_budget
    return {
        "id": slo.id,
        "name": spec.name,
        "service": spec.service,
        "sli": status.sli,
        "sli_type": spec.sli.type,
        "objective": spec.objective,
        "window": spec.window,
        "window_start": iso(window_start),
        "window_end": iso(end),
        "good": status.good,
        "total": status.total,
        "bad": status.total - status.good,
        "no_data": status.no_data,
        "error_budget": {
            "total": budget.total,
            "consumed": budget.consumed,
            "remaining": budget.remaining,
            "remaining_ratio": budget.remaining_ratio,
        },
        "burn_rates": status.burn_rates,
        "time_to_exhaustion_s": status.time_to_exhaustion_s,
        "policy": status.policy,
        "warn_below": spec.policy.warn_below,
        "alerts": [
            {
                "severity": check.row.severity,
                "long_window": check.row.long_window,
                "short_window": check.row.short_window,
                "threshold": check.threshold,
                "long_burn_rate": check.long_burn_rate,
                "short_burn_rate": check.short_burn_rate,
                "long_window_events": check.long_events,
                "burning": check.burning,
                "guarded": check.guarded,
                "firing": check.firing,
            }
            for check in status.alerts
        ],
        "evaluated_at": iso(now),
        "counting": {
            "counted_from": iso(slo.counted_from) if slo.counted_from else None,
            "counted_until": iso(slo.counted_until) if slo.counted_until else None,
            # Every minute of the window whose spans were still stored has been counted.
            "complete": slo.counted_from is not None and slo.counted_from <= window_start,
            "last_error": slo.last_error,
        },
    }


async def read_status(
    connection: AsyncConnection, project_id: int, slo_id: int, now: datetime
) -> dict[str, Any] | None:
    slo = await get_slo(connection, project_id, slo_id)
    if slo is None:
        return None
    return status_document(slo, await evaluate(connection, slo, now), now)


async def read_history(
    connection: AsyncConnection, slo: Slo, start: datetime, end: datetime, step_s: int
) -> list[HistoryPoint]:
    """Points from start to end (see `history_times`); ValueError for a step that does not
    fit. Reads the hours of start - window .. end and the minutes of partial hours."""
    window_s = slo.spec.window_s
    times = history_times(start, end, step_s)
    counts = await minutes_and_hours(connection, slo.id, history_bounds(times, window_s, step_s))
    return history_points(times, counts, slo.spec.objective, window_s, step_s)


async def gate(
    connection: AsyncConnection, project_id: int, service: str, now: datetime
) -> tuple[bool, list[dict[str, Any]]]:
    """(allowed, every SLO of the service with its policy); allowed unless one is frozen."""
    found = []
    for slo in await list_slos(connection, project_id, service):
        status = await evaluate(connection, slo, now)
        found.append(
            {
                "id": slo.id,
                "name": slo.spec.name,
                "policy": status.policy,
                "remaining_ratio": status.error_budget.remaining_ratio,
                "no_data": status.no_data,
            }
        )
    return all(item["policy"] != "freeze" for item in found), found
