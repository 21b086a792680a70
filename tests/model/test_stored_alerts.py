"""Alerts read back from the store: those accepted before the intake limits existed are still loaded."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from service.model import alerts

BEFORE_LIMITS = {
    "status": "firing",
    "labels": {"alertname": "CoordinatorDown", "namespace": "n" * 5000, "bad\u0007name": "v"},
    "annotations": {"summary": "s" * 10_000},
    "startsAt": "2026-11-27T10:00:00Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus.example/graph",
    "fingerprint": "has space",
}


def test_an_alert_stored_before_the_limits_is_loaded_as_it_was_accepted() -> None:
    payload = json.dumps(BEFORE_LIMITS)
    with pytest.raises(ValidationError):
        alerts.Alert.model_validate_json(payload)  # intake would refuse it today
    alert = alerts.stored(payload)
    assert alert.name == "CoordinatorDown"
    assert len(alert.labels["namespace"]) == 5000
    assert alert.episode[0] == "has space"
    assert alert.starts_at.isoformat() == "2026-11-27T10:00:00+00:00"


def test_a_stored_alert_within_the_limits_is_validated_as_intake_does() -> None:
    payload = json.dumps({**BEFORE_LIMITS, "labels": {"alertname": "X"}, "fingerprint": "f00d"})
    assert alerts.stored(payload) == alerts.Alert.model_validate_json(payload)


def test_a_stored_payload_that_was_never_an_alert_is_still_an_error() -> None:
    with pytest.raises(ValidationError):
        alerts.stored(json.dumps({"status": "firing"}))
