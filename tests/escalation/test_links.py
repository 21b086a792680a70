"""Which alert URLs become links (``escalation.links``), the ``REMEDIATOR_LINK_HOSTS`` setting, and how a
refused URL reaches a human: as defanged text with the reason, in every rendering."""

from __future__ import annotations

import json

import pytest

from service import errors
from service.escalation import links
from service.escalation.render import markdown, pagerduty, slack
from service.settings import Settings
from tests.escalation.test_render_markdown import sample_alert, sample_bundle

POLICY = links.policy(
    ["grafana.example.com", "*.runbooks.example.com"], "https://remediator.example.com", "http://[::1]:9090"
)


@pytest.mark.parametrize(
    "url",
    [
        "https://grafana.example.com/d/abc?var=1",
        "HTTPS://GRAFANA.EXAMPLE.COM/d/abc",  # hosts compare without case
        "https://grafana.example.com./d/abc",  # the same host, fully qualified
        "http://grafana.example.com:3000/d/abc",  # any port
        "https://eu.runbooks.example.com/high-error-rate",
        "https://a.b.runbooks.example.com/x",
        "https://remediator.example.com/v1/incidents/x",  # our own base URL
        "http://[::1]:9090/graph?g0.expr=up",  # REMEDIATOR_PROMETHEUS_URL's host
        "  https://grafana.example.com/padded  ",
        "https://grafana.example.com/a path with spaces",  # percent-encoded when rendered
    ],
)
def test_http_links_to_allowed_hosts_are_links(url: str) -> None:
    kept, refused = POLICY.judge("graph", url)
    assert (kept, refused) == (url.strip(), None)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evil.example/graph", "host not allow-listed"),
        ("https://runbooks.example.com/x", "host not allow-listed"),  # *.domain is not the domain itself
        ("https://grafana.example.com.evil.example/", "host not allow-listed"),
        ("https://evilgrafana.example.com/", "host not allow-listed"),
        ("https://evil.example/?next=https://grafana.example.com/", "host not allow-listed"),
        ("https://grafana.example.com@evil.example/", "has userinfo"),
        ("https://user:secret@grafana.example.com/", "has userinfo"),
        ("https://grafana.example.com%2F@evil.example/", "has userinfo"),
        ("http://evil.example\\.runbooks.example.com/", "host is not a plain DNS name or IP address"),
        ("https://gr\u0430fana.example.com/", "host is not a plain DNS name or IP address"),  # Cyrillic а
        ("https://evil%2Egrafana.example.com/", "host is not a plain DNS name or IP address"),
        ("https:///evil.example/", "no host"),
        ("https:/evil.example/", "not an http(s) URL"),  # a browser would read https://evil.example/
        ("http:\\\\evil.example\\", "not an http(s) URL"),
        ("https://grafana.example.com:99999/", "malformed"),
        ("https://grafana.example.com/\nhttps://evil.example/", "holds control or invisible characters"),
        ("https://grafana.example.com/\u202egnp.exe", "holds control or invisible characters"),
        ("javascript:alert(1)", "not an http(s) URL"),
        ("JaVaScRiPt:alert(1)//https://grafana.example.com/", "not an http(s) URL"),
        ("data:text/html,<script>alert(1)</script>", "not an http(s) URL"),
        ("ftp://grafana.example.com/", "not an http(s) URL"),
        ("//grafana.example.com/", "not an http(s) URL"),
        ("https://grafana.example.com/" + "a" * 2000, "too long"),
    ],
)
def test_other_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    kept, refused = POLICY.judge("runbook", url)
    assert kept is None and refused is not None
    assert (refused.name, refused.reason) == ("runbook", reason)
    assert "://" not in refused.text and "\n" not in refused.text and len(refused.text) <= links.SHOWN


def test_a_refused_url_is_shown_defanged() -> None:
    _, refused = POLICY.judge("graph", "https://evil.example/graph?x=1")
    assert refused is not None
    assert refused.text == "hxxps[:]//evil.example/graph?x=1"


def test_no_url_is_no_link_and_no_note() -> None:
    assert POLICY.judge("graph", "") == (None, None)
    assert POLICY.judge("graph", None) == (None, None)


@pytest.mark.parametrize(
    ("text", "defanged"),
    [
        ("GET http://coordinator.shop.svc:8080/healthz", "GET http[:]//coordinator.shop.svc:8080/healthz"),
        ("see www.evil.example", "see www[.]evil.example"),
        ("mail ops@evil.example", "mail ops[@]evil.example"),
        ("ftp://x and HTTPS://Y", "ftp[:]//x and HTTPS[:]//Y"),
        ("no URL: a: b // c @ d", "no URL: a: b // c @ d"),
        ("hxxp[:]//already", "hxxp[:]//already"),
    ],
)
def test_defang(text: str, defanged: str) -> None:
    assert links.defang(text) == defanged
    assert links.defang(defanged) == defanged  # once is enough: renderers may apply it again


def test_the_setting_is_a_comma_separated_list_of_hosts_and_wildcards() -> None:
    settings = Settings(link_hosts=" Grafana.example.com, *.runbooks.example.com ,,")
    assert settings.link_hosts == ["grafana.example.com", "*.runbooks.example.com"]
    assert Settings().link_hosts == []


@pytest.mark.parametrize("entry", ["https://grafana.example.com", "*", "a.*.example.com", "ops@x.example"])
def test_a_bad_link_host_refuses_to_start(entry: str) -> None:
    with pytest.raises(errors.ConfigError, match="REMEDIATOR_LINK_HOSTS"):
        Settings(link_hosts=entry)


def test_a_graph_link_to_another_host_is_text_in_every_rendering() -> None:
    alert = sample_alert(
        generatorURL="https://evil.example/graph?g0.expr=up",
        annotations={"summary": "s", "runbook_url": "https://runbooks.example.com@evil.example/rb"},
    )
    bundle = sample_bundle(alert=alert)
    assert "graph" not in bundle.links and "runbook" not in bundle.links
    assert bundle.alerts[0].generator_url is None
    assert [r.model_dump() for r in bundle.alerts[0].refused_links] == [
        {
            "name": "graph",
            "text": "hxxps[:]//evil.example/graph?g0.expr=up",
            "reason": "host not allow-listed",
        },
        {
            "name": "runbook",
            "text": "hxxps[:]//runbooks.example.com[@]evil.example/rb",
            "reason": "has userinfo",
        },
    ]
    rendered = markdown.render(bundle)
    assert "evil.example/graph" in rendered and "](https://evil" not in rendered
    assert (
        "  - graph: hxxps\\[:\\]//evil.example/graph?g0.expr=up _(not a link: host not allow-listed)_"
        in rendered
    )
    payload = json.dumps(slack.render(bundle, event="trigger"))
    assert "<https://evil" not in payload
    assert "graph: hxxps[:]//evil.example/graph?g0.expr=up _(not a link: host not allow-listed)_" in payload
    body = pagerduty.render(bundle, event="trigger", routing_key="k", source="s")
    assert all("evil" not in link["href"] for link in body["links"])
