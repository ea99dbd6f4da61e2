#!/usr/bin/env bash
# Token-service benchmark: release build of Portcullis (SQLite) beside a real
# docker-registry, load generated with wrk. Regenerates BENCHMARKS.md completely.
#
#   scripts/bench.sh
#
# Needs docker-registry, skopeo, umoci (scripts/test.sh installs them), wrk, curl, jq.
# Measures, with `wrk -t2 -c64 -d10s --latency` after a 2 s warm-up:
#   (a) GET /v2/token, Basic alice:password (verified password cached)
#   (b) GET /v2/token, Basic alice:<application token>
#   (c) GET /v2/token, anonymous, pull on a public repository
#   (d) GET /v2/token, Basic alice:password, credential cache disabled (argon2 every
#       time; a second instance with credential_cache_seconds=0), 8 connections
#   (e) the registry's own GET /v2/<ns>/app/manifests/<tag> with a Bearer token and the
#       OCI Accept header (GET, not HEAD: wrk 4.1 cannot measure HEAD, see below)
# plus the resident memory of the main instance from /proc/PID/status, and the idle
# memory after password logins: a fresh instance with the credential cache off takes
# 20 logins (4 at once, each an argon2 check), then VmRSS is sampled every 250 ms for 3 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

for tool in docker-registry skopeo umoci wrk ab curl jq; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: $tool is not installed (scripts/test.sh installs docker-registry, skopeo and umoci; apt-get install wrk apache2-utils curl jq)" >&2
    exit 1
  fi
done

# The caller's own configuration must not leak in.
for v in $(compgen -e); do
  case $v in PORTCULLIS_* | PORTUS_* | REGISTRY_*) unset "$v" ;; esac
done

DURATION=${BENCH_DURATION:-10s}
THREADS=2
CONNS=64
CONNS_UNCACHED=8

echo "== building (release)"
cargo build --release -p portcullis
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
BIN=$TARGET_DIR/release/portcullis

