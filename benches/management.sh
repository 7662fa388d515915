#!/usr/bin/env bash
# What authentication on the management API costs: wrk on loopback against a fresh
# Latchkey, comparing an authenticated read with unauthenticated endpoints, and the three
# credentials with each other, run after run in one session so the ratios hold on a shared
# machine. Every run is bounded in time.
#
#   benches/management.sh                 # 4 endpoints x 1 and 4 connections (about 2 minutes)
#   DB=postgres benches/management.sh     # PostgreSQL (server from LATCHKEY_TEST_POSTGRES_URL)
#   DURATION=10 WORKERS=2 benches/management.sh
#   CONNS=16 ONLY='API key|introspect' benches/management.sh   # some rows (an extended regex
#                                       # on "endpoint credential"), at some connection counts
#
# Rows:
#   /healthz                     no database, no key: the floor of the HTTP stack
#   /readyz                      one database round trip, no key
#   /api/v1/api-keys/current     the key's authentication alone (checksum, keyed hash, the
#                                key from the cache or one indexed query, rate-limit bucket)
#   /oauth2/introspect           an RS256 access token, by the client it was issued to
#                                (client_secret_basic): signature, revocation, the client;
#                                then an HS256 one, for an API that shares a secret (its API
#                                found by the token's kid, the secret unsealed, the proof)
#   /api/v1/clients/{id}         authentication plus a client read (from the client cache
#                                after the first), with an API key, with an
#                                access token Latchkey issued (RS256 signature, then one trip:
#                                revocation, client), and with a JWT the client signed (HS256
#                                with its sealed secret, then one trip: client)
#
# Needs: cargo build --release, wrk, curl, jq, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/latchkey}
PORT=${PORT:-18081}
HOST=127.0.0.1
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
WORKERS=${WORKERS:-2}
DB=${DB:-sqlite}
CONNS=${CONNS:-1 4}
ONLY=${ONLY:-}

command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release" >&2; exit 1; }

