"""Alerting: rules, alert instances, silences, channels, notification groups and the outbox.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSONB = postgresql.JSONB
ARRAY = postgresql.ARRAY


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.BigInteger,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        # The validated channel body (url, headers, grouping): app/domain/channels.py.
        sa.Column("spec", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("project_id", "name", name="channels_name"),
        sa.CheckConstraint("type IN ('webhook', 'slack', 'alertmanager')", name="channels_type"),
    )

    op.create_table(
        "alert_rules",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.BigInteger,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("signal", sa.Text, nullable=False),
        # The validated rule body (query, condition, for, ...): app/domain/alert_rules.py.
        sa.Column("spec", JSONB, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        # Set on the rules every project gets (e.g. 'error_new_group') and on rules an SLO
        # owns ('slo_burn_rate'); such rules can be disabled but not deleted through the API.
        sa.Column("builtin", sa.Text),
        sa.Column("slo_id", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True)),
        sa.Column("last_duration_ms", sa.Double),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("project_id", "name", name="alert_rules_name"),
        sa.CheckConstraint(
            "signal IN ('spans', 'logs', 'metrics', 'errors', 'slo')", name="alert_rules_signal"
        ),
    )
    # One built-in rule of each kind per project (and per SLO for SLO-owned rules).
    op.create_index(
        "alert_rules_builtin",
        "alert_rules",
        ["project_id", "builtin", sa.text("coalesce(slo_id, 0)")],
        unique=True,
        postgresql_where=sa.text("builtin IS NOT NULL"),
    )
    op.create_index("alert_rules_due", "alert_rules", ["last_evaluated_at"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.BigInteger, nullable=False),
        # SET NULL: a deleted rule's alerts are resolved first, and stay listed a while.
        sa.Column("rule_id", sa.BigInteger, sa.ForeignKey("alert_rules.id", ondelete="SET NULL")),
        sa.Column("rule_name", sa.Text, nullable=False),
        # Hash of the label set (16 hex chars): one live alert per rule and label set.
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("labels", JSONB, nullable=False),
        sa.Column("annotations", JSONB, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("active_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        # First evaluation at which the condition was false while firing (keep_firing_for).
        sa.Column("keep_firing_since", sa.DateTime(timezone=True)),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'firing', 'resolved')", name="alerts_state"),
    )
    op.create_index(
        "alerts_live",
        "alerts",
        ["rule_id", "fingerprint"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved'"),
    )
    op.create_index("alerts_project_state", "alerts", ["project_id", "state", "active_at"])
    op.create_index("alerts_resolved_at", "alerts", ["resolved_at"])

    op.create_table(
        "silences",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.BigInteger,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # Optional; configuration files (`apply -f`) address silences by name.
        sa.Column("name", sa.Text),
        sa.Column("matchers", JSONB, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index(
        "silences_name",
        "silences",
        ["project_id", "name"],
        unique=True,
        postgresql_where=sa.text("name IS NOT NULL"),
    )
    op.create_index("silences_project_ends", "silences", ["project_id", "ends_at"])

    # Alertmanager's aggregation groups, one per channel and group key, kept in the
    # database so a restart neither loses a group_wait timer nor re-sends a notification.
    op.create_table(
        "notification_groups",
        sa.Column(
            "channel_id",
            sa.BigInteger,
            sa.ForeignKey("channels.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("group_labels", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_flush_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_notified_at", sa.DateTime(timezone=True)),
        # Alert ids that the last notification announced as firing.
        sa.Column(
            "notified_firing",
            ARRAY(sa.BigInteger),
            nullable=False,
            server_default=sa.text("'{}'::bigint[]"),
        ),
        sa.PrimaryKeyConstraint("channel_id", "group_key"),
    )

    # The outbox: written in the transaction that decides to notify, delivered by a worker.
    op.create_table(
        "notifications",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column(
            "channel_id",
            sa.BigInteger,
            sa.ForeignKey("channels.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("group_key", sa.Text, nullable=False),
        # pending → sent | failed (gave up) | superseded (a newer one of its group replaced it)
        sa.Column("status", sa.Text, nullable=False),
        # The body exactly as it is sent: json (not jsonb) keeps its key order.
        sa.Column("payload", postgresql.JSON, nullable=False),
        # Alerts this notification announces as resolved: a newer notification of the
        # group that supersedes it before delivery carries them on, so no resolve is lost.
        sa.Column(
            "resolved_alert_ids",
            ARRAY(sa.BigInteger),
            nullable=False,
            server_default=sa.text("'{}'::bigint[]"),
        ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        # A process that took the row to deliver it holds it until then.
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'superseded')", name="notifications_status"
        ),
    )
    op.create_index(
        "notifications_due",
        "notifications",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("notifications_group", "notifications", ["channel_id", "group_key", "status"])
    op.create_index("notifications_project", "notifications", ["project_id", "created_at"])


def downgrade() -> None:
    for table in (
        "notifications",
        "notification_groups",
        "silences",
        "alerts",
        "alert_rules",
        "channels",
    ):
        op.drop_table(table)
