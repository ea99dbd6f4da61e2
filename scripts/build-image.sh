#!/usr/bin/env bash
# Builds the official container image (Containerfile) with buildah, without a Docker
# engine: a FROM-scratch image holding the portcullis binary, exactly the shared
# libraries it links, the dynamic loader, CA roots, /etc/passwd and /etc/group with the
# user portcullis (65532), and the folders /data, /secrets, /certificates and /tmp.
#
#   scripts/build-image.sh [options] [BINARY]
#
# BINARY: default target/release/portcullis when it exists, else target/debug/portcullis.
# Options:
#   --tag NAME        image name (default $PORTCULLIS_IMAGE, else localhost/portcullis:latest)
#   --archive DEST    also write the image to DEST, a containers-transport reference:
#                     oci-archive:PATH, docker-archive:PATH (keeps HEALTHCHECK; `docker load`
#                     reads it), oci:DIR, docker://HOST/NAME:TAG (a push) ...
#   --store DIR       buildah's storage (vfs): DIR/root and DIR/run (default
#                     $PORTCULLIS_IMAGE_STORE, else target/containers)
#   --runroot DIR     buildah's run root instead of DIR/run (default
#                     $PORTCULLIS_IMAGE_RUNROOT); podman wants it under 50 characters
#   --no-strip        keep the binary's debug info (default: objcopy --strip-debug;
#                     function names stay, so panic backtraces still name them)
#   --prepare-only    only prepare the build context (target/image/context) and print
#                     its path, for another builder:
#                     docker build --format ... -f Containerfile target/image/context
#
# Installs buildah from Debian's packages when it is missing. Prints the image's size.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
repo=$PWD

tag=${PORTCULLIS_IMAGE:-localhost/portcullis:latest}
store=${PORTCULLIS_IMAGE_STORE:-$repo/target/containers}
runroot=${PORTCULLIS_IMAGE_RUNROOT:-}
archive=
strip=1
prepare_only=0
binary=
while [ $# -gt 0 ]; do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --archive) archive=$2; shift 2 ;;
    --store) store=$2; shift 2 ;;
    --runroot) runroot=$2; shift 2 ;;
    --no-strip) strip=0; shift ;;
    --prepare-only) prepare_only=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build-image: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$binary" ] || { echo "build-image: one BINARY only" >&2; exit 2; }
       binary=$1; shift ;;
  esac
