#!/usr/bin/env bash
# Portcullis at scale on PostgreSQL: a throwaway database bulk-loaded by SQL with
# SCALE_USERS users (each with its hidden personal team, owner membership and personal
# namespace), SCALE_TEAMS teams of SCALE_TEAM_MEMBERS members with a namespace each,
# SCALE_REPOSITORIES repositories spread over the namespaces, a tag on 1 in
# SCALE_TAGGED_EVERY repositories (SCALE_TAGS_PER_REPO each), SCALE_ACTIVITIES activities and
# SCALE_EVENTS registry events; then `portcullis serve` on it is measured with wrk.
# Regenerates BENCHMARKS-SCALE.md completely.
#
#   scripts/bench-scale.sh
#
# Binary: BENCH_SCALE_BINARY (default target/release/portcullis; when that is missing,
# target/debug/portcullis with a warning in the output; when neither exists,
# `cargo build --release --locked -p portcullis`). Database: a new database
# portcullis_scale_<pid> created with PORTCULLIS_TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) and dropped on exit.
#
# Rows, each `wrk -t2 -c<connections> -d$BENCH_DURATION --latency` after a 2 s warm-up:
#   (t1) GET /v2/token, Basic auth of a random user out of BENCH_SCALE_POOL loaded users,
#        pull,push in that user's personal namespace (password cached: every pool user
#        logs in once before, which is measured as the cold-cache warm-up)
#   (t2) GET /v2/token, Basic alice:password, pull of the public bench/app: the request of
#        BENCHMARKS.md row (a), on the big data set and PostgreSQL
#   (t3) GET /v2/token, anonymous pull of a random public repository
#   (a1) GET /api/v1/repositories?per_page=25&page=<random> as the admin
#   (a2) GET /api/v1/repositories?per_page=25&q=<random username> as the admin (search)
#   (a4) GET /api/v1/namespaces?per_page=25&page=<random> as the admin
#   (a3) GET /repositories?page=<random> (web UI) signed in as a loaded user
#   (a5), (a6) the first page of (a1) and of (a3), where people look
# plus (l) the cold-cache logins of the warm-up (argon2 bound), the serve process's
# VmRSS/VmHWM, the database's size, pg_stat_database's xact_commit per token request,
# and last (r2) the time to add a second registry (a personal namespace per user).
#
# Also: SCALE_TEAM_MEMBERS (20), SCALE_TAGGED_EVERY (10), BENCH_SCALE_API_CONNS (8:
# connections of the API and UI rows), BENCH_SCALE_DB_POOL (database.pool, 16),
# BENCH_SCALE_OUTPUT (BENCHMARKS-SCALE.md), BENCH_SCALE_KEEP_DB=1 (keep the database, to
# look at query plans), BENCH_SCALE_LOAD_ONLY=1 (stop after loading). The bench instance raises the password
# limits (password_checks_per_minute off, max_concurrent_password_checks = nproc,
# credential_cache_seconds 3600) and says so in the output. A full run (the defaults)
# takes roughly 10 minutes on 2 cores.
#
# Needs psql, wrk, curl, jq, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

for tool in psql wrk curl jq python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: $tool is not installed (apt-get install postgresql-client wrk curl jq python3)" >&2
    exit 1
  fi
done

# ---- parameters ------------------------------------------------------------------
# The command line that produced the output: the parameters the caller set.
COMMAND=""
for v in SCALE_USERS SCALE_TEAMS SCALE_TEAM_MEMBERS SCALE_REPOSITORIES SCALE_TAGGED_EVERY \
  SCALE_TAGS_PER_REPO SCALE_ACTIVITIES SCALE_EVENTS BENCH_SCALE_POOL BENCH_DURATION \
  BENCH_SCALE_BINARY BENCH_SCALE_API_CONNS BENCH_SCALE_DB_POOL BENCH_SCALE_OUTPUT; do
  if [ -n "${!v+set}" ]; then COMMAND+="$v=${!v} "; fi
done
COMMAND+="scripts/bench-scale.sh"

USERS=${SCALE_USERS:-100000}
TEAMS=${SCALE_TEAMS:-2000}
TEAM_MEMBERS=${SCALE_TEAM_MEMBERS:-20}
REPOSITORIES=${SCALE_REPOSITORIES:-1000000}
TAGGED_EVERY=${SCALE_TAGGED_EVERY:-10}
TAGS_PER_REPO=${SCALE_TAGS_PER_REPO:-1}
ACTIVITIES=${SCALE_ACTIVITIES:-1000000}
EVENTS=${SCALE_EVENTS:-1000000}
POOL=${BENCH_SCALE_POOL:-10000}
DURATION=${BENCH_DURATION:-10s}
API_CONNS=${BENCH_SCALE_API_CONNS:-8}
DB_POOL=${BENCH_SCALE_DB_POOL:-16}
OUTPUT=${BENCH_SCALE_OUTPUT:-$ROOT/BENCHMARKS-SCALE.md}
THREADS=2
CONNS=64
for v in USERS TEAMS TEAM_MEMBERS REPOSITORIES TAGGED_EVERY TAGS_PER_REPO ACTIVITIES EVENTS POOL API_CONNS DB_POOL; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "error: $v must be a non-negative integer, not '${!v}'" >&2; exit 1; }
done
if [ "$USERS" -lt 1 ] || [ "$POOL" -lt 1 ] || [ "$TAGGED_EVERY" -lt 1 ] || [ "$API_CONNS" -lt 1 ]; then
  echo "error: SCALE_USERS, BENCH_SCALE_POOL, SCALE_TAGGED_EVERY and BENCH_SCALE_API_CONNS must be at least 1" >&2
  exit 1
fi
[ "$TEAM_MEMBERS" -le "$USERS" ] || TEAM_MEMBERS=$USERS
[ "$POOL" -le "$USERS" ] || POOL=$USERS
ADMIN_URL=${PORTCULLIS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}

# The caller's own configuration must not leak in.
for v in $(compgen -e); do
  case $v in PORTCULLIS_* | PORTUS_* | REGISTRY_*) unset "$v" ;; esac
done

