"""The ``prometheus.query`` probe: one PromQL instant query, its samples judged against thresholds.

Queries through ``ctx.clients.prometheus`` (the HTTP API, async). A bad query or an unreachable
Prometheus is an ``error`` finding (we could not tell), raised by the client and reported by the runner.
Never queries ranges, never writes (no admin API).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, model_validator

from service.clients import prometheus as prom
from service.diagnosis import net
from service.diagnosis.base import Observation, Params, ProbeContext, ProbeDef, probe

MAX_VALUES = 50


class QueryParams(Params):
    query: str = Field(min_length=1, max_length=10_000)
    warn_above: float | None = None
    fail_above: float | None = None
    warn_below: float | None = None
    fail_below: float | None = None
    label: str | None = Field(None, pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    expect_data: bool = False
    timeout_s: float | None = Field(None, gt=0, le=120)

    @model_validator(mode="after")
    def _ordered(self) -> QueryParams:
        if self.warn_above is not None and self.fail_above is not None and self.fail_above < self.warn_above:
            raise ValueError("fail_above must not be lower than warn_above")
        if self.warn_below is not None and self.fail_below is not None and self.fail_below > self.warn_below:
            raise ValueError("fail_below must not be higher than warn_below")
        return self


@probe("prometheus.query", QueryParams)
async def query(ctx: ProbeContext, params: QueryParams) -> Observation:
    """Evaluate ``query`` now and compare every sample with the thresholds.

    Params: ``query`` (PromQL; instant vector or scalar), ``warn_above``/``fail_above``/``warn_below``/
    ``fail_below`` (compared with every sample), ``label`` (the label whose value names a sample in
    ``values``; default: its index), ``expect_data`` (no samples → degraded instead of ok), ``timeout_s``.
    Facts: ``samples`` (count), ``empty``, ``value`` (the first sample's), ``max``, ``min``, ``values``
    (name → value for the first 50 samples). NaN and ±Inf appear as null in ``value``/``values``/``max``/
    ``min`` but are still compared (+Inf is above any threshold).
    Status: any sample past a fail threshold → failed; past a warn threshold → degraded; else ok.
    """
    client = ctx.clients.prometheus
    if client is None:
        return Observation("skipped", "Prometheus not configured (REMEDIATOR_PROMETHEUS_URL)")
    samples = await client.query(params.query, timeout=net.inner_timeout(ctx, params.timeout_s))
    finite = [s.value for s in samples if math.isfinite(s.value)]
    facts: dict[str, Any] = {
        "samples": len(samples),
        "empty": not samples,
        "value": _json(samples[0].value) if samples else None,
        "max": max(finite, default=None),
        "min": min(finite, default=None),
        "values": _named(samples, params.label),
    }
    evidence = "\n".join(f"{_series(s)} {s.value:g}" for s in samples[:MAX_VALUES])
    if len(samples) > MAX_VALUES:
        evidence += f"\n… {len(samples) - MAX_VALUES} more"
    if not samples:
        summary = f"no data for {params.query}"
        return Observation("degraded" if params.expect_data else "ok", summary, facts)
    failed = _past(samples, params.fail_above, params.fail_below, params.label)
    if failed:
        return Observation("failed", _summary(samples, failed), facts, evidence)
    warned = _past(samples, params.warn_above, params.warn_below, params.label)
    if warned:
        return Observation("degraded", _summary(samples, warned), facts, evidence)
    return Observation("ok", _summary(samples, None), facts, evidence)


def _past(
    samples: list[prom.Sample], above: float | None, below: float | None, label: str | None
) -> str | None:
    """The first threshold crossing, as a human reads it (``None`` if no sample crosses)."""
    for sample in samples:
        name = sample.labels[label] if label is not None and label in sample.labels else _series(sample)
        if above is not None and sample.value > above:
            return f"{name} = {sample.value:g} > {above:g}"
        if below is not None and sample.value < below:
            return f"{name} = {sample.value:g} < {below:g}"
    return None


def _summary(samples: list[prom.Sample], crossing: str | None) -> str:
    count = f"{len(samples)} sample{'' if len(samples) == 1 else 's'}"
    if crossing is not None:
        return f"{count}; {crossing}"
    if len(samples) == 1:
        return f"{count}: {samples[0].value:g}"
    values = [s.value for s in samples]
    return f"{count}, {min(values):g} to {max(values):g}"


def _named(samples: list[prom.Sample], label: str | None) -> dict[str, float | None]:
    named: dict[str, float | None] = {}
    for index, sample in enumerate(samples[:MAX_VALUES]):
        name = _name(sample, index, label)
        if name in named:  # two series share the label value: keep both, the second by index
            name = f"{name}#{index}"
        named[name] = _json(sample.value)
    return named


def _name(sample: prom.Sample, index: int, label: str | None) -> str:
    if label is not None and label in sample.labels:
        return sample.labels[label]
    return str(index)


def _series(sample: prom.Sample) -> str:
    name = sample.labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or name else "scalar"


def _json(value: float) -> float | None:
    return value if math.isfinite(value) else None


PROBES: tuple[ProbeDef, ...] = (query,)
