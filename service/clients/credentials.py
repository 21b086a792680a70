"""Monitoring credentials, shared by the PostgreSQL and Redis connectors: read from mounted Secret files, and
sent only to the configured host or to ``REMEDIATOR_MONITOR_HOSTS`` — never to a host a label chose."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from service import errors


def read_secret(path: Path | None, setting: str) -> str | None:
    """The content of a mounted secret file without its trailing newline (``None`` without a file)."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n") or None
    except OSError as exc:
        raise errors.ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from exc


class HostPolicy:
    """Which hosts may receive the credentials: the configured one and the allow-list."""

    def __init__(self, own: str, allowed: Iterable[str]) -> None:
        self._hosts = frozenset({own.lower(), *(h.lower() for h in allowed)})

    def check(self, host: str | None) -> None:
        """Raise ``Permanent`` for an override that is neither the configured host nor allowed."""
        if host is None or host.lower() in self._hosts:
            return
        raise errors.Permanent(
            f"host {host!r} is not the configured one nor in REMEDIATOR_MONITOR_HOSTS: "
            "monitoring credentials are not sent there"
        )
