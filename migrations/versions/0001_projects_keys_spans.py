"""Projects, API keys, and spans partitioned by day.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.BigInteger,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("key_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("api_keys_project", "api_keys", ["project_id"])
    op.create_table(
        "spans",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("trace_id", sa.LargeBinary, nullable=False),
        sa.Column("span_id", sa.LargeBinary, nullable=False),
        sa.Column("parent_span_id", sa.LargeBinary),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ns", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=False),
        sa.Column("status_message", sa.Text, nullable=False),
        sa.Column("gen_ai_provider", sa.Text),
        sa.Column("gen_ai_model", sa.Text),
        sa.Column("gen_ai_operation", sa.Text),
        sa.Column("gen_ai_input_tokens", sa.BigInteger),
        sa.Column("gen_ai_output_tokens", sa.BigInteger),
        sa.Column("gen_ai_cache_read_tokens", sa.BigInteger),
        sa.Column("gen_ai_tool_name", sa.Text),
        sa.Column("cost_usd", sa.Double),
        sa.Column("trace_state", sa.Text, nullable=False),
        sa.Column("flags", sa.BigInteger, nullable=False),
        sa.Column("attributes", postgresql.JSONB, nullable=False),
        sa.Column("resource_attributes", postgresql.JSONB, nullable=False),
        sa.Column("scope", postgresql.JSONB, nullable=False),
        sa.Column("events", postgresql.JSONB, nullable=False),
        sa.Column("links", postgresql.JSONB, nullable=False),
        sa.Column("dropped_attributes_count", sa.Integer, nullable=False),
        sa.Column("dropped_events_count", sa.Integer, nullable=False),
        sa.Column("dropped_links_count", sa.Integer, nullable=False),
        sa.Column("is_root", sa.Boolean, nullable=False),
        postgresql_partition_by="RANGE (start_time)",
    )
    op.create_index(
        "spans_identity",
        "spans",
        ["project_id", "trace_id", "span_id", "start_time"],
        unique=True,
    )
    op.create_index("spans_service_time", "spans", ["project_id", "service_name", "start_time"])


def downgrade() -> None:
    op.drop_table("spans")
    op.drop_table("api_keys")
    op.drop_table("projects")
