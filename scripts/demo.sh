#!/usr/bin/env bash
# The one-command demo: a fake AITBC platform you can break, real Prometheus and Alertmanager, and the service
# with its console, all on this machine, as the current user, on loopback ports, state in $DEMO_DIR (./.demo).
#
#   scripts/demo.sh [start]           start everything, print where to look, stop everything on Ctrl-C
#   scripts/demo.sh start --detach    start everything in the background and return (then: scripts/demo.sh stop)
#   scripts/demo.sh stop              stop a detached demo
#   scripts/demo.sh status            what runs, and what is broken
#   scripts/demo.sh break COMPONENT   coordinator | errors | node | database | redis
#   scripts/demo.sh fix COMPONENT
#
# Needs the README's set-up first: scripts/install-system-deps.sh (prometheus, prometheus-alertmanager) and
# scripts/bootstrap.sh (.venv). Nothing outside $DEMO_DIR is written and nothing real is touched: the service
# has no Kubernetes configured and runs with REMEDIATOR_DRY_RUN=true (actions are planned and journaled, never
# applied), notifies only its log, and ignores every REMEDIATOR_* variable of your shell.
#
# Environment: DEMO_DIR (state, logs, tokens; default ./.demo), DEMO_SERVICE_PORT (18080),
# DEMO_PROMETHEUS_PORT (19090), DEMO_ALERTMANAGER_PORT (19093), DEMO_EXPORTER_PORT (19100). A default port that
# is taken is replaced by a free one (a port you set is used as is). Every process is started in its own
# process group and stopped by its PID (never by name); a process is only signalled after checking it is ours.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXAMPLES=$ROOT/examples/demo
DEMO_DIR=${DEMO_DIR:-$ROOT/.demo}
PY=$ROOT/.venv/bin/python
REMEDIATOR=$ROOT/.venv/bin/remediator
COMPONENTS=(exporter prometheus alertmanager service)  # start order; stopped in reverse
START_TIMEOUT=${DEMO_START_TIMEOUT:-60}

say() { printf '%s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//'
}

# ------------------------------------------------------------------------------------------------- state

state_file() { printf '%s/demo.env' "$DEMO_DIR"; }
pid_file() { printf '%s/pids/%s.pid' "$DEMO_DIR" "$1"; }

load_state() {
    [[ -f "$(state_file)" ]] || die "no demo state in $DEMO_DIR (start one: scripts/demo.sh start)"
    # shellcheck disable=SC1090
    source "$(state_file)"
}

# Whether PID runs and is a process of this demo (its environment names this state directory): a PID
# recorded by an earlier run may have been reused by an unrelated process since.
is_ours() {
    local pid=$1 state
    [[ -n "$pid" && -r "/proc/$pid/environ" ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ "$state" != Z ]] || return 1
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "DEMO_STATE_DIR=$DEMO_DIR"
}

running_pid() {  # the PID of a running component of this demo, or nothing
    local file pid
    file=$(pid_file "$1")
    [[ -f "$file" ]] || return 0
    pid=$(<"$file")
    if is_ours "$pid"; then printf '%s' "$pid"; fi
}

# ------------------------------------------------------------------------------------------------- ports

port_free() {
    "$PY" - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
EOF
}

free_port() {  # a random free port in 20000-32000 (below the kernel's ephemeral range)
    "$PY" - <<'EOF'
import random, socket
for _ in range(500):
    port = random.SystemRandom().randint(20000, 32000)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
else:
    raise SystemExit("demo: no free port in 20000-32000")
EOF
}

