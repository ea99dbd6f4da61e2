#!/usr/bin/env bash
# Smoke test of the official image: builds it (scripts/build-image.sh) into a throwaway
# container storage, runs it with podman (no Docker engine: vfs storage, runc,
# cgroupfs, explicit ulimits, host network) against PostgreSQL, and checks what an
# operator relies on. Every check prints `ok - ...`, or names what was wrong followed by
# the container's last log lines; the script then goes on where it can and exits 1 at
# the end, listing the failed checks.
#
#   scripts/image-smoke.sh [BINARY]      (BINARY: as for scripts/build-image.sh)
#
# PostgreSQL: $PORTCULLIS_TEST_DATABASE_URL (a postgres:// URL whose role may CREATE
# DATABASE), else postgres://postgres@127.0.0.1:5432/postgres (trust auth). A throwaway
# database is created and dropped at the end; containers, volumes, the storage and the
# helper TLS server are removed on exit too (IMAGE_SMOKE_KEEP=1 keeps the folder).
#
# Runs (all but `late` on the same database):
#   main    serve; the database URL only as /secrets/PORTCULLIS_DATABASE_URL, the token
#           signing key as /secrets/token.key + token.crt, a CA in /certificates
#   portus  serve configured by Portus's PORTUS_DB_* variables, JSON logs, and neither
#           /secrets nor /certificates mounted
#   worker  the `worker` command
#   bg      PORTUS_BACKGROUND=true with the default command: runs the worker instead
#   late    serve started before its own database exists: waits for it, then serves
# Installs podman, runc, buildah, openssl, curl and jq from Debian's packages when missing.
set -euo pipefail
# A relative BINARY is taken from where the script was called.
if [ $# -gt 0 ] && [ "${1#/}" = "$1" ] && [ -e "$1" ]; then
  set -- "$PWD/$1" "${@:2}"
fi
cd "$(dirname "$0")/.."
repo=$PWD
if [ "$(id -u)" -ne 0 ]; then
  exec sudo --preserve-env=PORTCULLIS_TEST_DATABASE_URL,IMAGE_SMOKE_KEEP "$repo/scripts/image-smoke.sh" "$@"
fi
started=$(date +%s.%N)
elapsed() { awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }
say() { printf '[%6ss] %s\n' "$(elapsed)" "$*"; }
ok() { say "ok - $*"; }

packages=()
command -v podman >/dev/null || packages+=(podman)
command -v runc >/dev/null || packages+=(runc)
command -v buildah >/dev/null || packages+=(buildah)
command -v openssl >/dev/null || packages+=(openssl)
command -v curl >/dev/null || packages+=(curl)
command -v jq >/dev/null || packages+=(jq)
command -v psql >/dev/null || packages+=(postgresql-client)
if [ ${#packages[@]} -gt 0 ]; then
  say "installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

mkdir -p target
work=$(mktemp -d "$repo/target/image-smoke.XXXXXX")
store=$work/store
# podman refuses a runroot longer than 50 characters (it holds sockets, whose paths are
# short), and the checkout may sit deep in the file system: the runroot lives in /tmp.
runroot=$(mktemp -d /tmp/pcsmoke.XXXXXX)
podman_cmd=(podman --root "$store/root" --runroot "$runroot" --storage-driver vfs
  --runtime runc --cgroup-manager cgroupfs --events-backend file)
P() { "${podman_cmd[@]}" "$@"; }
image=localhost/portcullis:smoke
containers=()
helper_pid=
db=
current=   # the container a failure's log excerpt is taken from

# --- checks, failure and cleanup -------------------------------------------------------
failures=()
report() {
  echo "image-smoke: FAIL: $*" >&2
  if [ -n "$current" ]; then
    echo "--- last log lines of container $current ---" >&2
    P logs --tail 25 "$current" >&2 2>&1 || true
    echo "---" >&2
  fi
}
# fail MESSAGE: a failure later steps cannot go on from; ends the run.
fail() { report "$*"; failures+=("$*"); exit 1; }
# check DESCRIPTION FUNCTION [ARGS...]: runs FUNCTION; it returns non-zero with $why
# set when the check fails. A failed check is reported and the run goes on; the script
# fails at the end.
check() {
  local desc=$1; shift
  why=
  if "$@"; then ok "$desc"; else report "$desc: ${why:-failed}"; failures+=("$desc: ${why:-failed}"); fi
}
cleanup() {
  local rc=$?
  set +e
  for c in "${containers[@]}"; do P rm -f -v -t 2 "$c" >/dev/null 2>&1; done
  [ -z "$helper_pid" ] || kill "$helper_pid" 2>/dev/null
  if [ -n "$db" ]; then
    for d in "$db" "${db}_late"; do
      psql "$admin_url" -qtAX -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null \
        || echo "image-smoke: could not drop database $d" >&2
    done
  fi
  if [ "${IMAGE_SMOKE_KEEP:-0}" = 1 ]; then
    echo "image-smoke: kept $work"
  else
    rm -rf "$work"
  fi
  rm -rf "$runroot"
  if [ $rc -eq 0 ] && [ ${#failures[@]} -eq 0 ]; then
    say "image-smoke: all checks passed"
  else
    say "image-smoke: FAILED (${#failures[@]} failed check(s)):"
    for f in "${failures[@]}"; do echo "  - $f"; done
    [ $rc -ne 0 ] || rc=1
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the database -----------------------------------------------------------------------
admin_url=${PORTCULLIS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=portcullis_smoke_$$_$RANDOM
psql "$admin_url" -qtAX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null \
  || { db=; fail "cannot create a database with $admin_url (set PORTCULLIS_TEST_DATABASE_URL to a postgres:// URL whose role may CREATE DATABASE)"; }
# The throwaway database's URL, and its parts for the PORTUS_DB_* run.
db_url='' db_host='' db_port='' db_user='' db_password=''
eval "$(python3 - "$admin_url" "$db" <<'EOF'
import shlex, sys
from urllib.parse import urlsplit, urlunsplit, unquote
u = urlsplit(sys.argv[1])
netloc = u.netloc
print("db_url=" + shlex.quote(urlunsplit((u.scheme, netloc, "/" + sys.argv[2], u.query, ""))))
print("db_host=" + shlex.quote(u.hostname or "127.0.0.1"))
print("db_port=" + shlex.quote(str(u.port or 5432)))
print("db_user=" + shlex.quote(unquote(u.username or "postgres")))
print("db_password=" + shlex.quote(unquote(u.password or "")))
EOF
)"
say "database $db on $db_host:$db_port"

# --- the image --------------------------------------------------------------------------
if ! PORTCULLIS_IMAGE_STORE=$store PORTCULLIS_IMAGE_RUNROOT=$runroot scripts/build-image.sh --tag "$image" "$@" | sed 's/^/  /'; then
  fail "scripts/build-image.sh failed"
fi

image_config() {
  local config hc env
  config=$(P image inspect "$image" | jq '.[0].Config')
  jq -e '.User == "65532:65532"' <<<"$config" >/dev/null || { why="user is $(jq -c .User <<<"$config"), expected 65532:65532"; return 1; }
  jq -e '.Entrypoint == ["/usr/local/bin/portcullis"] and .Cmd == ["serve"]' <<<"$config" >/dev/null \
    || { why="entrypoint/cmd are $(jq -c '[.Entrypoint, .Cmd]' <<<"$config")"; return 1; }
  jq -e '.Volumes | has("/data")' <<<"$config" >/dev/null || { why="no VOLUME /data"; return 1; }
  jq -e '.ExposedPorts | has("3000/tcp")' <<<"$config" >/dev/null || { why="port 3000 not exposed"; return 1; }
  hc=$(P image inspect "$image" | jq -c '.[0].Healthcheck.Test // empty')
  [ "$hc" = '["CMD","/usr/local/bin/portcullis","health"]' ] \
    || { why="HEALTHCHECK is ${hc:-missing} (built without --format docker?)"; return 1; }
  for env in PORTCULLIS_SERVER_LISTEN=0.0.0.0:3000 PORTCULLIS_DATA_DIR=/data PORTCULLIS_SECRETS_DIR=/secrets \
    PORTCULLIS_REGISTRY_CERTIFICATES_DIR=/certificates SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt; do
    jq -e --arg e "$env" '.Env | index($e)' <<<"$config" >/dev/null || { why="ENV lacks $env"; return 1; }
  done
  jq -e '[.Labels["org.opencontainers.image." + ("title", "version", "revision", "created", "licenses")]] | all(. != null)' \
    <<<"$config" >/dev/null || { why="OCI labels missing: $(jq -c .Labels <<<"$config")"; return 1; }
}
check "image config: user 65532, entrypoint, VOLUME /data, port 3000, HEALTHCHECK, ENV, OCI labels" image_config

# --- material: keys, a CA, a TLS server it signs ----------------------------------------
m=$work/material
mkdir -p "$m" "$work/secrets" "$work/certificates"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$work/secrets/token.key"
openssl req -x509 -key "$work/secrets/token.key" -out "$work/secrets/token.crt" -days 365 \
  -subj "/CN=portcullis smoke token signer" 2>/dev/null
printf '%s\n' "$db_url" >"$work/secrets/PORTCULLIS_DATABASE_URL"
# Readable by the image's user only, as an operator would mount secrets.
chown 65532:65532 "$work"/secrets/*
chmod 0400 "$work"/secrets/*

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -keyout "$m/ca.key" -out "$m/ca.crt" -subj "/CN=portcullis smoke CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$m/tls.key" -out "$m/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
  "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >"$m/tls.ext"
openssl x509 -req -in "$m/tls.csr" -CA "$m/ca.crt" -CAkey "$m/ca.key" -CAcreateserial -days 30 \
  -extfile "$m/tls.ext" -out "$m/tls.crt" 2>/dev/null
cp "$m/ca.crt" "$work/certificates/smoke-ca.crt"
chmod 0644 "$work/certificates/smoke-ca.crt"

# A stand-in registry on HTTPS (certificate signed by the CA above): GET /v2/ answers
# 401 with Docker-Distribution-Api-Version, which is all the reachability check asks.
cat >"$m/tls-v2.py" <<'EOF'
import http.server, ssl, sys
class V2(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.send_header("WWW-Authenticate", 'Bearer realm="https://127.0.0.1/v2/token",service="smoke"')
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), V2)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os; os.rename(sys.argv[3] + ".tmp", sys.argv[3])
server.serve_forever()
EOF
python3 "$m/tls-v2.py" "$m/tls.crt" "$m/tls.key" "$m/tls.port" &
helper_pid=$!
deadline=$((SECONDS + 10))
until [ -s "$m/tls.port" ]; do
  kill -0 "$helper_pid" 2>/dev/null || fail "the helper TLS server did not start"
  [ $SECONDS -lt $deadline ] || fail "the helper TLS server did not report its port"
  sleep 0.1
done
tls_host=127.0.0.1:$(cat "$m/tls.port")
curl -sf -o /dev/null --cacert "$m/ca.crt" "https://$tls_host/v2/" || \
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$m/ca.crt" "https://$tls_host/v2/")" = 401 ] \
  || fail "the helper TLS server at $tls_host does not answer over verified TLS"

# --- helpers ----------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -le 65536 ] || nofile=65536
nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -le 4096 ] || nproc=4096
[ "$nofile" != unlimited ] || nofile=65536
[ "$nproc" != unlimited ] || nproc=4096
# run NAME [podman run options...] -- [command...]
run() {
  local name=$1; shift
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ "${1:-}" != -- ] || shift
  containers+=("$name")
  current=$name
  # podman's own complaints (no systemd for health check timers) go to a file, shown
  # only when the run fails.
  P run -d --name "$name" --network host \
    --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
    "${opts[@]}" "$image" "$@" >/dev/null 2>"$work/podman-run-$name.err" \
    || fail "podman run $name failed: $(cat "$work/podman-run-$name.err")"
}
running() { [ "$(P inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
# wait_ready NAME BASE_URL: polls /readyz until 200 (deadline 60 s; the container must
# keep running meanwhile).
wait_ready() {
  local name=$1 base=$2 code deadline=$((SECONDS + 60))
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/readyz" || true)
    [ "$code" = 200 ] && return 0
    running "$name" || fail "$name exited (code $(P inspect -f '{{.State.ExitCode}}' "$name")) before $base/readyz answered 200"
    [ $SECONDS -lt $deadline ] || fail "$base/readyz did not answer 200 within 60 s (last: $code)"
    sleep 0.2
  done
}
# wait_log NAME TEXT: polls the container's log (stdout and stderr) for TEXT (30 s).
wait_log() {
  local name=$1 text=$2 deadline=$((SECONDS + 30))
  until P logs "$name" 2>&1 | grep -qF -- "$text"; do
    running "$name" || fail "$name exited (code $(P inspect -f '{{.State.ExitCode}}' "$name")) before logging \"$text\""
    [ $SECONDS -lt $deadline ] || fail "$name did not log \"$text\" within 30 s"
    sleep 0.2
  done
}
# http METHOD URL [curl args...]: sets $status and $body.
http() {
  local method=$1 url=$2; shift 2
  local out
  out=$(curl -s -X "$method" -w '\n%{http_code}' --max-time 10 "$@" "$url") || fail "$method $url: no answer"
  status=${out##*$'\n'}
  body=${out%$'\n'*}
}
show_config() { P exec "$1" portcullis config show 2>/dev/null || fail "portcullis config show failed in $1"; }

# === run 1: main ========================================================================
port=$(free_port)
base=http://127.0.0.1:$port
run main \
  -e "PORTCULLIS_SERVER_LISTEN=127.0.0.1:$port" \
  -e PORTCULLIS_MACHINE_FQDN_VALUE=smoke.portcullis.test \
  -v "$work/secrets:/secrets:ro" -v "$work/certificates:/certificates:ro" --read-only --
wait_ready main "$base"
ok "main: /readyz answers 200 (read-only root filesystem; the database URL only in /secrets/PORTCULLIS_DATABASE_URL)"

runs_as_65532() {
  local pid ids
  pid=$(P inspect -f '{{.State.Pid}}' "$1")
  ids=$(awk '/^Uid:|^Gid:/ { print $1, $2, $3, $4, $5 }' "/proc/$pid/status")
  [ "$ids" = $'Uid: 65532 65532 65532 65532\nGid: 65532 65532 65532 65532' ] \
    || { why="it runs as $(tr '\n' ' ' <<<"$ids")"; return 1; }
}
check "main: the process runs as uid/gid 65532" runs_as_65532 main

livez() { http GET "$base/livez"; [ "$status" = 200 ] || { why="GET /livez: $status $body"; return 1; }; }
check "main: /livez answers 200" livez

no_shell() { ! P exec main /bin/sh -c true >/dev/null 2>&1 || { why="/bin/sh runs"; return 1; }; }
check "main: no shell in the image" no_shell

# The image's own HEALTHCHECK (`portcullis health`, no URL: this container's
# server.listen, here the free port), run on demand: without systemd podman runs no
# health check timers.
health_checks() {
  local out
  out=$(P exec main portcullis health --url "$base" 2>&1) || { why="portcullis health --url $base exited non-zero: $out"; return 1; }
  out=$(P healthcheck run main 2>&1) || { why="podman healthcheck run (the image's HEALTHCHECK): $out"; return 1; }
  out=$(P inspect -f '{{.State.Health.Status}}' main)
  [ "$out" = healthy ] || { why="health status is $out"; return 1; }
}
check "main: \`portcullis health\` (podman exec) and the image's HEALTHCHECK (podman healthcheck run) pass" health_checks

api_health() {
  http GET "$base/api/v1/health"
  jq -e '.database.success == true' <<<"$body" >/dev/null 2>&1 || { why="GET /api/v1/health: $status $body"; return 1; }
}
check "main: /api/v1/health reports the database up" api_health

from_secrets() {
  local cfg
  cfg=$(P exec main portcullis config show 2>&1) || { why="portcullis config show: $cfg"; return 1; }
  grep -Eq '^#   database\.url: .*PORTCULLIS_DATABASE_URL' <<<"$cfg" \
    || { why="database.url's source: $(grep -E 'database\.url' <<<"$cfg" | tr '\n' ' ')"; return 1; }
  grep -q '^  url: postgres' <<<"$cfg" || { why="database.url is not the PostgreSQL URL"; return 1; }
  grep -q '^  key_path: /secrets/token.key' <<<"$cfg" || { why="token.key_path: $(grep key_path <<<"$cfg")"; return 1; }
  grep -q '^  cert_path: /secrets/token.crt' <<<"$cfg" || { why="token.cert_path: $(grep cert_path <<<"$cfg")"; return 1; }
}
check "main: database.url and the signing key come from /secrets (config show)" from_secrets

wait_log main "portcullis listening"
data_volume() {
  local data f
  data=$(P inspect main | jq -r '.[0].Mounts[] | select(.Destination == "/data") | .Source')
  [ -n "$data" ] && [ -d "$data" ] || { why="no volume at /data"; return 1; }
  for f in webhooks.key notifications.secret; do
    [ -f "$data/$f" ] || { why="/data/$f was not created"; return 1; }
    [ "$(stat -c '%u:%g %a' "$data/$f")" = "65532:65532 600" ] \
      || { why="/data/$f is $(stat -c '%u:%g %a' "$data/$f"), expected 65532:65532 600"; return 1; }
  done
  [ ! -e "$data/token.key" ] || { why="a signing key was generated in /data although /secrets/token.key exists"; return 1; }
}
check "main: the /data volume belongs to 65532: webhooks.key, notifications.secret created (0600), no key generated" data_volume

password='smoke-test-password-1234'
http POST "$base/api/v1/users/bootstrap" -H 'Content-Type: application/json' \
  -d "{\"user\":{\"username\":\"admin\",\"email\":\"admin@example.com\",\"password\":\"$password\"}}"
[ "$status" = 201 ] || fail "POST /api/v1/users/bootstrap: $status $body"
api_token=$(jq -r '.plain_token // empty' <<<"$body")
[ -n "$api_token" ] || fail "bootstrap returned no plain_token: $body"
ok "main: POST /api/v1/users/bootstrap creates the first admin and returns an application token"

service=registry.smoke.test:5000
http POST "$base/api/v1/registries" -H "Authorization: Bearer $api_token" -H 'Content-Type: application/json' \
  -d "{\"registry\":{\"name\":\"smoke\",\"hostname\":\"$service\",\"use_ssl\":false},\"force\":true}"
[ "$status" = 201 ] || fail "POST /api/v1/registries: $status $body"
http GET "$base/v2/token?service=$service&scope=repository:admin/app:pull,push" -u "admin:$password"
[ "$status" = 200 ] || fail "GET /v2/token: $status $body"
jwt=$(jq -r '.token // empty' <<<"$body")
[ -n "$jwt" ] || fail "GET /v2/token returned no token: $body"
# Decode the JWT; check the claims, that x5c carries /secrets/token.crt, and verify the
# ES256 signature with that certificate's key (openssl).
token_checks() {
  why="the header or claims are wrong (printed above)"
  python3 - "$jwt" "$m" <<'EOF' || return 1
import base64, json, sys
token, out = sys.argv[1], sys.argv[2]
def b64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
h, p, s = token.split(".")
header, claims, sig = json.loads(b64(h)), json.loads(b64(p)), b64(s)
print("  jwt claims:", json.dumps(claims))
errors = []
if header.get("alg") != "ES256": errors.append(f"alg {header.get('alg')}")
if claims.get("iss") != "smoke.portcullis.test": errors.append(f"iss {claims.get('iss')}")
if claims.get("aud") != "registry.smoke.test:5000": errors.append(f"aud {claims.get('aud')}")
if claims.get("sub") != "admin": errors.append(f"sub {claims.get('sub')}")
access = claims.get("access") or []
if len(access) != 1 or access[0].get("type") != "repository" or access[0].get("name") != "admin/app" \
        or sorted(access[0].get("actions", [])) != ["pull", "push"]:
    errors.append(f"access {access}")
if not header.get("x5c"): errors.append("no x5c")
if errors:
    print("  wrong:", ", ".join(errors)); sys.exit(1)
open(out + "/x5c.der", "wb").write(base64.b64decode(header["x5c"][0]))
open(out + "/signed", "wb").write(f"{h}.{p}".encode())
def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
seq = der_int(sig[:32]) + der_int(sig[32:])
open(out + "/sig.der", "wb").write(b"\x30" + bytes([len(seq)]) + seq)
EOF
  openssl x509 -in "$work/secrets/token.crt" -outform DER -out "$m/token.der"
  cmp -s "$m/x5c.der" "$m/token.der" || { why="the token's x5c is not /secrets/token.crt"; return 1; }
  openssl x509 -in "$work/secrets/token.crt" -pubkey -noout >"$m/token.pub"
  openssl dgst -sha256 -verify "$m/token.pub" -signature "$m/sig.der" "$m/signed" >/dev/null \
    || { why="the signature does not verify with /secrets/token.crt"; return 1; }
}
check "main: GET /v2/token issues a JWT for repository:admin/app:pull,push, signed with /secrets/token.key" token_checks

main_logs() {
  local logs
  logs=$(P logs main 2>&1)
  grep -q "portcullis listening" <<<"$logs" && grep -q "listening on 127.0.0.1:$port" <<<"$logs" \
    || { why="podman logs main lacks the start lines"; return 1; }
}
check "main: logs on stdout and stderr (podman logs)" main_logs

# registry.certificates_dir: the reachability check of a registry on HTTPS whose
# certificate the smoke CA signed, with the CA mounted at /certificates.
validate_tls() {
  local want=$1 at=$2
  http GET "$at/api/v1/registries/validate?name=tls&hostname=$tls_host&use_ssl=true" -H "Authorization: Bearer $api_token"
  jq -e --argjson want "$want" '.valid == $want' <<<"$body" >/dev/null 2>&1 \
    || { why="GET /api/v1/registries/validate: $status $body"; return 1; }
}
check "main: a registry whose certificate /certificates/smoke-ca.crt signed is reachable over HTTPS" validate_tls true "$base"

# === run 2: Portus's database variables, JSON logs ======================================
port2=$(free_port)
base2=http://127.0.0.1:$port2
portus_env=(-e PORTUS_DB_ADAPTER=postgresql -e "PORTUS_DB_HOST=$db_host" -e "PORTUS_DB_PORT=$db_port"
  -e "PORTUS_DB_DATABASE=$db" -e "PORTUS_DB_USERNAME=$db_user")
[ -z "$db_password" ] || portus_env+=(-e "PORTUS_DB_PASSWORD=$db_password")
run portus "${portus_env[@]}" -e "PORTCULLIS_SERVER_LISTEN=127.0.0.1:$port2" \
  -e PORTCULLIS_LOG_FORMAT=json --no-healthcheck --
wait_ready portus "$base2"
portus_db() {
  local cfg
  cfg=$(P exec portus portcullis config show 2>&1) || { why="portcullis config show: $cfg"; return 1; }
  grep -Eq '^#   database\.url: environment .*PORTUS_DB_' <<<"$cfg" \
    || { why="database.url's source: $(grep -E 'database\.url' <<<"$cfg" | tr '\n' ' ')"; return 1; }
  http GET "$base2/api/v1/users" -H "Authorization: Bearer $api_token"
  [ "$status" = 200 ] && jq -e 'any(.[]; .username == "admin")' <<<"$body" >/dev/null \
    || { why="the admin of the same database is not there: $status $body"; return 1; }
}
check "portus: the PORTUS_DB_* variables reach the same database" portus_db
check "portus: without the /certificates mount the same registry is refused (so the CA check is meaningful)" \
  validate_tls false "$base2"

wait_log portus "portcullis listening"
json_logs() {
  P logs portus 2>"$work/portus.stderr" >/dev/null
  why="the log is not JSON lines (printed above)"
  python3 - "$work/portus.stderr" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
bad = []
for l in lines:
    try:
        json.loads(l)
    except ValueError:
        bad.append(l)
if not lines or bad:
    print(f"  {len(bad)} of {len(lines)} log lines on stderr are not JSON, e.g. {bad[:1]}"); sys.exit(1)
if not any("portcullis listening" in l for l in lines):
    print("  no JSON line names the start"); sys.exit(1)
EOF
}
check "portus: PORTCULLIS_LOG_FORMAT=json logs one JSON object a line" json_logs

# === run 3: the worker command; run 4: PORTUS_BACKGROUND=true ===========================
run worker -e "PORTCULLIS_DATABASE_URL=$db_url" --no-healthcheck -- worker
wait_log worker "worker started"
ok "worker: \`worker\` runs the background worker"

port4=$(free_port)
run bg "${portus_env[@]}" -e PORTUS_BACKGROUND=true -e "PORTCULLIS_SERVER_LISTEN=127.0.0.1:$port4" --no-healthcheck --
wait_log bg "worker started"
background() {
  local logs
  logs=$(P logs bg 2>&1)
  if grep -q "portcullis listening" <<<"$logs" || curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port4/livez"; then
    why="it started the server too"; return 1
  fi
  running bg || { why="the container stopped"; return 1; }
}
check "bg: PORTUS_BACKGROUND=true runs the worker instead of the server" background

# === run 5: the database comes later =====================================================
# Like Portus's image, the server waits for its database (database.wait_seconds, 90 s by
# default, one try every 5 s) instead of exiting.
port5=$(free_port)
late_url=$(python3 -c 'import sys; from urllib.parse import urlsplit, urlunsplit; u = urlsplit(sys.argv[1]); print(urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, "")))' "$admin_url" "${db}_late")
run late -e "PORTCULLIS_DATABASE_URL=$late_url" -e "PORTCULLIS_SERVER_LISTEN=127.0.0.1:$port5" --no-healthcheck --
wait_log late "waiting for the database"
psql "$admin_url" -qtAX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"${db}_late\"" >/dev/null \
  || fail "cannot create database ${db}_late"
wait_ready late "http://127.0.0.1:$port5"
ok "late: the server waits for a database that appears after it started, then migrates and serves"

current=main
stops() {
  P stop -t 20 main >/dev/null 2>"$work/podman-stop.err" || { why="podman stop failed: $(cat "$work/podman-stop.err")"; return 1; }
  local code
  code=$(P inspect -f '{{.State.ExitCode}}' main)
  [ "$code" = 0 ] || { why="exit code $code"; return 1; }
}
check "main: stops on SIGTERM with exit code 0" stops
current=
