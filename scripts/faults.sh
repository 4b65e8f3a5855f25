#!/usr/bin/env bash
# The fault and abuse suite (README "Reliability", tests/faults.rs): the real
# gmws binary, release build, under slow consumers, 10k idle sockets, resets,
# half-open peers, SIGTERM restarts, fd exhaustion, connection storms, close
# hangs and JSON/HTTP abuse (tests/faults.rs), and issue 8's reproductions:
# broadcast bursts, pipelining without reading, idle keep-alive, send_to_all
# storms, half-close (tests/abuse.rs); each case with a canary client and a
# time bound.
#
#   scripts/faults.sh                 every case, one at a time (a few minutes)
#   scripts/faults.sh case03          only the cases whose name contains case03
#
# FAULTS_IDLE_CONNS (default 10000), FAULTS_IDLE_PING_INTERVAL (default 15) and
# FAULTS_RESETS (default 10000) tune cases 2 and 3. Case 6 needs prlimit
# (util-linux). Loopback only.
#
# The cases run the `gmws` binary of the cli/ package, which cargo does not
# build for the tests of the library package: it is built here first, and the
# tests find it beside their own executable (target/release/gmws; see
# gmws_bin in tests/faults_support/mod.rs; FAULTS_GMWS_BIN overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
cargo build --release -p gmws-cli -p gmws --bins --examples
cargo test --release --test faults --test abuse -- --ignored --test-threads=1 --nocapture "$@"
echo "fault suite: $(($(date +%s) - start)) s (build included)"
