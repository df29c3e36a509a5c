#!/usr/bin/env bash
# Start (or stop) our gateway for benchmarking: `phr-gateway serve` (gunicorn gthread, production settings).
#   bench/serve.sh start | stop
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/env.sh"
VENV=${VENV:-$HERE/../.venv}
mkdir -p "$PHR_INSTANCE_PATH"; PIDF=$PHR_INSTANCE_PATH/../gateway.pid
case "${1:-start}" in
  start)
    cd "$PHR_INSTANCE_PATH/.."
    setsid nohup "$VENV/bin/phr-gateway" serve --host 127.0.0.1 --port "$PHR_PORT" \
        --workers "$PHR_WORKERS" --threads "$PHR_THREADS" > gateway.log 2>&1 < /dev/null &
    echo $! > "$PIDF"
    for _ in $(seq 1 120); do curl -sf "$PHR_BASE_URL/healthz" >/dev/null && break; sleep 0.5; done
    curl -sf "$PHR_BASE_URL/healthz"; echo " gateway pid $(cat "$PIDF") workers=$PHR_WORKERS threads=$PHR_THREADS";;
  stop)
    [ -f "$PIDF" ] && kill "$(cat "$PIDF")" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$(cat "$PIDF" 2>/dev/null)" 2>/dev/null || break; sleep 0.25; done
    rm -f "$PIDF";;
esac
