"""The inbox's two claim indexes over undecided rows only (``WHERE state <> 'done'``).

Claims, the heartbeat, release and the backlog count only ever look for undecided rows. Over every row, each
alert decided at intake (unmatched) cost two index entries nobody reads, and the indexes grew with everything
retention keeps. Partial, they hold the backlog: an intake insert of a decided row maintains two indexes
(primary key, episode) instead of four.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

UNDECIDED = "state <> 'done'"


def upgrade() -> None:
    """Replace ``ix_inbox_state_id`` and ``ix_inbox_fingerprint_id`` by their partial forms."""
    op.drop_index("ix_inbox_state_id", table_name="inbox")
    op.drop_index("ix_inbox_fingerprint_id", table_name="inbox")
    for name, columns in (("state_id", ["state", "id"]), ("fingerprint_id", ["fingerprint", "id"])):
        op.create_index(
            f"ix_inbox_undecided_{name}",
            "inbox",
            columns,
            postgresql_where=sa.text(UNDECIDED),
            sqlite_where=sa.text(UNDECIDED),
        )


def downgrade() -> None:
    """Back to indexes over every row."""
    op.drop_index("ix_inbox_undecided_state_id", table_name="inbox")
    op.drop_index("ix_inbox_undecided_fingerprint_id", table_name="inbox")
    op.create_index("ix_inbox_state_id", "inbox", ["state", "id"])
    op.create_index("ix_inbox_fingerprint_id", "inbox", ["fingerprint", "id"])
