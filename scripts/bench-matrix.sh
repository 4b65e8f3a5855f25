#!/usr/bin/env bash
# gmws side by side with its peers, in one run, on this machine.
#
#   scripts/bench-matrix.sh [--tls] [--deflate] [--rounds N] [--warmup S] [--duration S]
#                           [--idle-conns N] [--idle-hold S] [--sizes "16 1024 65536"]
#                           [--conns "1 100 1000"] [--servers "gmws tungstenite fastwebsockets"]
#
# Builds gmws (release: the `gmws` binary, whose `gmws load` is the load
# generator, and examples/echo) and the peers in benches/peers (a
# tokio-tungstenite and a fastwebsockets echo server, from crates.io), then:
#
# - echo matrix: payload 16 B / 1 KiB / 64 KiB x connections 1 / 100 / 1000,
#   against each server: msgs/s, round-trip p99, and the server's CPU time
#   (utime + stime from /proc/PID/stat, read by `gmws load --pid` at the start
#   and end of the measured window) per echoed message, and the server's
#   context switches per echoed message (how often it slept in epoll_wait);
#   with --rounds N the whole matrix is run N times (servers interleaved in
#   each cell) and each cell reports the run with the median CPU per message;
# - idle: 10,000 connections held against each server: server RSS growth per
#   connection (VmRSS from /proc/PID/status).
#
# Each cell gets a fresh server process pinned to CPU $SERVER_CPU (default 0)
# and the load generator pinned to CPU $LOAD_CPU (default 1), with taskset.
# Only loopback addresses are used. Prints Markdown tables at the end and
# writes them, with the machine description and the raw RESULT lines, to
# bench-results/matrix-<date>.md.
#
# --tls: every connection over TLS (`gmws load --tls --tls-ca`, a self-signed
# P-256 certificate for 127.0.0.1 made with openssl into a temporary
# directory); servers default to "gmws tungstenite-tls" (tokio-tungstenite
# over tokio-rustls, benches/peers). gmws gets --tls-cert/--tls-key and
# GMWS_TLS_CERT/GMWS_TLS_KEY.
# --deflate: permessage-deflate on every connection (`gmws load --deflate`:
# Chrome's offer, every message compressed, the server must accept); servers
# default to "gmws node-ws-deflate" (Node's ws with perMessageDeflate, no
# context takeover, threshold 0: benches/peers/node, installed with npm ci).
# gmws gets --compression on, GMWS_COMPRESSION=on and
# GMWS_COMPRESSION_MIN_SIZE=0 (every message compressed, as the peer does).
# In these modes only peers with the same option run: plain peers' numbers
# are not mixed in. Both together run gmws alone (no peer has both).
#
# Server "gmws2" is the same echo example with GMWS_WORKERS=2 (two event
# loops, not pinned); "gmws2pin" the same pinned to the server's CPU like
# the one-loop server (on a 2-CPU machine the load generator has the other:
# this isolates what the machinery of two loops costs per message from where
# the scheduler puts an unpinned loop). Server "baseline" is another build of examples/echo given as BASELINE_ECHO
# (e.g. an earlier commit's), to measure a change before/after in one run:
#   BASELINE_ECHO=/tmp/old/echo scripts/bench-matrix.sh --servers "gmws baseline"
#
# Defaults: --rounds 1 --warmup 1 --duration 3 --idle-conns 10000 --idle-hold 3
# (a few minutes per round); --idle-conns 0 skips the idle run. JOBS (default
# 1) is passed to cargo as -j.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=1
WARMUP=1
DURATION=3
IDLE_CONNS=10000
IDLE_HOLD=3
SIZES="16 1024 65536"
CONNS="1 100 1000"
SERVERS=""
TLS=0
DEFLATE=0
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
JOBS=${JOBS:-1}
BASE_PORT=${BASE_PORT:-19300}

