#!/usr/bin/env bash
# Builds the offline test image local/busybox:1 from Debian's busybox-static (no registry,
# no network): a rootfs with busybox and its applet links, imported as an image. Idempotent.
set -euo pipefail
IMAGE=${1:-local/busybox:1}
docker image inspect "$IMAGE" >/dev/null 2>&1 && { echo "✅ $IMAGE present"; exit 0; }
BUSYBOX=$(command -v busybox)
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/tmp"
cp "$BUSYBOX" "$rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
echo "✅ $IMAGE imported"
