"""From decoded records to committed rows: enrichment, error extraction, then the writer."""

from __future__ import annotations

from app.domain.errors import ErrorEvent, errors_from_spans
from app.domain.records import SpanRecord
from app.ingest.enrich import Enricher
from app.ingest.error_groups import error_rows
from app.ingest.offload import Runner, Steps, drive, inline, sliced
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

    `run` runs the CPU-bound part (enrichment, rows): with an `Offload`, in slices on the
    event loop (see `app/ingest/offload.py`).
    """
    if not spans:
        return
    parts = await sliced(run, span_parts_steps(enricher, project_id, spans))
    # The records are not needed once their rows exist. Dropped here, before the wait for
    # the commit, they are freed if the caller handed them on (`DecodedBatch.take`): a
    # waiting request holds its rows only.
    del spans
    await writer.write(parts)


# Spans enriched and made rows between two pauses of `span_parts_steps` (about 0.4 ms).
SPANS_PER_STEP = 32


def span_parts(enricher: Enricher, project_id: int, spans: list[SpanRecord]) -> list[TableRows]:
    return drive(span_parts_steps(enricher, project_id, spans))


def span_parts_steps(
    enricher: Enricher, project_id: int, spans: list[SpanRecord]
) -> Steps[list[TableRows]]:
    """The span rows and error rows of `spans`, a few spans per step, in their order."""
    by_table: dict[str, TableRows] = {}
    seen_resources: set[int] = set()
    for start in range(0, len(spans), SPANS_PER_STEP):
        chunk = spans[start : start + SPANS_PER_STEP]
        enricher.spans(chunk, seen_resources)
        parts = [span_rows(project_id, chunk)]
        errors = errors_from_spans(chunk)
        if errors:
            parts.append(error_rows(project_id, errors))
        add_parts(by_table, parts)
        yield
    return list(by_table.values())


def add_parts(by_table: dict[str, TableRows], parts: list[TableRows]) -> None:
    """Append the rows of `parts` (a chunk of a batch) to those of the chunks before."""
    for part in parts:
        merged = by_table.get(part.table)
        if merged is None:
            by_table[part.table] = part
        else:
            merged.rows.extend(part.rows)
            merged.days.update(part.days)


async def store_errors(
    writer: GroupCommitWriter,
    enricher: Enricher,
    project_id: int,
    errors: list[ErrorEvent],
    run: Runner = inline,
) -> None:
    if not errors:
        return
    await writer.write(await sliced(run, error_parts_steps(enricher, project_id, errors)))


# Error events redacted and made rows (fingerprints included) between two pauses.
ERRORS_PER_STEP = 16


def error_parts_steps(
    enricher: Enricher, project_id: int, errors: list[ErrorEvent]
) -> Steps[list[TableRows]]:
    """The `error_events` rows of `errors`, redacted, a few events per step, in order."""
    by_table: dict[str, TableRows] = {}
    for start in range(0, len(errors), ERRORS_PER_STEP):
        chunk = errors[start : start + ERRORS_PER_STEP]
        for error in chunk:
            error.attributes = enricher.redact(error.attributes)
        add_parts(by_table, [error_rows(project_id, chunk)])
        yield
    return list(by_table.values())
