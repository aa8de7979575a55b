"""From decoded records to committed rows: enrichment, error extraction, then the writer."""

from __future__ import annotations

from app.domain.errors import ErrorEvent, errors_from_spans
from app.domain.records import SpanRecord
from app.ingest.enrich import Enricher
from app.ingest.error_groups import error_rows
from app.ingest.rows import span_rows
from app.ingest.writer import GroupCommitWriter


async def store_spans(
    writer: GroupCommitWriter, enricher: Enricher, project_id: int, spans: list[SpanRecord]
) -> None:
    """Spans and the error events their `exception` events carry, in one transaction."""
    if not spans:
        return
    enricher.spans(spans)
    parts = [span_rows(project_id, spans)]
    errors = errors_from_spans(spans)
    if errors:
        parts.append(error_rows(project_id, errors))
    await writer.write(parts)


async def store_errors(
    writer: GroupCommitWriter, enricher: Enricher, project_id: int, errors: list[ErrorEvent]
) -> None:
    if not errors:
        return
    for error in errors:
        error.attributes = enricher.redact(error.attributes)
    await writer.write([error_rows(project_id, errors)])
