#!/usr/bin/env bash
# Builds Purser's desktop shell (ui/ + src-tauri/) and proves it opens its window on a headless
# X server. Idempotent: a warm run skips apt and reuses node_modules and the cargo target dir.
#
#   .ci/app.sh                      # everything
#   .ci/app.sh --run                # build, then launch the app on this display (./dev run)
#   PURSER_ARTIFACTS=dir .ci/app.sh # where the screenshot and app log go (default /tmp/purser-app)
#   CARGO_TARGET_DIR=dir .ci/app.sh # honoured (keep it under $HOME in CI to stay warm)
#
# Exit 0 only if the built binary showed a window titled "Purser" within 60 s and its desktop
# end-to-end tests (tests/desktop: tauri-driver + WebKitWebDriver, screenshots in
# $PURSER_ARTIFACTS/desktop) passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/.ci/app.sh"
WINDOW_TITLE="Purser"
WINDOW_TIMEOUT=60

step() { printf '\n==> [app.sh %3ds] %s\n' "$SECONDS" "$*"; }
fail() { printf '\n==> [app.sh %3ds] FAIL: %s\n' "$SECONDS" "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Inside the virtual display and session bus (the script re-invokes itself here, see step 5).
# ---------------------------------------------------------------------------------------------
headless() {
  local bin="$1" shot="$2" log="$3"
  export NO_AT_BRIDGE=1 # no accessibility bus in CI

  # A throwaway data dir and any free port: the check never touches (or waits on the lock of)
  # the user's real Purser, and runs beside one.
  local data
  data="$(mktemp -d /tmp/purser-window-check.XXXXXX)"
  PURSER_DATA_DIR="$data" PURSER_PORT=0 PURSER_NO_DIALOG=1 "$bin" >"$log" 2>&1 &
  local pid=$!
  local found="" tree
  for ((i = 0; i < WINDOW_TIMEOUT * 2; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "app exited before its window appeared; log ($log):" >&2
      tail -n 40 "$log" >&2
      return 1
    fi
    tree="$(xwininfo -root -tree 2>/dev/null || true)"
    if grep -qF "\"$WINDOW_TITLE\"" <<<"$tree"; then
      found=yes
      break
    fi
    sleep 0.5
  done

  if [[ -n "$found" ]]; then
    echo "window \"$WINDOW_TITLE\" appeared after ~$((i / 2)) s:"
    grep -F "\"$WINDOW_TITLE\"" <<<"$tree" | sed 's/^ */    /'
    sleep 3 # let the webview paint the page before the screenshot
    if import -window root "$shot"; then echo "screenshot: $shot"; else echo "screenshot failed" >&2; fi
  else
    echo "no window titled \"$WINDOW_TITLE\" within ${WINDOW_TIMEOUT} s; log ($log):" >&2
    tail -n 40 "$log" >&2
    import -window root "$shot" 2>/dev/null && echo "screenshot of the empty display: $shot" >&2
  fi

  kill "$pid" 2>/dev/null || true
  for ((j = 0; j < 20; j++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
  [[ -n "$found" ]]
}

RUN_APP=""
if [[ "${1:-}" == "--run" ]]; then
  RUN_APP=1 # ./dev run: build, then launch on the user's own display
  shift
fi

if [[ "${1:-}" == "--headless" ]]; then
  shift
  headless "$@"
  exit $?
fi

# ---------------------------------------------------------------------------------------------
# 1. System packages: WebKitGTK/GTK headers to build, Xvfb/xwininfo/import/dbus to run headless.
# ---------------------------------------------------------------------------------------------
APT_PACKAGES=(
  build-essential pkg-config file
  libwebkit2gtk-4.1-dev libjavascriptcoregtk-4.1-dev libsoup-3.0-dev libgtk-3-dev librsvg2-dev
  xvfb xauth x11-utils imagemagick dbus
  webkit2gtk-driver # WebKitWebDriver, which tauri-driver drives (desktop e2e)
)

step "1/5 system packages (${#APT_PACKAGES[@]} checked with dpkg-query)"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "all present"
fi

for tool in node npm cargo; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH"
done
echo "node $(node --version), npm $(npm --version), $(cargo --version)"

# ---------------------------------------------------------------------------------------------
# 2. UI dependencies, from ui/package-lock.json (`npm ci` can fail on registry mirrors that miss
#    an optional package for another platform; `npm install` with the lock installs the same).
# ---------------------------------------------------------------------------------------------
step "2/5 ui dependencies: npm install --prefix ui"
npm install --prefix "$ROOT/ui" --no-audit --no-fund

# ---------------------------------------------------------------------------------------------
# 3. UI typecheck, lint (ESLint with typescript-eslint's type-aware rules and React's hook rules,
#    ui/eslint.config.js; any warning fails), unit/component tests (Vitest + jsdom) and build
#    (ui/dist is what the app embeds).
# ---------------------------------------------------------------------------------------------
step "3/5 ui typecheck, lint, tests and build"
npm run --prefix "$ROOT/ui" typecheck
npm run --prefix "$ROOT/ui" lint
npm --prefix "$ROOT/ui" test
npm run --prefix "$ROOT/ui" build
[[ -f "$ROOT/ui/dist/index.html" ]] || fail "ui/dist/index.html was not produced"

# ---------------------------------------------------------------------------------------------
# 4. App build. `tauri build` (not plain cargo) enables tauri/custom-protocol so the binary embeds
#    ui/dist; --debug keeps it fast, --no-bundle skips packaging. It reruns the ui build through
#    beforeBuildCommand (a few seconds); overriding that with --config would set TAURI_CONFIG and
#    rebuild the tauri crate whenever a plain `tauri build` shared the target dir.
# ---------------------------------------------------------------------------------------------
if [[ -n "${CARGO_TARGET_DIR:-}" && "$CARGO_TARGET_DIR" != /* ]]; then
  export CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" # the tauri CLI runs cargo from src-tauri/
fi
TARGET_DIR="$(cargo metadata --no-deps --format-version 1 --manifest-path "$ROOT/Cargo.toml" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
BIN="$TARGET_DIR/debug/purser-app"

step "4/5 app build: npx --prefix ui tauri build --debug --no-bundle (target dir $TARGET_DIR)"
build_start=$SECONDS
(
  cd "$ROOT/src-tauri"
  TAURI_APP_PATH="$ROOT/src-tauri" TAURI_FRONTEND_PATH="$ROOT/ui" \
    npx --prefix "$ROOT/ui" tauri build --debug --no-bundle
)
[[ -x "$BIN" ]] || fail "expected binary $BIN is missing"
echo "built $BIN in $((SECONDS - build_start)) s"
if [[ -n "$RUN_APP" ]]; then
  step "launching $BIN"
  exec "$BIN"
fi

# ---------------------------------------------------------------------------------------------
# 5. Launch headless, wait for the window, screenshot, stop.
# ---------------------------------------------------------------------------------------------
ARTIFACTS="${PURSER_ARTIFACTS:-/tmp/purser-app}"
mkdir -p "$ARTIFACTS"
ARTIFACTS="$(cd "$ARTIFACTS" && pwd)"
SHOT="$ARTIFACTS/purser-window.png"
LOG="$ARTIFACTS/purser-app.log"
rm -f "$SHOT"

step "5/5 launch under xvfb-run + dbus-run-session, wait up to ${WINDOW_TIMEOUT} s for window \"$WINDOW_TITLE\""
if xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" \
  dbus-run-session -- bash "$SELF" --headless "$BIN" "$SHOT" "$LOG"; then
  step "PASS: window appeared; screenshot $SHOT, app log $LOG (total ${SECONDS} s)"
else
  fail "the app window did not appear (app log $LOG)"
fi

# ---------------------------------------------------------------------------------------------
# 6. Desktop end-to-end tests in the real webview (tests/desktop): each test starts its own Xvfb,
#    session bus, reference peers and tauri-driver (pinned to 2.x: crates.io's newest is a 3.0
#    alpha) on free ports, and drives the binary built above.
# ---------------------------------------------------------------------------------------------
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v tauri-driver >/dev/null; then
  step "6/6 installing tauri-driver (cargo install tauri-driver --version '^2' --locked)"
  cargo install tauri-driver --version '^2' --locked
fi
step "6/6 desktop end-to-end tests: cargo test -p purser-desktop-e2e (screenshots in $ARTIFACTS/desktop)"
bash "$ROOT/tests/peers/setup.sh"
PURSER_ARTIFACTS="$ARTIFACTS" PURSER_APP_BIN="$BIN" NO_AT_BRIDGE=1 \
  cargo test --manifest-path "$ROOT/Cargo.toml" -p purser-desktop-e2e --locked -- --test-threads 1 ||
  fail "desktop end-to-end tests failed (screenshots and logs in $ARTIFACTS/desktop)"
step "PASS: desktop end-to-end tests (total ${SECONDS} s)"
