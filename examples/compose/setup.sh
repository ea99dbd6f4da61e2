#!/usr/bin/env bash
# Prepares examples/compose for `docker compose up` / `podman-compose up`:
#   ca/       a test CA (its key never leaves this folder)
#   certs/    the CA certificate, server certificates with SANs for Portcullis and the
#             registry, trust.pem (the host's roots plus the test CA)
#   secrets/  PostgreSQL password, database URL, notification secret, token signing key
#             and certificate, the TLS keys, and the registry's config.yml printed by
#             `portcullis registry-config`
#   .env      PORTCULLIS_HOSTNAME for compose's variable substitution
#
# Usage: ./setup.sh [HOSTNAME]
#   HOSTNAME: the name clients use for this machine (default: $PORTCULLIS_HOSTNAME, else
#   `hostname -f`). Portcullis is https://HOSTNAME:3000, the registry HOSTNAME:5000.
#
# `portcullis registry-config` runs with, in this order: $PORTCULLIS_BIN; `portcullis` on
# PATH; the image ($PORTCULLIS_IMAGE, default localhost/portcullis:latest) through
# $CONTAINER_ENGINE, docker or podman.
#
# Files that exist are kept, so running it again changes nothing; to start over, delete
# .env ca certs secrets (and `docker compose down -v` for the volumes).
set -euo pipefail
cd "$(dirname "$0")"

