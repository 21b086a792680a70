"""Settings: the only place that reads the environment (``REMEDIATOR_*``); CLI flags mirror every field.

Secure by default: without a webhook token the service binds loopback only, and a non-loopback
listen address without a token refuses to start. Secrets are ``SecretStr`` and never printed.

Every secret (``SECRETS``: the ``SecretStr`` fields, and the store and Redis URLs, which may carry a
password) can also come from a file: ``REMEDIATOR_<NAME>_FILE=/path`` (the content, trailing newline
stripped), or ``REMEDIATOR_SECRETS_DIR`` holding one file per secret named after the field
(``webhook_token`` or ``webhook-token``: a mounted Kubernetes Secret). One source does it
(``_SecretFiles``); a value and its ``_FILE`` both set is an error, and no error ever quotes a file's content.
Durations (``*_s`` settings, the window of ``action_budget``) take Prometheus units (``model.rules``).

Every structured setting is parsed once, here, when the settings load (the route table is kept parsed:
``route_table``). Imports nothing of ours above ``model`` and ``errors``.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service import errors
from service.model import hostnames, levels, routes, rules

_KEYS_FILE = "REMEDIATOR_PAGERDUTY_ROUTING_KEYS_FILE"
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
_APPROVER_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9._@]{0,63}$")
_PREFIX = "REMEDIATOR_"
SECRETS_DIR = "REMEDIATOR_SECRETS_DIR"
URL_SECRETS = ("store_url", "redis_url")
"""Plain-text settings that are secrets when they carry a password (``postgresql://u:PASSWORD@…``)."""
_OWN_FILE_FIELD = ("pagerduty_routing_keys",)
"""Secrets whose ``_FILE`` is a field of its own with other semantics (its entries are merged)."""


class Settings(BaseSettings):
    """Every setting of the service, from ``REMEDIATOR_<NAME>`` or the matching ``--name`` flag."""

    model_config = SettingsConfigDict(env_prefix=_PREFIX, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init) win, then secrets from files, then the environment."""
        return (init_settings, _SecretFiles(settings_cls), env_settings, dotenv_settings)

    listen: str = Field("127.0.0.1:8080", description="host:port to bind")
    store_url: str = Field("sqlite:///./remediator.db", description="sqlite:///PATH or postgresql://…")
    redis_url: str = Field("", description="empty = in-process coordination (single replica)")
    rules_dir: Path = Field(Path("./rules"), description="directory of rule files (*.yaml)")
    webhook_token: SecretStr | None = Field(
        None, description="bearer token (or basic-auth password) for intake"
    )
    approver_tokens: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict, description="name=token,… for ack/approve/pause"
    )
    notify_webhook_url: str = Field("", description="generic webhook notifier URL (on when set)")
    notify_webhook_token: SecretStr | None = Field(None, description="bearer token for the webhook notifier")
    notify_webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key: the webhook notifier signs each body (X-Remediator-Signature)"
    )
    slack_webhook_url: SecretStr | None = Field(
        None, description="Slack incoming-webhook URL (the Slack notifier is on when set; 1 message/s)"
    )
    slack_bot_token: SecretStr | None = Field(
        None,
        description="Slack app bot token (xoxb-…, scope chat:write): the slack_app channel is on when set, "
        "posting one message per incident to slack_channel and updating it in place",
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="Slack app signing secret: POST /v1/slack/interactions is on when set (buttons)"
    )
    slack_channel: str = Field(
        "", description="Slack channel id the app posts to (C…; required with the token)"
    )
    slack_approvers: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Slack user ids allowed to press Approve/Reject/Acknowledge, with the approver name the "
        "timeline shows: U0123ABC=alice,U0456DEF=bob",
    )
    slack_api_url: str = Field("https://slack.com/api", description="Slack Web API base URL")
    warroom_severity: str = Field(
        "critical",
        description="incidents at or above this severity get a war room, a Slack channel opened by the app "
        "(needs REMEDIATOR_SLACK_BOT_TOKEN; scopes channels:manage, chat:write, pins:write, "
        "usergroups:read); empty or 'off': no war rooms",
    )
    warroom_invite: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Slack user (U…/W…) and user-group (S…) ids invited to every war room, comma-separated",
    )
    warroom_bridge_url: str = Field(
        "",
        description="video bridge posted in the war room, an http(s) URL template with {incident_id}, e.g. "
        "https://meet.example.com/inc-{incident_id} (empty: no bridge link)",
    )
    warroom_archive_after_s: float = Field(
        86400.0, ge=0, description="a resolved incident's war room is archived this long after the resolve"
    )
    pagerduty_routing_key: SecretStr | None = Field(
        None,
        description="PagerDuty Events v2 routing (integration) key (the PagerDuty notifier is on when set)",
    )
    pagerduty_routing_keys: SecretStr | None = Field(
        None,
        description="PagerDuty routing keys per named service, name=KEY,name=KEY (pages pagerduty:NAME)",
    )
    pagerduty_routing_keys_file: Path | None = Field(
        None, description="file with more name=KEY entries (commas or lines; a mounted Kubernetes Secret)"
    )
    escalation_levels: str = Field(
        "",
        description="recipients per escalation level, e.g. 1=pagerduty:primary;2=pagerduty:secondary+"
        "slack@U0123ABC;3=pagerduty:managers;4=pagerduty:cto (empty: every level notifies the routes; "
        "see service/model/levels.py)",
    )
    pagerduty_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue", description="PagerDuty Events v2 enqueue endpoint"
    )
    notify_routes: str = Field(
        "",
        description="channels per rule or severity, e.g. critical=pagerduty+slack;rule:redis-failure="
        "pagerduty;*=log (empty: every channel that is on; see service/model/routes.py)",
    )
    notify_fallback: str = Field(
        "", description="channel that gets a notification whose own channel failed for good (empty: none)"
    )
    prometheus_url: str = Field(
        "", description="Prometheus base URL for probes (empty: prometheus probes skip)"
    )
    kubeconfig: Path | None = Field(None, description="kubeconfig file (else in-cluster, else no Kubernetes)")
    monitor_postgres_dsn: SecretStr | None = Field(
        None, description="postgresql://user@host:port/db the postgres.* probes connect to (no password here)"
    )
    monitor_postgres_password_file: Path | None = Field(
        None, description="file holding the monitored PostgreSQL password (a mounted Kubernetes Secret)"
    )
    monitor_redis_url: SecretStr | None = Field(
        None, description="redis://host:port/db the redis.* probes use"
    )
    monitor_redis_password_file: Path | None = Field(
        None, description="file holding the monitored Redis password"
    )
    monitor_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="hosts besides the DSN's/URL's own that probes may send monitoring credentials to",
    )
    link_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="hosts alert links (generatorURL, runbook_url) may point at to be shown as links, e.g. "
        "grafana.example.com,*.runbooks.example.com (public_url's and prometheus_url's hosts always may)",
    )
    dry_run: bool = Field(
        False, description="record what would be done (plans, exact requests), write nothing"
    )
    drill_channel: str = Field(
        "log",
        pattern="^(log|webhook|slack|slack_app)$",
        description="the one channel a runbook drill's notifications go to (never PagerDuty)",
    )
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="namespaces automatic actions may touch (empty: all but kube-system)",
    )
    action_budget: str = Field(
        "10/10m", description="automatic actions per window, COUNT/DURATION, e.g. 10/10m or 50/1h"
    )
    storm_brake: int = Field(5, ge=1, description="incidents acting at once before automation stops")
    flap_window_s: float = Field(1800, ge=0, description="a firing this soon after a mitigation is a flap")
    link_window_s: float = Field(
        900,
        ge=0,
        le=86_400,
        description="an incident opened this soon after an open incident of a rule it depends_on opened is"
        " linked to it (caused_by) and pages through it; 0: never link",
    )
    link_grace_s: float = Field(
        120,
        ge=0,
        le=3600,
        description="a linked incident still firing this long after its cause resolved pages on its own",
    )
    first_response_s: float = Field(
        300,
        gt=0,
        le=3600,
        description="level-1 response time: while an automatic action verifies, the page goes out at alert"
        " start + min(this, the rule's MTTR target) unless mitigated first",
    )
    action_timeout_s: float = Field(30, gt=0, le=600, description="timeout of one action's API calls")
    verify_interval_s: float = Field(5, gt=0, le=120, description="how often a verify probe is re-run")
    probe_timeout_s: float = Field(5.0, gt=0, le=300, description="default timeout of one probe")
    diagnosis_deadline_s: float = Field(
        20.0, gt=0, le=600, description="all probes of a rule finish within this"
    )
    evidence_limit_bytes: int = Field(4096, ge=256, le=1_048_576, description="evidence kept per finding")
    public_url: str = Field("", description="base URL humans use to reach this service (links in bundles)")
    session_secret: SecretStr | None = Field(
        None,
        description="HMAC key of the console's session cookies (empty: a random key per process, so sessions"
        " do not survive a restart or span replicas)",
    )
    session_ttl_s: float = Field(43200, gt=0, le=604_800, description="how long a console session lasts")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest accepted webhook body")
    body_timeout_s: float = Field(
        10.0, gt=0, le=300, description="a request body not received within this is answered 408"
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="a connection that has not sent a whole request head within this (after it opened or "
        "after the previous answer) is closed; also how long an idle keep-alive connection stays open",
    )
    max_inflight: int = Field(
        256, ge=1, le=100_000, description="requests handled at once before 503 + Retry-After (not probes)"
    )
    max_large_bodies: int = Field(
        16, ge=1, le=10_000, description="requests with a body over 64 KiB (or chunked) handled at once"
    )
    metrics_refresh_s: float = Field(
        5.0, gt=0, le=300, description="how often the store-derived gauges of /metrics are recomputed"
    )
    workers: int = Field(32, ge=1, le=256, description="pipeline workers (alerts processed at once)")
    inbox_lease_s: float = Field(
        6.0,
        ge=2,
        le=600,
        description="how long a claimed inbox row stays claimed without a heartbeat (renewed every"
        " min(1 s, lease/4) while it is worked on): a dead replica's alerts are taken over within it",
    )
    max_claims: int = Field(
        3,
        ge=1,
        le=100,
        description="claims of one alert that never finish (the worker died or hung) before it is"
        " quarantined: not processed again, its incident escalated",
    )
    store_timeout_s: float = Field(2.0, gt=0, description="how long intake waits for the store before 503")
    outbox_max_attempts: int = Field(12, ge=1, description="delivery attempts before a notification fails")
    outbox_backoff_s: float = Field(1.0, gt=0, description="first retry delay of a notification (doubles)")
    statuspage_url: str = Field(
        "https://api.statuspage.io",
        description="Atlassian Statuspage API base (tests point it at a stand-in)",
    )
    statuspage_page_id: str = Field("", description="the Statuspage page id (customer updates on when set)")
    statuspage_api_key_file: Path | None = Field(
        None, description="file holding the Statuspage API key (Authorization: OAuth KEY)"
    )
    statuspage_component_id: str = Field(
        "", description="the Statuspage component whose status each update sets (empty: none)"
    )
    statuspage_auto: bool = Field(
        False, description="publish the Investigating and Resolved status-page updates without a click"
    )
    smtp_host: str = Field("", description="SMTP server for customer/stakeholder email (on when set)")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_starttls: bool = Field(True, description="upgrade the SMTP connection with STARTTLS")
    smtp_username: str = Field("", description="SMTP user (empty: no login)")
    smtp_password_file: Path | None = Field(None, description="file holding the SMTP password")
    smtp_from: str = Field("remediator@localhost", description="From: of the email updates")
    smtp_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="who gets the email updates: a,b@example.com"
    )
    comms_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="alert labels whose values may appear in customer-facing drafts, e.g. component,region"
        " (empty: none)",
    )
    retention_days: float = Field(
        90,
        ge=0,
        description="resolved incidents (with their rows), done inbox rows and delivered notifications older "
        "than this are deleted by a background task; 0 = keep everything",
    )
    retention_interval_s: float = Field(
        3600, gt=0, le=86400, description="how often the retention task runs (one replica at a time)"
    )
    retention_batch: int = Field(
        100, ge=1, le=100_000, description="rows deleted per retention transaction (small: intake goes on)"
    )
    wal_checkpoint_s: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="SQLite: how often a PASSIVE WAL checkpoint runs in a thread (automatic checkpoints, "
        "which would run on the event loop, are off)",
    )
    log_format: str = Field("auto", pattern="^(auto|json|console)$", description="auto: console on a TTY")
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$")

    _route_table: routes.Table = PrivateAttr(default_factory=routes.Table)
    _escalation_matrix: levels.Matrix = PrivateAttr(default_factory=levels.Matrix)
    _pagerduty_services: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @field_validator("*", mode="before")
    @classmethod
    def _durations(cls, value: object, info: ValidationInfo) -> object:
        """A ``*_s`` setting takes a duration with units too (``30m``, ``1d``): the one parser."""
        if isinstance(value, str) and str(info.field_name).endswith("_s") and value.strip():
            return rules.parse_duration(value).total_seconds()  # ValueError: pydantic names the field
        return value

    @field_validator("action_budget")
    @classmethod
    def _budget(cls, value: str) -> str:
        budget(value)  # raises ValueError naming the setting
        return value

    @field_validator("approver_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> object:
        if isinstance(value, str):
            pairs: dict[str, str] = {}
            for item in re.split(r"[,\n]", value):  # commas, or lines (a file)
                if not item.strip():
                    continue
                name, sep, token = item.partition("=")
                if not sep or not name.strip() or not token.strip():
                    raise ValueError("approver_tokens must be name=token pairs separated by commas")
                pairs[name.strip()] = token.strip()
            return pairs
        return value

    @field_validator(
        "webhook_token",
        "notify_webhook_token",
        "monitor_postgres_dsn",
        "monitor_redis_url",
        "session_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "notify_webhook_secret",
        "slack_webhook_url",
        "pagerduty_routing_key",
        "pagerduty_routing_keys",
        mode="before",
    )
    @classmethod
    def _empty_notifier_secret_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_bot_token", "slack_signing_secret", mode="before")
    @classmethod
    def _empty_slack_secret_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_approvers", mode="before")
    @classmethod
    def _slack_approvers(cls, value: object) -> object:
        return slack_approvers(value) if isinstance(value, str) else value

    @field_validator("slack_channel")
    @classmethod
    def _slack_channel(cls, value: str) -> str:
        value = value.strip()
        if value and not _SLACK_CHANNEL.match(value):
            raise errors.ConfigError(
                f"REMEDIATOR_SLACK_CHANNEL: {value[:40]!r} is not a Slack channel id (C…)"
            )
        return value

    @model_validator(mode="after")
    def _slack_app_has_a_channel(self) -> Settings:
        if self.slack_bot_token is not None and not self.slack_channel:
            raise errors.ConfigError(
                "REMEDIATOR_SLACK_BOT_TOKEN is set without REMEDIATOR_SLACK_CHANNEL (the channel id to"
                " post to)"
            )
        return self

    @field_validator("slack_webhook_url", "pagerduty_url", "slack_api_url")
    @classmethod
    def _notifier_url(cls, value: SecretStr | str | None, info: ValidationInfo) -> SecretStr | str | None:
        url = value.get_secret_value() if isinstance(value, SecretStr) else value
        if url is not None and not url.startswith(("https://", "http://")):
            # ConfigError, not ValueError: pydantic would quote the value, and a Slack URL is a credential
            raise errors.ConfigError(f"REMEDIATOR_{str(info.field_name).upper()} must be an http(s) URL")
        return value

    @field_validator("warroom_severity")
    @classmethod
    def _warroom_severity(cls, value: str) -> str:
        return warroom_severity(value)

    @field_validator("warroom_invite", mode="before")
    @classmethod
    def _warroom_invite(cls, value: object) -> object:
        return warroom_invite(value) if isinstance(value, str) else value

    @field_validator("warroom_bridge_url")
    @classmethod
    def _warroom_bridge_url(cls, value: str) -> str:
        return warroom_bridge_url(value)

    @field_validator("notify_fallback")
    @classmethod
    def _fallback(cls, value: str) -> str:
        return routes.check_fallback(value)

    @field_validator("monitor_hosts", "namespaces", "link_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().lower() for item in value.split(",") if item.strip()]
        return value

    @field_validator("smtp_to", "comms_labels", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("link_hosts")
    @classmethod
    def _link_hosts(cls, value: list[str]) -> list[str]:
        return hostnames.check_link_hosts(
            value
        )  # raises ConfigError naming REMEDIATOR_LINK_HOSTS and the entry

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("listen must be host:port, e.g. 127.0.0.1:8080")
        return value

    @field_validator("store_url")
    @classmethod
    def _store(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("store_url must start with sqlite:/// or postgresql://")
        return value

    @model_validator(mode="after")
    def _parse_routes(self) -> Settings:
        # raises ConfigError naming REMEDIATOR_NOTIFY_ROUTES and the bad entry; kept parsed
        self._route_table = routes.parse(self.notify_routes)
        return self

    @model_validator(mode="after")
    def _parse_levels(self) -> Settings:
        # raises ConfigError naming the setting and the entry (never a routing key); kept parsed
        keys = levels.parse_routing_keys(
            self.pagerduty_routing_keys.get_secret_value() if self.pagerduty_routing_keys else ""
        )
        for name, key in _keys_file(self.pagerduty_routing_keys_file).items():
            if name in keys:
                raise errors.ConfigError(
                    f"{_KEYS_FILE}: service {name!r} is also in REMEDIATOR_PAGERDUTY_ROUTING_KEYS"
                )
            keys[name] = key
        on = [name for name, is_on in self._channels_on().items() if is_on]
        self._escalation_matrix = levels.parse(self.escalation_levels, services=keys, on=on)
        self._pagerduty_services = {name: SecretStr(key) for name, key in keys.items()}
        return self

    @model_validator(mode="after")
    def _secure_default(self) -> Settings:
        if self.webhook_token is None and not is_loopback(self.host):
            raise errors.ConfigError(
                f"refusing to listen on {self.listen} without REMEDIATOR_WEBHOOK_TOKEN: "
                "set a token or bind a loopback address such as 127.0.0.1"
            )
        return self

    @model_validator(mode="after")
    def _approvers_have_their_own_tokens(self) -> Settings:
        """The webhook token is in Alertmanager's configuration (and in every replica's environment); an
        approver token equal to it would let anyone who can read that configuration approve actions."""
        if self.webhook_token is None:
            return self
        webhook = self.webhook_token.get_secret_value().encode()
        same = [
            name
            for name, token in self.approver_tokens.items()
            if hmac.compare_digest(token.get_secret_value().encode(), webhook)
        ]
        if same:
            raise errors.ConfigError(
                f"REMEDIATOR_APPROVER_TOKENS: the token of {', '.join(sorted(same))} is the webhook token "
                "(REMEDIATOR_WEBHOOK_TOKEN); give every approver a token of their own"
            )
        return self

    @property
    def budget(self) -> tuple[int, float]:
        """``action_budget`` as (actions, window seconds)."""
        return budget(self.action_budget)

    @property
    def route_table(self) -> routes.Table:
        """``notify_routes`` as parsed when the settings loaded."""
        return self._route_table

    @property
    def escalation_matrix(self) -> levels.Matrix:
        """``escalation_levels`` as parsed when the settings loaded (empty: unset)."""
        return self._escalation_matrix

    @property
    def pagerduty_services(self) -> dict[str, SecretStr]:
        """Routing keys by PagerDuty service name (``REMEDIATOR_PAGERDUTY_ROUTING_KEYS`` and its file)."""
        return dict(self._pagerduty_services)

    @property
    def notify_channels(self) -> list[str]:
        """Names of the notification channels that are on (``log`` always), in ``routes.CHANNELS`` order.

        ``pagerduty`` is also on when the escalation levels page a named PagerDuty service: a route's
        ``pagerduty`` then stands for "page the levels" (``escalation.paging``)."""
        on = self._channels_on()
        matrix = self._escalation_matrix
        on["pagerduty"] = on["pagerduty"] or any(r.service for level in matrix.levels.values() for r in level)
        return [name for name in routes.CHANNELS if on[name]]

    def _channels_on(self) -> dict[str, bool]:
        """Which channels have their own settings (before the escalation levels are considered)."""
        return {
            "log": True,
            "webhook": bool(self.notify_webhook_url),
            "slack": self.slack_webhook_url is not None,
            "pagerduty": self.pagerduty_routing_key is not None,
            "slack_app": self.slack_bot_token is not None,
        }

    @property
    def warroom_on(self) -> bool:
        """War rooms are opened: the Slack app is on and ``warroom_severity`` is not off."""
        return self.slack_bot_token is not None and bool(self.warroom_severity)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.listen}"


def budget(text: str) -> tuple[int, float]:
    """``REMEDIATOR_ACTION_BUDGET``, ``COUNT/DURATION`` (``10/10m``), as (actions, window seconds)."""
    count, sep, window = text.strip().partition("/")
    try:
        seconds = rules.parse_duration(window).total_seconds() if sep else 0.0
    except ValueError:
        seconds = 0.0
    if not count.isdigit() or int(count) < 1 or seconds <= 0:
        raise ValueError(
            f"action_budget must be COUNT/DURATION with both above zero, e.g. 10/10m (got {text[:40]!r})"
        )
    return int(count), seconds


@functools.cache
def secret_settings() -> tuple[str, ...]:
    """Names of the settings that are secrets: every ``SecretStr`` field and the URLs that may carry a
    password. They are never taken as a flag value, and each can come from a file."""
    names = [name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)]
    return (*names, *URL_SECRETS)


def read_secret(path: str | Path, *, source: str) -> str:
    """A secret from a file: its content without the trailing newline. Errors name ``source`` (the
    variable or flag) and the path, never the content."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise errors.ConfigError(f"{source}: cannot read {path}: {reason}") from None
    value = text.rstrip("\r\n")
    if not value.strip():
        raise errors.ConfigError(f"{source}: {path} is empty")
    return value


