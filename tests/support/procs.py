"""Start real servers (Alertmanager, Prometheus, PostgreSQL, Redis) on free loopback ports for tests.

Every server is a subprocess listening on 127.0.0.1 on a random free port in 20000-32000 (below the kernel's
ephemeral range), with its own directory created inside the ``tmpdir`` you pass, and its stdout/stderr in
``<that dir>/<name>.log``.  Servers are stopped by PID, never by name: other sessions share the machine.

Hygiene:
- a start function that fails kills what it started before raising (with the server's log tail);
- every process runs in its own session (``start_new_session=True``), so ``kill()`` SIGKILLs its whole
  process group (PostgreSQL's backends included);
- an ``atexit`` hook SIGKILLs every server still running when the interpreter exits;
- when started from the main thread, servers are launched through ``setpriv --pdeathsig KILL`` so the kernel
  kills them even if the test process itself is SIGKILLed (the exec keeps the PID: ``.pid`` is the server's).
  Not from other threads: the kernel sends that signal when the *thread* that forked exits.

Usage::

    with start_redis(tmp_path) as redis_server:
        client = redis.asyncio.from_url(redis_server.url)

Binaries: Debian 12 packages installed by ``scripts/install-system-deps.sh``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import yaml

__all__ = [
    "HOST",
    "Alertmanager",
    "Postgres",
    "Proc",
    "Prometheus",
    "Redis",
    "ServerExited",
    "free_port",
    "make_alert",
    "start_alertmanager",
    "start_postgres",
    "start_prometheus",
    "start_redis",
    "wait_for_http",
    "wait_for_port",
    "webhook_config",
]

HOST = "127.0.0.1"
PORT_RANGE = (20000, 32000)
POLL_INTERVAL = 0.02
STOP_TIMEOUT = 5.0
START_TIMEOUT = 30.0
START_ATTEMPTS = 3  # fresh ports tried when a server finds its port taken (race with another session)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
ALERTMANAGER_BIN = "prometheus-alertmanager"
PROMETHEUS_BIN = "prometheus"
REDIS_BIN = "redis-server"

_ADDRESS_IN_USE = "address already in use"
_UNIX_SOCKET_PATH_MAX = 107

# Own generator: the global `random` may be seeded identically in parallel sessions (pytest-randomly &c).
_random = random.SystemRandom()
_lock = threading.Lock()
_handed_out: set[int] = set()
_live: set[Proc] = set()

# urllib must never go through an http_proxy from the environment for loopback servers.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerExited(RuntimeError):
    """A server process exited while we waited for it to become ready."""


# --------------------------------------------------------------------------------------------- ports


def _port_is_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):  # Alertmanager's cluster port uses both
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A random port in 20000-32000 that is free now (TCP and UDP) and not yet handed out by this process."""
    for _ in range(500):
        port = _random.randint(*PORT_RANGE)
        with _lock:
            if port in _handed_out:
                continue
        if _port_is_free(port):
            with _lock:
                if port not in _handed_out:
                    _handed_out.add(port)
                    return port
    raise RuntimeError(f"no free port found in {PORT_RANGE}")


# --------------------------------------------------------------------------------------------- waiting


def _tail_note(proc: Proc | None) -> str:
    if proc is None:
        return ""
    return f"\n--- {proc.name} log tail ({proc.log_path}) ---\n{proc.log_tail(40)}"


def _check_alive(proc: Proc | None, what: str) -> None:
    if proc is not None and not proc.running:
        raise ServerExited(
            f"{proc.name} exited with code {proc.returncode} while waiting for {what}{_tail_note(proc)}"
        )


