"""Per-minute span rollups for dashboards; error events by time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "span_rollups",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("category", sa.SmallInteger, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("tool", sa.Text, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("error_count", sa.BigInteger, nullable=False),
        sa.Column("duration_ms_sum", sa.Double, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Double, nullable=False),
        sa.Column("sketch_index", postgresql.ARRAY(sa.Integer), nullable=False),
        sa.Column("sketch_count", postgresql.ARRAY(sa.BigInteger), nullable=False),
        sa.Column("compacted", sa.Boolean, nullable=False),
        postgresql_partition_by="RANGE (minute)",
    )
    op.create_index(
        "span_rollups_project_minute", "span_rollups", ["project_id", "category", "minute"]
    )
    op.create_index(
        "span_rollups_uncompacted",
        "span_rollups",
        ["minute"],
        postgresql_where=sa.text("NOT compacted"),
    )
    op.create_index("error_events_project_time", "error_events", ["project_id", "time"])


def downgrade() -> None:
    op.drop_index("error_events_project_time", table_name="error_events")
    op.drop_table("span_rollups")
