#!/usr/bin/env bash
# Sourced by the service scripts: stop one process by its PID, politely first.
#
#   stop_pid NAME PID SECONDS   SIGTERM, wait up to SECONDS, then SIGKILL (bounded too)

stop_pid() {
    local name="$1" pid="$2" grace="$3" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "$name (pid $pid) still alive after ${grace}s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
}
