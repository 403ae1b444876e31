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

#   pid_from_file FILE PATTERN  print the PID in FILE if that process is alive and its
#                               command line matches PATTERN (PIDs are reused)
pid_from_file() {
    local file="$1" pattern="$2" pid
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
    echo "$pid"
}