host=${1:-${PORTCULLIS_HOSTNAME:-$(hostname -f 2>/dev/null || hostname)}}
if ! [[ $host =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
  echo "setup.sh: \"$host\" is not a host name or IPv4 address" >&2
  exit 2
fi
case $host in
  localhost | 127.* | portcullis | registry | postgres | worker)
    echo "setup.sh: \"$host\" cannot be used: inside the compose network it would not name this machine;" >&2
    echo "give the name (or address) clients use to reach it, e.g. ./setup.sh \"\$(hostname -f)\"" >&2
    exit 2
    ;;
esac
if [ -f .env ]; then
  previous=$(sed -n 's/^PORTCULLIS_HOSTNAME=//p' .env)
  if [ "$previous" != "$host" ]; then
    echo "setup.sh: this folder was set up for \"$previous\", not \"$host\";" >&2
    echo "delete .env ca certs secrets to set it up again" >&2
    exit 2
  fi
fi
command -v openssl >/dev/null || {
  echo "setup.sh: openssl is needed" >&2
  exit 1
}

umask 077
mkdir -p ca certs secrets
chmod 700 ca secrets
chmod 755 certs

made() { echo "  wrote $1"; }
kept() { echo "  kept  $1"; }

# A name or an address, as it goes into subjectAltName.
san_of() {
  if [[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then echo "IP:$1"; else echo "DNS:$1"; fi
}

echo "certificates for $host"
if [ -f ca/ca.key ] && [ -f certs/ca.crt ]; then
  kept certs/ca.crt
else
  openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out ca/ca.key
  openssl req -new -x509 -key ca/ca.key -out certs/ca.crt -days 3650 \
    -subj "/CN=Portcullis compose example CA" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  chmod 400 ca/ca.key
  chmod 644 certs/ca.crt
  made certs/ca.crt
fi

# server_cert NAME SERVICE: certs/NAME.crt and secrets/NAME-tls.key, valid for the
# host name, the compose service name and loopback. Go (the registry) ignores the
# subject's CN, so the names are in subjectAltName.
server_cert() {
  local name=$1 service=$2
  if [ -f "certs/$name.crt" ] && [ -f "secrets/$name-tls.key" ]; then
    kept "certs/$name.crt"
    return
  fi
  local work
  work=$(mktemp -d)
  openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$work/key"
  openssl req -new -key "$work/key" -out "$work/csr" -subj "/CN=$host"
  cat >"$work/ext" <<EOF
subjectAltName=$(san_of "$host"),DNS:$service,DNS:localhost,IP:127.0.0.1,IP:::1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
EOF
  openssl x509 -req -in "$work/csr" -CA certs/ca.crt -CAkey ca/ca.key -CAcreateserial \
    -CAserial ca/ca.srl -out "certs/$name.crt" -days 825 -extfile "$work/ext" 2>/dev/null
  install -m 444 "$work/key" "secrets/$name-tls.key"
  rm -rf "$work"
  chmod 644 "certs/$name.crt"
  made "certs/$name.crt"
}
server_cert portcullis portcullis
server_cert registry registry

# The roots Portcullis trusts for outbound HTTPS: the host's (so webhooks to public
# receivers work) plus the test CA. Rewritten each run, as the host's roots change.
{
  for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    if [ -f "$bundle" ]; then
      cat "$bundle"
      break
    fi
  done
  cat certs/ca.crt
} >certs/trust.pem
chmod 644 certs/trust.pem

echo "secrets"
# secret NAME VALUE: secrets/NAME, unless it exists. Mode 0444 inside the 0700 folder:
# only you reach it on the host, and the containers' users (root for PostgreSQL and the
# registry, 65532 for Portcullis) can read the bind-mounted file.
secret() {
  if [ -f "secrets/$1" ]; then
    kept "secrets/$1"
  else
    printf '%s\n' "$2" >"secrets/$1"
    chmod 444 "secrets/$1"
    made "secrets/$1"
  fi
}
if [ -f secrets/postgres_password ]; then
  db_password=$(cat secrets/postgres_password)
else
  db_password=$(openssl rand -hex 24)
fi
secret postgres_password "$db_password"
secret PORTCULLIS_DATABASE_URL "postgres://portcullis:$db_password@postgres:5432/portcullis"
secret PORTCULLIS_NOTIFICATIONS_SECRET "$(openssl rand -hex 32)"

# The token signing key (ES256) and its self-signed certificate, the registry's
# rootcertbundle. Ten years: the registry refuses every token once it has expired.
if [ -f secrets/token.key ] && [ -f secrets/token.crt ]; then
  kept secrets/token.key
else
  work=$(mktemp -d)
  openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$work/key"
  openssl req -new -x509 -key "$work/key" -out "$work/crt" -days 3650 -subj "/CN=$host token signer"
  install -m 444 "$work/key" secrets/token.key
  install -m 444 "$work/crt" secrets/token.crt
  rm -rf "$work"
  made secrets/token.key
fi

if [ ! -f .env ]; then
  printf 'PORTCULLIS_HOSTNAME=%s\n' "$host" >.env
  chmod 644 .env
  made .env
else
  kept .env
fi

echo "registry configuration"
if [ -f secrets/registry-config.yml ]; then
  kept secrets/registry-config.yml
else
  args=(registry-config --registry registry:5000 --listen 0.0.0.0:5000
    --storage-dir /var/lib/registry --portcullis-url "https://$host:3000")
  image=${PORTCULLIS_IMAGE:-localhost/portcullis:latest}
  bin=${PORTCULLIS_BIN:-$(command -v portcullis || true)}
  out=$(mktemp)
  if [ -n "$bin" ]; then
    echo "  with $bin"
    # A clean environment and an empty working folder: only these settings count.
    scratch=$(mktemp -d)
    here=$PWD
    (cd "$scratch" && env -i PATH="$PATH" PORTCULLIS_DATA_DIR="$scratch/data" \
      PORTCULLIS_SECRETS_DIR="$here/secrets" PORTCULLIS_MACHINE_FQDN_VALUE="$host" \
      PORTCULLIS_LOG=warn "$bin" "${args[@]}") >"$out"
    rm -rf "$scratch"
  else
    engine=${CONTAINER_ENGINE:-$(command -v docker || command -v podman || true)}
    if [ -z "$engine" ]; then
      echo "setup.sh: found neither a portcullis binary (PORTCULLIS_BIN) nor docker or podman" >&2
      exit 1
    fi
    echo "  with $image through $engine"
    "$engine" run --rm --network none \
      -e PORTCULLIS_MACHINE_FQDN_VALUE="$host" -e PORTCULLIS_LOG=warn \
      -v "$PWD/secrets/PORTCULLIS_NOTIFICATIONS_SECRET:/secrets/PORTCULLIS_NOTIFICATIONS_SECRET:ro" \
      -v "$PWD/secrets/token.key:/secrets/token.key:ro" \
      -v "$PWD/secrets/token.crt:/secrets/token.crt:ro" \
      "$image" "${args[@]}" >"$out"
  fi
  # rootcertbundle is the certificate's path where registry-config ran; in the registry
  # container it is mounted at /secrets/token.crt.
  sed -i 's|^\( *\)rootcertbundle: .*$|\1rootcertbundle: /secrets/token.crt|' "$out"
  grep -q '^    rootcertbundle: /secrets/token.crt$' "$out" || {
    echo "setup.sh: unexpected output of portcullis registry-config:" >&2
    cat "$out" >&2
    exit 1
  }
  install -m 444 "$out" secrets/registry-config.yml
  rm -f "$out"
  made secrets/registry-config.yml
fi

cat <<EOF

Done. Next:
  docker compose up -d                  (or: podman-compose up -d)
  open https://$host:3000/ and create the first admin (trust certs/ca.crt in the browser)
  docker compose exec portcullis portcullis admin create-registry --name main \\
    --hostname registry:5000 --use-ssl --external-hostname $host:5000
  trust the CA for the registry, e.g. for docker:
    sudo install -D -m 644 certs/ca.crt /etc/docker/certs.d/$host:5000/ca.crt
  docker login $host:5000
EOF
