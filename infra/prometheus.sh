#!/usr/bin/env bash
# A throwaway Prometheus server for local development and the tests: loopback
# only, our own config and data dir, started and stopped by PID. The Debian
# package's system service is never used (nor left running).
#
#   infra/prometheus.sh ensure                          install prometheus + promtool if missing
#   infra/prometheus.sh start <config> <port> [datadir] check the config, start, wait for /-/ready
#   infra/prometheus.sh stop [datadir]                  stop the server started with that datadir
#   infra/prometheus.sh status [datadir]
#
# datadir defaults to .run/prometheus; the PID file and the log live in it, so
# several servers (one per test) can run side by side.
# Environment: PROMETHEUS_START_TIMEOUT seconds (30).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=proc.sh
source "$HERE/proc.sh"
ROOT="$(cd "$HERE/.." && pwd)"
DEFAULT_DIR="$ROOT/.run/prometheus"
PROMETHEUS_BIN=/usr/bin/prometheus
PROMTOOL_BIN=/usr/bin/promtool
PROMETHEUS_START_TIMEOUT="${PROMETHEUS_START_TIMEOUT:-30}"

die() {
    echo "prometheus.sh: $*" >&2
    exit 1
}

# PIDs of every running prometheus binary (ours or not), one a line.
prometheus_pids() {
    local d
    for d in /proc/[0-9]*; do
        [[ "$(readlink "$d/exe" 2>/dev/null)" == "$PROMETHEUS_BIN" ]] && echo "${d#/proc/}"
    done
    return 0
}

cmd_ensure() {
    if [[ -x $PROMETHEUS_BIN && -x $PROMTOOL_BIN ]]; then
        return 0
    fi
    local before after pid
    before="$(prometheus_pids)"
    # apt.sh runs `apt-get update` once and installs with a policy-rc.d that
    # forbids service starts; promtool ships in the same package.
    "$HERE/apt.sh" ensure prometheus prometheus
    # Belt and braces: where a policy-rc.d already allowed starts (or an init
    # system exists), the package's service may have come up on :9090. Only a
    # server that appeared during this install is stopped, by its PID.
    after="$(prometheus_pids)"
    for pid in $after; do
        if ! grep -qx "$pid" <<<"$before"; then
            echo "prometheus.sh: stopping the packaged service started by the install (pid $pid)" >&2
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    [[ -x $PROMETHEUS_BIN ]] || die "installed the package but $PROMETHEUS_BIN is missing"
    echo "prometheus.sh: $("$PROMETHEUS_BIN" --version 2>&1 | head -n 1)" >&2
}

abs_dir() {
    mkdir -p "$1"
    (cd "$1" && pwd)
}

# PID of the server started with this datadir, if it is still that process.
running_pid() {
    local pid_file="$1/prometheus.pid" pid
    [[ -f "$pid_file" ]] || return 1
    pid="$(cat "$pid_file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # PIDs are reused: only ours if it is still a prometheus binary.
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$PROMETHEUS_BIN" ]] || return 1
    echo "$pid"
}

cmd_start() {
    local config="${1:-}" port="${2:-}" dir
    [[ -n "$config" && "$port" =~ ^[0-9]+$ ]] || die "usage: start <config> <port> [datadir]"
    [[ -f "$config" ]] || die "config $config not found"
    dir="$(abs_dir "${3:-$DEFAULT_DIR}")"
    cmd_ensure
    local pid
    if pid="$(running_pid "$dir")"; then
        die "a server started with $dir is already running (pid $pid); stop it first"
    fi
    # A bad config would otherwise only show as "not ready" after the timeout.
    "$PROMTOOL_BIN" check config "$config" >&2 || die "promtool rejected $config"
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port 127.0.0.1:$port is already in use"
    fi
    local log="$dir/prometheus.log" t0=$SECONDS
    mkdir -p "$dir/data"
    # A background job of a non-interactive shell ignores SIGINT, so the server
    # outlives this script until `stop` (and $! is the server itself).
    "$PROMETHEUS_BIN" \
        --config.file="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")" \
        --web.listen-address="127.0.0.1:$port" \
        --storage.tsdb.path="$dir/data" \
        --storage.tsdb.retention.time=1d \
        --web.enable-lifecycle \
        </dev/null >"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/prometheus.pid"
    local i
    for ((i = 0; i < PROMETHEUS_START_TIMEOUT * 10; i++)); do
        # kill -0, not running_pid: right after the fork the child may not
        # have exec'd the binary yet.
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            rm -f "$dir/prometheus.pid"
            die "prometheus exited during start-up (log: $log)"
        fi
        if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/-/ready" 2>/dev/null; then
            echo "prometheus.sh: ready on 127.0.0.1:$port (pid $pid, $((SECONDS - t0))s)" >&2
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2 || true
    cmd_stop "$dir" || true
    die "prometheus not ready within ${PROMETHEUS_START_TIMEOUT}s (log: $log)"
}

cmd_stop() {
    local dir pid
    dir="$(abs_dir "${1:-$DEFAULT_DIR}")"
    if ! pid="$(running_pid "$dir")"; then
        rm -f "$dir/prometheus.pid"
        echo "prometheus.sh: not running ($dir)" >&2
        return 0
    fi
    stop_pid "prometheus.sh: prometheus" "$pid" 10
    rm -f "$dir/prometheus.pid"
    echo "prometheus.sh: stopped (pid $pid)" >&2
}

cmd_status() {
    local dir pid
    dir="$(abs_dir "${1:-$DEFAULT_DIR}")"
    if pid="$(running_pid "$dir")"; then
        echo "prometheus: running (pid $pid, $dir)"
    else
        echo "prometheus: not running ($dir)"
        return 3
    fi
}

case "${1:-}" in
    ensure) cmd_ensure ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    *)
        echo "usage: $0 {ensure|start <config> <port> [datadir]|stop [datadir]|status [datadir]}" >&2
        exit 2
        ;;
esac