ARGS_GIVEN="$*"
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --idle-conns) IDLE_CONNS=$2; shift 2 ;;
        --idle-hold) IDLE_HOLD=$2; shift 2 ;;
        --sizes) SIZES=$2; shift 2 ;;
        --conns) CONNS=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --tls) TLS=1; shift ;;
        --deflate) DEFLATE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-matrix: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '%s\n' "$*" >&2; }

# ---- wire mode ----------------------------------------------------------------
# WIRE names the mode; PEERS_OK the servers that may run in it.
case "$TLS$DEFLATE" in
    00) WIRE=plain; PEERS_OK="gmws gmws2 gmws2pin baseline tungstenite fastwebsockets"
        DEFAULT_SERVERS="gmws tungstenite fastwebsockets" ;;
    10) WIRE=tls; PEERS_OK="gmws gmws2 gmws2pin baseline tungstenite-tls"
        DEFAULT_SERVERS="gmws tungstenite-tls" ;;
    01) WIRE=deflate; PEERS_OK="gmws gmws2 gmws2pin baseline node-ws-deflate"
        DEFAULT_SERVERS="gmws node-ws-deflate" ;;
    11) WIRE=tls+deflate; PEERS_OK="gmws gmws2 gmws2pin baseline"; DEFAULT_SERVERS="gmws" ;;
esac
SERVERS=${SERVERS:-$DEFAULT_SERVERS}
for s in $SERVERS; do
    if [[ " $PEERS_OK " != *" $s "* ]]; then
        log "bench-matrix: server $s does not run in $WIRE mode (there: $PEERS_OK)"
        exit 2
    fi
done
has() { [[ " $SERVERS " == *" $1 "* ]]; }

