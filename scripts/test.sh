#!/usr/bin/env bash
# Set up and pass the whole suite on a fresh Debian 12 machine: system packages (PostgreSQL, Redis,
# Prometheus, Alertmanager — the tests start their own on free loopback ports), the locked virtualenv,
# then lint, types, layering, shipped rules, and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh
scripts/bootstrap.sh
echo "== ruff";         .venv/bin/ruff check service tests bench examples
echo "== ruff format";  .venv/bin/ruff format --check service tests bench examples
echo "== mypy";         .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
echo "== rules lint";   .venv/bin/remediator rules lint rules
echo "== rules test";   .venv/bin/remediator rules test rules/tests/*.yaml
echo "== promtool";     promtool check rules rules/alerts/*.yaml && promtool check config examples/prometheus.yml
echo "== amtool";       amtool check-config examples/alertmanager.yml
# The tests start the service (and its CLI) as subprocesses hundreds of times; where the environment sets
# PYTHONDONTWRITEBYTECODE (these machines do), each start compiled every module again (~0.5-2 s of CPU).
echo "== bytecode";     .venv/bin/python -m compileall -q -j0 .venv/lib service tests bench >/dev/null \
  || echo "(some files did not compile: they are compiled at import, as before)"
echo "== pytest";       .venv/bin/python -m pytest -q --durations=25 "$@"
