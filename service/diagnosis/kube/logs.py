"""``kube.logs``: the log tail of the target's most-restarted pod (the previous container when it crashloops).

Params: ``tail_lines`` (100), ``container`` (optional; default the first container).
Facts: ``pod``, ``container``, ``previous`` (bool), ``lines``, ``error_lines`` (lines that mention error,
exception, fatal, panic or traceback). Evidence: the tail (redacted and bounded by the runner).
Status: ``degraded`` when error lines are present, ``skipped`` when the target has no pods, else ``ok``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common

_ERROR = re.compile(r"(?i)\b(error|exception|fatal|panic|traceback)\b")


class LogsParams(Params):
    tail_lines: int = Field(100, ge=1, le=5000)
    container: common.Name | None = None


def pick(pods: list[dict[str, Any]]) -> tuple[dict[str, Any], bool] | None:
    """The most-restarted pod, and whether to read its previous container (pure)."""
    if not pods:
        return None
    pod = max(pods, key=common.restarts)
    crashed = (
        common.waiting_reason(pod) == "CrashLoopBackOff" or common.last_terminated_reason(pod) is not None
    )
    return pod, crashed and common.restarts(pod) > 0


@probe("kube.logs", LogsParams, needs_target=True)
async def logs_probe(ctx: ProbeContext, params: LogsParams) -> Observation:
    kube = common.kube_of(ctx)
    if kube is None:
        return common.NOT_CONFIGURED
    try:
        selector, _ = await common.pod_selector(kube, ctx)
    except ValueError as exc:
        return Observation("error", str(exc))
    chosen = pick(await kube.list_pods(ctx.target.namespace, selector, timeout=ctx.timeout_s))
    if chosen is None:
        return Observation("skipped", f"no pods match {selector}")
    pod, previous = chosen
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    container = params.container or (str(containers[0]) if containers else None)
    text = await kube.read_log(
        ctx.target.namespace,
        common.name(pod),
        container=container,
        previous=previous,
        tail_lines=params.tail_lines,
        limit_bytes=256 * 1024,
        timeout=ctx.timeout_s,
    )
    lines = text.splitlines()
    errors = [line for line in lines if _ERROR.search(line)]
    facts = {
        "pod": common.name(pod),
        "container": container,
        "previous": previous,
        "lines": len(lines),
        "error_lines": len(errors),
    }
    which = "previous container" if previous else "container"
    summary = f"{len(lines)} lines from {which} {container} of {common.name(pod)}, {len(errors)} with errors"
    if errors:
        summary += f"; last: {errors[-1].strip()[:160]}"
    return Observation("degraded" if errors else "ok", summary, facts, text)


PROBES = (logs_probe,)