def secrets_from_files(environ: Mapping[str, str]) -> dict[str, str]:
    """The secrets given as files: ``REMEDIATOR_<NAME>_FILE``, else a file in ``REMEDIATOR_SECRETS_DIR``
    (unless ``REMEDIATOR_<NAME>`` is set). A value and its ``_FILE`` both set is an error naming both."""
    folder = environ.get(SECRETS_DIR, "").strip()
    if folder and not Path(folder).is_dir():
        raise errors.ConfigError(f"{SECRETS_DIR}: {folder} is not a readable directory")
    found: dict[str, str] = {}
    for name in secret_settings():
        if name in _OWN_FILE_FIELD and f"{_PREFIX}{name.upper()}_FILE" in environ:
            continue  # its own field reads that file
        var = f"{_PREFIX}{name.upper()}"
        given = bool(environ.get(var, "").strip())
        path = environ.get(f"{var}_FILE", "").strip()
        if path and given:
            raise errors.ConfigError(f"{var} and {var}_FILE are both set: give the secret one way")
        if path:
            found[name] = read_secret(path, source=f"{var}_FILE")
        elif folder and not given:
            candidates = [
                p for p in (Path(folder) / name, Path(folder) / name.replace("_", "-")) if p.exists()
            ]
            if len(candidates) > 1:
                raise errors.ConfigError(
                    f"{SECRETS_DIR}: both {candidates[0].name} and {candidates[1].name} are in {folder}"
                )
            if candidates:
                found[name] = read_secret(candidates[0], source=f"{SECRETS_DIR} ({candidates[0].name})")
    return found


