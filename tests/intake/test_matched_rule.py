"""The rule intake matched is kept with the inbox row, and the pipeline processes the row under that rule:
it matches again only for a row without one (stored before intake kept it) or whose rule is gone."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.app import create_app
from service.records import inbox, schema
from service.records.store import Store
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}

RULE = """\
name: NAME
runbook: Two Rules
mttr_target: 2m
match:
  - alertname="TwoRules"
target:
  kind: Deployment
  namespace: shop
  name: "{{ labels.service }}"
"""


@pytest.fixture
def two_rules(tmp_path: Path) -> Path:
    """Two rules that both match ``TwoRules``: ``a-first`` wins (load order), ``b-second`` never does."""
    rules = tmp_path / "two-rules"
    rules.mkdir()
    for name in ("a-first", "b-second"):
        (rules / f"{name}.yaml").write_text(RULE.replace("NAME", name))
    return rules


def alert(service: str) -> dict[str, Any]:
    raw: dict[str, Any] = load_fixture("am-0.25-firing.json")["alerts"][0]
    raw.update(labels={"alertname": "TwoRules", "service": service}, fingerprint=f"fp-{service}")
    return raw


async def settled(client: Any) -> dict[str, str]:
    """Once the inbox is empty: the rule of each incident, by its target's name."""

    async def idle() -> bool:
        return "remediator_inbox_backlog 0.0" in await (await client.get("/metrics")).text()

    await eventually(idle)
    answer = await (await client.get("/v1/incidents", headers=AUTH)).json()
    return {i["target"]["name"]: i["rule"] for i in answer["incidents"]}


async def test_intake_stores_the_rule_it_matched_with_the_row(
    aiohttp_client: Any, make_settings: Any, two_rules: Path
) -> None:
    settings = make_settings(rules_dir=two_rules)
    client = await aiohttp_client(create_app(settings))
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"] = [alert("web"), {**alert("other"), "labels": {"alertname": "NobodysAlert"}}]
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200
    assert await settled(client) == {"web": "a-first"}
    store = Store.open(settings.store_url)
    try:
        async with store.read() as conn:
            rows = await conn.execute(sa.select(schema.inbox.c.alertname, schema.inbox.c.rule))
            assert sorted(rows.all()) == [("NobodysAlert", None), ("TwoRules", "a-first")]
    finally:
        await store.close()


async def test_a_row_is_processed_under_the_rule_stored_with_it(
    aiohttp_client: Any, make_settings: Any, two_rules: Path
) -> None:
    settings = make_settings(rules_dir=two_rules)
    store = Store.open(settings.store_url)
    try:
        await store.migrate()
        async with store.write() as conn:
            await inbox.insert(
                store,
                conn,
                [
                    row(alert("kept"), rule="b-second"),  # matching would now pick a-first
                    row(alert("gone"), rule="c-unloaded"),  # its rule is no longer loaded: matched again
                    row(alert("old"), rule=None),  # stored before intake kept the rule: matched again
                ],
            )
    finally:
        await store.close()
    client = await aiohttp_client(create_app(settings))
    assert await settled(client) == {"kept": "b-second", "gone": "a-first", "old": "a-first"}


def row(raw: dict[str, Any], *, rule: str | None) -> dict[str, Any]:
    return {
        "fingerprint": raw["fingerprint"],
        "starts_at": raw["startsAt"],
        "status": "firing",
        "alertname": raw["labels"]["alertname"],
        "payload": json.dumps(raw),
        "receiver": "r",
        "group_key": "",
        "truncated": 0,
        "received_at": time.time(),
        "state": inbox.PENDING,
        "attempts": 0,
        "rule": rule,
    }
