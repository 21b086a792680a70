#!/usr/bin/env bash
# Set up and run the service on its embedded defaults: SQLite (./remediator.db), in-process
# coordination, rules from ./rules, listening on 127.0.0.1:8080. Extra arguments go to `remediator serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --no-dev
exec .venv/bin/remediator serve "$@"