def wait_for_port(host: str, port: int, timeout: float, *, proc: Proc | None = None) -> None:
    """Poll (every 20 ms) until a TCP connection to host:port succeeds.

    Raises ``ServerExited`` at once if ``proc`` exits, ``TimeoutError`` after ``timeout`` seconds; both carry
    the tail of ``proc``'s log.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        _check_alive(proc, f"{host}:{port}")
        try:
            with socket.create_connection(
                (host, port), timeout=max(0.05, min(1.0, deadline - time.monotonic()))
            ):
                return
        except OSError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{host}:{port} not accepting connections after {timeout:.1f}s"
                f" (last error: {last_error!r}){_tail_note(proc)}"
            )
        time.sleep(POLL_INTERVAL)


def wait_for_http(url: str, timeout: float, expect_status: int = 200, *, proc: Proc | None = None) -> None:
    """Poll ``GET url`` (every 20 ms, no proxy) until it answers ``expect_status``.

    Raises ``ServerExited`` at once if ``proc`` exits, ``TimeoutError`` after ``timeout`` seconds; both carry
    the tail of ``proc``'s log.
    """
    deadline = time.monotonic() + timeout
    last: str = "no attempt"
    while True:
        _check_alive(proc, url)
        try:
            request_timeout = max(0.05, min(1.0, deadline - time.monotonic()))
            with _opener.open(url, timeout=request_timeout) as resp:
                status = resp.status
                last = f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            status = exc.code
            last = f"HTTP {status}: {exc.read()[:200]!r}"
            exc.close()
        except (OSError, ValueError) as exc:  # URLError, connection refused/reset, timeouts, bad status line
            status = None
            last = repr(exc)
        if status == expect_status:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{url} did not answer {expect_status} after {timeout:.1f}s (last: {last}){_tail_note(proc)}"
            )
        time.sleep(POLL_INTERVAL)


def _http(
    method: str, url: str, body: Any = None, *, timeout: float = 10.0, expect: Iterable[int] = (200,)
) -> Any:
    """JSON in, JSON out (``None`` for an empty body); raises ``RuntimeError`` on an unexpected status."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _opener.open(request, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
        exc.close()
    if status not in tuple(expect):
        raise RuntimeError(f"{method} {url} -> HTTP {status}: {raw[:500]!r}")
    return json.loads(raw) if raw.strip() else None


# --------------------------------------------------------------------------------------------- Proc


def _setpriv() -> str | None:
    return shutil.which("setpriv")


