"""Alertmanager webhook payload, version 4 (what Alertmanager 0.25 posts).

Unknown extra fields are accepted and ignored (Alertmanager adds fields across versions,
e.g. ``notification_reason``); the fields we use are required and typed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Alertmanager's "zero time": what a firing alert carries in ``endsAt``.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class Alert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(min_length=1, max_length=128)

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an RFC 3339 timestamp string")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamp must carry a time zone (RFC 3339)")
        return value

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("an alert needs at least one label")
        return value

    @property
    def episode(self) -> tuple[str, datetime]:
        """The alert episode: one firing of one label set."""
        return (self.fingerprint, self.starts_at)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class Notification(BaseModel):
    """The body Alertmanager posts to a webhook receiver."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    version: str
    receiver: str = ""
    status: Literal["firing", "resolved"]
    alerts: list[Alert] = Field(max_length=10_000)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")

    @field_validator("version")
    @classmethod
    def _v4(cls, value: str) -> str:
        if value != "4":
            raise ValueError(f"unsupported webhook version {value!r}; Alertmanager sends version 4")
        return value
