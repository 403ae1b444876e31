#!/usr/bin/env bash
# The local stack (Kafka + Redis) the worker and the tests talk to.
#
#   infra/stack.sh up              start what is not provided, create topics, print exports
#   infra/stack.sh down            stop the local Kafka/Redis (only PIDs recorded in .run/)
#   infra/stack.sh status
#   infra/stack.sh run -- CMD...   up, run CMD with the stack's env, then stop
#                                  whatever this call started (even when CMD fails)
#
# A service counts as "provided" when its variable is already set:
# KAFKA_BOOTSTRAP_SERVERS for Kafka, REDIS_URL for Redis. Then nothing is
# started for it and only the topics are ensured. The exports also go to
# .run/stack.env so other scripts can `source` it.
#
# stdout carries only the export lines (so `eval "$(infra/stack.sh up)"` works);
# progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUN_DIR="$ROOT/.run"
ENV_FILE="$RUN_DIR/stack.env"

# Services started by this invocation, so a failure (or `run`) stops exactly those.
STARTED=()

stop_started() {
    local svc
    for svc in "${STARTED[@]}"; do
        "$HERE/$svc.sh" stop || true
    done
    STARTED=()
}

run_cleanup() {
    if [[ ${#STARTED[@]} -gt 0 ]]; then
        stop_started
        # The exports would now point at a stack that is gone.
        rm -f "$ENV_FILE"
    fi
}

ensure_service() {
    local svc="$1"
    if "$HERE/$svc.sh" status >/dev/null 2>&1; then
        echo "stack.sh: reusing the $svc already started from .run/" >&2
        return 0
    fi
    "$HERE/$svc.sh" start
    STARTED+=("$svc")
}

# Sets KAFKA_BOOTSTRAP_SERVERS / REDIS_URL in this shell and writes ENV_FILE.
cmd_up() {
    local kafka redis
    if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
        kafka="$KAFKA_BOOTSTRAP_SERVERS"
        echo "stack.sh: using provided Kafka $kafka" >&2
    else
        ensure_service kafka
        kafka="$("$HERE/kafka.sh" bootstrap)"
    fi
    if [[ -n "${REDIS_URL:-}" ]]; then
        redis="$REDIS_URL"
        echo "stack.sh: using provided Redis $redis" >&2
    else
        ensure_service redis
        redis="$("$HERE/redis.sh" url)"
    fi
    export KAFKA_BOOTSTRAP_SERVERS="$kafka" REDIS_URL="$redis"

    # Contract topics exist before any producer or worker starts, with the
    # configured partition count rather than whatever auto-create would pick.
    "$HERE/kafka.sh" topics >&2

    mkdir -p "$RUN_DIR"
    {
        printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "$kafka"
        printf 'export REDIS_URL=%q\n' "$redis"
    } >"$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

cmd_down() {
    "$HERE/kafka.sh" stop
    "$HERE/redis.sh" stop
    rm -f "$ENV_FILE"
}

cmd_status() {
    local rc=0
    "$HERE/kafka.sh" status || rc=1
    "$HERE/redis.sh" status || rc=1
    return "$rc"
}

case "${1:-}" in
    up)
        # A half-started stack is worse than none: on any failure stop what
        # this call started. On success STARTED is emptied so nothing stops.
        trap 'stop_started' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        cmd_up
        STARTED=()
        cat "$ENV_FILE"
        ;;
    down)
        cmd_down
        ;;
    status)
        cmd_status
        ;;
    run)
        shift
        [[ "${1:-}" == "--" ]] && shift
        if [[ $# -eq 0 ]]; then
            echo "usage: $0 run -- CMD..." >&2
            exit 2
        fi
        # Stopping on EXIT covers a failing command, a failing `up` and Ctrl-C.
        trap 'run_cleanup' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        cmd_up
        rc=0
        "$@" || rc=$?
        exit "$rc"
        ;;
    *)
        echo "usage: $0 {up|down|status|run -- CMD...}" >&2
        exit 2
        ;;
esac
