"""Log records get a content identity, so a retried export is stored once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites nothing; older rows keep NULL, which the
    # unique index does not compare.
    op.add_column("logs", sa.Column("log_id", sa.LargeBinary))
    op.create_index("logs_identity", "logs", ["project_id", "log_id", "time"], unique=True)


def downgrade() -> None:
    op.drop_index("logs_identity", table_name="logs")
    op.drop_column("logs", "log_id")
