#!/usr/bin/env bash
# How long `latchkey serve` takes from exec until /readyz answers, on a database it has
# served before (no first signing key to generate): what a restart or a rolling deploy
# waits for. Each start is bounded (10 s) and the server is stopped after it.
#
#   benches/startup.sh                        # 10 starts of target/release/latchkey
#   RUNS=20 BIN=/tmp/other-build benches/startup.sh
#
# Needs: cargo build --release, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/latchkey}
RUNS=${RUNS:-10}
PORT=${PORT:-18082}
[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export LATCHKEY_DATABASE_URL="sqlite://$WORK/latchkey.db" LATCHKEY_BIND="127.0.0.1:$PORT" RUST_LOG=warn
LATCHKEY_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export LATCHKEY_MASTER_KEY

# One start until ready, in milliseconds; the server is stopped before the next.
start_once() {
  local begin pid
  begin=$(date +%s%N)
  "$BIN" serve >"$WORK/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1000); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.01
  done
  echo $(( ($(date +%s%N) - begin) / 1000000 ))
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

start_once >/dev/null # the first start makes the database and the first signing key
times=()
for _ in $(seq 1 "$RUNS"); do times+=("$(start_once)"); done
python3 - "${times[@]}" <<'PY'
import statistics, sys
ms = sorted(int(t) for t in sys.argv[1:])
print(f"starts={len(ms)} median_ms={statistics.median(ms):.0f} min_ms={ms[0]} max_ms={ms[-1]}")
PY
