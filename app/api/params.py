"""Query-parameter parsing shared by the read endpoints: time ranges, choices, text filters.

Whatever reaches SQL is checked here first, so that bad input is a 400 naming the
parameter rather than a database error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Path

from app.api.errors import BadRequest
from app.domain.times import parse_time


def time_range(
    start: str | None, end: str | None, *, default_span: timedelta = timedelta(hours=1)
) -> tuple[datetime, datetime]:
    """`start..end` from parameters; without start, the last `default_span` before end."""
    now = datetime.now(UTC)
    try:
        end_time = parse_time(end, now=now) if end else now
    except ValueError as error:
        raise BadRequest(f"end: {error}") from None
    try:
        start_time = parse_time(start, now=now) if start else end_time - default_span
    except ValueError as error:
        raise BadRequest(f"start: {error}") from None
    if start_time > end_time:
        raise BadRequest("start must not be after end")
    return start_time, end_time


def choice(name: str, value: str | None, allowed: tuple[str, ...] | list[str]) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise BadRequest(f"{name} {value!r:.80} is not accepted; use one of: {', '.join(allowed)}")
    return value


def text_param(value: str | None) -> str | None:
    """A text filter as stored data spells it: ingest strips NUL (PostgreSQL text cannot
    hold it), so a filter does too; empty means no filter."""
    return (value.replace("\x00", "") or None) if value else None


# Ids of stored objects (rules, alerts, silences, channels, SLOs) are PostgreSQL bigints:
# anything outside 1..2^63-1 is refused before it reaches SQL.
ObjectId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the object's id")]
