#!/usr/bin/env bash
# Conformance: Autobahn|Testsuite (wstest -m fuzzingclient) against examples/echo.rs.
#
#   scripts/autobahn.sh            run cases 1.*-10.*, compare with autobahn/expected.txt
#   scripts/autobahn.sh --update   run and rewrite autobahn/expected.txt
#
# Needs nothing outside this repository: scripts/wstest-install.sh installs
# wstest (Python 2.7) under ~/.cache on first use. Cases 12.* and 13.*
# (permessage-deflate) are excluded: compression is not negotiated yet.
# Strict: every case must be OK or INFORMATIONAL (no FAILED, NON-STRICT,
# UNCLEAN, WRONG CODE), and every outcome must equal the committed one.
# The report lands in autobahn-out/ (open index.html).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/autobahn-out
port=${AUTOBAHN_PORT:-19001}
cases=${AUTOBAHN_CASES:-'["*"]'}
exclude=${AUTOBAHN_EXCLUDE:-'["12.*","13.*"]'}

wstest=$(bash scripts/wstest-install.sh)
cargo build --release --example echo
mkdir -p "$out"
rm -f "$out/index.json"
"${CARGO_TARGET_DIR:-target}/release/examples/echo" "127.0.0.1:$port" 2> "$out/echo.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
kill -0 $pid || { echo "autobahn: the echo example did not start (see $out/echo.log)" >&2; exit 1; }

cat > "$out/spec.json" <<JSON
{
  "options": {"failByDrop": false},
  "outdir": "$out",
  "servers": [{"agent": "gmws", "url": "ws://127.0.0.1:$port"}],
  "cases": $cases,
  "exclude-cases": $exclude,
  "exclude-agent-cases": {}
}
JSON
start=$(date +%s)
if ! timeout "${AUTOBAHN_TIMEOUT:-1800}" "$wstest" -m fuzzingclient -s "$out/spec.json" > "$out/wstest.log" 2>&1; then
  tail -n 20 "$out/wstest.log" >&2
  echo "autobahn: wstest failed or timed out (log: $out/wstest.log)" >&2
  exit 1
fi
echo "autobahn: wstest ran in $(( $(date +%s) - start )) s"

# One line per case: id, behavior, behaviorClose; then the strict check.
python3 - "$out/index.json" "$out/outcomes.txt" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
lines, bad = [], []
for agent, cases in report.items():
    for case in sorted(cases, key=lambda c: tuple(int(p) for p in c.split("."))):
        r = cases[case]
        lines.append("%s %s %s" % (case, r["behavior"], r["behaviorClose"]))
        if r["behavior"] not in ("OK", "INFORMATIONAL") or r["behaviorClose"] not in ("OK", "INFORMATIONAL"):
            bad.append(lines[-1])
if not lines:
    sys.exit("autobahn: the report holds no case (did wstest reach the server?)")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
counts = {}
for line in lines:
    counts[line.split()[1]] = counts.get(line.split()[1], 0) + 1
print("autobahn: %d cases: %s" % (len(lines), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
if bad:
    print("autobahn: not strictly OK:\n  " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
PY

if [ "${1:-}" = "--update" ]; then
  cp "$out/outcomes.txt" autobahn/expected.txt
  echo "autobahn: wrote autobahn/expected.txt"
elif ! diff -u autobahn/expected.txt "$out/outcomes.txt"; then
  echo "autobahn: outcomes differ from autobahn/expected.txt (see the diff above)" >&2
  exit 1
fi
echo "autobahn: all cases as expected"
