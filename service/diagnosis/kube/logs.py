"""``kube.logs``: the log tail of the target's most-restarted pod (the previous container when it crashloops).

Params: ``tail_lines`` (100), ``container`` (optional; default the pod's most-restarted container, else its
first). The previous container is read when the container has restarted and its last instance terminated.
Facts: ``pod``, ``container``, ``previous`` (bool), ``lines``, ``error_lines`` (lines that mention error,
exception, fatal, panic or traceback). Evidence: the tail — its last lines within ~4 KB — redacted and bounded
by the runner.
Status: ``degraded`` when error lines are present, ``skipped`` when the target has no pods, else ``ok``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from service.clients import kube_fields
from service.diagnosis.base import Observation, Params, ProbeContext, probe
from service.diagnosis.kube import common
from service.matching import names

_ERROR = re.compile(r"(?i)\b(error|exception|fatal|panic|traceback)\b")
EVIDENCE_TAIL_BYTES = 3968  # within the runner's default evidence limit (4096), with room for the marker


class LogsParams(Params):
    tail_lines: int = Field(100, ge=1, le=5000)
    container: names.Name | None = None


def _status_of(pod: dict[str, Any], container: str | None) -> dict[str, Any]:
    return next((c for c in kube_fields.container_statuses(pod) if c.get("name") == container), {})


def pick(
    pods: list[dict[str, Any]], container: str | None = None
) -> tuple[dict[str, Any], str | None, bool] | None:
    """The most-restarted pod (an unready one on a tie), its container — ``container``, else the
    most-restarted one, else the first — and whether to read that container's previous instance (pure)."""
    if not pods:
        return None
    pod = max(pods, key=lambda p: (kube_fields.restarts(p), not kube_fields.is_ready(p)))
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name")]
    if container is None and names:
        restarts = {
            str(c.get("name")): int(c.get("restartCount") or 0) for c in kube_fields.container_statuses(pod)
        }
        container = max(names, key=lambda n: restarts.get(n, 0))  # the first of equals
    status = _status_of(pod, container)
    terminated = (status.get("lastState") or {}).get("terminated")
    return pod, container, bool(terminated) and int(status.get("restartCount") or 0) > 0


def tail(text: str, limit: int = EVIDENCE_TAIL_BYTES) -> str:
    """The last whole lines of ``text`` within ``limit`` UTF-8 bytes, saying how many earlier lines were cut:
    the runner bounds evidence from its start, and the end of a log is where the crash is."""
    if len(text.encode("utf-8")) <= limit:
        return text
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line.encode("utf-8"))
        if size > limit and kept:
            break
        kept.append(line)
    return f"…[{len(lines) - len(kept)} earlier lines not shown]\n" + "".join(reversed(kept))


@probe("kube.logs", LogsParams, needs_target=True)
async def logs_probe(ctx: ProbeContext, params: LogsParams) -> Observation:
    kube = common.kube_of(ctx)
    if kube is None:
        return common.NOT_CONFIGURED
    try:
        selector, _ = await common.pod_selector(kube, ctx)
    except ValueError as exc:
        return Observation("error", str(exc))
    chosen = pick(
        await kube.list_pods(ctx.target.namespace, selector, timeout=ctx.timeout_s), params.container
    )
    if chosen is None:
        return Observation("skipped", f"no pods match {selector}")
    pod, container, previous = chosen
    text = await kube.read_log(
        ctx.target.namespace,
        kube_fields.name(pod),
        container=container,
        previous=previous,
        tail_lines=params.tail_lines,
        limit_bytes=256 * 1024,
        timeout=ctx.timeout_s,
    )
    lines = text.splitlines()
    errors = [line for line in lines if _ERROR.search(line)]
    facts = {
        "pod": kube_fields.name(pod),
        "container": container,
        "previous": previous,
        "lines": len(lines),
        "error_lines": len(errors),
    }
    which = "previous container" if previous else "container"
    summary = (
        f"{len(lines)} lines from {which} {container} of {kube_fields.name(pod)}, {len(errors)} with errors"
    )
    if errors:
        summary += f"; last: {errors[-1].strip()[:160]}"
    return Observation("degraded" if errors else "ok", summary, facts, tail(text))


PROBES = (logs_probe,)
