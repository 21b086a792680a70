"""Whether counters advanced during verification (``verify.advances``: ``consensus.height`` must grow).

A verification can see a healthy probe while the thing that matters has stopped: the nodes have their peers
again but consensus height is stuck. Each ``probe_id.fact`` named in ``advances`` must be numeric and greater
than its baseline — its value in the findings the action was decided on, else the first verification sample.
The answer is a finding (``id: advances``, probe ``verify.advances``) so that it is recorded with the
verification round and its summary is the sentence a human reads: ``consensus.height did not advance:
1200 → 1200``. Pure: findings come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from service.model import incidents

ID = "advances"
PROBE = "verify.advances"


def probe_ids(entries: Sequence[str]) -> list[str]:
    """The probes to re-run for ``entries`` (``consensus.height`` → ``consensus``), each once, in order."""
    return list(dict.fromkeys(entry.partition(".")[0] for entry in entries))


def value(found: Sequence[incidents.Finding], entry: str) -> object:
    """The fact ``entry`` (``probe_id.fact``) in ``found``; None when the probe or the fact is absent."""
    probe, _, fact = entry.partition(".")
    finding = next((f for f in found if f.id == probe), None)
    return None if finding is None else finding.facts.get(fact)


def number(raw: object) -> float | None:
    """``raw`` as a number; None for anything else (a bool is not a counter)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


def baselines(entries: Sequence[str], found: Sequence[incidents.Finding]) -> dict[str, float | None]:
    """Each entry's numeric value in ``found`` (the findings acted on); None where there is none."""
    return {entry: number(value(found, entry)) for entry in entries}


def fill(
    baseline: Mapping[str, float | None], sample: Sequence[incidents.Finding]
) -> dict[str, float | None]:
    """``baseline`` with every missing value taken from ``sample`` (the first verification sample)."""
    return {
        entry: base if base is not None else number(value(sample, entry)) for entry, base in baseline.items()
    }


def check(baseline: Mapping[str, float | None], sample: Sequence[incidents.Finding]) -> incidents.Finding:
    """Did every counter advance past its baseline in ``sample``? ``ok`` when all did, else ``failed``
    with the sentence naming each one that did not."""
    facts: dict[str, object] = {}
    stalled: list[str] = []
    moved: list[str] = []
    for entry, base in baseline.items():
        raw = value(sample, entry)
        now = number(raw)
        facts[entry] = {"baseline": base, "last": raw, "advanced": False}
        if now is None:
            stalled.append(f"{entry} is not a number: {_show(raw)}")
        elif base is None:
            stalled.append(f"{entry} has no baseline to advance from: {_show(raw)}")
        elif now <= base:
            stalled.append(f"{entry} did not advance: {_show(base)} → {_show(now)}")
        else:
            facts[entry] = {"baseline": base, "last": raw, "advanced": True}
            moved.append(f"{entry} advanced: {_show(base)} → {_show(now)}")
    if stalled:
        return incidents.Finding(id=ID, probe=PROBE, status="failed", summary="; ".join(stalled), facts=facts)
    return incidents.Finding(id=ID, probe=PROBE, status="ok", summary="; ".join(moved), facts=facts)


def _show(raw: object) -> str:
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return "null" if raw is None else str(raw)
