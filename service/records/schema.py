"""Table definitions (SQLAlchemy Core) of the store; migrations in ``migrations/`` create them.

Times are stored as UTC epoch seconds (float) so that SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

#: Every alert as received, one row per (fingerprint, startsAt, status): the durable queue of work.
inbox = sa.Table(
    "inbox",
    metadata,
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
    sa.Column("rule", sa.String(64)),  # the rule intake matched (None: unmatched, resolved, or stored before)
    sa.Column("drill", sa.Boolean, nullable=False, server_default=sa.false()),  # a runbook drill's alert
    sa.UniqueConstraint("fingerprint", "starts_at", "status", name="uq_inbox_episode_status"),
)

#: One rule acting on one target. ``open_key`` is set while unresolved, so at most one is open per pair.
incidents = sa.Table(
    "incidents",
    metadata,
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
    sa.Column("opened_by", sa.Integer),  # the inbox row that opened it (and owns its first diagnosis)
    sa.Column("next_escalation_at", sa.Float),  # when the next escalation level is due (None: no timer)
    sa.Column("acked_at", sa.Float),
    sa.Column("acked_by", sa.String(128)),
    sa.Column("started_at", sa.Float),  # earliest startsAt of its alerts: MTTR counts from here
    sa.Column("caused_by", sa.String(32)),  # the open incident it was linked to when it opened
    sa.Column("page_due_at", sa.Float),  # while an action verifies: page then unless mitigated first
    sa.Column("root_severity", sa.String(16)),  # the rule's own severity (``severity`` follows the alerts)
    sa.Column("drill", sa.Boolean, nullable=False, server_default=sa.false()),  # opened by a runbook drill
    sa.Column("customer_impact", sa.Boolean, nullable=False, server_default=sa.false()),  # the rule's flag
)

#: What the probes found, per round: numbered 1, 2, … per incident, each with its phase (``diagnosis`` at
#: opening, ``re-diagnosis`` when it ran again, ``verification`` after an action). Every round is kept.
findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("phase", sa.String(16), nullable=False, server_default="diagnosis"),
    sa.Column("probe_id", sa.String(64), nullable=False),
    sa.Column("probe", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("facts", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

#: The alert episodes attached to an incident.
incident_alerts = sa.Table(
    "incident_alerts",
    metadata,
    sa.Column("incident_id", sa.String(32), nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("starts_at", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("attached_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.String(40)),
    sa.PrimaryKeyConstraint("incident_id", "fingerprint", "starts_at"),
)

#: What happened to an incident, in order.
timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

#: Notifications to deliver, written in the same transaction as the change they announce.
outbox = sa.Table(
    "outbox",
    metadata,
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

#: Service-wide switches and counters that must survive restarts (e.g. the kill switch).
service_state = sa.Table(
    "service_state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: The action journal: intent before an action runs, result after (DESIGN §3.7).
actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("incident_id", sa.String(32), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("safety", sa.String(8), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("guard", sa.String(32)),
    sa.Column("reason", sa.Text),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("approver", sa.String(128)),
    sa.Column("request", sa.Text),
    sa.Column("result", sa.Text),
    sa.Column("round", sa.Integer),  # the findings round the action acted on (None: no probe ran)
)

#: the Slack app's message of each incident (``records.slack_messages``): posted once, then updated in place
slack_messages = sa.Table(
    "slack_messages",
    metadata,
    sa.Column("incident_id", sa.String(32), primary_key=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: The war room of an incident (a Slack channel): created once, archived after the incident resolves.
war_rooms = sa.Table(
    "war_rooms",
    metadata,
    sa.Column("incident_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("channel_id", sa.String(32)),  # None until Slack created it
    sa.Column("url", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("archive_due_at", sa.Float),
    sa.Column("archived_at", sa.Float),
)

#: Customer communication: one draft per incident, kind (statuspage, email) and step (investigating,
#: identified, monitoring, resolved); published at most once (``state``), by a human or automatically.
comms = sa.Table(
    "comms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("step", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # draft | published
    sa.Column("external_id", sa.String(128)),  # e.g. the Statuspage incident id
    sa.Column("published_by", sa.String(128)),
    sa.Column("published_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("incident_id", "kind", "step", name="uq_comms_step"),
)

sa.Index("ix_incidents_caused_by", incidents.c.caused_by)
sa.Index("ix_outbox_incident", outbox.c.incident_id)
sa.Index("ix_actions_incident", actions.c.incident_id, actions.c.requested_at)
sa.Index("ix_actions_status", actions.c.status)
#: The predicate of the inbox's partial indexes: claims only ever look for undecided rows, so a row decided at
#: intake (unmatched) adds no entry to them, and they stay the size of the backlog, not of all that retention
#: keeps.
#: A query that should use them states it literally (``inbox.undecided``): neither planner matches a bound
#: value against an index's WHERE.
INBOX_UNDECIDED = "state <> 'done'"


def _undecided_index(name: str, *columns: sa.Column[Any]) -> sa.Index:
    where = sa.text(INBOX_UNDECIDED)
    return sa.Index(name, *columns, postgresql_where=where, sqlite_where=where)


_undecided_index("ix_inbox_undecided_state_id", inbox.c.state, inbox.c.id)
_undecided_index("ix_inbox_undecided_fingerprint_id", inbox.c.fingerprint, inbox.c.id)
sa.Index("ix_incidents_opened", incidents.c.opened_at, incidents.c.id)
sa.Index("ix_incidents_state", incidents.c.state)
sa.Index("ix_incidents_next_escalation", incidents.c.next_escalation_at)
sa.Index("ix_incident_alerts_episode", incident_alerts.c.fingerprint, incident_alerts.c.starts_at)
sa.Index("ix_timeline_incident", timeline.c.incident_id, timeline.c.id)
sa.Index("ix_findings_incident", findings.c.incident_id, findings.c.round, findings.c.id)
sa.Index("ix_outbox_due", outbox.c.state, outbox.c.next_attempt_at)
