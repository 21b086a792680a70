"""The clock from the alert, linked incidents, the page deadline and the rule's own severity.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    """Add ``incidents.started_at``, ``caused_by``, ``page_due_at`` and ``root_severity``.

    Incidents opened before have no alert start on record: their clock keeps counting from the opening."""
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("started_at", sa.Float))
        batch.add_column(sa.Column("caused_by", sa.String(32)))
        batch.add_column(sa.Column("page_due_at", sa.Float))
        batch.add_column(sa.Column("root_severity", sa.String(16)))
    op.execute(sa.text("UPDATE incidents SET started_at = opened_at, root_severity = severity"))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("incidents") as batch:
        for name in ("root_severity", "page_due_at", "caused_by", "started_at"):
            batch.drop_column(name)