def _is_root() -> bool:
    return os.geteuid() == 0


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (any address), from /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _owns_listening_port(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port`` (and not some other process)."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
    return False


class Proc:
    """A subprocess we own, stopped by PID.  Context manager: ``__exit__`` stops it.

    ``start()`` launches it (again, for a restart) and waits until ``ready(proc, timeout)`` returns; the
    default readiness check waits for ``port`` to accept TCP connections (if a port is given).  On any failure
    while starting, the process is killed before the exception propagates.

    Attributes: ``pid`` (``None`` before the first start; the last PID after it exits), ``port``, ``name``,
    ``log_path``, ``workdir``, ``running``, ``returncode``, ``popen``.
    """

    stop_signal: int = signal.SIGTERM

    def __init__(
        self,
        args: Sequence[str] | None = None,
        *,
        log_path: Path,
        name: str | None = None,
        port: int | None = None,
        workdir: Path | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        ready: Callable[[Proc, float], None] | None = None,
        stop_signal: int | None = None,
    ) -> None:
        self.args = list(args) if args is not None else []
        self.log_path = Path(log_path)
        self.name = name or (Path(self.args[0]).name if self.args else type(self).__name__.lower())
        self.port = port
        self.workdir = Path(workdir) if workdir is not None else self.log_path.parent
        self.env = env
        self.user = user
        self._ready = ready
        if stop_signal is not None:
            self.stop_signal = stop_signal
        self.popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- overridable pieces

    def command(self) -> list[str]:
        """The argv to run (subclasses build it from their current port and files)."""
        return list(self.args)

    def wait_ready(self, timeout: float) -> None:
        if self._ready is not None:
            self._ready(self, timeout)
        elif self.port is not None:
            wait_for_port(HOST, self.port, timeout, proc=self)

    # -- state

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    # -- lifecycle

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Launch the process and wait until it is ready; kill it if that fails."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        argv, popen_kwargs = self._wrapped(self.command())
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"==== {time.strftime('%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env,
                start_new_session=True,
                **popen_kwargs,
            )
        with _lock:
            _live.add(self)
        try:
            deadline = time.monotonic() + timeout
            self.wait_ready(timeout)
            if self.port is not None:
                self._check_owns_port(max(0.5, deadline - time.monotonic()))
        except BaseException:
            self.kill()
            raise
        return self

    def _check_owns_port(self, timeout: float) -> None:
        """Guard against a readiness check answered by another session's server that holds our port."""
        assert self.popen is not None and self.port is not None
        deadline = time.monotonic() + timeout
        while not _owns_listening_port(self.popen.pid, self.port):
            _check_alive(self, f"its own listening socket on port {self.port}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"port {self.port} answered, but {self.name} (pid {self.pid}) does not listen on it"
                    f"{_tail_note(self)}"
                )
            time.sleep(POLL_INTERVAL)

    def _wrapped(self, argv: list[str]) -> tuple[list[str], dict[str, Any]]:
        """Prefix ``setpriv`` for the user switch (exec, same PID) and the parent-death signal."""
        options: list[str] = []
        popen_kwargs: dict[str, Any] = {}
        setpriv = _setpriv()
        if self.user is not None and _is_root():
            entry = pwd.getpwnam(self.user)
            if setpriv:
                options += [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]
            else:
                popen_kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        if setpriv and threading.current_thread() is threading.main_thread():
            options += ["--pdeathsig", "KILL"]
        if options:
            assert setpriv is not None
            argv = [setpriv, *options, "--", *argv]
        return argv, popen_kwargs

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send ``stop_signal`` (SIGTERM; SIGINT for PostgreSQL), wait ``timeout`` s, then SIGKILL the group.

        Returns the exit code (``None`` if never started).
        """
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._forget()
        return self.popen.returncode

    def kill(self) -> int | None:
        """SIGKILL the process and its process group (it leads its own session), and reap it."""
        if self.popen is None:
            return None
        if self.popen.returncode is None:
            # Not reaped yet, so the PID (= PGID) cannot have been reused.
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
        self.popen.wait()
        self._forget()
        return self.popen.returncode

    def _forget(self) -> None:
        with _lock:
            _live.discard(self)

    # -- logs

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of the log (all runs of this Proc are appended to the same file)."""
        try:
            with open(self.log_path, "rb") as log:
                lines = deque(log, maxlen=n)
        except FileNotFoundError:
            return ""
        return b"".join(lines).decode(errors="replace")

    def _log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    # -- context manager

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.returncode}" if self.popen else "not started"
        return f"<{type(self).__name__} {self.name} pid={self.pid} port={self.port} {state}>"


def _kill_all() -> None:
    with _lock:
        procs = list(_live)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()


atexit.register(_kill_all)


def _server_dir(tmpdir: Path, prefix: str) -> Path:
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmpdir))


def _start_on_free_port(server: Proc, assign_ports: Callable[[], None], timeout: float) -> None:
    """Start ``server`` after ``assign_ports()``; on "address already in use", retry with fresh ports."""
    for attempt in range(1, START_ATTEMPTS + 1):
        assign_ports()
        try:
            server.start(timeout)
            return
        except (ServerExited, TimeoutError):
            if attempt < START_ATTEMPTS and _ADDRESS_IN_USE in server._log_since_start().lower():
                continue
            raise


def _dump_config(config: dict[str, Any] | str) -> str:
    return config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)


# --------------------------------------------------------------------------------------------- Alertmanager


def webhook_config(
    url: str,
    *,
    bearer: str | None = None,
    group_wait: str = "0s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    send_resolved: bool = True,
    max_alerts: int = 0,
) -> dict[str, Any]:
    """A complete Alertmanager config: one group per alert (``group_by: ['...']``), sent to ``url``."""
    webhook: dict[str, Any] = {"url": url, "send_resolved": send_resolved, "max_alerts": max_alerts}
    if bearer is not None:
        webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": bearer}}
    return {
        "route": {
            "receiver": "webhook",
            "group_by": ["..."],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{"name": "webhook", "webhook_configs": [webhook]}],
    }


