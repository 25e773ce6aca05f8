#!/usr/bin/env bash
# Builds the Blacktree worker image offline (no registry pulls): a Debian bookworm root
# filesystem made with debootstrap (minbase) holding git, ca-certificates, buildah and
# Debian's Node 18, plus the reference workers bundled with esbuild; imported with
# `docker import` as a local tag. Idempotent and cached:
#   - the rootfs tarball is kept under $CACHE_DIR, keyed by suite + mirror + packages + this script;
#   - the image tag is skipped when an image with the same inputs label exists.
# Usage: deploy/worker-image/build.sh [tag]   (default blacktree/worker:local)
# Env: WORKER_IMAGE_CACHE (default /var/cache/blacktree-worker-image), DEBIAN_MIRROR, DEBIAN_SUITE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
TAG=${1:-blacktree/worker:local}
CACHE_DIR=${WORKER_IMAGE_CACHE:-/var/cache/blacktree-worker-image}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEBIAN_SUITE:-bookworm}
# git + ca-certificates: clone; buildah: the daemonless builder; nodejs: runs the workers.
# netavark: the container-network-stack containers-common needs (debootstrap does not pick a virtual package's provider).
PACKAGES=git,ca-certificates,buildah,netavark,nodejs
mkdir -p "$CACHE_DIR"

base_key=$(printf '%s\n' "$SUITE" "$MIRROR" "$PACKAGES" "$(sed -n '/^# --- rootfs ---/,/^# --- end rootfs ---/p' "$0")" | sha256sum | cut -c1-16)
rootfs_tar="$CACHE_DIR/rootfs-$SUITE-$base_key.tar"

# --- rootfs ---
if [ ! -s "$rootfs_tar" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  work=$(mktemp -d "$CACHE_DIR/bootstrap.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "🔄 debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; grep -B2 -A12 -i "error\|fail" "$work/rootfs/debootstrap/debootstrap.log" 2>/dev/null | tail -40 >&2; echo "❌ debootstrap failed" >&2; exit 1; }
  r="$work/rootfs"
  # Buildah inside an unprivileged container: vfs storage (no overlay mounts), chroot isolation
  # (no namespaces to create), host networking for RUN steps.
  mkdir -p "$r/etc/containers"
  cat >"$r/etc/containers/storage.conf" <<'CONF'
[storage]
driver = "vfs"
runroot = "/var/run/containers/storage"
graphroot = "/var/lib/containers/storage"
CONF
  cat >"$r/etc/containers/containers.conf" <<'CONF'
[containers]
netns = "host"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  # Unqualified names are refused: every FROM names its registry.
  printf 'unqualified-search-registries = []\nshort-name-mode = "enforcing"\n' >"$r/etc/containers/registries.conf"
  rm -rf "$r/var/cache/apt/archives/"*.deb "$r/var/lib/apt/lists/"* "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/locale"
  tar --numeric-owner -C "$r" -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$work"; trap - EXIT
  echo "✅ rootfs cached: $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1))"
fi
# --- end rootfs ---

# The reference workers, bundled into one file each (no node_modules in the image); Node 18 syntax.
# cpu-features (ssh2's optional native speed-up, under dockerode) stays out: ssh2 requires it in a try.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/opt/blacktree/workers" "$stage/usr/local/bin" "$stage/work"
for w in build-worker deploy-worker; do
  "$root/node_modules/.bin/esbuild" "$root/plugins/workers/$w.ts" --bundle --platform=node --target=node18 --log-level=warning --external:cpu-features \
    --alias:@blacktree/sdk="$root/packages/sdk/src" --outfile="$stage/opt/blacktree/workers/$w.js"
done
cp "$here/blacktree-worker" "$stage/usr/local/bin/blacktree-worker"

inputs=$( (echo "$base_key"; cd "$stage" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "blacktree.worker-image.inputs"}}' "$TAG" 2>/dev/null || true)" = "$inputs" ]; then
  echo "✅ $TAG is up to date (inputs $inputs)"
  exit 0
fi
cp "$rootfs_tar" "$stage/image.tar"
# Only paths the rootfs does not have (docker import refuses duplicate entries).
tar --numeric-owner --owner=0 --group=0 -C "$stage" -rf "$stage/image.tar" ./opt/blacktree ./usr/local/bin/blacktree-worker ./work
docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV BUILDAH_ISOLATION=chroot STORAGE_DRIVER=vfs BLACKTREE_BUILDER=buildah HOME=/root' \
  -c 'WORKDIR /work' \
  -c "LABEL blacktree.worker-image.inputs=$inputs" \
  -c 'CMD ["blacktree-worker"]' \
  "$stage/image.tar" "$TAG" >/dev/null
echo "✅ $TAG imported (inputs $inputs)"
