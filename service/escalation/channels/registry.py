"""The channels that are on, built once at start from the settings, by outbox channel key: ``log``,
``webhook``, ``slack``, ``slack_app``, ``pagerduty`` and one ``pagerduty:NAME`` per named PagerDuty
service."""

from __future__ import annotations

import aiohttp

from service.escalation.channels import base, log, pagerduty, slack, slack_app, warroom, webhook
from service.records.store import Store
from service.settings import Settings


def build(
    settings: Settings, session: aiohttp.ClientSession, store: Store | None = None
) -> dict[str, base.Notifier]:
    """The notifiers of ``settings.notify_channels`` and of every named PagerDuty service, by key
    (``slack_app`` needs the ``store``: where each incident's message is)."""
    notifiers: dict[str, base.Notifier] = {"log": log.LogNotifier()}
    if settings.slack_bot_token is not None and store is not None:
        notifiers[slack_app.CHANNEL] = slack_app.from_settings(settings, session, store)
        if settings.warroom_on:  # the war rooms of major incidents, through the same Slack app
            notifiers[warroom.CHANNEL] = warroom.from_settings(settings, session, store)
    if settings.notify_webhook_url:
        token = settings.notify_webhook_token.get_secret_value() if settings.notify_webhook_token else None
        secret = settings.notify_webhook_secret
        notifiers["webhook"] = webhook.WebhookNotifier(
            session,
            settings.notify_webhook_url,
            token,
            secret=secret.get_secret_value().encode() if secret else None,
        )
    if settings.slack_webhook_url is not None:
        notifiers["slack"] = slack.SlackNotifier(session, settings.slack_webhook_url.get_secret_value())
    if settings.pagerduty_routing_key is not None:
        notifiers["pagerduty"] = pagerduty.PagerDutyNotifier(
            session,
            routing_key=settings.pagerduty_routing_key.get_secret_value(),
            url=settings.pagerduty_url,
            source=settings.base_url,
        )
    for service, key in settings.pagerduty_services.items():
        name = f"{pagerduty.CHANNEL}:{service}"
        notifiers[name] = pagerduty.PagerDutyNotifier(
            session,
            routing_key=key.get_secret_value(),
            url=settings.pagerduty_url,
            source=settings.base_url,
            name=name,
        )
    return notifiers
