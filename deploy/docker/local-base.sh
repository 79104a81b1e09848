#!/bin/sh
# A base image for the Dockerfile built from Debian's packages, for a machine that cannot pull from a
# registry (tests/ops/test_docker.py builds one this way when its tag is missing):
#   sudo deploy/docker/local-base.sh [TAG]            # default TAG: survey-base:bookworm
#   docker build --build-arg BASE_IMAGE=survey-base:bookworm -t survey-service:local .
# Debian bookworm (minbase) with python3, its venv module and CA certificates, from the mirror apt uses
# here (DEBIAN_MIRROR overrides). This machine's CA bundle (CA_BUNDLE, default the system one) replaces
# the base's, so pip inside the build trusts what pip here trusts; pass PIP_CERT to the build to use it.
# Needs root, debootstrap and a running Docker engine.
set -eu
tag=${1:-survey-base:bookworm}
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources | grep -v security | head -n 1)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror"
if [ -f "$ca_bundle" ]; then
  cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$tag"
