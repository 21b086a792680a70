"""Alertmanager matcher syntax and semantics, as a rule author sees them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.matching import matchers

LABELS = {"alertname": "CoordinatorDown", "severity": "critical", "namespace": "shop"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('alertname="CoordinatorDown"', True),
        ('alertname="Coordinator"', False),
        ('alertname!="CoordinatorDown"', False),
        ('alertname!="Other"', True),
        ('alertname=~"Coord.*"', True),
        ('alertname=~"Coord"', False),  # anchored: a prefix is not a match
        ('alertname=~"Down"', False),
        ('alertname=~".*Down"', True),
        ('alertname=~"CoordinatorDown|CoordinatorHighErrorRate"', True),
        ('alertname!~"Coord.*"', False),
        ('alertname!~"Coord"', True),
        ('severity=~"critical|high"', True),
        ("severity=critical", True),  # unquoted values are allowed
        ('severity=~"(?i)CRITICAL"', True),  # a leading flag group, as Go's RE2 accepts
    ],
)
def test_operators(text: str, expected: bool) -> None:
    assert matchers.parse_matcher(text).matches(LABELS) is expected


def test_regex_does_not_match_before_a_trailing_newline() -> None:
    matcher = matchers.parse_matcher('alertname=~"Coord.*"')
    assert not matcher.matches({"alertname": "Coord\n"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('team=""', True),  # a missing label is the empty string
        ('team!=""', False),  # so != "" requires the label
        ('team=~".*"', True),
        ('team=~".+"', False),
        ('team!~".+"', True),
        ('team="infra"', False),
        ('team!="infra"', True),
    ],
)
def test_missing_label_is_the_empty_string(text: str, expected: bool) -> None:
    assert matchers.parse_matcher(text).matches(LABELS) is expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'msg="say \"hi\""', 'say "hi"'),
        (r'msg="back\\slash"', "back\\slash"),
        (r'msg="two\nlines"', "two\nlines"),
        (r'msg=~"a\.b"', r"a\.b"),  # other escapes stay literal, as in Alertmanager (regex escapes work)
        ('msg="a,b=c"', "a,b=c"),
        ('  msg  =  "padded"  ', "padded"),
        ("msg=", ""),
    ],
)
def test_quoted_values_and_escapes(text: str, value: str) -> None:
    assert matchers.parse_matcher(text).value == value


def test_escaped_regex_dot_is_literal() -> None:
    matcher = matchers.parse_matcher(r'host=~"db\.shop"')
    assert matcher.matches({"host": "db.shop"})
    assert not matcher.matches({"host": "dbXshop"})


def test_bad_regex_names_the_matcher_and_the_problem() -> None:
    with pytest.raises(matchers.MatcherError) as caught:
        matchers.parse_matcher('x=~"("')
    assert str(caught.value) == "bad regex in matcher 'x=~\"(\"': missing ), unterminated subpattern"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('alertname="CoordinatorDown', "missing closing double quote"),
        ('alertname=Coord"Down', "unescaped double quote"),
        ('alertname="Coord"Down', "text after the closing quote"),
        ("alertname", "expected <label><op><value>"),
        ('1abel="x"', "expected <label><op><value>"),
        ('my-label="x"', "expected <label><op><value>"),
        ("", "expected <label><op><value>"),
    ],
)
def test_bad_matcher_says_why(text: str, problem: str) -> None:
    with pytest.raises(matchers.MatcherError, match="bad matcher") as caught:
        matchers.parse_matcher(text)
    assert problem in str(caught.value)


def test_any_of_holds_when_one_alternative_holds_entirely() -> None:
    parse = matchers.parse_matcher
    group = matchers.AnyOf(
        (
            (parse('alertname="CoordinatorHighErrorRate"'),),
            (parse('alertname="CoordinatorDown"'), parse('namespace="shop"')),
        )
    )
    assert group.matches(LABELS)
    assert not group.matches({**LABELS, "namespace": "billing"})


@given(
    name=st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True),
    op=st.sampled_from(["=", "!="]),
    value=st.text(max_size=20),
)
def test_printed_matcher_parses_back_to_itself(name: str, op: matchers.Op, value: str) -> None:
    matcher = matchers.Matcher(name, op, value)
    assert matchers.parse_matcher(str(matcher)) == matcher
    assert matcher.matches({name: value}) is (op == "=")