pick_port() {  # pick_port VAR DEFAULT: $VAR if set (must be free), else DEFAULT if free, else a free one
    local var=$1 default=$2 port
    port=${!var:-}
    if [[ -n "$port" ]]; then
        [[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "$var must be a port number, not '$port'"
        port_free "$port" || die "$var=$port is in use on 127.0.0.1: choose another port"
    elif port_free "$default"; then
        port=$default
    else
        port=$(free_port)
    fi
    printf '%s' "$port"
}

# ------------------------------------------------------------------------------------------------- processes

DETACH=0

# launch NAME CMD...: in its own session (process group = its PID), output to logs/NAME.log. In the
# foreground the kernel also kills it if this script dies without its trap running (setpriv --pdeathsig).
launch() {
    local name=$1
    shift
    local wrap=(setsid)
    if [[ $DETACH == 0 ]] && command -v setpriv >/dev/null 2>&1; then
        wrap+=(setpriv --pdeathsig KILL --)
    fi
    (cd "$DEMO_DIR" && export DEMO_STATE_DIR="$DEMO_DIR" && exec "${wrap[@]}" "$@") \
        </dev/null >>"$DEMO_DIR/logs/$name.log" 2>&1 &
    printf '%s\n' "$!" >"$(pid_file "$name")"
}

stop_one() {  # SIGTERM the component's process group, SIGKILL it after 10 s
    local name=$1 pid
    pid=$(running_pid "$name")
    if [[ -n "$pid" ]]; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            is_ours "$pid" || break
            sleep 0.1
        done
        if is_ours "$pid"; then
            say "demo: $name (pid $pid) did not stop within 10 s: killing it" >&2
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true  # reap it when it is our child (foreground mode)
    fi
    rm -f "$(pid_file "$name")"
}

stop_all() {
    local i
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
        stop_one "${COMPONENTS[i]}"
    done
}

wait_http() {  # wait_http NAME URL: until URL answers 200, the component dies, or START_TIMEOUT passes
    local name=$1 url=$2 deadline=$((SECONDS + START_TIMEOUT))
    until "$PY" - "$url" <<'EOF'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
try:
    with opener.open(sys.argv[1], timeout=1) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
    do
        if [[ -z "$(running_pid "$name")" ]]; then
            tail -n 20 "$DEMO_DIR/logs/$name.log" >&2 || true
            stop_all
            die "$name exited while starting (log: $DEMO_DIR/logs/$name.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$DEMO_DIR/logs/$name.log" >&2 || true
            stop_all
            die "$name not ready at $url after ${START_TIMEOUT}s (log: $DEMO_DIR/logs/$name.log)"
        fi
        sleep 0.2
    done
}

# ------------------------------------------------------------------------------------------------- start

check_setup() {
    [[ -x "$REMEDIATOR" && -x "$PY" ]] || die "no .venv: run scripts/bootstrap.sh first (README: Quick start)"
    local bin
    for bin in prometheus prometheus-alertmanager setsid; do
        command -v "$bin" >/dev/null 2>&1 || die "$bin not found: run scripts/install-system-deps.sh first"
    done
}

render() {  # render TEMPLATE OUT: replace the @…@ placeholders
    sed -e "s|@SERVICE_PORT@|$SERVICE_PORT|g" -e "s|@PROMETHEUS_PORT@|$PROMETHEUS_PORT|g" \
        -e "s|@ALERTMANAGER_PORT@|$ALERTMANAGER_PORT|g" -e "s|@EXPORTER_PORT@|$EXPORTER_PORT|g" \
        -e "s|@ALERTS_FILE@|$EXAMPLES/alerts.yaml|g" -e "s|@TOKEN_FILE@|$DEMO_DIR/webhook-token|g" \
        "$1" >"$2"
}

secret() {  # secret FILE: a random token, created once (0600) and kept across restarts
    [[ -s "$1" ]] || (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$1")
}

start_service() {
    # The service sees none of the caller's REMEDIATOR_* settings (no real PagerDuty, Slack or kubeconfig).
    local var
    for var in $(compgen -e); do
        if [[ $var == REMEDIATOR_* ]]; then unset "$var"; fi
    done
    # Secrets go through the environment, never as flags (anyone on the host can read flags with ps).
    REMEDIATOR_WEBHOOK_TOKEN=$(<"$DEMO_DIR/webhook-token") \
    REMEDIATOR_APPROVER_TOKENS="demo=$(<"$DEMO_DIR/approver-token")" \
    REMEDIATOR_SESSION_SECRET=$(<"$DEMO_DIR/session-secret") \
    REMEDIATOR_LISTEN="127.0.0.1:$SERVICE_PORT" \
    REMEDIATOR_PUBLIC_URL="http://127.0.0.1:$SERVICE_PORT" \
    REMEDIATOR_STORE_URL="sqlite:///$DEMO_DIR/remediator.db" \
    REMEDIATOR_RULES_DIR="$ROOT/rules" \
    REMEDIATOR_PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT" \
    REMEDIATOR_DRY_RUN=true \
    REMEDIATOR_LOG_FORMAT=json \
    NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" \
        launch service "$REMEDIATOR" serve
}

cmd_start() {
    check_setup
    local name
    for name in "${COMPONENTS[@]}"; do
        [[ -z "$(running_pid "$name")" ]] || die "a demo already runs in $DEMO_DIR ($name): scripts/demo.sh stop"
    done
    mkdir -p "$DEMO_DIR/logs" "$DEMO_DIR/pids"
    DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
    # A fresh start: the previous run's metrics, silences and incidents go (only what this script created).
    rm -rf "$DEMO_DIR/prometheus-data" "$DEMO_DIR/alertmanager-data" "$DEMO_DIR"/remediator.db*
    : >"$DEMO_DIR/logs/exporter.log"

    SERVICE_PORT=$(pick_port DEMO_SERVICE_PORT 18080)
    PROMETHEUS_PORT=$(pick_port DEMO_PROMETHEUS_PORT 19090)
    ALERTMANAGER_PORT=$(pick_port DEMO_ALERTMANAGER_PORT 19093)
    EXPORTER_PORT=$(pick_port DEMO_EXPORTER_PORT 19100)
    local ports="$SERVICE_PORT $PROMETHEUS_PORT $ALERTMANAGER_PORT $EXPORTER_PORT"
    [[ $(tr ' ' '\n' <<<"$ports" | sort -u | wc -l) == 4 ]] || die "the four ports must differ: $ports"
    cat >"$(state_file)" <<EOF
SERVICE_PORT=$SERVICE_PORT
PROMETHEUS_PORT=$PROMETHEUS_PORT
ALERTMANAGER_PORT=$ALERTMANAGER_PORT
EXPORTER_PORT=$EXPORTER_PORT
EOF
    secret "$DEMO_DIR/webhook-token"
    secret "$DEMO_DIR/approver-token"
    secret "$DEMO_DIR/session-secret"
    render "$EXAMPLES/prometheus.yml" "$DEMO_DIR/prometheus.yml"
    render "$EXAMPLES/alertmanager.yml" "$DEMO_DIR/alertmanager.yml"

    if [[ $DETACH == 0 ]]; then
        trap 'say; say "demo: stopping…"; stop_all; say "demo: stopped"; exit 130' INT TERM HUP
    fi
    say "demo: starting in $DEMO_DIR (logs in $DEMO_DIR/logs/)"
    launch exporter "$PY" "$EXAMPLES/exporter.py" serve --port "$EXPORTER_PORT"
    wait_http exporter "http://127.0.0.1:$EXPORTER_PORT/control/state"
    launch prometheus prometheus \
        --config.file="$DEMO_DIR/prometheus.yml" \
        --storage.tsdb.path="$DEMO_DIR/prometheus-data" \
        --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
        --web.external-url="http://127.0.0.1:$PROMETHEUS_PORT" \
        --rules.alert.resend-delay=1s
    launch alertmanager prometheus-alertmanager \
        --config.file="$DEMO_DIR/alertmanager.yml" \
        --storage.path="$DEMO_DIR/alertmanager-data" \
        --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
        --web.external-url="http://127.0.0.1:$ALERTMANAGER_PORT" \
        --cluster.listen-address=
    start_service
    wait_http prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
    wait_http alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready"
    wait_http service "http://127.0.0.1:$SERVICE_PORT/readyz"

    local rel_dir=$DEMO_DIR
    [[ $DEMO_DIR == "$PWD"/* ]] && rel_dir=${DEMO_DIR#"$PWD"/}
    cat <<EOF

The demo is running: a fake AITBC platform, Prometheus, Alertmanager and remediator (dry-run: nothing real is
touched; no Kubernetes is configured, so its probes report "skipped" and its actions are planned, not applied).

  console       http://127.0.0.1:$SERVICE_PORT/ui/
                sign in with the approver token: cat $rel_dir/approver-token
  Prometheus    http://127.0.0.1:$PROMETHEUS_PORT/alerts
  Alertmanager  http://127.0.0.1:$ALERTMANAGER_PORT/
  platform      http://127.0.0.1:$EXPORTER_PORT/control/state  (what is broken)
  service log   $rel_dir/logs/service.log  (the bundle of each incident: "notify.bundle")

Break something and watch the alert fire in Prometheus, reach Alertmanager and open an incident in the console
(about 10 s):

  scripts/demo.sh break coordinator    # also: errors, node, database, redis
  scripts/demo.sh fix coordinator      # the alert resolves, and so does the incident

EOF
    if [[ $DETACH == 1 ]]; then
        say "Stop it with: scripts/demo.sh stop"
        return 0
    fi
    say "Ctrl-C stops everything."
    # Until Ctrl-C (the trap), or until a component dies: then stop the rest.
    while true; do
        wait -n 2>/dev/null || true
        for name in "${COMPONENTS[@]}"; do
            if [[ -z "$(running_pid "$name")" ]]; then
                say "demo: $name exited (log: $DEMO_DIR/logs/$name.log); stopping the rest" >&2
                stop_all
                exit 1
            fi
        done
    done
}

# ------------------------------------------------------------------------------------------------- other commands

cmd_stop() {
    [[ -d "$DEMO_DIR/pids" ]] || { say "demo: nothing runs in $DEMO_DIR"; return 0; }
    DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
    stop_all
    say "demo: stopped"
}

cmd_status() {
    [[ -d "$DEMO_DIR/pids" ]] || { say "demo: nothing runs in $DEMO_DIR"; return 1; }
    DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
    load_state
    local name pid up=0
    for name in "${COMPONENTS[@]}"; do
        pid=$(running_pid "$name")
        if [[ -n "$pid" ]]; then say "$name: running (pid $pid)"; up=$((up + 1)); else say "$name: not running"; fi
    done
    if [[ -n "$(running_pid exporter)" ]]; then
        "$PY" "$EXAMPLES/exporter.py" state --port "$EXPORTER_PORT"
    fi
    ((up == ${#COMPONENTS[@]}))
}

cmd_switch() {  # cmd_switch break|fix COMPONENT
    local verb=$1 component=${2:-}
    [[ -n "$component" ]] || die "usage: scripts/demo.sh $verb coordinator|errors|node|database|redis"
    [[ -d "$DEMO_DIR" ]] || die "no demo in $DEMO_DIR (start one: scripts/demo.sh start)"
    DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
    load_state
    [[ -n "$(running_pid exporter)" ]] || die "the demo is not running in $DEMO_DIR (start it: scripts/demo.sh start)"
    "$PY" "$EXAMPLES/exporter.py" "$verb" "$component" --port "$EXPORTER_PORT"
}

main() {
    local command=${1:-start}
    [[ $# -gt 0 ]] && shift
    case "$command" in
        start)
            while [[ $# -gt 0 ]]; do
                case "$1" in
                    --detach | -d) DETACH=1 ;;
                    *) die "unknown option for start: $1 (only --detach)" ;;
                esac
                shift
            done
            cmd_start
            ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        break | fix) cmd_switch "$command" "$@" ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            die "unknown command: $command"
            ;;
    esac
}

main "$@"
