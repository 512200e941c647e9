#!/usr/bin/env bash
# Runs the unit suite and the consumer test's runtime checks (ESM import, CommonJS require, the CLIs) on another
# Node major, with the Node binary that the npm registry ships in the node-linux-<arch> package (nothing else is
# downloaded). The build is the one `npm run build` made with the repository's Node.
#   scripts/test-on-node.sh 22      (also: npm run test:node -- 24)
set -euo pipefail
major="${1:?usage: scripts/test-on-node.sh MAJOR (e.g. 22 or 24)}"
[[ "$major" =~ ^[0-9]+$ ]] || { echo "test-on-node: MAJOR must be a number, got '$major'" >&2; exit 2; }
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "test-on-node: no node-linux package for $(uname -m)" >&2; exit 2 ;;
esac
dir="${TMPDIR:-/tmp}/shoal-node-$major-$arch"
if [ ! -x "$dir/package/bin/node" ]; then
  mkdir -p "$dir"
  tgz=$(cd "$dir" && npm pack "node-linux-$arch@$major" --silent | tail -n 1)
  tar xzf "$dir/$tgz" -C "$dir" package/bin/node
  rm -f "$dir/$tgz"
fi
export PATH="$dir/package/bin:$PATH"
echo "== node $(node --version): unit suite"
npx mocha --config .mocharc.unit.cjs --reporter dot
echo "== node $(node --version): packed packages imported, required and run"
SHOAL_TEST=test/consumer/packed-packages.test.ts npx mocha --reporter dot \
  --grep 'imports every package|links every CLI, which'