# ---- build ------------------------------------------------------------------
log "==> building gmws (release) and the peers (benches/peers), cargo -j$JOBS"
# The `gmws` binary (cli/, for `gmws load`) and the library's echo example.
cargo build --release -j"$JOBS" -p gmws-cli -p gmws --bin gmws --example echo
PEER_BINS=()
has tungstenite && PEER_BINS+=(--bin tungstenite_echo)
has fastwebsockets && PEER_BINS+=(--bin fastwebsockets_echo)
has tungstenite-tls && PEER_BINS+=(--bin tungstenite_tls_echo)
if [ ${#PEER_BINS[@]} -gt 0 ]; then
    cargo build --release -j"$JOBS" --manifest-path benches/peers/Cargo.toml "${PEER_BINS[@]}"
fi
if has node-ws-deflate; then
    command -v node >/dev/null && command -v npm >/dev/null || {
        log "error: node-ws-deflate needs node and npm (Debian: apt-get install nodejs npm)"
        exit 1
    }
    log "==> installing the Node peer (benches/peers/node: npm ci)"
    (cd benches/peers/node && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
TARGET=${CARGO_TARGET_DIR:-target}
LOAD=$TARGET/release/gmws
declare -A SERVER_BIN=(
    [gmws]=$TARGET/release/examples/echo
    [baseline]=${BASELINE_ECHO:-}
    [gmws2]=$TARGET/release/examples/echo
    [gmws2pin]=$TARGET/release/examples/echo
    [tungstenite]=${CARGO_TARGET_DIR:-benches/peers/target}/release/tungstenite_echo
    [fastwebsockets]=${CARGO_TARGET_DIR:-benches/peers/target}/release/fastwebsockets_echo
    [tungstenite-tls]=${CARGO_TARGET_DIR:-benches/peers/target}/release/tungstenite_tls_echo
    [node-ws-deflate]=benches/peers/node/ws_deflate_echo.js
)
declare -A SERVER_NAME=(
    [gmws]="gmws"
    [baseline]="gmws (baseline)"
    [gmws2]="gmws, 2 loops"
    [gmws2pin]="gmws, 2 loops on 1 CPU"
    [tungstenite]="tokio-tungstenite"
    [fastwebsockets]="fastwebsockets"
    [tungstenite-tls]="tokio-tungstenite (TLS)"
    [node-ws-deflate]="ws (Node)"
)
for s in $SERVERS; do
    [ -n "${SERVER_BIN[$s]:-}" ] || { log "unknown server $s"; exit 2; }
done

# ---- machine ----------------------------------------------------------------
# Each connection is a file descriptor in both processes: raise the soft limit
# to the hard one (no privilege needed).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 100)) ]; then
    log "warning: open-file limit $(ulimit -n) is below --idle-conns $IDLE_CONNS + 100"
fi
PIN_SERVER=()
PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_LOAD=(taskset -c "$LOAD_CPU")
else
    log "warning: taskset or a second CPU missing: server and load generator are not pinned"
fi
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
MACHINE="$(nproc) CPUs (${CPU_MODEL:-unknown CPU}), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r), $(rustc --version)"

# ---- wire: certificate, flags --------------------------------------------------
TMP_DIR=$(mktemp -d)
LOAD_WIRE=()    # flags for gmws load
GMWS_WIRE=()    # flags for the gmws servers (their env is set in start_server)
PEER_WIRE=()    # flags for the peers
if [ "$TLS" = 1 ]; then
    CERT=$TMP_DIR/cert.pem
    KEY=$TMP_DIR/key.pem
    # CA:FALSE: openssl marks a self-signed certificate as a CA by default,
    # and webpki (rustls) refuses a CA certificate as a server's.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -keyout "$KEY" -out "$CERT" 2>/dev/null
    LOAD_WIRE+=(--tls --tls-ca "$CERT")
    GMWS_WIRE+=(--tls-cert "$CERT" --tls-key "$KEY")
    PEER_WIRE+=(--tls-cert "$CERT" --tls-key "$KEY")
fi
if [ "$DEFLATE" = 1 ]; then
    LOAD_WIRE+=(--deflate)
    GMWS_WIRE+=(--compression on)
fi

# ---- servers ----------------------------------------------------------------
SERVER_PID=""
PORT=$BASE_PORT
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$TMP_DIR"
}
trap cleanup EXIT

# start_server NAME: a fresh server on a fresh loopback port; sets SERVER_PID, ADDR.
start_server() {
    stop_server
    PORT=$((PORT + 1))
    ADDR=127.0.0.1:$PORT
    # gmws reads its wire settings from flags or the environment (whichever
    # its echo example takes); the peers from flags.
    local env=()
    [ "$TLS" = 1 ] && env+=(GMWS_TLS_CERT="$CERT" GMWS_TLS_KEY="$KEY")
    [ "$DEFLATE" = 1 ] && env+=(GMWS_COMPRESSION=on GMWS_COMPRESSION_MIN_SIZE=0)
    case "$1" in
        gmws2)
            # Two loops need two CPUs: not pinned (they share the second with
            # the load generator).
            env GMWS_WORKERS=2 "${env[@]}" "${SERVER_BIN[$1]}" "$ADDR" "${GMWS_WIRE[@]}" >/dev/null 2>&1 &
            ;;
        gmws2pin)
            env GMWS_WORKERS=2 "${env[@]}" "${PIN_SERVER[@]}" "${SERVER_BIN[$1]}" "$ADDR" "${GMWS_WIRE[@]}" >/dev/null 2>&1 &
            ;;
        gmws | baseline)
            env "${env[@]}" "${PIN_SERVER[@]}" "${SERVER_BIN[$1]}" "$ADDR" "${GMWS_WIRE[@]}" >/dev/null 2>&1 &
            ;;
        node-ws-deflate)
            "${PIN_SERVER[@]}" node "${SERVER_BIN[$1]}" "$ADDR" >/dev/null 2>&1 &
            ;;
        *)
            "${PIN_SERVER[@]}" "${SERVER_BIN[$1]}" "$ADDR" "${PEER_WIRE[@]}" >/dev/null 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "error: $1 did not start listening on $ADDR"
    exit 1
}

# field LINE KEY: the value of KEY=... in a RESULT line (na if absent).
field() {
    local v
    v=$(printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1)
    printf '%s' "${v:-na}"
}

