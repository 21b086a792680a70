"""Host names as settings and alerts give them: a plain DNS name or an IP address (pure).

``plain`` is the one test of "is this a host a browser reads as itself" (no ``\\``, ``%``, spaces or
non-ASCII letters); ``check_link_hosts`` validates ``REMEDIATOR_LINK_HOSTS`` with it when the settings
load, and ``escalation.links`` applies it to every URL an alert carries. Imports nothing of ours but
``errors``.
"""

from __future__ import annotations

import ipaddress
import re

from service import errors

#: a DNS label, with the underscore some internal names carry (browsers accept it; it changes no host)
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def plain(host: str) -> bool:
    """Whether ``host`` (lower-case, no trailing dot) is a plain DNS name or an IP address."""
    if _HOST.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_link_hosts(hosts: list[str]) -> list[str]:
    """``REMEDIATOR_LINK_HOSTS`` entries as they will be used; ``ConfigError`` names a bad one."""
    for entry in hosts:
        name = entry[2:] if entry.startswith("*.") else entry
        if not plain(name.rstrip(".")):
            raise errors.ConfigError(
                f"REMEDIATOR_LINK_HOSTS: {entry[:100]!r} is not a host name, an IP address or *.domain"
            )
    return hosts
