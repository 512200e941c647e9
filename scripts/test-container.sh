#!/usr/bin/env bash
# `npm run test:container`: builds packages/coordinator/Dockerfile with Docker, runs the image and the compose
# example examples/docker-compose.local.yml (test/container/image.test.ts). Installs what it needs from Debian when
# missing and run as root (docker.io for the daemon and CLI, docker-compose, debootstrap for the local base image);
# the test starts its own dockerd (vfs, no bridge, at nice 10) when none answers and stops it at the end. The base
# image (Debian minbase + Node from the npm registry) is cached by Node version in
# ${SHOAL_CONTAINER_CACHE:-/tmp/shoal-container-cache}; the image build itself is offline (APP=context: app/ laid
# out on the host by scripts/container-context.sh). SHOAL_NODE_IMAGE=node:20.19-bookworm-slim uses that image
# instead of making one (where a registry is reachable). Not part of `npm test` or CI (docs/operations.md says why).
# SHOAL_CONTAINER_SKIP_BUILD=1 skips `npm run build` (the caller just built).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -n "${SHOAL_NODE_IMAGE:-}" ] || command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== [${SECONDS}s] apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test-container: ${missing[*]} not installed (and no root apt-get): the test will say why it skips" >&2
  fi
fi
if [ -z "${SHOAL_CONTAINER_SKIP_BUILD:-}" ]; then
  echo "== [${SECONDS}s] build"
  npm run build
fi
echo "== [${SECONDS}s] test/container"
SHOAL_TEST=test/container npx mocha
echo "== [${SECONDS}s] done"
