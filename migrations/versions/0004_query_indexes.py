"""Indexes for trace and log search, and a tie-breaking id on logs for keyset paging.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

`logs.id` comes from a sequence default rather than an identity column: PostgreSQL 15/16
cannot add an identity column to a partitioned table that has partitions. It is not
declared NOT NULL either: the writer's retry path stages rows in `CREATE TEMP TABLE ...
(LIKE logs)`, which copies NOT NULL (but neither defaults nor CHECK constraints), and
COPYs them there without an id; the CHECK below gives the same guarantee on `logs`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
# 0010 (span rollups) also revises 0002; chained after it to keep one head.
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only a tie-breaker between logs of the same microsecond; a cache keeps concurrent
    # writers off one shared counter (ids then interleave across sessions, harmlessly).
    op.execute("CREATE SEQUENCE logs_id_seq CACHE 100")
    op.execute("ALTER TABLE logs ADD COLUMN id bigint DEFAULT nextval('logs_id_seq')")
    op.execute("ALTER SEQUENCE logs_id_seq OWNED BY logs.id")
    op.execute("ALTER TABLE logs ADD CONSTRAINT logs_id_present CHECK (id IS NOT NULL)")
    # The log search order, newest first: (time, id) after the project.
    op.drop_index("logs_project_time", table_name="logs")
    op.create_index("logs_project_time_id", "logs", ["project_id", "time", "id"])

    # Trace search walks root spans newest first: (start_time, trace_id) is a trace's position.
    op.create_index(
        "spans_roots_time",
        "spans",
        ["project_id", "start_time", "trace_id"],
        postgresql_where=sa.text("is_root"),
    )
    # A trace with several parentless spans is listed once, at its earliest root: this
    # answers "is there an earlier root of this trace?" from the index alone.
    op.create_index(
        "spans_roots_trace",
        "spans",
        ["project_id", "trace_id", "start_time", "span_id"],
        postgresql_where=sa.text("is_root"),
    )
    # Spans of a project in a time window: the services list, and span filters that no
    # other index serves (name, status, duration) when they match few spans.
    op.create_index("spans_project_time", "spans", ["project_id", "start_time"])
    # attr.<key>=<value> filters are jsonb containment (@>), which jsonb_path_ops serves.
    op.execute("CREATE INDEX spans_attributes ON spans USING gin (attributes jsonb_path_ops)")


def downgrade() -> None:
    op.drop_index("spans_attributes", table_name="spans")
    op.drop_index("spans_project_time", table_name="spans")
    op.drop_index("spans_roots_trace", table_name="spans")
    op.drop_index("spans_roots_time", table_name="spans")
    op.drop_index("logs_project_time_id", table_name="logs")
    op.create_index("logs_project_time", "logs", ["project_id", "time"])
    op.execute("ALTER TABLE logs DROP CONSTRAINT logs_id_present")
    op.execute("ALTER TABLE logs DROP COLUMN id")  # drops the owned sequence too