# run_load ARGS...: gmws load pinned to the load CPU; prints its RESULT line.
# A run that counted errors exits 1 and still has a RESULT line.
run_load() {
    local out
    out=$("${PIN_LOAD[@]}" "$LOAD" load "$@" 2>&1) || true
    local line
    line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -1 || true)
    if [ -z "$line" ]; then
        log "error: gmws load $* printed no RESULT line:"
        log "$out"
        line="RESULT failed=1"
    fi
    printf '%s\n' "$line"
}

size_label() {
    case "$1" in
        16) echo "16 B" ;;
        1024) echo "1 KiB" ;;
        65536) echo "64 KiB" ;;
        *) echo "$1 B" ;;
    esac
}

declare -A RES
RAW=()
cells=$(( $(wc -w <<<"$SIZES") * $(wc -w <<<"$CONNS") * $(wc -w <<<"$SERVERS") ))
log "==> echo matrix: $ROUNDS round(s) of $cells cells, warm-up ${WARMUP}s + ${DURATION}s measured each"
for round in $(seq "$ROUNDS"); do
    n=0
    for size in $SIZES; do
        for conns in $CONNS; do
            for s in $SERVERS; do
                n=$((n + 1))
                start_server "$s"
                line=$(run_load echo --target "$ADDR" -c "$conns" -s "$size" \
                    -w "$WARMUP" -d "$DURATION" --pid "$SERVER_PID" "${LOAD_WIRE[@]}")
                stop_server
                RES[$s,$size,$conns,$round]=$line
                RAW+=("round $round, $s: $line")
                log "  [$round: $n/$cells] $s size=$size conns=$conns: $(field "$line" msgs_per_s) msgs/s, p99 $(field "$line" p99_us) us, $(field "$line" server_cpu_us_per_msg) us CPU/msg, $(field "$line" server_switches_per_msg) switches/msg, errors $(field "$line" errors)"
            done
        done
    done
done
# Each cell: the round with the median CPU per message (the upper one of two).
for size in $SIZES; do
    for conns in $CONNS; do
        for s in $SERVERS; do
            RES[$s,$size,$conns]=$(
                for round in $(seq "$ROUNDS"); do
                    l=${RES[$s,$size,$conns,$round]}
                    printf '%s\t%s\n' "$(field "$l" server_cpu_us_per_msg)" "$l"
                done | sort -g | sed -n "$((ROUNDS / 2 + 1))p" | cut -f2-
            )
        done
    done
done

if [ "$IDLE_CONNS" -gt 0 ]; then
    log "==> idle: $IDLE_CONNS connections held ${IDLE_HOLD}s against each server"
fi
for s in $SERVERS; do
    [ "$IDLE_CONNS" -gt 0 ] || break
    start_server "$s"
    line=$(run_load idle --target "$ADDR" -c "$IDLE_CONNS" --hold "$IDLE_HOLD" \
        --timeout 20 --pid "$SERVER_PID" "${LOAD_WIRE[@]}")
    stop_server
    RES[$s,idle]=$line
    RAW+=("$s: $line")
    log "  $s: $(field "$line" opened) opened, $(field "$line" rss_bytes_per_conn) bytes/conn, errors $(field "$line" errors)"
done

# ---- tables -----------------------------------------------------------------
# ratio A B: A/B with two decimals, or na.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "na" || b == "na" || b + 0 == 0) print "na"; else printf "%.2f", a / b }'
}
# cell VALUE ERRORS: the value, flagged when the run counted errors.
cell() {
    if [ "$2" != "0" ] && [ "$2" != "na" ]; then printf '%s (%s errors)' "$1" "$2"; else printf '%s' "$1"; fi
}
round() { awk -v v="$1" 'BEGIN { if (v == "na") print "na"; else printf "%.0f", v }'; }
fixed2() { awk -v v="$1" 'BEGIN { if (v == "na") print "na"; else printf "%.2f", v }'; }

