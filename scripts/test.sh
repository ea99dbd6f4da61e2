#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this project's kind: installs the real
# components the tests run against (Debian's registry, skopeo, umoci, Chromium and its
# WebDriver, OpenLDAP's slapd, an aiosmtpd SMTP listener), then runs every test.
# PostgreSQL is found by the tests themselves: $PORTCULLIS_TEST_DATABASE_URL, else the
# server on 127.0.0.1:5432, else a throwaway cluster they start. Nothing is skipped: a missing component fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v docker-registry >/dev/null || packages+=(docker-registry)
command -v skopeo >/dev/null || packages+=(skopeo)
command -v umoci >/dev/null || packages+=(umoci)
command -v chromium >/dev/null || packages+=(chromium)
command -v chromedriver >/dev/null || packages+=(chromium-driver)
# The LDAP and SMTP servers the identity tests run against (crates/testkit: ldap, smtp);
# their test certificates are made in-process (crates/testkit/src/tls.rs).
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || packages+=(slapd)
command -v ldapadd >/dev/null || packages+=(ldap-utils)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || packages+=(python3-aiosmtpd)
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing ${packages[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${packages[@]}"
fi

cargo test --workspace --locked
# The deployment examples and the Helm chart, rendered and validated against the
# binary the tests just built (docs/DEPLOYMENT.md says how).
scripts/check-deploy.sh
# The official image (Containerfile), built with buildah from the binary the tests
# built, then run with podman against PostgreSQL (docs/CONTAINER.md).
scripts/image-smoke.sh target/debug/portcullis