# ---- the binary ------------------------------------------------------------------
BIN=${BENCH_SCALE_BINARY:-target/release/portcullis}
if [ ! -x "$BIN" ]; then
  if [ -z "${BENCH_SCALE_BINARY:-}" ] && [ -x target/debug/portcullis ]; then
    echo "warning: target/release/portcullis is missing; measuring the DEBUG build target/debug/portcullis" >&2
    BIN=target/debug/portcullis
  elif [ "$BIN" = target/release/portcullis ]; then
    echo "== building (release): no binary yet"
    cargo build --release --locked -p portcullis
  else
    echo "error: BENCH_SCALE_BINARY=$BIN is not an executable file" >&2
    exit 1
  fi
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
case $BIN in
  */debug/*) BIN_KIND=debug ;;
  *) BIN_KIND=release ;;
esac

# ---- work folder, processes, database, clean-up -----------------------------------
W=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench-scale.XXXXXX")
DB=portcullis_scale_$$
DB_CREATED=""
PIDS=()
cleanup() {
  local status=$?
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$DB_CREATED" ] && [ "${BENCH_SCALE_KEEP_DB:-0}" = 1 ]; then
    echo "kept the database $DB (BENCH_SCALE_KEEP_DB=1): drop it with DROP DATABASE \"$DB\"" >&2
  elif [ -n "$DB_CREATED" ]; then
    psql "$ADMIN_URL" -qtAX -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null ||
      echo "warning: could not drop the database $DB" >&2
  fi
  if [ "$status" -ne 0 ]; then
    echo "benchmark failed; logs kept in $W" >&2
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql "$ADMIN_URL" -qtAX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\"" >/dev/null ||
  { echo "error: cannot create a database with $ADMIN_URL (set PORTCULLIS_TEST_DATABASE_URL to a postgres:// URL whose role may CREATE DATABASE)" >&2; exit 1; }
DB_CREATED=1
# The throwaway database's URL (the admin URL with its path replaced), and its server.
read -r DB_URL PG_SERVER < <(python3 - "$ADMIN_URL" "$DB" <<'EOF'
import sys
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
print(urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, "")), f"{u.hostname or 'localhost'}:{u.port or 5432}")
EOF
)
sql() { psql "$DB_URL" -qtAX -v ON_ERROR_STOP=1 -c "$1"; } # SQL: prints the rows, | between columns
PG_VERSION=$(sql "SHOW server_version")
PG_SETTINGS=$(sql "SELECT string_agg(name || ' ' || current_setting(name), ', ' ORDER BY name) FROM pg_settings
  WHERE name IN ('max_connections', 'shared_buffers', 'work_mem', 'effective_cache_size', 'synchronous_commit')")

ADMIN_PW=admin-password-1
ALICE_PW=alice-password-1
SERVICE=registry.scale.test:5000
NS=bench
CRED_CACHE_SECONDS=3600
PW_CHECKS=$(nproc)

export PORTCULLIS_DATA_DIR=$W/data
export PORTCULLIS_DATABASE_URL=$DB_URL
export PORTCULLIS_DATABASE_POOL=$DB_POOL
export PORTCULLIS_MACHINE_FQDN_VALUE=portcullis.bench
export PORTCULLIS_NOTIFICATIONS_SECRET=bench-notification-secret
# The bench instance's password policy (see the output): every request comes from
# 127.0.0.1, the warm-up logs POOL users in as fast as argon2 allows, and the cache must
# keep them for the warm-up and every run.
export PORTCULLIS_SECURITY_POLICY_PASSWORD_CHECKS_PER_MINUTE=0
export PORTCULLIS_SECURITY_POLICY_MAX_CONCURRENT_PASSWORD_CHECKS=$PW_CHECKS
export PORTCULLIS_SECURITY_POLICY_CREDENTIAL_CACHE_SECONDS=$CRED_CACHE_SECONDS
# The registry is only a row (nothing to sync from).
export PORTCULLIS_BACKGROUND_SYNC_ENABLED=false
export PORTCULLIS_LOG=warn
mkdir -p "$W/data"

# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

# phase NAME: notes the seconds since the previous phase ended (for the output).
PHASES="" PHASE_T0=$(date +%s%N) RUN_T0=$PHASE_T0
phase() {
  PHASES+="${PHASES:+, }$1 $(secs_since "$PHASE_T0") s"
  PHASE_T0=$(date +%s%N)
}
secs_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }

echo "== starting portcullis ($BIN_KIND build) on database $DB"
URL_main="" PID_main="" # set by start_portcullis
start_portcullis main
URL=$URL_main
PID=$PID_main
sleep 1
IDLE_RSS_KB=$(mem_kb "$PID" VmRSS)

# ---- seeding through the API ------------------------------------------------------
echo "== seeding through the API"
api() { # METHOD PATH AUTH-CURL-ARGS... BODY: prints the JSON answer, fails on HTTP errors
  local method=$1 path=$2 body=${*: -1}
  local auth=("${@:3:$#-3}")
  curl -sS --fail-with-body -X "$method" "$URL/api/v1$path" -H 'Content-Type: application/json' "${auth[@]}" -d "$body"
}
total() { # PATH CURL-AUTH-ARGS...: the X-Total header of a paginated list
  local path=$1
  shift
  curl -sS --fail -o /dev/null -D - "$@" "$URL$path" |
    awk -F': *' 'tolower($1) == "x-total" {sub(/\r$/, "", $2); print $2}'
}
ADMIN_TOKEN=$(api POST /users/bootstrap \
  "{\"user\":{\"username\":\"admin\",\"email\":\"admin@example.test\",\"password\":\"$ADMIN_PW\"}}" | jq -r .plain_token)
ADMIN_AUTH="Authorization: Bearer $ADMIN_TOKEN"
REGISTRY_ID=$(api POST /registries -H "$ADMIN_AUTH" \
  "{\"registry\":{\"name\":\"scale\",\"hostname\":\"$SERVICE\",\"use_ssl\":false},\"force\":true}" | jq -r .id)
api POST /users -H "$ADMIN_AUTH" \
  "{\"user\":{\"username\":\"alice\",\"email\":\"alice@example.test\",\"password\":\"$ALICE_PW\"}}" >/dev/null
# The public namespace of BENCHMARKS.md's row (a), made the same way.
api POST /teams -u "alice:$ALICE_PW" '{"name":"bench","description":"benchmark"}' >/dev/null
NS_ID=$(api POST /namespaces -u "alice:$ALICE_PW" "{\"name\":\"$NS\",\"team\":\"bench\"}" | jq -r .id)
api PUT "/namespaces/$NS_ID" -u "alice:$ALICE_PW" '{"namespace":{"visibility":"public"}}' >/dev/null
[ "$(sql "SELECT count(*) FROM users WHERE username = 'alice' AND password_hash LIKE '\$argon2%'")" = 1 ] ||
  { echo "error: alice's row has no argon2 password hash to copy" >&2; exit 1; }

# ---- bulk load --------------------------------------------------------------------
# Timestamps (unix ms) computed here: PostgreSQL would multiply the literals as 32-bit
# integers and overflow.
phase "start and API seeding"
NOW_MS=$(($(date +%s%N) / 1000000))
DAY_MS=86400000
USERS_SINCE=$((NOW_MS - 400 * DAY_MS))
TEAMS_SINCE=$((NOW_MS - 300 * DAY_MS))
REPOS_SINCE=$((NOW_MS - 200 * DAY_MS))
ACTIVITIES_SINCE=$((NOW_MS - 365 * DAY_MS))
ACTIVITIES_STEP=$((365 * DAY_MS / (ACTIVITIES > 0 ? ACTIVITIES : 1)))
EVENTS_SINCE=$((NOW_MS - 29 * DAY_MS))
EVENTS_STEP=$((29 * DAY_MS / (EVENTS > 0 ? EVENTS : 1)))
LOAD_ROWS=""
LOAD_T0=$(date +%s%N)
# load_step WHAT SQL: runs SQL (one statement) in a session of its own, times it and adds
# a row to the load table with the rows it inserted.
load_step() {
  local what=$1 t0 out rows secs
  echo "== load: $what"
  t0=$(date +%s%N)
  out=$(psql "$DB_URL" -X -v ON_ERROR_STOP=1 <<EOF
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
SET work_mem = '64MB';
$2;
EOF
  )
  secs=$(secs_since "$t0")
  rows=$(awk '$1 == "INSERT" {n = $3} END {if (n == "") print "—"; else print n}' <<<"$out")
  echo "   $rows rows, $secs s"
  LOAD_ROWS+="| $what | $rows | $secs |"$'\n'
}
SCALE_USER="email LIKE '%@scale.test'"
# Users su1 … suN, each with alice's password hash (one argon2 hash, so every one logs in
# with alice's password), as create_user makes them: the hidden team
# portus_personal_<id> (personal_team_name), its owner (role 2, Role::Owner), and the
# personal namespace named after the user (namespace_name_for_username: su<n> already
# is one) in the registry. Visibility: 1 in 10 public (2), 1 in 20 protected (1), the
# rest private (0).
load_step "users" "INSERT INTO users (username, email, display_name, password_hash, admin, enabled, bot,
    failed_attempts, locked_at, credential_version, created_at, updated_at)
  SELECT 'su' || g, 'su' || g || '@scale.test', NULL,
    (SELECT password_hash FROM users WHERE username = 'alice'), false, true, false, 0, NULL, 0,
    $USERS_SINCE + g, $USERS_SINCE + g
  FROM generate_series(1, $USERS) g"
load_step "personal teams (hidden)" "INSERT INTO teams (name, description, hidden, created_at, updated_at)
  SELECT 'portus_personal_' || u.id, '', true, u.created_at, u.created_at FROM users u WHERE u.$SCALE_USER ORDER BY u.id"
load_step "personal team owners (team_users)" "INSERT INTO team_users (team_id, user_id, role, created_at, updated_at)
  SELECT t.id, u.id, 2, u.created_at, u.created_at FROM users u
  JOIN teams t ON t.hidden AND t.name = 'portus_personal_' || u.id WHERE u.$SCALE_USER ORDER BY u.id"
load_step "personal namespaces" "INSERT INTO namespaces (registry_id, team_id, name, description, kind,
    visibility, user_id, created_at, updated_at)
  SELECT $REGISTRY_ID, t.id, lower(u.username), '', 'personal',
    CASE WHEN u.id % 10 = 0 THEN 2 WHEN u.id % 20 = 1 THEN 1 ELSE 0 END, u.id, u.created_at, u.created_at
  FROM users u JOIN teams t ON t.hidden AND t.name = 'portus_personal_' || u.id WHERE u.$SCALE_USER ORDER BY u.id"
# Teams scale-team-1 … with TEAM_MEMBERS members each (consecutive loaded users, wrapping
# around): the first an owner, the next 9 contributors, the rest viewers; a namespace
# team-<n> each, 1 in 4 public, 1 in 4 protected, half private.
load_step "teams" "INSERT INTO teams (name, description, hidden, created_at, updated_at)
  SELECT 'scale-team-' || g, 'team ' || g, false, $TEAMS_SINCE + g, $TEAMS_SINCE + g
  FROM generate_series(1, $TEAMS) g"
load_step "team members (team_users)" "INSERT INTO team_users (team_id, user_id, role, created_at, updated_at)
  SELECT t.id, u.id, CASE WHEN j = 0 THEN 2 WHEN j < 10 THEN 1 ELSE 0 END, t.created_at, t.created_at
  FROM generate_series(1, $TEAMS) g CROSS JOIN generate_series(0, $TEAM_MEMBERS - 1) j
  JOIN teams t ON NOT t.hidden AND t.name = 'scale-team-' || g
  JOIN users u ON u.username = 'su' || (((g - 1) * $TEAM_MEMBERS + j) % $USERS + 1)"
load_step "team namespaces" "INSERT INTO namespaces (registry_id, team_id, name, description, kind,
    visibility, user_id, created_at, updated_at)
  SELECT $REGISTRY_ID, t.id, 'team-' || g, 'namespace of team ' || g, 'team',
    CASE g % 4 WHEN 0 THEN 2 WHEN 1 THEN 1 ELSE 0 END, NULL, t.created_at, t.created_at
  FROM generate_series(1, $TEAMS) g JOIN teams t ON NOT t.hidden AND t.name = 'scale-team-' || g"
# Repositories app0, app1, … round-robin over every non-global namespace of the registry
# (the loaded ones and admin, alice, bench): namespace k (in id order) holds app<j> for
# every j with k + j * N < REPOSITORIES.
load_step "repositories" "INSERT INTO repositories (namespace_id, name, description, created_at, updated_at)
  SELECT n.id, 'app' || (g / c.n), '', $REPOS_SINCE + g, $REPOS_SINCE + g
  FROM (SELECT count(*) AS n FROM namespaces WHERE registry_id = $REGISTRY_ID AND kind <> 'global') c
  CROSS JOIN generate_series(0, $REPOSITORIES - 1) g
  JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM namespaces
        WHERE registry_id = $REGISTRY_ID AND kind <> 'global') n ON n.k = g % c.n"
# Tags v1 … on every TAGGED_EVERY-th repository, each its own single-platform image (the
# columns the worker fills from a manifest and its config).
load_step "tags" "INSERT INTO tags (repository_id, name, digest, media_type, image_id, size, platforms,
    author_id, author_name, pushed_at, pulled_at, created_at, updated_at)
  SELECT r.id, 'v' || k, 'sha256:' || md5(r.id || ':' || k) || md5(k || ':' || r.id),
    'application/vnd.oci.image.manifest.v1+json', 'sha256:' || md5('config' || r.id) || md5(r.id || 'config'),
    10000000 + r.id % 1000,
    '[{\"os\":\"linux\",\"architecture\":\"amd64\",\"digest\":\"sha256:' || md5(r.id || ':' || k) || md5(k || ':' || r.id)
      || '\",\"size\":' || (10000000 + r.id % 1000) || '}]',
    n.user_id, coalesce(u.username, 'admin'), r.created_at + k, NULL, r.created_at + k, r.created_at + k
  FROM repositories r JOIN namespaces n ON n.id = r.namespace_id LEFT JOIN users u ON u.id = n.user_id
  CROSS JOIN generate_series(1, $TAGS_PER_REPO) k
  WHERE r.id % $TAGGED_EVERY = 0"
# Activities: repository.push of a repository (in id order, wrapping around), by the
# namespace's owner or the admin, over the last year; the parameters push_tag writes.
load_step "activities" "INSERT INTO activities (key, owner_id, owner_name, trackable_type, trackable_id,
    recipient_type, recipient_id, namespace_id, team_id, parameters, created_at)
  SELECT 'repository.push', n.user_id, coalesce(u.username, 'admin'), 'repository', r.id, 'tag', NULL,
    n.id, n.team_id,
    json_build_object('digest', 'sha256:' || md5(g::text) || md5(r.id::text), 'namespace_name', n.name,
      'repository_name', r.name, 'tag_name', 'v' || (g % 7))::text,
    $ACTIVITIES_SINCE + g::bigint * $ACTIVITIES_STEP
  FROM (SELECT min(id) AS lo, count(*) AS n FROM repositories) b
  CROSS JOIN generate_series(0, $ACTIVITIES - 1) g
  JOIN repositories r ON r.id = b.lo + g % b.n
  JOIN namespaces n ON n.id = r.namespace_id LEFT JOIN users u ON u.id = n.user_id"
# Registry events, all processed (status done) push events over the last 29 days (the
# hourly cleanup deletes finished ones older than 30), with the event as data.
load_step "registry_events" "INSERT INTO registry_events (event_id, registry_id, status, action, repository,
    tag, digest, media_type, actor, request_host, data, attempts, error, occurred_at, received_at,
    processed_at)
  SELECT 'scale-' || g, $REGISTRY_ID, 'done', 'push', n.name || '/' || r.name, 'v' || (g % 7),
    'sha256:' || md5(g::text) || md5(r.id::text), 'application/vnd.oci.image.manifest.v1+json',
    coalesce(u.username, 'admin'), '$SERVICE',
    json_build_object('id', 'scale-' || g, 'action', 'push',
      'target', json_build_object('mediaType', 'application/vnd.oci.image.manifest.v1+json', 'size', 1030,
        'digest', 'sha256:' || md5(g::text) || md5(r.id::text), 'length', 1030,
        'repository', n.name || '/' || r.name,
        'url', 'http://$SERVICE/v2/' || n.name || '/' || r.name || '/manifests/sha256:' || md5(g::text) || md5(r.id::text),
        'tag', 'v' || (g % 7)),
      'request', json_build_object('id', md5('request' || g), 'addr', '10.0.0.1:40000', 'host', '$SERVICE',
        'method', 'PUT', 'useragent', 'docker/24.0.7 go/go1.20.10'),
      'actor', json_build_object('name', coalesce(u.username, 'admin')),
      'source', json_build_object('addr', 'registry:5000', 'instanceID', md5('instance')))::text,
    1, NULL, t.at, t.at + 5, t.at + 50
  FROM (SELECT min(id) AS lo, count(*) AS n FROM repositories) b
  CROSS JOIN generate_series(0, $EVENTS - 1) g
  CROSS JOIN LATERAL (SELECT $EVENTS_SINCE + g::bigint * $EVENTS_STEP AS at) t
  JOIN repositories r ON r.id = b.lo + (g::bigint * 7919) % b.n
  JOIN namespaces n ON n.id = r.namespace_id LEFT JOIN users u ON u.id = n.user_id"
# VACUUM as well as ANALYZE: autovacuum would otherwise start on the new tables during the
# runs; the checkpoint (allowed to fail for a role that may not) likewise.
load_step "VACUUM ANALYZE" "VACUUM ANALYZE"
psql "$DB_URL" -qtAX -c "CHECKPOINT" >/dev/null 2>&1 || echo "   (CHECKPOINT not allowed for this role; skipped)"
LOAD_SECS=$(secs_since "$LOAD_T0")
phase "bulk load"
LOADED_RSS_KB=$(mem_kb "$PID" VmRSS)

# What is in the database now, and how big it is.
COUNTS=""
for t in users teams team_users namespaces repositories tags activities registry_events; do
  COUNTS+="$t $(sql "SELECT count(*) FROM $t") "
done
echo "== rows: $COUNTS"
count_of() { awk -v t="$1" '{for (i = 1; i < NF; i += 2) if ($i == t) print $(i + 1)}' <<<"$COUNTS"; }
DB_SIZE_MB=$(sql "SELECT round(pg_database_size(current_database()) / 1048576.0, 1)")
TABLE_SIZES=$(sql "SELECT '| ' || c.relname || ' | ' || c.reltuples::bigint || ' | '
    || round(pg_relation_size(c.oid) / 1048576.0, 1) || ' | ' || round(pg_indexes_size(c.oid) / 1048576.0, 1)
    || ' | ' || round(pg_total_relation_size(c.oid) / 1048576.0, 1) || ' |'
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
  WHERE s.nspname = 'public' AND c.relkind = 'r'
  ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 10")
INDEX_SIZES=$(sql "SELECT '| ' || i.relname || ' | ' || t.relname || ' | ' || round(pg_relation_size(i.oid) / 1048576.0, 1) || ' |'
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace s ON s.oid = i.relnamespace WHERE s.nspname = 'public'
  ORDER BY pg_relation_size(i.oid) DESC LIMIT 10")

# ---- pools and checks ---------------------------------------------------------------
# POOL random loaded users with their personal namespace and its repository count.
POOL_FILE=$W/pool-users.txt
sql "SELECT u.username || ' ' || n.name || ' ' || (SELECT count(*) FROM repositories r WHERE r.namespace_id = n.id)
  FROM users u JOIN namespaces n ON n.user_id = u.id AND n.registry_id = $REGISTRY_ID
  WHERE u.$SCALE_USER ORDER BY random() LIMIT $POOL" >"$POOL_FILE"
PUBLIC_FILE=$W/pool-public.txt
sql "SELECT n.name || '/' || r.name FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
  WHERE n.visibility = 2 ORDER BY random() LIMIT $POOL" >"$PUBLIC_FILE"
SEARCH_FILE=$W/pool-search.txt
awk 'NR <= 1000 {print $1}' "$POOL_FILE" >"$SEARCH_FILE"
POOL_N=$(wc -l <"$POOL_FILE")
PUBLIC_N=$(wc -l <"$PUBLIC_FILE")
if [ "$POOL_N" -lt 1 ] || [ "$PUBLIC_N" -lt 1 ]; then
  echo "error: empty pools ($POOL_N users, $PUBLIC_N public repositories)" >&2
  exit 1
fi

FIRST_USER=$(awk 'NR == 1 {print $1}' "$POOL_FILE")

# The API sees what the database holds.
API_REPOS=$(total "/api/v1/repositories?per_page=1" -H "$ADMIN_AUTH")
DB_REPOS=$(sql "SELECT count(*) FROM repositories")
[ "$API_REPOS" = "$DB_REPOS" ] ||
  { echo "error: the API lists $API_REPOS repositories, the database holds $DB_REPOS" >&2; exit 1; }

# metric NAME LABEL: the sum of NAME's samples on GET /metrics whose labels contain LABEL
# (0 when there are none).
metric() {
  curl -sS --fail "$URL/metrics" |
    awk -v n="$1" -v l="$2" 'index($0, n "{") == 1 && index($0, l) {s += $NF} END {printf "%d", s}'
}

# warm MODE FILE CONCURRENCY: one token request per line of FILE, CONCURRENCY at once,
# each answer decoded and its grant checked (a 200 that grants less means the loaded data
# is wrong, and wrk could not tell): MODE token, lines "USERNAME NAMESPACE N", must grant
# pull,push on NAMESPACE/app0 with USERNAME's password; MODE anon, lines "NS/REPO", must
# grant pull without credentials. Sets WARM_OK and WARM_SECS; fails on any refusal.
warm() {
  local t0 out
  t0=$(date +%s%N)
  out=$(python3 - "$1" "$2" "$3" "$URL" "$SERVICE" "$ALICE_PW" <<'EOF'
import base64, concurrent.futures, json, sys, urllib.parse, urllib.request
mode, path, conc, url, service, password = sys.argv[1:7]

def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

def one(line):
    fields = line.split()
    if mode == "token":
        user, namespace = fields[0], fields[1]
        repo, want = f"{namespace}/app0", {"pull", "push"}
        headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    else:
        repo, want, headers = fields[0], {"pull"}, {}
    query = urllib.parse.urlencode({"service": service, "scope": f"repository:{repo}:{','.join(sorted(want))}"})
    request = urllib.request.Request(f"{url}/v2/token?{query}", headers=headers)
    with urllib.request.urlopen(request, timeout=120) as answer:
        granted = set()
        for access in claims(json.load(answer)["token"]).get("access", []):
            if access.get("name") == repo:
                granted |= set(access.get("actions", []))
    return None if want <= granted else f"{line.strip()}: granted {sorted(granted)}"

lines = [l for l in open(path) if l.strip()]
with concurrent.futures.ThreadPoolExecutor(int(conc)) as pool:
    refused = [r for r in pool.map(one, lines) if r]
for r in refused[:5]:
    print(f"refused: {r}", file=sys.stderr)
print(len(lines) - len(refused))
sys.exit(1 if refused else 0)
EOF
  ) || { echo "error: ($1) token requests of $2 were refused or granted too little" >&2; exit 1; }
  WARM_OK=$out
  WARM_SECS=$(secs_since "$t0")
}

phase "counts, sizes, pools and checks"
if [ "${BENCH_SCALE_LOAD_ONLY:-0}" = 1 ]; then
  echo "== loaded (BENCH_SCALE_LOAD_ONLY=1): stopping before the runs"
  exit 0
fi

# (l): every pool user's first login, a cache miss and an argon2id check each; first a
# tenth of them, to read the memory of the caches with and without the rest.
echo "== (l) first logins of $POOL_N pool users ($((PW_CHECKS * 2)) at once)"
WARM_BASE=$(((POOL_N + 9) / 10))
head -n "$WARM_BASE" "$POOL_FILE" >"$W/pool-first.txt"
tail -n +"$((WARM_BASE + 1))" "$POOL_FILE" >"$W/pool-rest.txt"
warm token "$W/pool-first.txt" $((PW_CHECKS * 2))
LOGIN_OK=$WARM_OK
LOGIN_SECS=$WARM_SECS
sleep 3 # let the allocator settle before reading the resident size
BASE_RSS_KB=$(mem_kb "$PID" VmRSS)
CACHED_USERS=$((POOL_N - WARM_BASE))
if [ "$CACHED_USERS" -gt 0 ]; then
  warm token "$W/pool-rest.txt" $((PW_CHECKS * 2))
  LOGIN_OK=$((LOGIN_OK + WARM_OK))
  LOGIN_SECS=$(awk -v a="$LOGIN_SECS" -v b="$WARM_SECS" 'BEGIN {printf "%.2f", a + b}')
fi
LOGIN_RATE=$(awk -v n="$LOGIN_OK" -v s="$LOGIN_SECS" 'BEGIN {printf "%.0f", n / s}')
sleep 3
WARM_RSS_KB=$(mem_kb "$PID" VmRSS)
WARM_HWM_KB=$(mem_kb "$PID" VmHWM)

echo "== checking $PUBLIC_N public repositories anonymously"
warm anon "$PUBLIC_FILE" 8

# ---- runs ----------------------------------------------------------------------------
# commits: xact_commit of the database. Backends report their counts when idle, at the
# latest 10 s after the last transaction, so wait for that first.
commits() { sleep 11; sql "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }

export BENCH_SCALE_SERVICE=$SERVICE BENCH_SCALE_PASSWORD=$ALICE_PW
LUA=$ROOT/scripts/bench-scale.lua
phase "warm-up (logins and anonymous checks)"
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)

MISSES_2=$(metric portcullis_credential_cache_lookups_total 'result="miss"')
BENCH_SCALE_MODE=token BENCH_SCALE_FILE=$POOL_FILE COMMITS=1 bench t1 "$CONNS" "$URL/" -s "$LUA"
T1_MISSES=$(($(metric portcullis_credential_cache_lookups_total 'result="miss"') - MISSES_2))

TOKEN_PATH="/v2/token?service=$SERVICE&scope=repository:$NS/app:pull"
BASIC_PW="Authorization: Basic $(printf 'alice:%s' "$ALICE_PW" | base64 -w0)"
check t2 200 -H "$BASIC_PW" "$URL$TOKEN_PATH"
COMMITS=1 bench t2 "$CONNS" "$URL$TOKEN_PATH" -H "$BASIC_PW"

BENCH_SCALE_MODE=anon BENCH_SCALE_FILE=$PUBLIC_FILE COMMITS=1 bench t3 "$CONNS" "$URL/" -s "$LUA"
TOKEN_HWM_KB=$(mem_kb "$PID" VmHWM)
TOKEN_RSS_KB=$(mem_kb "$PID" VmRSS)

# API and web UI rows: fewer connections (an admin's listing is not 64 clients at once)
# and a 10 s timeout instead of wrk's 2 s, so that a slow answer shows as latency.
API_PAGES=$(((API_REPOS + 24) / 25))
check a1 200 -H "$ADMIN_AUTH" "$URL/api/v1/repositories?per_page=25&page=$API_PAGES"
BENCH_SCALE_MODE=page BENCH_SCALE_PATH="/api/v1/repositories?per_page=25&page=" BENCH_SCALE_PAGES=$API_PAGES \
  bench a1 "$API_CONNS" "$URL/" -s "$LUA" --timeout 10s -H "$ADMIN_AUTH"

read -r SEARCH_TERM <"$SEARCH_FILE"
check a2 200 -H "$ADMIN_AUTH" "$URL/api/v1/repositories?per_page=25&q=$SEARCH_TERM"
SEARCH_HITS=$(total "/api/v1/repositories?per_page=1&q=$SEARCH_TERM" -H "$ADMIN_AUTH")
BENCH_SCALE_MODE=search BENCH_SCALE_FILE=$SEARCH_FILE BENCH_SCALE_PATH="/api/v1/repositories?per_page=25&q=" \
  bench a2 "$API_CONNS" "$URL/" -s "$LUA" --timeout 10s -H "$ADMIN_AUTH"

API_NAMESPACES=$(total "/api/v1/namespaces?per_page=1" -H "$ADMIN_AUTH")
NS_PAGES=$(((API_NAMESPACES + 24) / 25))
check a4 200 -H "$ADMIN_AUTH" "$URL/api/v1/namespaces?per_page=25&page=$NS_PAGES"
BENCH_SCALE_MODE=page BENCH_SCALE_PATH="/api/v1/namespaces?per_page=25&page=" BENCH_SCALE_PAGES=$NS_PAGES \
  bench a4 "$API_CONNS" "$URL/" -s "$LUA" --timeout 10s -H "$ADMIN_AUTH"

# (a3): the web UI's repository list, signed in as the first pool user (a session cookie
# from the sign-in form, as scripts/bench.sh does), a random page of what it may pull.
JAR=$W/web-cookies.txt
WEB_CSRF=$(curl -sS --fail -c "$JAR" "$URL/users/sign_in" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p')
WEB_CSRF=${WEB_CSRF%%$'\n'*} # the first form's
check a3-sign-in 303 -b "$JAR" -c "$JAR" --data-urlencode "csrf=$WEB_CSRF" --data-urlencode "username=$FIRST_USER" \
  --data-urlencode "password=$ALICE_PW" "$URL/users/sign_in"
WEB_COOKIE="Cookie: portcullis_session=$(awk '$6 == "portcullis_session" {print $7}' "$JAR")"
UI_VISIBLE=$(total "/api/v1/repositories?per_page=1" -u "$FIRST_USER:$ALICE_PW")
UI_PER_PAGE=10 # pagination.per_page
UI_PAGES=$(((UI_VISIBLE + UI_PER_PAGE - 1) / UI_PER_PAGE))
[ "$UI_PAGES" -ge 1 ] || UI_PAGES=1
check a3 200 -H "$WEB_COOKIE" "$URL/repositories?page=$UI_PAGES"
curl -sS --fail -H "$WEB_COOKIE" "$URL/repositories?page=1" >"$W/web-page.html"
grep -q 'href="/repositories/[0-9]' "$W/web-page.html" ||
  { echo "error: (a3) the repositories page links no repository" >&2; exit 1; }
BENCH_SCALE_MODE=page BENCH_SCALE_PATH="/repositories?page=" BENCH_SCALE_PAGES=$UI_PAGES \
  bench a3 "$API_CONNS" "$URL/" -s "$LUA" --timeout 10s -H "$WEB_COOKIE"
# First pages, where people look: (a5) the API's, (a6) the web UI's.
bench a5 "$API_CONNS" "$URL/api/v1/repositories?per_page=25&page=1" --timeout 10s -H "$ADMIN_AUTH"
bench a6 "$API_CONNS" "$URL/repositories?page=1" --timeout 10s -H "$WEB_COOKIE"

FINAL_RSS_KB=$(mem_kb "$PID" VmRSS)
FINAL_HWM_KB=$(mem_kb "$PID" VmHWM)
phase "runs (incl. 11 s waits for pg_stat_database)"

# (r2), last because it changes the data: a second registry, which create_registry gives a
# personal namespace for every user with a personal team, in one transaction.
echo "== (r2) adding a second registry"
R2_T0=$(date +%s%N)
R2_ID=$(api POST /registries -H "$ADMIN_AUTH" \
  '{"registry":{"name":"second","hostname":"registry2.scale.test:5000","use_ssl":false},"force":true}' | jq -r .id)
R2_SECS=$(secs_since "$R2_T0")
R2_NAMESPACES=$(sql "SELECT count(*) FROM namespaces WHERE registry_id = $R2_ID AND kind = 'personal'")
echo "   $R2_NAMESPACES personal namespaces in $R2_SECS s"
phase "(r2)"
TOTAL_SECS=$(secs_since "$RUN_T0")

# ---- BENCHMARKS-SCALE.md ----------------------------------------------------------------
MACHINE="nproc $(nproc); $(free -h | awk '/^Mem:/ {print "memory " $2 " total, " $7 " available"}'); $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then REV="$REV (with uncommitted changes)"; fi
# BENCHMARKS.md's row (a), for (t2).
ROW_A=$(awk -F'|' '$2 ~ /^ *\(a\) *$/ {gsub(/ /, "", $5); print $5; exit}' "$ROOT/BENCHMARKS.md" 2>/dev/null || true)
per_entry() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}'; }

row() { # KEY DESCRIPTION CONNECTIONS
  local k=$1 what=$2
  local rps=RPS_$k p50=P50_$k p99=P99_$k err=ERR_$k
  local errors=${!err}
  if [ "$errors" != 0 ]; then
    what="$what — **has errors, numbers not meaningful**"
    errors="**$errors**"
  fi
  printf '| (%s) | %s | %s | %s | %s | %s | %s |\n' "$k" "$what" "$3" "${!rps}" "${!p50}" "${!p99}" "$errors"
}
# shellcheck disable=SC2154 # ERR_<key> and the other per-row values are set by bench (printf -v)
ALL_ERRORS=$((ERR_t1 + ERR_t2 + ERR_t3 + ERR_a1 + ERR_a2 + ERR_a4 + ERR_a3))

# shellcheck disable=SC2154 # RPS_<key>, REQ_<key>, CPR_<key>, … are set by bench (printf -v)
{
  echo "# Benchmarks at scale (PostgreSQL)"
  echo
  echo "Generated by \`scripts/bench-scale.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') — the whole file is rewritten by every run."
  echo
  if [ "$BIN_KIND" = debug ]; then
    echo "> **WARNING: these numbers are from a DEBUG build** ($BIN). They are much lower than a"
    echo "> release build's and must not be compared with BENCHMARKS.md or used for capacity planning."
    echo
  fi
  echo "- Command: \`$COMMAND\`"
  echo "- Machine: $MACHINE"
  echo "- Portcullis: $BIN_KIND build (\`${BIN#"$ROOT"/}\`), revision $REV, ES256 keys; one \`portcullis serve\` (worker embedded), \`database.pool\` = $DB_POOL"
  echo "- PostgreSQL $PG_VERSION at $PG_SERVER ($PG_SETTINGS); $(wrk --version 2>&1 | head -1 | awk '{print "wrk " $2}')"
  echo "- Bench instance's settings beyond the defaults: \`security_policy.password_checks_per_minute\` = 0 (off: every request comes from 127.0.0.1),"
  echo "  \`security_policy.max_concurrent_password_checks\` = $PW_CHECKS (nproc; default 2), \`security_policy.credential_cache_seconds\` = $CRED_CACHE_SECONDS"
  echo "  (default 60: the warm-up and the runs take longer than that), \`background.sync.enabled\` = false (the registry is only a row;"
  echo "  \`security_policy.authorization_cache_seconds\` keeps its default 2)."
  echo "- Load average (1, 5, 15 min) just before the runs: $LOAD_BEFORE; wrk, PostgreSQL and Portcullis share the $(nproc) CPUs."
  echo
  echo "## Data"
  echo
  echo "Loaded by SQL (generate_series) into a fresh database after \`portcullis serve\` migrated it and the API created the admin, the"
  echo "registry \`$SERVICE\`, alice, and alice's public namespace \`$NS\`. Every loaded user has alice's password hash, so all of them log in"
  echo "with one password; each has its hidden personal team \`portus_personal_<id>\` (owner) and a personal namespace named after it (1 in 10"
  echo "public, 1 in 20 protected, the rest private). Teams have $TEAM_MEMBERS members (1 owner, up to 9 contributors, the rest viewers) and a"
  echo "namespace each (1 in 4 public, 1 in 4 protected). Repositories \`app0\`, \`app1\`, … are spread round-robin over all non-global namespaces"
  echo "(so consecutive ids, and names in order, are in different namespaces: the worst case for the listings, which read each namespace on a page);"
  echo "1 in $TAGGED_EVERY has $TAGS_PER_REPO tag(s). Activities are \`repository.push\` over the last year, registry events finished (\`done\`) pushes"
  echo "over the last 29 days."
  echo
  echo "| load step | rows | seconds |"
  echo "| --- | ---: | ---: |"
  printf '%s' "$LOAD_ROWS"
  echo "| **all (incl. counting)** | | **$LOAD_SECS** |"
  echo
  echo "Database size: $DB_SIZE_MB MB. Biggest tables (rows as estimated by ANALYZE):"
  echo
  echo "| table | rows | table MB | indexes MB | total MB (pg_total_relation_size) |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  echo "$TABLE_SIZES"
  echo
  echo "| biggest indexes | table | MB |"
  echo "| --- | --- | ---: |"
  echo "$INDEX_SIZES"
  echo
  echo "## Results"
  echo
  echo "\`wrk -t$THREADS -c<connections> -d$DURATION --latency\` after a 2 s warm-up, over 127.0.0.1; token rows with wrk's default 2 s timeout,"
  echo "API and UI rows with \`--timeout 10s\`. Random choices per request: scripts/bench-scale.lua."
  echo
  echo "| # | what | connections | requests/s | p50 ms | p99 ms | errors |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
  row t1 "token, Basic auth of a random one of $POOL_N loaded users (password cached), pull,push in its personal namespace" "$CONNS"
  row t2 "token, Basic alice:password, pull of public \`$NS/app\` (the request of BENCHMARKS.md (a))" "$CONNS"
  row t3 "token, anonymous pull of a random one of $PUBLIC_N public repositories" "$CONNS"
  row a1 "API \`GET /api/v1/repositories?per_page=25&page=<random 1..$API_PAGES>\` as the admin" "$API_CONNS"
  row a2 "API \`GET /api/v1/repositories?per_page=25&q=<random pool username>\` as the admin (search)" "$API_CONNS"
  row a4 "API \`GET /api/v1/namespaces?per_page=25&page=<random 1..$NS_PAGES>\` as the admin" "$API_CONNS"
  row a3 "web UI \`GET /repositories?page=<random 1..$UI_PAGES>\` signed in as \`$FIRST_USER\`" "$API_CONNS"
  row a5 "API \`GET /api/v1/repositories?per_page=25&page=1\` as the admin" "$API_CONNS"
  row a6 "web UI \`GET /repositories?page=1\` signed in as \`$FIRST_USER\`" "$API_CONNS"
  echo
  if [ "$ALL_ERRORS" = 0 ]; then
    echo "\"errors\" counts non-2xx answers and socket errors (timeouts included); every row has 0."
  else
    echo "\"errors\" counts non-2xx answers and socket errors (timeouts included); **rows with errors are marked and their numbers are not meaningful**."
  fi
  echo
  echo "- (t1): the token grants were checked before the runs: each of the $POOL_N pool users got \`pull,push\` on \`<its namespace>/app0\`,"
  echo "  each of the $PUBLIC_N public repositories \`pull\` anonymously. Credential cache misses during (t1): $T1_MISSES (of $REQ_t1 requests)."
  echo "- (t2)/(a): $RPS_t2 req/s here against ${ROW_A:-n/a} req/s in BENCHMARKS.md (a) (SQLite, small data): ratio $(ratio "$RPS_t2" "${ROW_A:-0}")."
  echo "- (a1): $API_REPOS repositories listed by the API (= the database's count); (a2): the first search term, \`$SEARCH_TERM\`, matches $SEARCH_HITS;"
  echo "  (a4): $API_NAMESPACES namespaces; (a3): $UI_VISIBLE repositories visible to \`$FIRST_USER\`, $UI_PER_PAGE per page."
  echo
  echo "### Cold cache: password logins"
  echo
  echo "Before (t1) every pool user logged in once (\`GET /v2/token\`, $((PW_CHECKS * 2)) clients at once, each answer checked):"
  echo "each a cache miss and one argon2id check, at most $PW_CHECKS at a time."
  echo
  echo "| # | what | logins | seconds | logins/s |"
  echo "| --- | --- | ---: | ---: | ---: |"
  echo "| (l) | first login of each pool user (credential cache cold) | $LOGIN_OK | $LOGIN_SECS | $LOGIN_RATE |"
  echo
  echo "### Database round trips per token request"
  echo
  echo "\`xact_commit\` of \`pg_stat_database\` (every statement outside a transaction counts as one) before and after the measured run"
  echo "(each read 11 s after the last request, when the backends have reported), divided by the requests of the run. It includes"
  echo "the embedded worker's few polls meanwhile."
  echo
  echo "| # | requests | commits | commits per request |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| (t1) | $REQ_t1 | $COMMITS_t1 | $CPR_t1 |"
  echo "| (t2) | $REQ_t2 | $COMMITS_t2 | $CPR_t2 |"
  echo "| (t3) | $REQ_t3 | $COMMITS_t3 | $CPR_t3 |"
  echo
  echo "## Memory"
  echo
  echo "| memory of the \`portcullis serve\` process (/proc/PID/status) | MB |"
  echo "| --- | ---: |"
  echo "| (m0) idle, VmRSS right after start | $(mb "$IDLE_RSS_KB") |"
  echo "| (m1) VmRSS after the load (the process did nothing meanwhile) | $(mb "$LOADED_RSS_KB") |"
  echo "| (m2a) VmRSS 3 s after the first $WARM_BASE pool users logged in | $(mb "$BASE_RSS_KB") |"
  echo "| (m2) VmRSS 3 s after all $POOL_N logged in: the caches hold the pool | $(mb "$WARM_RSS_KB") |"
  echo "| (m3) peak, VmHWM after the warm-up ($PW_CHECKS argon2 checks at once) | $(mb "$WARM_HWM_KB") |"
  echo "| (m4) VmRSS / VmHWM after (t1)–(t3) | $(mb "$TOKEN_RSS_KB") / $(mb "$TOKEN_HWM_KB") |"
  echo "| (m5) VmRSS / VmHWM after all runs | $(mb "$FINAL_RSS_KB") / $(mb "$FINAL_HWM_KB") |"
  echo
  if [ "$CACHED_USERS" -gt 0 ]; then
    PER_ENTRY=$(per_entry "$BASE_RSS_KB" "$WARM_RSS_KB" "$CACHED_USERS")
    echo "((m2) − (m2a)) / $CACHED_USERS users: $PER_ENTRY bytes per pool user, i.e. one credential cache entry"
    echo "plus one authorization cache entry (\`(namespace, user)\`), with the allocator's overhead."
    if [ "$PER_ENTRY" -le 0 ]; then
      echo "**Not measurable at this pool size**: the growth is below the allocator's noise (freed argon2 memory reused)."
    fi
  fi
  echo
  echo "## Adding a registry at scale"
  echo
  echo "Last, because it changes the data: \`POST /api/v1/registries\` (\`force\`, no reachability check) of a second registry, which"
  echo "creates its global team and namespace and a personal namespace for every user with a personal team, in one transaction."
  echo
  echo "| # | what | personal namespaces created | seconds |"
  echo "| --- | --- | ---: | ---: |"
  echo "| (r2) | a second registry | $R2_NAMESPACES | $R2_SECS |"
  echo
  echo "## Duration"
  echo
  echo "$TOTAL_SECS s from starting \`portcullis serve\` to here: $PHASES."
} >"$OUTPUT"

echo "== wrote $OUTPUT"
cat "$OUTPUT"
