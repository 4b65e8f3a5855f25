#!/usr/bin/env bash
# Fan-out against physics, in one run (issue 10, point 9):
#
# 1. the floor: benches/raw_send_floor.rs, one plain send() of one frame to
#    each of SUBSCRIBERS loopback sockets, no framework (sender on CPU 0, its
#    reader on CPU 1);
# 2. gmws with one loop: `gmws serve --workers 1` (pinned to CPU 0), SUBSCRIBERS
#    sockets in one group (`gmws load broadcast`, pinned to CPU 1), messages
#    published through POST /api/send_to_group;
# 3. gmws with two loops (`--workers 2`, not pinned: the loops share the two
#    CPUs with the load generator), the subscribers spread over both loops.
#
# Each reports deliveries/s and the sender's (server's) CPU time per delivery.
# The floor's frame is sized like gmws's delivered envelope (FRAME_PAYLOAD).
#
#   scripts/fanout-bench.sh     # about a minute; SUBSCRIBERS (10000), DURATION (5)
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSCRIBERS=${SUBSCRIBERS:-10000}
DURATION=${DURATION:-5}
SIZE=${SIZE:-64}
# `{"type":"message","data":{"from":"server","to":{"group":"load"},"message":"<SIZE>"}}`
FRAME_PAYLOAD=${FRAME_PAYLOAD:-$((SIZE + 78))}
PORT=${PORT:-19870}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p gmws-cli --quiet
cargo build --release --bench raw_send_floor --quiet
gmws=$target/release/gmws
floor=$(ls -t "$target"/release/deps/raw_send_floor-* | grep -v '\.d$' | head -1)
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

echo "== floor: $SUBSCRIBERS sockets, $FRAME_PAYLOAD-byte payloads"
floor_line=$(taskset -c 0 "$floor" -c "$SUBSCRIBERS" -s "$FRAME_PAYLOAD" -d "$DURATION" -w 1 --reader-cpu 1 | grep '^RESULT')
echo "$floor_line"

server=
trap 'kill $server 2>/dev/null || true' EXIT
run() { # run WORKERS PIN...
  local workers=$1; shift
  PORT=$((PORT + 1))
  API_KEY="fanout-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  GMWS_API_KEY="$API_KEY" "$@" "$gmws" serve --listen "127.0.0.1:$PORT" --log-level warn \
    --workers "$workers" --ping-interval 0 --auth-timeout 0 --max-connections 20000 \
    --max-connections-per-ip 0 2>/dev/null &
  server=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 "$gmws" load broadcast --target "127.0.0.1:$PORT" -c "$SUBSCRIBERS" -s "$SIZE" \
    -w 1 -d "$DURATION" --pid "$server" --api-key "$API_KEY" | grep '^RESULT'
  kill "$server"; wait "$server" 2>/dev/null || true
}
echo "== gmws, 1 loop (server on CPU 0, load on CPU 1)"
one=$(run 1 taskset -c 0)
echo "$one"
echo "== gmws, 2 loops (server on CPUs 0-1, load on CPU 1)"
two=$(run 2 env)
echo "$two"

f=$(field "$floor_line" sender_cpu_us_per_delivery)
g1=$(field "$one" server_cpu_us_per_delivery)
g2=$(field "$two" server_cpu_us_per_delivery)
echo
echo "| sender | deliveries/s | CPU µs per delivery | vs floor |"
echo "|---|---:|---:|---:|"
printf '| raw send() floor | %s | %s | 1.00 |\n' "$(field "$floor_line" deliveries_per_s)" "$f"
printf '| gmws, 1 loop | %s | %s | %s |\n' "$(field "$one" deliveries_per_s)" "$g1" "$(awk -v a="$g1" -v b="$f" 'BEGIN{printf "%.2f", a/b}')"
printf '| gmws, 2 loops | %s | %s | %s |\n' "$(field "$two" deliveries_per_s)" "$g2" "$(awk -v a="$g2" -v b="$f" 'BEGIN{printf "%.2f", a/b}')"
