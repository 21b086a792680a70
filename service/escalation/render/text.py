"""Text helpers shared by the renderers: truncation with a marker, escaping, safe links, times, durations.

User data (labels, annotations, summaries, reasons, commands) is never trusted:

- Slack mrkdwn (``mrkdwn``): ``&``, ``<``, ``>`` escaped as entities (Slack's own rule), so ``<!channel>``
  or ``<http://evil|click>`` show as text; runs of three backticks split so no code block opens or closes.
- Markdown (``md_text``): ``\\`` and ``` ` * [ ] ( ) | ~ # ! { } $ ``` backslash-escaped, an ``_`` that
  could open emphasis too, ``& < >`` as entities: no link, image, HTML, heading, emphasis or table cell
  can form. Identifiers go in code spans whose fence is longer than any backtick run (``md_code``),
  commands in fences no line can close (``md_fence``).
- Both: bare URLs, ``www.`` and e-mail addresses are defanged (``http[:]//…``, ``links.defang``) so no
  renderer auto-links them, and single-line fields lose their line breaks, control characters and the
  bidirectional controls that could disguise what follows them.
- A suggested command is shown whole or not at all (``command``): one that holds a line break or another
  control character, or is too long to show, is replaced by a ``#`` note — a cut or cleaned command would
  be another command.

Links: ``bundle.build`` already applied the host allow-list (``escalation.links``); here a URL is only
re-checked for http(s) without userinfo and percent-encoded so it cannot break out of ``<url|label>`` or
``[label](url)``. Pure: nothing is fetched.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from service.escalation import links
from service.matching import templates
from service.model import incidents

MARKER = "… (truncated)"
#: the longest URL put in a Slack link (a field holds 2000 units)
SLACK_LINK = 1000

#: bidirectional embeddings, overrides and isolates: they can make text after them read backwards
_BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)
#: C0 and C1 control characters (those that are whitespace are already gone when this applies)
_CONTROLS: dict[int, None] = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)])
#: what a link may keep as it is; everything else (spaces, quotes, <>, (), [], |, backticks …) is %-encoded
_URL_SAFE = ":/?#@!$&*+,;=%~-._"
_MD_ESCAPE = {c: "\\" + c for c in "\\`*[]()|~#!{}$"} | {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: an underscore that could open or close emphasis (between two letters or digits it cannot)
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
_MD_TABLE = str.maketrans(_MD_ESCAPE)
_BACKTICKS = re.compile(r"`+")
_FENCE = re.compile(r"`{3,}")
_NOT_IN_CODE = frozenset("<>&[]()|\\")


# -- reading the incident detail (the API's JSON; the bundle is read typed) ----------------------------


def string(value: Any) -> str:
    """``value`` as text; ``None`` as the empty string."""
    return "" if value is None else str(value)


def field(item: BaseModel | Mapping[str, Any], name: str) -> Any:
    """A field of a bundle item (the model) or of a row of the incident detail (JSON); None if absent."""
    return getattr(item, name, None) if isinstance(item, BaseModel) else item.get(name)


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (documents may be partial or old)."""
    return value if isinstance(value, dict) else {}


def objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list, skipping anything else."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def number(value: Any) -> float | None:
    """``value`` as a finite float; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


# -- truncation and clean-up ----------------------------------------------------------------------


def units(text: str) -> int:
    """The length Slack counts: UTF-16 code units (an emoji outside the BMP is two)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def truncate(text: str, limit: int, *, marker: str = MARKER) -> str:
    """``text`` cut to at most ``limit`` UTF-16 units, ending with ``marker`` when something was cut.

    A cut never splits an HTML entity (``&amp;``) that escaping produced.
    """
    if units(text) <= limit:
        return text
    room = limit - units(marker)
    if room <= 0:
        return marker[: max(0, limit)]
    cut = text[:room]
    over = units(cut) - room
    if over > 0:
        cut = cut[: len(cut) - over]  # every character dropped is at least one unit
    amp = cut.rfind("&", max(0, len(cut) - 6))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + marker


