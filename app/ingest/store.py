"""From decoded records to committed rows: enrichment, error extraction, then the writer."""

from __future__ import annotations

from app.domain.errors import ErrorEvent, errors_from_spans
from app.domain.records import SpanRecord
from app.ingest.enrich import Enricher
from app.ingest.error_groups import error_rows
from app.ingest.offload import Runner, inline
from app.ingest.rows import span_rows
from app.ingest.writer import GroupCommitWriter, TableRows


async def store_spans(
    writer: GroupCommitWriter,
    enricher: Enricher,
    project_id: int,
    spans: list[SpanRecord],
    run: Runner = inline,
) -> None:
    """Spans and the error events their `exception` events carry, in one transaction.

    `run` runs the CPU-bound part (enrichment, rows), e.g. on a thread.
    """
    if not spans:
        return
    await writer.write(await run(span_parts, enricher, project_id, spans))


def span_parts(enricher: Enricher, project_id: int, spans: list[SpanRecord]) -> list[TableRows]:
    enricher.spans(spans)
    parts = [span_rows(project_id, spans)]
    errors = errors_from_spans(spans)
    if errors:
        parts.append(error_rows(project_id, errors))
    return parts


async def store_errors(
    writer: GroupCommitWriter,
    enricher: Enricher,
    project_id: int,
    errors: list[ErrorEvent],
    run: Runner = inline,
) -> None:
    if not errors:
        return
    await writer.write([await run(_error_part, enricher, project_id, errors)])


def _error_part(enricher: Enricher, project_id: int, errors: list[ErrorEvent]) -> TableRows:
    for error in errors:
        error.attributes = enricher.redact(error.attributes)
    return error_rows(project_id, errors)
