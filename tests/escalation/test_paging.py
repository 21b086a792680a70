"""Who hears each event of an incident: the route table met with the escalation matrix of people."""

from __future__ import annotations

from service.escalation import matrix, paging, routes
from service.model import levels

SERVICES = {"primary", "secondary", "managers", "cto"}
LEVELS = "1=pagerduty:primary+slack@U0PRIMARY;2=pagerduty:secondary+slack@U0123ABC,S0456DEF;3=pagerduty:managers;4=pagerduty:cto"
ON = ["log", "webhook", "slack", "pagerduty"]
TABLE = "critical=pagerduty+slack+webhook;high=pagerduty;warning=slack"


def people(table: str = TABLE, text: str = LEVELS) -> paging.Paging:
    matrix_ = levels.parse(text, services=SERVICES, on=ON)
    return paging.Paging(matrix_, routes.compile_routes(table, configured=ON).channels_for)


def heard(
    plan: paging.Paging, event: str, severity: str = "critical", paged: tuple[str, ...] = ()
) -> list[str]:
    return [n.channel for n in plan.notices(event, severity, "some-rule", paged=paged)]


def test_level_1_replaces_the_routes_pagerduty_by_its_recipients_and_keeps_the_information_channels() -> None:
    notices = people().notices("trigger", "critical", "some-rule")
    assert [(n.channel, n.mentions) for n in notices] == [
        ("pagerduty:primary", ()),
        ("slack", ("U0PRIMARY",)),
        ("log", ()),
        ("webhook", ()),
    ]
    assert heard(people(), "trigger", "high") == ["pagerduty:primary", "slack", "log"]


def test_each_later_level_pages_exactly_its_own_recipients() -> None:
    plan = people()
    assert [(n.channel, n.mentions) for n in plan.notices("escalate:2", "critical", "r")] == [
        ("pagerduty:secondary", ()),
        ("slack", ("U0123ABC", "S0456DEF")),
    ]
    assert heard(plan, "escalate:3") == ["pagerduty:managers"]
    assert heard(plan, "escalate:4") == ["pagerduty:cto"]


def test_ack_and_resolve_reach_every_page_made_and_the_information_channels() -> None:
    paged = ("log", "pagerduty:primary", "slack", "webhook", "pagerduty:secondary")
    for event in ("acknowledge", "resolve"):
        assert heard(people(), event, paged=paged) == [
            "log",
            "slack",
            "webhook",
            "pagerduty:primary",
            "pagerduty:secondary",
        ]


def test_mitigated_resolves_pages_made_and_information_events_never_reach_pagerduty() -> None:
    paged = ("log", "pagerduty:primary", "slack")
    assert heard(people(), "mitigated", paged=paged) == ["log", "slack", "webhook", "pagerduty:primary"]
    assert heard(people(), "mitigated") == ["log", "slack", "webhook"]  # nothing paged: nothing to resolve
    for event in ("announce", "linked"):
        assert heard(people(), event, paged=paged) == ["log", "slack", "webhook"]
        assert heard(paging.unset(lambda _s, _r: ON), event) == ["log", "webhook", "slack"]


def test_an_incident_whose_route_does_not_page_never_pages_the_levels() -> None:
    plan = people()
    assert heard(plan, "trigger", "warning") == ["log", "slack"]
    assert heard(plan, "escalate:2", "warning") == ["log", "slack"]
    assert plan.holders(2, "warning", "r") == ["L2 slack"]


def test_unset_levels_keep_todays_routes_for_every_level() -> None:
    plan = paging.unset(routes.compile_routes(TABLE, configured=ON).channels_for)
    assert not plan.levels_set and plan.top == matrix.TOP
    for event in ("trigger", "escalate:2", "escalate:4"):
        assert heard(plan, event) == ["log", "pagerduty", "slack", "webhook"]
    assert heard(plan, "resolve", "warning", paged=("pagerduty",)) == ["log", "slack", "pagerduty"]
    assert heard(plan, "resolve") == ["log", "slack", "webhook"], "no resolve of a page never made"
    assert heard(plan, "mitigated", paged=("log", "pagerduty")) == ["log", "slack", "webhook", "pagerduty"]
    assert plan.holders(1, "high", "r") == ["L1 pagerduty"]


def test_holders_label_who_was_paged_at_a_level() -> None:
    plan = people()
    assert plan.holders(1, "critical", "r") == ["L1 pagerduty:primary", "L1 slack@U0PRIMARY", "L1 webhook"]
    assert plan.holders(2, "critical", "r") == ["L2 pagerduty:secondary", "L2 slack@U0123ABC,S0456DEF"]
    assert plan.holders(4, "high", "r") == ["L4 pagerduty:cto"]


def test_a_shorter_matrix_ends_at_its_last_level_and_level_4_is_for_critical_incidents_only() -> None:
    plan = people(text="1=pagerduty:primary;2=pagerduty:secondary")
    assert plan.top == 2
    assert matrix.next_level(1, "critical", 0.0, top=plan.top) == (2, 900.0)
    assert matrix.next_level(2, "critical", 0.0, top=plan.top) is None
    assert matrix.next_level(3, "critical", 0.0) == (4, 3600.0)
    assert matrix.next_level(3, "high", 0.0) is None