def one_line(text: str) -> str:
    """Whitespace (newlines too) collapsed to single spaces; control and bidi-override characters gone."""
    return " ".join(text.translate(_BIDI_CONTROLS).split()).translate(_CONTROLS)


def clip(text: Any, limit: int) -> str:
    """One line of ``text`` of at most ``limit`` characters (before any escaping)."""
    return truncate(one_line(string(text)), limit)


# -- Slack mrkdwn ---------------------------------------------------------------------------------


def mrkdwn(text: str) -> str:
    """Escape Slack's control characters so user data shows as text (no mention, no link), split runs of
    three backticks (with zero-width spaces) so it cannot open or close a code block, and defang URLs."""
    escaped = links.defang(_slack_escape(text))
    return _FENCE.sub(lambda m: "\u200b".join(m.group()), escaped) if "```" in escaped else escaped


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_line(text: Any, limit: int) -> str:
    """A single-line mrkdwn-escaped value, at most ``limit`` units after escaping."""
    return truncate(mrkdwn(one_line(string(text))), limit)


def mrkdwn_code(text: str, limit: int) -> str:
    """A command for inside a Slack ``` block: ``&<>`` escaped and nothing else changed (Slack shows the
    entities as the characters, so a copy is the command); a ``#`` note instead when it cannot be shown
    whole, holds three backticks in a row (they would close the block) or exceeds ``limit`` escaped."""
    shown = command(text, limit)
    if "```" in shown:
        return "# not shown here: the command holds three backticks in a row, which would end the block"
    escaped = _slack_escape(shown)
    if units(escaped) > limit:
        return f"# not shown here: the command is too long for Slack ({len(shown)} characters)"
    return escaped


def slack_link(label: str, url: Any) -> str:
    """``<url|label>`` for an http(s) URL; just the (escaped) label otherwise. ``label`` is escaped here."""
    href = safe_link(url)
    text = mrkdwn(one_line(label))
    if href is None or len(href) > SLACK_LINK:  # too long for a field or a line: the label alone
        return text
    return f"<{_slack_escape(href)}|{text}>"


# -- Markdown -------------------------------------------------------------------------------------


def md_text(text: Any, limit: int = 1000) -> str:
    """One line of user data as inert Markdown: no emphasis, link, HTML or table cell break can form."""
    return _MD_UNDERSCORE.sub(r"\\_", links.defang(clip(text, limit)).translate(_MD_TABLE))


