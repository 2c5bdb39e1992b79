#!/usr/bin/env bash
# The long fuzzing run (issue 10): every cargo-fuzz target in fuzz/, one after another on one
# core, for a total number of executions split evenly over the targets, starting from the
# committed corpus (fuzz/corpus/<target>, copied: the committed one is changed only with
# --merge, which minimises it with what was found, by libFuzzer -merge as cargo fuzz cmin does).
# libFuzzer limits: -timeout=1 (an input running over 1 s is a failure), -rss_limit_mb=512, a
# -max_len per target. Prints per-target executions, exec/s, peak RSS and failures, then a
# total; exits non-zero on any crash, timeout or out-of-memory (its input is in
# fuzz/artifacts/<target>/).
#
#   bash tests/hardening/fuzz.sh [--total N] [--targets a,b,...] [--merge]
#
# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz --locked).
set -euo pipefail

total=100000000
targets=""
merge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --total) total="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$total" in ''|*[!0-9]*) echo "--total must be a whole number" >&2; exit 2 ;; esac

root="$(cd "$(dirname "$0")/../.." && pwd)"
fuzz="$root/fuzz"
cd "$fuzz"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh needs a nightly toolchain (rustup toolchain install nightly)" >&2; exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

# name:max_len (bytes): room for real documents without drowning the fuzzer in long inputs.
all="x402_v1_challenge:16384 x402_v2_challenge:16384 settlement_header:4096 amount:256 host_pattern:512 timeline_query:1024 proxy_head:2048"
if [ -n "$targets" ]; then
  sel=""
  for t in ${targets//,/ }; do
    m=$(printf '%s\n' $all | grep "^$t:" || true)
    [ -n "$m" ] || { echo "unknown target: $t" >&2; exit 2; }
    sel="$sel $m"
  done
  all="$sel"
fi
n=$(printf '%s\n' $all | wc -l)
per=$(( (total + n - 1) / n ))  # rounded up: the sum is at least --total

# Release build with debug assertions and overflow checks (-a); no sanitizer (safe Rust: the
# checks are Rust's own, and the throughput goes to executions).
work="$(mktemp -d /tmp/purser-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if ! cargo +nightly fuzz build -s none -a >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2; echo "cargo fuzz build failed" >&2; exit 2
fi
bin="$fuzz/target/x86_64-unknown-linux-gnu/release"
failed=0 sum_execs=0 start_all=$(date +%s)
printf '%-20s %14s %10s %10s %8s %8s %s\n' target executions exec/s peak_rss wall_s corpus result
for entry in $all; do
  t="${entry%%:*}" max="${entry##*:}"
  mkdir -p "$work/$t" "$fuzz/artifacts/$t"
  cp "$fuzz/corpus/$t"/* "$work/$t/"
  log="$work/$t.log"
  t0=$(date +%s)
  set +e
  "$bin/$t" "$work/$t" -runs="$per" -timeout=1 -rss_limit_mb=512 -max_len="$max" \
    -print_final_stats=1 -artifact_prefix="$fuzz/artifacts/$t/" >"$log" 2>&1
  rc=$?
  set -e
  wall=$(( $(date +%s) - t0 ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  size=$(ls "$work/$t" | wc -l)
  result=ok
  if [ "$rc" -ne 0 ] || grep -qE 'deadly signal|ERROR: libFuzzer|==[0-9]+== ERROR|panicked at' "$log"; then
    result="FAILED (exit $rc): $(grep -oE 'ERROR: libFuzzer: [a-z-]+|panicked at [^ ]+' "$log" | head -1); input in fuzz/artifacts/$t/"
    cp "$log" "$fuzz/artifacts/$t/last-run.log"
    failed=$((failed + 1))
  fi
  sum_execs=$((sum_execs + ${execs:-0}))
  printf '%-20s %14s %10s %8sMB %8s %8s %s\n' "$t" "$execs" "$rate" "$rss" "$wall" "$size" "$result"
  if [ "$merge" -eq 1 ] && [ "$result" = ok ]; then
    mkdir -p "$work/$t.min"
    "$bin/$t" -merge=1 -max_len="$max" "$work/$t.min" "$fuzz/corpus/$t" "$work/$t" >/dev/null 2>&1
    rm -f "$fuzz/corpus/$t"/*
    cp "$work/$t.min"/* "$fuzz/corpus/$t/"
  fi
done
wall_all=$(( $(date +%s) - start_all ))
printf 'total: %s executions over %s targets in %ss, %s failing target(s)\n' "$sum_execs" "$n" "$wall_all" "$failed"
[ "$failed" -eq 0 ]
