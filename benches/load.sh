#!/usr/bin/env bash
# Drives a fresh Latchkey with wrk on loopback: the client_credentials grant, JWT access
# tokens. Same shape as the peer's bench.sh (../shared/peers/oidc-provider), so the rows
# compare side by side. Every run is bounded in time; load goes to 127.0.0.1 only.
#
#   benches/load.sh                     # default matrix (about 2 minutes)
#   benches/load.sh RS256 4             # one run: ALG CONNECTIONS
#   DB=postgres benches/load.sh         # PostgreSQL (server from LATCHKEY_TEST_POSTGRES_URL)
#   DB=postgres INSTANCES=2 benches/load.sh RS256 8   # two servers on one database, one wrk
#                                       # each with half the connections; req/s is the sum
#   DURATION=20 WARMUP=3 WRK_THREADS=1 WORKERS=2 benches/load.sh
#
# Needs: cargo build --release, wrk (apt-get install -y wrk), curl, jq, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/latchkey}
PORT=${PORT:-18080}
HOST=127.0.0.1
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
WRK_THREADS=${WRK_THREADS:-1}
WORKERS=${WORKERS:-2}
DB=${DB:-sqlite}
INSTANCES=${INSTANCES:-1}
url_of() { echo "http://${HOST}:$((PORT + $1))/oauth2/token"; }
URL=$(url_of 0)

command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release" >&2; exit 1; }

WORK=$(mktemp -d)
LUA="$WORK/token.lua"
SERVER_PIDS=()
PG_DB=""
stop_servers() {
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  SERVER_PIDS=()
}
cleanup() {
  stop_servers
  [ -n "$PG_DB" ] && psql "$PG_SERVER" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$LUA" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC_AUTH")
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
LUA

