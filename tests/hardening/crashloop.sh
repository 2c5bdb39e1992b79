#!/usr/bin/env bash
# The long crash loop (issue 10): `purser serve` under a steady stream of concurrent paid
# requests (real reference peers; the facilitator settles on the local anvil chain) is killed
# with SIGKILL at seeded random moments and restarted on the same data dir, 300 times by default.
# After every restart: `purser receipts verify`, every Purser-Receipt id an agent got is in the
# ledger, each grant's spent/reserved equal its reservations, one authorization at most per
# logical request (ledger and paywall), every nonce the facilitator or the chain saw was recorded
# before it was sent, paid receipts never exceed the on-chain transfers; at the end the chain's
# clock passes every validBefore and the ledger's spending must equal the chain's transfers.
# Prints a line per kill and a table of figures; exits non-zero on any violation.
#
#   bash tests/hardening/crashloop.sh [--kills 300] [--seed 1] [--concurrency 8] [--min-ms 150] [--max-ms 2500] [--quiet]
#
# PROFILE=debug drives the debug build instead of the release one. Needs the peers
# (bash tests/peers/setup.sh, run by ./dev test; the harness runs it too).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
profile="${PROFILE:-release}"
case "$profile" in
  release) cargo build --release --locked -p purser -p purser-crashloop ;;
  debug) cargo build --locked -p purser -p purser-crashloop ;;
  *) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac
target="${CARGO_TARGET_DIR:-$root/target}/$profile"
args=("$@")
case " ${args[*]-} " in
  *" --kills "*) ;;
  *) args=(--kills 300 "${args[@]}") ;;
esac
echo "crashloop.sh: $profile build, $(nproc) cores, $(date -u +%FT%TZ)" >&2
exec "$target/crashloop" --purser "$target/purser" "${args[@]}"
