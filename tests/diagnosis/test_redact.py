"""Evidence hygiene: secrets never reach a human, and evidence stays within its bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.diagnosis import redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://app:s3cr3t-pw@db:5432/app", "s3cr3t-pw"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA"),
        ("connecting with password=hunter22 user=app", "hunter22"),
        ('{"api_key": "AKIAEXAMPLE123", "region": "eu"}', "AKIAEXAMPLE123"),
        ("requirepass sup3rsecret", "sup3rsecret"),
        ("DB_PASSWORD='quoted value'", "quoted value"),
        ("token: ghp_abcdef123456", "ghp_abcdef123456"),
    ],
)
def test_known_secret_shapes_are_redacted(text: str, secret: str) -> None:
    cleaned = redact.redact(text)
    assert secret not in cleaned
    assert redact.MASK in cleaned


def test_configured_secret_values_are_redacted_wherever_they_appear() -> None:
    assert redact.redact("log: connected as monitor with Zq9xLm4 ok", ["Zq9xLm4"]) == (
        "log: connected as monitor with [REDACTED] ok"
    )


def test_ordinary_text_is_left_alone() -> None:
    text = "GET /v1/health -> 503 in 12 ms; 3/3 pods ready; user=app db=shop host=db:5432"
    assert redact.redact(text) == text


@given(st.text(max_size=20_000), st.integers(min_value=256, max_value=8192))
def test_evidence_never_exceeds_its_bound(text: str, limit: int) -> None:
    cleaned = redact.clean(text, limit=limit)
    assert len(cleaned.encode("utf-8")) <= limit
    if len(text.encode("utf-8")) > limit:
        assert "truncated" in cleaned


def test_a_secret_cut_by_the_bound_does_not_leak_its_start() -> None:
    text = "x" * 100 + " password=abcdefghijklmnopqrstuvwxyz"
    assert "abcdef" not in redact.clean(text, limit=120)
