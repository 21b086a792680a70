"""The route table as data: ``REMEDIATOR_NOTIFY_ROUTES`` is parsed strictly, a mistake names the entry."""

from __future__ import annotations

import pytest

from service import errors
from service.model import routes


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("critical", "expected selector=channel"),
        ("=slack", "expected selector=channel"),
        ("critical=", "one or more channels"),
        ("critical=slack+", "one or more channels"),
        ("critical=email", "unknown channel 'email'"),
        ("crtical=slack", "unknown selector 'crtical'"),
        ("severity:critical=slack", "unknown selector"),
        ("rule:Redis_Failure=slack", "is not a rule name"),
        ("rule:=slack", "is not a rule name"),
        ("critical=slack;critical=pagerduty", "severity 'critical' appears twice"),
        ("rule:a=slack;rule:a=log", "rule 'a' appears twice"),
        ("*=log;*=slack", "'*' appears twice"),
    ],
)
def test_mistakes_stop_the_start_with_an_error_naming_the_setting_and_the_entry(text: str, why: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        routes.parse(text)
    message = str(caught.value)
    assert message.startswith("REMEDIATOR_NOTIFY_ROUTES: invalid entry")
    assert why in message
