#!/usr/bin/env bash
# Installs the x402 reference peers' npm packages (tests/peers and tests/peers/v1) from their lock
# files, only when node_modules is missing or older than package-lock.json. Idempotent, quiet, and
# fast when up to date; safe to call from several test processes at once (serialized with flock).
#   bash tests/peers/setup.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

stale() { # $1: package dir; true when its node_modules needs (re)installing
  local marker="$1/node_modules/.package-lock.json" # written by npm at the end of every install
  [[ ! -f "$marker" || "$1/package-lock.json" -nt "$marker" ]]
}

stale "$here" || stale "$here/v1" || exit 0

if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.setup.lock"
  flock 9
fi
for dir in "$here" "$here/v1"; do
  stale "$dir" || continue # someone else installed it while we waited for the lock
  echo "tests/peers/setup.sh: installing npm packages in $dir" >&2
  # --ignore-scripts: anvil comes from its platform package; no other package needs a build step
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
done
