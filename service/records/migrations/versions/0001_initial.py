"""Initial schema: inbox, incidents, incident alerts, timeline, outbox, service state.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Create the tables of the walking skeleton."""
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("starts_at", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("alertname", sa.String(256), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("receiver", sa.String(256), nullable=False),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("truncated", sa.Integer, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("lease_until", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32)),
        sa.Column("incident_id", sa.String(32)),
        sa.Column("processed_at", sa.Float),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("fingerprint", "starts_at", "status", name="uq_inbox_episode_status"),
    )
    op.create_index("ix_inbox_state_id", "inbox", ["state", "id"])
    op.create_index("ix_inbox_fingerprint_id", "inbox", ["fingerprint", "id"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("open_key", sa.String(600), unique=True),
        sa.Column("target_kind", sa.String(64), nullable=False),
        sa.Column("target_namespace", sa.String(256), nullable=False),
        sa.Column("target_name", sa.String(512), nullable=False),
        sa.Column("target_selector", sa.Text),
        sa.Column("target_valid", sa.Boolean, nullable=False),
        sa.Column("target_error", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("runbook", sa.Text, nullable=False),
        sa.Column("mttr_target_s", sa.Float, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("escalation_level", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.Float, nullable=False),
        sa.Column("escalated_at", sa.Float),
        sa.Column("mitigated_at", sa.Float),
        sa.Column("resolved_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("bundle", sa.Text),
    )
    op.create_index("ix_incidents_opened", "incidents", ["opened_at", "id"])
    op.create_index("ix_incidents_state", "incidents", ["state"])
    op.create_table(
        "incident_alerts",
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("starts_at", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attached_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.String(40)),
        sa.PrimaryKeyConstraint("incident_id", "fingerprint", "starts_at"),
    )
    op.create_index("ix_incident_alerts_episode", "incident_alerts", ["fingerprint", "starts_at"])
    op.create_table(
        "timeline",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_timeline_incident", "timeline", ["incident_id", "id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False, unique=True),
        sa.Column("dedup_key", sa.String(200), nullable=False, unique=True),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "service_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop everything (the store is then empty)."""
    for table in ("service_state", "outbox", "timeline", "incident_alerts", "incidents", "inbox"):
        op.drop_table(table)
