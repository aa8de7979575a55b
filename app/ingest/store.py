"""From decoded records to committed rows: enrichment, then the group-commit writer."""

from __future__ import annotations

from app.domain.records import SpanRecord
from app.ingest.enrich import Enricher
from app.ingest.rows import span_rows
from app.ingest.writer import GroupCommitWriter


async def store_spans(
    writer: GroupCommitWriter, enricher: Enricher, project_id: int, spans: list[SpanRecord]
) -> None:
    if spans:
        enricher.spans(spans)
        await writer.write([span_rows(project_id, spans)])
