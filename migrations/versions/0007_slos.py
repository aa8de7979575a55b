"""SLOs and their good/total counts per minute and per hour.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSONB = postgresql.JSONB


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "slos",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.BigInteger,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        # The validated SLO body (sli, objective, window, policy, alerting): app/domain/slos.py.
        sa.Column("spec", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        # Minutes before this are counted (backfill done); the worker moves it forward.
        sa.Column("counted_from", sa.DateTime(timezone=True)),
        sa.Column("counted_until", sa.DateTime(timezone=True)),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True)),
        sa.Column("last_duration_ms", sa.Double),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("project_id", "name", name="slos_name"),
    )
    op.create_index("slos_service", "slos", ["project_id", "service"])
    # An SLO owns its burn-rate and policy alert rules.
    op.create_foreign_key(
        "alert_rules_slo", "alert_rules", "slos", ["slo_id"], ["id"], ondelete="CASCADE"
    )

    # Good and total events per SLO and minute, partitioned by day on `minute` like the
    # other time series; kept as long as the longest SLO window, whatever the spans' retention.
    op.create_table(
        "slo_minutes",
        sa.Column("slo_id", sa.BigInteger, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("good", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("slo_id", "minute"),
        postgresql_partition_by="RANGE (minute)",
    )
    # The same counts summed per hour, written with the minutes: a status reads whole hours
    # here and only the partial hours at a window's ends from slo_minutes, so a 30-day window
    # costs about 720 + 118 rows instead of 43,200 (measured in docs/benchmarks.md).
    op.create_table(
        "slo_hours",
        sa.Column("slo_id", sa.BigInteger, sa.ForeignKey("slos.id", ondelete="CASCADE")),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("good", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("slo_id", "hour"),
    )


def downgrade() -> None:
    op.drop_table("slo_hours")
    op.drop_table("slo_minutes")
    op.drop_constraint("alert_rules_slo", "alert_rules", type_="foreignkey")
    op.drop_table("slos")
