"""An index on ``outbox.incident_id``: retention deletes an incident's notifications and the incident detail
lists them (``outbox.for_incident``); without it both read the whole outbox.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    """Add ``ix_outbox_incident``."""
    op.create_index("ix_outbox_incident", "outbox", ["incident_id"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_outbox_incident", table_name="outbox")
