"""Log records → COPY rows for the `logs` table, in `LOG_COLUMNS` order (jsonb as JSON text)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from app.db.partitions import days_of
from app.db.tables import LOG_COLUMNS
from app.domain.logs import LogRecord, search_text
from app.ingest.rows import dumps, timestamp
from app.ingest.writer import TableRows

# The tuple below is positional; fail at import, not with shuffled columns, if the table
# definition changes without this module.
_EXPECTED_COLUMNS = (
    "project_id",
    "time",
    "observed_time",
    "service_name",
    "severity_number",
    "severity_text",
    "body",
    "search_text",
    "attributes",
    "resource_attributes",
    "scope",
    "trace_id",
    "span_id",
    "flags",
    "event_name",
    "dropped_attributes_count",
    "log_id",
)
if LOG_COLUMNS != _EXPECTED_COLUMNS:
    raise RuntimeError(f"logs columns changed to {LOG_COLUMNS}; update app/ingest/log_rows.py")


def log_rows(project_id: int, logs: Sequence[LogRecord]) -> TableRows:
    rows = []
    # Records of one resource/scope block share those objects; serialise each once.
    resource_json: dict[int, tuple[str, str]] = {}
    scope_json: dict[int, str] = {}
    for record in logs:
        resource = record.resource
        resource_entry = resource_json.get(id(resource))
        if resource_entry is None:
            resource_entry = resource_json[id(resource)] = (
                dumps(resource.attributes),
                resource.service_name,
            )
        scope_text = scope_json.get(id(record.scope))
        if scope_text is None:
            scope_text = scope_json[id(record.scope)] = dumps(record.scope.as_json())
        body = record.body
        body_text = None if body is None else dumps(body)
        attributes_text = dumps(record.attributes)
        record.log_id = _identity(record, resource_entry[0], scope_text, body_text, attributes_text)
        rows.append(
            (
                project_id,
                timestamp(record.time_unix_nano),
                timestamp(record.observed_time_unix_nano)
                if record.observed_time_unix_nano
                else None,
                resource_entry[1],
                record.severity_number,
                record.severity_text,
                # An absent body is SQL NULL; a JSON null inside a body stays JSON.
                body_text,
                search_text(body, record.attributes, record.event_name),
                attributes_text,
                resource_entry[0],
                scope_text,
                record.trace_id,
                record.span_id,
                record.flags,
                record.event_name,
                record.dropped_attributes_count,
                record.log_id,
            )
        )
    return TableRows("logs", LOG_COLUMNS, rows, days_of(record.time_unix_nano for record in logs))


def _identity(
    record: LogRecord, resource: str, scope: str, body: str | None, attributes: str
) -> bytes:
    """16 bytes of blake2b over everything the record says: equal records, equal ids."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (
        resource,
        scope,
        body if body is not None else "\x00none",
        attributes,
        record.severity_text,
        record.event_name,
    ):
        digest.update(part.encode())
        digest.update(b"\x1f")
    digest.update(
        b"%d|%d|%d|%d|"
        % (
            record.time_unix_nano,
            record.observed_time_unix_nano,
            record.severity_number,
            record.flags,
        )
    )
    digest.update(record.trace_id or b"-")
    digest.update(record.span_id or b"-")
    return digest.digest()