done
# A relative BINARY is taken from where the script was called, else from the repository.
case $binary in
  ''|/*) ;;
  *) [ ! -e "$caller/$binary" ] || binary=$caller/$binary ;;
esac
if [ -z "$binary" ]; then
  if [ -x target/release/portcullis ]; then binary=target/release/portcullis
  else binary=target/debug/portcullis; fi
fi
fail() { echo "build-image: $*" >&2; exit 1; }
[ -f "$binary" ] && [ -x "$binary" ] || fail "$binary: no such executable (build it: cargo build --locked -p portcullis)"
binary=$(readlink -f "$binary")
started=$(date +%s.%N)

# Debian packages, installed only when missing (apt-get update first).
install_packages() {
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "build-image: installing $*"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >/dev/null
}
packages=()
[ -f /etc/ssl/certs/ca-certificates.crt ] || packages+=(ca-certificates)
command -v objcopy >/dev/null || packages+=(binutils)
[ "$prepare_only" = 1 ] || command -v buildah >/dev/null || packages+=(buildah)
[ ${#packages[@]} -eq 0 ] || install_packages "${packages[@]}"

# --- the build context: rootfs/ (owned by root) and owned/ (owned by 65532) ------------
context=$repo/target/image/context
rm -rf "$context"
rootfs=$context/rootfs
mkdir -p "$rootfs"/usr/local/bin "$rootfs"/etc/ssl/certs "$rootfs"/var/lib/dpkg/status.d \
  "$rootfs"/certificates "$rootfs"/secrets "$rootfs"/tmp "$context"/owned/data
chmod 1777 "$rootfs"/tmp
chmod 0755 "$rootfs"/certificates "$rootfs"/secrets
chmod 0700 "$context"/owned/data   # keys and secrets generated on first start live here

if [ "$strip" = 1 ]; then
  objcopy --strip-debug "$binary" "$rootfs"/usr/local/bin/portcullis
else
  cp "$binary" "$rootfs"/usr/local/bin/portcullis
fi
chmod 0755 "$rootfs"/usr/local/bin/portcullis

# Exactly the libraries the binary links, and the loader, at the paths ldd names them
# (the loader's path is the one written into the binary). A static binary needs none.
libs=$(ldd "$binary" 2>&1 || true)
if grep -q 'not found' <<<"$libs"; then
  fail "$binary links libraries this machine lacks:"$'\n'"$libs"
fi
lib_paths=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs")
packages_of_libs=()
for lib in $lib_paths; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
  # The Debian package that ships it: its status entry (for image scanners, as
  # distroless images carry) and its copyright file (glibc is LGPL).
  pkg=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1 || true)
  [ -z "$pkg" ] || packages_of_libs+=("$pkg")
done
for pkg in $(printf '%s\n' "${packages_of_libs[@]}" | sort -u); do
  dpkg-query -s "$pkg" >"$rootfs/var/lib/dpkg/status.d/$pkg"
  name=${pkg%%:*}
  if [ -f "/usr/share/doc/$name/copyright" ]; then
    mkdir -p "$rootfs/usr/share/doc/$name"
    cp "/usr/share/doc/$name/copyright" "$rootfs/usr/share/doc/$name/copyright"
  fi
done

cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs"/etc/ssl/certs/ca-certificates.crt
# Which distribution the libraries are from, as distroless images say it (scanners read
# it together with status.d).
[ ! -f /etc/os-release ] || cp -L /etc/os-release "$rootfs"/etc/os-release
cat >"$rootfs"/etc/passwd <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
portcullis:x:65532:65532:portcullis:/data:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$rootfs"/etc/group <<'EOF'
root:x:0:
portcullis:x:65532:
nogroup:x:65534:
EOF
# glibc's resolver (getaddrinfo) reads these; the container engine mounts its own
# /etc/hosts and /etc/resolv.conf over the defaults.
cat >"$rootfs"/etc/nsswitch.conf <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs"/etc/hosts
chmod 0644 "$rootfs"/etc/passwd "$rootfs"/etc/group "$rootfs"/etc/nsswitch.conf "$rootfs"/etc/hosts
[ ! -f "$rootfs"/etc/os-release ] || chmod 0644 "$rootfs"/etc/os-release
[ "$(id -u)" -ne 0 ] || chown -R 0:0 "$rootfs"

if [ "$prepare_only" = 1 ]; then
  echo "$context"
  exit 0
fi

# --- build ------------------------------------------------------------------------------
version=$("$binary" --version | awk '{print $2}')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || revision="$revision-dirty"
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$store"
runroot=${runroot:-$store/run}
sto=(--root "$store/root" --runroot "$runroot" --storage-driver vfs)
# --format docker: the OCI image format has no HEALTHCHECK; buildah drops it there.
buildah "${sto[@]}" bud --quiet --format docker --isolation chroot --layers=false \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  --build-arg "CREATED=$created" \
  -f "$repo/Containerfile" -t "$tag" "$context" >/dev/null
buildah "${sto[@]}" rmi --prune >/dev/null 2>&1 || true   # the previous build's image, now untagged

if [ -n "$archive" ]; then
  case $archive in
    *:*) ;;
    *) fail "--archive $archive: expected TRANSPORT:PATH, e.g. oci-archive:portcullis.tar" ;;
  esac
  case $archive in
    oci-archive:*|docker-archive:*) rm -f "${archive#*:}" ;;   # buildah appends otherwise
  esac
  buildah "${sto[@]}" push --quiet "$tag" "$archive" >/dev/null
  echo "build-image: wrote $archive"
fi

# Sizes: unpacked (what a container's root holds) and compressed (what a registry
# stores and a client downloads: the gzip layer blobs, as `buildah push` makes them).
unpacked=$(du -sb --apparent-size "$rootfs" "$context/owned" | awk '{s += $1} END {print s}')
layout=$(mktemp -d "$repo/target/image/layout.XXXXXX")
buildah "${sto[@]}" push --quiet "$tag" "oci:$layout:img" >/dev/null
compressed=$(python3 - "$layout" <<'EOF'
import json, sys, os
root = sys.argv[1]
index = json.load(open(os.path.join(root, "index.json")))
digest = index["manifests"][0]["digest"].split(":", 1)[1]
manifest = json.load(open(os.path.join(root, "blobs", "sha256", digest)))
print(sum(l["size"] for l in manifest["layers"]) + manifest["config"]["size"])
EOF
)
rm -rf "$layout"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
id=$(buildah "${sto[@]}" inspect --type image --format '{{.FromImageID}}' "$tag" 2>/dev/null | cut -c1-12)
echo "build-image: $tag ($id) from $binary (portcullis $version, $revision)"
echo "build-image: size $(mib "$unpacked") unpacked, $(mib "$compressed") compressed; built in ${elapsed}s"
echo "build-image: storage --root $store/root --runroot $runroot --storage-driver vfs"
