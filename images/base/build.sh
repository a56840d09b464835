#!/usr/bin/env bash
# Builds the base image every finegate image starts FROM: a minimal Debian bookworm with python3 (3.11,
# the version requirements/constraints.txt was resolved on), its venv module and CA certificates.
#
#   sudo images/base/build.sh                 # -> finegate/base:bookworm
#   BASE_TAG=my/base:bookworm images/base/build.sh
#
# Why not `FROM debian:bookworm`: where no registry can be pulled from (CI, air-gapped build hosts), the
# root filesystem is made with debootstrap from the Debian mirror and turned into an image by
# `docker import`. Needs root, debootstrap and a running Docker engine.
#
# Certificates: only Debian's ca-certificates. A build host's extra CAs (a TLS-intercepting proxy's) never
# enter this image: images/build.sh lends the host's CA bundle to each `pip install` step as a BuildKit
# secret mount, which no layer keeps (images/README.md). PIP_CERT, REQUESTS_CA_BUNDLE and SSL_CERT_FILE
# point pip, requests and OpenSSL at the system store, so that lent bundle is the one a build step uses.
set -euo pipefail

BASE_TAG="${BASE_TAG:-finegate/base:bookworm}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# python3-venv brings ensurepip (pip for every venv); libgomp1 is the OpenMP runtime torch, llama.cpp and
# scikit-learn wheels link against.
PACKAGES="python3,python3-venv,ca-certificates,libgomp1"

for tool in debootstrap docker; do
  command -v "$tool" >/dev/null || { echo "base: $tool not found (apt-get install -y debootstrap docker.io)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "base: debootstrap needs root" >&2; exit 2; }

rootfs="$(mktemp -d /tmp/finegate-base.XXXXXX)"
trap 'umount "$rootfs/proc" "$rootfs/sys" 2>/dev/null || true; rm -rf "$rootfs"' EXIT

echo "base: debootstrap $SUITE from $MIRROR (a few minutes)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >/tmp/finegate-base-debootstrap.log 2>&1 || {
  tail -n 30 /tmp/finegate-base-debootstrap.log >&2; echo "base: debootstrap failed (full log /tmp/finegate-base-debootstrap.log)" >&2; exit 1; }

# The same apt sources a stock debian image has, so later `apt-get install` steps (the gguf builder) work.
cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF

# An image, not a system: no apt cache, docs or man pages.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/cache/debconf/*-old

echo "base: importing as $BASE_TAG"
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV DEBIAN_FRONTEND=noninteractive' \
  --change 'CMD ["/bin/bash"]' \
  - "$BASE_TAG" >/dev/null
docker run --rm "$BASE_TAG" python3 -c 'import sys, venv, ensurepip, ssl; print("base: python", sys.version.split()[0], "ok")'
