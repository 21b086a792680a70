"""The action journal: every action written as intent before it runs and as result after.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    """Create ``actions``."""
    op.create_table(
        "actions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("safety", sa.String(8), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("guard", sa.String(32)),
        sa.Column("reason", sa.Text),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("approver", sa.String(128)),
        sa.Column("request", sa.Text),
        sa.Column("result", sa.Text),
    )
    op.create_index("ix_actions_incident", "actions", ["incident_id", "requested_at"])
    op.create_index("ix_actions_status", "actions", ["status"])


def downgrade() -> None:
    """Drop the journal."""
    op.drop_table("actions")