WORK=$(mktemp -d)
SERVER_PID=""
PG_DB=""
PG_SERVER=${LATCHKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  [ -n "$PG_DB" ] && psql "$PG_SERVER" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/report.lua" <<'LUA'
local key = os.getenv("API_KEY")
if key ~= nil and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
-- Introspection: a form POST with the client's Basic credentials.
local body = os.getenv("POST_BODY")
if body ~= nil and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_us=%.0f p99_us=%.0f errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
LUA

export LATCHKEY_MASTER_KEY LATCHKEY_DATABASE_URL LATCHKEY_BIND="$HOST:$PORT" LATCHKEY_WORKERS="$WORKERS" RUST_LOG=warn
# The limits are not what is measured here: make them unreachable.
export LATCHKEY_RATE_LIMIT_PER_HOUR=1000000000 LATCHKEY_RATE_LIMIT_BURST=1000000000
LATCHKEY_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
if [ "$DB" = postgres ]; then
  PG_DB="latchkey_bench_$$_$RANDOM"
  psql "$PG_SERVER" -qc "CREATE DATABASE $PG_DB" >/dev/null
  LATCHKEY_DATABASE_URL="${PG_SERVER%/*}/$PG_DB"
else
  LATCHKEY_DATABASE_URL="sqlite://$WORK/latchkey.db"
fi
"$BIN" api create --audience https://api.example.com --scope read >/dev/null
"$BIN" api create --audience https://shared.example.com --scope read --alg HS256 >/dev/null
CLIENT=$("$BIN" client create --name bench --grant-type client_credentials --scope read \
              --audience https://api.example.com --audience https://shared.example.com --json)
CLIENT_ID=$(jq -r .client_id <<<"$CLIENT")
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$(jq -r .client_secret <<<"$CLIENT")" | base64 -w0)
KEY=$("$BIN" api-key create --kind tenant-owner --name bench --json | jq -r .key)

"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do curl -sf "http://$HOST:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf -H "Authorization: Bearer $KEY" "http://$HOST:$PORT/api/v1/clients/$CLIENT_ID" >/dev/null \
  || { echo "the authenticated read fails; see $WORK/server.log" >&2; cat "$WORK/server.log" >&2; exit 1; }

# A client for the management API (registered once the server has made that API), reading
# clients: an access token by client credentials, and the guides' JWT signed with its secret.
MANAGEMENT="http://$HOST:$PORT/api/v1"
SIGNER=$("$BIN" client create --name signer --auth-method client_secret_jwt --grant-type client_credentials \
           --scope read --audience "$MANAGEMENT" --permission clients:read --json)
SIGNER_ID=$(jq -r .client_id <<<"$SIGNER")
SIGNER_SECRET=$(jq -r .client_secret <<<"$SIGNER")
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
sign() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$SIGNER_SECRET" -binary | b64; }
HEADER=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
NOW=$(date +%s)
JWT_CLAIMS=$(printf '{"iss":"%s","sub":"%s","aud":"%s","iat":%d,"exp":%d}' "$SIGNER_ID" "$SIGNER_ID" "$MANAGEMENT" "$NOW" $((NOW + 3600)) | b64)
CLIENT_JWT="$HEADER.$JWT_CLAIMS.$(sign "$HEADER.$JWT_CLAIMS")"
ASSERTION_CLAIMS=$(printf '{"iss":"%s","sub":"%s","aud":"%s","iat":%d,"exp":%d,"jti":"%s"}' \
  "$SIGNER_ID" "$SIGNER_ID" "http://$HOST:$PORT" "$NOW" $((NOW + 60)) "$(openssl rand -hex 16)" | b64)
ACCESS_TOKEN=$(curl -sf -d grant_type=client_credentials -d scope=read -d resource="$MANAGEMENT" \
  -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
  -d client_assertion="$HEADER.$ASSERTION_CLAIMS.$(sign "$HEADER.$ASSERTION_CLAIMS")" \
  "http://$HOST:$PORT/oauth2/token" | jq -r .access_token)
# An RS256 access token for the API, introspected by the client it was issued to.
API_TOKEN=$(curl -sf -H "Authorization: Basic $BASIC" -d grant_type=client_credentials -d scope=read \
  "http://$HOST:$PORT/oauth2/token" | jq -r .access_token)
# And an HS256 one, for an API that shares a secret.
SHARED_TOKEN=$(curl -sf -H "Authorization: Basic $BASIC" -d grant_type=client_credentials -d scope=read \
  -d resource=https://shared.example.com "http://$HOST:$PORT/oauth2/token" | jq -r .access_token)
for token in "$API_TOKEN" "$SHARED_TOKEN"; do
  curl -sf -H "Authorization: Basic $BASIC" -d "token=$token" "http://$HOST:$PORT/oauth2/introspect" \
    | jq -e .active >/dev/null || { echo "introspection fails; see $WORK/server.log" >&2; exit 1; }
done
for credential in "$ACCESS_TOKEN" "$CLIENT_JWT"; do
  curl -sf -H "Authorization: Bearer $credential" "http://$HOST:$PORT/api/v1/clients/$CLIENT_ID" >/dev/null \
    || { echo "the read with a token fails; see $WORK/server.log" >&2; cat "$WORK/server.log" >&2; exit 1; }
done

# The server's CPU (cores, over the measured run) and resident memory (MiB, after it).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
rss_mib() { ps -o rss= -p "$SERVER_PID" | awk '{printf "%.1f", $1 / 1024}'; }

run() {
  local path=$1 conns=$2 key=$3 credential=$4 body=${5:-}
  [ -z "$ONLY" ] || grep -Eq "$ONLY" <<<"$path $credential" || return 0
  local url="http://$HOST:$PORT$path"
  API_KEY=$key POST_BODY=$body BASIC=$BASIC timeout $((WARMUP + 10)) \
    wrk -t1 -c"$conns" -d"${WARMUP}s" -s "$WORK/report.lua" "$url" >/dev/null
  local t0 t1; t0=$(cpu_ticks)
  local out; out=$(API_KEY=$key POST_BODY=$body BASIC=$BASIC timeout $((DURATION + 15)) \
    wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$WORK/report.lua" "$url")
  t1=$(cpu_ticks)
  local rps p50_us p99_us errors non2xx
  eval "$(grep '^RESULT' <<<"$out" | sed 's/^RESULT //' | tr ' ' '\n')"
  printf '| %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s |\n' \
    "$(date -u +%F)" "$DB" "${path/$CLIENT_ID/{id\}}" "$credential" "$conns" "$rps" "$p50_us" "$p99_us" \
    "$(awk "BEGIN{printf \"%.2f\", ($t1 - $t0) / $(getconf CLK_TCK) / $DURATION}")" "$(rss_mib)" "$((errors + non2xx))"
}

echo "| date | db | endpoint | credential | conns | req/s | p50 µs | p99 µs | server CPU | RSS MiB | errors |"
echo "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
for conns in $CONNS; do
  run /healthz "$conns" "" none
  run /readyz "$conns" "" none
  run /api/v1/api-keys/current "$conns" "$KEY" "API key"
  run "/api/v1/clients/$CLIENT_ID" "$conns" "$KEY" "API key"
  run "/api/v1/clients/$CLIENT_ID" "$conns" "$ACCESS_TOKEN" "access token (RS256)"
  run "/api/v1/clients/$CLIENT_ID" "$conns" "$CLIENT_JWT" "client JWT (HS256)"
  run /oauth2/introspect "$conns" "" "client secret; RS256 token introspected" "token=$API_TOKEN"
  run /oauth2/introspect "$conns" "" "client secret; HS256 token introspected" "token=$SHARED_TOKEN"
done
