"""Log search: full text, minimum level, service, trace, attributes; newest first, by cursor.

Contract of `search_logs`:

- Order. Newest first by `(time, id)`: `time` is when the event happened (the observed
  time when the sender left it out) and `id` a per-row number assigned at insert, which
  only breaks ties between logs of the same microsecond. Both are immutable, so a cursor
  resumes exactly: paging never skips or repeats a log that was stored when paging
  started, however many arrive meanwhile (those appear on a new first page, or on a later
  page if their time is older than the cursor's).
- Matching. `start..end` bounds `time`, inclusive. `q` is PostgreSQL full-text search
  with the `simple` configuration (no stemming, no stop words: `fail` does not find
  `failed`) over `search_text` - the body, the event name and message-like attributes -
  parsed by websearch_to_tsquery: several words must all occur, "double quotes" make a
  phrase, `or` and `-word` work as on web search engines. `level` is a minimum: a log
  matches by its severity number, or, when that is 0 (unspecified), by a well-known
  severity text such as "ERROR". `span_id` (the UI's logs of one span) is the raw 8-byte
  id. `service` is the resource's service.name, `trace_id` the
  raw 16-byte id, attributes compare as in trace search (`attribute_condition`).
- Limits. `limit` is 1..MAX_LOG_LIMIT; `next_cursor` is null on the last page. With a
  cursor the time window is the first page's and the filters must be the same (else
  InvalidCursor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import logs
from app.domain.logs import _TEXT_LEVELS, LEVELS, level_name, severity_floor
from app.domain.times import iso
from app.query.cursor import Cursor, decode_cursor, encode_cursor, filters_digest
from app.query.traces import attribute_condition, fetch_planned_for_values

MAX_LOG_LIMIT = 1000
# A constant, never a bound parameter: the planner matches it against the GIN index
# expression `to_tsvector('simple'::regconfig, search_text)` only when it is spelled the same.
_SIMPLE = literal_column("'simple'::regconfig")
# search_text is derived from body and attributes (up to 32 KiB): never sent back.
_LOG_FIELDS = tuple(column for column in logs.columns if column.name != "search_text")


@dataclass(frozen=True, slots=True)
class LogFilters:
    text: str | None = None
    level: str | None = None
    service: str | None = None
    trace_id: bytes | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    # The UI's "logs of this span"; in the digest only when set (older cursors stay valid).
    span_id: bytes | None = None

    def digest(self) -> str:
        filters: dict[str, Any] = {
            "q": self.text,
            "level": self.level,
            "service": self.service,
            "trace_id": self.trace_id.hex() if self.trace_id else None,
            "attributes": sorted(self.attributes),
        }
        if self.span_id is not None:
            filters["span_id"] = self.span_id.hex()
        return filters_digest(filters)

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.text and self.text.strip():
            found.append(
                func.to_tsvector(_SIMPLE, logs.c.search_text).bool_op("@@")(
                    func.websearch_to_tsquery(_SIMPLE, self.text)
                )
            )
        if self.level:
            found.append(_at_least(self.level))
        if self.service:
            found.append(logs.c.service_name == self.service)
        if self.trace_id is not None:
            found.append(logs.c.trace_id == self.trace_id)
        if self.span_id is not None:
            found.append(logs.c.span_id == self.span_id)
        found.extend(
            attribute_condition(logs.c.attributes, key, value) for key, value in self.attributes
        )
        return found


def _at_least(level: str) -> ColumnElement[bool]:
    floor = LEVELS.index(level)
    # Senders that set only a text ("ERROR", "warning", "critical") rank by that text, as
    # level_name does for the `level` of each answer.
    texts = sorted(text for text, name in _TEXT_LEVELS.items() if LEVELS.index(name) >= floor)
    return or_(
        logs.c.severity_number >= severity_floor(level),
        (logs.c.severity_number == 0) & func.lower(func.btrim(logs.c.severity_text)).in_(texts),
    )


async def search_logs(
    engine: AsyncEngine,
    project_id: int,
    filters: LogFilters,
    *,
    start: datetime,
    end: datetime,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Logs newest first and the cursor of the next page; InvalidCursor for a foreign cursor."""
    digest = filters.digest()
    position: tuple[datetime, int] | None = None
    if cursor:
        decoded = decode_cursor(cursor, kind="logs", filters=digest, tie_type=int)
        start, end = decoded.start, decoded.end
        position = (decoded.time, int(decoded.tie))
    query = search_query(project_id, filters, start, end, limit, position)
    rows = await fetch_planned_for_values(engine, query)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(Cursor("logs", last.time, last.id, start, end, digest))
    return {"logs": [_log(row) for row in page], "next_cursor": next_cursor}


def search_query(
    project_id: int,
    filters: LogFilters,
    start: datetime,
    end: datetime,
    limit: int,
    position: tuple[datetime, int] | None = None,
) -> Any:
    """One page (plus one row, to know whether another follows) after `position`."""
    conditions = [logs.c.project_id == project_id, logs.c.time >= start, logs.c.time <= end]
    if position is not None:
        conditions.append(tuple_(logs.c.time, logs.c.id) < tuple_(*position))
    return (
        select(*_LOG_FIELDS)
        .where(*conditions, *filters.conditions())
        .order_by(logs.c.time.desc(), logs.c.id.desc())
        .limit(limit + 1)
    )


def _log(row: Any) -> dict[str, Any]:
    trace_id = row.trace_id.hex() if row.trace_id else None
    return {
        "time": iso(row.time),
        "observed_time": iso(row.observed_time) if row.observed_time else None,
        "level": level_name(row.severity_number, row.severity_text),
        "severity_number": row.severity_number,
        "severity_text": row.severity_text,
        "body": row.body,
        "service": row.service_name,
        "attributes": row.attributes,
        "resource": row.resource_attributes,
        "scope": row.scope,
        "trace_id": trace_id,
        "span_id": row.span_id.hex() if row.span_id else None,
        "event_name": row.event_name,
        "flags": row.flags,
        "trace": f"/api/v1/traces/{trace_id}" if trace_id else None,
    }
