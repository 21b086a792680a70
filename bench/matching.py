"""Matching: one alert against 1,000 generated rules with ``select_rule``, and the time to load them."""

from __future__ import annotations

import statistics
import time
from datetime import date
from pathlib import Path

from service import registries
from service.matching import loader, select

RULE = """\
name: generated-{i:04d}
runbook: Generated {i}
description: Generated rule {i} for the matching benchmark.
owner: bench
reviewed: {today}
mttr_target: 5m
severity: warning
match:
  - alertname="{alertname}"
  - service=~"svc-{i:04d}-[a-z]+"
  - severity!="info"
target:
  kind: Deployment
  namespace: "{{{{ labels.namespace | default('default') }}}}"
  name: "{{{{ labels.service }}}}"
diagnose:
  - {{id: pods, probe: kube.pods}}
"""


def write_rules(directory: Path, count: int, *, alertnames: int = 10) -> None:
    """``count`` rules over ``alertnames`` alert names (so each name has count/alertnames candidates)."""
    directory.mkdir(parents=True, exist_ok=True)
    today = date.today().isoformat()
    for i in range(count):
        text = RULE.format(i=i, today=today, alertname=f"Generated{i % alertnames}")
        (directory / f"r{i:04d}.yaml").write_text(text)


def run(directory: Path, count: int, *, calls: int, alertnames: int, rounds: int = 3) -> dict[str, float]:
    write_rules(directory, count, alertnames=alertnames)
    loads = []
    ruleset = None
    catalogue = registries.catalogue()
    for _ in range(rounds):
        started = time.perf_counter()
        ruleset = loader.load_rules(directory, catalogue=catalogue)
        loads.append(time.perf_counter() - started)
    assert ruleset is not None and len(ruleset.rules) == count
    last = count - 1  # the worst case: the last candidate of its alertname matches
    hit = {
        "alertname": f"Generated{last % alertnames}",
        "service": f"svc-{last:04d}-web",
        "severity": "critical",
    }
    miss = {"alertname": "Generated0", "service": "nothing", "severity": "critical"}
    assert select.select_rule(ruleset, hit) is not None and select.select_rule(ruleset, miss) is None
    figures: dict[str, float] = {"rules": count, "alertnames": alertnames, "load_s": statistics.median(loads)}
    for name, labels in (("hit_last_us", hit), ("miss_us", miss)):
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(calls):
                select.select_rule(ruleset, labels)
            samples.append((time.perf_counter() - started) / calls * 1e6)
        figures[name] = statistics.median(samples)
    return figures
