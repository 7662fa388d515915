#!/usr/bin/env bash
# Every row of the hot-paths table (issue 18) in one run, back to back: for each Latchkey
# build given, the client-credentials grant (HS256, RS256), the management API's client read
# with an API key, introspection, the code exchange and the refresh grant, on SQLite at 4
# connections and on PostgreSQL at 16; then node-oidc-provider's best configuration, and the
# RS256 signature's ceiling on this machine. Builds side by side in one session are what
# compare on a shared machine; absolute numbers move from session to session.
#
#   benches/hot-paths.sh                      # this checkout: target/release/latchkey and the
#                                             # grants bench (cargo bench); about 6 minutes
#                                             # once built
#   BUILDS="before=/tmp/latchkey-before,/tmp/grants-before after=target/release/latchkey,/tmp/grants-after" \
#     benches/hot-paths.sh                    # each build: its server binary and its grants
#                                             # bench binary (cargo bench --bench grants --no-run)
#   DURATION=8 PEER=0 DB_ROWS=sqlite benches/hot-paths.sh
#   SIGNING=/path/to/signing-bench-binary benches/hot-paths.sh   # the ceiling from a built bench
#
# Build the servers with `cargo build --release` after any `cargo bench`: a bench build puts its
# own target/release/latchkey in place, whose symbols carry other crate hashes (40 % of
# src/hot-text.order matched, and 24-27 MiB of RSS where the release build holds 18-21).
# `text-order.py --check` below says which one ran.
#
# Needs what load.sh, management.sh and the grants bench need, PostgreSQL for its rows
# (LATCHKEY_TEST_POSTGRES_URL), and for the peer node and npm (its npm ci is run once).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
BUILDS=${BUILDS:-"this=target/release/latchkey,"}
DB_ROWS=${DB_ROWS:-"sqlite postgres"}
PEER=${PEER:-1}
PEER_DIR=${PEER_DIR:-../shared/peers/oidc-provider}
export DURATION

connections_on() { [ "$1" = postgres ] && echo 16 || echo 4; }

# The grants bench of a build: its binary if given, else this checkout's through cargo.
grants() {
  local binary=$1
  if [ -n "$binary" ]; then "$binary"; else cargo bench --quiet --bench grants 2>/dev/null; fi
}

for build in $BUILDS; do
  name=${build%%=*}
  binaries=${build#*=}
  server=${binaries%%,*}
  grants_binary=${binaries#*,}
  echo "## $name: $server"
  # Laid out from a stale list, the server holds more of its code in memory (build.rs).
  python3 benches/text-order.py --check "$server" || true
  for db in $DB_ROWS; do
    conns=$(connections_on "$db")
    echo "### $name, $db, $conns connections"
    for alg in HS256 RS256; do
      DB=$db BIN=$server benches/load.sh "$alg" "$conns"
    done
    DB=$db BIN=$server CONNS=$conns ONLY='clients/.* API key$|introspect' benches/management.sh
    # Seeds enough single-use tokens for DURATION seconds at the rates seen so far.
    DB=$db ALG=HS256 CONNECTIONS=$conns SEED=$((DURATION * 20000)) ROWS=code,refresh grants "$grants_binary"
  done
done

if [ "$PEER" = 1 ]; then
  echo "## node-oidc-provider (2 workers, its best on two cores)"
  ( cd "$PEER_DIR" && { [ -d node_modules ] || npm ci --silent; } \
    && for alg in HS256 RS256; do DURATION=$DURATION ./bench.sh 2 "$alg" 4; done )
fi

echo "## the RS256 signature on this machine: on one core (two sign at most 2 / this), and with two cores signing at once (at most 1 / this)"
signing() { if [ -n "${SIGNING:-}" ]; then "$SIGNING" --bench "$@"; else cargo bench --quiet --bench signing -- "$@"; fi; }
signing --warm-up-time 1 --measurement-time 3 'sign_access_token/RS256/latchkey' 2>/dev/null \
  | grep -E '^sign_access_token/RS256/latchkey|time:'
