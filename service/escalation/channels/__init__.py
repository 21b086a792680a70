"""Channels: the senders that deliver one outbox entry each, one module per channel.

``log`` (always on), ``webhook`` (``REMEDIATOR_NOTIFY_WEBHOOK_URL``), ``slack``
(``REMEDIATOR_SLACK_WEBHOOK_URL``), ``pagerduty`` (``REMEDIATOR_PAGERDUTY_ROUTING_KEY``, and one
``pagerduty:NAME`` per ``REMEDIATOR_PAGERDUTY_ROUTING_KEYS`` entry) and ``slack_app``
(``REMEDIATOR_SLACK_BOT_TOKEN``: one message per incident, updated in place); ``registry``
builds the ones that are on. ``base`` holds the ``Notifier`` contract and ``http`` the HTTP delivery every
HTTP channel shares. What a channel sends is rendered by ``escalation.render`` (pure); a channel only sends.

A notifier raises ``errors.Transient`` (retry; ``delay`` from Retry-After) or ``errors.Permanent`` (give up
and record). Channels never write to the store — the outbox worker records what they raise — except
``slack_app``, which keeps where each incident's message is (its own table, ``slack_messages``).
"""
