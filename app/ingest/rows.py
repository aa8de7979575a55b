"""Records → COPY rows in the column order of app/db/tables.py (jsonb as JSON text)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.db.partitions import days_of
from app.db.tables import SPAN_COLUMNS
from app.domain.records import SpanRecord
from app.ingest.writer import TableRows

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(unix_nano: int) -> datetime:
    # timedelta keeps microsecond precision exact where float seconds would round.
    return _EPOCH + timedelta(microseconds=unix_nano // 1000)


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def span_rows(project_id: int, spans: Sequence[SpanRecord]) -> TableRows:
    rows = []
    # Spans of one resource block share their Resource and Scope; serialise each once.
    resource_json: dict[int, str] = {}
    scope_json: dict[int, str] = {}
    for span in spans:
        resource = span.resource
        resource_text = resource_json.get(id(resource))
        if resource_text is None:
            resource_text = resource_json[id(resource)] = dumps(resource.attributes)
        scope_text = scope_json.get(id(span.scope))
        if scope_text is None:
            scope_text = scope_json[id(span.scope)] = dumps(span.scope.as_json())
        genai = span.genai
        rows.append(
            (
                project_id,
                span.trace_id,
                span.span_id,
                span.parent_span_id,
                resource.service_name,
                span.name,
                span.kind,
                timestamp(span.start_time_unix_nano),
                timestamp(span.end_time_unix_nano),
                span.end_time_unix_nano - span.start_time_unix_nano,
                span.status_code,
                span.status_message,
                genai.provider if genai else None,
                genai.model if genai else None,
                genai.operation if genai else None,
                genai.input_tokens if genai else None,
                genai.output_tokens if genai else None,
                genai.cache_read_input_tokens if genai else None,
                genai.tool_name if genai else None,
                span.cost_usd,
                span.trace_state,
                span.flags,
                dumps(span.attributes),
                resource_text,
                scope_text,
                dumps(span.events) if span.events else "[]",
                dumps(span.links) if span.links else "[]",
                span.dropped_attributes_count,
                span.dropped_events_count,
                span.dropped_links_count,
                span.parent_span_id is None,
            )
        )
    return TableRows(
        "spans", SPAN_COLUMNS, rows, days_of(span.start_time_unix_nano for span in spans)
    )
