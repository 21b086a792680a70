"""The one way the service opens an outbound HTTP session: ``new_session()``.

Every ``aiohttp.ClientSession`` of the service (probes, Prometheus, notifiers, the Slack app, the status
page) comes from here, so that each one honours ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` (and
``~/.netrc``, as aiohttp's ``trust_env`` does) and announces itself as ``User-Agent: remediator/<version>``.
The Kubernetes client builds its own session inside kubernetes-asyncio (which already trusts the
environment); ``clients.kube`` sets the same User-Agent on it. Never sets credentials: callers add theirs
per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from service import USER_AGENT


def new_session(*, headers: Mapping[str, str] | None = None, **kwargs: Any) -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` with the service's User-Agent (``headers`` may add others, and may set
    another User-Agent) that uses the proxy the environment names; ``kwargs`` go to aiohttp."""
    kwargs.setdefault("trust_env", True)
    return aiohttp.ClientSession(headers={"User-Agent": USER_AGENT, **(headers or {})}, **kwargs)
