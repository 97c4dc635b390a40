#!/usr/bin/env bash
# A local pool without compose: one router and N workers as background processes, logs in a folder.
# Ctrl-C (or SIGTERM) drains the workers, then stops the router.
#
#   deploy/local/pool.sh [N]                         N workers (default 2)
#   WORKER_ARGS="--chat-model Qwen/Qwen2.5-0.5B-Instruct" deploy/local/pool.sh 2
#
# Settings (environment):
#   MODELYARD       the command to run (default: .venv/bin/modelyard, else modelyard on PATH)
#   ROUTER_LISTEN   router gRPC address (default 127.0.0.1:50051); workers dial it
#   METRICS_LISTEN  router metrics address (default 127.0.0.1:9090; empty: no metrics endpoint)
#   ROUTER_ARGS     extra router flags, e.g. "--config router.yaml"
#   WORKER_ARGS     extra worker flags, e.g. "--chat-model ID --whisper-model NAME"
#   LOG_DIR         where router.log and worker-<i>.log go (default: a new folder under $TMPDIR or /tmp)
#   GRACE_SECONDS   how long each worker may drain on stop (default 30)
#   ASSIGN_GPUS     1: worker i gets CUDA_VISIBLE_DEVICES=i mod (GPU count) (default: 1 when nvidia-smi sees GPUs)
set -euo pipefail

n=${1:-2}
if ! [[ "$n" =~ ^[0-9]+$ ]] || ((n < 1)); then
    echo "usage: $0 [N]   (N workers, at least 1)" >&2
    exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -z "${MODELYARD:-}" ]]; then
    if [[ -x "$repo/.venv/bin/modelyard" ]]; then
        MODELYARD="$repo/.venv/bin/modelyard"
    elif command -v modelyard >/dev/null; then
        MODELYARD=modelyard
    else
        echo "no modelyard command: run \`make install\` or set MODELYARD" >&2
        exit 1
    fi
fi
ROUTER_LISTEN=${ROUTER_LISTEN:-127.0.0.1:50051}
METRICS_LISTEN=${METRICS_LISTEN-127.0.0.1:9090}
GRACE_SECONDS=${GRACE_SECONDS:-30}
LOG_DIR=${LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/modelyard-pool.XXXXXX")}
mkdir -p "$LOG_DIR"
read -r -a router_args <<<"${ROUTER_ARGS:-}"
read -r -a worker_args <<<"${WORKER_ARGS:-}"

gpus=0
if [[ "${ASSIGN_GPUS:-auto}" != 0 ]] && command -v nvidia-smi >/dev/null; then
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
fi

# A wildcard is where to listen, not where to dial.
host=${ROUTER_LISTEN%:*}
port=${ROUTER_LISTEN##*:}
case "$host" in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; esac
router_address="$host:$port"

router_pid=""
worker_pids=()
stopping=0

# shellcheck disable=SC2329  # called from the traps below
stop_all() {
    ((stopping)) && return
    stopping=1
    trap '' INT TERM
    if ((${#worker_pids[@]})); then
        echo "stopping ${#worker_pids[@]} worker(s): draining for up to ${GRACE_SECONDS} s"
        kill -TERM "${worker_pids[@]}" 2>/dev/null || true
        wait_for $((${GRACE_SECONDS%.*} + 15)) "${worker_pids[@]}"
    fi
    if [[ -n "$router_pid" ]]; then
        echo "stopping the router"
        kill -TERM "$router_pid" 2>/dev/null || true
        wait_for 15 "$router_pid"
    fi
    echo "stopped; logs in $LOG_DIR"
}

# wait_for SECONDS PID...: wait for the processes to exit, then SIGKILL whatever is left.
# shellcheck disable=SC2329  # called from stop_all
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    local pid alive
    while ((SECONDS < deadline)); do
        alive=0
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.5
    done
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "pid $pid did not stop in time; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
}

trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

echo "logs in $LOG_DIR"
metrics_args=()
[[ -n "$METRICS_LISTEN" ]] && metrics_args=(--metrics-listen "$METRICS_LISTEN")
# setsid: a terminal's Ctrl-C reaches only this script, which stops the processes in order.
setsid "$MODELYARD" router --listen "$ROUTER_LISTEN" "${metrics_args[@]}" "${router_args[@]}" \
    >"$LOG_DIR/router.log" 2>&1 &
router_pid=$!
echo "router pid $router_pid on $router_address"

# Wait until the router is up (its "liveness" health service; "" stays NOT_SERVING until a worker registers)
# or dies before starting workers.
python=$(dirname "$(command -v "$MODELYARD")")/python
[[ -x "$python" ]] || python=python3
ready=0
for _ in $(seq 1 120); do
    if ! kill -0 "$router_pid" 2>/dev/null; then
        echo "the router exited; last lines of $LOG_DIR/router.log:" >&2
        tail -n 20 "$LOG_DIR/router.log" >&2
        exit 1
    fi
    if "$python" - "$router_address" <<'EOF' 2>/dev/null; then
import sys
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

with grpc.insecure_channel(sys.argv[1]) as channel:
    request = health_pb2.HealthCheckRequest(service="liveness")
    reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=1)
sys.exit(reply.status != health_pb2.HealthCheckResponse.SERVING)
EOF
        ready=1
        break
    fi
    sleep 0.5
done
if ((!ready)); then
    echo "the router did not report SERVING within 60 s; see $LOG_DIR/router.log" >&2
    exit 1
fi

for ((i = 0; i < n; i++)); do
    env_args=()
    ((gpus > 0)) && env_args=(CUDA_VISIBLE_DEVICES=$((i % gpus)))
    setsid env "${env_args[@]}" "$MODELYARD" worker --router "$router_address" --listen 127.0.0.1:0 \
        --worker-id "local-$i" --grace-seconds "$GRACE_SECONDS" "${worker_args[@]}" \
        >"$LOG_DIR/worker-$i.log" 2>&1 &
    worker_pids+=($!)
    echo "worker $i pid $! ${env_args[*]:-}(log: $LOG_DIR/worker-$i.log)"
done

echo "pool starting: router $router_address, $n worker(s); workers register once their models load"
echo "  check with: $MODELYARD status --router $router_address        Ctrl-C stops everything"

# Run until Ctrl-C, or until any process exits on its own (then stop the rest).
set +e
wait -n "$router_pid" "${worker_pids[@]}"
status=$?
set -e
echo "a process exited with status $status; stopping the pool" >&2
exit "$status"