class _SecretFiles(PydanticBaseSettingsSource):
    """The settings source of secrets given as files (``secrets_from_files``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is done in __call__

    def __call__(self) -> dict[str, Any]:
        return dict(secrets_from_files(os.environ))


def _keys_file(path: Path | None) -> dict[str, str]:
    """The routing keys of ``REMEDIATOR_PAGERDUTY_ROUTING_KEYS_FILE`` (none without one); errors name the
    path, never the content."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.ConfigError(f"{_KEYS_FILE}: cannot read {path}: {type(exc).__name__}") from None
    return levels.parse_routing_keys(text, source=_KEYS_FILE)


def slack_approvers(text: str) -> dict[str, str]:
    """``REMEDIATOR_SLACK_APPROVERS``, ``U0123ABC=alice,U0456DEF=bob`` → {Slack user id: approver name};
    strict: an entry that is not a user id (U…, W…) and a name, or an id given twice, stops the service."""
    approvers: dict[str, str] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        user, sep, name = (part.strip() for part in entry.partition("="))
        if not sep or not _SLACK_USER.match(user) or not _APPROVER_NAME.match(name):
            raise errors.ConfigError(
                f"REMEDIATOR_SLACK_APPROVERS: invalid entry {entry[:80]!r}: expected USERID=name, e.g. "
                "U0123ABC=alice (a Slack user id U…/W…, a name of letters, digits, '.', '_', '@' or '-')"
            )
        if user in approvers:
            raise errors.ConfigError(f"REMEDIATOR_SLACK_APPROVERS: user {user} appears twice")
        approvers[user] = name
    return approvers


