#!/usr/bin/env bash
# Makes a Docker engine answer on /var/run/docker.sock: installs Debian's
# docker.io when dockerd is missing, starts dockerd in the background when the socket does
# not answer, waits for `docker info` with a deadline. Idempotent; needs root to install/start.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
LOG=${DOCKERD_LOG:-/var/log/blacktree-dockerd.log}

if ! command -v dockerd >/dev/null || ! command -v busybox >/dev/null; then
  echo "🔄 installing docker.io and busybox-static"
  apt-get update -qq
  apt-get install -y -qq docker.io busybox-static >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "🔄 starting dockerd (log: $LOG)"
  # No iptables, no bridge: containers run with --network none only.
  nohup dockerd --iptables=false --bridge=none --storage-driver=vfs >>"$LOG" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "❌ dockerd did not answer within 60 s; see $LOG" >&2; exit 1; }
fi
echo "✅ docker engine answers"
