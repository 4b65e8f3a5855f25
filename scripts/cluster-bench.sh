#!/usr/bin/env bash
# The cluster measured side by side in one run (issue 11, item 8): a
# redis-server of its own and two gmws nodes (A and B) on loopback, each
# with one loop, `gmws load broadcast` as the clients.
#
# 1. Delivery latency, publish to receipt, at a fixed rate (RATE/s, SUBS
#    subscribers): all on node B and published to node B (one node), then
#    published to node A (across nodes, through Redis). During the
#    cross-node run: Redis commands per published message (INFO
#    commandstats before/after) and Redis CPU per 1,000 messages (utime +
#    stime of redis-server in /proc); the same for 10 subscribers on B at
#    REDIS_RATE/s (Redis's cost per message when it is busier).
# 2. Deliveries/s for one group of MEMBERS members, the next message
#    published when every member has the previous one: all on node A, then
#    split half and half over nodes A and B (published to A). With the
#    CPU time of each node and of Redis per delivery.
#
# Every run is bounded (DURATION seconds measured, each step under a
# timeout); the results are printed and written to
# bench-results/cluster-<date>.md.
#
#   scripts/cluster-bench.sh    # about two minutes; SUBS (100), RATE (100),
#                               # MEMBERS (10000), DURATION (10), SIZE (64)
set -euo pipefail
cd "$(dirname "$0")/.."
SUBS=${SUBS:-100}
RATE=${RATE:-100}
REDIS_RATE=${REDIS_RATE:-2000}
MEMBERS=${MEMBERS:-10000}
DURATION=${DURATION:-10}
[ "$DURATION" -ge 6 ] || { echo "DURATION must be 6 s or more" >&2; exit 1; }
SIZE=${SIZE:-64}
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p gmws-cli --quiet
gmws=$target/release/gmws
command -v redis-server >/dev/null || { echo "redis-server missing (apt-get install redis-server)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)

dir=$(mktemp -d)
rport=$(free_port) aport=$(free_port) bport=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" --daemonize no &
redis=$!
pids+=("$redis")
wait_port "$rport"
rcli() { redis-cli -p "$rport" "$@"; }
node() { # node PORT: a gmws node of the cluster, one loop
  GMWS_CLUSTER_REDIS="redis://127.0.0.1:$rport" "$gmws" serve --listen "127.0.0.1:$1" \
    --log-level warn --workers 1 --ping-interval 0 --auth-timeout 0 --api-trust-loopback true \
    --max-connections 20000 --max-connections-per-ip 0 2>"$dir/node-$1.log" &
  pids+=("$!")
  wait_port "$1"
}
node "$aport"; a=${pids[-1]}
node "$bport"; b=${pids[-1]}
A=127.0.0.1:$aport B=127.0.0.1:$bport
# Both nodes live in Redis before the first run.
for _ in $(seq 100); do
  [ "$(curl -s "http://$A/api/nodes" | grep -o '"online_sockets"' | wc -l)" -ge 2 ] && break
  sleep 0.1
done

# Sum of calls in INFO commandstats, and PUBLISH's calls; per command.
cmdstats() { rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p' | sort; }
load() { # a broadcast run's RESULT line (errors in it); its whole report on stderr if it failed
  local out rc=0
  out=$(timeout $((DURATION + 120)) "$gmws" load broadcast -s "$SIZE" -w 1 -d "$DURATION" "$@" 2>&1) || rc=$?
  [ "$rc" = 0 ] || { echo "gmws load $* (exit $rc):" >&2; echo "$out" >&2; }
  grep '^RESULT' <<<"$out"
}

echo "== latency, one node: $SUBS subscribers on B, published to B, $RATE/s"
one=$(load --target "$B" -c "$SUBS" --rate "$RATE" --group lat1)
echo "$one"
local_sockets() { curl -s "http://$1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["online_sockets"])' 2>/dev/null || echo 0; }
# redis_run NAME N LOAD-ARGS...: a cross-node run (N subscribers on B,
# published to A) with Redis's counts and CPU read in its steady state:
# from 2 s after the subscribers are in (the warm-up is 1 s) to 2 s before
# the measured window ends, so joins and leaves are not counted.
redis_run() {
  local name=$1 n=$2; shift 2
  load --target "$B" --publish-target "$A" -c "$n" "$@" >"$dir/$name.result" &
  local loader=$!
  for _ in $(seq 600); do [ "$(local_sockets "$B")" -ge "$n" ] && break; sleep 0.1; done
  sleep 2
  cmdstats >"$dir/$name.before"
  local t0; t0=$(ticks "$redis")
  sleep $((DURATION - 3))
  local t1; t1=$(ticks "$redis")
  cmdstats >"$dir/$name.after"
  wait "$loader"
  line=$(cat "$dir/$name.result")
  echo "$line"
  # Per command: calls in that window (one INFO reading is in it).
  join -a2 -e0 -o 0,1.2,2.2 "$dir/$name.before" "$dir/$name.after" |
    awk '{d=$3-$2; if (d>0) printf "%s=%d ", $1, d}' >"$dir/$name.diff"
  echo "$((t1 - t0))" >"$dir/$name.ticks"
  echo "redis: $(cat "$dir/$name.diff")cpu_ticks=$((t1 - t0))"
}
echo "== latency, across nodes: $SUBS subscribers on B, published to A, $RATE/s"
redis_run lat2 "$SUBS" --rate "$RATE" --group lat2
cross=$line
echo "== Redis busier: 10 subscribers on B, published to A, $REDIS_RATE/s"
redis_run busy 10 --rate "$REDIS_RATE" --group busy
busy=$line
echo "== deliveries/s, $MEMBERS members on node A"
a0=$(ticks "$a") r2=$(ticks "$redis")
single=$(load --target "$A" -c "$MEMBERS" --group all1)
a1=$(ticks "$a") r3=$(ticks "$redis")
echo "$single"
echo "== deliveries/s, $MEMBERS members split over nodes A and B, published to A"
a2=$(ticks "$a") b2=$(ticks "$b") r4=$(ticks "$redis")
split=$(load --target "$A" --also-target "$B" -c "$MEMBERS" --group all2)
a3=$(ticks "$a") b3=$(ticks "$b") r5=$(ticks "$redis")
echo "$split"

us_per() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN{ if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print "n/a" }'; }
ms_per_k() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN{ if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
single_d=$(field "$single" deliveries) split_d=$(field "$split" deliveries)
out=bench-results/cluster-$(date -u +%Y-%m-%d).md
mkdir -p bench-results
{
  echo "# Cluster measurements, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "$(nproc) CPUs, $(redis-server --version | grep -o 'v=[0-9.]*'), gmws nodes with one loop each, loopback;"
  echo "SIZE=$SIZE SUBS=$SUBS RATE=$RATE MEMBERS=$MEMBERS DURATION=$DURATION; \`scripts/cluster-bench.sh\`."
  echo
  echo "| delivery latency ($SUBS subscribers, $RATE msg/s) | p50 µs | p99 µs | max µs | errors |"
  echo "|---|---:|---:|---:|---:|"
  for run in "one node (B to B)|$one" "across nodes (A to B via Redis)|$cross"; do
    line=${run#*|}
    printf '| %s | %s | %s | %s | %s |\n' "${run%%|*}" "$(field "$line" p50_us)" \
      "$(field "$line" p99_us)" "$(field "$line" max_us)" "$(field "$line" errors)"
  done
  echo
  echo "| deliveries/s, group of $MEMBERS | deliveries/s | node A µs CPU/delivery | node B µs CPU/delivery | Redis µs CPU/delivery | errors |"
  echo "|---|---:|---:|---:|---:|---:|"
  printf '| one node (A) | %s | %s | | %s | %s |\n' "$(field "$single" deliveries_per_s)" \
    "$(us_per $((a1 - a0)) "$single_d")" "$(us_per $((r3 - r2)) "$single_d")" "$(field "$single" errors)"
  printf '| split over A and B | %s | %s | %s | %s | %s |\n' "$(field "$split" deliveries_per_s)" \
    "$(us_per $((a3 - a2)) "$split_d")" "$(us_per $((b3 - b2)) "$split_d")" \
    "$(us_per $((r5 - r4)) "$split_d")" "$(field "$split" errors)"
  echo
  echo "Split / one node: $(ratio "$(field "$split" deliveries_per_s)" "$(field "$single" deliveries_per_s)") of the deliveries/s."
  echo
  echo "| Redis during a cross-node run | published (window) | PUBLISH calls | all commands | commands per message | Redis CPU ms per 1,000 messages |"
  echo "|---|---:|---:|---:|---:|---:|"
  for run in "lat2|$RATE/s, $SUBS subscribers|$cross" "busy|$REDIS_RATE/s, 10 subscribers|$busy"; do
    name=${run%%|*} rest=${run#*|}
    label=${rest%%|*} line=${rest#*|}
    pubs=$(tr ' ' '\n' <"$dir/$name.diff" | sed -n 's/^publish=//p')
    all=$(tr ' ' '\n' <"$dir/$name.diff" | awk -F= 'NF==2{s+=$2} END{print s+0}')
    printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$(field "$line" publications)" "$pubs" "$all" \
      "$(ratio "$all" "$pubs")" "$(ms_per_k "$(cat "$dir/$name.ticks")" "$pubs")"
  done
  echo
  echo "Read in each run's steady state (DURATION - 3 s of its measured window, joins and"
  echo "leaves outside it): PUBLISH calls include the nodes' liveness probes, all commands"
  echo "include leases, probes and one INFO reading. Per command in that window:"
  echo
  echo "    lat2: $(cat "$dir/lat2.diff")"
  echo "    busy: $(cat "$dir/busy.diff")"
  echo "    (Redis CPU from utime+stime in /proc, ${hz} Hz ticks)"
  echo
  echo "Raw lines:"
  echo
  for line in "$one" "$cross" "$busy" "$single" "$split"; do echo "    $line"; done
} >"$out"
echo
cat "$out"
echo "(written to $out)"
