"""Escalation timers and acknowledgement: when the next level is due, who acknowledged.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    """Add ``next_escalation_at``, ``acked_at`` and ``acked_by`` to incidents."""
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("next_escalation_at", sa.Float))
        batch.add_column(sa.Column("acked_at", sa.Float))
        batch.add_column(sa.Column("acked_by", sa.String(128)))
    op.create_index("ix_incidents_next_escalation", "incidents", ["next_escalation_at"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_incidents_next_escalation", "incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("acked_by")
        batch.drop_column("acked_at")
        batch.drop_column("next_escalation_at")
