#!/usr/bin/env bash
# Scale checks for the gateway (issue 4, point 4), on loopback, bounded in time:
#
# 1. IDLE_CONNS (default 19,000; the process file limit here is 20,000)
#    connections held for HOLD seconds (default 40) against `gmws serve` with
#    heartbeats on (PING_INTERVAL, default 15 s: the first pings land 15-30 s
#    after connecting, spread by socket id); every ping is answered by the load
#    generator; reports RSS per connection and the server's CPU while holding.
# 2. A broadcast: SUBSCRIBERS (default 10,000) sockets bound and joined to one
#    group; publications through POST /api/send_to_group; reports deliveries/s,
#    delivery latency, and the server's CPU per delivery (write syscalls included).
#
#   scripts/scale.sh            # about 2 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE_CONNS=${IDLE_CONNS:-19000}
HOLD=${HOLD:-40}
PING_INTERVAL=${PING_INTERVAL:-15}
SUBSCRIBERS=${SUBSCRIBERS:-10000}
PORT=${PORT:-19850}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# The `gmws` binary is the cli/ package's (`gmws serve` and `gmws load`).
cargo build --release -p gmws-cli --quiet
gmws=${CARGO_TARGET_DIR:-target}/release/gmws

run_server() {
  taskset -c 0 "$gmws" serve --listen "127.0.0.1:$PORT" --log-level warn "$@" 2> "target/scale-server.log" &
  server=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return; sleep 0.1; done
  echo "scale: server did not start" >&2; exit 1
}
trap 'kill $server 2>/dev/null || true' EXIT

echo "== idle: $IDLE_CONNS connections, heartbeats every $PING_INTERVAL s, held $HOLD s"
run_server --ping-interval "$PING_INTERVAL" --auth-timeout 0 --max-connections 20000
taskset -c 1 "$gmws" load idle --target "127.0.0.1:$PORT" -c "$IDLE_CONNS" --hold "$HOLD" --pid "$server" | tail -5
kill "$server"; wait "$server" 2>/dev/null || true

echo "== broadcast: $SUBSCRIBERS subscribers in one group, published through the HTTP API"
# The API needs a key (without one it is refused); a fresh one per run.
API_KEY="scale-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
GMWS_API_KEY="$API_KEY" run_server --ping-interval 0 --auth-timeout 0
taskset -c 1 "$gmws" load broadcast --target "127.0.0.1:$PORT" -c "$SUBSCRIBERS" -w 1 -d 5 --pid "$server" --api-key "$API_KEY" | tail -5
