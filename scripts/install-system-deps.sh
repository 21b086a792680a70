#!/usr/bin/env bash
# Install the system packages the test-suite needs on a fresh Debian 12 machine.
#
#   redis-server, prometheus, prometheus-alertmanager (apt, --no-install-recommends)
#   chromium + chromium-driver: the headless browser the console's browser test drives (never downloaded by a test)
#   PostgreSQL 15 binaries in /usr/lib/postgresql/15/bin (apt postgresql-15 if missing)
#
# Idempotent and fast when everything is present: `apt-get update` runs only when a package is missing.
# Daemons are never started or relied upon: the tests start their own servers on free loopback ports.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PG_BIN=/usr/lib/postgresql/15/bin
APT_PACKAGES=(redis-server prometheus prometheus-alertmanager wrk chromium chromium-driver)

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo --preserve-env=DEBIAN_FRONTEND)
    else
        echo "install-system-deps: must run as root (or have sudo available); running as $(id -un)" >&2
        exit 1
    fi
fi

is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
if [[ ! -x "$PG_BIN/postgres" || ! -x "$PG_BIN/initdb" || ! -x "$PG_BIN/pg_ctl" ]]; then
    missing+=(postgresql-15)
fi

if ((${#missing[@]} > 0)); then
    echo "install-system-deps: installing ${missing[*]}" >&2
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Verify and report one line per component.
for bin in redis-server prometheus prometheus-alertmanager amtool wrk promtool chromium chromedriver; do
    command -v "$bin" >/dev/null 2>&1 || { echo "install-system-deps: $bin not found after install" >&2; exit 1; }
done
[[ -x "$PG_BIN/postgres" ]] || { echo "install-system-deps: $PG_BIN/postgres not found after install" >&2; exit 1; }

first_version() { grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n1; }

echo "redis-server            $(redis-server --version | grep -oE 'v=[0-9.]+' | cut -d= -f2)"
echo "prometheus              $(prometheus --version 2>&1 | first_version)"
echo "prometheus-alertmanager $(prometheus-alertmanager --version 2>&1 | first_version)"
echo "postgresql              $("$PG_BIN/postgres" --version | first_version) ($PG_BIN)"
echo "chromium                $(chromium --version 2>/dev/null | first_version)"
