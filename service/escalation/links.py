"""Which URLs from alerts become links, and how text is kept from becoming one (pure; never fetches).

An alert's ``generatorURL`` and its ``runbook_url`` annotation are data: whoever can fire an alert picks
them, and a bundle shows them to a human as "graph" and "runbook". ``Policy.judge`` decides once, when
the bundle is built (``bundle.build``), whether such a URL is a link: the scheme is http or https, there
is a host and no userinfo (``https://ops.example@evil.example/``), the host is a plain DNS name or IP
address (no ``\\``, ``%``, spaces or non-ASCII letters that a browser would read as another host) and it
is on the allow-list. A refused URL travels in the bundle as an ``incidents.RefusedLink``: defanged text
(``hxxp[:]//evil.example/…``) and the reason, which every renderer shows escaped, never as a link.
Renderers do not decide again; they only re-check the scheme (``usable``) and percent-encode.

The allow-list (``policy``): ``REMEDIATOR_LINK_HOSTS`` — host names, ``*.example.com`` for every name
under example.com (not example.com itself), checked when the settings load (``model.hostnames``) — plus
the hosts of our own base URL (the incident and approve links) and of ``REMEDIATOR_PROMETHEUS_URL``.

``defang`` breaks what GitHub-flavoured Markdown or a chat client would auto-link in free text — ``://``
becomes ``[:]//``, ``www.`` becomes ``www[.]``, the ``@`` of an e-mail address ``[@]`` — the convention of
security write-ups: a reader still sees the address, and nothing is clickable or fetched on preview.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from service.model import hostnames, incidents

#: the longest URL made a link (a Slack field holds 2000 units; a graph URL is rarely over 1000)
LONGEST = 2000
#: the most of a refused URL shown as text
SHOWN = 200

#: what no link may hold: controls, line separators, bidi and other invisible format characters, and
#: spaces other than the ASCII one (a plain space is percent-encoded when the link is rendered)
_ODD = re.compile("[\x00-\x1f\x7f-\xa0\u061c\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]")
_SCHEME = re.compile(r"(?i)\bh(?:tt|xx)p(s?)(?=\[?:)")
_COLON_SLASHES = re.compile(r":(?=//)")
_WWW = re.compile(r"(?i)(www)\.")  # anywhere: a renderer's idea of a word boundary may differ from ours
_EMAIL_AT = re.compile(r"(?<=[\w.+-])@(?=[\w-]+\.[\w-])")


@dataclass(frozen=True)
class Policy:
    """The allow-list of link hosts, compiled once: exact names and ``.suffix`` wildcards."""

    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    def allows(self, host: str) -> bool:
        return host in self.hosts or host.endswith(self.suffixes)

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be a link, or None when it may."""
        problem, host = _parse(url)
        if problem is not None:
            return problem
        return None if self.allows(host) else "host not allow-listed"

    def judge(self, name: str, url: str | None) -> tuple[str | None, incidents.RefusedLink | None]:
        """``(url, None)`` for a link; ``(None, refused)`` for a URL shown as text; else ``(None, None)``."""
        if url is None or not url.strip():
            return None, None
        kept = url.strip()
        problem = self.refusal(kept)
        if problem is None:
            return kept, None
        return None, incidents.RefusedLink(name=name, text=shown(kept), reason=problem)


def policy(hosts: Iterable[str], *own_urls: str) -> Policy:
    """The allow-list of ``REMEDIATOR_LINK_HOSTS`` plus the hosts of ``own_urls`` (empty ones skipped)."""
    names = {host.strip().lower().rstrip(".") for host in hosts if host.strip()}
    for url in own_urls:
        problem, host = _parse(url.strip()) if url.strip() else ("empty", "")
        if problem is None:
            names.add(host)
    return Policy(
        hosts=frozenset(n for n in names if not n.startswith("*.")),
        suffixes=tuple(sorted(n[1:] for n in names if n.startswith("*."))),
    )


def usable(url: object) -> str | None:
    """``url`` stripped if it is well-formed http(s) without userinfo (the renderers' own check, which
    cannot know the allow-list: ``bundle.build`` already applied it); None otherwise."""
    if not isinstance(url, str):
        return None
    kept = url.strip()
    return kept if _parse(kept)[0] is None else None


def shown(url: str) -> str:
    """A refused URL as text: one line, at most ``SHOWN`` characters, defanged (``hxxp[:]//…``)."""
    text = defang(_SCHEME.sub(lambda m: f"hxxp{m.group(1)}", " ".join(_ODD.sub(" ", url).split())))
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def defang(text: str) -> str:
    """``text`` with nothing a Markdown or chat renderer would auto-link: ``[:]//``, ``www[.]``, ``[@]``."""
    if ":" in text:
        text = _COLON_SLASHES.sub("[:]", text)
    if "ww" in text or "WW" in text:
        text = _WWW.sub(r"\1[.]", text)
    if "@" in text:
        text = _EMAIL_AT.sub("[@]", text)
    return text


def _parse(url: str) -> tuple[str | None, str]:
    """``(problem, host)``: problem is None for a well-formed http(s) URL with a plain host, no userinfo."""
    if len(url) > LONGEST:
        return "too long", ""
    if _ODD.search(url):
        return "holds control or invisible characters", ""
    if not url[:8].lower().startswith(("http://", "https://")):
        return "not an http(s) URL", ""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError for a port that is not a number in range
    except ValueError:
        return "malformed", ""
    if "@" in parts.netloc:
        return "has userinfo", ""
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "no host", ""
    if not hostnames.plain(host):
        return "host is not a plain DNS name or IP address", ""
    return None, host
