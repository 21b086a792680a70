"""Escalation: the bundle and its renderings (``render/``, pure), the channels that send them (``channels/``)
through the outbox worker, and the route table applied to the channels that are on."""