def warroom_severity(text: str) -> str:
    """``REMEDIATOR_WARROOM_SEVERITY``: a severity (``critical``, ``high``, ``warning``, ``info``), or
    "" when war rooms are off (empty or ``off``)."""
    value = text.strip().lower()
    if value in ("", "off"):
        return ""
    if value not in routes.SEVERITIES:
        raise errors.ConfigError(
            f"REMEDIATOR_WARROOM_SEVERITY: {text[:40]!r} is not one of {', '.join(routes.SEVERITIES)} or off"
        )
    return value


def warroom_invite(text: str) -> list[str]:
    """``REMEDIATOR_WARROOM_INVITE``: ``U0123ABC,S0456DEF`` → Slack user (U…/W…) and user-group (S…) ids,
    each once; anything else stops the service."""
    ids: list[str] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if not levels.SLACK_ID.match(entry):
            raise errors.ConfigError(
                f"REMEDIATOR_WARROOM_INVITE: {entry[:40]!r} is not a Slack user or user-group id (U…, W…, S…)"
            )
        if entry in ids:
            raise errors.ConfigError(f"REMEDIATOR_WARROOM_INVITE: {entry} appears twice")
        ids.append(entry)
    return ids


def warroom_bridge_url(text: str) -> str:
    """``REMEDIATOR_WARROOM_BRIDGE_URL``: empty, or an http(s) URL whose only placeholder is
    ``{incident_id}`` (no other brace, no whitespace)."""
    value = text.strip()
    if not value:
        return ""
    rest = value.replace("{incident_id}", "")
    if not value.startswith(("https://", "http://")) or any(c in rest for c in '{} \t\n\r"<>'):
        raise errors.ConfigError(
            "REMEDIATOR_WARROOM_BRIDGE_URL must be an http(s) URL with no placeholder but {incident_id}, "
            "e.g. https://meet.example.com/inc-{incident_id}"
        )
    return value


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
