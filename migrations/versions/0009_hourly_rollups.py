"""Hourly span rollups: a day of dashboard reads in 24 rows per key, not 1,440.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

`span_rollups_hourly` holds, per project, hour, category and key, the merge of every
per-minute rollup row the compaction job has marked `compacted`: folding a minute's rows
into its hour and marking them happen in one transaction (app/workers/rollups.py), so at
any snapshot a compacted minute row is counted in its hour and an uncompacted one is not.
Long-window reads then sum the hours the window covers whole, the uncompacted minute rows
inside them, and the minute rows of its partial edge hours (app/query/span_stats.py).

Small (24 rows a day per key), so not partitioned: retention deletes by hour, as for
`slo_hours`. Rows are appended per compaction round and merged per key by a later round;
readers sum whatever rows exist. The upgrade folds the minute rows already compacted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "span_rollups_hourly",
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
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
    )
    op.create_index(
        "span_rollups_hourly_project_hour",
        "span_rollups_hourly",
        ["project_id", "category", "hour"],
    )
    op.create_index("span_rollups_hourly_hour", "span_rollups_hourly", ["hour"])
    # Inside whole hours a read takes only the minute rows not folded yet: this index
    # reads those alone, not every compacted row of the day to filter them out.
    op.create_index(
        "span_rollups_unfolded",
        "span_rollups",
        ["project_id", "category", "minute"],
        postgresql_where=sa.text("NOT compacted"),
    )
    # Minute rows compacted before this revision are folded into their hours here.
    op.execute(
        """
        WITH folded AS (
            SELECT date_trunc('hour', minute, 'UTC') AS hour,
                   project_id, category, service_name, model, provider, tool,
                   count, error_count,
                   duration_ms_sum, input_tokens, output_tokens, cache_read_tokens, cost_usd,
                   sketch_index, sketch_count
            FROM span_rollups WHERE compacted
        ),
        totals AS (
            SELECT hour, project_id, category, service_name, model, provider, tool,
                   sum(count) AS count, sum(error_count) AS error_count,
                   sum(duration_ms_sum) AS duration_ms_sum, sum(input_tokens) AS input_tokens,
                   sum(output_tokens) AS output_tokens,
                   sum(cache_read_tokens) AS cache_read_tokens, sum(cost_usd) AS cost_usd
            FROM folded GROUP BY hour, project_id, category, service_name, model, provider, tool
        ),
        buckets AS (
            SELECT hour, project_id, category, service_name, model, provider, tool,
                   b.idx, sum(b.cnt) AS cnt
            FROM folded, unnest(sketch_index, sketch_count) AS b(idx, cnt)
            GROUP BY hour, project_id, category, service_name, model, provider, tool, b.idx
        ),
        sketches AS (
            SELECT hour, project_id, category, service_name, model, provider, tool,
                   array_agg(idx ORDER BY idx) AS sketch_index,
                   array_agg(cnt ORDER BY idx) AS sketch_count
            FROM buckets GROUP BY hour, project_id, category, service_name, model, provider, tool
        )
        INSERT INTO span_rollups_hourly (
            project_id, hour, category, service_name, model, provider, tool, count,
            error_count, duration_ms_sum, input_tokens, output_tokens, cache_read_tokens,
            cost_usd, sketch_index, sketch_count
        )
        SELECT t.project_id, t.hour, t.category, t.service_name, t.model, t.provider, t.tool,
               t.count, t.error_count, t.duration_ms_sum, t.input_tokens, t.output_tokens,
               t.cache_read_tokens, t.cost_usd,
               coalesce(s.sketch_index, '{}'), coalesce(s.sketch_count, '{}')
        FROM totals AS t
        LEFT JOIN sketches AS s USING (hour, project_id, category, service_name, model,
                                       provider, tool)
        """
    )


def downgrade() -> None:
    op.drop_index("span_rollups_unfolded", table_name="span_rollups")
    op.drop_table("span_rollups_hourly")
