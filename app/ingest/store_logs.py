"""From decoded log records to committed rows: redaction, then the group-commit writer."""

from __future__ import annotations

from app.domain.logs import LogRecord
from app.ingest.enrich import Enricher
from app.ingest.log_rows import log_rows
from app.ingest.writer import GroupCommitWriter


async def store_logs(
    writer: GroupCommitWriter, enricher: Enricher, project_id: int, logs: list[LogRecord]
) -> None:
    """Redact, then write; returns once the rows are committed (raises a `WriterError`)."""
    if not logs:
        return
    redact(enricher, logs)
    await writer.write([log_rows(project_id, logs)])


def redact(enricher: Enricher, logs: list[LogRecord]) -> None:
    """Redact attributes, resource attributes and map bodies in place, before search_text.

    A map body is attributes by another name (structured logs put `password=...` there
    too), so it gets the same treatment; search_text is built from the redacted values.
    """
    seen_resources: set[int] = set()
    for record in logs:
        if id(record.resource) not in seen_resources:
            seen_resources.add(id(record.resource))
            enricher.resource(record.resource)
        record.attributes = enricher.redact(record.attributes)
        if type(record.body) is dict:
            record.body = enricher.redact(record.body)
