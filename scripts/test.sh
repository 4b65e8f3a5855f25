#!/usr/bin/env bash
# The whole test suite, as CI runs it (README: "Run the tests").
#
#   scripts/test.sh          lint, unit + integration tests, Autobahn, fault suite,
#                            JavaScript client, fuzz smoke
#   scripts/test.sh --quick  lint, unit + integration tests only
#
# Installs what it needs itself: redis-server (Debian's apt, for the Redis
# client's tests), cargo-fuzz (crates.io), Autobahn's wstest
# (scripts/wstest-install.sh: Python 2.7 from pyenv or Debian, packages from PyPI),
# and for the JavaScript client Debian's chromium and npm packages
# (scripts/js-test.sh; Node.js 20.10+ must be there).
# Needs nothing outside this repository.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "docs"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --quiet

step "redis-server (Debian's, for tests/cluster_redis.rs)"
if ! command -v redis-server >/dev/null; then
    sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
    $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq redis-server >/dev/null
fi

step "tests"
cargo test --workspace

[ "${1:-}" = "--quick" ] && exit 0

step "conformance: Autobahn|Testsuite 1.*-10.* and a subset of 12.*/13.* (compression)"
bash scripts/autobahn.sh

step "fault suite (tests/faults.rs, release build)"
bash scripts/faults.sh

step "JavaScript client (clients/js) in headless Chromium and Node"
bash scripts/js-test.sh

step "fuzz smoke (${FUZZ_SECONDS:-15} s per target)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
bash fuzz/run.sh "${FUZZ_SECONDS:-15}"

step "all passed"
