"""Evidence hygiene: secrets never reach a human, and evidence stays within its bound."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
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


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "MIIEowIBAAKCAQEAw5N1dfj0cRzQH8kq2Y"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"user token {JWT} expired", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
        (f"user token {JWT} expired", "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"),
        ("aws: using key AKIAIOSFODNN7EXAMPLE in eu-west-1", "IOSFODNN7EXAMPLE"),
        ("session ASIAQWERTYUIOPASDFGH", "QWERTYUIOPASDFGH"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ('{"SecretAccessKey": "wJalrXUtnFEMI\\"K7MDENG", "Region": "eu"}', "K7MDENG"),
        (f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n", PEM_BODY),
        (f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----", PEM_BODY),
        (
            f"-----BEGIN ENCRYPTED PRIVATE KEY-----\\n{PEM_BODY}\\n-----END ENCRYPTED PRIVATE KEY-----",
            PEM_BODY,
        ),
        (f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\nb3BlbnNzaC1rZXktdjEAAAAA", "b3BlbnNzaC1rZXkt"),
        ('{"Authorization": "Bearer abc", "x": 1}', "abc"),
        ('{"headers": {"authorization":"Basic dXNlcjpwYXNz"}}', "dXNlcjpwYXNz"),
        ("PROXY-AUTHORIZATION: Negotiate YIIabc\nnext: line", "YIIabc"),
        ("GET /?authorization=opaque-value HTTP/1.1", "opaque-value"),
        ("X-Api-Key: k3y-v4lue", "k3y-v4lue"),
        ("x-auth-token: t0ken-v4lue", "t0ken-v4lue"),
        ('127.0.0.1:6379> CONFIG GET requirepass\n1) "requirepass"\n2) "hunter22"', "hunter22"),
        ("redis://:p@ss-w0rd@cache:6379/0", "ss-w0rd"),
    ],
)
def test_more_secret_shapes_are_redacted(text: str, secret: str) -> None:
    cleaned = redact.redact(text)
    assert secret not in cleaned
    assert redact.MASK in cleaned


def test_what_is_not_a_secret_stays_readable() -> None:
    text = (
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        "authorization failed for user bob; role AROAEXAMPLEEXAMPLE12; eyJ is not a token"
    )
    assert redact.redact(text) == text


def test_a_redis_key_name_is_not_taken_for_its_password() -> None:
    text = "CONFIG GET masterauth\n1) masterauth\n2) hunter22"
    assert redact.redact(text) == "CONFIG GET masterauth\n1) masterauth\n2) [REDACTED]"


def test_one_mask_stands_for_overlapping_findings() -> None:
    text = f"Authorization: Bearer {JWT}\n"
    assert redact.redact(text, [JWT[:20]]) == "Authorization: [REDACTED]\n"


def test_facts_are_redacted_and_bounded_but_keep_their_shape() -> None:
    facts = {
        "reason": "auth failed for postgresql://app:s3cr3t-pw@db/app",
        "status_code": 401,
        "reachable": True,
        "latency_ms": 12.5,
        "missing": None,
        "latest": [{"message": "using password=hunter22", "count": 3}, ("Zq9xLm4", 1)],
        "body": "x" * 10_000,
    }
    cleaned = redact.facts(facts, ["Zq9xLm4"])
    assert cleaned["reason"] == "auth failed for postgresql://app:[REDACTED]@db/app"
    assert (cleaned["status_code"], cleaned["reachable"], cleaned["latency_ms"], cleaned["missing"]) == (
        401,
        True,
        12.5,
        None,
    )
    assert cleaned["latest"] == [{"message": "using password=[REDACTED]", "count": 3}, ["[REDACTED]", 1]]
    assert len(cleaned["body"].encode()) <= redact.FACT_STRING_BYTES
    assert "truncated" in cleaned["body"]
    assert facts["latest"][0] == {
        "message": "using password=hunter22",
        "count": 3,
    }  # the input is not changed


def test_facts_nested_deeper_than_the_recursion_limit() -> None:
    deep: list[object] = ["password=hunter22"]
    for _ in range(5000):
        deep = [deep]
    cleaned = redact.facts({"deep": deep})
    for _ in range(5002):  # the dict, 5001 lists, the string
        cleaned = cleaned["deep"] if isinstance(cleaned, dict) else cleaned[0]
    assert cleaned == "password=[REDACTED]"


# A secret straddling the place where `clean` cuts must not show its start. `clean` redacts `limit`
# characters plus a margin, so the secret is placed before, across and after both edges.
STRADDLING = [
    ("configured", "Zq9xLm4-configured-secret-value", "Zq9x"),
    ("pair", "password=hunter22-very-long-value", "hunter"),
    ("jwt", JWT, "eyJhbGci"),
    ("pem", f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}{PEM_BODY}\n-----END RSA PRIVATE KEY-----", "MIIE"),
    ("url", "postgresql://app:s3cr3t-pw@db:5432/app", "s3cr"),
    ("bearer", "Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "abcd"),
    ("aws", "AKIAIOSFODNN7EXAMPLE", "IOSF"),
]


@pytest.mark.parametrize(("shape", "secret", "fragment"), STRADDLING, ids=[s[0] for s in STRADDLING])
@given(before=st.integers(min_value=0, max_value=300), limit=st.integers(min_value=64, max_value=256))
def test_clean_never_shows_the_start_of_a_secret_it_cut(
    shape: str, secret: str, fragment: str, before: int, limit: int
) -> None:
    for at in (before, limit - 40 + before % 80, limit + redact.MARGIN - 40 + before % 80):
        text = "." * at + " " + secret + " " + "." * 300
        cleaned = redact.clean(text, limit=limit, secrets=["Zq9xLm4-configured-secret-value"])
        assert fragment not in cleaned, (shape, at)
        assert len(cleaned.encode("utf-8")) <= limit


def test_clean_redacts_what_it_shows_and_marks_the_cut() -> None:
    text = "GET /x?token=abc123 -> 503\n" + "y" * 10_000
    assert redact.clean(text, limit=100) == (
        "GET /x?token=[REDACTED] -> 503\n" + "y" * 33 + "\n…[truncated 9963 of 10027 bytes]"
    )


# Adversarial shapes: each once made the old patterns quadratic or worse (16 KB of 'a' took 12 s,
# 4 KB of 'password' 45 s). Any linear implementation redacts 1 MB of them in ~0.05–0.3 s.
ADVERSARIAL = [
    "a",
    "a=",
    "password",
    "Bearer ",
    "://",
    ":@",
    "a://:",
    "-----BEGIN RSA PRIVATE KEY-----",
    "eyJ.",
    "eyJaaaaaaaaa.",
    '{"token":',
    'password="',
    "Authorization:",
    "requirepass ",
    "AKIA",
    " ",
]
ONE_MB = 1_000_000
BOUND_S = 1.5  # CPU seconds, generous for a shared 2-core machine: ~5x what the slowest shape takes


def _cpu_seconds(call: Callable[[], object]) -> float:
    """CPU time, not wall time: other processes on a shared machine must not fail the test."""
    started = time.process_time()
    call()
    return time.process_time() - started


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("unit", ADVERSARIAL)
def test_one_megabyte_of_adversarial_text_is_redacted_in_linear_time(unit: str) -> None:
    text = _repeat(unit, ONE_MB)
    assert _cpu_seconds(lambda: redact.redact(text, ["Zq9xLm4"])) < BOUND_S
    assert _cpu_seconds(lambda: redact.clean(text, limit=4096)) < BOUND_S


@settings(max_examples=20, deadline=None)
@given(
    st.text(alphabet="a_.-:=@/ \"'{}eyJABCDKIA-\n\\", min_size=1, max_size=20)
    | st.text(min_size=1, max_size=20)
)
def test_redaction_time_is_linear_for_any_repeated_pattern(unit: str) -> None:
    text = _repeat(unit, ONE_MB)
    assert _cpu_seconds(lambda: redact.redact(text)) < BOUND_S
    cleaned = ""

    def run_clean() -> None:
        nonlocal cleaned
        cleaned = redact.clean(text, limit=4096)

    assert _cpu_seconds(run_clean) < BOUND_S
    assert len(cleaned.encode("utf-8")) <= 4096


FRAGMENTS = [
    "password",
    "token",
    "Authorization",
    "Bearer ",
    "basic\t",
    "requirepass",
    "masterauth",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    "eyJ",
    "AKIA",
    "ASIA",
    "://",
    "@",
    "=",
    ":",
    '"',
    "'",
    " ",
    "\n",
    "1) ",
    "IOSFODNN7EXAMPLE",
    "abcdefgh12",
    ".",
    "svc-0001",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6), max_size=12).map("".join))
def test_the_quick_precheck_never_changes_what_is_redacted(text: str) -> None:
    """Texts without a separator, a space, a PEM fence or a token prefix skip the eight rules: the masks
    must be exactly those the rules give when every rule runs."""
    spans = [m.span(m.lastindex or 0) for rule in redact._RULES for m in rule.finditer(text)]
    assert redact.redact(text) == redact._masked(text, spans, len(text))