def make_alert(
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
    *,
    starts_at: str | None = None,
    ends_at: str | None = None,
    generator_url: str = "http://127.0.0.1/generator",
) -> dict[str, Any]:
    """An alert for ``Alertmanager.post_alerts`` (``startsAt`` defaults to now; no ``endsAt``: firing)."""
    alert: dict[str, Any] = {
        "labels": dict(labels),
        "annotations": dict(annotations or {}),
        "startsAt": starts_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "generatorURL": generator_url,
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at
    return alert


class Alertmanager(Proc):
    """``prometheus-alertmanager`` on 127.0.0.1:``port``; HA gossip only with ``cluster_port``/``_peers``."""

    def __init__(
        self,
        *,
        workdir: Path,
        cluster_port: int | None = None,
        cluster_peers: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(name="alertmanager", log_path=workdir / "alertmanager.log", workdir=workdir)
        self.config_path = workdir / "alertmanager.yml"
        self.storage_path = workdir / "data"
        self.cluster_enabled = cluster_port is not None or cluster_peers is not None
        self.cluster_port = cluster_port
        self.cluster_peers = list(cluster_peers or [])
        self.extra_args = list(extra_args)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def cluster_address(self) -> str | None:
        """``127.0.0.1:CPORT`` for other members' ``cluster_peers`` (``None`` without clustering)."""
        return f"{HOST}:{self.cluster_port}" if self.cluster_enabled else None

    def command(self) -> list[str]:
        args = [
            ALERTMANAGER_BIN,
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address={HOST}:{self.port}",
            f"--web.external-url={self.url}",
        ]
        if self.cluster_enabled:
            args += [
                f"--cluster.listen-address={self.cluster_address}",
                f"--cluster.advertise-address={self.cluster_address}",
            ]
            args += [f"--cluster.peer={peer}" for peer in self.cluster_peers]
        else:
            args.append("--cluster.listen-address=")
        return args + self.extra_args

    def wait_ready(self, timeout: float) -> None:
        wait_for_http(f"{self.url}/-/ready", timeout, proc=self)

    def write_config(self, config: dict[str, Any] | str) -> None:
        self.config_path.write_text(_dump_config(config))

    def reload(self, config: dict[str, Any] | str | None = None) -> None:
        """Optionally rewrite the config file, then ``POST /-/reload`` (fails if the config is rejected)."""
        if config is not None:
            self.write_config(config)
        _http("POST", f"{self.url}/-/reload")

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """``POST /api/v2/alerts`` with ``{labels, annotations, startsAt, endsAt, generatorURL}`` dicts."""
        _http("POST", f"{self.url}/api/v2/alerts", alerts)

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``."""
        result: list[dict[str, Any]] = _http("GET", f"{self.url}/api/v2/alerts")
        return result

    def status(self) -> dict[str, Any]:
        """``GET /api/v2/status`` (config, cluster peers, version)."""
        result: dict[str, Any] = _http("GET", f"{self.url}/api/v2/status")
        return result


def start_alertmanager(
    config: dict[str, Any] | str,
    *,
    tmpdir: Path,
    cluster_port: int | None = None,
    cluster_peers: Sequence[str] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
) -> Alertmanager:
    """Start Alertmanager with ``config``; ready when ``/-/ready`` answers 200.

    No HA gossip unless ``cluster_port`` or ``cluster_peers`` is given (``cluster_peers=[]`` makes a first
    member; others get ``cluster_peers=[first.cluster_address]``).  For fast HA tests consider ``extra_args``
    such as ``--cluster.peer-timeout=1s``.
    """
    am = Alertmanager(
        workdir=_server_dir(tmpdir, "alertmanager-"),
        cluster_port=cluster_port,
        cluster_peers=cluster_peers,
        extra_args=extra_args,
    )
    am.write_config(config)
    fixed_cluster_port = cluster_port is not None

    def assign_ports() -> None:
        am.port = free_port()
        if am.cluster_enabled and not fixed_cluster_port:
            am.cluster_port = free_port()

    _start_on_free_port(am, assign_ports, timeout)
    return am


# --------------------------------------------------------------------------------------------- Prometheus


class Prometheus(Proc):
    """``prometheus`` on 127.0.0.1:``port`` (``--rules.alert.resend-delay=1s``, lifecycle API enabled).

    Prometheus 2.42 applies scrape targets through a 5 s discovery/reload ticker (no flag shortens it): the
    first scrape happens ~5-5.5 s after start or after a reload that adds targets, whatever scrape_interval.
    """

    def __init__(self, *, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        super().__init__(name="prometheus", log_path=workdir / "prometheus.log", workdir=workdir)
        self.config_path = workdir / "prometheus.yml"
        self.storage_path = workdir / "data"
        self.rules_dir = workdir / "rules"
        self.extra_args = list(extra_args)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        return [
            PROMETHEUS_BIN,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.storage_path}",
            f"--web.listen-address={HOST}:{self.port}",
            f"--web.external-url={self.url}",
            "--rules.alert.resend-delay=1s",
            "--web.enable-lifecycle",
            *self.extra_args,
        ]

    def wait_ready(self, timeout: float) -> None:
        wait_for_http(f"{self.url}/-/ready", timeout, proc=self)

    def write_config(self, config: dict[str, Any] | str, rule_files: dict[str, str] | None = None) -> None:
        """Write ``rule_files`` (name -> YAML text) to ``rules/``, and the config (listing them)."""
        if rule_files:
            self.rules_dir.mkdir(exist_ok=True)
            paths = []
            for name, text in rule_files.items():
                path = self.rules_dir / name
                path.write_text(text)
                paths.append(str(path))
            loaded = yaml.safe_load(config) if isinstance(config, str) else dict(config)
            loaded = loaded or {}
            loaded["rule_files"] = [*(loaded.get("rule_files") or []), *paths]
            config = loaded
        self.config_path.write_text(_dump_config(config))

    def reload(
        self, config: dict[str, Any] | str | None = None, rule_files: dict[str, str] | None = None
    ) -> None:
        """Optionally rewrite config/rules, then ``POST /-/reload`` (fails if the config is rejected)."""
        if config is not None:
            self.write_config(config, rule_files)
        _http("POST", f"{self.url}/-/reload")

    def query(self, promql: str) -> dict[str, Any]:
        """``GET /api/v1/query``: the decoded response, ``{"status": "success", "data": {...}}``."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        result: dict[str, Any] = _http("GET", url)
        return result


def start_prometheus(
    config: dict[str, Any] | str,
    *,
    tmpdir: Path,
    rule_files: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
) -> Prometheus:
    """Start Prometheus with ``config`` (plus ``rule_files``, name -> YAML text); ready on ``/-/ready``."""
    prom = Prometheus(workdir=_server_dir(tmpdir, "prometheus-"), extra_args=extra_args)
    prom.write_config(config, rule_files)

    def assign_ports() -> None:
        prom.port = free_port()

    _start_on_free_port(prom, assign_ports, timeout)
    return prom


# --------------------------------------------------------------------------------------------- PostgreSQL


def _pg_binary(name: str) -> str:
    path = PG_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found in {PG_BIN} or on PATH (run scripts/install-system-deps.sh)"
        )
    return found


def _make_reachable(path: Path) -> None:
    """Let other users traverse every parent of ``path`` (pytest and mktemp make 0700 directories)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            with contextlib.suppress(PermissionError):
                os.chmod(parent, mode | 0o001)


class Postgres(Proc):
    """A PostgreSQL 15 server in the foreground (our PID is the postmaster), user ``postgres``, trust auth.

    ``stop()`` is a fast shutdown (SIGINT); ``kill()`` SIGKILLs postmaster and backends (crash: the next
    ``start()`` runs crash recovery); ``start()`` again reuses the data directory and the port.
    """

    stop_signal = signal.SIGINT  # fast shutdown; SIGTERM ("smart") waits for every client to disconnect

    def __init__(self, *, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        user = PG_USER if _is_root() else None  # postgres refuses to run as root
        super().__init__(name="postgres", log_path=workdir / "postgres.log", workdir=workdir, user=user)
        self.data_dir = workdir / "data"
        self.extra_args = list(extra_args)
        # unix socket paths are limited to 107 bytes; without a socket dir only TCP is served
        fits = len(str(workdir)) + len("/.s.PGSQL.32000") <= _UNIX_SOCKET_PATH_MAX
        self.socket_dir: Path | None = workdir if fits else None

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}@{HOST}:{self.port}/postgres"

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        if self.user is not None:
            # Again at every (re)start: each new pytest session resets /tmp/pytest-of-<user> to 0700.
            _make_reachable(self.workdir)
        return super().start(timeout)

    def initdb(self) -> None:
        argv = [_pg_binary("initdb"), "-D", str(self.data_dir), "-U", PG_USER, "-A", "trust", "--no-sync"]
        argv += ["-E", "UTF8", "--locale=C"]
        wrapped, popen_kwargs = self._wrapped(argv)
        with open(self.log_path, "ab") as log:
            result = subprocess.run(
                wrapped,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                check=False,
                timeout=120,
                **popen_kwargs,
            )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed with code {result.returncode}{_tail_note(self)}")

    def command(self) -> list[str]:
        socket_dir = str(self.socket_dir) if self.socket_dir is not None else ""
        return [
            _pg_binary("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            f"unix_socket_directories={socket_dir}",
            "-c",
            "fsync=off",
            *self.extra_args,
        ]

    def wait_ready(self, timeout: float) -> None:
        """Ready when ``postmaster.pid`` names our PID with status ``ready`` and the port is open."""
        deadline = time.monotonic() + timeout
        pid_file = self.data_dir / "postmaster.pid"
        while True:
            _check_alive(self, "postmaster.pid to say ready")
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[0].strip() == str(self.pid) and lines[7].strip() == "ready":
                    break
            if time.monotonic() >= deadline:
                raise TimeoutError(f"postgres not ready after {timeout:.1f}s{_tail_note(self)}")
            time.sleep(POLL_INTERVAL)
        assert self.port is not None
        wait_for_port(HOST, self.port, max(0.1, deadline - time.monotonic()), proc=self)


def start_postgres(
    tmpdir: Path, *, extra_args: Sequence[str] = (), timeout: float = START_TIMEOUT
) -> Postgres:
    """``initdb`` a fresh cluster under ``tmpdir`` (~1 s) and start it; connect with ``.dsn``."""
    workdir = _server_dir(tmpdir, "postgres-")
    pg = Postgres(workdir=workdir, extra_args=extra_args)
    if pg.user is not None:
        entry = pwd.getpwnam(pg.user)
        os.chmod(workdir, 0o755)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
        _make_reachable(workdir)
    pg.initdb()

    def assign_ports() -> None:
        pg.port = free_port()

    _start_on_free_port(pg, assign_ports, timeout)
    return pg


# --------------------------------------------------------------------------------------------- Redis


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.25) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Redis(Proc):
    """``redis-server`` on 127.0.0.1:``port``, no persistence; ``start()`` again reuses the port."""

    def __init__(self, *, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        super().__init__(name="redis", log_path=workdir / "redis.log", workdir=workdir)
        self.extra_args = list(extra_args)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def command(self) -> list[str]:
        return [
            REDIS_BIN,
            "--bind",
            HOST,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.workdir),
            *self.extra_args,
        ]

    def wait_ready(self, timeout: float) -> None:
        assert self.port is not None
        deadline = time.monotonic() + timeout
        wait_for_port(HOST, self.port, timeout, proc=self)
        while not _redis_ping(self.port):
            _check_alive(self, "PONG")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"redis did not answer PING after {timeout:.1f}s{_tail_note(self)}")
            time.sleep(POLL_INTERVAL)


def start_redis(tmpdir: Path, *, extra_args: Sequence[str] = (), timeout: float = START_TIMEOUT) -> Redis:
    """Start ``redis-server`` (no persistence); connect with ``.url``."""
    server = Redis(workdir=_server_dir(tmpdir, "redis-"), extra_args=extra_args)

    def assign_ports() -> None:
        server.port = free_port()

    _start_on_free_port(server, assign_ports, timeout)
    return server
