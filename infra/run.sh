#!/usr/bin/env bash
# `make run`: the whole thing on this machine. Starts the local stack (unless
# KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are set), one worker and the live simulator,
# prints where to look, and stops everything it started on Ctrl-C (or after
# RUN_SECONDS, when set).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="$ROOT/.venv/bin/python"
RUN_DIR="$ROOT/.run"
RATE="${SIM_RATE:-3}"
LOAD="${SIM_LOAD:-1.0}"
mkdir -p "$RUN_DIR"

provided=0
[[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" && -n "${REDIS_URL:-}" ]] && provided=1
eval "$("$HERE/stack.sh" up)"
export KAFKA_BOOTSTRAP_SERVERS REDIS_URL

PIDS=()
cleanup() {
    trap - INT TERM EXIT
    echo "stopping..." >&2
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ $provided -eq 0 ]]; then "$HERE/stack.sh" down || true; fi
}
trap cleanup INT TERM EXIT

"$PY" -m stream_app worker --loglevel warning >"$RUN_DIR/worker.log" 2>&1 &
PIDS+=($!)
"$PY" -m stream_app simulate --rate "$RATE" --load "$LOAD" >"$RUN_DIR/simulator.log" 2>&1 &
PIDS+=($!)

host="${KPI_WEB_HOST:-127.0.0.1}"; port="${KPI_WEB_PORT:-6066}"
for _ in $(seq 1 120); do
    if curl -sf "http://$host:$port/api/status" >/dev/null 2>&1; then break; fi
    kill -0 "${PIDS[0]}" 2>/dev/null || { echo "the worker stopped; see $RUN_DIR/worker.log" >&2; tail -20 "$RUN_DIR/worker.log" >&2; exit 1; }
    sleep 0.5
done

cat <<MSG

  kpi-stream is running (simulated center: $RATE events/s, load $LOAD)

    wallboard   http://$host:$port/
    snapshot    http://$host:$port/api/snapshot
    metrics     http://$host:$port/metrics
    Redis       $REDIS_URL  (keys ${KPI_REDIS_PREFIX:-kpi:}*)
    logs        .run/worker.log  .run/simulator.log

  Ctrl-C stops the worker, the simulator and the stack this started.

MSG

end=$(( $(date +%s) + ${RUN_SECONDS:-31536000} ))
while (( $(date +%s) < end )); do
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "a process stopped; see $RUN_DIR/*.log" >&2; exit 1; }
    done
    sleep 2
done
