"""An index on ``incidents.caused_by``: every escalation lists the incidents linked to it (its effects), which
without it read the whole table.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    """Add ``ix_incidents_caused_by``."""
    op.create_index("ix_incidents_caused_by", "incidents", ["caused_by"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_incidents_caused_by", table_name="incidents")
