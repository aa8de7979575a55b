"""Access paths whose cost follows the matches: span filter indexes and an operation catalog.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Trace search first collects the trace ids of the spans that match its filters
(app/query/trace_candidates.py); these indexes let that read only matching entries:

- service + minimum/maximum duration: (project, service, duration, start), as Jaeger keeps
  a duration index per service;
- service + status=error: a partial index on the error spans alone (a few percent);
- service + span name: (project, service, name, start).

Each carries the trace id (INCLUDE), so a scan over all-visible pages reads no heap.
Attribute equality already has its GIN index (0004).

`span_operations` counts spans per minute, service, span name and kind, appended at
ingest in the spans' transaction and merged per key by the rollup-compaction job, as
`span_rollups`: the services list and Jaeger's services/operations read it instead of
scanning every span of the window (app/query/services.py). Appended, not upserted: an
upsert made concurrent flushes wait for each other's commit on the same keys.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "spans_service_duration",
        "spans",
        ["project_id", "service_name", "duration_ns", "start_time"],
        postgresql_include=["trace_id"],
    )
    op.create_index(
        "spans_service_errors",
        "spans",
        ["project_id", "service_name", "start_time"],
        postgresql_include=["trace_id"],
        postgresql_where=sa.text("status_code = 2"),
    )
    op.create_index(
        "spans_service_name",
        "spans",
        ["project_id", "service_name", "name", "start_time"],
        postgresql_include=["trace_id"],
    )
    op.create_table(
        "span_operations",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("span_count", sa.BigInteger, nullable=False),
        sa.Column("error_count", sa.BigInteger, nullable=False),
        sa.Column("compacted", sa.Boolean, nullable=False),
        postgresql_partition_by="RANGE (minute)",
    )
    op.create_index("span_operations_project_minute", "span_operations", ["project_id", "minute"])
    op.create_index(
        "span_operations_uncompacted",
        "span_operations",
        ["minute"],
        postgresql_where=sa.text("NOT compacted"),
    )
    # Existing day partitions of spans get their catalog filled from the spans themselves.
    op.execute(
        """
        DO $$
        DECLARE day record;
        BEGIN
          FOR day IN
            SELECT substring(c.relname from 'spans_p(\\d{8})$') AS stamp
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = 'spans' AND c.relname ~ '^spans_p\\d{8}$'
          LOOP
            EXECUTE format(
              'CREATE TABLE IF NOT EXISTS %I PARTITION OF span_operations '
              'FOR VALUES FROM (%L) TO (%L)',
              'span_operations_p' || day.stamp,
              to_date(day.stamp, 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC',
              (to_date(day.stamp, 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC');
          END LOOP;
        END $$
        """
    )
    op.execute(
        """
        INSERT INTO span_operations
        SELECT project_id, date_trunc('minute', start_time, 'UTC'), service_name, name, kind,
               count(*), count(*) FILTER (WHERE status_code = 2), true
        FROM spans GROUP BY 1, 2, 3, 4, 5
        """
    )


def downgrade() -> None:
    op.drop_table("span_operations")
    op.drop_index("spans_service_name", table_name="spans")
    op.drop_index("spans_service_errors", table_name="spans")
    op.drop_index("spans_service_duration", table_name="spans")
