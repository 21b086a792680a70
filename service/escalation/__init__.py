"""Escalation: the bundle (pure rendering) and the notifiers that deliver it through the outbox."""
