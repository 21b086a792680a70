"""Secrets from files (``REMEDIATOR_<NAME>_FILE``, ``REMEDIATOR_SECRETS_DIR``) and no secret as a flag value."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from service import cli, errors
from service.app import create_app
from service.cli import server
from service.settings import Settings, secret_settings
from tests.conftest import load_fixture

# one valid value per secret setting (approver tokens from a file: one per line)
SAMPLES: dict[str, str] = {
    "webhook_token": "hook-3f9a1c",
    "approver_tokens": "alice=app-7d1e\nbob=app-9c2b",
    "notify_webhook_token": "notify-51ab",
    "notify_webhook_secret": "hmac-key-77",
    "slack_webhook_url": "https://hooks.slack.com/services/T000/B000/XYZ123",
    "slack_bot_token": "xoxb-1111-2222-abcd",
    "slack_signing_secret": "signing-8e8e",
    "pagerduty_routing_key": "R0123456789ABCDEF0123456789ABCDE",
    "pagerduty_routing_keys": "primary=R0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,secondary=R0BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
    "monitor_postgres_dsn": "postgresql://monitor@db.internal:5432/app",
    "monitor_redis_url": "redis://cache.internal:6379/0",
    "session_secret": "session-hmac-0042",
    "store_url": "postgresql://remediator:pg-pass-31@db.internal:5432/remediator",
    "redis_url": "redis://:redis-pass-17@cache.internal:6379/0",
}
# what else a sample needs to load (the Slack app needs its channel)
NEEDS = {"slack_bot_token": {"REMEDIATOR_SLACK_CHANNEL": "C0123ABC"}}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("REMEDIATOR_"):
            monkeypatch.delenv(var)


def plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def secret_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n", encoding="utf-8")  # as `kubectl create secret --from-file` or echo leaves it
    return path


def test_every_secret_setting_is_covered() -> None:
    secret_fields = {n for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)}
    assert secret_fields | {"store_url", "redis_url"} == set(secret_settings()) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(set(SAMPLES) - {"pagerduty_routing_keys"}))
def test_each_secret_can_come_from_its_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in NEEDS.get(name, {}).items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv(f"REMEDIATOR_{name.upper()}_FILE", str(secret_file(tmp_path, name, SAMPLES[name])))
    from_file = plain(getattr(Settings(), name))
    monkeypatch.delenv(f"REMEDIATOR_{name.upper()}_FILE")
    monkeypatch.setenv(f"REMEDIATOR_{name.upper()}", SAMPLES[name].replace("\n", ","))
    assert from_file == plain(getattr(Settings(), name))  # the same as the value given directly
    assert from_file  # and not empty


def test_pagerduty_routing_keys_file_keeps_merging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = secret_file(tmp_path, "keys", "secondary=R0BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
    monkeypatch.setenv("REMEDIATOR_PAGERDUTY_ROUTING_KEYS", "primary=R0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    monkeypatch.setenv("REMEDIATOR_PAGERDUTY_ROUTING_KEYS_FILE", str(keys))
    assert set(Settings().pagerduty_services) == {"primary", "secondary"}


def test_a_secret_file_keeps_inner_whitespace_and_drops_the_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN_FILE", str(secret_file(tmp_path, "t", " a b\r")))
    token = Settings().webhook_token
    assert token is not None and token.get_secret_value() == " a b"


def test_value_and_file_both_set_is_an_error_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN", "from-env-5511")
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN_FILE", str(secret_file(tmp_path, "t", "from-file-6622")))
    with pytest.raises(errors.ConfigError) as raised:
        Settings()
    message = str(raised.value)
    assert "REMEDIATOR_WEBHOOK_TOKEN and REMEDIATOR_WEBHOOK_TOKEN_FILE are both set" in message
    assert "5511" not in message and "6622" not in message


@pytest.mark.parametrize("problem", ["missing", "directory", "empty", "not-utf8"])
def test_an_unusable_file_names_the_variable_never_the_content(
    problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "token"
    if problem == "directory":
        path.mkdir()
    elif problem == "empty":
        path.write_text("\n")
    elif problem == "not-utf8":
        path.write_bytes(b"\xff\xfesecret-8899")
    monkeypatch.setenv("REMEDIATOR_SESSION_SECRET_FILE", str(path))
    with pytest.raises(errors.ConfigError) as raised:
        Settings()
    message = str(raised.value)
    assert message.startswith("REMEDIATOR_SESSION_SECRET_FILE: ") and str(path) in message
    assert "8899" not in message


def test_a_secrets_directory_gives_every_secret_by_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mounted Kubernetes Secret: one file per key, the setting's name with ``_`` or ``-``."""
    secret_file(tmp_path, "webhook-token", "dir-hook-1")
    secret_file(tmp_path, "approver_tokens", "alice=dir-app-2")
    secret_file(tmp_path, "session-secret", "dir-session-3")
    monkeypatch.setenv("REMEDIATOR_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("REMEDIATOR_SESSION_SECRET", "env-session-4")  # the environment wins over the dir
    settings = Settings()
    assert plain(settings.webhook_token) == "dir-hook-1"
    assert plain(settings.approver_tokens) == {"alice": "dir-app-2"}
    assert plain(settings.session_secret) == "env-session-4"
    assert settings.slack_bot_token is None  # no file, no secret


def test_a_secrets_directory_with_both_spellings_or_missing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATOR_SECRETS_DIR", str(tmp_path / "nope"))
    with pytest.raises(
        errors.ConfigError, match=r"REMEDIATOR_SECRETS_DIR: .*nope is not a readable directory"
    ):
        Settings()
    secret_file(tmp_path, "webhook-token", "a-1")
    secret_file(tmp_path, "webhook_token", "b-2")
    monkeypatch.setenv("REMEDIATOR_SECRETS_DIR", str(tmp_path))
    with pytest.raises(errors.ConfigError, match="both webhook_token and webhook-token"):
        Settings()


async def test_a_token_from_a_file_guards_intake(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN_FILE", str(secret_file(tmp_path, "hook", "file-token-77")))
    base = make_settings()
    settings = Settings(**{**base.model_dump(exclude={"webhook_token"}), "listen": "0.0.0.0:8080"})
    client = await aiohttp_client(create_app(settings))
    body = json.dumps(load_fixture("am-0.25-firing.json"))
    wrong = await client.post("/v1/alerts", data=body, headers={"Content-Type": "application/json"})
    assert wrong.status == 401
    right = await client.post(
        "/v1/alerts",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer file-token-77"},
    )
    assert right.status == 200


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["serve", "--webhook-token", "leak-4411"], "REMEDIATOR_WEBHOOK_TOKEN"),
        (["migrate", "--approver-tokens=alice=leak-4411"], "REMEDIATOR_APPROVER_TOKENS"),
        (["serve", "--slack-bot-token", "leak-4411"], "REMEDIATOR_SLACK_BOT_TOKEN"),
    ],
)
def test_a_secret_flag_value_is_refused(
    argv: list[str], env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    flag = "--" + env.removeprefix("REMEDIATOR_").lower().replace("_", "-")
    assert f"{flag}: a secret is not taken as a flag value" in err
    assert f"{env}_FILE=PATH or {flag}-file PATH" in err
    assert "leak-4411" not in err


def test_a_store_url_flag_with_a_password_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["migrate", "--store-url", "postgresql://u:leak-5522@db/x"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "the URL carries a password" in err and "--store-url-file" in err
    assert "leak-5522" not in err
    args = cli.build_parser().parse_args(["migrate", "--store-url", "postgresql://u@db/x"])
    assert cli.load_settings(args).store_url == "postgresql://u@db/x"  # no password: fine


def test_secret_file_flags_win_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_WEBHOOK_TOKEN_FILE", str(secret_file(tmp_path, "env", "env-token-1")))
    flag_file = secret_file(tmp_path, "flag", "flag-token-2")
    store_file = secret_file(tmp_path, "store", SAMPLES["store_url"])
    args = cli.build_parser().parse_args(
        ["serve", "--webhook-token-file", str(flag_file), "--store-url-file", str(store_file)]
    )
    settings = cli.load_settings(args)
    assert plain(settings.webhook_token) == "flag-token-2"
    assert settings.store_url == SAMPLES["store_url"]
    assert "flag-token-2" not in repr(settings)


def test_help_offers_file_flags_for_secrets_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    for name in secret_settings():
        flag = "--" + name.replace("_", "-")
        assert f"{flag}-file PATH" in text or f"{flag}-file VALUE" in text, flag
        if name not in ("store_url", "redis_url"):
            assert f"{flag} VALUE" not in text, flag
    assert "--listen VALUE" in text and "--listen-file" not in text


def test_a_missing_file_flag_stops_with_its_name(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["migrate", "--session-secret-file", str(tmp_path / "absent")])
    with pytest.raises(SystemExit, match=r"--session-secret-file: cannot read .*absent"):
        server.settings_or_exit(args)
