"""The Slack app's one message per incident: where it was posted, so later events update it in place.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    """Add ``slack_messages`` (incident id → channel and ``ts`` of its message)."""
    op.create_table(
        "slack_messages",
        sa.Column("incident_id", sa.String(32), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("slack_messages")
