#!/usr/bin/env bash
# Build every fuzz target, replay fuzz/regressions/<target>/, then fuzz each
# target for SECONDS (default 30) on fuzz/corpus/<target>: a copy of the
# committed seeds plus whatever earlier local runs found (gitignored), with
# fuzz/dicts/<target>.dict as a libFuzzer dictionary when there is one.
# Exits non-zero if any target crashes; crashes land in fuzz/artifacts/<target>/.
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz if it is missing; works on stable Rust through
# RUSTC_BOOTSTRAP=1, which lets cargo-fuzz pass its -Z sanitizer flags.
set -euo pipefail

secs=${1:-30}
shift || true
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
PATH="$HOME/.cargo/bin:$PATH"

# A new machine has no cargo-fuzz: install the version this was written for.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz 0.13.2" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    cp seeds/"$t"/* "corpus/$t/"
    if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
        echo "== $t: replaying regressions/$t"
        if ! cargo fuzz run "$t" regressions/"$t"/*; then
            failed+=("$t (regression)")
            continue
        fi
    fi
    dict=()
    if [ -f "dicts/$t.dict" ]; then
        dict=(-dict="dicts/$t.dict")
    fi
    echo "== $t: fuzzing for ${secs}s"
    if ! cargo fuzz run "$t" "corpus/$t" -- "${dict[@]}" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz/run.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} targets, ${secs}s each, no crash"
