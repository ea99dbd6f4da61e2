#!/usr/bin/env bash
# Checks the deployment files: the Helm chart (deploy/helm/portcullis), the Compose
# example (examples/compose) and the systemd units (examples/systemd). docs/DEPLOYMENT.md
# says what each check proves. Exits non-zero on any failure; nothing is skipped in CI.
#
# Tools go to target/deploy-tools (or $DEPLOY_TOOLS_DIR): a Python venv with the pinned
# scripts/check-deploy/requirements.txt (Helm v4's SDK, kubernetes-validate,
# check-jsonschema, podman-compose) and node_modules from
# scripts/check-deploy/package-lock.json (the ServiceMonitor schema); from Debian, when
# missing: ShellCheck, docker-registry, openssl, systemd, Node.js. A second run reuses
# them.
#
# The checks of the Compose example's setup.sh (end to end with a registry) and of the
# settings names run the portcullis binary: $PORTCULLIS_BIN, else target/debug/portcullis
# (built by `cargo test`/`cargo build`). Without one they are reported as not run, and
# with CI=true that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=${DEPLOY_TOOLS_DIR:-$root/target/deploy-tools}
here=$root/scripts/check-deploy
kube_versions=(1.29.0 1.37.0)
started=$SECONDS
failed=()
skipped=()

section() { printf '\n== %s\n' "$*"; }
# check NAME MESSAGE COMMAND...: runs COMMAND; prints MESSAGE (when not empty) if it
# succeeds, else records NAME as failed. Never stops the script: every check runs.
check() {
  local name=$1 message=$2
  shift 2
  if "$@"; then
    [ -z "$message" ] || echo "ok   $message"
  else
    failed+=("$name")
    echo "FAIL $name"
  fi
}

section "tools (in ${tools#"$root"/})"
packages=()
command -v openssl >/dev/null || packages+=(openssl)
command -v systemd-analyze >/dev/null || packages+=(systemd)
command -v shellcheck >/dev/null || packages+=(shellcheck)
command -v docker-registry >/dev/null || packages+=(docker-registry)
# podman-compose asks `podman version` even for `config`; on a fresh machine nothing
# before this script has installed podman.
command -v podman >/dev/null || packages+=(podman)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
command -v python3 >/dev/null || packages+=(python3 python3-venv)
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing ${packages[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${packages[@]}"
fi
mkdir -p "$tools"

venv=$tools/venv
stamp=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "python venv: installing scripts/check-deploy/requirements.txt"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
  echo "$stamp" >"$venv/.stamp"
else
  echo "python venv: up to date"
fi

node_dir=$tools/node
stamp=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$node_dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "node_modules: npm ci"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --silent --no-audit --no-fund)
  echo "$stamp" >"$node_dir/.stamp"
else
  echo "node_modules: up to date"
fi

binary=${PORTCULLIS_BIN:-$root/target/debug/portcullis}
if [ -x "$binary" ]; then
  echo "portcullis binary: $binary"
else
  binary=
fi
not_run() {
  if [ "${CI:-}" = true ]; then
    failed+=("$1 (no portcullis binary)")
    echo "FAIL $1: needs the portcullis binary (target/debug/portcullis or PORTCULLIS_BIN); run this after cargo test"
  else
    skipped+=("$1")
    echo "NOT RUN $1: needs the portcullis binary (target/debug/portcullis or PORTCULLIS_BIN); build it to run it"
  fi
}

section "shell scripts (shellcheck $(shellcheck --version | sed -n 's/^version: //p'))"
check shellcheck "shellcheck: scripts/check-deploy.sh examples/compose/setup.sh" \
  shellcheck scripts/check-deploy.sh examples/compose/setup.sh

section "helm chart (deploy/helm/portcullis)"
rendered=$tools/rendered
rm -rf "$rendered"
check helm "" "$venv/bin/python" "$here/chart.py" deploy/helm/portcullis "$rendered" "$node_dir" "${kube_versions[@]}"

section "compose (examples/compose)"
check compose-schema "compose: compose.yaml is valid against the Compose Specification schema (check-jsonschema $("$venv/bin/check-jsonschema" --version | awk '{print $NF}'))" \
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec examples/compose/compose.yaml
if [ -n "$binary" ]; then
  check compose "" "$venv/bin/python" "$here/compose.py" examples/compose "$binary" "$(command -v docker-registry)"
else
  not_run "compose setup.sh and end to end"
fi

section "systemd (examples/systemd, $(systemd-analyze --version | head -1))"
systemd_check() {
  local fake status=0 out
  # An image of the root with the units, the system's own units (for the targets they
  # name) and a stand-in for /usr/local/bin/portcullis, which verify looks for.
  fake=$(mktemp -d)
  mkdir -p "$fake/etc/systemd/system" "$fake/usr/lib/systemd" "$fake/usr/local/bin"
  cp -a /usr/lib/systemd/system "$fake/usr/lib/systemd/"
  cp examples/systemd/portcullis.service examples/systemd/portcullis-worker.service "$fake/etc/systemd/system/"
  printf '#!/bin/sh\n' >"$fake/usr/local/bin/portcullis"
  chmod 755 "$fake/usr/local/bin/portcullis"
  for unit in portcullis.service portcullis-worker.service; do
    # verify reports unknown keys and bad values as warnings with exit 0: any output fails.
    if ! out=$(systemd-analyze verify --root="$fake" "$unit" 2>&1) || [ -n "$out" ]; then
      echo "systemd-analyze verify $unit:"
      echo "$out"
      status=1
    else
      echo "ok   systemd: verify $unit"
    fi
    # Exposure at most 2.0 of 10 ("OK"); the units score 1.2.
    if ! out=$(systemd-analyze security --offline=yes --root="$fake" --threshold=20 "$unit" 2>&1); then
      echo "systemd-analyze security $unit is above 2.0:"
      echo "$out" | tail -3
      status=1
    else
      echo "ok   systemd: security $unit: $(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: //p')"
    fi
  done
  rm -rf "$fake"
  # systemd and `. portcullis.env` in a shell must read the same: KEY=value, no quotes.
  if grep -vE '^(#.*|)$' examples/systemd/portcullis.env | grep -vE '^[A-Z][A-Z0-9_]*=[^"'"'"'$` ]*$'; then
    echo "examples/systemd/portcullis.env: the lines above are not plain KEY=value"
    status=1
  else
    echo "ok   systemd: portcullis.env is plain KEY=value lines"
  fi
  return $status
}
check systemd "" systemd_check

section "settings known to the binary"
if [ -n "$binary" ]; then
  check settings "" "$venv/bin/python" "$here/settings.py" "$binary" examples/compose/compose.yaml \
    examples/systemd/portcullis.env "$rendered"
else
  not_run "settings"
fi

section "result"
if [ ${#failed[@]} -gt 0 ]; then
  echo "check-deploy: failed: ${failed[*]} ($((SECONDS - started)) s)"
  exit 1
fi
if [ ${#skipped[@]} -gt 0 ]; then
  echo "check-deploy: the checks that ran passed; not run: ${skipped[*]} ($((SECONDS - started)) s)"
else
  echo "check-deploy: all checks passed ($((SECONDS - started)) s)"
fi
