"""War rooms, customer communication drafts, and runbook drills.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    """Add ``war_rooms``, ``comms``, ``inbox.drill``, ``incidents.drill``, ``incidents.customer_impact``."""
    op.create_table(
        "war_rooms",
        sa.Column("incident_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("channel_id", sa.String(32)),
        sa.Column("url", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("archive_due_at", sa.Float),
        sa.Column("archived_at", sa.Float),
    )
    op.create_table(
        "comms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(128)),
        sa.Column("published_by", sa.String(128)),
        sa.Column("published_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("incident_id", "kind", "step", name="uq_comms_step"),
    )
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("drill", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("drill", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("customer_impact", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("customer_impact")
        batch.drop_column("drill")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("drill")
    op.drop_table("comms")
    op.drop_table("war_rooms")
