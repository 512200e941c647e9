#!/usr/bin/env bash
# Makes a local stand-in for the public `node:<major>-bookworm-slim` image where no container registry can be
# reached: a minimal Debian bookworm from debootstrap, Node from the npm registry's node-linux-<arch> package and
# npm from the `npm` package, laid out as the official image lays them (/usr/local/bin/node, npm, npx) with the
# same `node` user (uid and gid 1000). Only Debian packages and npm packages are downloaded.
#   scripts/container-base-image.sh TAG [NODE_MAJOR]    (root; needs debootstrap and a running Docker daemon;
#                                                        DOCKER=/usr/bin/docker picks the CLI)
# The packages/coordinator/Dockerfile builds on it with `--build-arg NODE_IMAGE=TAG`. The root file system (Debian +
# Node) is kept as a tarball in ${SHOAL_CONTAINER_CACHE:-${TMPDIR:-/tmp}/shoal-container-cache}, keyed by the exact
# Node version the npm registry resolves NODE_MAJOR to (the newest cached one for that major when the registry
# cannot be asked), so a second run only imports it; a new Node release makes a new one.
set -euo pipefail
tag="${1:?usage: scripts/container-base-image.sh TAG [NODE_MAJOR]}"
major="${2:-20}"
[[ "$major" =~ ^[0-9]+$ ]] || { echo "container-base-image: NODE_MAJOR must be a number, got '$major'" >&2; exit 2; }
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "container-base-image: no node-linux package for $(uname -m)" >&2; exit 2 ;;
esac
command -v debootstrap >/dev/null || { echo "container-base-image: debootstrap is not installed" >&2; exit 2; }
cache="${SHOAL_CONTAINER_CACHE:-${TMPDIR:-/tmp}/shoal-container-cache}"
mkdir -p "$cache"
version=$(npm view "node-linux-$arch@$major" version --json 2>/dev/null | tr -d '[]" \n' | tr ',' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
if [ -z "$version" ]; then
  # No registry: the newest cached root file system of that major, if any.
  rootfs_tar=$(ls -1 "$cache"/debian-bookworm-minbase-node-v"$major".*-"$arch".tar 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$rootfs_tar" ] || { echo "container-base-image: cannot resolve node-linux-$arch@$major (npm view failed) and nothing is cached" >&2; exit 1; }
  version=$(basename "$rootfs_tar" | sed -E 's/.*-node-v([0-9.]+)-.*/\1/')
fi
rootfs_tar="$cache/debian-bookworm-minbase-node-v$version-$arch.tar"

if [ ! -s "$rootfs_tar" ]; then
  work=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "container-base-image: debootstrap bookworm (minbase)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$work/root" http://deb.debian.org/debian \
    > "$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work/root/var/cache/apt/archives"/*.deb "$work/root/var/lib/apt/lists"/*
  echo "container-base-image: node $version and npm from the npm registry"
  (cd "$work" && npm pack "node-linux-$arch@$version" --silent >/dev/null && npm pack "npm@10" --silent >/dev/null)
  tar xzf "$work"/node-linux-"$arch"-*.tgz -C "$work" package/bin/node
  install -m 0755 "$work/package/bin/node" "$work/root/usr/local/bin/node"
  rm -rf "$work/package"
  mkdir -p "$work/root/usr/local/lib/node_modules/npm"
  tar xzf "$work"/npm-*.tgz -C "$work/root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/root/usr/local/bin/npx"
  chroot "$work/root" groupadd --gid 1000 node
  chroot "$work/root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  # Trust the certificate authorities this machine added to Debian's (e.g. a TLS-intercepting proxy's in front of
  # the npm registry), as the machine's own npm does: the image's builds install from the same registry.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$work/root/usr/local/share/ca-certificates/"
    chroot "$work/root" update-ca-certificates >/dev/null
  fi
  tar -C "$work/root" --numeric-owner -cf "$rootfs_tar.partial" .
  mv "$rootfs_tar.partial" "$rootfs_tar"
fi

"${DOCKER:-docker}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$version" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  "$rootfs_tar" "$tag" >/dev/null
echo "container-base-image: $tag ($("${DOCKER:-docker}" run --rm --network none "$tag" node --version))"
