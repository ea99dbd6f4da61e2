# Shared by scripts/bench.sh and scripts/bench-scale.sh (sourced, not run). Expects
# W (work folder), BIN (the portcullis binary), PIDS (an array of started processes),
# THREADS and DURATION (wrk) to be set by the caller.
# shellcheck shell=bash

# start_portcullis NAME [VAR=VALUE...]: starts `portcullis serve` on a free port,
# sets PID_<NAME> and URL_<NAME> once it printed its `listening on` line.
start_portcullis() {
  local name=$1
  shift
  local out=$W/$name.stdout
  (cd "$W" && exec env PORTCULLIS_SERVER_LISTEN=127.0.0.1:0 "$@" "$BIN" serve >"$out" 2>"$W/$name.log") &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 1200); do
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

# mem_kb PID FIELD: a field of /proc/PID/status (VmRSS, VmHWM) in kB.
mem_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }

# check NAME EXPECTED-STATUS CURL-ARGS...: fails the run unless curl gets that status.
check() {
  local name=$1 want=$2
  shift 2
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' "$@")
  [ "$got" = "$want" ] || { echo "error: ($name) answered $got, expected $want" >&2; exit 1; }
}

# to_ms VALUE-WITH-UNIT: wrk latency (us/ms/s) in milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
    printf "%.2f", n }'
}

# bench KEY CONNECTIONS URL WRK-ARGS...: a 2 s warm-up, then the measured run; sets
# RPS_KEY, P50_KEY, P99_KEY, ERR_KEY (non-2xx/3xx responses + socket errors) and
# REQ_KEY; with COMMITS=1 (and a `commits` function printing the database's commit
# count) also CPR_KEY and COMMITS_KEY, the commits per request and in all.
bench() {
  local key=$1 conns=$2 url=$3
  shift 3
  echo "== ($key) $url, $conns connections"
  wrk -t"$THREADS" -c"$conns" -d2s "$@" "$url" >/dev/null
  local c0="" out
  if [ "${COMMITS:-}" = 1 ]; then c0=$(commits); fi
  out=$(wrk -t"$THREADS" -c"$conns" -d"$DURATION" --latency "$@" "$url")
  echo "$out" >"$W/wrk-$key.txt"
  echo "$out"
  local rps p50 p99 non2xx sockerr requests
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  sockerr=$(awk '/Socket errors:/ {s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  printf -v "RPS_$key" %s "$rps"
  printf -v "P50_$key" %s "$p50"
  printf -v "P99_$key" %s "$p99"
  printf -v "ERR_$key" %s "$((${non2xx:-0} + ${sockerr:-0}))"
  printf -v "REQ_$key" %s "$requests"
  if [ -n "$c0" ]; then
    local c1
    c1=$(commits)
    printf -v "CPR_$key" %s "$(awk -v a="$c0" -v b="$c1" -v n="$requests" 'BEGIN {printf "%.3f", (b - a) / n}')"
    printf -v "COMMITS_$key" %s "$((c1 - c0))"
  fi
}