# echo_rows CELLS: one table row per payload size x connection count; the
# function CELLS SIZE CONNS prints the row's cells after the first two.
echo_rows() {
    for size in $SIZES; do
        for conns in $CONNS; do
            printf '| %s | %s |' "$(size_label "$size")" "$conns"
            "$1" "$size" "$conns"
            echo
        done
    done
}
cpu_cells() {
    local s l g
    for s in $SERVERS; do
        l=${RES[$s,$1,$2]}
        printf ' %s |' "$(cell "$(fixed2 "$(field "$l" server_cpu_us_per_msg)")" "$(field "$l" errors)")"
    done
    g=$(field "${RES[gmws,$1,$2]:-}" server_cpu_us_per_msg)
    if [ "$has_tt" = 1 ]; then
        printf ' %s |' "$(ratio "$g" "$(field "${RES[tungstenite,$1,$2]}" server_cpu_us_per_msg)")"
    fi
    if [ "$has_fws" = 1 ]; then
        printf ' %s |' "$(ratio "$g" "$(field "${RES[fastwebsockets,$1,$2]}" server_cpu_us_per_msg)")"
    fi
    if [ "$has_base" = 1 ]; then
        printf ' %s |' "$(ratio "$g" "$(field "${RES[baseline,$1,$2]}" server_cpu_us_per_msg)")"
    fi
    if [ "$has_ttls" = 1 ]; then
        printf ' %s |' "$(ratio "$g" "$(field "${RES[tungstenite-tls,$1,$2]}" server_cpu_us_per_msg)")"
    fi
    if [ "$has_node" = 1 ]; then
        printf ' %s |' "$(ratio "$g" "$(field "${RES[node-ws-deflate,$1,$2]}" server_cpu_us_per_msg)")"
    fi
}
switch_cells() {
    local s
    for s in $SERVERS; do
        printf ' %s |' "$(field "${RES[$s,$1,$2]}" server_switches_per_msg)"
    done
}
throughput_cells() {
    local s l
    for s in $SERVERS; do
        l=${RES[$s,$1,$2]}
        printf ' %s | %s |' "$(cell "$(round "$(field "$l" msgs_per_s)")" "$(field "$l" errors)")" "$(round "$(field "$l" p99_us)")"
    done
}

DATE=$(date +%Y-%m-%d)
case "$WIRE" in
    plain) OVER=""; SUFFIX="" ;;
    tls) OVER=" over TLS"; SUFFIX="-tls" ;;
    deflate) OVER=" with permessage-deflate"; SUFFIX="-deflate" ;;
    *) OVER=" over TLS with permessage-deflate"; SUFFIX="-tls-deflate" ;;
