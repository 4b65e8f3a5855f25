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
# ROUNDS runs of the three, interleaved (the VM's speed drifts between runs);
# the table shows each column's median, the raw lines are printed as they come.
#
#   scripts/fanout-bench.sh     # about a minute a round; SUBSCRIBERS (10000),
#                               # DURATION (5), ROUNDS (1)
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSCRIBERS=${SUBSCRIBERS:-10000}
DURATION=${DURATION:-5}
SIZE=${SIZE:-64}
ROUNDS=${ROUNDS:-1}
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
median() { sort -g | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
floor_rate=() floor_cpu=() one_rate=() one_cpu=() two_rate=() two_cpu=()
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  echo "== floor: $SUBSCRIBERS sockets, $FRAME_PAYLOAD-byte payloads"
  line=$(taskset -c 0 "$floor" -c "$SUBSCRIBERS" -s "$FRAME_PAYLOAD" -d "$DURATION" -w 1 --reader-cpu 1 | grep '^RESULT')
  echo "$line"
  floor_rate+=("$(field "$line" deliveries_per_s)") floor_cpu+=("$(field "$line" sender_cpu_us_per_delivery)")
  echo "== gmws, 1 loop (server on CPU 0, load on CPU 1)"
  line=$(run 1 taskset -c 0)
  echo "$line"
  one_rate+=("$(field "$line" deliveries_per_s)") one_cpu+=("$(field "$line" server_cpu_us_per_delivery)")
  echo "== gmws, 2 loops (server on CPUs 0-1, load on CPU 1)"
  line=$(run 2 env)
  echo "$line"
  two_rate+=("$(field "$line" deliveries_per_s)") two_cpu+=("$(field "$line" server_cpu_us_per_delivery)")
done
med() { printf '%s\n' "$@" | median; }
f=$(med "${floor_cpu[@]}") g1=$(med "${one_cpu[@]}") g2=$(med "${two_cpu[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo
echo "Medians of $ROUNDS round(s):"
echo
echo "| sender | deliveries/s | CPU µs per delivery | vs floor | vs 1 loop |"
echo "|---|---:|---:|---:|---:|"
printf '| raw send() floor | %.0f | %s | 1.00 | |\n' "$(med "${floor_rate[@]}")" "$f"
printf '| gmws, 1 loop | %.0f | %s | %s | 1.00 |\n' "$(med "${one_rate[@]}")" "$g1" "$(ratio "$g1" "$f")"
printf '| gmws, 2 loops | %.0f | %s | %s | %s |\n' "$(med "${two_rate[@]}")" "$g2" "$(ratio "$g2" "$f")" "$(ratio "$g2" "$g1")"
