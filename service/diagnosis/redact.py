"""Evidence hygiene: redact secrets and bound the size of what a probe shows a human, in linear time.

Redacted (each replaced by ``[REDACTED]``):

- the configured secret values themselves (4 characters or longer), wherever they appear;
- PEM private keys, ``-----BEGIN … PRIVATE KEY-----`` (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP … BLOCK) to
  its ``-----END …-----`` line, or to the end of the text when there is none (a key cut by a bound);
  certificates and public keys are left alone;
- passwords in URLs/DSNs (``scheme://user:pw@host``);
- ``Authorization`` and ``Proxy-Authorization`` headers in any case, as ``Name: value`` (the value's first
  two words), ``name=value`` or JSON ``"Authorization": "Bearer x"``;
- bearer/basic credentials anywhere (``Bearer <8+ token characters>``);
- JWTs (``eyJ…`` ``.`` ``…`` ``.`` ``…``, three base64url segments; two at the very end of the text);
- AWS access key ids (``AKIA``/``ASIA`` and 16 upper-case letters or digits);
- ``key=value`` / ``key: value`` / ``"key": "value"`` pairs whose key names a secret (password, passwd, pwd,
  secret, token, api_key, apikey, private_key, access_key, credential), which also covers
  ``aws_secret_access_key=…``, ``"SecretAccessKey": …``, ``X-Api-Key: …`` and ``X-Auth-Token: …`` headers;
- Redis ``requirepass``/``masterauth`` lines (``CONFIG GET`` output too).

Not recognised: secrets with none of these shapes or names (cookies, vendor tokens without a named key).

Every pattern is linear on any input: a pattern that starts with a run of word characters only tries at the
start of that run (a look-behind), repetitions are possessive or atomic so a failed attempt never backtracks
into a run, and there are no nested ambiguous quantifiers. Each pattern runs once over the text it is given
and marks spans; the spans are merged and replaced in one pass, so one rule's mask never hides text from
another.

``clean`` cuts first, then redacts, then bounds: it redacts the first ``limit`` characters plus a margin (at
least the longest configured secret), and shows only the first ``limit`` characters, so a secret cut by the
margin is never shown in part. ``facts`` does the same for every string in a finding's facts. Never raises
for any input text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
MARGIN = 4096  # characters redacted past a cut, so that a secret straddling the cut is recognised whole
FACT_STRING_BYTES = 2048  # the bound on each string in a finding's facts

_B64 = r"A-Za-z0-9_\-"  # base64url (the dash escaped: more may follow it in a class)
_KEY = r"(?:password|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)"
# A quoted value's inside: a JSON string with its escapes (the unrolled loop is deterministic: each
# character is taken by exactly one branch), or a single-quoted shell string.
_QUOTED = r"""(?:"(?P<dq>[^"\\]*+(?:\\.[^"\\]*+)*+)"|'(?P<sq>[^']*+)')"""

_RULES: tuple[re.Pattern[str], ...] = (
    # PEM private key, to its END line or to the end of the text (lazy body: one step per character).
    re.compile(
        r"(?s)(?P<s>-----BEGIN [A-Z0-9 ]{0,48}?PRIVATE KEY(?: BLOCK)?-----"
        r".*?(?:-----END [A-Z0-9 ]{0,64}+-----|\Z))"
    ),
    # URL password: the scheme is a whole run; the password ends at the last '@' before a '/' or a space.
    re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z0-9+.-]++://[^\s:/@]*+:(?P<s>[^\s/]+)@"),
    # Authorization / Proxy-Authorization header, header-style, query-style or JSON.
    re.compile(rf"""(?i)authorization["']?\s*+[:=]\s*+(?:{_QUOTED}|(?P<s>\S++(?:[ \t]++\S++)?+))"""),
    re.compile(rf"(?i)\b(?:bearer|basic)\s++(?P<s>[{_B64}.~+/=]{{8,}}+)"),
    # JWT: the look-behind after the literal keeps the literal-prefix search fast.
    re.compile(
        rf"(?P<s>eyJ(?<![{_B64}]eyJ)[{_B64}]{{8,}}+(?:\.[{_B64}]{{2,}}+\.[{_B64}]*+|(?:\.[{_B64}]*+)?+\Z))"
    ),
    re.compile(r"(?P<s>A[KS]IA(?<![A-Z0-9]A[KS]IA)[A-Z0-9]{16})(?![A-Z0-9])"),
    # Redis config, also as redis-cli shows CONFIG GET ('1) "requirepass"' / '2) "pw"'): a value that is
    # itself the keyword is not the password, and is left for the next match.
    re.compile(
        r"""(?i)\b(?:requirepass|masterauth)["']?\s++(?:\d{1,3}\)\s++)?+"""
        r"""(?!["']?(?:requirepass|masterauth)\b)(?P<s>\S++)"""
    ),
    # key=value pair: the key is a whole run of [\w.-] (atomic: a failed separator fails the run at once).
    re.compile(
        rf"""(?i)(?<![\w.-])(?>[\w.-]*?{_KEY}[\w.-]*+)["']?\s*+[:=]\s*+(?:{_QUOTED}|(?P<s>[^\s,;&}}]++))"""
    ),
)

