"""Evidence hygiene: redact secrets and bound the size of what a probe shows a human.

Redacted: the configured secret values themselves, passwords in URLs/DSNs (``scheme://user:pw@host``),
``Authorization`` headers and bearer/basic credentials, ``key=value`` / ``"key": "value"`` pairs whose key
names a secret (password, passwd, pwd, secret, token, api_key, apikey, private_key, access_key,
credential), and Redis ``requirepass``/``masterauth`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[REDACTED]"

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<pw>[^\s@/]+)(?P<tail>@)")
_AUTH_HEADER = re.compile(r"(?i)(authorization\s*[:=]\s*)(\S+(?:\s+\S+)?)")
_SCHEME_CRED = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_REDIS_CONF = re.compile(r"(?i)\b(requirepass|masterauth)(\s+)(\S+)")
_KEY = r"(?:password|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credentials?)"
_PAIR = re.compile(
    rf"""(?ix)
    (?P<key>["']?[\w.-]*{_KEY}[\w.-]*["']?\s*[:=]\s*)   # key and separator (JSON, YAML, env, query string)
    (?P<value>"[^"]*"|'[^']*'|[^\s,;&}}]+)              # quoted or bare value
    """
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret this module knows of replaced by ``[REDACTED]``."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _SCHEME_CRED.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _REDIS_CONF.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _PAIR.sub(_mask_pair, text)


def _mask_pair(match: re.Match[str]) -> str:
    value = match["value"]
    if value in (MASK, f'"{MASK}"', f"'{MASK}'"):
        return match.group(0)
    quote = value[0] if value[:1] in "\"'" else ""
    return f"{match['key']}{quote}{MASK}{quote}"


def bound(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut on a character boundary, with a marker saying how much was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    marker = f"\n…[truncated {{}} of {len(data)} bytes]"
    keep = max(0, limit - len(marker.format(len(data)).encode("utf-8")))
    head = data[:keep].decode("utf-8", errors="ignore")
    return head + marker.format(len(data) - len(head.encode("utf-8")))


def clean(text: str, *, limit: int, secrets: Iterable[str] = ()) -> str:
    """Redact, then bound (redaction first, so a secret cut in half cannot leak its start)."""
    return bound(redact(text, secrets), limit)
