"""``remediator serve`` and ``remediator migrate``, and the settings flags they share: every setting has a
``--flag`` mirroring its ``REMEDIATOR_*`` variable; flags win over the environment.

No secret is taken as a flag value (``ps`` shows every process's arguments): a secret setting has
``--NAME-file PATH`` instead, and ``--NAME VALUE`` is refused with a usage error saying what to use. The
store and Redis URLs keep their flag, refused when the URL carries a password.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from service import errors
from service import settings as config
from service.settings import Settings


class _Refused(argparse.Action):
    """``--NAME VALUE`` for a secret: a usage error pointing at the environment and the file forms."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        env = f"REMEDIATOR_{self.dest.removeprefix('refused_').upper()}"
        parser.error(
            f"{option_string}: a secret is not taken as a flag value (ps shows it to every user); set {env}, "
            f"{env}_FILE=PATH or {option_string}-file PATH"
        )


def _no_password(flag: str) -> Any:
    def check(value: str) -> str:
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None  # not a URL: the setting's own validation says so
        if password:
            env = f"REMEDIATOR_{flag.removeprefix('--').replace('-', '_').upper()}"
            raise argparse.ArgumentTypeError(
                f"the URL carries a password, which ps would show to every user; set {env}, {env}_FILE=PATH "
                f"or {flag}-file PATH"
            )
        return value

    return check


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per setting; a flag the command defines itself (``prune --dry-run``) keeps its own meaning,
    and the setting is then taken from the environment only."""
    group = parser.add_argument_group(
        "settings (each also REMEDIATOR_<NAME>; secrets also REMEDIATOR_<NAME>_FILE)"
    )
    secrets = config.secret_settings()
    taken = set(parser._option_string_actions)  # the command's own flags
    for name, field in Settings.model_fields.items():
        env = f"REMEDIATOR_{name.upper()}"
        flag = f"--{name.replace('_', '-')}"
        if flag in taken:
            continue
        if name in secrets and name not in config.URL_SECRETS:
            # defined (hidden) so that argparse does not take ``--NAME`` as an abbreviation of ``--NAME-file``
            group.add_argument(flag, dest=f"refused_{name}", action=_Refused, help=argparse.SUPPRESS)
        if name in secrets and f"{name}_file" not in Settings.model_fields:
            group.add_argument(
                f"{flag}-file",
                dest=f"secretfile_{name}",
                default=None,
                metavar="PATH",
                help=f"file holding {field.description or name} [{env}_FILE]",
            )
        if name in config.URL_SECRETS:
            group.add_argument(
                flag,
                dest=f"setting_{name}",
                default=None,
                metavar="VALUE",
                type=_no_password(flag),
                help=f"{field.description or name}, without a password [{env}]",
            )
        elif name not in secrets:
            group.add_argument(
                flag,
                dest=f"setting_{name}",
                default=None,
                metavar="VALUE",
                help=f"{field.description or name} [{env}]",
            )


def load_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags given (a ``--NAME-file`` flag by the file's
    content)."""
    overrides: dict[str, Any] = {}
    for key, value in vars(args).items():
        if value is None:
            continue
        if key.startswith("setting_"):
            overrides[key.removeprefix("setting_")] = value
        elif key.startswith("secretfile_"):
            name = key.removeprefix("secretfile_")
            flag = f"--{name.replace('_', '-')}-file"
            overrides[name] = config.read_secret(value, source=flag)
    return Settings(**overrides)


def settings_or_exit(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args)
    except errors.ConfigError as exc:
        raise SystemExit(f"remediator: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"remediator: invalid settings: {problems}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from service import app as application
    from service.matching import loader
    from service.observability import configure_logging

    settings = settings_or_exit(args)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    _migrate_in_child(settings)
    try:
        app = application.create_app(settings)
    except loader.RuleLoadError as exc:
        print(f"remediator: rules in {settings.rules_dir} are invalid:\n{exc}", file=sys.stderr)
        return 1
    app.on_startup.append(_freeze_heap)
    # the request-head timeout (aiohttp's keep-alive timer) travels with the app: app.server_options
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=15.0,
        loop=_event_loop(),
    )
    return 0


def _migrate_in_child(settings: Settings) -> None:
    """Apply migrations in a forked child, so the serving process never imports Alembic (~12 MB it would
    hold for its lifetime). Best effort: if the child fails, start-up migrates in-process and reports the
    error there, with its reason."""
    if not hasattr(os, "fork"):  # pragma: no cover - platforms without fork migrate in-process
        return
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(target=_migrate, args=(settings,), name="migrate")
    child.start()
    child.join()


def _migrate(settings: Settings) -> None:
    try:
        apply_migrations(settings)
    except Exception:  # the parent migrates again and reports
        sys.exit(1)


def apply_migrations(settings: Settings) -> None:
    from service.records.store import Store

    async def run() -> None:
        store = Store.open(settings.store_url, timeout_s=settings.store_timeout_s)
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())


async def _freeze_heap(_app: object) -> None:
    """Once started, move every object alive (modules, rules, clients) out of the collector's sight: a full
    collection then scans what requests allocate, not 100,000 long-lived objects (~40 ms of stalled loop)."""
    gc.collect()
    gc.freeze()


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): ~1.1× on a bare aiohttp app here (docs/performance.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop wheels
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def cmd_migrate(args: argparse.Namespace) -> int:
    from service.observability import configure_logging

    settings = settings_or_exit(args)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    try:
        apply_migrations(settings)
    except errors.StoreUnavailable as exc:
        print(f"remediator: store unavailable: {exc}", file=sys.stderr)
        return 1
    print("migrations applied")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the service (applies pending migrations first)")
    add_settings_flags(serve)
    serve.set_defaults(func=cmd_serve)
    migrate = sub.add_parser("migrate", help="apply pending store migrations")
    add_settings_flags(migrate)
    migrate.set_defaults(func=cmd_migrate)
