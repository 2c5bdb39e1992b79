#!/usr/bin/env bash
# Overspend at scale, the long run: RUNS runs (default 10) of CONCURRENCY concurrent paid requests
# (default 1000), each on its own connection, through a fresh `purser serve` against one grant
# whose budget covers 37 payments, with the real x402 peers (anvil, reference facilitator, v2
# paywall). Prints each run's figures (requests, paid, answers by (status, code), spent vs budget,
# payee's on-chain delta, settlements, the daemon's peak open descriptors, wall time) and a
# summary; exits non-zero if any run overspends by one unit or disagrees with the chain.
#
#   tests/hardening/overspend.sh [--runs 10] [--concurrency 1000] [--release]
#
# Needs what `./dev test` sets up (`bash tests/peers/setup.sh`; the test runs it too).
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=10
concurrency=1000
profile=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --concurrency) concurrency="$2"; shift 2 ;;
        --release) profile=(--release); shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "overspend.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$runs$concurrency" in *[!0-9]*|'') echo "overspend.sh: --runs and --concurrency take whole numbers" >&2; exit 2 ;; esac

log=$(mktemp -t purser-overspend.XXXXXX.log)
echo "overspend: $runs run(s) x $concurrency concurrent requests; full log: $log"
start=$(date +%s)
PURSER_OVERSPEND_RUNS="$runs" PURSER_OVERSPEND_CONCURRENCY="$concurrency" \
    cargo test ${profile[@]+"${profile[@]}"} -p purser --test e2e overspend:: -- --nocapture --test-threads 1 >"$log" 2>&1 || {
    status=$?
    grep -E '^(overspend:|run [0-9]+:)' "$log" || true
    echo "overspend: FAILED (exit $status); the end of the log:" >&2
    tail -40 "$log" >&2
    exit "$status"
}
grep -E '^(overspend:|run [0-9]+:)' "$log"
# Summary over the per-run lines.
grep -E '^run [0-9]+:' "$log" | awk -v secs=$(( $(date +%s) - start )) '
    {
        for (i = 1; i <= NF; i++) {
            if ($i == "requests") req += $(i + 1) + 0
            if ($i == "paid") paid += $(i + 1) + 0
            if ($i == "spent") { s = $(i + 1) + 0; b = $(i + 4) + 0; if (s - b > over) over = s - b; spent += s }
            if ($i == "delta") delta += $(i + 1) + 0
            if ($i == "wall") { w = $(i + 1) + 0; if (w > maxw) maxw = w }
        }
        n++
    }
    END {
        printf "summary: %d runs, %d requests, %d paid, %d refused; spent %d atomic in total, payee chain delta %d; worst overspend %d units; slowest run %.1f s; %d s in all (build included)\n", n, req, paid, req - paid, spent, delta, over, maxw, secs
    }'
