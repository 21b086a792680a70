"""Every findings round kept with its phase, the round each action acted on, and the rule intake matched.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Add ``findings.phase``, ``actions.round`` and ``inbox.rule``.

    Rows written before: round 1 was the diagnosis at opening (the default) and round 2 only ever the
    verification that mitigated; every action acted on round 1 when the incident has one."""
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("phase", sa.String(16), nullable=False, server_default="diagnosis"))
    op.execute(sa.text("UPDATE findings SET phase = 'verification' WHERE round > 1"))
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("round", sa.Integer))
    op.execute(
        sa.text(
            "UPDATE actions SET round = 1 WHERE EXISTS (SELECT 1 FROM findings"
            " WHERE findings.incident_id = actions.incident_id AND findings.round = 1)"
        )
    )
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("rule", sa.String(64)))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("rule")
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("round")
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("phase")