def md_code(text: Any, limit: int = 200) -> str:
    """An identifier as a code span; a value with any of ``<>&[]()|\\`` falls back to escaped text.

    Code spans are literal (no entity or backslash escape works in them), so only values that could not
    read as HTML or a link even to a sloppy renderer, nor end a table cell, go in one.
    """
    value = clip(text, limit)
    if not value:
        return ""
    if any(c in value for c in _NOT_IN_CODE):
        return md_text(value, limit)
    longest = max((len(m.group()) for m in _BACKTICKS.finditer(value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def md_fence(lines: list[str], info: str = "sh") -> str:
    """A fenced code block that no line can close: the fence is longer than any backtick run inside."""
    body = "\n".join(line.translate(_BIDI_CONTROLS) for line in lines)
    longest = max((len(m.group()) for m in _BACKTICKS.finditer(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def command(value: Any, limit: int) -> str:
    """A suggested command to show whole in a code block, or a one-line ``#`` note saying why it is not:
    it holds a line break, another control or a bidi control (a document from before commands were
    checked), or it is longer than ``limit``. Never cut or cleaned: a human copies exactly this."""
    text = string(value)
    kind = templates.unsafe_character(text)
    if kind is not None:
        return f"# not shown: the command holds {kind}"
    if units(text) > limit:
        return f"# not shown: the command has {len(text)} characters, more than the {limit} shown here"
    return text


def md_link(label: str, url: Any) -> str:
    """``[label](url)`` for an http(s) URL; the escaped label alone otherwise (never a working other link)."""
    href = safe_link(url)
    return f"[{md_text(label)}]({href})" if href else md_text(label)


# -- links, times, durations ----------------------------------------------------------------------


def safe_link(url: Any) -> str | None:
    """An http(s) URL (no userinfo, a plain host) percent-encoded so it cannot end a link early; None
    for anything else. The host allow-list was applied when the bundle was built."""
    kept = links.usable(url)
    return None if kept is None else urllib.parse.quote(kept, safe=_URL_SAFE)


def moment(value: Any) -> datetime | None:
    """An RFC 3339 string (or epoch seconds, or a datetime) as an aware UTC datetime; None otherwise."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if not isinstance(value, str) or not value:
            return None
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """``2026-03-14T09:26:40Z``: a time as the bundle's JSON writes it."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def clock(value: Any) -> str:
    """``2026-03-14 09:26:40 UTC``; unparsable values as cleaned-up text."""
    parsed = moment(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC") if parsed else clip(value, 40)


def duration(seconds: float) -> str:
    """``3 min 10 s``, ``1 h 5 min``, ``45 s`` (rounded to the second)."""
    total = round(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


def against_target(elapsed: float, target: float | None, *, still_open: bool = False) -> str:
    """``within the 5 min target (1 min 50 s to spare)`` / ``over the 2 min target by 1 min 10 s``."""
    if target is None or target <= 0:
        return "no MTTR target"
    if elapsed <= target:
        left = "left" if still_open else "to spare"
        return f"within the {duration(target)} target ({duration(target - elapsed)} {left})"
    return f"over the {duration(target)} target by {duration(elapsed - target)}"


# -- facts shared by the renderers (plain text; each renderer escapes) ----------------------------


def _target_parts(target: incidents.TargetRef | Mapping[str, Any]) -> list[str]:
    return [string(field(target, k)) for k in ("kind", "namespace", "name")]


def target_text(target: incidents.TargetRef | Mapping[str, Any]) -> str:
    """``Deployment shop/coordinator``."""
    kind, namespace, name = _target_parts(target)
    place = "/".join(p for p in (namespace, name) if p)
    return " ".join(p for p in (kind, place) if p) or "(no target)"


def target_key(target: incidents.TargetRef | Mapping[str, Any]) -> str:
    """``Deployment/shop/coordinator``, as ``TargetRef.key``; empty for no target."""
    parts = _target_parts(target)
    return "/".join(parts) if any(parts) else ""


def requests_of(raw: Any) -> list[str]:
    """``PATCH /apis/apps/v1/…`` for each request an action sent (its ``request``: a journal list, or a
    bundle's ``{"requests": […]}``)."""
    if isinstance(raw, dict):
        raw = raw.get("requests", [raw])
    return [" ".join(p for p in (string(r.get("method")), string(r.get("path"))) if p) for r in objects(raw)]


def result_text(result: Any, limit: int = 300) -> str:
    """A result object as ``key=value, …`` (a list of scalars space-separated; deeper values summarised)."""
    if not isinstance(result, dict) or not result:
        return ""
    parts = []
    for key, value in result.items():
        if isinstance(value, list) and not any(isinstance(v, dict | list) for v in value):
            shown = " ".join(string(v) for v in value[:5]) + (" …" if len(value) > 5 else "")
        else:
            shown = "{…}" if isinstance(value, dict | list) else string(value)
        parts.append(f"{key}={shown}")
    return clip(", ".join(parts), limit)


def event_name(event: str) -> tuple[str, int | None]:
    """``escalate:2`` → (``escalate``, 2); other events → (event, None)."""
    name, _, level = event.partition(":")
    return name, int(level) if level.isdigit() else None


#: what each customer-communication reminder is about (``remind:statuspage``, ``overdue:email``)
REMINDED = {"statuspage": "status page update", "email": "email to stakeholders", "social": "social post"}


def reminder_headline(event: str) -> str | None:
    """``REMINDER: status page update due in 1 min`` for ``remind:statuspage``, ``OVERDUE: …`` for
    ``overdue:…``; None for any other event."""
    name, _sep, kind = event.partition(":")
    what = REMINDED.get(kind)
    if what is None or name not in ("remind", "overdue"):
        return None
    return f"REMINDER: {what} due in 1 min" if name == "remind" else f"OVERDUE: {what}"


def hhmm(value: Any) -> str:
    """``09:31 UTC``; unparsable values as cleaned-up text."""
    parsed = moment(value)
    return parsed.strftime("%H:%M UTC") if parsed else clip(value, 40)


def clock_origin(started_at: Any) -> str:
    """What the MTTR clock counts from: ``from the alert's start`` (the earliest ``startsAt``), or
    ``from detection`` for a bundle that does not know it."""
    return "from the alert's start" if moment(started_at) else "from detection"


def incident_url(own: Any, incident_id: Any, suffix: str = "") -> str | None:
    """Our own URL of another incident: ``own`` (an incident link ``…/ui/incidents/<id>`` of the bundle)
    with the id replaced by ``incident_id`` as one percent-encoded path segment, then ``suffix``
    (``/report``); None when ``own`` is no such link or the id is empty."""
    href = links.usable(own)
    ident = string(incident_id)
    if href is None or not ident:
        return None
    head, sep, _ = href.rstrip("/").rpartition("/ui/incidents/")
    return f"{head}/ui/incidents/{urllib.parse.quote(ident, safe='')}{suffix}" if sep else None


def ref_note(ref: incidents.LinkRef | Mapping[str, Any]) -> str:
    """``database-failure on StatefulSet/shop/postgresql`` (``, resolved`` when its state is known)."""
    rule, target = clip(field(ref, "rule"), 200), clip(field(ref, "target"), 300)
    note = " on ".join(p for p in (rule, target) if p) or "unknown rule"
    state = clip(field(ref, "state"), 20)
    return f"{note}, {state}" if state else note


def holders_text(holders: Any, limit: int = 20) -> str:
    """``L1 pagerduty:primary, L2 slack`` — at most ``limit`` holders, then how many more."""
    names = [clip(h, 100) for h in holders if clip(h, 100)] if isinstance(holders, list) else []
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def page_due_text(page_due_at: Any) -> str:
    """``Paging at 09:31 UTC unless mitigated``."""
    return f"Paging at {hhmm(page_due_at)} unless mitigated"


def paging_lines(bundle: incidents.Bundle, limit: int = 20) -> list[str]:
    """The bundle's paging facts as plain text, one line each (each renderer escapes): when it pages,
    the incident it was caused by, the incidents it caused, and who already holds the page."""
    lines = [page_due_text(bundle.page_due_at)] if bundle.page_due_at else []
    if bundle.caused_by is not None:
        cause = bundle.caused_by
        lines.append(
            f"Caused by incident {clip(cause.incident_id, 100)} ({ref_note(cause)}) — paged through it"
        )
    if bundle.effects:
        shown = [f"{clip(r.incident_id, 100)} ({ref_note(r)})" for r in bundle.effects[:limit]]
        more = f" and {len(bundle.effects) - limit} more" if len(bundle.effects) > limit else ""
        lines.append(f"Linked incidents: {', '.join(shown)}{more}")
    if bundle.holders:
        lines.append(f"Already paged: {holders_text(bundle.holders, limit)}")
    return lines


def mttr_line(state: str, elapsed: float | None, target: float | None) -> str:
    """``resolved in 3 min 10 s — over the 2 min target by 1 min 10 s``; an open incident counts so far."""
    if elapsed is None:
        return f"target {duration(target)}" if target else "no MTTR target"
    verb = {"resolved": "resolved in", "mitigated": "mitigated in"}.get(state, "open for")
    return f"{verb} {duration(elapsed)} — {against_target(elapsed, target, still_open=verb == 'open for')}"


#: what every rendering of a drill's bundle starts its title or headline with
DRILL = "[DRILL]"


def drilled(bundle: incidents.Bundle | None, title: str) -> str:
    """``[DRILL] title`` for a runbook drill's bundle; ``title`` unchanged otherwise."""
    return f"{DRILL} {title}" if bundle is not None and bundle.drill else title
