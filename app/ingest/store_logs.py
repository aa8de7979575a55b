"""From decoded log records to committed rows: redaction, error extraction, then the writer."""

from __future__ import annotations

from app.domain.errors import ErrorEvent, error_from_log, is_error_log
from app.domain.logs import LogRecord
from app.ingest.enrich import Enricher
from app.ingest.error_groups import error_rows
from app.ingest.log_rows import log_rows
from app.ingest.offload import Runner, Steps, drive, inline, sliced
from app.ingest.store import add_parts
from app.ingest.writer import GroupCommitWriter, TableRows


async def store_logs(
    writer: GroupCommitWriter,
    enricher: Enricher,
    project_id: int,
    logs: list[LogRecord],
    run: Runner = inline,
) -> None:
    """Redact, then write; returns once the rows are committed (raises a `WriterError`).

    `run` runs the CPU-bound part (redaction, rows): with an `Offload`, in slices on the
    event loop (see `app/ingest/offload.py`).
    """
    if not logs:
        return
    parts = await sliced(run, log_parts_steps(enricher, project_id, logs))
    del logs  # freed before the wait for the commit, as in `store_spans`
    await writer.write(parts)


# Log records redacted and made rows between two pauses of `log_parts_steps`.
RECORDS_PER_STEP = 32


def log_parts(enricher: Enricher, project_id: int, logs: list[LogRecord]) -> list[TableRows]:
    return drive(log_parts_steps(enricher, project_id, logs))


def log_parts_steps(
    enricher: Enricher, project_id: int, logs: list[LogRecord]
) -> Steps[list[TableRows]]:
    """The log rows and error rows of `logs`, a few records per step, in their order."""
    by_table: dict[str, TableRows] = {}
    seen_resources: set[int] = set()
    for start in range(0, len(logs), RECORDS_PER_STEP):
        chunk = logs[start : start + RECORDS_PER_STEP]
        redact(enricher, chunk, seen_resources)
        parts = [log_rows(project_id, chunk)]
        errors = errors_from_logs(chunk)
        if errors:
            parts.append(error_rows(project_id, errors))
        add_parts(by_table, parts)
        yield
    return list(by_table.values())


def errors_from_logs(logs: list[LogRecord]) -> list[ErrorEvent]:
    """Log records that carry `exception.*` attributes are error events too."""
    return [
        error_from_log(
            record.attributes,
            body_text=record.body if isinstance(record.body, str) else "",
            time_unix_nano=record.time_unix_nano,
            service_name=record.service_name,
            trace_id=record.trace_id,
            span_id=record.span_id,
            # Derived from the log's content: a retried export does not count twice.
            event_id=record.log_id,
        )
        for record in logs
        if is_error_log(record.attributes)
    ]


def redact(
    enricher: Enricher, logs: list[LogRecord], seen_resources: set[int] | None = None
) -> None:
    """Redact attributes, resource attributes and map bodies in place, before search_text.

    A map body is attributes by another name (structured logs put `password=...` there
    too), so it gets the same treatment; search_text is built from the redacted values.
    """
    if seen_resources is None:
        seen_resources = set()
    for record in logs:
        if id(record.resource) not in seen_resources:
            seen_resources.add(id(record.resource))
            enricher.resource(record.resource)
        record.attributes = enricher.redact(record.attributes)
        if type(record.body) is dict:
            record.body = enricher.redact(record.body)
