"""Findings of diagnosis, and which inbox row opened an incident (so a crashed diagnosis resumes).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Add ``incidents.opened_by`` and the ``findings`` table."""
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("opened_by", sa.Integer))
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("probe_id", sa.String(64), nullable=False),
        sa.Column("probe", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_findings_incident", "findings", ["incident_id", "round", "id"])


def downgrade() -> None:
    """Drop the findings and the column."""
    op.drop_table("findings")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("opened_by")
