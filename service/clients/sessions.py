"""The one way the service opens an outbound HTTP session: ``new_session()``.

Every ``aiohttp.ClientSession`` of the service (probes, Prometheus, notifiers, the Slack app, the status
page) comes from here, so that each one honours ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` (and
``~/.netrc``, as aiohttp's ``trust_env`` does) and announces itself as ``User-Agent: remediator/<version>``.
The Kubernetes client builds its own session inside kubernetes-asyncio (which already trusts the
environment); ``clients.kube`` sets the same User-Agent on it. Never sets credentials: callers add theirs
per request.

aiohttp's ``trust_env`` looks the proxy and the netrc up again on every request, each in a worker thread (two
thread hops per probe, notification or API call: 0.8–2.8 s of the storm's profile). So it is on only when
the environment names a proxy (any ``*_proxy`` variable, as ``urllib`` reads them) or a netrc (``NETRC``, or a
``~/.netrc`` file) when the session is made: the same answers, without the hops when there is nothing to
find.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from service import USER_AGENT


def new_session(*, headers: Mapping[str, str] | None = None, **kwargs: Any) -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` with the service's User-Agent (``headers`` may add others, and may set
    another User-Agent) that uses the proxy the environment names; ``kwargs`` go to aiohttp."""
    kwargs.setdefault("trust_env", environment_names_a_proxy_or_netrc())
    return aiohttp.ClientSession(headers={"User-Agent": USER_AGENT, **(headers or {})}, **kwargs)


def environment_names_a_proxy_or_netrc() -> bool:
    """True when aiohttp's ``trust_env`` could find anything: a proxy variable, or a netrc file."""
    if urllib.request.getproxies_environment() or os.environ.get("NETRC"):
        return True
    try:
        return (Path.home() / ".netrc").is_file()
    except (OSError, RuntimeError):  # no home directory (a container user without one)
        return False
