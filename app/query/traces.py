"""Reading traces: one trace by id with all its spans, and trace search.

Contract of `get_trace`: spans are ordered by start time (then span id); a trace id
unknown in the caller's project is `None` (the API answers 404), whatever other projects
hold.

Contract of `search_traces`:

- Position and order. A trace's position is `(start_time, trace_id)` of its root span
  (the span stored without a parent); results are newest first, ties broken by trace id
  descending. Both parts are immutable once the root is stored, which is what lets a
  cursor resume exactly: paging never skips a trace that matched when paging started and
  never repeats one, however much data arrives meanwhile. A trace that arrives (or starts
  to match) during paging is listed only if its position is past the cursor's (a late
  root with an old start time); new traces appear on a new first page.
- Traces without a stored root (its spans still in flight, or a caller that is not
  instrumented) are not listed, because their position is not known yet; they are readable
  by id (`get_trace`, which then takes the earliest orphan as root) and through log links.
  A trace with several parentless spans is listed once, at its earliest root (start time,
  then span id) - the same root `get_trace` reports; should an even earlier root arrive
  while a client pages, that trace moves and may be listed twice. Only malformed traces
  can do this.
- Matching. `start..end` bounds the root's start time. A trace matches when one of its
  spans that started in `start..end` matches every span filter at once (service, name,
  status, duration, attributes), as Jaeger's reader does; without span filters every
  rooted trace in the window matches. Attribute values are compared as text and, when the
  text is a JSON number or boolean, also as that value (`attr.http.status_code=200`
  matches the int 200 and the string "200").
- Summary. `start_time`, `duration_ms`, `span_count` and `error_count` cover all spans of
  the trace stored so far, in any time, exactly as `get_trace` computes them.
- Limits. `limit` is 1..MAX_TRACE_LIMIT (the API refuses more); a page shorter than
  `limit`, or one with `next_cursor` null, is the last. With a cursor, the time window is
  the one the first page resolved, and the filters must be the first page's (else
  InvalidCursor). An unknown service or attribute is not an error: it matches nothing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import spans
from app.domain.records import SPAN_KIND_NAMES, STATUS_ERROR, STATUS_NAMES
from app.domain.times import iso
from app.ingest.rollups import category_condition
from app.query.cursor import (
    NOT_A_CURSOR,
    Cursor,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
    filters_digest,
)
from app.query.trace_candidates import (
    Candidates,
    candidate_page,
    is_candidate,
    matching_traces,
    no_earlier_root,
    probed,
)

MAX_TRACE_LIMIT = 100
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
# A JSON number as RFC 8259 writes it: `007`, `1.`, `inf` or `nan` stay text only.
_MAX_NUMBER_CHARS = 400
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")

_SPAN_FIELDS = (
    spans.c.span_id,
    spans.c.parent_span_id,
    spans.c.name,
    spans.c.service_name,
    spans.c.kind,
    spans.c.start_time,
    spans.c.end_time,
    spans.c.duration_ns,
    spans.c.status_code,
    spans.c.status_message,
    spans.c.attributes,
    spans.c.resource_attributes,
    spans.c.scope,
    spans.c.events,
    spans.c.links,
    spans.c.trace_state,
    spans.c.gen_ai_provider,
    spans.c.gen_ai_model,
    spans.c.gen_ai_operation,
    spans.c.gen_ai_input_tokens,
    spans.c.gen_ai_output_tokens,
    spans.c.gen_ai_cache_read_tokens,
    spans.c.gen_ai_tool_name,
    spans.c.cost_usd,
    spans.c.dropped_attributes_count,
    spans.c.dropped_events_count,
    spans.c.dropped_links_count,
)


def _iso_nano(unix_nano: int) -> str:
    return iso(datetime.fromtimestamp(unix_nano // 1000 / 1_000_000, tz=UTC))


async def get_trace(engine: AsyncEngine, project_id: int, trace_id: bytes) -> dict[str, Any] | None:
    query = (
        select(*_SPAN_FIELDS)
        .where(spans.c.project_id == project_id, spans.c.trace_id == trace_id)
        .order_by(spans.c.start_time, spans.c.span_id)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    if not rows:
        return None
    span_list = [_span(row) for row in rows]
    span_ids = {row.span_id for row in rows}
    # The root is the span without a parent; with a partial trace, the earliest orphan.
    roots = [row for row in rows if row.parent_span_id is None]
    orphans = [row for row in rows if row.parent_span_id not in span_ids]
    root = (roots or orphans or rows)[0]
    start = min(row.start_time for row in rows)
    end = max(row.end_time for row in rows)
    return {
        "trace_id": trace_id.hex(),
        "root_service": root.service_name,
        "root_name": root.name,
        "start_time": iso(start),
        "end_time": iso(end),
        "duration_ms": (end - start).total_seconds() * 1000,
        "span_count": len(rows),
        "error_count": sum(1 for row in rows if row.status_code == STATUS_ERROR),
        "services": sorted({row.service_name for row in rows}),
        "spans": span_list,
    }


def _span(row: Any) -> dict[str, Any]:
    genai = None
    if row.gen_ai_model or row.gen_ai_provider or row.gen_ai_tool_name:
        genai = {
            "provider": row.gen_ai_provider,
            "model": row.gen_ai_model,
            "operation": row.gen_ai_operation,
            "input_tokens": row.gen_ai_input_tokens,
            "output_tokens": row.gen_ai_output_tokens,
            "cache_read_input_tokens": row.gen_ai_cache_read_tokens,
            "tool_name": row.gen_ai_tool_name,
            "cost_usd": row.cost_usd,
        }
    return {
        "span_id": row.span_id.hex(),
        "parent_span_id": row.parent_span_id.hex() if row.parent_span_id else None,
        "name": row.name,
        "service": row.service_name,
        "kind": SPAN_KIND_NAMES[row.kind] if 0 < row.kind < len(SPAN_KIND_NAMES) else "internal",
        "start_time": iso(row.start_time),
        "end_time": iso(row.end_time),
        "duration_ms": row.duration_ns / 1_000_000,
        "status": STATUS_NAMES[row.status_code] if row.status_code < 3 else "unset",
        "status_message": row.status_message,
        "attributes": row.attributes,
        "resource": row.resource_attributes,
        "scope": row.scope,
        "events": [{**event, "time": _iso_nano(event["time_unix_nano"])} for event in row.events],
        "links": row.links,
        "trace_state": row.trace_state,
        "gen_ai": genai,
        "dropped_attributes_count": row.dropped_attributes_count,
        "dropped_events_count": row.dropped_events_count,
        "dropped_links_count": row.dropped_links_count,
    }


@dataclass(frozen=True, slots=True)
class SpanFilters:
    """Span-level filters: a trace matches when one of its spans matches all of them.

    Trace search sets the first six (its cursors' digest covers only those); span alert
    rules (app/query/span_samples.py) also filter on kind, the GenAI columns and the
    dashboards' category, and let an attribute filter fall back to the resource's
    attributes when the span lacks the key, where their group_by looks too.
    """

    service: str | None = None
    name: str | None = None
    status: str | None = None
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    kind: str | None = None
    model: str | None = None
    provider: str | None = None
    tool: str | None = None
    operation: str | None = None
    category: int | None = None
    resource_fallback: bool = False

    def digest(self) -> str:
        return filters_digest(
            {
                "service": self.service,
                "name": self.name,
                "status": self.status,
                "min_duration_ms": self.min_duration_ms,
                "max_duration_ms": self.max_duration_ms,
                "attributes": sorted(self.attributes),
            }
        )

    def conditions(self, table: Any) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.service:
            found.append(table.c.service_name == self.service)
        if self.name:
            found.append(table.c.name == self.name)
        if self.status:
            found.append(table.c.status_code == STATUS_NAMES.index(self.status))
        if self.min_duration_ms is not None:
            found.append(table.c.duration_ns >= _nanos(self.min_duration_ms, ROUND_CEILING))
        if self.max_duration_ms is not None:
            found.append(table.c.duration_ns <= _nanos(self.max_duration_ms, ROUND_FLOOR))
        if self.kind:
            found.append(table.c.kind.in_(kind_codes(self.kind)))
        for column, value in (
            (table.c.gen_ai_model, self.model),
            (table.c.gen_ai_provider, self.provider),
            (table.c.gen_ai_tool_name, self.tool),
            (table.c.gen_ai_operation, self.operation),
        ):
            if value:
                found.append(column == value)
        if self.category is not None:
            found.append(category_condition(table, self.category))
        for key, value in self.attributes:
            condition = attribute_condition(table.c.attributes, key, value)
            if self.resource_fallback:
                condition = or_(
                    condition,
                    and_(
                        ~table.c.attributes.has_key(key),
                        attribute_condition(table.c.resource_attributes, key, value),
                    ),
                )
            found.append(condition)
        return found


def kind_codes(kind: str) -> tuple[int, ...]:
    # An unspecified kind is shown as internal (`_span`), so it is filtered as one too.
    code = SPAN_KIND_NAMES.index(kind)
    return (0, code) if kind == "internal" else (code,)


def _nanos(milliseconds: float, rounding: str) -> int:
    # Decimal of the text form: 0.1 ms is exactly 100000 ns, not 100000.00000000001.
    exact = int((Decimal(str(milliseconds)) * 1_000_000).to_integral_value(rounding=rounding))
    # duration_ns is a bigint: 1e300 ms is "longer than any span", not an overflow.
    return max(min(exact, _BIGINT_MAX), -_BIGINT_MAX)


def attribute_condition(column: Any, key: str, value: str) -> ColumnElement[bool]:
    """`column` (jsonb) holds `key` equal to `value`, as text or as the JSON scalar it spells.

    jsonb containment (`@>`) with bound JSON documents: keys and values never reach the SQL
    text, and a jsonb_path_ops GIN index can answer it. Numbers compare by value (200 and
    200.0 are equal in jsonb).
    """
    forms: list[Any] = [value]
    scalar = _json_scalar(value)
    if scalar is not None:
        forms.append(scalar)
    return or_(*(column.contains({key: form}) for form in forms))


def _json_scalar(value: str) -> bool | int | float | None:
    """The JSON boolean or number `value` spells, or None when it spells none that stored
    data can hold: integers past 64 bits (ingest stores those as text, and the jsonb
    encoder refuses them), thousands of digits and numbers beyond a double (`1e999`) stay
    text only."""
    if value in ("true", "false"):
        return value == "true"
    if len(value) > _MAX_NUMBER_CHARS or not _JSON_NUMBER.fullmatch(value):
        return None
    try:
        number = json.loads(value)
    except ValueError:
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    if isinstance(number, int) and not _BIGINT_MIN <= number <= _BIGINT_MAX:
        return None
    return number


async def fetch_planned_for_values(engine: AsyncEngine, query: Any) -> list[Any]:
    """Run a search. Its plan is made for the actual values, never a cached generic one:
    every connection sets plan_cache_mode = force_custom_plan (app/db/engine.py)."""
    async with engine.connect() as connection:
        return list((await connection.execute(query)).all())


def _trace_id_of(tie: str | int) -> bytes:
    try:
        raw = bytes.fromhex(str(tie))
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise InvalidCursor(NOT_A_CURSOR)
    return raw


async def search_traces(
    engine: AsyncEngine,
    project_id: int,
    filters: SpanFilters,
    *,
    start: datetime,
    end: datetime,
    limit: int = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Trace summaries newest first, and the cursor of the next page (see the module doc).

    Raises InvalidCursor for a cursor this search did not issue with these filters.
    """
    digest = filters.digest()
    position: tuple[datetime, bytes] | None = None
    if cursor:
        decoded = decode_cursor(cursor, kind="traces", filters=digest, tie_type=str)
        position = (decoded.time, _trace_id_of(decoded.tie))
        start, end = decoded.start, decoded.end
    candidates = None
    span_conditions = filters.conditions(spans)
    if span_conditions:
        slow_spans = bool(filters.service) and filters.min_duration_ms is not None
        candidates = await matching_traces(
            engine, project_id, span_conditions, start, end, read_more=slow_spans
        )
        if candidates is not None and candidates.count == 0:
            return {"traces": [], "next_cursor": None}
    query = search_query(project_id, filters, start, end, limit, position, candidates)
    rows = await fetch_planned_for_values(engine, query)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(
            Cursor("traces", last.root_start, last.trace_id.hex(), start, end, digest)
        )
    return {"traces": [_summary(row) for row in page], "next_cursor": next_cursor}


def search_query(
    project_id: int,
    filters: SpanFilters,
    start: datetime,
    end: datetime,
    limit: int,
    position: tuple[datetime, bytes] | None = None,
    candidates: Candidates | None = None,
) -> Any:
    """One page of trace summaries (plus one, to know whether another follows).

    `candidates`, when given, are all the traces with a span that matches the filters in
    the window (app/query/trace_candidates.py): the page is then made of those alone
    when they are few, or by the walk testing each root for membership among them,
    instead of testing each root of the window for a matching span.
    """
    if candidates is not None and probed(candidates):
        page = candidate_page(project_id, candidates, start, end, limit, position)
    else:
        page = _walk_page(project_id, filters, start, end, limit, position, candidates)
    member = spans.alias("member")
    summary = (
        select(
            func.count().label("span_count"),
            func.count().filter(member.c.status_code == STATUS_ERROR).label("error_count"),
            func.min(member.c.start_time).label("first_start"),
            func.max(member.c.end_time).label("last_end"),
        )
        .where(member.c.project_id == project_id, member.c.trace_id == page.c.trace_id)
        .lateral("summary")
    )
    return (
        select(page, summary)
        .select_from(page.join(summary, true()))
        .order_by(page.c.root_start.desc(), page.c.trace_id.desc())
    )


def _walk_page(
    project_id: int,
    filters: SpanFilters,
    start: datetime,
    end: datetime,
    limit: int,
    position: tuple[datetime, bytes] | None,
    candidates: Candidates | None = None,
) -> Any:
    """The window's roots newest first, each tested for a matching span: its trace is one
    of `candidates` when given (all the traces with a matching span), else the trace's
    spans are read."""
    root = spans.alias("root")
    conditions: list[ColumnElement[bool]] = [
        root.c.project_id == project_id,
        root.c.is_root,
        root.c.start_time >= start,
        root.c.start_time <= end,
        no_earlier_root(project_id, root),
    ]
    if position is not None:
        conditions.append(tuple_(root.c.start_time, root.c.trace_id) < tuple_(*position))
    span_conditions = filters.conditions(match := spans.alias("match"))
    if candidates is not None:
        conditions.append(is_candidate(root.c.trace_id, candidates))
    elif span_conditions:
        conditions.append(
            exists().where(
                match.c.project_id == project_id,
                match.c.trace_id == root.c.trace_id,
                match.c.start_time >= start,
                match.c.start_time <= end,
                *span_conditions,
            )
        )
    page = (
        select(
            root.c.trace_id,
            root.c.start_time.label("root_start"),
            root.c.service_name.label("root_service"),
            root.c.name.label("root_name"),
        )
        .where(*conditions)
        .order_by(root.c.start_time.desc(), root.c.trace_id.desc())
        .limit(limit + 1)
        .subquery("page")
    )
    return page


def _summary(row: Any) -> dict[str, Any]:
    return {
        "trace_id": row.trace_id.hex(),
        "root_service": row.root_service,
        "root_name": row.root_name,
        "start_time": iso(row.first_start),
        "duration_ms": (row.last_end - row.first_start).total_seconds() * 1000,
        "span_count": row.span_count,
        "error_count": row.error_count,
    }
