"""Customer-facing drafts (issue 16, Done-when 5): no label value reaches a draft unless allow-listed, and
allow-listed values arrive as bounded plain words (no markup, URL, newline or quote)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from service.comms import drafts

MARK = "Zq9"  # no template word contains it: its presence means a label value leaked
HOSTILE = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "https://evil.example/x?y=1",
        "line1\nline2\r\nline3",
        "postgresql-primary-0.shop.svc.cluster.local",
        "AKIAIOSFODNN7EXAMPLE",
        "sk_live_51Habcdefghijklmnop",
        "password=hunter2",
        "'\"`;--",
        "[click](javascript:alert(1))",
        "@channel <!here>",
    ]
)
VALUE = st.tuples(HOSTILE, st.text(max_size=80)).map(lambda p: f"{MARK}{p[0]}{p[1]}{MARK}")
LABELS = st.dictionaries(
    st.sampled_from(["component", "region", "namespace", "pod", "instance", "service", "token", "job"]),
    VALUE,
    max_size=8,
).map(lambda labels: {name: f"{name.upper()}{value}" for name, value in labels.items()})
FACTS = st.builds(
    drafts.Facts,
    severity=st.sampled_from(["critical", "warning", "high"]),
    started_at=st.just(datetime(2026, 12, 6, 9, 30, tzinfo=UTC)),
    labels=LABELS,
)


@given(FACTS, st.sampled_from(drafts.KINDS), st.sampled_from(drafts.STEPS))
def test_no_label_value_reaches_a_draft_without_the_allow_list(
    facts: drafts.Facts, kind: str, step: str
) -> None:
    text = drafts.draft(kind, step, facts).text
    assert MARK not in text
    for value in facts.labels.values():
        assert value not in text
    assert "some of our services" in text


@given(FACTS, st.sampled_from(drafts.KINDS), st.sampled_from(drafts.STEPS))
def test_allow_listed_values_are_plain_bounded_words(facts: drafts.Facts, kind: str, step: str) -> None:
    allowed = ("component", "region")
    draft = drafts.draft(kind, step, facts, allowed)
    for name, value in facts.labels.items():
        if name not in allowed:
            assert f"{name.upper()}{MARK}" not in draft.text  # not even cleaned
    for _name, shown in drafts.shown_labels(facts.labels, allowed):
        assert len(shown) <= drafts.VALUE_LIMIT
        assert not set(shown) & set("<>\"'`:/\\\n\r@[]()!;=?&")
    assert "\n" not in draft.title and "<" not in draft.text and "://" not in draft.text


def test_an_allow_listed_component_names_what_customers_feel() -> None:
    facts = drafts.Facts(
        severity="critical",
        started_at=datetime(2026, 12, 6, 9, 30, tzinfo=UTC),
        labels={"component": "Checkout API", "region": "eu-west-1", "namespace": "shop-internal"},
    )
    draft = drafts.draft("statuspage", "investigating", facts, ("component", "region"))
    assert draft.title == "Investigating: outage of Checkout API"
    assert "starting at 09:30 UTC on 06 Dec 2026" in draft.body and "region eu-west-1" in draft.body
    assert "shop-internal" not in draft.text
    resolved = drafts.draft("email", "resolved", facts, ())
    assert resolved.title == "Resolved: outage of some of our services"
