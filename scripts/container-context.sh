#!/usr/bin/env bash
# Lays out a small Docker build context for packages/coordinator/Dockerfile's `APP=context` mode: app/ holds the
# coordinator exactly as the image runs it (package.json + production node_modules with the packed Shoal packages),
# installed here on the host from this checkout's build (`npm run build` first) and the npm registry (or npm's
# cache). The image build then compiles and downloads nothing: it copies app/ onto the Node base image.
#   scripts/container-context.sh DIR
#   docker build --build-arg APP=context -f packages/coordinator/Dockerfile DIR
# The packages are Linux/x64-or-arm64 pure JavaScript (no install scripts run, as in the Dockerfile's own build),
# so a context laid out on a Linux host of the same architecture runs in the image.
set -euo pipefail
dir="${1:?usage: scripts/container-context.sh DIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -f "$root/packages/coordinator/dist/cli.js" ] || {
  echo "container-context: packages/coordinator/dist is missing: run npm run build first" >&2
  exit 2
}
rm -rf "$dir/app" "$dir/pack"
mkdir -p "$dir/app" "$dir/pack"
(cd "$root" && npm pack --silent -w @shoal/core -w @shoal/protocol -w @shoal/policy -w @shoal/consul \
  -w @shoal/coordinator --pack-destination "$dir/pack" >/dev/null)
cd "$dir/app"
echo '{"name":"shoal-coordinator-image","private":true}' >package.json
npm install --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error "$dir"/pack/*.tgz >/dev/null
rm -rf "$dir/pack"
echo "container-context: $dir/app ($(du -sh "$dir/app" | cut -f1))"
