#!/usr/bin/env bash
# Create .venv from the lock file (uv.lock). Usage: scripts/bootstrap.sh [--no-dev]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check uv
fi
uv sync --frozen --quiet "$@"
