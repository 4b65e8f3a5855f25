#!/usr/bin/env bash
# The JavaScript client (clients/js: gmws.js) against the real gmws binary, in
# headless Chromium and in Node: bind/join/send, a server restart (SIGTERM, a
# new process on the same port), auth failures (static token, getToken), a
# half-open connection, the demo page; plus the TypeScript declarations.
#
#   scripts/js-test.sh                every case (about 25 s once installed)
#   scripts/js-test.sh --only node    only the cases whose name contains "node"
#
# Installs what it needs: Debian's chromium (apt-get, when /usr/bin/chromium
# or $CHROMIUM is missing) and the npm dev dependencies of clients/js
# (playwright-core, to drive Chromium; typescript, to check gmws.d.ts) with
# `npm ci` from the committed package-lock.json. Needs Node.js 20.10+ and npm
# (on Node 20, WebSocket is behind --experimental-websocket, given here).
# Servers listen on free loopback ports; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n--> %s\n' "$*"; }
start=$(date +%s)

step "gmws binary (release)"
cargo build --release -p gmws-cli --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
GMWS_BIN="$target_dir/release/gmws"

step "Node.js"
command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "js-test: needs node (20.10+) and npm on PATH" >&2; exit 1; }
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
         if (a < 20 || (a === 20 && b < 10)) { console.error("js-test: Node " + process.version + " has no WebSocket; needs 20.10+"); process.exit(1); }'
NODE_FLAGS=()
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)'; then
    NODE_FLAGS=(--experimental-websocket) # Node 20/21: built in, behind a flag
fi
echo "node $(node --version) ${NODE_FLAGS[*]:-}"

step "Chromium"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 chromium >/dev/null
fi
"$CHROMIUM" --version

step "npm ci (clients/js)"
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error)

step "gmws.d.ts (tsc)"
(cd clients/js && npx --no-install tsc -p test)

step "tests"
timeout 300 node "${NODE_FLAGS[@]}" clients/js/test/run.mjs --gmws "$GMWS_BIN" --chromium "$CHROMIUM" "$@"
echo "js tests: $(($(date +%s) - start)) s (build and installs included)"
