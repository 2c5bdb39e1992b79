#!/usr/bin/env bash
# Prints what `purser run` costs, measured side by side in one run (never a test, never gated):
#   1. start-up: `purser run --grant ID -- sh -c 'echo x'` to the agent's first byte, vs plain `sh`;
#   2. per request: one curl, N sequential keep-alive requests to a local HTTP server, straight,
#      through the proxy from outside a run (TCP), and through the proxy from inside a run (the
#      sandbox's bridge to the run's Unix socket): median and p90 of curl's time_total.
# Usage: tests/bench/run-latency.sh [PURSER_BIN] [N]   (default target/release/purser, 200)
set -euo pipefail
BIN="${1:-target/release/purser}"; N="${2:-200}"
BIN="$(realpath "$BIN")"
WORK="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
export PURSER_INSECURE_TEST_KDF=1
PASS=bench-pass
PURSER_PASSPHRASE=$PASS "$BIN" --data-dir "$WORK/d" wallet new >/dev/null
PURSER_PASSPHRASE=$PASS "$BIN" --data-dir "$WORK/d" serve --port 0 --no-notify >"$WORK/serve.out" 2>"$WORK/serve.err" &
python3 -m http.server 0 --bind 127.0.0.1 --directory "$WORK" >"$WORK/http.out" 2>&1 &
for _ in $(seq 100); do [ -s "$WORK/serve.out" ] && grep -q "port" "$WORK/http.out" 2>/dev/null && break; sleep 0.1; done
PROXY=$(sed -n 's/^listening on //p' "$WORK/serve.out")
PORT=$(grep -o 'port [0-9]*' "$WORK/http.out" | head -1 | cut -d' ' -f2)
echo x > "$WORK/f.txt"
# The grant: created with the passphrase typed on a pseudo-terminal (user presence).
GRANT_JSON=$(python3 - "$BIN" "$WORK/d" "$PORT" "$PASS" <<'PY'
import os, pty, sys, select
bin_, d, port, pw = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(bin_, [bin_, "--data-dir", d, "grant", "create", "--label", "bench", "--budget", "1", "--expires", "1h", "--host", f"127.0.0.1:{port}", "--json"])
out = b""
sent = False
while True:
    try: chunk = os.read(fd, 4096)
    except OSError: break
    if not chunk: break
    out += chunk
    if not sent and b"passphrase" in out:
        os.write(fd, (pw + "\n").encode()); sent = True
os.waitpid(pid, 0)
text = out.decode(errors="replace")
print(text[text.index("{"):])
PY
)
ID=$(echo "$GRANT_JSON" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().replace("\r",""))["id"])')
TOKEN=$(echo "$GRANT_JSON" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().replace("\r",""))["token"])')
stats() { grep -E '^[0-9.]+$' | sort -n | awk '{a[NR]=$1} END {printf "median %.3f ms  p90 %.3f ms  (n=%d)\n", a[int(NR*0.5)+1]*1000, a[int(NR*0.9)+1]*1000, NR}'; }
urls() { for _ in $(seq "$N"); do printf '%s ' "$1"; done; }
echo "== per request, one keep-alive connection, $N sequential GETs of a 2-byte file (python http.server)"
printf 'direct (no Purser)          '; curl -s -o /dev/null -w '%{time_total}\n' $(urls "http://127.0.0.1:$PORT/f.txt") | stats
printf 'proxy from outside a run    '; curl -s -o /dev/null -w '%{time_total}\n' -H "Proxy-Authorization: Bearer $TOKEN" $(urls "$PROXY/http://127.0.0.1:$PORT/f.txt") | stats
printf 'proxy from inside a run     '; PURSER_GRANT=$TOKEN "$BIN" --data-dir "$WORK/d" run --grant "$ID" --cwd "$WORK" -- sh -c "curl -s -o /dev/null -w '%{time_total}\n' -H \"Proxy-Authorization: Bearer \$PURSER_GRANT\" $(urls "\$PURSER_PROXY/http://127.0.0.1:$PORT/f.txt")" 2>/dev/null | stats
echo "== start-up to the agent's first byte (20 runs each)"
t() { local s e; s=$(date +%s%N); "$@" | head -c1 >/dev/null; e=$(date +%s%N); echo "$(( (e - s) ))e-9" | awk '{printf "%.6f\n", $1}'; }
printf 'sh -c "echo x"              '; for _ in $(seq 20); do t sh -c 'echo x'; done | stats
printf 'purser run --grant -- sh    '; for _ in $(seq 20); do PURSER_GRANT=$TOKEN t "$BIN" --data-dir "$WORK/d" run --grant "$ID" --cwd "$WORK" -- sh -c 'echo x' 2>/dev/null; done | stats
