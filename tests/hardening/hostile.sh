#!/usr/bin/env bash
# Resource limits on hostile peers, the long run: the hostile_limits e2e with every limit at
# LIMIT seconds (default 30, the shipped head timeout; the shipped upstream and body limits are
# longer: see proxy/limits.rs and upstream.rs) and more attackers: IDLE idle connections (default
# 8000, below the proxy's maximum of 8,192), SLOWLORIS clients sending their head a byte a second
# (default 200), a request body sent a byte a second, an upstream that never finishes a body, one
# that never answers, one that trickles its answer, and a 402 with a 100 MB body, while other
# agents' pass-through and paid requests run. Prints the daemon's VmRSS (before, peak during,
# after), when the attackers were cut off, and the other agents' latency; exits non-zero if a
# limit does not hold.
#
#   tests/hardening/hostile.sh [--idle 8000] [--slowloris 200] [--limit-secs 30] [--release]
#
# Needs what `./dev test` sets up (`bash tests/peers/setup.sh`; the test runs it too).
set -euo pipefail
cd "$(dirname "$0")/../.."

idle=8000
slowloris=200
limit=30
profile=()
while [ $# -gt 0 ]; do
    case "$1" in
        --idle) idle="$2"; shift 2 ;;
        --slowloris) slowloris="$2"; shift 2 ;;
        --limit-secs) limit="$2"; shift 2 ;;
        --release) profile=(--release); shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "hostile.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$idle$slowloris$limit" in *[!0-9]*|'') echo "hostile.sh: --idle, --slowloris and --limit-secs take whole numbers" >&2; exit 2 ;; esac

# This shell's descriptors are the test's: one per idle connection, plus margin.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log=$(mktemp -t purser-hostile.XXXXXX.log)
echo "hostile: $idle idle connections, $slowloris slowloris clients, limits $limit s; full log: $log"
PURSER_HOSTILE_IDLE="$idle" PURSER_HOSTILE_SLOWLORIS="$slowloris" PURSER_HOSTILE_LIMIT_SECS="$limit" \
    cargo test ${profile[@]+"${profile[@]}"} -p purser --test e2e hostile_limits:: -- --nocapture >"$log" 2>&1 || {
    status=$?
    grep -E '^(limits:|serve VmRSS|attack:|slowloris|during the attack|100 MB|!!!)' "$log" || true
    echo "hostile: FAILED (exit $status); the end of the log:" >&2
    tail -40 "$log" >&2
    exit "$status"
}
grep -E '^(limits:|serve VmRSS|attack:|slowloris|during the attack|100 MB|!!!)' "$log"
echo "hostile: ok"