#: What every rule above needs somewhere in the text: a separator (``:`` ``=``) or a space, a PEM fence or
#: a token's prefix. Most probe facts (names, states, counts as text) have none, and one search of this
#: replaces the eight; a rule that needs something else must add it here (tests/diagnosis checks each).
_MAY_HOLD = re.compile(r"[:=\s]|-----|eyJ|A[KS]IA")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret this module knows of replaced by ``[REDACTED]``; linear in ``len(text)``."""
    return _masked(text, _spans(text, _usable(secrets)), len(text))


def bound(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut on a character boundary, with a marker saying how much was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return _cut(data, limit, len(data))


def clean(text: str, *, limit: int, secrets: Iterable[str] = ()) -> str:
    """Cut, redact, then bound to ``limit`` UTF-8 bytes; a secret cut in half never shows its start.

    Only ``limit + margin`` characters are redacted, so the time is bounded by ``limit``, not by the text.
    """
    usable = _usable(secrets)
    if len(text) <= limit:  # at most 4 bytes a character: short texts are redacted whole
        return bound(redact(text, usable), limit)
    shown = limit  # `limit` characters are at least `limit` bytes: enough to fill the bound
    head = text[: shown + max([MARGIN, *map(len, usable)])]
    masked = _masked(head, _spans(head, usable), shown)
    total = len(text.encode("utf-8"))
    return _cut(masked.encode("utf-8"), limit, total)


def facts(
    value: Mapping[str, Any], secrets: Iterable[str] = (), *, limit: int = FACT_STRING_BYTES
) -> dict[str, Any]:
    """A copy of ``value`` with every string in it (at any depth) cleaned to ``limit`` bytes.

    Keys are names, not data, and are kept; numbers, booleans and ``None`` are kept as they are (rules
    compare them); tuples become lists. Walks without recursion, so any depth of nesting is fine.
    """
    usable = _usable(secrets)
    root = dict(value)
    stack: list[dict[Any, Any] | list[Any]] = [root]
    while stack:
        node = stack.pop()
        pairs = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, item in pairs:
            if isinstance(item, str):
                node[key] = clean(item, limit=limit, secrets=usable)
            elif isinstance(item, Mapping):
                stack.append(copy := dict(item))
                node[key] = copy
            elif isinstance(item, list | tuple):
                stack.append(copy_list := list(item))
                node[key] = copy_list
    return root


def _usable(secrets: Iterable[str]) -> tuple[str, ...]:
    return tuple(s for s in secrets if len(s) >= 4)


def _spans(text: str, secrets: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where the secrets are in ``text``: ``(start, end)`` pairs, unsorted, possibly overlapping."""
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        at = text.find(secret)
        while at >= 0:
            spans.append((at, at + len(secret)))
            at = text.find(secret, at + len(secret))
    if _MAY_HOLD.search(text) is None:
        return spans
    for rule in _RULES:  # a rule's only groups are its secret's alternatives: the one that matched is last
        spans.extend(match.span(match.lastindex or 0) for match in rule.finditer(text))
    return spans


def _masked(text: str, spans: list[tuple[int, int]], shown: int) -> str:
    """``text[:shown]`` with each run of overlapping or touching spans replaced by one mask."""
    parts: list[str] = []
    done, masked_to = 0, -1
    for start, end in sorted(spans):
        if start >= shown:
            break
        if start > masked_to:
            parts += (text[done:start], MASK)
        done = masked_to = max(masked_to, end)
    parts.append(text[done:shown])
    return "".join(parts)


def _cut(data: bytes, limit: int, total: int) -> str:
    """The first bytes of ``data`` and a marker, within ``limit`` bytes; ``total`` is the original size."""
    marker = f"\n…[truncated {{}} of {total} bytes]"
    room = limit - len(marker.format(total).encode("utf-8"))
    if room < 0:  # no room for the marker: the bound wins
        return data[:limit].decode("utf-8", errors="ignore")
    head = data[:room].decode("utf-8", errors="ignore")
    return head + marker.format(total - len(head.encode("utf-8")))
