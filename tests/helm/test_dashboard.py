"""The chart's Grafana dashboard (helm/remediator/files/dashboards/remediator.json) against the real thing.

The live service (served as ``remediator serve`` serves it, on a free port) takes a few webhook posts (accepted, refused), a real
Prometheus 2.42 scrapes it every second, and then every PromQL expression of the dashboard, its variables'
queries included, is run through Prometheus' /api/v1/query: each must be accepted, and every metric name it
uses must be one the service exposes on /metrics (a labelled family with no sample yet still has its
``# HELP``/``# TYPE`` lines). Grafana's own variables are replaced as Grafana would: ``$job``/``$instance``
by their "All" value, ``$__rate_interval`` and ``$__range`` by durations.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Self

import pytest
from aiohttp import web
from prometheus_client import parser

from service.app import create_app
from service.settings import Settings
from tests.conftest import AM_FIXTURES, ROOT, TOKEN
from tests.support import procs
from tests.support.exporter import wait_for_scrape

DASHBOARD = ROOT / "helm" / "remediator" / "files" / "dashboards" / "remediator.json"
JOB = "remediator"
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$__interval": "15s",
    "${job}": ".+",
    "$job": ".+",
    "${instance}": ".+",
    "$instance": ".+",
}
# PromQL words that are not metric names
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "rate", "increase", "irate", "histogram_quantile",
    "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "offset", "bool", "label_values",
    "topk", "bottomk", "clamp_min", "clamp_max", "abs", "delta", "deriv", "time", "vector", "scalar",
}  # fmt: skip


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _exprs(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every PromQL expression, by where it is: panel targets and the variables' label_values queries."""
    found = {
        f"{panel['title']} [{target['refId']}]": target["expr"]
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
    }
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            assert match, f"variable {variable['name']}: not a label_values(selector, label) query: {query}"
            found[f"variable {variable['name']}"] = match.group(1)
    return found


def _promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def _metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: what remains once strings, label matchers, grouping
    clauses, ranges, numbers and PromQL's own words are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {word for word in words - PROMQL_WORDS if not re.fullmatch(r"\d+|e\d+", word)}


def _exposed_names(exposition: str) -> set[str]:
    """Every series name /metrics offers, families without samples included (their HELP/TYPE lines)."""
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    for family in parser.text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _post(url: str, body: bytes, token: str) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class LiveService:
    """The app as ``remediator serve`` runs it (web.AppRunner + TCPSite), on a free port, in its own thread
    with its own event loop, so that one service serves the whole module."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.port
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="remediator", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{procs.HOST}:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(create_app(self.settings))
        try:
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, procs.HOST, self.port).start())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(60), "the service did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The service on a free port, on its own SQLite store, with the shipped rules, after a few webhook posts."""
    workdir = tmp_path_factory.mktemp("dashboard-service")
    settings = Settings(
        listen=f"{procs.HOST}:{procs.free_port()}",
        store_url=f"sqlite:///{workdir / 'remediator.db'}",
        rules_dir=ROOT / "rules",
        webhook_token=TOKEN,
        log_format="json",
        dry_run=True,
    )
    with LiveService(settings) as live:
        url = f"{live.url}/v1/alerts"
        firing = (AM_FIXTURES / "am-0.25-firing.json").read_bytes()
        assert _post(url, firing, TOKEN) == 200
        assert _post(url, firing, "wrong-token") == 401
        assert _post(url, b'{"version": "4"', TOKEN) == 400
        yield live


@pytest.fixture(scope="module")
def prometheus(service: LiveService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Prometheus]:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"{procs.HOST}:{service.port}"]}]}
        ],
    }
    server = procs.start_prometheus(config, tmpdir=tmp_path_factory.mktemp("dashboard-prometheus"))
    with server:
        # rate() needs two scrapes of the counters the intake panel shows
        wait_for_scrape(
            server,
            f'count_over_time(remediator_intake_requests_total{{job="{JOB}",code="401"}}[1m]) >= 2',
            timeout=30,
            message="Prometheus has not scraped the service twice: {result}",
        )
        yield server


def test_every_expression_runs_on_a_real_prometheus(prometheus: procs.Prometheus) -> None:
    exprs = _exprs(_dashboard())
    assert len(exprs) >= 20
    answers: dict[str, dict[str, Any]] = {}
    for where, expr in exprs.items():
        try:
            answers[where] = prometheus.query(_promql(expr))
        except RuntimeError as exc:  # HTTP 400: Prometheus refused the expression
            answers[where] = {"status": "error", "error": str(exc)}
    failed = {where: answer for where, answer in answers.items() if answer.get("status") != "success"}
    assert failed == {}
    assert all(not answer.get("warnings") for answer in answers.values()), answers
    # what a user sees on the intake panel: the accepted and the refused posts, by code
    (intake,) = [where for where in exprs if where.startswith("Webhook requests by code")]
    codes = {series["metric"]["code"] for series in answers[intake]["data"]["result"]}
    assert {"200", "401", "400"} <= codes
    # the variables offer this service's job and instance
    jobs = {series["metric"]["job"] for series in answers["variable job"]["data"]["result"]}
    assert jobs == {JOB}
    # the latency panel has the webhook route
    (latency,) = [where for where in exprs if where.startswith("HTTP latency") and where.endswith("[B]")]
    routes = {series["metric"].get("route") for series in answers[latency]["data"]["result"]}
    assert "/v1/alerts" in routes, routes


def test_every_metric_the_dashboard_uses_is_exposed(service: LiveService) -> None:
    with urllib.request.urlopen(f"{service.url}/metrics", timeout=10) as answer:
        exposed = _exposed_names(answer.read().decode())
    used = {name for expr in _exprs(_dashboard()).values() for name in _metric_names(expr)}
    assert {"remediator_http_request_duration_seconds_bucket", "process_resident_memory_bytes"} <= used
    assert sorted(used - exposed) == []


def test_dashboard_shape() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 39 and dashboard["uid"] == "remediator"
    (datasource,) = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    panels = [panel for panel in _panels(dashboard) if panel["type"] != "row"]
    assert len({panel["id"] for panel in _panels(dashboard)}) == len(list(_panels(dashboard)))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), panel["title"]
    titles = " | ".join(panel["title"] for panel in panels).lower()
    for subject in (
        "requests by code",
        "p50 / p99 by route",
        "backlog",
        "incidents by state",
        "actions by outcome",
        "guard refusals",
        "probes by status",
        "time to resolve",
        "within mttr target",
        "kill switch",
        "store size",
        "retention",
        "memory (rss)",
        "cpu",
    ):
        assert subject in titles, subject


def _cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
    grid = panel["gridPos"]
    return {
        (x, y)
        for x in range(grid["x"], grid["x"] + grid["w"])
        for y in range(grid["y"], grid["y"] + grid["h"])
    }


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in _panels(_dashboard()):
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for cell in _cells(panel):
            assert cell not in taken, (panel["title"], taken.get(cell))
            taken[cell] = panel["title"]
