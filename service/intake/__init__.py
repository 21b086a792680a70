"""Intake: the HTTP edge — webhook, auth, limits, the read API, health and metrics."""
