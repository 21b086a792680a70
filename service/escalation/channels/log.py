"""The log channel (always on): the bundle as one structured log event, ``notify.bundle``."""

from __future__ import annotations

import structlog

from service.escalation import bundle
from service.escalation.channels import base
from service.records.outbox import Delivery

log = structlog.get_logger(__name__)


class LogNotifier:
    """Prints the bundle as a structured log event."""

    name = "log"

    async def send(self, delivery: Delivery) -> None:
        document = base.body(delivery)
        document["notification"] = document.pop("event")  # "event" is the log event's own name
        carried = base.bundle_of(delivery)
        findings = carried.findings if carried is not None else []
        if carried is not None and carried.drill:
            document["drill"] = "[DRILL]"  # a drill's notification says so in every line of the log
        log.info("notify.bundle", findings_table=bundle.findings_table(findings), **document)
