"""The one Retry-After parser (both RFC 9110 forms) and the retry backoff with full jitter."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.model import retry

NOW = datetime(2026, 12, 6, 8, 0, 0, tzinfo=UTC).timestamp()


def http_date(offset_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset_s, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("86400", retry.CAP_S),  # a day: capped
        ("9" * 40, retry.CAP_S),
        ("Sun, 06 Dec 2026 08:02:00 GMT", 120.0),  # IMF-fixdate
        ("Sunday, 06-Dec-26 08:02:00 GMT", 120.0),  # obsolete RFC 850
        ("Sun Dec  6 08:02:00 2026", 120.0),  # obsolete asctime
        ("Sun, 06 Dec 2026 07:00:00 GMT", 0.0),  # in the past: now
        ("Mon, 07 Dec 2026 08:00:00 GMT", retry.CAP_S),
    ],
)
def test_both_forms_are_read(header: str, seconds: float) -> None:
    assert retry.retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    "header", [None, "", "  ", "-5", "1.5", "1e3", "soon", "Sun, 32 Dec 2026 08:02:00 GMT", "0x10"]
)
def test_garbage_and_negative_are_none(header: str | None) -> None:
    assert retry.retry_after(header, now=NOW) is None


@given(st.integers(min_value=-3600, max_value=3 * 3600))
def test_an_http_date_is_the_time_until_it_bounded(offset: int) -> None:
    assert retry.retry_after(http_date(offset), now=NOW) == min(max(0, offset), retry.CAP_S)


@given(st.text(max_size=40))
def test_any_header_gives_none_or_a_bounded_delay(header: str) -> None:
    delay = retry.retry_after(header, now=NOW)
    assert delay is None or 0.0 <= delay <= retry.CAP_S


@given(
    attempt=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0.01, max_value=60),
    cap=st.floats(min_value=1, max_value=600),
    r=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_jitter_stays_below_the_capped_exponential_step(
    attempt: int, base: float, cap: float, r: float
) -> None:
    step = min(cap, base * 2.0 ** (attempt - 1))
    delay = retry.backoff(attempt, base, cap, rand=lambda: r)
    assert 0.0 <= delay < step
    assert delay == pytest.approx(step * r)


def test_jitter_spreads_retries_that_failed_together() -> None:
    delays = [retry.backoff(4, 1.0, 300.0) for _ in range(200)]  # step: 8 s
    assert all(0.0 <= d < 8.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 150  # not one thundering instant
    assert min(delays) < 2.0 and max(delays) > 6.0


def test_a_servers_retry_after_wins_over_our_cap() -> None:
    assert retry.backoff(1, 1.0, 300.0, retry_after=1800.0) == 1800.0
    assert retry.backoff(1, 1.0, 300.0, retry_after=0.0) == 0.0
    assert retry.backoff(9, 1.0, 300.0, retry_after=99_999.0) == retry.CAP_S