# Token requests the servers themselves took 0.4 s or more to answer, summed over every
# instance, from their /metrics latency histograms (0.4096 is a bucket bound there).
slow_requests() {
  local i total=0 n
  for i in $(seq 0 $((INSTANCES - 1))); do
    n=$(curl -sf "http://${HOST}:$((PORT + i))/metrics" | awk '
      /^latchkey_http_request_duration_seconds_(count|bucket)\{/ && /route="\/oauth2\/token"/ {
        if ($1 ~ /_count\{/) all += $2; else if ($1 ~ /le="0.4096"/) fast += $2 }
      END { print all - fast }')
    total=$((total + n))
  done
  echo "$total"
}

# Summed over every instance.
cpu_ticks() { local pid total=0; for pid in "${SERVER_PIDS[@]}"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$total"; }
rss_kib() { ps -o rss= -p "$(IFS=,; echo "${SERVER_PIDS[*]}")" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

# wrk against every instance at once, CONNS split between them; one RESULT line each.
drive() {
  local seconds=$1 conns=$2 flags=$3 i pids=()
  for i in $(seq 0 $((INSTANCES - 1))); do
    timeout $((seconds + 15)) wrk -t"$WRK_THREADS" -c$((conns / INSTANCES)) -d"${seconds}s" $flags -s "$LUA" "$(url_of "$i")" &
    pids+=($!)
  done
  wait "${pids[@]}"
}

one_run() {
  local alg=$1 conns=$2
  export LATCHKEY_MASTER_KEY LATCHKEY_DATABASE_URL LATCHKEY_BIND="$HOST:$PORT" LATCHKEY_WORKERS="$WORKERS" RUST_LOG=warn
  # One client sends every request: its rate limit is not what is measured.
  export LATCHKEY_RATE_LIMIT_PER_HOUR=1000000000 LATCHKEY_RATE_LIMIT_BURST=1000000000
  LATCHKEY_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
  if [ "$DB" = postgres ]; then
    PG_SERVER=${LATCHKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    PG_DB="latchkey_bench_$$_$RANDOM"
    psql "$PG_SERVER" -qc "CREATE DATABASE $PG_DB" >/dev/null
    LATCHKEY_DATABASE_URL="${PG_SERVER%/*}/$PG_DB"
  else
    LATCHKEY_DATABASE_URL="sqlite://$WORK/latchkey-$alg-$conns.db"
  fi
  "$BIN" api create --audience https://api.example.com --scope read write --alg "$alg" >/dev/null
  local client
  client=$("$BIN" client create --name bench --grant-type client_credentials --scope read write \
             --audience https://api.example.com --json)
  export BASIC_AUTH
  BASIC_AUTH=$(printf '%s:%s' "$(jq -r .client_id <<<"$client")" "$(jq -r .client_secret <<<"$client")" | base64 -w0)

  local i
  for i in $(seq 0 $((INSTANCES - 1))); do
    LATCHKEY_BIND="$HOST:$((PORT + i))" LATCHKEY_ISSUER="http://$HOST:$PORT" "$BIN" serve >"$WORK/server-$i.log" 2>&1 &
    SERVER_PIDS+=($!)
  done
  for i in $(seq 0 $((INSTANCES - 1))); do
    for _ in $(seq 1 50); do curl -sf "http://$HOST:$((PORT + i))/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  done
  local token
  token=$(curl -sf -H "Authorization: Basic $BASIC_AUTH" -d 'grant_type=client_credentials&scope=read' "$URL" | jq -r .access_token)
  echo "# alg=$alg conns=$conns db=$DB instances=$INSTANCES token header: $(cut -d. -f1 <<<"$token" | tr '_-' '/+' | base64 -d 2>/dev/null)" >&2
  # With autogroups on, the servers and wrk (this session) and PostgreSQL (its own session)
  # are scheduled as separate groups; see docs/benchmarks.md for what that did to latency.
  echo "# kernel.sched_autogroup_enabled=$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo n/a)" >&2

  local idle_rss; idle_rss=$(rss_kib)
  drive "$WARMUP" "$conns" "" >/dev/null
  ( while :; do rss_kib; sleep 0.5; done ) >"$WORK/rss.txt" 2>/dev/null &
  local sampler=$! t0 t1 tick slow0 slow1; tick=$(getconf CLK_TCK)
  slow0=$(slow_requests)
  t0=$(cpu_ticks)
  local out; out=$(drive "$DURATION" "$conns" --latency)
  t1=$(cpu_ticks)
  slow1=$(slow_requests)
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  local peak; peak=$(sort -n "$WORK/rss.txt" | tail -1)
  # Requests and errors add up; with several instances each latency is the worse instance's.
  local rps p50_ms p99_ms max_ms errors non2xx
  eval "$(grep '^RESULT' <<<"$out" | sed 's/^RESULT //' | awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = (kv[1] ~ /^(rps|errors|non2xx)$/) ? v[kv[1]] + kv[2] : (kv[2] > v[kv[1]] ? kv[2] : v[kv[1]]) } }
    END { for (k in v) print k "=" v[k] }')"
  printf '| %s | latchkey | %s%s | %s | %s | -t%s | %s | %.0f | %.2f | %.2f | %.2f | %s | %s | %.1f | %.1f | %s |\n' \
    "$(date -u +%F)" "$DB" "$([ "$INSTANCES" -gt 1 ] && echo " ×$INSTANCES")" "$WORKERS" "$alg" "$WRK_THREADS" "$conns" "$rps" \
    "$p50_ms" "$p99_ms" "$max_ms" "$((slow1 - slow0))" \
    "$(python3 -c "print(f'{($t1-$t0)/$tick/$DURATION:.2f}')")" \
    "$(awk "BEGIN{print $idle_rss/1024}")" "$(awk "BEGIN{print $peak/1024}")" "$((errors + non2xx))"

  stop_servers
  if [ -n "$PG_DB" ]; then psql "$PG_SERVER" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null; PG_DB=""; fi
  sleep 1
}

echo "| date | server | db | workers | alg | wrk | conns | req/s | p50 ms | p99 ms | max ms | ≥0.4 s in server | server CPU | RSS idle MiB | RSS peak MiB | errors |"
echo "|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
if [ $# -ge 2 ]; then
  one_run "$1" "$2"
else
  one_run RS256 4
  one_run RS256 64
  one_run HS256 4
  one_run ES256 4
fi
