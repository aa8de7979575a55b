"""Logs, metric series and points, error groups and events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONB = postgresql.JSONB
ARRAY = postgresql.ARRAY


def upgrade() -> None:
    op.create_table(
        "logs",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observed_time", sa.DateTime(timezone=True)),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("severity_number", sa.SmallInteger, nullable=False),
        sa.Column("severity_text", sa.Text, nullable=False),
        sa.Column("body", JSONB),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("attributes", JSONB, nullable=False),
        sa.Column("resource_attributes", JSONB, nullable=False),
        sa.Column("scope", JSONB, nullable=False),
        sa.Column("trace_id", sa.LargeBinary),
        sa.Column("span_id", sa.LargeBinary),
        sa.Column("flags", sa.BigInteger, nullable=False),
        sa.Column("event_name", sa.Text, nullable=False),
        sa.Column("dropped_attributes_count", sa.Integer, nullable=False),
        postgresql_partition_by="RANGE (time)",
    )
    op.create_index("logs_project_time", "logs", ["project_id", "time"])
    op.create_index("logs_service_time", "logs", ["project_id", "service_name", "time"])
    op.create_index(
        "logs_trace",
        "logs",
        ["project_id", "trace_id"],
        postgresql_where=sa.text("trace_id IS NOT NULL"),
    )
    op.execute(
        "CREATE INDEX logs_search ON logs USING gin (to_tsvector('simple'::regconfig, search_text))"
    )

    op.create_table(
        "metric_series",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("series_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("temporality", sa.SmallInteger, nullable=False),
        sa.Column("is_monotonic", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("attributes", JSONB, nullable=False),
        sa.Column("resource_attributes", JSONB, nullable=False),
        sa.Column("scope", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("project_id", "series_id"),
    )
    op.create_index("metric_series_name", "metric_series", ["project_id", "name"])

    op.create_table(
        "metric_points",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("series_id", sa.BigInteger, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True)),
        sa.Column("value", sa.Double),
        sa.Column("count", sa.BigInteger),
        sa.Column("sum", sa.Double),
        sa.Column("min", sa.Double),
        sa.Column("max", sa.Double),
        sa.Column("explicit_bounds", ARRAY(sa.Double)),
        sa.Column("bucket_counts", ARRAY(sa.BigInteger)),
        sa.Column("scale", sa.Integer),
        sa.Column("zero_count", sa.BigInteger),
        sa.Column("zero_threshold", sa.Double),
        sa.Column("positive_offset", sa.Integer),
        sa.Column("positive_bucket_counts", ARRAY(sa.BigInteger)),
        sa.Column("negative_offset", sa.Integer),
        sa.Column("negative_bucket_counts", ARRAY(sa.BigInteger)),
        sa.Column("quantiles", JSONB),
        sa.Column("exemplars", JSONB),
        sa.Column("flags", sa.BigInteger, nullable=False),
        postgresql_partition_by="RANGE (time)",
    )
    # One point per series and timestamp: a retried export is a no-op, not a double count.
    op.create_index(
        "metric_points_identity", "metric_points", ["project_id", "series_id", "time"], unique=True
    )

    op.create_table(
        "error_groups",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("culprit", sa.Text, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("regressed", sa.Boolean, nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("project_id", "fingerprint"),
        sa.CheckConstraint(
            "status IN ('unresolved', 'resolved', 'ignored')", name="error_groups_status"
        ),
    )
    op.create_index("error_groups_last_seen", "error_groups", ["project_id", "last_seen"])

    op.create_table(
        "error_events",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.LargeBinary, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("stacktrace", sa.Text, nullable=False),
        sa.Column("culprit", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("trace_id", sa.LargeBinary),
        sa.Column("span_id", sa.LargeBinary),
        sa.Column("attributes", JSONB, nullable=False),
        postgresql_partition_by="RANGE (time)",
    )
    op.create_index(
        "error_events_identity", "error_events", ["project_id", "event_id", "time"], unique=True
    )
    op.create_index(
        "error_events_group_time", "error_events", ["project_id", "fingerprint", "time"]
    )


def downgrade() -> None:
    for table in ("error_events", "error_groups", "metric_points", "metric_series", "logs"):
        op.drop_table(table)