W=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench.XXXXXX")
PIDS=()
cleanup() {
  local status=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo "benchmark failed; logs kept in $W" >&2
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT

ADMIN_PW=admin-password-1
ALICE_PW=alice-password-1
NS=bench
TAG=v1

# Common environment of both Portcullis instances (they share database and keys).
export PORTCULLIS_DATA_DIR=$W/data
export PORTCULLIS_DATABASE_URL=sqlite:$W/data/portcullis.db
export PORTCULLIS_MACHINE_FQDN_VALUE=portcullis.bench
export PORTCULLIS_NOTIFICATIONS_SECRET=bench-notification-secret
export PORTCULLIS_SECURITY_POLICY_PASSWORD_CHECKS_PER_MINUTE=0
export PORTCULLIS_REGISTRY_JWT_EXPIRATION_TIME_VALUE=120
export PORTCULLIS_LOG=warn
mkdir -p "$W/data"

# start_portcullis NAME [VAR=VALUE...]: starts `portcullis serve` on a free port,
# sets PID_<NAME> and URL_<NAME> once it printed its `listening on` line.
start_portcullis() {
  local name=$1
  shift
  local out=$W/$name.stdout
  (cd "$W" && exec env PORTCULLIS_SERVER_LISTEN=127.0.0.1:0 "$@" "$BIN" serve >"$out" 2>"$W/$name.log") &
  local pid=$!
  PIDS+=("$pid")
  local i
  for i in $(seq 1 600); do
    if grep -q '^listening on ' "$out" 2>/dev/null; then
      printf -v "PID_$name" %s "$pid"
      printf -v "URL_$name" %s "http://$(sed -n 's/^listening on //p' "$out")"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "error: portcullis ($name) did not start:" >&2
  cat "$W/$name.log" >&2
  exit 1
}

# A kernel-chosen free port: the Go registry cannot inherit a socket, so bind port 0,
# note the port, release it and let the registry bind it.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mem_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

echo "== starting portcullis"
start_portcullis main
sleep 1 # let the runtime settle before reading its idle memory
IDLE_RSS_KB=$(mem_kb "$PID_main" VmRSS)

echo "== starting docker-registry"
RPORT=$(free_port)
REG=127.0.0.1:$RPORT
mkdir -p "$W/registry"
"$BIN" registry-config --registry "$REG" --listen "$REG" --storage-dir "$W/registry/data" \
  --portcullis-url "$URL_main" >"$W/registry/config.yml"
docker-registry serve "$W/registry/config.yml" >"$W/registry.log" 2>&1 &
PID_registry=$!
PIDS+=("$PID_registry")
for i in $(seq 1 200); do
  curl -s -o /dev/null "http://$REG/v2/" && break
  kill -0 "$PID_registry" 2>/dev/null || { cat "$W/registry.log" >&2; exit 1; }
  [ "$i" -lt 200 ] || { echo "error: registry did not answer within 10 s" >&2; exit 1; }
  sleep 0.05
done

echo "== seeding through the API"
api() { # METHOD PATH AUTH-CURL-ARGS... BODY: prints the JSON answer, fails on HTTP errors
  local method=$1 path=$2 body=${*: -1}
  local auth=("${@:3:$#-3}")
  curl -sS --fail-with-body -X "$method" "$URL_main/api/v1$path" -H 'Content-Type: application/json' "${auth[@]}" -d "$body"
}
ADMIN_TOKEN=$(api POST /users/bootstrap \
  "{\"user\":{\"username\":\"admin\",\"email\":\"admin@example.test\",\"password\":\"$ADMIN_PW\"}}" | jq -r .plain_token)
api POST /registries -H "Authorization: Bearer $ADMIN_TOKEN" \
  "{\"registry\":{\"name\":\"bench\",\"hostname\":\"$REG\",\"use_ssl\":false}}" >/dev/null
ALICE_ID=$(api POST /users -H "Authorization: Bearer $ADMIN_TOKEN" \
  "{\"user\":{\"username\":\"alice\",\"email\":\"alice@example.test\",\"password\":\"$ALICE_PW\"}}" | jq -r .id)
APP_TOKEN=$(api POST "/users/$ALICE_ID/application_tokens" -u "alice:$ALICE_PW" \
  '{"application":"bench","pull_only":false}' | jq -r .plain_token)
api POST /teams -u "alice:$ALICE_PW" '{"name":"bench","description":"benchmark"}' >/dev/null
NS_ID=$(api POST /namespaces -u "alice:$ALICE_PW" "{\"name\":\"$NS\",\"team\":\"bench\"}" | jq -r .id)
api PUT "/namespaces/$NS_ID" -u "alice:$ALICE_PW" '{"namespace":{"visibility":"public"}}' >/dev/null

echo "== pushing an image"
mkdir -p "$W/skopeo/home" "$W/skopeo/tmp"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$W/skopeo/policy.json"
echo '{"auths":{}}' >"$W/skopeo/auth.json"
echo 'unqualified-search-registries = []' >"$W/skopeo/registries.conf"
echo "portcullis benchmark image $(date +%s%N)" >"$W/payload.txt"
umoci init --layout "$W/oci"
umoci new --image "$W/oci:base"
umoci insert --image "$W/oci:base" --tag "$TAG" "$W/payload.txt" /payload.txt
HOME=$W/skopeo/home REGISTRY_AUTH_FILE=$W/skopeo/auth.json CONTAINERS_REGISTRIES_CONF=$W/skopeo/registries.conf \
  skopeo --policy "$W/skopeo/policy.json" --tmpdir "$W/skopeo/tmp" copy --dest-tls-verify=false \
  --dest-creds "alice:$ALICE_PW" "oci:$W/oci:$TAG" "docker://$REG/$NS/app:$TAG"

SCOPE=repository:$NS/app:pull
TOKEN_PATH="/v2/token?service=$REG&scope=$SCOPE"
BASIC_PW="Authorization: Basic $(printf 'alice:%s' "$ALICE_PW" | base64 -w0)"
BASIC_APP="Authorization: Basic $(printf 'alice:%s' "$APP_TOKEN" | base64 -w0)"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'
REG_TOKEN=$(curl -sS --fail -H "$BASIC_PW" "$URL_main$TOKEN_PATH" | jq -r .token)
MANIFEST_URL=http://$REG/v2/$NS/app/manifests/$TAG

# Each measured request must succeed; check one by hand first.
check() { # NAME EXPECTED-STATUS CURL-ARGS...
  local name=$1 want=$2
  shift 2
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' "$@")
  [ "$got" = "$want" ] || { echo "error: ($name) answered $got, expected $want" >&2; exit 1; }
}
check a 200 -H "$BASIC_PW" "$URL_main$TOKEN_PATH"
check b 200 -H "$BASIC_APP" "$URL_main$TOKEN_PATH"
check c 200 "$URL_main$TOKEN_PATH"
check e 200 -I -H "Authorization: Bearer $REG_TOKEN" -H "$ACCEPT" "$MANIFEST_URL"
check e-get 200 -H "Authorization: Bearer $REG_TOKEN" -H "$ACCEPT" "$MANIFEST_URL"
CLAIMS=$(curl -sS "$URL_main$TOKEN_PATH" | jq -r .token | cut -d. -f2 | tr '_-' '/+')
while [ $((${#CLAIMS} % 4)) -ne 0 ]; do CLAIMS="$CLAIMS="; done
ANON_ACTIONS=$(base64 -d <<<"$CLAIMS" | jq -r '[.access[]?.actions[]?] | join(",")')
[ "$ANON_ACTIONS" = pull ] || { echo "error: (c) the anonymous token grants [$ANON_ACTIONS], expected pull" >&2; exit 1; }

# to_ms VALUE-WITH-UNIT: wrk latency (us/ms/s) in milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
    printf "%.2f", n }'
}

# bench KEY CONNECTIONS URL WRK-ARGS...: warm-up, then the measured run; sets
# RPS_KEY, P50_KEY, P99_KEY, ERR_KEY (non-2xx/3xx responses + socket errors).
bench() {
  local key=$1 conns=$2 url=$3
  shift 3
  echo "== ($key) $url, $conns connections"
  wrk -t"$THREADS" -c"$conns" -d2s "$@" "$url" >/dev/null
  local out
  out=$(wrk -t"$THREADS" -c"$conns" -d"$DURATION" --latency "$@" "$url")
  echo "$out" >"$W/wrk-$key.txt"
  echo "$out"
  local rps p50 p99 non2xx sockerr
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  sockerr=$(awk '/Socket errors:/ {s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s}' <<<"$out")
  printf -v "RPS_$key" %s "$rps"
  printf -v "P50_$key" %s "$p50"
  printf -v "P99_$key" %s "$p99"
  printf -v "ERR_$key" %s "$((${non2xx:-0} + ${sockerr:-0}))"
}

# Idle memory after password checks: argon2 needs 19 MiB per check, which must go back
# to the OS once the logins stop. A fresh instance (sharing the database) with the
# credential cache off, so that each login is a full password check.
LOGINS=20
LOGINS_PARALLEL=4
echo "== idle memory after $LOGINS password logins ($LOGINS_PARALLEL at once)"
start_portcullis logins PORTCULLIS_SECURITY_POLICY_CREDENTIAL_CACHE_SECONDS=0
sleep 1
LOGINS_IDLE_KB=$(mem_kb "$PID_logins" VmRSS)
LOGINS_T0=$(date +%s%N)
LOGINS_CODES=$(seq 1 "$LOGINS" | xargs -P "$LOGINS_PARALLEL" -I{} \
  curl -s -o /dev/null -w '%{http_code}\n' -H "$BASIC_PW" "$URL_logins$TOKEN_PATH")
LOGINS_T1=$(date +%s%N)
LOGINS_OK=$(grep -c '^200$' <<<"$LOGINS_CODES" || true)
[ "$LOGINS_OK" = "$LOGINS" ] || { echo "error: only $LOGINS_OK of $LOGINS logins answered 200" >&2; exit 1; }
LOGINS_SECS=$(awk -v a="$LOGINS_T0" -v b="$LOGINS_T1" 'BEGIN {printf "%.2f", (b - a) / 1e9}')
# Sample i is taken 250*i ms after the last login answered; sample 8 is the "2 s" figure.
LOGINS_SERIES=""
for i in $(seq 1 12); do
  wait_s=$(awk -v t="$LOGINS_T1" -v i="$i" -v now="$(date +%s%N)" 'BEGIN {d = (t + i * 250e6 - now) / 1e9; printf "%.3f", (d > 0 ? d : 0)}')
  sleep "$wait_s"
  kb=$(mem_kb "$PID_logins" VmRSS)
  ms=$((($(date +%s%N) - LOGINS_T1) / 1000000))
  LOGINS_SERIES+="${LOGINS_SERIES:+, }$(awk -v ms="$ms" -v kb="$kb" 'BEGIN {printf "%.2f s %.1f", ms / 1000, kb / 1024}')"
  if [ "$i" = 8 ]; then LOGINS_AT2_KB=$kb LOGINS_AT2_MS=$ms; fi
done
LOGINS_HWM_KB=$(mem_kb "$PID_logins" VmHWM)
echo "VmRSS (MB) after the last login: $LOGINS_SERIES"
kill "$PID_logins"

# Other work on the machine skews everything; record how busy it was.
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
bench a "$CONNS" "$URL_main$TOKEN_PATH" -H "$BASIC_PW"
bench b "$CONNS" "$URL_main$TOKEN_PATH" -H "$BASIC_APP"
bench c "$CONNS" "$URL_main$TOKEN_PATH"
LOADED_HWM_KB=$(mem_kb "$PID_main" VmHWM)

echo "== starting the uncached instance"
start_portcullis uncached PORTCULLIS_SECURITY_POLICY_CREDENTIAL_CACHE_SECONDS=0
check d 200 -H "$BASIC_PW" "$URL_uncached$TOKEN_PATH"
bench d "$CONNS_UNCACHED" "$URL_uncached$TOKEN_PATH" -H "$BASIC_PW"
kill "$PID_uncached"

# Last: every manifest GET is a `pull` notification the registry then posts to Portcullis.
# GET, not HEAD: wrk 4.1 parses a HEAD answer as if its Content-Length body were coming
# and never completes a request (0 requests/s). GET does the same lookup and auth check
# and also sends the few hundred bytes of the manifest.
bench e "$CONNS" "$MANIFEST_URL" -H "Authorization: Bearer $REG_TOKEN" -H "$ACCEPT"

# HEAD, as clients check manifests, needs a tool that does not wait for a body: ApacheBench
# (`ab -i`). To compare like with like, the token endpoint is measured with ab too.
# benchab KEY CONNECTIONS URL AB-ARGS...: sets RPS_KEY, P50_KEY, P99_KEY, ERR_KEY.
benchab() {
  local key=$1 conns=$2 url=$3
  shift 3
  echo "== ($key) ab $url, $conns connections"
  ab -q -k -c "$conns" -t 2 -n 100000000 "$@" "$url" >/dev/null 2>&1 || true
  local out
  out=$(ab -q -k -c "$conns" -t "${DURATION%s}" -n 100000000 "$@" "$url" 2>&1)
  echo "$out" >"$W/ab-$key.txt"
  local failed non2xx
  printf -v "RPS_$key" %s "$(awk '/^Requests per second:/ {printf "%.0f", $4}' <<<"$out")"
  printf -v "P50_$key" %s "$(awk '$1 == "50%" {printf "%.2f", $2}' <<<"$out")"
  printf -v "P99_$key" %s "$(awk '$1 == "99%" {printf "%.2f", $2}' <<<"$out")"
  failed=$(awk '/^Failed requests:/ {print $3}' <<<"$out")
  non2xx=$(awk '/^Non-2xx responses:/ {print $3}' <<<"$out")
  printf -v "ERR_$key" %s "$((${failed:-0} + ${non2xx:-0}))"
}
benchab f "$CONNS" "$MANIFEST_URL" -i -H "Authorization: Bearer $REG_TOKEN" -H "$ACCEPT"
benchab g "$CONNS" "$URL_main$TOKEN_PATH" -H "$BASIC_PW"
FINAL_HWM_KB=$(mem_kb "$PID_main" VmHWM)

# ---- BENCHMARKS.md -------------------------------------------------------------
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
meets() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "**not met**"; fi; }

RATIO_A=$(ratio "$RPS_a" "$RPS_e")
RATIO_B=$(ratio "$RPS_b" "$RPS_e")
RATIO_G=$(ratio "$RPS_g" "$RPS_f")
MACHINE="nproc $(nproc); $(free -h | awk '/^Mem:/ {print "memory " $2 " total, " $7 " available"}'); $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then REV="$REV (with uncommitted changes)"; fi

row() { # KEY DESCRIPTION CONNECTIONS
  local k=$1
  local rps=RPS_$k p50=P50_$k p99=P99_$k err=ERR_$k
  printf '| (%s) | %s | %s | %s | %s | %s | %s |\n' "$k" "$2" "$3" "${!rps}" "${!p50}" "${!p99}" "${!err}"
}

{
  echo "# Benchmarks"
  echo
  echo "Generated by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') — the whole file is rewritten by every run."
  echo
  echo "- Machine: $MACHINE"
  echo "- Portcullis: release build, revision $REV, SQLite, ES256 keys; $(docker-registry --version | awk '{print $1 " " $3}'); $(wrk --version 2>&1 | head -1 | awk '{print "wrk " $2}')"
  echo "- Load average (1, 5, 15 min) just before the runs: $LOAD_BEFORE; other processes on the machine make the numbers vary by tens of percent between runs."
  echo "- Load: \`wrk -t$THREADS -c<connections> -d$DURATION --latency\` after a 2 s warm-up, all on this machine over 127.0.0.1 (wrk shares the CPUs with the servers)."
  echo "- Token requests: \`GET /v2/token?service=$REG&scope=$SCOPE\` (a public namespace)."
  echo
  echo "| # | what | connections | requests/s | p50 ms | p99 ms | errors |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
  row a "token, Basic alice:password (verified password cached)" "$CONNS"
  row b "token, Basic alice:application token" "$CONNS"
  row c "token, anonymous pull of a public repository" "$CONNS"
  row d "token, Basic alice:password, credential cache off (argon2 each time)" "$CONNS_UNCACHED"
  row e "registry: \`GET /v2/$NS/app/manifests/$TAG\` with a Bearer token" "$CONNS"
  row f "registry: \`HEAD /v2/$NS/app/manifests/$TAG\` with a Bearer token (ab)" "$CONNS"
  row g "token, Basic alice:password, cached, measured like (f) (ab)" "$CONNS"
  echo
  echo "\"errors\" counts non-2xx answers and socket errors; every number above is meaningful only when it is 0."
  echo
  echo "| memory of the Portcullis process (/proc/PID/status) | MB |"
  echo "| --- | ---: |"
  echo "| idle, VmRSS right after start | $(mb "$IDLE_RSS_KB") |"
  echo "| peak, VmHWM after runs (a)–(c) | $(mb "$LOADED_HWM_KB") |"
  echo "| peak, VmHWM after all runs (incl. the registry's notifications during (e)) | $(mb "$FINAL_HWM_KB") |"
  echo "| logins instance: idle, VmRSS right after start | $(mb "$LOGINS_IDLE_KB") |"
  echo "| logins instance: peak, VmHWM during $LOGINS password logins ($LOGINS_PARALLEL at once) | $(mb "$LOGINS_HWM_KB") |"
  echo "| logins instance: idle, VmRSS $(awk -v ms="$LOGINS_AT2_MS" 'BEGIN {printf "%.2f", ms / 1000}') s after the last login | $(mb "$LOGINS_AT2_KB") |"
  echo
  echo "Idle memory after logins: a fresh instance with \`credential_cache_seconds=0\` answered $LOGINS"
  echo "token requests with alice's password, $LOGINS_PARALLEL at once (each an argon2id check of 19 MiB,"
  echo "at most \`max_concurrent_password_checks\` = 2 at a time), in $LOGINS_SECS s. VmRSS after the last"
  echo "answer, every 250 ms (s MB): $LOGINS_SERIES."
  echo
  echo "Token service vs registry (requests/s): (a)/(e) = $RATIO_A, (b)/(e) = $RATIO_B (wrk, GET);"
  echo "(g)/(f) = $RATIO_G (ab, the registry's HEAD). Rows (f) and (g) use ApacheBench: \`ab -k -c$CONNS -t$DURATION\`."
  echo
  echo "## Targets"
  echo
  echo "| target | measured | status |"
  echo "| --- | --- | --- |"
  echo "| (a) ≥ 10,000 req/s with p99 < 10 ms at $CONNS connections | $RPS_a req/s, p99 $P99_a ms | $(meets "$RPS_a >= 10000 && $P99_a < 10 && $ERR_a == 0") |"
  echo "| (b) ≥ 10,000 req/s with p99 < 10 ms at $CONNS connections | $RPS_b req/s, p99 $P99_b ms | $(meets "$RPS_b >= 10000 && $P99_b < 10 && $ERR_b == 0") |"
  echo "| idle RSS < 50 MB | $(mb "$IDLE_RSS_KB") MB | $(meets "$IDLE_RSS_KB < 51200") |"
  echo "| idle RSS < 50 MB about 2 s after $LOGINS password logins | $(mb "$LOGINS_AT2_KB") MB | $(meets "$LOGINS_AT2_KB < 51200") |"
  echo "| token service never slower than the registry: (a)/(e), (b)/(e), (g)/(f) ≥ 1 | $RATIO_A, $RATIO_B, $RATIO_G | $(meets "$RPS_a >= $RPS_e && $RPS_b >= $RPS_e && $RPS_g >= $RPS_f") |"
  echo
  echo "(d) has no target: it measures the deliberate cost of a password hash (argon2/bcrypt,"
  echo "at most \`security_policy.max_concurrent_password_checks\` at once), which the credential"
  echo "cache and application tokens avoid."
  echo
  echo "(e) and (f) are the registry's manifest lookup with the OCI \`Accept\` header. wrk 4.1"
  echo "cannot measure HEAD (it waits for the body the \`Content-Length\` of a HEAD answer announces),"
  echo "so (e) uses GET with wrk and (f) HEAD with ApacheBench, with (g) as the token endpoint under"
  echo "the same tool. The registry runs with the configuration \`portcullis registry-config\` prints:"
  echo "it logs every request and posts a \`pull\` notification to Portcullis per manifest GET/HEAD."
} >"$ROOT/BENCHMARKS.md"

echo "== wrote BENCHMARKS.md"
cat "$ROOT/BENCHMARKS.md"
