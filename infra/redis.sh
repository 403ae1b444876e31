#!/usr/bin/env bash
# A throwaway Redis for local development and tests: private port, no
# persistence, files under .run/redis.
#
#   infra/redis.sh start    install redis-server if missing, start it, wait for PING
#   infra/redis.sh stop     stop the instance started by `start` (by its PID)
#   infra/redis.sh status   say whether it runs
#   infra/redis.sh url      print the redis:// URL of the running server
#
# Environment: REDIS_PORT (16379), REDIS_START_TIMEOUT seconds (20).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=proc.sh
source "$HERE/proc.sh"
ROOT="$(cd "$HERE/.." && pwd)"
RUN_DIR="$ROOT/.run/redis"
PID_FILE="$RUN_DIR/redis.pid"
PORT_FILE="$RUN_DIR/port"
LOG_FILE="$RUN_DIR/redis.log"

REDIS_PORT="${REDIS_PORT:-16379}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-20}"

die() {
    echo "redis.sh: $*" >&2
    exit 1
}

# PID of the server we started, if it is still that process.
running_pid() {
    pid_from_file "$PID_FILE" 'redis-server'
}

ping() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_start() {
    local pid
    if pid="$(running_pid)"; then
        echo "redis.sh: Redis already running (pid $pid) at $(cmd_url)" >&2
        return 0
    fi
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        # redis-cli ships in redis-tools, a dependency of redis-server.
        "$HERE/apt.sh" ensure redis-server redis-server
    fi
    if port_open "$REDIS_PORT"; then
        die "port 127.0.0.1:$REDIS_PORT is already in use by another process; set REDIS_PORT, or point REDIS_URL at that server"
    fi
    mkdir -p "$RUN_DIR"
    rm -f "$PID_FILE"
    echo "$REDIS_PORT" >"$PORT_FILE"
    : >"$LOG_FILE"
    local t0=$SECONDS
    # Daemonized so redis writes its own pidfile once it is up; the data dir
    # is set so a stray SAVE/BGSAVE cannot drop dump.rdb in the caller's cwd.
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
        --save '' --appendonly no \
        --daemonize yes --pidfile "$PID_FILE" --logfile "$LOG_FILE" \
        --dir "$RUN_DIR" --protected-mode yes </dev/null

    local i
    for ((i = 0; i < REDIS_START_TIMEOUT * 10; i++)); do
        if ping && running_pid >/dev/null; then
            echo "redis.sh: Redis ready on 127.0.0.1:$REDIS_PORT (pid $(cat "$PID_FILE"), $((SECONDS - t0))s)" >&2
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$LOG_FILE" >&2 || true
    cmd_stop || true
    die "Redis did not answer PING within ${REDIS_START_TIMEOUT}s"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        echo "redis.sh: Redis not running" >&2
        return 0
    fi
    stop_pid "redis.sh: redis" "$pid" 10
    rm -f "$PID_FILE"
    echo "redis.sh: Redis stopped (pid $pid)" >&2
}

# URL of the running server, which may have been started with another
# REDIS_PORT than the caller's environment has now.
cmd_url() {
    local port="$REDIS_PORT"
    if running_pid >/dev/null && [[ -f "$PORT_FILE" ]]; then
        port="$(cat "$PORT_FILE")"
    fi
    echo "redis://127.0.0.1:$port/0"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        echo "redis: running (pid $pid) at $(cmd_url)"
    else
        echo "redis: not running"
        return 3
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) cmd_url ;;
    *)
        echo "usage: $0 {start|stop|status|url}" >&2
        exit 2
        ;;
esac
