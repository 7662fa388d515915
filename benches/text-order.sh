#!/usr/bin/env bash
# Writes src/hot-text.order: the functions a release server runs when it starts and serves
# the hot paths, which the release link then lays out together (build.rs). The kernel maps
# a binary's code 64 KiB around each page it runs, so code that runs scattered over the
# file keeps most of it resident; laid out together, far fewer pages are (docs/benchmarks.md,
# "Issue 18, seventh part").
#
#   cargo build --release && sudo benches/text-order.sh       # about 2 minutes
#   BIN=/path/to/latchkey OUT=/tmp/order benches/text-order.sh
#
# How: a copy of the binary on disk is dropped from the page cache and the disk's read-ahead
# is turned off (put back on exit), so that only the pages the server touches come back into
# the cache; then load.sh and management.sh run it, on SQLite and (when
# LATCHKEY_TEST_POSTGRES_URL is set) on PostgreSQL, and benches/text-order.py reads which
# pages are cached (mincore) and names the functions on them. Needs root, and what load.sh
# and management.sh need. Run it again when the functions that run change much: names it
# lists that a later build lacks are skipped, and new functions are laid out after the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/latchkey}
OUT=${OUT:-src/hot-text.order}
DURATION=${DURATION:-2}
[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root: it drops a file from the page cache and sets a disk's read-ahead" >&2; exit 1; }

# On a disk: tmpfs holds every page in memory whether it ran or not.
WORK=$(mktemp -d /var/tmp/latchkey-text-order.XXXXXX)
source=$(findmnt -no SOURCE --target "$WORK")
disk=$(lsblk -no PKNAME "$source" 2>/dev/null | head -1)
disk=${disk:-$(basename "$source")}
READ_AHEAD=/sys/block/$disk/queue/read_ahead_kb
[ -w "$READ_AHEAD" ] || { echo "$WORK is not on a disk with $READ_AHEAD" >&2; rm -rf "$WORK"; exit 1; }
saved_read_ahead=$(cat "$READ_AHEAD")
trap 'echo "$saved_read_ahead" > "$READ_AHEAD"; rm -rf "$WORK"' EXIT

cp "$BIN" "$WORK/latchkey"
sync "$WORK/latchkey"
echo 0 > "$READ_AHEAD"
python3 -c 'import os, sys; os.posix_fadvise(os.open(sys.argv[1], os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)' "$WORK/latchkey"

databases=sqlite
[ -n "${LATCHKEY_TEST_POSTGRES_URL:-}" ] && databases="sqlite postgres"
for db in $databases; do
  for alg in HS256 RS256; do
    DB=$db BIN="$WORK/latchkey" DURATION=$DURATION WARMUP=1 benches/load.sh "$alg" 4 >/dev/null
  done
  DB=$db BIN="$WORK/latchkey" DURATION=$DURATION WARMUP=1 CONNS=4 benches/management.sh >/dev/null
done

python3 benches/text-order.py "$WORK/latchkey" > "$OUT"
echo "wrote $OUT" >&2