esac
{
    echo "### Echo$OVER: server CPU per echoed message (µs, lower is better)"
    echo
    printf '| payload | conns |'
    for s in $SERVERS; do printf ' %s |' "${SERVER_NAME[$s]}"; done
    has_tt=0; has_fws=0
    [[ " $SERVERS " == *" gmws "* && " $SERVERS " == *" tungstenite "* ]] && has_tt=1
    [[ " $SERVERS " == *" gmws "* && " $SERVERS " == *" fastwebsockets "* ]] && has_fws=1
    has_base=0; has_ttls=0; has_node=0
    [[ " $SERVERS " == *" gmws "* && " $SERVERS " == *" baseline "* ]] && has_base=1
    [[ " $SERVERS " == *" gmws "* && " $SERVERS " == *" tungstenite-tls "* ]] && has_ttls=1
    [[ " $SERVERS " == *" gmws "* && " $SERVERS " == *" node-ws-deflate "* ]] && has_node=1
    [ $has_tt = 1 ] && printf ' gmws / tokio-tungstenite |'
    [ $has_fws = 1 ] && printf ' gmws / fastwebsockets |'
    [ $has_base = 1 ] && printf ' gmws / baseline |'
    [ $has_ttls = 1 ] && printf ' gmws / tokio-tungstenite (TLS) |'
    [ $has_node = 1 ] && printf ' gmws / ws (Node) |'
    echo
    printf '|---|---:|'
    for _ in $SERVERS; do printf -- '---:|'; done
    for h in $has_tt $has_fws $has_base $has_ttls $has_node; do
        [ "$h" = 1 ] && printf -- '---:|'
    done
    echo
    echo_rows cpu_cells
    echo
    echo "### Echo$OVER: server context switches per echoed message (sleeps in epoll_wait)"
    echo
    printf '| payload | conns |'
    for s in $SERVERS; do printf ' %s |' "${SERVER_NAME[$s]}"; done
    echo
    printf '|---|---:|'
    for _ in $SERVERS; do printf -- '---:|'; done
    echo
    echo_rows switch_cells
    echo
    echo "### Echo$OVER: throughput and round trip (msgs/s, p99 µs)"
    echo
    printf '| payload | conns |'
    for s in $SERVERS; do printf ' %s msgs/s | %s p99 µs |' "${SERVER_NAME[$s]}" "${SERVER_NAME[$s]}"; done
    echo
    printf '|---|---:|'
    for _ in $SERVERS; do printf -- '---:|---:|'; done
    echo
    echo_rows throughput_cells
    echo
    if [ "$IDLE_CONNS" -gt 0 ]; then
        echo "### Idle$OVER: server memory per connection ($IDLE_CONNS connections held ${IDLE_HOLD} s)"
        echo
        echo "| server | connections open | RSS before (KiB) | RSS after (KiB) | bytes per connection |"
        echo "|---|---:|---:|---:|---:|"
        for s in $SERVERS; do
            l=${RES[$s,idle]}
            printf '| %s | %s | %s | %s | %s |\n' "${SERVER_NAME[$s]}" \
                "$(cell "$(field "$l" held)" "$(field "$l" errors)")" "$(field "$l" rss_before_kib)" \
                "$(field "$l" rss_after_kib)" "$(field "$l" rss_bytes_per_conn)"
        done
        echo
    fi
    echo "Machine: $MACHINE. $DATE. Server pinned to CPU $SERVER_CPU, \`gmws load\` to CPU $LOAD_CPU (taskset);"
    echo "each cell a fresh server process; binary messages, one in flight per connection;"
    echo "warm-up ${WARMUP} s, measured ${DURATION} s. CPU per message = server utime+stime over the"
    echo "measured window / echoes in it; each cell the median of $ROUNDS round(s) by CPU per message."
    if [ "$TLS" = 1 ]; then
        echo "TLS: rustls in \`gmws load\` (ring, TLS 1.3 negotiated), a self-signed P-256 certificate checked"
        echo "with --tls-ca; each connection one full handshake before the measured window."
    fi
    if [ "$DEFLATE" = 1 ]; then
        echo "permessage-deflate: \`gmws load\` offers \`permessage-deflate; client_max_window_bits\` (Chrome's offer) and"
        echo "compresses every message (zlib level 6); the payload is pseudo-random (binary: incompressible),"
        echo "so this is compression's CPU cost without its bandwidth gain. ws (Node): no context takeover"
        echo "either way, threshold 0 (every message compressed)."
    fi
    echo "Reproduce: \`scripts/bench-matrix.sh${ARGS_GIVEN:+ $ARGS_GIVEN}\`."
} >/tmp/bench-matrix.$$.md

mkdir -p bench-results
OUT=bench-results/matrix-$DATE$SUFFIX.md
{
    echo "# gmws vs peers$OVER: echo matrix and idle memory ($DATE)"
    echo
    cat /tmp/bench-matrix.$$.md
    echo
    echo "<details><summary>Raw RESULT lines</summary>"
    echo
    echo '```'
    printf '%s\n' "${RAW[@]}"
    echo '```'
    echo
    echo "</details>"
} >"$OUT"
echo
cat /tmp/bench-matrix.$$.md
rm -f /tmp/bench-matrix.$$.md
log ""
log "written to $OUT"
