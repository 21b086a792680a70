"""Network probes: ``tcp.connect`` (does a port accept connections) and ``dns.resolve`` (does a name resolve).

Both answer "is it there?": a refused port, a timeout or a name that does not exist is the finding
(``failed``), not an error of ours. ``tcp.connect`` opens a connection and closes it at once, sending
nothing; ``dns.resolve`` asks the system resolver (``getaddrinfo``, run off the event loop by asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from typing import Literal

from pydantic import Field

from service.diagnosis.base import Observation, Params, ProbeContext, ProbeDef, probe

_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


class TcpConnectParams(Params):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    timeout_s: float | None = Field(None, gt=0, le=60)


class DnsResolveParams(Params):
    name: str = Field(min_length=1, max_length=253)
    type: Literal["A", "AAAA"] = "A"
    timeout_s: float | None = Field(None, gt=0, le=60)


@probe("tcp.connect", TcpConnectParams)
async def tcp_connect(ctx: ProbeContext, params: TcpConnectParams) -> Observation:
    """Open a TCP connection to ``host:port`` and close it.

    Params: ``host``, ``port``, ``timeout_s`` (default: the probe's budget, less a margin).
    Facts: ``reachable`` (bool), ``connect_ms`` (null when not connected), ``timeout`` (bool),
    ``reason`` (why not, null when reachable).
    Status: connected → ok; refused, unreachable, unknown host or timeout → failed.
    """
    where = f"{params.host}:{params.port}"
    timeout = inner_timeout(ctx, params.timeout_s)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(params.host, params.port)
    except TimeoutError:
        down = {"reachable": False, "connect_ms": None, "timeout": True, "reason": "timeout"}
        return Observation("failed", f"TCP {where}: no connection within {timeout:g}s", down)
    except OSError as exc:
        reason = _reason(exc)
        down = {"reachable": False, "connect_ms": None, "timeout": False, "reason": reason}
        return Observation("failed", f"TCP {where}: {reason}", down)
    connect_ms = _ms(started)
    writer.close()
    with contextlib.suppress(OSError):  # a reset while closing does not change the answer
        await writer.wait_closed()
    facts = {"reachable": True, "connect_ms": connect_ms, "timeout": False, "reason": None}
    return Observation("ok", f"TCP {where} accepts connections ({connect_ms:.1f} ms)", facts)


@probe("dns.resolve", DnsResolveParams)
async def dns_resolve(ctx: ProbeContext, params: DnsResolveParams) -> Observation:
    """Resolve ``name`` to ``A`` (IPv4) or ``AAAA`` (IPv6) addresses with the system resolver.

    Params: ``name``, ``type`` ("A" or "AAAA"), ``timeout_s``.
    Facts: ``resolved`` (bool), ``addresses`` (sorted, unique), ``resolve_ms``, ``timeout`` (bool),
    ``reason`` (the resolver's words when not resolved, else null).
    Status: addresses found → ok; no such name, no address of that type, resolver failure or timeout →
    failed.
    """
    loop = asyncio.get_running_loop()
    timeout = inner_timeout(ctx, params.timeout_s)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(
                params.name, None, family=_FAMILIES[params.type], type=socket.SOCK_STREAM
            )
    except TimeoutError:
        facts = _unresolved(started, "timeout", timed_out=True)
        return Observation("failed", f"DNS {params.type} {params.name}: no answer within {timeout:g}s", facts)
    except socket.gaierror as exc:
        reason = "name does not exist" if exc.errno in _NO_SUCH_NAME else (exc.strerror or str(exc))
        return Observation(
            "failed", f"DNS {params.type} {params.name}: {reason}", _unresolved(started, reason)
        )
    except UnicodeError as exc:  # a label the IDNA codec refuses
        reason = f"invalid name: {exc}"
        return Observation(
            "failed", f"DNS {params.type} {params.name}: {reason}", _unresolved(started, reason)
        )
    addresses = sorted({str(info[4][0]) for info in infos})
    facts = {
        "resolved": True,
        "addresses": addresses,
        "resolve_ms": _ms(started),
        "timeout": False,
        "reason": None,
    }
    shown = ", ".join(addresses[:5]) + (f" and {len(addresses) - 5} more" if len(addresses) > 5 else "")
    return Observation("ok", f"DNS {params.type} {params.name} → {shown}", facts)


def _unresolved(started: float, reason: str, *, timed_out: bool = False) -> dict[str, object]:
    return {
        "resolved": False,
        "addresses": [],
        "resolve_ms": _ms(started),
        "timeout": timed_out,
        "reason": reason,
    }


def _reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    return exc.strerror or str(exc) or type(exc).__name__


def inner_timeout(ctx: ProbeContext, requested: float | None = None) -> float:
    """A probe's own timeout: ``requested`` if given, and always a little inside the runner's budget, so
    that a probe reports "no answer within Ns" (its finding) before the runner cuts it off (an error)."""
    inside = max(0.05, ctx.timeout_s - min(0.5, ctx.timeout_s * 0.1))
    return min(requested, inside) if requested is not None else inside


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


PROBES: tuple[ProbeDef, ...] = (tcp_connect, dns_resolve)
