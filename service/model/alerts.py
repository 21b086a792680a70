"""Alertmanager webhook payload, version 4 (what Alertmanager 0.25 posts), with every value bounded.

Unknown extra fields are accepted and ignored (Alertmanager adds fields across versions,
e.g. ``notification_reason``); the fields we use are required, typed and bounded (docs/security-limits.md).
A value over its limit is a schema error naming the field, except where a 400 would make Alertmanager drop
a legitimate group for good: an annotation value (prose) is truncated with a marker, and a ``groupKey`` (which
Alertmanager builds from every label with ``group_by: ['...']``) is shortened to a prefix and a digest.

The fields that become keys or columns (fingerprint, receiver, groupKey, label names, the ``alertname``
label) refuse control characters; no label value may hold NUL (PostgreSQL text cannot store it).
The checks are pydantic constraints (run in pydantic-core, not Python) wherever one exists: intake validates
tens of thousands of alerts a second. ``describe`` turns their errors into sentences.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, ValidationError

#: Alertmanager's "zero time": what a firing alert carries in ``endsAt``.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

# The limits; docs/security-limits.md has the table and the reasons.
MAX_ALERTS = 10_000
MAX_LABELS = 64
MAX_NAME_CHARS = 128
MAX_LABEL_VALUE_CHARS = 1024
MAX_ANNOTATIONS = 64
MAX_ANNOTATION_VALUE_CHARS = 4096
MAX_GROUP_KEY_CHARS = 1024
MAX_RECEIVER_CHARS = 256
MAX_FINGERPRINT_CHARS = 128
MAX_URL_CHARS = 2048
MAX_TRUNCATED_ALERTS = 2**31 - 1  # a PostgreSQL integer

#: No character of Unicode category Cc (C0, DEL, C1) nor U+2028/U+2029: what a key or a column may hold.
_NO_CONTROL = "^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
#: No NUL: what a label value may hold.
_NO_NUL = "^[^\x00]*$"
#: Printable ASCII without spaces (Alertmanager sends 16 hex digits).
_FINGERPRINT = "^[!-~]+$"
#: One control character, as the key fields refuse them (intake refuses them in ids and queries too).
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PATTERNS = {
    _NO_CONTROL: "must not contain control characters (Unicode Cc, U+2028, U+2029)",
    _NO_NUL: "must not contain NUL (U+0000)",
    _FINGERPRINT: "must be printable ASCII without spaces",
}


def truncate_annotation(value: str) -> str:
    """The value within ``MAX_ANNOTATION_VALUE_CHARS``, marker included (validating the stored value again
    leaves it alone), NUL replaced by U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if len(value) <= MAX_ANNOTATION_VALUE_CHARS:
        return value
    keep = MAX_ANNOTATION_VALUE_CHARS - len(f"…[truncated {len(value)} chars]")
    return f"{value[:keep]}…[truncated {len(value) - keep} chars]"


def shorten_group_key(value: str) -> str:
    """The key within ``MAX_GROUP_KEY_CHARS``: a longer one becomes its prefix and a SHA-256 digest of the
    whole, so that two long keys stay apart (validating the stored value again leaves it alone)."""
    if len(value) <= MAX_GROUP_KEY_CHARS:
        return value
    digest = "…sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return value[: MAX_GROUP_KEY_CHARS - len(digest)] + digest


def _bounded_annotations(value: object) -> object:
    """Annotations with every value truncated (a new dict only when one was changed)."""
    if not isinstance(value, dict) or len(value) > MAX_ANNOTATIONS:
        return value  # the dict's own validation answers (too many: refused before any value is read)
    changed = None
    for key, text in value.items():
        if isinstance(text, str) and (len(text) > MAX_ANNOTATION_VALUE_CHARS or "\x00" in text):
            changed = changed if changed is not None else dict(value)
            changed[key] = truncate_annotation(text)
    return changed if changed is not None else value


Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS, pattern=_NO_CONTROL)]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE_CHARS, pattern=_NO_NUL)]
Labels = Annotated[dict[Name, LabelValue], Field(max_length=MAX_LABELS)]
Annotations = Annotated[
    dict[Name, str], Field(max_length=MAX_ANNOTATIONS), BeforeValidator(_bounded_annotations)
]
Url = Annotated[str, StringConstraints(max_length=MAX_URL_CHARS)]
Fingerprint = Annotated[str, StringConstraints(max_length=MAX_FINGERPRINT_CHARS, pattern=_FINGERPRINT)]
GroupKey = Annotated[str, StringConstraints(pattern=_NO_CONTROL), AfterValidator(shorten_group_key)]
Receiver = Annotated[str, StringConstraints(max_length=MAX_RECEIVER_CHARS, pattern=_NO_CONTROL)]


def describe(error: ErrorDetails) -> str:
    """The sentence for a validation error of this payload (the field is named apart, from ``loc``)."""
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    kind = error["type"]
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERNS:
        return _PATTERNS[ctx["pattern"]]
    if kind == "string_too_long":
        return f"longer than the limit of {ctx['max_length']} characters"
    if kind == "too_long":
        return f"more than the limit of {ctx['max_length']} entries"
    if kind == "string_too_short" and error["loc"][-1:] == ("[key]",):
        return "a name must not be empty"
    return error["msg"].removeprefix("Value error, ")


class Alert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Annotations = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: Url = Field(default="", alias="generatorURL")
    fingerprint: Fingerprint

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an RFC 3339 timestamp string")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("timestamp must carry a time zone (RFC 3339)")
        if value.utcoffset():
            try:  # the inbox key is the UTC instant, and 0001-01-01T00:00:00+01:00 has none
                value.astimezone(UTC)
            except OverflowError:
                raise ValueError("outside the years 1 to 9999 once converted to UTC") from None
        return value

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("an alert needs at least one label")
        name = value.get("alertname")
        if name is not None and not name.isprintable() and CONTROL.search(name):  # isprintable: cheap
            kind = PydanticCustomError("control_character", _PATTERNS[_NO_CONTROL])
            detail = InitErrorDetails(type=kind, loc=("alertname",), input=name)  # alerts[0].labels.alertname
            raise ValidationError.from_exception_data("labels", [detail])
        return value

    @property
    def episode(self) -> tuple[str, datetime]:
        """The alert episode: one firing of one label set."""
        return (self.fingerprint, self.starts_at)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class _Accepted(BaseModel):
    """An alert as intake accepted it before the limits existed: the same fields, unbounded."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str


def stored(payload: str | bytes) -> Alert:
    """An alert from the store (inbox row, incident): validated as intake does now, or — for one stored by a
    version before the limits, which must still be processed and shown — taken as it was accepted then."""
    try:
        return Alert.model_validate_json(payload)
    except ValidationError:
        accepted = _Accepted.model_validate_json(payload)
        return Alert.model_construct(**dict(accepted))


class Notification(BaseModel):
    """The body Alertmanager posts to a webhook receiver."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    version: str
    receiver: Receiver = ""
    status: Literal["firing", "resolved"]
    alerts: list[Alert] = Field(max_length=MAX_ALERTS)
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Annotations = Field(default_factory=dict, alias="commonAnnotations")
    external_url: Url = Field(default="", alias="externalURL")
    group_key: GroupKey = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, le=MAX_TRUNCATED_ALERTS, alias="truncatedAlerts")

    @field_validator("version")
    @classmethod
    def _v4(cls, value: str) -> str:
        if value != "4":
            raise ValueError(f"unsupported webhook version {value!r}; Alertmanager sends version 4")
        return value
