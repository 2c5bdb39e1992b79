#!/usr/bin/env bash
# Soak (issue 10): one hour (by default) of mixed agent traffic through a release `purser serve`
# against the real x402 reference peers: pass-through, auto-paid, refused (per-request cap, host
# not in the grant, over budget), held-and-approved, held-and-denied. Samples the daemon's RSS
# and open fds every 10 s, prints p50/p99 latency per kind per 5-minute window, RSS/fd ranges and
# the drift (first window vs last), audits the ledger (receipts verify, every answer's receipt,
# counts by outcome, grants balance, paid = on-chain) and writes everything as JSON.
#
#   tests/hardening/soak.sh [--minutes 60] [--rate 4] [--report FILE] [--window 300] [--sample 10]
#   (--seconds N for a short run; --unreachable-rpc leaves Base Sepolia on its offline public RPC)
#
# Exit 0 iff the soak found no problem. Needs node >= 20 (the peers); builds release binaries.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/peers/setup.sh
cargo build --release --locked -p purser -p purser-soak
target="${CARGO_TARGET_DIR:-target}"
# Private copies: a rebuild during the run must not swap the binaries (or the ledger's schema)
# under it.
bin_dir="$(mktemp -d "${TMPDIR:-/tmp}/purser-soak-bin.XXXXXX")"
trap 'rm -rf "$bin_dir"' EXIT
cp "$target/release/purser" "$target/release/soak" "$bin_dir/"
args=("$@")
case " $* " in
  *" --report "*) ;;
  *) args+=(--report "${TMPDIR:-/tmp}/purser-soak-$(date -u +%Y%m%dT%H%M%SZ).json") ;;
esac
status=0
PURSER_E2E_SKIP_PEERS_SETUP=1 "$bin_dir/soak" --purser "$bin_dir/purser" "${args[@]}" || status=$?
exit "$status"
